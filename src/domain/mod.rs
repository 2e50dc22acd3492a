//! Domain types for hygrocast ingestion.
//!
//! Every type here is built through a checking constructor, so code that holds a
//! `SensorName`, `Value` or `Reading` never has to re-check it: an invalid one cannot exist.

mod error;
mod reading;
mod sensor;
mod time;
mod token;
mod value;

pub use error::DomainError;
pub use reading::Reading;
pub use sensor::{SensorKind, SensorName};
pub use time::validate_ts;
pub use token::{token_matches, Token};
pub use value::Value;
