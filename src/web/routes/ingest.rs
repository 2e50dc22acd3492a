//! Write endpoints. All three run the same pipeline:
//! token → body (bounded) → decode/parse/validate (`ingest::process`) → group commit.
//!
//! - `POST /api/v1/readings`: native JSON or SenML by Content-Type; `Authorization: Bearer`;
//!   answers 200 `{"accepted": N, "duplicates": M}`.
//! - `POST /api/v2/write` and `POST /write`: InfluxDB line protocol whatever the
//!   Content-Type (InfluxDB ignores it too, and `curl --data-binary` sends a form type);
//!   `Authorization: Token`, or `p=` on `/write` as InfluxDB 1.x clients send it; 204.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use serde_json::json;

use crate::ingest::auth::{AuthError, Authenticated};
use crate::ingest::batcher::{WriteError, WriteOutcome};
use crate::ingest::{process, ValidatedBatch};
use crate::web::error::ApiError;
use crate::web::AppState;

/// `POST /api/v1/readings`
pub async fn post_readings(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = header_token(&req).ok_or_else(|| auth_error(AuthError::Missing))?;
    let (outcome, in_batch_duplicates) = ingest(&req, payload, &state, &token, None, None).await?;
    Ok(HttpResponse::Ok().json(json!({
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates + in_batch_duplicates,
    })))
}

/// `POST /api/v2/write?org=&bucket=&precision=` (InfluxDB 2.x)
pub async fn influx_v2_write(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = header_token(&req).ok_or_else(|| auth_error(AuthError::Missing))?;
    let precision = query_param(&req, "precision");
    ingest(
        &req,
        payload,
        &state,
        &token,
        Some("text/plain"),
        precision.as_deref(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /write?db=&precision=&u=&p=` (InfluxDB 1.x). `u` is ignored: the token alone
/// identifies the sensor.
pub async fn influx_v1_write(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = header_token(&req)
        .or_else(|| query_param(&req, "p").filter(|p| !p.is_empty()))
        .ok_or_else(|| auth_error(AuthError::Missing))?;
    // 1.x spells nanoseconds and microseconds `n` and `u`.
    let precision = query_param(&req, "precision").map(|p| match p.as_str() {
        "n" => "ns".to_owned(),
        "u" => "us".to_owned(),
        _ => p,
    });
    ingest(
        &req,
        payload,
        &state,
        &token,
        Some("text/plain"),
        precision.as_deref(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET|HEAD /ping`: InfluxDB clients and Telegraf probe it before writing; 204 like
/// InfluxDB. It says nothing about the database (see `/readyz` for that).
pub async fn influx_ping() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((
            "X-Influxdb-Version",
            concat!("hygrocast-", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}

/// The shared pipeline. `content_type` overrides the request's header (line protocol
/// endpoints). Returns the committed outcome and the in-request duplicates.
async fn ingest(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    token: &str,
    content_type: Option<&str>,
    precision: Option<&str>,
) -> Result<(WriteOutcome, usize), ApiError> {
    let Authenticated { sensor, token_hash } = state
        .tokens
        .authenticate(&state.pool, token)
        .await
        .map_err(auth_error)?;
    let body = read_body(req, payload, state.limits.max_body).await?;
    let content_type = content_type.or_else(|| header_str(req, header::CONTENT_TYPE));
    let encoding = header_str(req, header::CONTENT_ENCODING);
    let ValidatedBatch {
        readings,
        duplicates,
    } = process(
        sensor.kind,
        content_type,
        encoding,
        precision,
        &body,
        Utc::now(),
        &state.limits,
    )?;
    let count = readings.len();
    let outcome = match state.batcher.write(sensor.id, token_hash, readings).await {
        Ok(o) => o,
        Err(WriteError::Unauthorized) => {
            // Rotated or removed since it was remembered: forget it and refuse.
            state.tokens.forget(&token_hash);
            return Err(auth_error(AuthError::Unknown));
        }
        Err(e @ WriteError::Overloaded) => return Err(ApiError::Overloaded(e.to_string())),
        Err(e) => return Err(ApiError::Unavailable(e.to_string())),
    };
    tracing::debug!(
        sensor = sensor.id,
        readings = count,
        accepted = outcome.accepted,
        "readings committed"
    );
    Ok((outcome, duplicates))
}

fn auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::Unavailable(m) => ApiError::Unavailable(format!("database unavailable: {m}")),
        other => ApiError::Unauthorized(other.to_string()),
    }
}

/// Reads the raw (possibly gzip-compressed) body, refusing more than `limit` bytes.
///
/// `web::Payload` is the undecoded stream: actix's `Bytes` extractor would inflate gzip
/// itself, unbounded, before our bounded decoder (`ingest::decode_body`) saw it.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let too_large = || ApiError::PayloadTooLarge(format!("request body exceeds {limit} bytes"));
    let declared = header_str(req, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The token from `Authorization: Bearer X` or `Authorization: Token X` (InfluxDB).
fn header_token(req: &HttpRequest) -> Option<String> {
    let value = header_str(req, header::AUTHORIZATION)?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    (known && !token.is_empty()).then(|| token.to_owned())
}

fn query_param(req: &HttpRequest, key: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
