//! The database: a deadpool-postgres pool, the migrations, and (with no `database.url`)
//! the private PostgreSQL cluster that hygrocast runs itself.

pub mod backup;
pub mod embedded;
pub mod migrate;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::{redact, DatabaseSettings};
use embedded::{EmbeddedCluster, EmbeddedError, ServeLock};

/// Name of the application database inside a private cluster.
pub const EMBEDDED_DBNAME: &str = "hygrocast";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database pool: {0}")]
    Build(String),
    #[error("invalid database.url `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("{0}")]
    Migration(String),
}

/// Who is opening the database decides who owns a private cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `hygrocast serve`: claims the data directory (one serve per directory), starts the
    /// cluster if needed and stops it on shutdown.
    Serve,
    /// Any other command: uses a running cluster, or runs one for its own duration.
    Command,
}

/// An open database: the pool, and the private cluster when there is one.
pub struct Database {
    pub pool: Pool,
    pub pg_config: tokio_postgres::Config,
    cluster: Option<EmbeddedCluster>,
    serve_lock: Option<ServeLock>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field(
                "embedded",
                &self.cluster.as_ref().map(|c| c.data_dir().to_path_buf()),
            )
            .finish()
    }
}

/// Builds a pool; no connection is made until one is needed.
pub fn pool(
    pg_config: tokio_postgres::Config,
    settings: &DatabaseSettings,
) -> Result<Pool, DbError> {
    let manager = Manager::from_config(
        pg_config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let timeout = Some(Duration::from_secs(settings.connect_timeout_secs.max(1)));
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Build(e.to_string()))
}

impl Database {
    /// Opens the configured database: `database.url` if set, else the private cluster.
    pub async fn open(settings: &DatabaseSettings, role: Role) -> Result<Self, DbError> {
        if !settings.url.is_empty() {
            let mut pg_config =
                tokio_postgres::Config::from_str(&settings.url).map_err(|e| DbError::Url {
                    url: redact(&settings.url),
                    message: e.to_string(),
                })?;
            pg_config.connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)));
            if pg_config.get_application_name().is_none() {
                pg_config.application_name("hygrocast");
            }
            return Ok(Self {
                pool: pool(pg_config.clone(), settings)?,
                pg_config,
                cluster: None,
                serve_lock: None,
            });
        }
        let data_dir = settings.data_dir.clone();
        let user = settings.embedded_user.clone();
        let (cluster, serve_lock) = tokio::task::spawn_blocking(move || -> Result<_, DbError> {
            let serve_lock = match role {
                Role::Serve => Some(ServeLock::acquire(&data_dir)?),
                Role::Command => None,
            };
            let mut cluster = EmbeddedCluster::new(&data_dir, &user)?;
            cluster.ensure_running()?;
            Ok((cluster, serve_lock))
        })
        .await
        .map_err(|e| DbError::Build(format!("start-up task failed: {e}")))??;
        create_database_if_missing(&cluster.pg_config("postgres"), EMBEDDED_DBNAME).await?;
        let pg_config = cluster.pg_config(EMBEDDED_DBNAME);
        Ok(Self {
            pool: pool(pg_config.clone(), settings)?,
            pg_config,
            cluster: Some(cluster),
            serve_lock,
        })
    }

    /// A PostgreSQL client tool (`pg_dump`, `pg_restore`) for this database: the private
    /// cluster's own version when there is one.
    pub fn tool(&self, name: &'static str) -> Result<std::path::PathBuf, backup::BackupError> {
        backup::find_tool(name, self.cluster.as_ref().map(|c| c.bindir()))
    }

    /// Applies pending migrations on a dedicated connection.
    pub async fn migrate(&self) -> Result<Vec<i32>, DbError> {
        let (mut client, conn) = self.pg_config.connect(NoTls).await?;
        let conn = tokio::spawn(conn);
        let result = migrate::run(&mut client).await;
        drop(client);
        let _ = conn.await;
        result
    }

    /// Closes the pool and stops a private cluster if this process owns it: `serve` always
    /// does; another command only if it started the cluster and no `serve` took it over.
    pub async fn close(mut self) {
        self.pool.close();
        let Some(mut cluster) = self.cluster.take() else {
            return;
        };
        let owns = self.serve_lock.is_some()
            || (cluster.started_here() && !ServeLock::is_held(cluster.data_dir()));
        drop(self.serve_lock.take());
        if !owns {
            return;
        }
        let result = tokio::task::spawn_blocking(move || cluster.stop()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not stop private PostgreSQL"),
            Err(e) => tracing::error!(error = %e, "could not stop private PostgreSQL"),
        }
    }
}

/// Creates `dbname` through a maintenance connection unless it exists.
pub async fn create_database_if_missing(
    maintenance: &tokio_postgres::Config,
    dbname: &str,
) -> Result<(), DbError> {
    let (client, conn) = maintenance.connect(NoTls).await?;
    let conn = tokio::spawn(conn);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await?
        .is_some();
    if !exists {
        let sql = format!("CREATE DATABASE {}", quote_ident(dbname));
        if let Err(e) = client.batch_execute(&sql).await {
            // Another process may have created it a moment ago.
            let code = e.code();
            if code != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                && code != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            {
                return Err(e.into());
            }
        }
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
