//! `GET /api/v1/sensors/{name}/readings?from=&to=&limit=`: a sensor's stored readings,
//! oldest first, as JSON or (with `Accept: text/csv`) CSV.
//!
//! Reading is not token-protected, like the pages that chart the same data; tokens guard
//! writes. `from` is inclusive and `to` exclusive (RFC 3339 or unix seconds). When more
//! readings match than `limit`, the JSON answer carries `next`, the `from` of the next page.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::SensorName;
use crate::sensors::{self, SensorError};
use crate::web::error::{ApiError, ErrorBody};
use crate::web::AppState;

const DEFAULT_LIMIT: i64 = 1_000;
const MAX_LIMIT: i64 = 100_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// Inclusive start: RFC 3339 (unix seconds are accepted too).
    // The document states the checks the handler makes, so clients (and schemathesis)
    // learn what is valid from it rather than from 400s. The fields stay strings so a bad
    // value gets the handler's own error naming it, not the query extractor's.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-24T10:00:00Z")]
    from: Option<String>,
    /// Exclusive end: RFC 3339 (unix seconds are accepted too).
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-25T10:00:00Z")]
    to: Option<String>,
    /// Most readings in one page: 1–100000, default 1000.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100_000, example = 1000)]
    limit: Option<String>,
}

/// One stored reading.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadingOut {
    #[schema(example = "2026-11-24T10:00:00Z")]
    pub ts: String,
    pub value: f64,
}

/// A page of a sensor's readings, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadingsPage {
    pub sensor: String,
    #[schema(example = "humidity")]
    pub kind: String,
    #[schema(example = "%RH")]
    pub unit: String,
    pub readings: Vec<ReadingOut>,
    /// The `from` of the next page, when more readings match than `limit`.
    pub next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/sensors/{name}/readings",
    tag = "ingestion",
    params(("name" = String, Path, description = "Sensor name", example = "greenhouse-1"), ReadingsQuery),
    responses(
        (status = 200, description = "Readings, oldest first (CSV with Accept: text/csv)",
         content((ReadingsPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Bad from/to/limit", body = ErrorBody),
        (status = 404, description = "Unknown sensor", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]

pub async fn get_readings(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ReadingsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = SensorName::parse(&path).map_err(|e| ApiError::NotFound(e.to_string()))?;
    let from = query
        .from
        .as_deref()
        .map(|s| parse_time("from", s))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|s| parse_time("to", s))
        .transpose()?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, got `{s}`"
                )))
            }
        },
    };
    let client = state.pool.get().await?;
    let sensor = sensors::find_by_name(&**client, &name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no sensor named `{name}`")))?;
    // One more than asked tells whether another page follows.
    let mut rows = sensors::readings(&**client, sensor.id, from, to, limit + 1)
        .await
        .map_err(db_error)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .and_then(|(ts, _)| ts.checked_add_signed(chrono::Duration::microseconds(1)))
    } else {
        None
    };

    if wants_csv(&req) {
        let mut out = String::with_capacity(16 + rows.len() * 36);
        out.push_str("ts,value\n");
        for (ts, value) in &rows {
            out.push_str(&fmt_ts(*ts));
            out.push(',');
            out.push_str(&value.to_string());
            out.push('\n');
        }
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(out));
    }
    let readings = rows
        .iter()
        .map(|(ts, value)| ReadingOut {
            ts: fmt_ts(*ts),
            value: *value,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ReadingsPage {
        sensor: sensor.name.into(),
        kind: sensor.kind.as_str().into(),
        unit: sensor.unit,
        readings,
        next: next.map(fmt_ts),
    }))
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|part| part.split(';').next().unwrap_or("").trim() == "text/csv")
        })
}

fn fmt_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_time(key: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite())
        .and_then(|secs| DateTime::from_timestamp_micros((secs * 1e6).round() as i64))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{key} must be an RFC 3339 time (2026-11-24T10:00:00Z) or unix seconds, got `{s}`"
            ))
        })
}

fn db_error(e: SensorError) -> ApiError {
    match e {
        SensorError::Db(e) => e.into(),
        other => ApiError::Internal(other.to_string()),
    }
}
