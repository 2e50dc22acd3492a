//! The forecast and registry API: forecasts of a sensor, its models, a run.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::SensorName;
use crate::registry::monitor::LiveScore;
use crate::registry::runs::RunRecord;
use crate::registry::serving::ServedForecast;
use crate::registry::versions::{PromotionRecord, VersionRecord};
use crate::registry::{monitor, runs, serving, versions};
use crate::web::error::{ApiError, ErrorBody};
use crate::web::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// How far ahead: `1h` … `120h` (or `5d`, `90m`); a bare number means hours.
    /// Default: the full configured horizon.
    #[param(pattern = r"^[0-9]+(m|min|h|d)?$", example = "48h")]
    pub horizon: Option<String>,
}

/// The sensor named in the path. A name that cannot be a sensor's (wrong characters,
/// a NUL byte, too long) names no sensor: 404, without asking the database — PostgreSQL
/// refuses a NUL in text, which surfaced as a 500 (found by schemathesis).
fn sensor_in_path(raw: &str) -> Result<SensorName, ApiError> {
    SensorName::parse(raw)
        .map_err(|_| ApiError::NotFound(format!("unknown sensor `{}`", raw.escape_debug())))
}

/// `GET /api/v1/sensors/{name}/forecast?horizon=48h`
#[utoipa::path(
    get,
    path = "/api/v1/sensors/{name}/forecast",
    tag = "forecasts",
    params(("name" = String, Path, description = "Sensor name", example = "greenhouse-1"), ForecastQuery),
    responses(
        (status = 200, description = "The champion's forecast with 80 % and 95 % intervals", body = ServedForecast),
        (status = 400, description = "Bad horizon, or the sensor has no readings yet", body = ErrorBody),
        (status = 404, description = "Unknown sensor", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn forecast(
    state: web::Data<AppState>,
    name: web::Path<String>,
    query: web::Query<ForecastQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = sensor_in_path(&name)?;
    let f = &state.settings.forecast;
    let steps = match &query.horizon {
        Some(h) => serving::parse_horizon(h, f.step_secs, f.horizon)?,
        None => f.horizon,
    };
    let body = serving::forecast_json(
        &state.pool,
        &state.settings,
        &state.forecasts,
        name.as_str(),
        steps,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Paging through a sensor's versions, newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelsQuery {
    /// Only versions numbered below this one: the previous page's `next_before`.
    #[param(minimum = 1, example = 120)]
    pub before: Option<i32>,
    /// Most versions in the page, 1–1000. Default: 200.
    #[param(minimum = 1, maximum = 1000, example = 50)]
    pub limit: Option<i64>,
}

const DEFAULT_PAGE: i64 = 200;
const MAX_PAGE: i64 = 1000;

/// Checks a page's `before` (`what` it numbers, 1 or more) and returns its `limit`
/// (1–1000, 200 when not given).
fn page_limit(limit: Option<i64>, before: Option<i64>, what: &str) -> Result<i64, ApiError> {
    if let Some(before) = before.filter(|b| *b < 1) {
        return Err(ApiError::BadRequest(format!(
            "before must be {what} (1 or more), got {before}"
        )));
    }
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit must be 1–{MAX_PAGE}, got {limit}"
        )))
    }
}

/// One live score with the time it was computed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScoredAt {
    pub scored_at: DateTime<Utc>,
    pub score: LiveScore,
}

/// Everything the registry knows about one sensor's models.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SensorModels {
    pub sensor: String,
    /// The version serving forecasts; none until the first training run succeeds.
    pub champion: Option<VersionRecord>,
    /// Newest first: a page of at most `limit` versions (see `next_before`).
    pub versions: Vec<VersionRecord>,
    /// When older versions remain: pass this as `before` for the next page.
    pub next_before: Option<i32>,
    /// The newest 200 promotions (all of them: `/api/v1/sensors/{name}/promotions`).
    pub promotions: Vec<PromotionRecord>,
    pub runs: Vec<RunRecord>,
    pub live_scores: Vec<ScoredAt>,
}

