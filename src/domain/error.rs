use thiserror::Error;

/// Why a piece of outside data could not become a domain value.
///
/// Messages are written for the API client: they name the rule that was broken.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DomainError {
    #[error("invalid sensor name: {0}")]
    InvalidSensorName(String),

    #[error("unknown sensor kind '{0}' (expected 'humidity' or 'temperature')")]
    UnknownSensorKind(String),

    #[error("value must be a finite number, got {0}")]
    NonFinite(f64),

    #[error("{kind} value {value} is outside the valid range {min}..={max} {unit}")]
    OutOfRange {
        kind: &'static str,
        value: f64,
        min: f64,
        max: f64,
        unit: &'static str,
    },

    #[error("timestamp {0} is before 1970-01-01T00:00:00Z")]
    BeforeEpoch(String),

    #[error("timestamp {ts} is more than {max_future_secs} s in the future")]
    TooFarInFuture { ts: String, max_future_secs: i64 },

    #[error("timestamp {0} is after 2262-04-11T23:47:16Z, the last instant nanosecond timestamps can hold")]
    BeyondRepresentable(String),
}

impl DomainError {
    /// Stable short code for metrics and machine-readable error bodies.
    pub fn reason(&self) -> &'static str {
        match self {
            DomainError::InvalidSensorName(_) => "invalid_name",
            DomainError::UnknownSensorKind(_) => "unknown_kind",
            DomainError::NonFinite(_) => "non_finite",
            DomainError::OutOfRange { .. } => "out_of_range",
            DomainError::BeforeEpoch(_) => "before_1970",
            // Both are "too late": the representable limit is only reachable through
            // a clock-independent path (simulator, stored data), never past validate_ts.
            DomainError::TooFarInFuture { .. } | DomainError::BeyondRepresentable(_) => {
                "future_timestamp"
            }
        }
    }
}
