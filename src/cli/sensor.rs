//! `hygrocast sensor add|list|rotate-token|remove`: managing sensors and their tokens.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;

use crate::cli::{with_database, CliError};
use crate::config::Settings;
use crate::domain::{SensorKind, SensorName};
use crate::sensors::{self, NewSensor, SensorEdit, SensorSummary};

#[derive(Debug, Subcommand)]
pub enum SensorCommand {
    /// Create a sensor and print its token (shown only this once).
    Add {
        /// 1–64 characters of a-z, 0-9, '.', '_' and '-'.
        #[arg(long, value_parser = parse_name)]
        name: SensorName,
        /// What it measures: humidity or temperature.
        #[arg(long, default_value = "humidity", value_parser = parse_kind)]
        kind: SensorKind,
        /// Unit of its readings (default: the kind's, %RH or °C).
        #[arg(long)]
        unit: Option<String>,
        /// Free text such as "greenhouse 2, north wall".
        #[arg(long)]
        location: Option<String>,
        /// Print only the token, on one line (for scripts).
        #[arg(long, short)]
        quiet: bool,
    },
    /// List sensors with their reading count and last reading.
    List,
    /// Give a sensor a new token; the old one stops working at once.
    RotateToken {
        #[arg(value_parser = parse_name)]
        name: SensorName,
        /// Print only the new token, on one line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Rename a sensor or change its location. Its token, readings and models stay with it.
    Edit {
        #[arg(value_parser = parse_name)]
        name: SensorName,
        /// A new name: the sensor's pages and API URLs change, its token does not.
        #[arg(long, value_parser = parse_name)]
        rename: Option<SensorName>,
        /// A new location (free text); an empty one clears it.
        #[arg(long)]
        location: Option<String>,
    },
    /// Remove a sensor. Refused while it has readings, unless --purge.
    Remove {
        #[arg(value_parser = parse_name)]
        name: SensorName,
        /// Delete its readings too.
        #[arg(long)]
        purge: bool,
    },
}

fn parse_name(s: &str) -> Result<SensorName, String> {
    SensorName::parse(s).map_err(|e| e.to_string())
}

fn parse_kind(s: &str) -> Result<SensorKind, String> {
    s.parse()
        .map_err(|e: crate::domain::DomainError| e.to_string())
}

impl From<sensors::SensorError> for CliError {
    fn from(e: sensors::SensorError) -> Self {
        CliError::Other(e.to_string())
    }
}

pub async fn run(command: SensorCommand, settings: Arc<Settings>) -> Result<(), CliError> {
    with_database(&settings, |db| async move {
        let mut client = db
            .pool
            .get()
            .await
            .map_err(|e| CliError::Other(format!("database: {e}")))?;
        match command {
            SensorCommand::Add {
                name,
                kind,
                unit,
                location,
                quiet,
            } => {
                let new = NewSensor {
                    name,
                    kind,
                    unit,
                    location,
                };
                let (sensor, token) = sensors::create(&**client, &new).await?;
                if quiet {
                    println!("{}", token.expose());
                } else {
                    println!(
                        "created sensor {} ({}, {})",
                        sensor.name, sensor.kind, sensor.unit
                    );
                    println!("token: {}", token.expose());
                    println!("Keep the token now: it is stored only as a hash and cannot be shown again.");
                }
            }
            SensorCommand::List => {
                let list = sensors::list(&**client).await?;
                print!("{}", render_table(&list));
            }
            SensorCommand::RotateToken { name, quiet } => {
                let token = sensors::rotate_token(&**client, &name).await?;
                if quiet {
                    println!("{}", token.expose());
                } else {
                    println!("new token for {name}: {}", token.expose());
                    println!("The old token no longer works.");
                }
            }
            SensorCommand::Edit {
                name,
                rename,
                location,
            } => {
                if rename.is_none() && location.is_none() {
                    return Err(CliError::Other(
                        "nothing to change: give --rename NEW_NAME and/or --location TEXT".into(),
                    ));
                }
                let edit = SensorEdit {
                    rename,
                    location: location.map(|l| Some(l.trim().to_owned()).filter(|l| !l.is_empty())),
                };
                let sensor = sensors::edit(&**client, &name, &edit).await?;
                if sensor.name != name {
                    println!("renamed sensor {name} to {}; its token is unchanged", sensor.name);
                }
                println!(
                    "sensor {}: location {}",
                    sensor.name,
                    sensor.location.as_deref().unwrap_or("(none)")
                );
            }
            SensorCommand::Remove { name, purge } => {
                let deleted = sensors::remove(&mut client, &name, purge).await?;
                if deleted > 0 {
                    println!("removed sensor {name} and its {deleted} readings");
                } else {
                    println!("removed sensor {name}");
                }
            }
        }
        Ok(())
    })
    .await
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A plain text table with a header, columns padded to their widest cell.
pub fn render_table(list: &[SensorSummary]) -> String {
    let header = [
        "NAME",
        "KIND",
        "UNIT",
        "READINGS",
        "LAST READING",
        "CREATED",
        "LOCATION",
    ];
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|s| {
            [
                s.sensor.name.to_string(),
                s.sensor.kind.to_string(),
                s.sensor.unit.clone(),
                s.readings.to_string(),
                s.last_reading.map_or_else(|| "-".to_owned(), fmt_time),
                fmt_time(s.sensor.created_at),
                s.sensor.location.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
    if rows.is_empty() {
        out.push_str("(no sensors; add one with `hygrocast sensor add --name NAME`)\n");
    }
    out
}