/// `GET /api/v1/sensors/{name}/models`: champion, versions, promotions, runs and live scores.
#[utoipa::path(
    get,
    path = "/api/v1/sensors/{name}/models",
    tag = "models",
    params(("name" = String, Path, description = "Sensor name", example = "greenhouse-1"), ModelsQuery),
    responses(
        (status = 200, description = "Champion, versions, promotions, recent runs and live scores", body = SensorModels),
        (status = 400, description = "Bad `before` or `limit`", body = ErrorBody),
        (status = 404, description = "Unknown sensor", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn sensor_models(
    state: web::Data<AppState>,
    name: web::Path<String>,
    query: web::Query<ModelsQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = sensor_in_path(&name)?;
    let limit = page_limit(query.limit, query.before.map(i64::from), "a version number")?;
    let client = state.pool.get().await?;
    let sensor_id = versions::sensor_id(&**client, name.as_str()).await?;
    let champion = versions::champion(&**client, sensor_id).await?;
    let (page, more) = versions::page(&**client, sensor_id, query.before, limit).await?;
    let next_before = page.last().filter(|_| more).map(|v| v.version);
    let promotions = versions::promotions(&**client, Some(sensor_id), 200).await?;
    let runs = runs::list(&**client, Some(sensor_id), 50).await?;
    let live_scores = monitor::recent_scores(&**client, sensor_id, 20)
        .await?
        .into_iter()
        .map(|(scored_at, score)| ScoredAt { scored_at, score })
        .collect();
    Ok(HttpResponse::Ok().json(SensorModels {
        sensor: name.into(),
        champion,
        versions: page,
        next_before,
        promotions,
        runs,
        live_scores,
    }))
}

/// Paging through a sensor's promotions and rollbacks, newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromotionsQuery {
    /// Only promotions with an id below this one: the previous page's `next_before`.
    #[param(minimum = 1, example = 40)]
    pub before: Option<i64>,
    /// Most promotions in the page, 1–1000. Default: 200.
    #[param(minimum = 1, maximum = 1000, example = 50)]
    pub limit: Option<i64>,
}

/// A page of a sensor's promotion history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SensorPromotions {
    pub sensor: String,
    /// Newest first: every change of champion, automatic, manual or a rollback.
    pub promotions: Vec<PromotionRecord>,
    /// When older promotions remain: pass this as `before` for the next page.
    pub next_before: Option<i64>,
}

/// `GET /api/v1/sensors/{name}/promotions`: every change of champion, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/sensors/{name}/promotions",
    tag = "models",
    params(("name" = String, Path, description = "Sensor name", example = "greenhouse-1"), PromotionsQuery),
    responses(
        (status = 200, description = "A page of promotions, newest first", body = SensorPromotions),
        (status = 400, description = "Bad `before` or `limit`", body = ErrorBody),
        (status = 404, description = "Unknown sensor", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn sensor_promotions(
    state: web::Data<AppState>,
    name: web::Path<String>,
    query: web::Query<PromotionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = sensor_in_path(&name)?;
    let limit = page_limit(query.limit, query.before, "a promotion id")?;
    let client = state.pool.get().await?;
    let sensor_id = versions::sensor_id(&**client, name.as_str()).await?;
    let (promotions, more) =
        versions::promotions_page(&**client, Some(sensor_id), query.before, limit).await?;
    let next_before = promotions.last().filter(|_| more).map(|p| p.id);
    Ok(HttpResponse::Ok().json(SensorPromotions {
        sensor: name.into(),
        promotions,
        next_before,
    }))
}

/// `GET /api/v1/runs/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "models",
    params(("id" = i64, Path, description = "Training run id", example = 1)),
    responses(
        (status = 200, description = "The run: what data it saw, its backtest, its outcome", body = RunRecord),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn run(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(runs::get(&**client, *id).await?))
}
