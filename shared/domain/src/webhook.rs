//! Customer webhook endpoints: which URLs an org may register, and which addresses a delivery may
//! connect to. The rules only; the delivery adapter resolves names and connects.
//!
//! A webhook URL is a customer's input that makes the service open a connection, so it is held to
//! what a public HTTPS receiver needs and nothing more (no server-side request forgery): `https` on
//! port 443 or 8443, no credentials or fragment, at most [`MAX_URL_CHARS`] characters, a host name or
//! a public address. What the delivery must do with it, for these rules to hold: resolve the name at
//! each attempt and check every address with [`refused_address`] before any connection (a name that
//! later points inside a network is refused too); connect to an address it checked, never resolving
//! again (no DNS rebinding between check and connect); follow no redirect (a public receiver could
//! send it anywhere); use no proxy from the environment.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod delivery;
pub mod endpoint;

pub use delivery::{Attempt, Delivery, DeliveryStatus, Health, Schedule};
pub use endpoint::{Endpoint, EndpointPatch, NewEndpoint};

/// Longest endpoint URL, in characters.
pub const MAX_URL_CHARS: usize = 2_048;
/// The ports a receiver may listen on: HTTPS's own, and the usual alternative.
pub const ALLOWED_PORTS: [u16; 2] = [443, 8443];
/// Longest endpoint description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 255;
/// Most endpoints an org may have.
pub const MAX_ENDPOINTS_PER_ORG: usize = 20;

/// Why an endpoint URL is refused (each one a `400` on `url`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must be at most {MAX_URL_CHARS} characters")]
    TooLong,
    #[error("must be an absolute URL")]
    Unparsable,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry credentials")]
    Credentials,
    #[error("must not carry a fragment")]
    Fragment,
    #[error("must use port 443 or 8443")]
    Port,
    #[error("must name a host")]
    NoHost,
    #[error("must not point to {0}")]
    Address(&'static str),
}

/// A URL an endpoint may have: only [`EndpointUrl::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    url: url::Url,
}

impl EndpointUrl {
    /// Checks `raw` against the rules above. A literal address is checked here; a name is checked at
    /// each attempt, once resolved.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        Self::parse_admitting(raw, |_| false)
    }

    /// [`EndpointUrl::parse`], except that a URL `admitted` approves skips the scheme, port and address
    /// rules (never the length, credentials and fragment ones). Every deployed function parses with
    /// [`EndpointUrl::parse`]; only the local stack (infra/gateway, which no function depends on) admits
    /// its receivers on loopback.
    pub fn parse_admitting(raw: &str, admitted: fn(&url::Url) -> bool) -> Result<Self, UrlError> {
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(UrlError::TooLong);
        }
        let url = url::Url::parse(raw).map_err(|_| UrlError::Unparsable)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        if url.host().is_some() && admitted(&url) {
            return Ok(EndpointUrl { url });
        }
        if url.scheme() != "https" {
            return Err(UrlError::NotHttps);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        if !ALLOWED_PORTS.contains(&url.port_or_known_default().unwrap_or(0)) {
            return Err(UrlError::Port);
        }
        match url.host() {
            None => return Err(UrlError::NoHost),
            Some(url::Host::Ipv4(ip)) => refuse(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => refuse(IpAddr::V6(ip))?,
            Some(url::Host::Domain(name)) => {
                if is_local_name(name) {
                    return Err(UrlError::Address("a local name"));
                }
            }
        }
        Ok(EndpointUrl { url })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The host to resolve (a name, or a literal address) and the port to connect to.
    pub fn host_and_port(&self) -> (String, u16) {
        let host = match self.url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        (host, self.url.port_or_known_default().unwrap_or(443))
    }
}

fn refuse(ip: IpAddr) -> Result<(), UrlError> {
    refused_address(ip).map_or(Ok(()), |reason| Err(UrlError::Address(reason)))
}

/// Names that only ever mean this machine or its network (`localhost`, `*.localhost`, `*.local`,
/// `*.internal`): refused before any lookup.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || [".localhost", ".local", ".internal", ".localdomain"].iter().any(|suffix| name.ends_with(suffix))
}

/// Why a delivery may not connect to `ip`, if it may not: anything but a public unicast address.
/// An IPv4 address carried in IPv6 (mapped, compatible, NAT64, 6to4) is judged as the IPv4 address.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = if ip.is_unspecified() || a == 0 {
        "an unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private address"
    } else if ip.is_link_local() {
        "a link-local address"
    } else if a == 100 && (64..128).contains(&b) {
        "a shared (CGNAT) address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if ip.is_broadcast()
        || a >= 240
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19))
    {
        // Broadcast, the future-use block, IETF protocol assignments, 6to4 relays, benchmarking.
        "a reserved address"
    } else if ip.is_documentation() {
        "a documentation address"
    } else {
        return None;
    };
    Some(reason)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return refused_v4(v4);
    }
    let first = ip.segments()[0];
    let reason = if ip.is_unspecified() {
        "an unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        "a link-local address"
    } else if first & 0xfe00 == 0xfc00 {
        "a private address"
    } else if (first == 0x2001 && ip.segments()[1] == 0x0db8) || first & 0xfff0 == 0x3ff0 {
        "a documentation address"
    } else if first == 0x2001 && ip.segments()[1] < 0x0200 {
        // 2001::/23, IETF protocol assignments (Teredo among them).
        "a reserved address"
    } else if first & 0xe000 != 0x2000 {
        // Only 2000::/3 is global unicast.
        "a reserved address"
    } else {
        return None;
    };
    Some(reason)
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) > (0, 1) => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
