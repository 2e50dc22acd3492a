use chrono::{DateTime, Utc};
use serde::Serialize;

use super::time::fmt_ts;
use super::{DomainError, SensorKind, Value};

/// One validated reading: a timestamp from 1970 up to the end of the nanosecond range
/// and a finite in-range value.
///
/// Timestamps are truncated to whole microseconds on construction: that is what
/// PostgreSQL `timestamptz` stores (tokio-postgres truncates the same way), so two readings
/// are equal here exactly when they would collide on the database's (sensor, ts) key.
///
/// Whether the timestamp is too far in the future depends on the clock, so that is
/// checked at ingestion (`validate_ts`) rather than here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reading {
    ts: DateTime<Utc>,
    #[serde(serialize_with = "ser_value")]
    value: Value,
}

fn ser_value<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(v.get())
}

impl Reading {
    pub fn new(ts: DateTime<Utc>, value: Value) -> Result<Reading, DomainError> {
        if ts < DateTime::UNIX_EPOCH {
            return Err(DomainError::BeforeEpoch(fmt_ts(ts)));
        }
        // Floor to µs; cannot fail for ts >= 1970 within chrono's range, but never panic.
        let ts = DateTime::from_timestamp_micros(ts.timestamp_micros()).unwrap_or(ts);
        // Keeps every reading expressible as a line-protocol nanosecond timestamp.
        if ts.timestamp_nanos_opt().is_none() {
            return Err(DomainError::BeyondRepresentable(fmt_ts(ts)));
        }
        Ok(Reading { ts, value })
    }

    /// Convenience: check the value for `kind`, then build the reading.
    pub fn from_parts(
        kind: SensorKind,
        ts: DateTime<Utc>,
        value: f64,
    ) -> Result<Reading, DomainError> {
        Reading::new(ts, Value::new(kind, value)?)
    }

    pub fn ts(&self) -> DateTime<Utc> {
        self.ts
    }

    pub fn value(&self) -> f64 {
        self.value.get()
    }

    pub fn kind(&self) -> SensorKind {
        self.value.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn builds_and_serializes() {
        let ts = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let r = Reading::from_parts(SensorKind::Humidity, ts, 54.2).unwrap();
        assert_eq!(r.ts(), ts);
        assert_eq!(r.value(), 54.2);
        assert_eq!(r.kind(), SensorKind::Humidity);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ts":"2026-11-24T10:00:00Z","value":54.2}"#
        );
    }

    #[test]
    fn truncates_to_microseconds() {
        let ts = DateTime::from_timestamp_nanos(1_764_000_000_123_456_789);
        let r = Reading::from_parts(SensorKind::Humidity, ts, 1.0).unwrap();
        assert_eq!(
            r.ts().timestamp_nanos_opt(),
            Some(1_764_000_000_123_456_000)
        );
    }

    #[test]
    fn rejects_bad_parts() {
        let ts = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap();
        let err = Reading::from_parts(SensorKind::Humidity, ts, 50.0).unwrap_err();
        assert_eq!(err.reason(), "before_1970");
        let ts = Utc.with_ymd_and_hms(2263, 1, 1, 0, 0, 0).unwrap();
        let err = Reading::from_parts(SensorKind::Humidity, ts, 50.0).unwrap_err();
        assert_eq!(err.reason(), "future_timestamp");
        let ts = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(Reading::from_parts(SensorKind::Humidity, ts, 140.0).is_err());
    }
}
