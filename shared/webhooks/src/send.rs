//! The HTTP client of a delivery: it POSTs one signed attempt to a customer's URL and tells what came
//! of it, as an [`Attempt`].
//!
//! A webhook URL is a customer's input that makes the service open a connection, so the sender
//! carries out what [`domain::webhook`] asks of a delivery against server-side request forgery:
//!
//! - **It resolves the host at every attempt**, through its [`Resolve`], and checks every address the
//!   name resolves to before any connection: if any one of them is refused ([`Reach::refused`]), the
//!   attempt fails and nothing is connected to. A name that was public when the endpoint was
//!   registered and points inside a network later is refused then. A URL whose host is a literal
//!   address is not resolved: that address is checked as it is.
//! - **It connects only to the addresses it checked.** The HTTP client is built for the attempt, with
//!   a resolver that answers with exactly those addresses (and nothing for any other name): there is
//!   no second lookup that a name server could answer differently between the check and the
//!   connection (DNS rebinding).
//! - **It follows no redirect**: a public receiver could send it anywhere, inside a network too. A
//!   `3xx` fails the attempt. (The client is hyper's, which follows none.)
//! - **It uses no proxy**, whatever the environment says: a proxy would connect in its stead, to an
//!   address nobody checked. (hyper's client reads no proxy from the environment.)
//! - **It speaks https only**, verified against Mozilla's roots compiled into the binary
//!   (`webpki-roots`; nothing is read from the machine), with the aws-lc-rs provider given
//!   explicitly (no process-wide default). Plain `http` only where its [`Reach`] allows it.
//! - **It waits at most [`ATTEMPT_TIMEOUT`]** for the whole attempt, the lookup included, and reads at
//!   most a few KiB of an answer for the excerpt an attempt keeps: a receiver can neither hold a
//!   function nor fill its memory.
//! - **Its failures say why in a few words**, never with the URL, a header or the body sent (the
//!   signature is a header).
//!
//! Which addresses a sender may reach is its [`Reach`]. [`PublicOnly`], the only one in this crate, is
//! what deployed functions use: public unicast addresses, over https. The local gateway (another
//! crate, never deployed) implements one that also allows loopback and plain http, so that a
//! developer's receiver on `localhost` can be tried; a deployed function does not depend on that crate
//! and cannot build it.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::webhook::delivery::{ATTEMPT_TIMEOUT, Attempt};
use rustls::pki_types::CertificateDer;

mod client;
#[cfg(test)]
mod tests;

/// The future a [`Resolve`] answers with.
pub type Resolving<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Resolves a host name to its addresses, at every attempt.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses `host` (a name, never a literal address) resolves to.
    fn resolve<'a>(&'a self, host: &'a str) -> Resolving<'a>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> Resolving<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, 0)).await?.map(|addr| addr.ip()).collect()) })
    }
}

/// Which targets a sender may reach.
pub trait Reach: Send + Sync + 'static {
    /// Why the sender may not connect to `ip`, if it may not: by default anything but a public
    /// unicast address ([`domain::webhook::refused_address`]).
    fn refused(&self, ip: IpAddr) -> Option<&'static str> {
        domain::webhook::refused_address(ip)
    }

    /// Whether plain `http` URLs may be reached: by default not (https only).
    fn plain_http(&self) -> bool {
        false
    }
}

/// Public unicast addresses over https: what a deployed function reaches.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnly;

impl Reach for PublicOnly {}

/// The HTTP client of deliveries. Cheap to clone; build it once per process.
#[derive(Clone)]
pub struct Sender {
    resolver: Arc<dyn Resolve>,
    reach: Arc<dyn Reach>,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Where an attempt may connect: the URL, the name that was resolved (none for a literal address)
/// and the addresses that were checked, with the URL's port.
struct Target {
    url: url::Url,
    name: Option<String>,
    addrs: Vec<SocketAddr>,
}

impl Sender {
    /// What deployed functions use: the system's resolver, [`PublicOnly`], Mozilla's roots and
    /// [`ATTEMPT_TIMEOUT`].
    pub fn public() -> Result<Self, rustls::Error> {
        Self::new(Arc::new(SystemResolver), Arc::new(PublicOnly), Vec::new())
    }

    /// A sender with its own resolver and reach, trusting Mozilla's roots and `extra_roots`.
    pub fn new(
        resolver: Arc<dyn Resolve>,
        reach: Arc<dyn Reach>,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, rustls::Error> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for root in extra_roots {
            roots.add(root)?;
        }
        // No ALPN: the client speaks HTTP/1.1 only, which a server assumes without it (hyper-rustls
        // refuses a config that sets its own).
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Sender { resolver, reach, tls: Arc::new(tls), timeout: ATTEMPT_TIMEOUT })
    }

    /// The same sender, waiting at most `timeout` for an attempt (tests make it short).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// POSTs `body` (JSON) with `headers` to `url`, once, and tells what came of it. Nothing is
    /// connected to unless the URL's scheme and every address its host resolves to are allowed.
    pub async fn post(&self, url: &str, headers: &[(&str, &str)], body: String) -> Attempt {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let target = match self.target(url, deadline).await {
            Ok(target) => target,
            Err(error) => return Attempt::failed(None, &error),
        };
        let config =
            client::Config { tls: &self.tls, plain_http: self.reach.plain_http(), deadline, timeout: self.timeout };
        client::send(config, target, headers, body).await
    }

    /// The URL, checked: its scheme, then every address of its host (resolved now, unless literal).
    async fn target(&self, raw: &str, deadline: tokio::time::Instant) -> Result<Target, String> {
        let mut url = url::Url::parse(raw).map_err(|_| "refused: not an absolute URL".to_owned())?;
        // Never sent: HTTP has no fragment.
        url.set_fragment(None);
        match url.scheme() {
            "https" => {}
            "http" if self.reach.plain_http() => {}
            _ => return Err("refused: the URL must use https".to_owned()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("refused: the URL must not carry credentials".to_owned());
        }
        let port = url.port_or_known_default().ok_or_else(|| "refused: the URL has no port".to_owned())?;
        let (name, ips) = match url.host() {
            None => return Err("refused: the URL names no host".to_owned()),
            Some(url::Host::Ipv4(ip)) => (None, vec![IpAddr::V4(ip)]),
            Some(url::Host::Ipv6(ip)) => (None, vec![IpAddr::V6(ip)]),
            Some(url::Host::Domain(name)) => {
                let ips = match tokio::time::timeout_at(deadline, self.resolver.resolve(name)).await {
                    Err(_) => return Err(format!("the host cannot be resolved: {}", client::timed_out(self.timeout))),
                    Ok(Err(error)) => return Err(format!("the host cannot be resolved: {error}")),
                    Ok(Ok(ips)) if ips.is_empty() => return Err("the host cannot be resolved: no address".to_owned()),
                    Ok(Ok(ips)) => ips,
                };
                (Some(name.to_owned()), ips)
            }
        };
        if let Some(reason) = ips.iter().find_map(|ip| self.reach.refused(*ip)) {
            return Err(match name {
                Some(_) => format!("refused: the host resolves to {reason}"),
                None => format!("refused: the host is {reason}"),
            });
        }
        let addrs = ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect();
        Ok(Target { url, name, addrs })
    }
}
