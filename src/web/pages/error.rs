//! Errors of the HTML pages: the same kinds as the API's, rendered as an HTML page in the
//! site's frame instead of JSON.

use actix_web::http::StatusCode;

use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    /// Not logged in, or a missing/wrong CSRF token.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The action is not possible in the current state (e.g. nothing to roll back to).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl PageError {
    pub fn status(&self) -> StatusCode {
        match self {
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The heading of the error page.
    pub fn heading(&self) -> &'static str {
        match self {
            PageError::BadRequest(_) => "Bad request",
            PageError::Forbidden(_) => "Not allowed",
            PageError::NotFound(_) => "Not found",
            PageError::Conflict(_) => "Not possible",
            PageError::Unavailable(_) => "Temporarily unavailable",
            PageError::Internal(_) => "Something went wrong",
        }
    }

    /// What the reader is told: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            PageError::Internal(_) => "An internal error occurred; it has been logged.".into(),
            PageError::Unavailable(_) => {
                "The database is not answering right now. Try again in a few seconds.".into()
            }
            other => other.to_string(),
        }
    }
}

impl From<deadpool_postgres::PoolError> for PageError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        PageError::Unavailable(format!("database unavailable: {e}"))
    }
}

impl From<tokio_postgres::Error> for PageError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() || e.as_db_error().is_none() {
            PageError::Unavailable(format!("database unavailable: {e}"))
        } else {
            PageError::Internal(e.to_string())
        }
    }
}

impl From<RegistryError> for PageError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::UnknownSensor(_)
            | RegistryError::UnknownRun(_)
            | RegistryError::UnknownVersion(_) => PageError::NotFound(e.to_string()),
            RegistryError::Refused(m) => PageError::Conflict(m),
            RegistryError::Pool(p) => p.into(),
            RegistryError::Db(d) => d.into(),
            other => PageError::Internal(other.to_string()),
        }
    }
}
