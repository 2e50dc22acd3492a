//! All-or-nothing batch validation.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use super::{IngestError, RawReading};
use crate::domain::{validate_ts, Reading, SensorKind, Value};

/// A batch that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedBatch {
    /// Valid readings in body order, one per distinct timestamp.
    pub readings: Vec<Reading>,
    /// Readings dropped because an earlier reading in the same batch had the same
    /// timestamp. Duplicates *across* batches are the database's job (unique key on
    /// sensor + ts, `ON CONFLICT DO NOTHING`).
    pub duplicates: usize,
}

/// Turns parsed readings into validated ones, or refuses the whole batch.
///
/// All-or-nothing, because a half-stored batch leaves the client unable to tell what to
/// resend; the error names the first bad reading's index or line so it can be fixed.
/// Within the batch the first reading for a timestamp wins and later ones are counted
/// as duplicates (even if their values differ: a retry of the same sample must not
/// fail, and "first wins" matches the database's ON CONFLICT DO NOTHING).
/// Every reading, duplicates included, must be valid.
pub fn validate_batch(
    kind: SensorKind,
    raw: Vec<RawReading>,
    now: DateTime<Utc>,
    max_future: Duration,
    max_batch: usize,
) -> Result<ValidatedBatch, IngestError> {
    if raw.len() > max_batch {
        return Err(IngestError::TooLarge(format!(
            "batch has {} readings; the limit is {max_batch}",
            raw.len()
        )));
    }
    let mut seen = HashSet::with_capacity(raw.len());
    let mut readings = Vec::with_capacity(raw.len());
    let mut duplicates = 0;
    for r in raw {
        let value = Value::new(kind, r.value).map_err(|e| IngestError::invalid(r.origin, e))?;
        validate_ts(r.ts, now, max_future).map_err(|e| IngestError::invalid(r.origin, e))?;
        let reading = Reading::new(r.ts, value).map_err(|e| IngestError::invalid(r.origin, e))?;
        // Dedupe on the reading's (µs-truncated) time, the same key the database uses.
        if seen.insert(reading.ts()) {
            readings.push(reading);
        } else {
            duplicates += 1;
        }
    }
    if duplicates > 0 {
        tracing::debug!(
            duplicates,
            kept = readings.len(),
            "dropped in-batch duplicate timestamps"
        );
    }
    Ok(ValidatedBatch {
        readings,
        duplicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Origin;
    use chrono::TimeZone;

    const H: SensorKind = SensorKind::Humidity;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn raw(secs_before_now: i64, value: f64, i: usize) -> RawReading {
        RawReading {
            ts: now() - Duration::seconds(secs_before_now),
            value,
            origin: Origin::Reading(i),
        }
    }

    fn run(raw: Vec<RawReading>) -> Result<ValidatedBatch, IngestError> {
        validate_batch(H, raw, now(), Duration::seconds(300), 100)
    }

    #[test]
    fn valid_batch_keeps_order() {
        let b = run(vec![raw(60, 50.0, 0), raw(0, 51.0, 1), raw(120, 49.0, 2)]).unwrap();
        let values: Vec<f64> = b.readings.iter().map(|r| r.value()).collect();
        assert_eq!(values, vec![50.0, 51.0, 49.0]);
        assert_eq!(b.duplicates, 0);
        assert!(run(vec![]).unwrap().readings.is_empty());
    }

    #[test]
    fn duplicates_keep_first() {
        let b = run(vec![
            raw(60, 50.0, 0),
            raw(60, 99.0, 1),
            raw(0, 1.0, 2),
            raw(60, 50.0, 3),
        ])
        .unwrap();
        assert_eq!(b.readings.len(), 2);
        assert_eq!(b.readings[0].value(), 50.0);
        assert_eq!(b.duplicates, 2);
    }

    #[test]
    fn first_bad_reading_fails_the_batch() {
        let e = run(vec![raw(0, 50.0, 0), raw(1, 140.0, 1), raw(2, f64::NAN, 2)]).unwrap_err();
        assert_eq!(e.reason(), "out_of_range");
        assert!(e.to_string().starts_with("reading 1: "), "{e}");

        let e = run(vec![raw(0, f64::INFINITY, 0)]).unwrap_err();
        assert_eq!(e.reason(), "non_finite");

        let e = run(vec![raw(0, 50.0, 0), raw(-301, 50.0, 1)]).unwrap_err();
        assert_eq!(e.reason(), "future_timestamp");
        assert!(e.to_string().starts_with("reading 1: timestamp"), "{e}");

        let old = RawReading {
            ts: DateTime::UNIX_EPOCH - Duration::seconds(1),
            value: 50.0,
            origin: Origin::Line(7),
        };
        let e = run(vec![old]).unwrap_err();
        assert_eq!(e.reason(), "before_1970");
        assert!(e.to_string().starts_with("line 7: "), "{e}");
    }

    #[test]
    fn sub_microsecond_differences_are_duplicates() {
        let base = now() - Duration::seconds(10);
        let at = |ns: i64, i: usize| RawReading {
            ts: base + Duration::nanoseconds(ns),
            value: 50.0,
            origin: Origin::Line(i),
        };
        let b = run(vec![at(0, 1), at(999, 2), at(1000, 3)]).unwrap();
        assert_eq!(b.readings.len(), 2);
        assert_eq!(b.duplicates, 1);
    }

    #[test]
    fn invalid_duplicate_still_fails() {
        let e = run(vec![raw(0, 50.0, 0), raw(0, 150.0, 1)]).unwrap_err();
        assert_eq!(e.reason(), "out_of_range");
    }

    #[test]
    fn batch_size_limit() {
        let batch: Vec<_> = (0..101).map(|i| raw(i, 50.0, i as usize)).collect();
        let e = run(batch).unwrap_err();
        assert_eq!(e.reason(), "too_large");
        assert_eq!(e.to_string(), "batch has 101 readings; the limit is 100");
        let batch: Vec<_> = (0..100).map(|i| raw(i, 50.0, i as usize)).collect();
        assert_eq!(run(batch).unwrap().readings.len(), 100);
    }
}
