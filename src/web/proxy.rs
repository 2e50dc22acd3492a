//! Who is really asking: the client address, scheme and host of a request, taking
//! `X-Forwarded-For/Proto/Host` into account only when the TCP peer is a trusted proxy
//! (`server.trusted_proxies`). Anyone else could write those headers to spoof an address.
//!
//! actix's own `ConnectionInfo` believes forwarding headers from every peer, so request
//! code uses [`ClientInfo`] (put in the request extensions by the logging middleware).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use actix_web::http::header::HeaderMap;

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies in this network. IPv4-mapped IPv6 peers (`::ffff:127.0.0.1`, as a
    /// dual-stack listener reports IPv4 clients) match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    /// `192.0.2.1` (a single address), `192.0.2.0/24`, `::1`, `fd00::/8`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{s}`: prefix length must be 0 to {max}")),
            },
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The configured proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `server.trusted_proxies`; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

/// The client as hygrocast understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The real client address: the peer, or what trusted proxies reported.
    pub addr: Option<IpAddr>,
    /// `http` or `https` as the client used it.
    pub scheme: String,
    /// The host the client asked for (`Host`, or `X-Forwarded-Host` from a trusted proxy).
    pub host: Option<String>,
}

impl ClientInfo {
    /// Resolves the client of a request that came from `peer` with `headers`.
    ///
    /// `X-Forwarded-For` is read from the right: every proxy appends the address it got
    /// the request from, so the rightmost entry not itself a trusted proxy is the client
    /// (entries left of it were written by the client and prove nothing).
    pub fn resolve(
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> Self {
        let peer_ip = peer.map(|p| p.ip());
        let host_header = header_str(headers, "host").map(str::to_string);
        let from_proxy = peer_ip.is_some_and(|ip| trusted.trusts(ip));
        if !from_proxy {
            return Self {
                addr: peer_ip,
                scheme: "http".into(),
                host: host_header,
            };
        }
        let mut addr = peer_ip;
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    addr = Some(ip);
                    if !trusted.trusts(ip) {
                        break;
                    }
                }
                // Garbage where an address should be: the client wrote it (or a proxy is
                // misconfigured); keep the last address a trusted proxy vouched for.
                None => break,
            }
        }
        let scheme = first_value(headers, "x-forwarded-proto")
            .map(str::to_ascii_lowercase)
            .filter(|s| s == "http" || s == "https")
            .unwrap_or_else(|| "http".into());
        let host = first_value(headers, "x-forwarded-host")
            .map(str::to_string)
            .or(host_header);
        Self { addr, scheme, host }
    }

    /// The address for logs: the IP, or `-` when unknown.
    pub fn addr_display(&self) -> String {
        self.addr.map_or_else(|| "-".into(), |a| a.to_string())
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The first entry of a possibly comma-separated header (what the outermost proxy saw).
fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    header_str(headers, name)?
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
}

/// An address in `X-Forwarded-For`: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:443` or
/// `192.0.2.1:5000` (some proxies add the port).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn default_trusted() -> TrustedProxies {
        TrustedProxies::parse(&["127.0.0.1", "::1"]).unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.200.1.2".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(
            one.contains("::ffff:127.0.0.1".parse().unwrap()),
            "IPv4-mapped peer"
        );
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        for bad in ["", "localhost", "10.0.0.0/33", "::1/129", "1.2.3.4/x"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        let err = TrustedProxies::parse(&["127.0.0.1", "proxy.lan"]).unwrap_err();
        assert!(err.contains("proxy.lan"), "{err}");
    }

    #[test]
    fn forwarded_headers_from_a_trusted_proxy_are_believed() {
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "example.org"),
        ]);
        let c = ClientInfo::resolve(peer("127.0.0.1:50000"), &h, &default_trusted());
        assert_eq!(c.addr, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(c.scheme, "https");
        assert_eq!(c.host.as_deref(), Some("example.org"));
    }

    #[test]
    fn forwarded_headers_from_anyone_else_are_ignored() {
        let h = headers(&[
            ("host", "hygro.lan"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ]);
        let c = ClientInfo::resolve(peer("198.51.100.4:1234"), &h, &default_trusted());
        assert_eq!(c.addr, Some("198.51.100.4".parse().unwrap()));
        assert_eq!(c.scheme, "http");
        assert_eq!(c.host.as_deref(), Some("hygro.lan"));
        // An empty list trusts no one, not even loopback.
        let c = ClientInfo::resolve(peer("127.0.0.1:1"), &h, &TrustedProxies::default());
        assert_eq!(c.addr, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn a_spoofed_entry_left_of_the_real_client_is_not_believed() {
        // The client sent "X-Forwarded-For: 1.1.1.1"; Apache appended the real address.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7")]);
        let c = ClientInfo::resolve(peer("127.0.0.1:5"), &h, &default_trusted());
        assert_eq!(c.addr, Some("203.0.113.7".parse().unwrap()));
        // Two trusted proxies in a row: skip both.
        let trusted = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.7, 10.1.2.3")]);
        let c = ClientInfo::resolve(peer("127.0.0.1:5"), &h, &trusted);
        assert_eq!(c.addr, Some("203.0.113.7".parse().unwrap()));
        // Garbage stops the walk at the last vouched-for address.
        let h = headers(&[("x-forwarded-for", "not-an-ip, 10.1.2.3")]);
        let c = ClientInfo::resolve(peer("127.0.0.1:5"), &h, &trusted);
        assert_eq!(c.addr, Some("10.1.2.3".parse().unwrap()));
        // Ports and brackets are tolerated.
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        let c = ClientInfo::resolve(peer("[::1]:5"), &h, &default_trusted());
        assert_eq!(c.addr, Some("2001:db8::1".parse().unwrap()));
        // A bogus scheme is ignored.
        let h = headers(&[("x-forwarded-proto", "gopher")]);
        let c = ClientInfo::resolve(peer("127.0.0.1:5"), &h, &default_trusted());
        assert_eq!(c.scheme, "http");
    }
}
