use thiserror::Error;

use super::Origin;
use crate::domain::DomainError;

/// Why a request body was refused. Every message is meant for the client and, where it
/// concerns one reading, starts with its position ("reading 3: …", "line 7: …").
#[derive(Debug, Clone, PartialEq, Error)]
pub enum IngestError {
    /// Syntax or structure the parser cannot use.
    #[error("{0}")]
    Malformed(String),
    /// A value outside its kind's physical range.
    #[error("{0}")]
    OutOfRange(String),
    /// NaN or ±infinity (only reachable through line protocol overflow such as 1e999).
    #[error("{0}")]
    NonFinite(String),
    #[error("{0}")]
    FutureTimestamp(String),
    #[error("{0}")]
    Before1970(String),
    /// The record/field names a different quantity than the sensor's kind.
    #[error("{0}")]
    WrongQuantity(String),
    /// A SenML unit that does not match the sensor's kind.
    #[error("{0}")]
    WrongUnit(String),
    /// Body (compressed or decoded) or batch over its limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    UnsupportedEncoding(String),
}

/// The HTTP class of an `IngestError`, so the web layer maps errors in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestErrorKind {
    /// 400 Bad Request
    BadRequest,
    /// 413 Payload Too Large
    TooLarge,
    /// 415 Unsupported Media Type (both media type and content encoding)
    UnsupportedMediaType,
}

impl IngestErrorKind {
    pub fn http_status(self) -> u16 {
        match self {
            IngestErrorKind::BadRequest => 400,
            IngestErrorKind::TooLarge => 413,
            IngestErrorKind::UnsupportedMediaType => 415,
        }
    }
}

impl IngestError {
    pub fn kind(&self) -> IngestErrorKind {
        match self {
            IngestError::Malformed(_)
            | IngestError::OutOfRange(_)
            | IngestError::NonFinite(_)
            | IngestError::FutureTimestamp(_)
            | IngestError::Before1970(_)
            | IngestError::WrongQuantity(_)
            | IngestError::WrongUnit(_) => IngestErrorKind::BadRequest,
            IngestError::TooLarge(_) => IngestErrorKind::TooLarge,
            IngestError::UnsupportedMediaType(_) | IngestError::UnsupportedEncoding(_) => {
                IngestErrorKind::UnsupportedMediaType
            }
        }
    }

    /// Stable short code per variant, for metrics labels and JSON error bodies.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Malformed(_) => "malformed",
            IngestError::OutOfRange(_) => "out_of_range",
            IngestError::NonFinite(_) => "non_finite",
            IngestError::FutureTimestamp(_) => "future_timestamp",
            IngestError::Before1970(_) => "before_1970",
            IngestError::WrongQuantity(_) => "wrong_quantity",
            IngestError::WrongUnit(_) => "wrong_unit",
            IngestError::TooLarge(_) => "too_large",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::UnsupportedEncoding(_) => "unsupported_encoding",
        }
    }

    /// A domain rule broken by the reading at `at`.
    pub fn invalid(at: Origin, e: DomainError) -> IngestError {
        let msg = format!("{at}: {e}");
        match e {
            DomainError::NonFinite(_) => IngestError::NonFinite(msg),
            DomainError::OutOfRange { .. } => IngestError::OutOfRange(msg),
            DomainError::BeforeEpoch(_) => IngestError::Before1970(msg),
            DomainError::TooFarInFuture { .. } | DomainError::BeyondRepresentable(_) => {
                IngestError::FutureTimestamp(msg)
            }
            DomainError::InvalidSensorName(_) | DomainError::UnknownSensorKind(_) => {
                IngestError::Malformed(msg)
            }
        }
    }
}

/// Quote client input in an error message without letting a huge token bloat the reply.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SensorKind, Value};

    #[test]
    fn kinds_and_reasons() {
        let cases = [
            (IngestError::Malformed(String::new()), 400, "malformed"),
            (IngestError::OutOfRange(String::new()), 400, "out_of_range"),
            (IngestError::NonFinite(String::new()), 400, "non_finite"),
            (
                IngestError::FutureTimestamp(String::new()),
                400,
                "future_timestamp",
            ),
            (IngestError::Before1970(String::new()), 400, "before_1970"),
            (
                IngestError::WrongQuantity(String::new()),
                400,
                "wrong_quantity",
            ),
            (IngestError::WrongUnit(String::new()), 400, "wrong_unit"),
            (IngestError::TooLarge(String::new()), 413, "too_large"),
            (
                IngestError::UnsupportedMediaType(String::new()),
                415,
                "unsupported_media_type",
            ),
            (
                IngestError::UnsupportedEncoding(String::new()),
                415,
                "unsupported_encoding",
            ),
        ];
        for (e, status, reason) in cases {
            assert_eq!(e.kind().http_status(), status, "{e:?}");
            assert_eq!(e.reason(), reason);
        }
    }

    #[test]
    fn invalid_prefixes_the_origin() {
        let e = Value::new(SensorKind::Humidity, 140.0).unwrap_err();
        let e = IngestError::invalid(Origin::Reading(3), e);
        assert_eq!(e.reason(), "out_of_range");
        assert!(
            e.to_string().starts_with("reading 3: humidity value 140"),
            "{e}"
        );
    }

    #[test]
    fn snippet_truncates() {
        assert_eq!(snippet("abc"), "abc");
        assert_eq!(snippet(&"x".repeat(100)).chars().count(), 41);
    }
}
