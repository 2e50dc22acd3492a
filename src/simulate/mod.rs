//! A realistic humidity sensor, for demos, load tests and end-to-end tests, plus
//! encoders for the three ingestion wire formats.

pub mod encode;
pub mod generator;

pub use encode::{to_json_batch, to_line_protocol, to_senml};
pub use generator::HumiditySimulator;
