//! Who a request comes from: the TCP peer, or, when the peer is a trusted reverse proxy
//! (`TRUSTED_PROXIES`), the address that proxy says it forwarded for. Worked out once per
//! request by [`resolve`], for the origin check and the limit on new sessions per address.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

/// Where a request comes from, put in the request's extensions by [`resolve`] (engineioxide
/// keeps the extensions of a socket's first request, so the handshake finds it there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address, as far as this node can tell.
    pub ip: IpAddr,
    /// Whether the TCP peer is a trusted proxy, whose `X-Forwarded-*` headers are believed.
    pub via_trusted_proxy: bool,
}

impl ClientAddr {
    /// What limits per address count by: an IPv4 address, or an IPv6 /64, since one host
    /// (one subscriber line) usually holds a whole /64 and could otherwise pick a fresh
    /// address for every attempt.
    pub fn limit_key(&self) -> IpAddr {
        match self.ip {
            IpAddr::V4(ip) => IpAddr::V4(ip),
            IpAddr::V6(ip) => {
                let prefix = u128::from(ip) & !(u128::from(u64::MAX));
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        }
    }
}

/// The proxies whose `X-Forwarded-*` headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn new(nets: &[IpNet]) -> Self {
        Self(Arc::new(nets.to_vec()))
    }

    /// The addresses and blocks trusted.
    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind a request from `peer`: `peer` itself unless it is a trusted proxy;
    /// then the right-most `X-Forwarded-For` entry that is not a trusted proxy. Right to left,
    /// because each proxy appends the address it received from: what a trusted hop wrote can
    /// be believed, whereas everything left of the first untrusted entry came from the client
    /// and proves nothing. If every entry is a trusted proxy, the left-most one; an entry that
    /// is not an address ends the walk at the hop that wrote it.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return ClientAddr {
                ip: peer,
                via_trusted_proxy: false,
            };
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.into_iter().rev() {
            let Some(ip) = parse_entry(entry) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        ClientAddr {
            ip: client,
            via_trusted_proxy: true,
        }
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port (`[::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

/// Records the request's [`ClientAddr`], from the TCP peer the server was given
/// (`into_make_service_with_connect_info`). Without one nothing is recorded, and whoever
/// needs an address treats the request as coming from an unknown, untrusted client.
pub async fn resolve(
    State(proxies): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    if let Some(peer) = peer {
        let client = proxies.client(peer, request.headers());
        request.extensions_mut().insert(client);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        let net = |n: &&str| n.parse().unwrap_or_else(|_| IpNet::from(ip(n)));
        let nets: Vec<IpNet> = nets.iter().map(net).collect();
        TrustedProxies::new(&nets)
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let client = proxies(&[]).client(ip("198.51.100.7"), &forwarded(&["203.0.113.1"]));
        assert_eq!(client.ip, ip("198.51.100.7"));
        assert!(!client.via_trusted_proxy);
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_right_most_untrusted_entry() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged the first entry; nginx appended the real one, a second proxy
        // appended nginx's.
        let headers = forwarded(&["6.6.6.6, 203.0.113.9", "10.1.2.3"]);

        let client = trusted.client(ip("127.0.0.1"), &headers);

        assert_eq!(client.ip, ip("203.0.113.9"));
        assert!(client.via_trusted_proxy);
    }

    #[test]
    fn a_trusted_peer_without_forwarded_for_is_the_client() {
        let client = proxies(&["127.0.0.1"]).client(ip("127.0.0.1"), &HeaderMap::new());
        assert_eq!(client.ip, ip("127.0.0.1"));
    }

    #[test]
    fn garbage_in_forwarded_for_stops_at_the_hop_that_wrote_it() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded(&["203.0.113.9, bogus, 10.0.0.2"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &headers).ip, ip("10.0.0.2"));
    }

    #[test]
    fn entries_with_ports_and_mapped_addresses_are_understood() {
        let trusted = proxies(&["127.0.0.1"]);
        let headers = forwarded(&["[2001:db8::1]:4711"]);
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), &headers).ip,
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let a = ClientAddr {
            ip: ip("2001:db8:1:2:aaaa::1"),
            via_trusted_proxy: false,
        };
        let b = ClientAddr {
            ip: ip("2001:db8:1:2:bbbb::2"),
            ..a
        };
        assert_eq!(a.limit_key(), b.limit_key());
        assert_eq!(a.limit_key(), ip("2001:db8:1:2::"));
        let v4 = ClientAddr {
            ip: ip("192.0.2.1"),
            ..a
        };
        assert_eq!(v4.limit_key(), ip("192.0.2.1"));
    }
}
