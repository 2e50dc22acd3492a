use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::DomainError;

/// Checks a reading's timestamp against the clock.
///
/// Readings before the unix epoch are certainly a sensor with an unset clock; readings
/// far in the future would sit ahead of every forecast and poison model training.
/// `max_future` is a tolerance for clock skew between sensor and server.
pub fn validate_ts(
    ts: DateTime<Utc>,
    now: DateTime<Utc>,
    max_future: Duration,
) -> Result<(), DomainError> {
    if ts < DateTime::UNIX_EPOCH {
        return Err(DomainError::BeforeEpoch(fmt_ts(ts)));
    }
    // checked_add: `now + max_future` may overflow for absurd configuration values;
    // treat overflow as "no future limit" rather than panicking.
    if let Some(limit) = now.checked_add_signed(max_future) {
        if ts > limit {
            return Err(DomainError::TooFarInFuture {
                ts: fmt_ts(ts),
                max_future_secs: max_future.num_seconds(),
            });
        }
    }
    Ok(())
}

pub(crate) fn fmt_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
    }

    #[test]
    fn accepts_past_and_epoch_and_small_future() {
        let max = Duration::seconds(300);
        assert!(validate_ts(DateTime::UNIX_EPOCH, now(), max).is_ok());
        assert!(validate_ts(now() - Duration::days(400), now(), max).is_ok());
        assert!(validate_ts(now() + Duration::seconds(300), now(), max).is_ok());
    }

    #[test]
    fn rejects_before_1970() {
        let ts = DateTime::UNIX_EPOCH - Duration::nanoseconds(1);
        let err = validate_ts(ts, now(), Duration::seconds(300)).unwrap_err();
        assert_eq!(err.reason(), "before_1970");
        assert!(err.to_string().contains("before 1970-01-01"), "{err}");
    }

    #[test]
    fn rejects_far_future_with_distinct_message() {
        let ts = now() + Duration::seconds(301);
        let err = validate_ts(ts, now(), Duration::seconds(300)).unwrap_err();
        assert_eq!(err.reason(), "future_timestamp");
        assert_eq!(
            err.to_string(),
            "timestamp 2026-11-24T10:05:01Z is more than 300 s in the future"
        );
    }

    #[test]
    fn huge_tolerance_does_not_panic() {
        assert!(validate_ts(now(), DateTime::<Utc>::MAX_UTC, Duration::MAX).is_ok());
    }
}
