//! What one client may ask of the server: how large a body, how long a request, how many SQL
//! statements at once, and how often per IP address.
//!
//! [`ServerLimits`] holds the settings (`civica serve` flags). The per-IP limit is a tower
//! layer, [`RateLimitLayer`], so any route takes it with one line:
//!
//! ```text
//! .route("/login", post(post_login).layer(RateLimitLayer::new(state.limits.login_rate)))
//! ```
//!
//! Refusals use the one JSON error shape: 429 with `Retry-After` past the rate,
//! 503 with `Retry-After` when every SQL slot is taken, 408 when a request runs too long,
//! 413 for a body over the limit (axum's `DefaultBodyLimit`, applied by [`crate::app`]).
//! A client is known by its address ([`crate::client`]: behind trusted proxies, the one
//! they forward).

use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use tower::{Layer, Service};

use crate::client::ClientAddr;
use crate::error::AppError;

/// How often one client (IP address) may call a route: `burst` calls at once, then one call
/// every `period / requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed per `period` on average.
    pub requests: NonZeroU32,
    pub period: Duration,
    /// Calls allowed back to back.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `requests` calls a minute, all of which may come at once.
    pub const fn per_minute(requests: NonZeroU32) -> Self {
        RateLimit {
            requests,
            period: Duration::from_secs(60),
            burst: requests,
        }
    }

    fn quota(self) -> Quota {
        let interval = self.period / self.requests.get();
        Quota::with_period(interval.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.requests))
            .allow_burst(self.burst)
    }
}

const DEFAULT_QUERY_RATE: NonZeroU32 = match NonZeroU32::new(60) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

const DEFAULT_LOGIN_RATE: NonZeroU32 = match NonZeroU32::new(10) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// The bounds the server puts on its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// The largest request body of the API and forms, in bytes.
    pub body_bytes: usize,
    /// The longest a request may take, answer included.
    pub request_timeout: Duration,
    /// The longest a client may take to send the headers of a request (then the connection
    /// is closed).
    pub header_timeout: Duration,
    /// SQL statements run at the same time (`/api/v1/query`, `/query`); more wait for none.
    pub concurrent_queries: usize,
    /// Calls of `/api/v1/query` per client.
    pub query_rate: RateLimit,
    /// Login attempts per client.
    pub login_rate: RateLimit,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            concurrent_queries: 4,
            query_rate: RateLimit::per_minute(DEFAULT_QUERY_RATE),
            login_rate: RateLimit::per_minute(DEFAULT_LOGIN_RATE),
        }
    }
}

/// The per-IP limiter of one route (or group of routes).
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>>,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer").finish_non_exhaustive()
    }
}

/// Clients remembered before the ones whose allowance is whole again are forgotten.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimitLayer {
    /// A limiter of its own, with `limit` for each IP address.
    pub fn new(limit: RateLimit) -> Self {
        RateLimitLayer {
            limiter: Arc::new(RateLimiter::hashmap(limit.quota())),
        }
    }

    /// `Ok` when `ip` may make a call now (and counts it), else how long it should wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            limits: self.clone(),
        }
    }
}

/// A service behind a [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct RateLimited<S> {
    inner: S,
    limits: RateLimitLayer,
}

impl<S> Service<Request> for RateLimited<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.limits.check(ClientAddr::of(&request)) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(wait) => {
                let refusal = AppError::TooManyRequests { retry_after: wait }.into_response();
                Box::pin(async move { Ok(refusal) })
            }
        }
    }
}

/// Middleware of the whole application: a request that has not been answered within
/// `timeout` is dropped and answered 408.
pub async fn request_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::Timeout { after: timeout }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let limit = RateLimit {
            requests: NonZeroU32::new(2).unwrap(),
            period: Duration::from_secs(60),
            burst: NonZeroU32::new(2).unwrap(),
        };
        let layer = RateLimitLayer::new(limit);
        assert!(layer.check(ip(1)).is_ok());
        assert!(layer.check(ip(1)).is_ok());
        let wait = layer.check(ip(1)).expect_err("the third call is refused");
        // One call every 30 s: the next one is allowed within that.
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(
            layer.check(ip(2)).is_ok(),
            "another address has its own allowance"
        );
    }
}
