//! The open-data site as static files (`civica export`): the pages, every download, every
//! `datapackage.json`, the DCAT-AP_IT catalogue and the API's JSON documents, written by
//! asking the application itself, so that the files are exactly what the server answers.
//!
//! Links in pages are site-absolute (`/opendata/…`): publish the directory at the root of a
//! web server. The catalogue's URLs use the configured base URI.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use civica_analytics::opendata::{DATASETS, DownloadFormat};
use tower::ServiceExt;

use crate::dcat::CatalogFormat;
use crate::{AppState, app};

/// What can stop an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Static files need absolute URLs in the catalogue.
    #[error("the open-data configuration has no base URI: give the address the site will have")]
    NoBaseUri,
    /// A page or file of the site did not answer 200.
    #[error("{path} answered {status}: {body}")]
    Request {
        path: String,
        status: StatusCode,
        body: String,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The URL paths of the site and the files they are written to.
pub fn site_files() -> Vec<(String, String)> {
    let mut files = vec![
        ("/".to_string(), "index.html".to_string()),
        ("/static/civica.css".into(), "static/civica.css".into()),
        ("/opendata".into(), "opendata/index.html".into()),
        // The API reference, so that the archived site documents the API it describes.
        ("/api/docs".into(), "api/docs/index.html".into()),
    ];
    for dataset in DATASETS {
        for format in DownloadFormat::ALL {
            let name = format!("opendata/{}{}", dataset.id, format.suffix());
            files.push((format!("/{name}"), name));
        }
        let name = format!("opendata/{}/datapackage.json", dataset.id);
        files.push((format!("/{name}"), name));
    }
    for format in CatalogFormat::ALL {
        let name = format!("catalog.{}", format.extension());
        files.push((format!("/{name}"), name));
    }
    for path in [
        "api/openapi.json",
        "api/v1/kpis",
        "api/v1/services",
        "api/v1/datasets",
        "api/v1/version",
    ] {
        // Extension-less API paths become `…/index.json` so that a plain web server can
        // give them a JSON media type.
        let name = if path.ends_with(".json") {
            path.to_string()
        } else {
            format!("{path}/index.json")
        };
        files.push((format!("/{path}"), name));
    }
    files
}

/// Writes the site into `out`; returns the files written with their sizes.
pub async fn export_site(state: AppState, out: &Path) -> Result<Vec<(PathBuf, u64)>, ExportError> {
    if state.opendata.publisher.base_uri.is_none() {
        return Err(ExportError::NoBaseUri);
    }
    let router = app(state);
    let mut written = Vec::new();
    for (url, name) in site_files() {
        let request = Request::get(&url)
            .body(Body::empty())
            .map_err(|e| request_error(&url, StatusCode::BAD_REQUEST, e.to_string()))?;
        let response = router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| request_error(&url, status, e.to_string()))?;
        if status != StatusCode::OK {
            return Err(request_error(
                &url,
                status,
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        let path = out.join(&name);
        let write = |source| ExportError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(write)?;
        }
        tokio::fs::write(&path, &body).await.map_err(write)?;
        written.push((path, body.len() as u64));
    }
    Ok(written)
}

fn request_error(path: &str, status: StatusCode, body: String) -> ExportError {
    ExportError::Request {
        path: path.to_string(),
        status,
        body,
    }
}
