//! civica-dashboard: the web face of civica (pages, charts, JSON API, open-data downloads).
//!
//! Handlers parse the request, ask `civica-analytics` for typed results and encode them; they
//! never build SQL. [`views`] turns results into pages, [`charts`] draws them, [`i18n`] holds
//! the interface languages and [`page_cache`] serves pages by warehouse version with ETags.
//! [`app`] builds the router (compressed responses), [`serve`] runs it until SIGTERM or Ctrl-C.

pub mod charts;
pub mod client;
pub mod dcat;
pub mod error;
pub mod export;
pub mod i18n;
pub mod limits;
pub mod negotiation;
pub mod observability;
pub mod page_cache;
pub mod routes;
pub mod security;
pub mod staff;
pub mod views;

use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::{Router, middleware};
use civica_analytics::opendata::OpenDataConfig;
use civica_analytics::{Engine, QueryLimits};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;
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
    /// Security headers of every answer (CSP with the configured frame ancestors).
    pub security: Arc<security::SecurityHeaders>,
    /// What one client may ask: body size, request time, SQL slots, per-IP rates.
    pub limits: limits::ServerLimits,
    /// The per-IP allowance of public SQL, shared by `/api/v1/query` and the `/query` page.
    pub query_rate: limits::RateLimitLayer,
    /// Permits of the SQL statements running now (`limits.concurrent_queries` of them).
    pub query_slots: Arc<tokio::sync::Semaphore>,
    /// Request counts and latencies for `/metrics`, and the request ids.
    pub metrics: Arc<observability::Metrics>,
    /// Staff accounts, sessions and uploads.
    pub staff: Arc<staff::Staff>,
    /// Trusted reverse proxies, and who may read `/metrics`.
    pub network: Arc<client::Network>,
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
            security: Arc::new(security::SecurityHeaders::default()),
            limits: limits::ServerLimits::default(),
            query_rate: limits::RateLimitLayer::new(limits::ServerLimits::default().query_rate),
            query_slots: Arc::new(tokio::sync::Semaphore::new(
                limits::ServerLimits::default().concurrent_queries,
            )),
            metrics: Arc::new(observability::Metrics::default()),
            network: Arc::new(client::Network::default()),
        }
    }

    /// Believes `X-Forwarded-For` from `network`'s proxies and lets its networks read
    /// `/metrics`.
    pub fn with_network(mut self, network: client::Network) -> Self {
        self.network = Arc::new(network);
        self
    }

    /// Runs public SQL within `limits` instead of [`routes::query::DEFAULT_LIMITS`].
    pub fn with_query_limits(mut self, limits: QueryLimits) -> Self {
        self.query_limits = limits;
        self
    }

    /// Bounds clients by `limits` instead of [`limits::ServerLimits::default`].
    pub fn with_limits(mut self, limits: limits::ServerLimits) -> Self {
        self.query_slots = Arc::new(tokio::sync::Semaphore::new(limits.concurrent_queries));
        self.query_rate = limits::RateLimitLayer::new(limits.query_rate);
        self.limits = limits;
        self
    }

    /// Lets `frame_ancestors` embed the pages and charts (CSP `frame-ancestors`).
    pub fn with_frame_ancestors(mut self, frame_ancestors: &security::FrameAncestors) -> Self {
        self.security = Arc::new(security::SecurityHeaders::new(frame_ancestors));
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
    let security = Arc::clone(&state.security);
    let limits = state.limits;
    let metrics = Arc::clone(&state.metrics);
    let network = Arc::clone(&state.network);
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
        // Bodies past the limit are refused (413) by the extractors that read them.
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn_with_state(
            limits.request_timeout,
            limits::request_timeout,
        ))
        // gzip when the client accepts it; small bodies are left alone.
        .layer(CompressionLayer::new())
        // Request id, log line and metrics of every answer.
        .layer(middleware::from_fn_with_state(
            metrics,
            observability::observe,
        ))
        // Who the client is (behind trusted proxies too), for rate limits and `/metrics`.
        .layer(middleware::from_fn_with_state(network, client::identify))
        // Outermost, so that every answer carries them, errors and fallbacks included.
        .layer(middleware::from_fn_with_state(
            security,
            security::add_security_headers,
        ))
}

/// Serves `state` on `listener` until the process receives SIGTERM or Ctrl-C; requests in
/// flight are allowed to finish. A client has `limits.header_timeout` to send the headers of
/// each request (slow clients cannot hold connections open for ever).
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let header_timeout = state.limits.header_timeout;
    let app = app(state);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        // The peer address is kept for the client address (rate limits, `/metrics`).
        let service = TowerToHyperService::new(app.clone().map_request(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
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
