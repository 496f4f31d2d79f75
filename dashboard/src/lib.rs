//! civica-dashboard: the web face of civica (pages, charts, JSON API, open-data downloads).
//!
//! Handlers parse the request, ask `civica-analytics` for typed results and encode them; they
//! never build SQL. [`views`] turns results into pages, [`charts`] draws them, [`i18n`] holds
//! the interface languages and [`page_cache`] serves pages by warehouse version with ETags.
//! [`app`] builds the router (compressed responses), [`serve`] runs it until SIGTERM or Ctrl-C.

pub mod charts;
pub mod dcat;
pub mod error;
pub mod export;
pub mod i18n;
pub mod negotiation;
pub mod page_cache;
pub mod routes;
pub mod staff;
pub mod views;

use std::sync::Arc;

use axum::Router;
use civica_analytics::opendata::OpenDataConfig;
use civica_analytics::{Engine, QueryLimits};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

pub use error::AppError;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Publisher and licence of the open data.
    pub opendata: Arc<OpenDataConfig>,
    /// Rendered pages of the current warehouse version.
    pub pages: Arc<page_cache::PageCache>,
    /// Bounds of the public SQL (`/api/v1/query`, `/query`): time, memory, rows.
    pub query_limits: QueryLimits,
    /// Staff accounts, sessions and uploads.
    pub staff: Arc<staff::Staff>,
}

impl AppState {
    pub fn new(engine: Engine) -> Self {
        let mut staff = staff::StaffConfig::public_only();
        if let Some(parent) = engine.layout().root().parent() {
            staff.upload_dir = parent.join("civica-uploads");
        }
        AppState {
            staff: Arc::new(staff::Staff::new(staff)),
            engine: Arc::new(engine),
            opendata: Arc::new(OpenDataConfig::default()),
            pages: Arc::new(page_cache::PageCache::new()),
            query_limits: routes::query::DEFAULT_LIMITS,
        }
    }

    /// Runs public SQL within `limits` instead of [`routes::query::DEFAULT_LIMITS`].
    pub fn with_query_limits(mut self, limits: QueryLimits) -> Self {
        self.query_limits = limits;
        self
    }

    /// Lets staff sign in, read everything and upload logs as `config` says.
    pub fn with_staff(mut self, config: staff::StaffConfig) -> Self {
        self.staff = Arc::new(staff::Staff::new(config));
        self
    }

    /// Publishes the open data under `config` instead of the sample city's defaults.
    pub fn with_opendata(mut self, config: OpenDataConfig) -> Self {
        self.opendata = Arc::new(config);
        self
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::pages::router())
        .merge(routes::charts::router())
        .merge(routes::api::router())
        // Open data: datasets, downloads, datapackages and the DCAT-AP_IT catalogue.
        .merge(routes::opendata::router())
        .merge(routes::catalog::router())
        .merge(routes::api_v1::router(&state))
        .merge(routes::query::router())
        .merge(routes::docs::router())
        .merge(routes::staff::router(&state))
        .merge(routes::health::router())
        .fallback(routes::error_pages::not_found)
        .with_state(state)
        // gzip when the client accepts it; small bodies are left alone.
        .layer(CompressionLayer::new())
}

/// Serves `state` on `listener` until the process receives SIGTERM or Ctrl-C; requests in
/// flight are allowed to finish.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
