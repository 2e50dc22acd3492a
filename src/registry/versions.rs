//! Model versions, the champion of each sensor, and the promotion history.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::GenericClient;

use super::RegistryError;

/// A model version without its (large) serialised model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionRecord {
    pub id: i64,
    pub sensor: String,
    pub version: i32,
    pub run_id: i64,
    pub algorithm: String,
    pub baseline: bool,
    pub format_version: i32,
    pub smartcore_version: String,
    pub feature_spec_version: i32,
    pub metrics: serde_json::Value,
    pub mase_1_24: Option<f64>,
    pub status: String,
    pub status_reason: String,
    pub created_at: DateTime<Utc>,
    /// When retention deleted the fitted model (`retention.models_kept`); such a version
    /// keeps its record but can no longer be promoted.
    pub model_pruned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PromotionRecord {
    pub id: i64,
    pub sensor: String,
    pub from_version: Option<i32>,
    pub to_version: i32,
    pub kind: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

const VERSION_COLUMNS: &str = "v.id, s.name, v.version, v.run_id, v.algorithm, v.baseline, v.format_version, \
     v.smartcore_version, v.feature_spec_version, v.metrics, v.mase_1_24, v.status, v.status_reason, v.created_at, \
     v.model_pruned_at";

fn version_from_row(row: &tokio_postgres::Row) -> VersionRecord {
    VersionRecord {
        id: row.get(0),
        sensor: row.get(1),
        version: row.get(2),
        run_id: row.get(3),
        algorithm: row.get(4),
        baseline: row.get(5),
        format_version: row.get(6),
        smartcore_version: row.get(7),
        feature_spec_version: row.get(8),
        metrics: row.get(9),
        mase_1_24: row.get(10),
        status: row.get(11),
        status_reason: row.get(12),
        created_at: row.get(13),
        model_pruned_at: row.get(14),
    }
}

pub async fn sensor_id(client: &impl GenericClient, name: &str) -> Result<i64, RegistryError> {
    client
        .query_opt("SELECT id FROM sensors WHERE name = $1", &[&name])
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| RegistryError::UnknownSensor(name.to_string()))
}

/// Versions, newest first, optionally of one sensor.
pub async fn list(
    client: &impl GenericClient,
    sensor_id: Option<i64>,
    limit: i64,
) -> Result<Vec<VersionRecord>, RegistryError> {
    let rows = client
        .query(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM model_versions v JOIN sensors s ON s.id = v.sensor_id \
                 WHERE ($1::bigint IS NULL OR v.sensor_id = $1) ORDER BY v.id DESC LIMIT $2"
            ),
            &[&sensor_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(version_from_row).collect())
}

/// A page of one sensor's versions, newest first: those numbered below `before` (all when
/// `None`), at most `limit`, and whether older ones remain.
pub async fn page(
    client: &impl GenericClient,
    sensor_id: i64,
    before: Option<i32>,
    limit: i64,
) -> Result<(Vec<VersionRecord>, bool), RegistryError> {
    let rows = client
        .query(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM model_versions v JOIN sensors s ON s.id = v.sensor_id \
                 WHERE v.sensor_id = $1 AND ($2::integer IS NULL OR v.version < $2) \
                 ORDER BY v.version DESC LIMIT $3"
            ),
            &[&sensor_id, &before, &(limit + 1)],
        )
        .await?;
    Ok(take_page(&rows, limit, version_from_row))
}

/// The first `limit` of `rows` (queried with `LIMIT limit + 1`), mapped, and whether a
/// further row showed that more remain.
fn take_page<T>(
    rows: &[tokio_postgres::Row],
    limit: i64,
    map: impl Fn(&tokio_postgres::Row) -> T,
) -> (Vec<T>, bool) {
    let more = rows.len() as i64 > limit;
    (rows.iter().take(limit as usize).map(map).collect(), more)
}

pub async fn get(
    client: &impl GenericClient,
    version_id: i64,
) -> Result<VersionRecord, RegistryError> {
    let row = client
        .query_opt(
            &format!("SELECT {VERSION_COLUMNS} FROM model_versions v JOIN sensors s ON s.id = v.sensor_id WHERE v.id = $1"),
            &[&version_id],
        )
        .await?
        .ok_or(RegistryError::UnknownVersion(version_id))?;
    Ok(version_from_row(&row))
}

pub async fn champion(
    client: &impl GenericClient,
    sensor_id: i64,
) -> Result<Option<VersionRecord>, RegistryError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM model_versions v JOIN sensors s ON s.id = v.sensor_id \
                 WHERE v.sensor_id = $1 AND v.status = 'champion'"
            ),
            &[&sensor_id],
        )
        .await?;
    Ok(row.as_ref().map(version_from_row))
}

pub async fn promotions(
    client: &impl GenericClient,
    sensor_id: Option<i64>,
    limit: i64,
) -> Result<Vec<PromotionRecord>, RegistryError> {
    Ok(promotions_page(client, sensor_id, None, limit).await?.0)
}

