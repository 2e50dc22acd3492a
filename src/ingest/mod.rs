//! Ingestion logic that needs no database: decode the body, parse one of three wire
//! formats into `RawReading`s, then validate the batch all-or-nothing into `Reading`s.
//!
//! Flow: `gzip::decode_body` → `format::parse_body` (json / senml / line_protocol)
//! → `validate::validate_batch`; `pipeline::process` runs all three.

mod error;
pub mod format;
pub mod gzip;
pub mod json;
pub mod line_protocol;
pub mod pipeline;
mod raw;
pub mod senml;
mod timeconv;
pub mod validate;

pub use error::{IngestError, IngestErrorKind};
pub use format::{parse_body, Format};
pub use gzip::decode_body;
pub use line_protocol::Precision;
pub use pipeline::{process, IngestLimits};
pub use raw::{Origin, RawReading};
pub use validate::{validate_batch, ValidatedBatch};
