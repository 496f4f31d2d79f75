//! Staff access over HTTP: `GET /login` (the form), `POST /login` (fields `username`,
//! `password`, `csrf`), `POST /logout`, and the upload of service logs: `GET /staff/upload`,
//! `POST /staff/upload` (multipart: `csrf`, `file`), `GET /staff/ingests/{id}` (progress, then
//! summary and quarantined rows).
//!
//! Sessions are cookies (`civica_session`: HttpOnly, SameSite=Strict, `Secure` behind TLS).
//! Every form that changes something carries a CSRF token: the session's, or for the sign-in
//! form a random one also set as a cookie (double submit); a missing or wrong token is 403.
//! A failed sign-in is a 401 with the same generic message whether or not the name exists.
//! Staff pages are never cached; the public is sent to `/login` (303).

use askama::Template;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::AppState;
use crate::error::AppError;
use crate::i18n::LangChoice;
use crate::limits::RateLimitLayer;
use crate::staff::accounts::{constant_time_eq, random_hex};
use crate::staff::sessions::SESSION_LIFETIME;
use crate::staff::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, Viewer};
use crate::views;

/// How long the sign-in form's token stays valid.
const LOGIN_FORM_SECONDS: u64 = 60 * 60;

pub fn router(state: &AppState) -> Router<AppState> {
    // Room for the multipart framing around a file of the largest size.
    let body_limit = usize::try_from(state.staff.config.upload_limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    Router::new()
        .route(
            "/login",
            get(get_login).post(post_login.layer(RateLimitLayer::new(state.limits.login_rate))),
        )
        .route("/logout", post(post_logout))
        .route(
            "/staff/upload",
            get(get_upload).post(post_upload.layer(DefaultBodyLimit::max(body_limit))),
        )
        .route("/staff/ingests/{id}", get(get_ingest))
}

#[derive(Debug, Default, Deserialize)]
struct LangParam {
    lang: Option<String>,
}

fn language(lang: Option<&str>, headers: &HeaderMap) -> LangChoice {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    LangChoice::negotiate(lang, accept)
}

/// A staff page: HTML, never stored by caches.
fn html(status: StatusCode, choice: LangChoice, page: impl Template) -> Result<Response, AppError> {
    let body = page.render().map_err(AppError::internal)?;
    Ok((
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_LANGUAGE, choice.lang.code()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// A short refusal in the request's language (403, 413, 503).
fn refusal(status: StatusCode, choice: LangChoice, key: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        choice.lang.t(key),
    )
        .into_response()
}

fn to_login(choice: LangChoice) -> Response {
    Redirect::to(&choice.href("/login")).into_response()
}

/// The sign-in form, with a fresh form token in a hidden field and a cookie.
async fn get_login(
    State(state): State<AppState>,
    Query(params): Query<LangParam>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(params.lang.as_deref(), &headers);
    let csrf = random_hex(32);
    let cookie = state
        .staff
        .cookie(LOGIN_CSRF_COOKIE, &csrf, LOGIN_FORM_SECONDS);
    let page = views::staff::login(&state, choice, csrf, "", false)?;
    let mut response = html(StatusCode::OK, choice, page)?;
    append_cookie(&mut response, &cookie);
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

/// Checks the form token, then the password (on a blocking thread: argon2 is slow on
/// purpose); opens a session on success.
async fn post_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form.map_err(|e| AppError::BadRequest {
        message: e.body_text(),
    })?;
    let choice = language(form.lang.as_deref(), &headers);
    let expected = crate::staff::cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if form.csrf.is_empty() || !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        return Ok(refusal(StatusCode::FORBIDDEN, choice, "csrf-refused"));
    }
    let staff = state.staff.clone();
    let (username, password) = (form.username.trim().to_string(), form.password);
    let name = username.clone();
    let user = tokio::task::spawn_blocking(move || {
        staff
            .users()
            .verify(&name, &password)
            .map(|u| u.name.clone())
    })
    .await
    .map_err(AppError::internal)?;
    let Some(user) = user else {
        tracing::info!("failed sign-in");
        let page = views::staff::login(&state, choice, form.csrf, &username, true)?;
        return html(StatusCode::UNAUTHORIZED, choice, page);
    };
    tracing::info!(user, "signed in");
    let id = state.staff.sessions.open(&user);
    let mut response = Redirect::to(&choice.href("/staff/upload")).into_response();
    let session_cookie = state
        .staff
        .cookie(SESSION_COOKIE, &id, SESSION_LIFETIME.as_secs());
    append_cookie(&mut response, &session_cookie);
    append_cookie(&mut response, &state.staff.cookie(LOGIN_CSRF_COOKIE, "", 0));
    Ok(response)
}

fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = header::HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (its form token must come with the request).
async fn post_logout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let choice = language(None, &headers);
    let Some((_, session)) = viewer.signed_in() else {
        return Redirect::to("/").into_response();
    };
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !constant_time_eq(csrf.as_bytes(), session.csrf.as_bytes()) {
        return refusal(StatusCode::FORBIDDEN, choice, "csrf-refused");
    }
    state.staff.sessions.close(&session.id);
    let mut response = Redirect::to(&choice.href("/")).into_response();
    append_cookie(&mut response, &state.staff.cookie(SESSION_COOKIE, "", 0));
    response
}

async fn get_upload(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<LangParam>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(params.lang.as_deref(), &headers);
    if viewer.signed_in().is_none() {
        return Ok(to_login(choice));
    }
    html(
        StatusCode::OK,
        choice,
        views::staff::upload(&state, choice, &viewer)?,
    )
}

/// Saves the uploaded file beside the warehouse (at most the upload limit: 413 past it),
/// checks the form token, and queues its ingest; answers with the ingest's page.
async fn post_upload(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, AppError> {
    let choice = language(None, &headers);
    let Some((user, session)) = viewer.signed_in() else {
        return Ok(to_login(choice));
    };
    let config = &state.staff.config;
    let Some(ingester) = config.ingester.clone() else {
        return Ok(refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            choice,
            "upload-unavailable",
        ));
    };
    let dir = config.upload_dir.join(random_hex(8));
    let mut csrf = String::new();
    let mut saved: Option<(std::path::PathBuf, String)> = None;
    let outcome = async {
        while let Some(mut field) = multipart.next_field().await.map_err(Upload::from)? {
            match field.name() {
                Some("csrf") => csrf = field.text().await.map_err(Upload::from)?,
                Some("file") if saved.is_none() => {
                    let name = safe_file_name(field.file_name().unwrap_or(""));
                    tokio::fs::create_dir_all(&dir).await.map_err(Upload::Io)?;
                    let path = dir.join(&name);
                    let mut file = tokio::fs::File::create(&path).await.map_err(Upload::Io)?;
                    let mut size = 0u64;
                    while let Some(chunk) = field.chunk().await.map_err(Upload::from)? {
                        size += chunk.len() as u64;
                        if size > config.upload_limit {
                            return Err(Upload::TooLarge);
                        }
                        file.write_all(&chunk).await.map_err(Upload::Io)?;
                    }
                    file.flush().await.map_err(Upload::Io)?;
                    saved = Some((path, name));
                }
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    let refuse = |status, key| {
        let _ = std::fs::remove_dir_all(&dir);
        Ok(refusal(status, choice, key))
    };
    match outcome {
        Ok(()) => {}
        Err(Upload::TooLarge) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "upload-too-large"),
        Err(Upload::Multipart(status)) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "upload-too-large");
        }
        Err(Upload::Multipart(_)) => return refuse(StatusCode::BAD_REQUEST, "upload-malformed"),
        Err(Upload::Io(e)) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(AppError::internal(e));
        }
    }
    if csrf.is_empty() || !constant_time_eq(csrf.as_bytes(), session.csrf.as_bytes()) {
        return refuse(StatusCode::FORBIDDEN, "csrf-refused");
    }
    let Some((path, name)) = saved else {
        return refuse(StatusCode::BAD_REQUEST, "upload-malformed");
    };
    tracing::info!(user, file = name, "upload queued for ingest");
    let id = state.staff.ingests.start(ingester, path, &name, user);
    Ok(Redirect::to(&choice.href(&format!("/staff/ingests/{id}"))).into_response())
}

