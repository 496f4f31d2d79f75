//! The one error type of handlers: user errors become 4xx with a helpful message, internal
//! failures are logged and answered with a generic 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to the client as `{ "error": code, "message": … }`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is wrong (unknown KPI, bad parameter).
    #[error("{message}")]
    BadRequest { message: String },
    /// The named thing does not exist.
    #[error("{message}")]
    NotFound { message: String },
    /// None of the representations the client accepts can be served (`?format=`, `Accept`).
    #[error("{message}")]
    NotAcceptable { message: String },
    /// Something failed on our side; the details go to the log only.
    #[error("internal error: {source}")]
    Internal {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AppError {
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal {
            source: Box::new(source),
        }
    }
}

impl From<civica_analytics::Error> for AppError {
    fn from(e: civica_analytics::Error) -> Self {
        if e.is_user_error() {
            AppError::BadRequest {
                message: e.to_string(),
            }
        } else {
            AppError::internal(e)
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            AppError::BadRequest { message } => {
                (StatusCode::BAD_REQUEST, "bad_request", message.clone())
            }
            AppError::NotFound { message } => (StatusCode::NOT_FOUND, "not_found", message.clone()),
            AppError::NotAcceptable { message } => (
                StatusCode::NOT_ACCEPTABLE,
                "not_acceptable",
                message.clone(),
            ),
            AppError::Internal { source } => {
                tracing::error!(error = %source, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it has been logged".to_string(),
                )
            }
        };
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}
