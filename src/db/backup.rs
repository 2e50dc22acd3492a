//! Backup and restore of the whole database with PostgreSQL's own tools (`pg_dump` and
//! `pg_restore`, custom format): a consistent snapshot taken while `serve` runs, readable by
//! any later hygrocast, which migrates it forward after restoring.
//!
//! The tools run as child processes with the connection of [`Database`] (socket or TCP);
//! a password goes through `PGPASSWORD`, never the command line, where `ps` would show it.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::config::Host;

use super::{embedded, Database, DbError};

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "`{0}` not found on PATH, via `pg_config --bindir` or under /usr/lib/postgresql/*/bin; \
         install PostgreSQL's client tools (Debian/Ubuntu: `apt-get install postgresql-client`)"
    )]
    ToolNotFound(&'static str),
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error(
        "the database already holds {tables} tables: restore only into an empty one (with the \
         private cluster a new database.data_dir, with database.url a newly created database), \
         so that nothing in it is overwritten"
    )]
    NotEmpty { tables: i64 },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for BackupError {
    fn from(e: tokio_postgres::Error) -> Self {
        BackupError::Db(DbError::Postgres(e))
    }
}

/// Writes a custom-format dump of the database to `out` (replaced only once complete).
/// Returns its size in bytes.
pub async fn dump(db: &Database, out: &Path) -> Result<u64, BackupError> {
    let pg_dump = db.tool("pg_dump")?;
    // Written beside the target and renamed, so a failed dump never leaves a truncated
    // file under the name a restore would look for.
    let partial = out.with_extension("partial");
    // Created here, owner-only, before pg_dump writes into it: the copy holds every
    // sensor's token hash and the admin sessions.
    create_private(&partial)?;
    let mut cmd = Command::new(pg_dump);
    cmd.args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(&partial);
    connect_args(db, &mut cmd);
    let ran = run("pg_dump", cmd).await;
    if let Err(e) = ran {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, out).map_err(file_error(out))?;
    let size = std::fs::metadata(out)
        .map(|m| m.len())
        .map_err(file_error(out))?;
    Ok(size)
}

/// An I/O error on `path`, for `map_err`.
fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn create_private(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .map_err(file_error(path))
}

/// Restores a dump made by [`dump`] into the (empty) database, in one transaction: a
/// failure leaves the database as empty as it was. The caller migrates afterwards.
pub async fn restore(db: &Database, from: &Path) -> Result<(), BackupError> {
    std::fs::File::open(from).map_err(file_error(from))?;
    let client = db.pool.get().await.map_err(DbError::from)?;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await?
        .get(0);
    drop(client);
    if tables > 0 {
        return Err(BackupError::NotEmpty { tables });
    }
    let pg_restore = db.tool("pg_restore")?;
    let mut cmd = Command::new(pg_restore);
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
    ]);
    connect_args(db, &mut cmd);
    cmd.arg(from);
    run("pg_restore", cmd).await
}

/// The connection of `db` as libpq options and environment.
fn connect_args(db: &Database, cmd: &mut Command) {
    let cfg = &db.pg_config;
    match cfg.get_hosts().first() {
        Some(Host::Tcp(host)) => {
            cmd.arg(format!("--host={host}"));
        }
        Some(Host::Unix(path)) => {
            cmd.arg(format!("--host={}", path.display()));
        }
        None => {}
    }
    if let Some(port) = cfg.get_ports().first() {
        cmd.arg(format!("--port={port}"));
    }
    if let Some(user) = cfg.get_user() {
        cmd.arg(format!("--username={user}"));
    }
    cmd.arg("--no-password");
    if let Some(dbname) = cfg.get_dbname() {
        cmd.arg(format!("--dbname={dbname}"));
    }
    match cfg.get_password() {
        Some(pw) => {
            cmd.env("PGPASSWORD", String::from_utf8_lossy(pw).as_ref());
        }
        None => {
            cmd.env_remove("PGPASSWORD");
        }
    }
    // Settings of the caller's environment must not redirect the tool elsewhere.
    for var in ["PGSERVICE", "PGHOSTADDR", "PGOPTIONS"] {
        cmd.env_remove(var);
    }
    cmd.env("LC_ALL", "C");
}

async fn run(tool: &'static str, mut cmd: Command) -> Result<(), BackupError> {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| BackupError::Spawn {
            tool,
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|source| BackupError::Spawn { tool, source })?;
    if out.status.success() {
        return Ok(());
    }
    Err(BackupError::ToolFailed {
        tool,
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Where a PostgreSQL client tool is: beside the private cluster's server (the same
/// version, so it can read it), else on PATH, via `pg_config`, or the newest under
/// /usr/lib/postgresql.
pub(super) fn find_tool(
    name: &'static str,
    cluster_bindir: Option<&Path>,
) -> Result<PathBuf, BackupError> {
    if let Some(dir) = cluster_bindir {
        if dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| d.join(name).is_file()) {
            return Ok(dir.join(name));
        }
    }
    embedded::newest_bindir_with(name)
        .map(|dir| dir.join(name))
        .ok_or(BackupError::ToolNotFound(name))
}
