//! `hygrocast serve`: the long-running process.

use std::sync::Arc;

use crate::cli::CliError;
use crate::config::Settings;
use crate::db::{Database, Role};
use crate::scheduler::{Background, Scheduler};
use crate::web::Application;

pub async fn run(settings: Arc<Settings>) -> Result<(), CliError> {
    let db = Database::open(&settings.database, Role::Serve).await?;
    let result = serve_with(&settings, &db).await;
    db.close().await;
    result
}

async fn serve_with(settings: &Arc<Settings>, db: &Database) -> Result<(), CliError> {
    let applied = db.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let app = Application::build(settings.clone(), db.pool.clone())
        .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", settings.server.bind)))?;
    let background = Background::new(db.pool.clone(), settings.clone(), app.forecasts());
    let scheduler = Scheduler::start(background)
        .await
        .map_err(CliError::Other)?;
    tracing::info!(bind = %settings.server.bind, port = app.port(), "hygrocast is serving");
    let served = app.run_until_signal().await;
    tracing::info!("HTTP server stopped");
    scheduler.shutdown().await;
    served?;
    Ok(())
}