/// Why an upload was not saved.
enum Upload {
    TooLarge,
    /// The body is not valid multipart (or too large for the body limit): its status.
    Multipart(StatusCode),
    Io(std::io::Error),
}

impl From<axum::extract::multipart::MultipartError> for Upload {
    fn from(e: axum::extract::multipart::MultipartError) -> Self {
        Upload::Multipart(e.status())
    }
}

/// The uploaded name reduced to letters, digits, `.`, `_` and `-` (no directories).
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() {
        "upload.csv".to_string()
    } else {
        clean.chars().take(100).collect()
    }
}

async fn get_ingest(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(params): Query<LangParam>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(params.lang.as_deref(), &headers);
    if !viewer.is_staff() {
        return Ok(to_login(choice));
    }
    let job = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.staff.ingests.get(id))
        .ok_or_else(|| AppError::NotFound {
            message: format!("no upload with id `{id}`"),
        })?;
    let page = views::staff::ingest(&state, choice, &viewer, &job).await?;
    html(StatusCode::OK, choice, page)
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn uploaded_names_lose_directories_and_odd_characters() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(
            safe_file_name("C:\\dati\\richieste 2018.csv"),
            "richieste_2018.csv"
        );
        assert_eq!(safe_file_name(".."), "upload.csv");
        assert_eq!(safe_file_name(""), "upload.csv");
    }
}
