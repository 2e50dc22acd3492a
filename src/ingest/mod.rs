//! Ingestion: decode the body, parse one of three wire formats into `RawReading`s,
//! validate the batch all-or-nothing into `Reading`s, then write it through the
//! group-commit batcher.
//!
//! Pure part (no database): `gzip::decode_body` → `format::parse_body` (json / senml /
//! line_protocol) → `validate::validate_batch`; `pipeline::process` runs all three.
//! Database part: `auth` (token → sensor) and `batcher` (group commit).

pub mod auth;
pub mod batcher;
mod error;
pub mod format;
pub mod gzip;
pub mod json;
pub mod line_protocol;
pub mod pipeline;
mod raw;
pub mod senml;
pub(crate) mod timeconv;
pub mod validate;

pub use error::{IngestError, IngestErrorKind};
pub use format::{parse_body, Format};
pub use gzip::decode_body;
pub use line_protocol::Precision;
pub use pipeline::{process, IngestLimits};
pub use raw::{Origin, RawReading};
pub use validate::{validate_batch, ValidatedBatch};
