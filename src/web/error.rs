//! Typed errors of the HTTP layer and how each maps to a status and a JSON body.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

/// An error a handler returns; its variant decides the status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The database or a queue is unavailable; the client should retry later.
    #[error("{0}")]
    Unavailable(String),
    /// Too much load right now (the ingest queue is full): retry in a moment.
    #[error("{0}")]
    Overloaded(String),
    /// A request body that could not be ingested; its kind decides the status.
    #[error("{0}")]
    Ingest(#[from] crate::ingest::IngestError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A stable machine-readable code for the body's `reason` and for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Ingest(e) => e.reason(),
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Ingest(e) => {
                StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut res = HttpResponse::build(status);
        match self {
            ApiError::Unavailable(_) => {
                res.insert_header(("Retry-After", "5"));
            }
            ApiError::Overloaded(_) => {
                res.insert_header(("Retry-After", "1"));
            }
            ApiError::Unauthorized(_) => {
                res.insert_header(("WWW-Authenticate", "Bearer"));
            }
            _ => {}
        }
        // Internal details stay in the log, not in the response.
        let message = match self {
            ApiError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        // `reason` is a stable machine-readable code; `message` repeats the text under the
        // key InfluxDB clients (Telegraf, influxdb-client) print from an error body.
        let reason = self.reason();
        res.json(ErrorBody {
            message: message.clone(),
            error: message,
            reason: reason.to_string(),
            status: status.as_u16(),
        })
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::Unavailable(format!("database unavailable: {e}"))
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() || e.as_db_error().is_none() {
            ApiError::Unavailable(format!("database unavailable: {e}"))
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

/// Turns actix's JSON extractor errors into our JSON error shape.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::ContentType => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        E::Overflow { .. } | E::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(err.to_string())
        }
        _ => ApiError::BadRequest(format!("malformed JSON: {err}")),
    };
    api.into()
}

/// Path segments that do not parse (`/api/v1/runs/abc`): 404 in our JSON shape, since
/// no such resource can exist.
pub fn path_error_handler(
    err: actix_web::error::PathError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound(format!("no such resource: {err}")).into()
}

/// Query strings that do not parse: 400 naming the problem, in our JSON shape.
pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}

/// The body of every error answer (documented in the OpenAPI description).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    #[schema(example = "unknown sensor `greenhouse-1`")]
    pub error: String,
    /// The same text, under the key InfluxDB clients print.
    #[schema(example = "unknown sensor `greenhouse-1`")]
    pub message: String,
    /// A stable machine-readable code (`not_found`, `unauthorized`, `out_of_range`, …).
    #[schema(example = "not_found")]
    pub reason: String,
    /// The HTTP status again, for clients that only keep the body.
    #[schema(example = 404)]
    pub status: u16,
}
