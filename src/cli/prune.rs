//! `hygrocast prune`: what the daily prune job does, now.

use std::sync::Arc;

use chrono::Utc;

use super::{with_database, CliError};
use crate::config::Settings;
use crate::registry::retention;

pub async fn run(settings: Arc<Settings>) -> Result<(), CliError> {
    with_database(&settings.clone(), |db| async move {
        let report = retention::prune(&db.pool, &settings, Utc::now()).await?;
        println!("{report}");
        Ok(())
    })
    .await
}
