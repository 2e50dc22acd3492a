use std::fmt;

use chrono::{DateTime, Utc};

/// Where a reading came from in the request body, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// 0-based index into a native JSON array (a single object is reading 0).
    Reading(usize),
    /// 0-based index of a record in a SenML pack.
    Record(usize),
    /// 1-based line number in a line-protocol body.
    Line(usize),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Reading(i) => write!(f, "reading {i}"),
            Origin::Record(i) => write!(f, "record {i}"),
            Origin::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// A syntactically valid but not yet validated reading, as a parser produced it.
/// A missing timestamp has already been replaced by the receipt time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawReading {
    pub ts: DateTime<Utc>,
    pub value: f64,
    pub origin: Origin,
}
