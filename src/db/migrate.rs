//! Schema migrations: numbered plain SQL files in `migrations/`, compiled into the binary,
//! applied in order, each in its own transaction, recorded in `schema_migrations`.
//!
//! Why our own forty lines rather than refinery: we need the run guarded by a PostgreSQL
//! advisory lock so that replicas starting together apply each migration exactly once,
//! we want a checksum so an edited, already-applied file is caught, and it keeps the
//! dependency tree (and the tokio-postgres version) our own.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::DbError;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!("../../migrations/", $file)),
        }
    };
}

/// Every migration, in order. A test checks this list against the files in `migrations/`.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_sensors_and_readings.sql"),
    migration!(2, "0002_registry.sql"),
    migration!(3, "0003_admin_sessions.sql"),
    migration!(4, "0004_model_retention.sql"),
    migration!(5, "0005_run_leases.sql"),
];

/// Arbitrary but fixed key of the advisory lock that serialises migrators.
const MIGRATION_LOCK_KEY: i64 = 0x6879_6772_6f63_6173; // "hygrocas"

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// The highest migration version compiled into this binary.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every pending migration; returns the versions applied by this call.
pub async fn run(client: &mut Client) -> Result<Vec<i32>, DbError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let result = apply_pending(client).await;
    // Unlock even when a migration failed; the session ending would also release it.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply_pending(client: &mut Client) -> Result<Vec<i32>, DbError> {
    // Checked first so a routine start does not log a NOTICE about an existing table.
    let has_table = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get::<_, bool>(0);
    if !has_table {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 checksum   text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
            )
            .await?;
    }
    let rows = client
        .query("SELECT version, name, checksum FROM schema_migrations", &[])
        .await?;
    let done: Vec<(i32, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (version, name, sum) in &done {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            Some(m) if checksum(m.sql) != *sum => {
                return Err(DbError::Migration(format!(
                    "migration {version} ({name}) was changed after it was applied; \
                     add a new migration instead of editing an applied one"
                )))
            }
            Some(_) => {}
            None => {
                return Err(DbError::Migration(format!(
                "the database has migration {version} ({name}), which this binary does not know: \
                     it was migrated by a newer hygrocast"
            )))
            }
        }
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        if done.iter().any(|(v, _, _)| *v == m.version) {
            continue;
        }
        tracing::info!(version = m.version, name = m.name, "applying migration");
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await.map_err(|e| {
            DbError::Migration(format!("migration {} ({}) failed: {e}", m.version, m.name))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .await?;
        tx.commit().await?;
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "versions are 1, 2, 3, ...");
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
