//! The whole pure part of an ingest request in one call: decode → parse → validate.

use chrono::{DateTime, Duration, Utc};

use super::{
    decode_body, parse_body, validate_batch, Format, IngestError, Precision, ValidatedBatch,
};
use crate::domain::SensorKind;

/// Limits from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Maximum decoded body size in bytes.
    pub max_body: usize,
    /// Maximum readings per request.
    pub max_batch: usize,
    /// Tolerated clock skew for timestamps ahead of the server.
    pub max_future: Duration,
}

/// Runs one request body through decoding, parsing and validation.
///
/// `now` is both the receipt time (for missing/relative timestamps) and the clock for the
/// future check. `precision` is the raw `?precision=` query value (line protocol only).
pub fn process(
    kind: SensorKind,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    precision: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    limits: &IngestLimits,
) -> Result<ValidatedBatch, IngestError> {
    // Media type first: an unsupported type is a 415 whatever the body holds.
    let format = Format::from_content_type(content_type)?;
    let precision = Precision::from_param(precision)?;
    let body = decode_body(body, content_encoding, limits.max_body)?;
    let raw = parse_body(format, kind, &body, precision, now)?;
    validate_batch(kind, raw, now, limits.max_future, limits.max_batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    const LIMITS: IngestLimits = IngestLimits {
        max_body: 10_000,
        max_batch: 10,
        max_future: Duration::seconds(300),
    };

    #[test]
    fn end_to_end_each_format() {
        let h = SensorKind::Humidity;
        let b = process(
            h,
            Some("application/json"),
            None,
            None,
            br#"[{"value": 50}]"#,
            now(),
            &LIMITS,
        )
        .unwrap();
        assert_eq!(b.readings[0].ts(), now());
        let b = process(
            h,
            Some("application/senml+json"),
            None,
            None,
            br#"[{"n": "humidity", "v": 50, "t": -60}]"#,
            now(),
            &LIMITS,
        )
        .unwrap();
        assert_eq!(b.readings[0].ts(), now() - Duration::seconds(60));
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(b"m value=50 1764000000\nm value=50 1764000000\n")
            .unwrap();
        let gz = gz.finish().unwrap();
        let b = process(
            h,
            Some("text/plain"),
            Some("gzip"),
            Some("s"),
            &gz,
            now(),
            &LIMITS,
        )
        .unwrap();
        assert_eq!(b.readings.len(), 1);
        assert_eq!(b.duplicates, 1);
    }

    #[test]
    fn errors_surface_with_their_class() {
        let h = SensorKind::Humidity;
        let e = process(h, Some("text/csv"), None, None, b"", now(), &LIMITS).unwrap_err();
        assert_eq!(e.kind().http_status(), 415);
        let e = process(h, Some("text/plain"), Some("br"), None, b"", now(), &LIMITS).unwrap_err();
        assert_eq!(e.reason(), "unsupported_encoding");
        let e = process(h, Some("text/plain"), None, Some("h"), b"", now(), &LIMITS).unwrap_err();
        assert_eq!(e.kind().http_status(), 400);
        let big = vec![b' '; 10_001];
        let e = process(h, Some("text/plain"), None, None, &big, now(), &LIMITS).unwrap_err();
        assert_eq!(e.kind().http_status(), 413);
        let e = process(
            h,
            Some("application/json"),
            None,
            None,
            br#"{"value": 101}"#,
            now(),
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(e.reason(), "out_of_range");
    }
}
