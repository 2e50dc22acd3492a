//! `hygrocast backup` and `hygrocast restore`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{with_database_as, CliError};
use crate::config::Settings;
use crate::db::backup::{self, BackupError};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (replaced only once the copy is complete).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `hygrocast backup`.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
}

impl From<BackupError> for CliError {
    fn from(e: BackupError) -> Self {
        CliError::Other(e.to_string())
    }
}

pub async fn backup(settings: Arc<Settings>, args: BackupArgs) -> Result<(), CliError> {
    with_database_as(&settings, false, |db| async move {
        let (sensors, readings) = totals(&db).await?;
        let bytes = backup::dump(&db, &args.out).await?;
        println!(
            "wrote {} ({}): {sensors} sensors, {readings} readings, with their models and history",
            args.out.display(),
            size(bytes)
        );
        Ok(())
    })
    .await
}

pub async fn restore(settings: Arc<Settings>, args: RestoreArgs) -> Result<(), CliError> {
    with_database_as(&settings, false, |db| async move {
        backup::restore(&db, &args.from).await?;
        let applied = db.migrate().await?;
        let (sensors, readings) = totals(&db).await?;
        println!(
            "restored {}: {sensors} sensors, {readings} readings{}",
            args.from.display(),
            if applied.is_empty() {
                String::new()
            } else {
                format!("; then applied migrations {applied:?}")
            }
        );
        Ok(())
    })
    .await
}

/// Sensors and readings in the database, for the report (0 and 0 before any migration).
async fn totals(db: &crate::db::Database) -> Result<(i64, i64), CliError> {
    let client = db
        .pool
        .get()
        .await
        .map_err(|e| CliError::Other(format!("database pool: {e}")))?;
    let has_tables = client
        .query_one("SELECT to_regclass('readings') IS NOT NULL", &[])
        .await
        .map_err(crate::db::DbError::from)?
        .get::<_, bool>(0);
    if !has_tables {
        return Ok((0, 0));
    }
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM sensors), (SELECT count(*) FROM readings)",
            &[],
        )
        .await
        .map_err(crate::db::DbError::from)?;
    Ok((row.get(0), row.get(1)))
}

fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB * KIB {
        format!("{:.0} KiB", (b / KIB).ceil())
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    }
}
