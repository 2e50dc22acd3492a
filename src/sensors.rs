//! The sensor registry: sensor rows and their tokens, shared by the admin CLI and the web
//! layer. Tokens leave this module only once, when created or rotated; only their SHA-256
//! is stored.

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, Row};

use crate::domain::{token_matches, DomainError, SensorKind, SensorName, Token};

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("{0}")]
    InvalidUnit(String),
    #[error("a sensor named `{0}` already exists")]
    AlreadyExists(String),
    #[error("no sensor named `{0}`")]
    NotFound(String),
    #[error(
        "sensor `{name}` has {count} readings; remove them too with --purge, \
         or keep the sensor"
    )]
    HasReadings { name: String, count: i64 },
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// A sensor as stored (without its token hash).
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub id: i64,
    pub name: SensorName,
    pub kind: SensorKind,
    pub unit: String,
    pub location: Option<String>,
    pub created_at: DateTime<Utc>,
    pub token_rotated_at: Option<DateTime<Utc>>,
}

/// A sensor with the size and freshness of its history, for `sensor list`.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSummary {
    pub sensor: Sensor,
    pub readings: i64,
    pub last_reading: Option<DateTime<Utc>>,
}

/// What a token authenticates: the sensor it may write, and how to validate its readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorAuth {
    pub id: i64,
    pub kind: SensorKind,
}

/// What is needed to create a sensor.
#[derive(Debug, Clone)]
pub struct NewSensor {
    pub name: SensorName,
    pub kind: SensorKind,
    /// None: the kind's unit.
    pub unit: Option<String>,
    pub location: Option<String>,
}

const SENSOR_COLUMNS: &str = "id, name, kind, unit, location, created_at, token_rotated_at";

fn sensor_from_row(row: &Row) -> Result<Sensor, SensorError> {
    let name: String = row.try_get("name")?;
    let kind: String = row.try_get("kind")?;
    Ok(Sensor {
        id: row.try_get("id")?,
        name: SensorName::parse(&name)?,
        kind: kind.parse()?,
        unit: row.try_get("unit")?,
        location: row.try_get("location")?,
        created_at: row.try_get("created_at")?,
        token_rotated_at: row.try_get("token_rotated_at")?,
    })
}

/// The units a kind's readings may be labelled with. Values are validated against the
/// kind's range in its own unit, so a different unit (°F, g/m³) would silently mislabel
/// them: refuse it instead.
fn check_unit(kind: SensorKind, unit: &str) -> Result<(), SensorError> {
    if unit == kind.default_unit() || unit == kind.senml_unit() {
        return Ok(());
    }
    Err(SensorError::InvalidUnit(format!(
        "{kind} readings are validated in {} (range {:?}), so the unit must be `{}`, not `{unit}`",
        kind.default_unit(),
        kind.valid_range(),
        kind.default_unit()
    )))
}

/// Creates a sensor with a fresh token; the token is returned once and never stored.
pub async fn create<C: GenericClient>(
    client: &C,
    new: &NewSensor,
) -> Result<(Sensor, Token), SensorError> {
    let unit = new
        .unit
        .clone()
        .unwrap_or_else(|| new.kind.default_unit().to_owned());
    check_unit(new.kind, &unit)?;
    let token = Token::generate();
    let hash = Token::hash(token.expose());
    let sql = format!(
        "INSERT INTO sensors (name, kind, unit, location, token_hash) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {SENSOR_COLUMNS}"
    );
    let row = client
        .query_one(
            &sql,
            &[
                &new.name.as_str(),
                &new.kind.as_str(),
                &unit,
                &new.location,
                &hash.as_slice(),
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                SensorError::AlreadyExists(new.name.to_string())
            } else {
                SensorError::Db(e)
            }
        })?;
    Ok((sensor_from_row(&row)?, token))
}

/// Every sensor with its reading count and last reading time, by name.
pub async fn list<C: GenericClient>(client: &C) -> Result<Vec<SensorSummary>, SensorError> {
    // Per-sensor subqueries use the (sensor_id, ts) primary key; max(ts) is one index probe.
    let sql = format!(
        "SELECT {SENSOR_COLUMNS}, \
           (SELECT count(*) FROM readings r WHERE r.sensor_id = s.id) AS readings, \
           (SELECT max(ts) FROM readings r WHERE r.sensor_id = s.id) AS last_reading \
         FROM sensors s ORDER BY name"
    );
    let rows = client.query(&sql, &[]).await?;
    rows.iter()
        .map(|row| {
            Ok(SensorSummary {
                sensor: sensor_from_row(row)?,
                readings: row.try_get("readings")?,
                last_reading: row.try_get("last_reading")?,
            })
        })
        .collect()
}

pub async fn find_by_name<C: GenericClient>(
    client: &C,
    name: &SensorName,
) -> Result<Option<Sensor>, SensorError> {
    let sql = format!("SELECT {SENSOR_COLUMNS} FROM sensors WHERE name = $1");
    let row = client.query_opt(&sql, &[&name.as_str()]).await?;
    row.as_ref().map(sensor_from_row).transpose()
}

