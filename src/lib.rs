//! hygrocast: one binary that ingests humidity readings, forecasts them per sensor,
//! keeps the models honest over time and shows it all on server-rendered pages.
//!
//! The binary is a thin shell over this library so that tests can drive every part of it.
//! See ARCHITECTURE.md for the map.

pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod forecast;
pub mod ingest;
pub mod metrics;
pub mod registry;
pub mod scheduler;
pub mod sensors;
pub mod simulate;
pub mod telemetry;
// The page components live at the top level (`templates/`), as the design lays out.
#[path = "../templates/mod.rs"]
pub mod templates;
pub mod version;
pub mod web;