/// Promotions newest first, only those with an id below `before`, at most `limit` of them,
/// and whether older ones remain.
pub async fn promotions_page(
    client: &impl GenericClient,
    sensor_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<PromotionRecord>, bool), RegistryError> {
    let rows = client
        .query(
            "SELECT p.id, s.name, f.version, t.version, p.kind, p.reason, p.at \
             FROM promotions p JOIN sensors s ON s.id = p.sensor_id \
             JOIN model_versions t ON t.id = p.to_version_id \
             LEFT JOIN model_versions f ON f.id = p.from_version_id \
             WHERE ($1::bigint IS NULL OR p.sensor_id = $1) \
               AND ($2::bigint IS NULL OR p.id < $2) \
             ORDER BY p.id DESC LIMIT $3",
            &[&sensor_id, &before, &(limit + 1)],
        )
        .await?;
    Ok(take_page(&rows, limit, |r| PromotionRecord {
        id: r.get(0),
        sensor: r.get(1),
        from_version: r.get(2),
        to_version: r.get(3),
        kind: r.get(4),
        reason: r.get(5),
        at: r.get(6),
    }))
}

/// Takes the lock that serialises every change to a sensor's versions (numbering,
/// promotions, retention) until the transaction ends.
pub async fn lock_sensor(tx: &impl GenericClient, sensor_id: i64) -> Result<(), RegistryError> {
    tx.execute(
        "SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE",
        &[&sensor_id],
    )
    .await?;
    Ok(())
}

/// Makes `to_version_id` the champion of its sensor inside `tx`, demoting the current
/// one, and records why. `kind` is `initial`, `promote`, `rollback` or `manual`. The
/// caller holds [`lock_sensor`].
pub async fn set_champion(
    tx: &impl GenericClient,
    sensor_id: i64,
    to_version_id: i64,
    kind: &str,
    reason: &str,
) -> Result<Option<i64>, RegistryError> {
    let pruned: Option<bool> = tx
        .query_opt(
            "SELECT model IS NULL FROM model_versions WHERE id = $1 AND sensor_id = $2",
            &[&to_version_id, &sensor_id],
        )
        .await?
        .map(|r| r.get(0));
    if pruned == Some(true) {
        return Err(RegistryError::Refused(format!(
            "version id {to_version_id} cannot be served: retention deleted its fitted model \
             (retention.models_kept); train a new version instead"
        )));
    }
    let from: Option<i64> = tx
        .query_opt(
            "UPDATE model_versions SET status = 'retired', status_reason = $2 \
             WHERE sensor_id = $1 AND status = 'champion' RETURNING id",
            &[&sensor_id, &format!("replaced: {reason}")],
        )
        .await?
        .map(|r| r.get(0));
    let updated = tx
        .execute(
            "UPDATE model_versions SET status = 'champion', status_reason = $3 WHERE id = $1 AND sensor_id = $2",
            &[&to_version_id, &sensor_id, &reason],
        )
        .await?;
    if updated != 1 {
        return Err(RegistryError::UnknownVersion(to_version_id));
    }
    tx.execute(
        "INSERT INTO promotions (sensor_id, from_version_id, to_version_id, kind, reason) VALUES ($1, $2, $3, $4, $5)",
        &[&sensor_id, &from, &to_version_id, &kind, &reason],
    )
    .await?;
    Ok(from)
}

/// An operator's explicit promotion of a version (`hygrocast models promote`).
pub async fn promote(
    client: &mut deadpool_postgres::Client,
    version_id: i64,
) -> Result<VersionRecord, RegistryError> {
    let tx = client.transaction().await?;
    let sensor_id: i64 = tx
        .query_opt(
            "SELECT sensor_id FROM model_versions WHERE id = $1",
            &[&version_id],
        )
        .await?
        .ok_or(RegistryError::UnknownVersion(version_id))?
        .get(0);
    lock_sensor(&*tx, sensor_id).await?;
    let status: String = tx
        .query_one(
            "SELECT status FROM model_versions WHERE id = $1",
            &[&version_id],
        )
        .await?
        .get(0);
    if status == "champion" {
        return Err(RegistryError::Refused(format!(
            "version {version_id} is already the champion"
        )));
    }
    set_champion(
        &*tx,
        sensor_id,
        version_id,
        "manual",
        "promoted by an operator",
    )
    .await?;
    tx.commit().await?;
    get(&***client, version_id).await
}

/// Restores the previous champion of a sensor (the one the last promotion replaced).
pub async fn rollback(
    client: &mut deadpool_postgres::Client,
    sensor: &str,
) -> Result<VersionRecord, RegistryError> {
    let tx = client.transaction().await?;
    let sensor_id = sensor_id(&*tx, sensor).await?;
    lock_sensor(&*tx, sensor_id).await?;
    let row = tx
        .query_opt(
            "SELECT p.from_version_id, p.to_version_id FROM promotions p \
             JOIN model_versions v ON v.id = p.to_version_id AND v.status = 'champion' \
             WHERE p.sensor_id = $1 ORDER BY p.id DESC LIMIT 1",
            &[&sensor_id],
        )
        .await?
        .ok_or_else(|| {
            RegistryError::Refused(format!("sensor `{sensor}` has no champion to roll back"))
        })?;
    let from: Option<i64> = row.get(0);
    let current: i64 = row.get(1);
    let Some(previous) = from else {
        return Err(RegistryError::Refused(format!(
            "sensor `{sensor}`: the champion (version id {current}) has no previous champion"
        )));
    };
    set_champion(
        &*tx,
        sensor_id,
        previous,
        "rollback",
        "rolled back by an operator",
    )
    .await?;
    tx.commit().await?;
    get(&***client, previous).await
}
