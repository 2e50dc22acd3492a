//! Which parser a request body goes to, chosen by its Content-Type.

use chrono::{DateTime, Utc};

use super::{json, line_protocol, senml, IngestError, Precision, RawReading};
use crate::domain::SensorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: native `{"ts", "value"}` objects.
    Json,
    /// `application/senml+json`: RFC 8428 pack.
    SenMl,
    /// `text/plain`: InfluxDB line protocol (what Telegraf and Influx clients send).
    LineProtocol,
}

impl Format {
    /// Maps a Content-Type header (parameters such as `charset` ignored, case-insensitive).
    /// A missing type is refused rather than guessed: guessing turns a client bug into
    /// confusing parse errors.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Format, IngestError> {
        let essence = content_type
            .and_then(|ct| ct.split(';').next())
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match essence.as_str() {
            "application/json" => Ok(Format::Json),
            "application/senml+json" => Ok(Format::SenMl),
            "text/plain" => Ok(Format::LineProtocol),
            "" => Err(IngestError::UnsupportedMediaType(format!(
                "missing Content-Type; {}",
                Self::SUPPORTED
            ))),
            other => Err(IngestError::UnsupportedMediaType(format!(
                "unsupported Content-Type '{}'; {}",
                super::error::snippet(other),
                Self::SUPPORTED
            ))),
        }
    }

    const SUPPORTED: &'static str =
        "use application/json, application/senml+json or text/plain (line protocol)";

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::SenMl => "application/senml+json",
            Format::LineProtocol => "text/plain; charset=utf-8",
        }
    }
}

/// Parses a decoded body. `precision` only affects line protocol; `received` replaces
/// missing timestamps and anchors SenML relative times.
pub fn parse_body(
    format: Format,
    kind: SensorKind,
    body: &[u8],
    precision: Precision,
    received: DateTime<Utc>,
) -> Result<Vec<RawReading>, IngestError> {
    match format {
        Format::Json => json::parse(body, received),
        Format::SenMl => senml::parse(body, kind, received),
        Format::LineProtocol => line_protocol::parse(body, kind, precision, received),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type(Some("application/json")).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::from_content_type(Some("Application/JSON; charset=utf-8")).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::from_content_type(Some("application/senml+json")).unwrap(),
            Format::SenMl
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; charset=utf-8")).unwrap(),
            Format::LineProtocol
        );
        for f in [Format::Json, Format::SenMl, Format::LineProtocol] {
            assert_eq!(
                Format::from_content_type(Some(f.content_type())).unwrap(),
                f
            );
        }
    }

    #[test]
    fn unsupported_content_types() {
        for ct in [
            None,
            Some(""),
            Some("application/x-www-form-urlencoded"),
            Some("text/csv"),
        ] {
            let e = Format::from_content_type(ct).unwrap_err();
            assert_eq!(e.reason(), "unsupported_media_type", "{ct:?}");
            assert_eq!(e.kind().http_status(), 415);
        }
    }
}
