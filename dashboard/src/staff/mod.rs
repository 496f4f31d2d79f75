//! Staff access: named accounts ([`accounts`]), sign-in sessions ([`sessions`]), uploads
//! ingested in the background ([`ingests`]), and [`Viewer`], who is asking: the public, or a
//! member of staff (by session cookie or API token). Only staff get the internal audience.

pub mod accounts;
pub mod ingests;
pub mod sessions;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use civica_analytics::Audience;

use crate::AppState;
use accounts::Users;
use ingests::{Ingester, Ingests};
use sessions::Sessions;

/// The cookie holding a session id.
pub const SESSION_COOKIE: &str = "civica_session";

/// The cookie holding the CSRF token of the sign-in form (double submit: there is no
/// session yet to keep it in).
pub const LOGIN_CSRF_COOKIE: &str = "civica_login_csrf";

/// The largest upload unless the server is told otherwise: 200 MiB.
pub const DEFAULT_UPLOAD_LIMIT: u64 = 200 << 20;

/// How staff access is set up.
#[derive(Debug, Clone)]
pub struct StaffConfig {
    /// The users file (`civica user add`); without one nobody can sign in.
    pub users_file: Option<PathBuf>,
    /// Mark cookies `Secure` (the server is behind TLS).
    pub secure_cookies: bool,
    /// The largest upload, in bytes.
    pub upload_limit: u64,
    /// Where uploads are kept until they are ingested (beside the warehouse, never in it).
    pub upload_dir: PathBuf,
    /// The ingest of uploads; without it the upload page says uploads are not available.
    pub ingester: Option<Ingester>,
}

impl StaffConfig {
    /// No accounts, no uploads: a public-only server.
    pub fn public_only() -> Self {
        StaffConfig {
            users_file: None,
            secure_cookies: false,
            upload_limit: DEFAULT_UPLOAD_LIMIT,
            upload_dir: std::env::temp_dir().join("civica-uploads"),
            ingester: None,
        }
    }
}

/// Staff access of a running server.
#[derive(Debug)]
pub struct Staff {
    pub config: StaffConfig,
    pub sessions: Sessions,
    pub ingests: Arc<Ingests>,
}

impl Staff {
    pub fn new(config: StaffConfig) -> Self {
        Staff {
            config,
            sessions: Sessions::new(),
            ingests: Arc::new(Ingests::new()),
        }
    }

    /// The accounts, read afresh (so `civica user add` needs no restart); none without a
    /// users file or when it cannot be read (logged).
    pub fn users(&self) -> Users {
        let Some(path) = &self.config.users_file else {
            return Users::default();
        };
        Users::load(path).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the users file cannot be read: nobody can sign in");
            Users::default()
        })
    }

    /// The `Set-Cookie` value of `name=value` for `max_age` seconds (0 deletes it).
    pub fn cookie(&self, name: &str, value: &str, max_age: u64) -> String {
        let secure = if self.config.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}")
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    Public,
    /// A member of staff signed in with a session (`csrf` is its form token) or using an API
    /// token (`session` is `None`).
    Staff {
        user: String,
        session: Option<SignedIn>,
    },
}

/// A session seen from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub id: String,
    pub csrf: String,
}

impl Viewer {
    /// The audience of the viewer's queries: staff read everything, the public only what is
    /// disclosure-controlled.
    pub fn audience(&self) -> Audience {
        match self {
            Viewer::Public => Audience::Public,
            Viewer::Staff { .. } => Audience::Internal,
        }
    }

    pub fn is_staff(&self) -> bool {
        matches!(self, Viewer::Staff { .. })
    }

    /// The user name and form token of a signed-in session.
    pub fn signed_in(&self) -> Option<(&str, &SignedIn)> {
        match self {
            Viewer::Staff {
                user,
                session: Some(session),
            } => Some((user, session)),
            _ => None,
        }
    }

    /// The viewer of a request: an `Authorization: Bearer` token (a wrong one is refused,
    /// not taken for the public), else the session cookie, else the public.
    pub fn of_request(staff: &Staff, headers: &HeaderMap) -> Result<Viewer, BadToken> {
        if let Some(authorization) = headers.get(header::AUTHORIZATION) {
            let token = authorization
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let user = token.and_then(|t| staff.users().by_token(t).map(|u| u.name.clone()));
            return match user {
                Some(user) => Ok(Viewer::Staff {
                    user,
                    session: None,
                }),
                None => Err(BadToken),
            };
        }
        let session = cookie_value(headers, SESSION_COOKIE)
            .and_then(|id| staff.sessions.get(id).map(|s| (id.to_string(), s)));
        Ok(match session {
            Some((id, session)) => Viewer::Staff {
                user: session.user,
                session: Some(SignedIn {
                    id,
                    csrf: session.csrf,
                }),
            },
            None => Viewer::Public,
        })
    }
}

/// An `Authorization` header without a valid API token: 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadToken;

impl IntoResponse for BadToken {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({
                "error": "unauthorised",
                "message": "the API token is not valid",
            })),
        )
            .into_response()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = BadToken;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, BadToken> {
        Viewer::of_request(&state.staff, &parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; civica_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(&headers, "b"), Some("2"));
        assert_eq!(cookie_value(&headers, "civica"), None);
    }

    #[test]
    fn cookies_are_secure_only_when_configured() {
        let mut config = StaffConfig::public_only();
        let plain = Staff::new(config.clone()).cookie(SESSION_COOKIE, "x", 60);
        assert_eq!(
            plain,
            "civica_session=x; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        config.secure_cookies = true;
        assert!(
            Staff::new(config)
                .cookie(SESSION_COOKIE, "x", 60)
                .ends_with("; Secure")
        );
    }
}
