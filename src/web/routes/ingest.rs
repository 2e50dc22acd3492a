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

use crate::ingest::auth::{AuthError, Authenticated};
use crate::ingest::batcher::{WriteError, WriteOutcome};
use crate::ingest::{process, ValidatedBatch};
use crate::web::error::{ApiError, ErrorBody};
use crate::web::AppState;

/// A reading in the native JSON format (documentation of the request body).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct ReadingIn {
    /// RFC 3339 time (`2026-11-24T10:00:00Z`) or unix seconds; missing means now.
    #[schema(value_type = Option<String>, example = "2026-11-24T10:00:00Z")]
    pub ts: Option<serde_json::Value>,
    /// The measured value, in the sensor's unit (humidity: 0–100 %RH).
    #[schema(example = 54.2)]
    pub value: f64,
}

/// The native JSON body: one reading, or a batch (all-or-nothing).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ReadingsBody {
    One(ReadingIn),
    Batch(Vec<ReadingIn>),
}

/// One SenML (RFC 8428) record; a body is an array of them.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct SenmlRecord {
    pub bn: Option<String>,
    pub bt: Option<f64>,
    pub bu: Option<String>,
    /// The sensor's quantity (`humidity` or `value`), after the base name.
    pub n: Option<String>,
    pub u: Option<String>,
    pub v: Option<f64>,
    pub t: Option<f64>,
}

/// What a committed JSON or SenML write stored.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WriteResult {
    /// Readings stored by this request.
    pub accepted: usize,
    /// Readings already stored (same sensor and timestamp), or repeated in the request.
    pub duplicates: usize,
}

/// `POST /api/v1/readings`
#[utoipa::path(
    post,
    path = "/api/v1/readings",
    tag = "ingestion",
    security(("sensor_token" = [])),
    request_body(
        description = "Native JSON (one reading or an array) or SenML",
        content(
            (ReadingsBody = "application/json", example = json!({"ts": "2026-11-24T10:00:00Z", "value": 54.2})),
            (Vec<SenmlRecord> = "application/senml+json"),
        )
    ),
    responses(
        (status = 200, description = "Committed", body = WriteResult),
        (status = 400, description = "A reading is invalid (named in the message); nothing was written", body = ErrorBody),
        (status = 401, description = "Missing, unknown or rotated token", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = ErrorBody),
        (status = 503, description = "Queue full or database unavailable; retry after Retry-After", body = ErrorBody),
    )
)]
pub async fn post_readings(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = header_token(&req).ok_or_else(|| missing_token(&req, None))?;
    let (outcome, in_batch_duplicates) = ingest(&req, payload, &state, &token, None, None).await?;
    Ok(HttpResponse::Ok().json(WriteResult {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates + in_batch_duplicates,
    }))
}

/// `POST /api/v2/write?org=&bucket=&precision=` (InfluxDB 2.x)
#[utoipa::path(
    post,
    path = "/api/v2/write",
    tag = "ingestion",
    security(("sensor_token" = [])),
    params(
        ("org" = Option<String>, Query, description = "Ignored (the token names the sensor)"),
        ("bucket" = Option<String>, Query, description = "Ignored"),
        ("precision" = Option<String>, Query, description = "Timestamp unit: ns (default), us, ms or s"),
    ),
    request_body(content = String, content_type = "text/plain", description = "InfluxDB line protocol, e.g. `climate,room=gh1 humidity=54.2 1764000000`"),
    responses(
        (status = 204, description = "Committed"),
        (status = 400, description = "A line is invalid (named in the message); nothing was written", body = ErrorBody),
        (status = 401, description = "Missing, unknown or rotated token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Encoding", body = ErrorBody),
        (status = 503, description = "Queue full or database unavailable; retry after Retry-After", body = ErrorBody),
    )
)]
pub async fn influx_v2_write(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = header_token(&req).ok_or_else(|| missing_token(&req, Some("text/plain")))?;
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
#[utoipa::path(
    post,
    path = "/write",
    tag = "ingestion",
    security(("sensor_token" = [])),
    params(
        ("db" = Option<String>, Query, description = "Ignored (the token names the sensor)"),
        ("u" = Option<String>, Query, description = "Ignored"),
        ("p" = Option<String>, Query, description = "The sensor's token, when not in Authorization"),
        ("precision" = Option<String>, Query, description = "Timestamp unit: n/ns (default), u/us, ms or s"),
    ),
    request_body(content = String, content_type = "text/plain", description = "InfluxDB line protocol"),
    responses(
        (status = 204, description = "Committed"),
        (status = 400, description = "A line is invalid (named in the message); nothing was written", body = ErrorBody),
        (status = 401, description = "Missing, unknown or rotated token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Encoding", body = ErrorBody),
        (status = 503, description = "Queue full or database unavailable; retry after Retry-After", body = ErrorBody),
    )
)]
pub async fn influx_v1_write(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = header_token(&req)
        .or_else(|| query_param(&req, "p").filter(|p| !p.is_empty()))
        .ok_or_else(|| missing_token(&req, Some("text/plain")))?;
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

/// The shared pipeline, counted in the metrics by wire format: readings accepted and
/// duplicate, or the request rejected with its reason.
async fn ingest(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    token: &str,
    content_type: Option<&str>,
    precision: Option<&str>,
) -> Result<(WriteOutcome, usize), ApiError> {
    let format = format_label(req, content_type);
    let result = ingest_inner(req, payload, state, token, content_type, precision).await;
    match &result {
        Ok((outcome, in_batch_duplicates)) => {
            crate::metrics::readings_accepted(format, outcome.accepted as u64);
            crate::metrics::readings_duplicate(
                format,
                (outcome.duplicates + in_batch_duplicates) as u64,
            );
        }
        Err(e) => crate::metrics::readings_rejected(format, e.reason()),
    }
    result
}

/// `content_type` overrides the request's header (line protocol endpoints). Returns the
/// committed outcome and the in-request duplicates.
async fn ingest_inner(
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
    if outcome.accepted > 0 {
        state.forecasts.invalidate(sensor.id);
    }
    tracing::debug!(
        sensor = sensor.id,
        readings = count,
        accepted = outcome.accepted,
        "readings committed"
    );
    Ok((outcome, duplicates))
}

/// The wire format for metrics labels: the line-protocol endpoints force `text/plain`.
fn format_label(req: &HttpRequest, content_type: Option<&str>) -> &'static str {
    if content_type.is_some() {
        return "line_protocol";
    }
    match header_str(req, header::CONTENT_TYPE) {
        Some(ct) if ct.to_ascii_lowercase().contains("senml") => "senml",
        _ => "json",
    }
}

/// A request without a token: counted as rejected, then refused.
fn missing_token(req: &HttpRequest, content_type: Option<&str>) -> ApiError {
    let e = auth_error(AuthError::Missing);
    crate::metrics::readings_rejected(format_label(req, content_type), e.reason());
    e
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