/// The sensor a presented token belongs to, if any.
///
/// Looked up by the token's SHA-256 through the unique index; the stored hash is then
/// compared again in constant time, so the answer never depends on a partial match.
pub async fn authenticate<C: GenericClient>(
    client: &C,
    presented: &str,
) -> Result<Option<SensorAuth>, SensorError> {
    let hash = Token::hash(presented);
    let stmt = client
        .prepare_typed(
            "SELECT id, kind, token_hash FROM sensors WHERE token_hash = $1",
            &[tokio_postgres::types::Type::BYTEA],
        )
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&hash.as_slice()]).await? else {
        return Ok(None);
    };
    let stored: Vec<u8> = row.try_get("token_hash")?;
    if !token_matches(presented, &stored) {
        return Ok(None);
    }
    let kind: String = row.try_get("kind")?;
    Ok(Some(SensorAuth {
        id: row.try_get("id")?,
        kind: kind.parse()?,
    }))
}

/// Replaces a sensor's token. The old one stops working as soon as this commits: every
/// write re-checks the stored hash inside its own transaction (see `ingest::batcher`).
pub async fn rotate_token<C: GenericClient>(
    client: &C,
    name: &SensorName,
) -> Result<Token, SensorError> {
    let token = Token::generate();
    let hash = Token::hash(token.expose());
    let n = client
        .execute(
            "UPDATE sensors SET token_hash = $2, token_rotated_at = now() WHERE name = $1",
            &[&name.as_str(), &hash.as_slice()],
        )
        .await?;
    if n == 0 {
        return Err(SensorError::NotFound(name.to_string()));
    }
    Ok(token)
}

/// What `edit` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SensorEdit {
    pub rename: Option<SensorName>,
    /// `Some(None)` clears the location.
    pub location: Option<Option<String>>,
}

/// Renames a sensor or changes its location. Its token, readings, models and history stay
/// with it (they belong to its id): devices keep posting with the same token, and only the
/// URLs with its name change.
pub async fn edit<C: GenericClient>(
    client: &C,
    name: &SensorName,
    edit: &SensorEdit,
) -> Result<Sensor, SensorError> {
    let new_name = edit.rename.as_ref().map(SensorName::as_str);
    let (set_location, location) = match &edit.location {
        Some(l) => (true, l.clone()),
        None => (false, None),
    };
    let sql = format!(
        "UPDATE sensors SET name = coalesce($2, name), \
         location = CASE WHEN $3 THEN $4 ELSE location END \
         WHERE name = $1 RETURNING {SENSOR_COLUMNS}"
    );
    let row = client
        .query_opt(&sql, &[&name.as_str(), &new_name, &set_location, &location])
        .await
        .map_err(|e| match (e.code(), new_name) {
            (Some(&SqlState::UNIQUE_VIOLATION), Some(taken)) => {
                SensorError::AlreadyExists(taken.to_string())
            }
            _ => SensorError::Db(e),
        })?
        .ok_or_else(|| SensorError::NotFound(name.to_string()))?;
    sensor_from_row(&row)
}

/// Removes a sensor. Refuses while it has readings unless `purge`, which deletes them too.
/// Returns how many readings were deleted.
pub async fn remove(
    client: &mut Client,
    name: &SensorName,
    purge: bool,
) -> Result<i64, SensorError> {
    let tx = client.transaction().await?;
    // FOR UPDATE waits for in-flight group commits writing this sensor (they hold
    // FOR KEY SHARE on its row) and blocks new ones, so the count below is final.
    let Some(row) = tx
        .query_opt(
            "SELECT id FROM sensors WHERE name = $1 FOR UPDATE",
            &[&name.as_str()],
        )
        .await?
    else {
        return Err(SensorError::NotFound(name.to_string()));
    };
    let id: i64 = row.try_get(0)?;
    let count: i64 = tx
        .query_one("SELECT count(*) FROM readings WHERE sensor_id = $1", &[&id])
        .await?
        .try_get(0)?;
    if count > 0 && !purge {
        return Err(SensorError::HasReadings {
            name: name.to_string(),
            count,
        });
    }
    tx.execute("DELETE FROM readings WHERE sensor_id = $1", &[&id])
        .await?;
    tx.execute("DELETE FROM sensors WHERE id = $1", &[&id])
        .await?;
    tx.commit().await?;
    Ok(count)
}

/// Readings of one sensor with `from <= ts < to`, oldest first, at most `limit`.
pub async fn readings<C: GenericClient>(
    client: &C,
    sensor_id: i64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<(DateTime<Utc>, f64)>, SensorError> {
    let rows = client
        .query(
            "SELECT ts, value FROM readings \
             WHERE sensor_id = $1 \
               AND ($2::timestamptz IS NULL OR ts >= $2) \
               AND ($3::timestamptz IS NULL OR ts < $3) \
             ORDER BY ts LIMIT $4",
            &[&sensor_id, &from, &to, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
