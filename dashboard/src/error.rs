//! The one error type of handlers: user errors become 4xx with a helpful message, internal
//! failures are logged and answered with a generic 500.
//!
//! The answer is `{ "error": code, "message": … }` JSON; HTML routes turn it into an error
//! page in the site's frame (`routes::error_pages`), reading what went wrong from the
//! [`ErrorInfo`] the response carries in its extensions.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A filter of the pages' query string, named in errors about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterName {
    Year,
    Area,
    Channel,
    /// First month of a period (`from=2017-01`).
    From,
    /// Last month of a period (`to=2017-06`).
    To,
}

impl FilterName {
    /// The name of the query parameter.
    pub fn param(self) -> &'static str {
        match self {
            FilterName::Year => "year",
            FilterName::Area => "area",
            FilterName::Channel => "channel",
            FilterName::From => "from",
            FilterName::To => "to",
        }
    }
}

/// An error answered to the client as `{ "error": code, "message": … }`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is wrong (unknown KPI, bad parameter).
    #[error("{message}")]
    BadRequest { message: String },
    /// A page filter has a value it does not accept; `reason` says which values it takes.
    #[error("`{value}` is not a valid `{}`: {reason}", filter.param())]
    InvalidFilter {
        filter: FilterName,
        value: String,
        reason: String,
    },
    /// The client may not have this (and signing in would not change that, or it should use
    /// a token).
    #[error("{message}")]
    Forbidden { message: String },
    /// The named thing does not exist.
    #[error("{message}")]
    NotFound { message: String },
    /// None of the representations the client accepts can be served (`?format=`, `Accept`).
    #[error("{message}")]
    NotAcceptable { message: String },
    /// The body is larger than the server accepts.
    #[error("{message}")]
    PayloadTooLarge { message: String },
    /// The client called too often; it may call again after `retry_after`.
    #[error("too many requests from this address; retry in {} s", retry_seconds(*retry_after))]
    TooManyRequests { retry_after: std::time::Duration },
    /// Every slot for this kind of work is taken; `retry_after` is a hint.
    #[error("the server is busy with other queries; retry in {} s", retry_seconds(*retry_after))]
    Busy { retry_after: std::time::Duration },
    /// The request was not answered within `after`.
    #[error("the request took longer than {} s", after.as_secs())]
    Timeout { after: std::time::Duration },
    /// Something failed on our side; the details go to the log only.
    #[error("internal error: {source}")]
    Internal {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What an error response says about its cause, for the HTML error page (the JSON body is
/// for API clients and stays in English).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The filter whose value was refused, and that value.
    pub filter: Option<(FilterName, String)>,
}

impl AppError {
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal {
            source: Box::new(source),
        }
    }
}

/// Whole seconds for `Retry-After`, rounded up and at least one.
fn retry_seconds(wait: std::time::Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
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
        let mut info = ErrorInfo::default();
        let mut retry = None;
        let (status, code, message) = match &self {
            AppError::BadRequest { message } => {
                (StatusCode::BAD_REQUEST, "bad_request", message.clone())
            }
            AppError::InvalidFilter { filter, value, .. } => {
                info.filter = Some((*filter, value.clone()));
                (StatusCode::BAD_REQUEST, "bad_request", self.to_string())
            }
            AppError::Forbidden { message } => {
                (StatusCode::FORBIDDEN, "forbidden", message.clone())
            }
            AppError::NotFound { message } => (StatusCode::NOT_FOUND, "not_found", message.clone()),
            AppError::NotAcceptable { message } => (
                StatusCode::NOT_ACCEPTABLE,
                "not_acceptable",
                message.clone(),
            ),
            AppError::PayloadTooLarge { message } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                message.clone(),
            ),
            AppError::TooManyRequests { retry_after } => {
                retry = Some(retry_seconds(*retry_after));
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    self.to_string(),
                )
            }
            AppError::Busy { retry_after } => {
                retry = Some(retry_seconds(*retry_after));
                (StatusCode::SERVICE_UNAVAILABLE, "busy", self.to_string())
            }
            AppError::Timeout { .. } => (StatusCode::REQUEST_TIMEOUT, "timeout", self.to_string()),
            AppError::Internal { source } => {
                tracing::error!(error = %source, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it has been logged".to_string(),
                )
            }
        };
        let mut response =
            (status, Json(json!({ "error": code, "message": message }))).into_response();
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(info);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        for (wait, seconds) in [
            (Duration::ZERO, 1),
            (Duration::from_millis(1), 1),
            (Duration::from_secs(2), 2),
            (Duration::from_millis(2_001), 3),
        ] {
            assert_eq!(retry_seconds(wait), seconds, "{wait:?}");
        }
    }

    #[test]
    fn refusals_of_load_carry_retry_after_in_the_json_shape() {
        let response = AppError::Busy {
            retry_after: Duration::from_millis(1_500),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = AppError::TooManyRequests {
            retry_after: Duration::from_secs(30),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    }
}
