//! Who is on the other end of a request: the client's IP address.
//!
//! It is the peer address of the connection, unless that peer is one of the city's own
//! reverse proxies (`civica serve --trusted-proxy`): then the client is the last address of
//! `X-Forwarded-For` that is not itself a trusted proxy. `X-Forwarded-For` from anyone else is
//! ignored, so a client cannot pick its own address to escape a rate limit.
//!
//! [`identify`] runs before every route and leaves a [`ClientAddr`] in the request; the rate
//! limits and the `/metrics` guard read it.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client address of a request, as [`identify`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of `request`: the one [`identify`] recorded, else the peer of the
    /// connection, else (a request made in-process, e.g. by `civica export`) the unspecified
    /// address.
    pub fn of(request: &Request) -> IpAddr {
        Self::in_extensions(request.extensions())
    }

    fn in_extensions(extensions: &Extensions) -> IpAddr {
        if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
            return *ip;
        }
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
    }
}

/// Handlers take the client address as an argument.
impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(Self::in_extensions(&parts.extensions)))
    }
}

/// Where clients may come from, as far as the server is concerned: the reverse proxies whose
/// `X-Forwarded-For` is believed, and the networks allowed to read `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub trusted_proxies: Vec<IpNet>,
    /// Networks whose clients may read `/metrics` without an API token.
    pub metrics_from: Vec<IpNet>,
}

impl Default for Network {
    /// No proxy; `/metrics` for the machine itself (loopback) only.
    fn default() -> Self {
        Network {
            trusted_proxies: Vec::new(),
            metrics_from: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|net| net.parse().ok())
                .collect(),
        }
    }
}

/// `192.0.2.7` or `192.0.2.0/24` (an address alone is a network of one).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a network (CIDR)"))
}

impl Network {
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Whether `ip` may read `/metrics` without a token.
    pub fn may_read_metrics(&self, ip: IpAddr) -> bool {
        self.metrics_from.iter().any(|net| net.contains(&ip))
    }

    /// The client behind a connection from `peer`: `peer` itself unless it is a trusted
    /// proxy; then `X-Forwarded-For` read from the right, skipping trusted proxies. An entry
    /// that is not an address stops the walk at the last hop known.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Middleware of the whole application: records the [`ClientAddr`] of each request.
pub async fn identify(
    State(network): State<Arc<Network>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = ClientAddr::of(&request);
    let client = network.client(peer, request.headers());
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    fn behind(proxies: &[&str]) -> Network {
        Network {
            trusted_proxies: proxies.iter().map(|p| parse_network(p).unwrap()).collect(),
            ..Network::default()
        }
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let network = Network::default();
        let peer = ip("198.51.100.9");
        assert_eq!(network.client(peer, &forwarded("203.0.113.5")), peer);
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_last_untrusted_hop() {
        let network = behind(&["10.0.0.0/8", "192.0.2.1"]);
        // The client wrote a false first entry; the proxies appended what they saw.
        let headers = forwarded("1.2.3.4, 203.0.113.5, 10.1.1.1");
        assert_eq!(network.client(ip("192.0.2.1"), &headers), ip("203.0.113.5"));
        // Several headers count as one list.
        let mut headers = forwarded("1.2.3.4");
        headers.append("x-forwarded-for", "203.0.113.6".parse().unwrap());
        assert_eq!(network.client(ip("10.0.0.2"), &headers), ip("203.0.113.6"));
        // Ports and IPv6 are understood.
        let headers = forwarded("[2001:db8::7]:51000");
        assert_eq!(network.client(ip("10.0.0.2"), &headers), ip("2001:db8::7"));
    }

    #[test]
    fn a_proxy_without_the_header_or_with_garbage_is_the_client() {
        let network = behind(&["10.0.0.0/8"]);
        assert_eq!(
            network.client(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        let headers = forwarded("203.0.113.5, not-an-address, 10.0.0.3");
        assert_eq!(network.client(ip("10.0.0.2"), &headers), ip("10.0.0.3"));
    }

    #[test]
    fn networks_are_addresses_or_cidr() {
        assert_eq!(
            parse_network("192.0.2.7").unwrap(),
            "192.0.2.7/32".parse().unwrap()
        );
        assert!(parse_network("10.0.0.0/8").is_ok());
        assert!(parse_network("::1").is_ok());
        assert!(parse_network("proxy.example").is_err());
    }

    #[test]
    fn metrics_are_for_loopback_unless_told_otherwise() {
        let network = Network::default();
        assert!(network.may_read_metrics(ip("127.0.0.1")));
        assert!(network.may_read_metrics(ip("::1")));
        assert!(!network.may_read_metrics(ip("192.0.2.7")));
    }
}
