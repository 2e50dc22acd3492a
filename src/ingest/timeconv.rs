//! Unix-seconds numbers (JSON `ts`, SenML times) to instants.
//!
//! Fractional seconds are rounded to whole microseconds: an f64 holding ~1.8e9 s has a
//! resolution of ~0.24 µs, so finer digits are noise, and PostgreSQL `timestamptz`
//! stores microseconds anyway. Rounding also makes encode→parse round trips exact.

use chrono::{DateTime, Utc};

/// Seconds → whole microseconds, or None if not finite or beyond i64 microseconds.
pub(crate) fn secs_to_micros(secs: f64) -> Option<i64> {
    if !secs.is_finite() {
        return None;
    }
    // Just inside ±2^63: `as i64` would saturate silently, we want to reject instead.
    const LIMIT: f64 = 9.223_372_036_854_775e18;
    let us = (secs * 1e6).round();
    if (-LIMIT..LIMIT).contains(&us) {
        Some(us as i64)
    } else {
        None
    }
}

pub(crate) fn unix_secs(secs: f64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(secs_to_micros(secs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_microsecond_rounding() {
        let t = unix_secs(1_764_000_000.123_456).unwrap();
        assert_eq!(t.timestamp_micros(), 1_764_000_000_123_456);
        assert_eq!(unix_secs(0.0).unwrap(), DateTime::UNIX_EPOCH);
        assert_eq!(unix_secs(-1.5).unwrap().timestamp_micros(), -1_500_000);
    }

    #[test]
    fn rejects_unrepresentable() {
        assert!(unix_secs(f64::NAN).is_none());
        assert!(unix_secs(f64::INFINITY).is_none());
        assert!(unix_secs(1e300).is_none());
        assert!(unix_secs(-1e300).is_none());
        // In i64 micros but outside chrono's range.
        assert!(unix_secs(9e12).is_none());
    }
}
