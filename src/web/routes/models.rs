//! The forecast and registry API: forecasts of a sensor, its models, a run.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::registry::{monitor, runs, serving, versions};
use crate::web::error::ApiError;
use crate::web::AppState;

#[derive(Debug, Deserialize)]
pub struct ForecastQuery {
    /// `1h` … `120h` (or `5d`); default: the full configured horizon.
    pub horizon: Option<String>,
}

/// `GET /api/v1/sensors/{name}/forecast?horizon=48h`
pub async fn forecast(
    state: web::Data<AppState>,
    name: web::Path<String>,
    query: web::Query<ForecastQuery>,
) -> Result<HttpResponse, ApiError> {
    let f = &state.settings.forecast;
    let steps = match &query.horizon {
        Some(h) => serving::parse_horizon(h, f.step_secs, f.horizon)?,
        None => f.horizon,
    };
    let served =
        serving::forecast_for(&state.pool, &state.settings, &state.forecasts, &name, steps).await?;
    Ok(HttpResponse::Ok().json(served))
}

/// `GET /api/v1/sensors/{name}/models`: champion, versions, promotions, runs and live scores.
pub async fn sensor_models(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let sensor_id = versions::sensor_id(&**client, &name).await?;
    let champion = versions::champion(&**client, sensor_id).await?;
    let all = versions::list(&**client, Some(sensor_id), 200).await?;
    let promotions = versions::promotions(&**client, Some(sensor_id), 200).await?;
    let runs = runs::list(&**client, Some(sensor_id), 50).await?;
    let live = monitor::recent_scores(&**client, sensor_id, 20).await?;
    let live: Vec<_> = live
        .into_iter()
        .map(|(at, s)| json!({"scored_at": at, "score": s}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "sensor": name.as_str(),
        "champion": champion,
        "versions": all,
        "promotions": promotions,
        "runs": runs,
        "live_scores": live,
    })))
}

/// `GET /api/v1/runs/{id}`
pub async fn run(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(runs::get(&**client, *id).await?))
}
