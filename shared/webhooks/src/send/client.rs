//! One attempt on the wire: an HTTP/1.1 client built for it (hyper, with rustls through
//! hyper-rustls), connecting only to the checked addresses.
//!
//! Not reqwest: its rustls features, once on, are on for every crate built beside this one, and
//! make any `reqwest::Client::new()` there panic for want of a process-wide crypto provider. hyper's
//! own client has no proxy and follows no redirect to begin with.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use domain::webhook::delivery::{Attempt, MAX_EXCERPT_CHARS};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::Target;

/// What a delivery says it is.
const AGENT: &str = "training-assignments-webhooks/1";
/// Most bytes of an answer read for its excerpt (the rest is never read).
const MAX_BODY_BYTES: usize = 4 * 1024;

/// How one attempt's client is set up.
pub(super) struct Config<'a> {
    pub tls: &'a rustls::ClientConfig,
    pub plain_http: bool,
    /// When the attempt's time is up.
    pub deadline: Instant,
    /// The attempt's whole time, as failures tell it.
    pub timeout: Duration,
}

/// Sends the attempt to `target`'s checked addresses.
pub(super) async fn send(config: Config<'_>, target: Target, headers: &[(&str, &str)], body: String) -> Attempt {
    let Some(headers) = header_map(headers) else {
        return Attempt::failed(None, "refused: a header HTTP cannot carry");
    };
    let Ok(uri) = target.url.as_str().parse::<http::Uri>() else {
        return Attempt::failed(None, "refused: a URL HTTP cannot carry");
    };
    let mut request = http::Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;

    let mut http = HttpConnector::new_with_resolver(Pinned { name: target.name, addrs: target.addrs });
    http.enforce_http(false);
    http.set_nodelay(true);
    let tls = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config.tls.clone());
    let tls = if config.plain_http { tls.https_or_http() } else { tls.https_only() };
    let connector = tls.enable_http1().wrap_connector(http);
    // No connection outlives the attempt.
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector);

    let response = match tokio::time::timeout_at(config.deadline, client.request(request)).await {
        Err(_) => return Attempt::failed(None, &timed_out(config.timeout)),
        Ok(Err(error)) => return Attempt::failed(None, &describe(&error)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        // The body is not kept: don't read it.
        return Attempt::answered(status.as_u16(), "");
    }
    let excerpt = excerpt(response.into_body(), config.deadline).await;
    let excerpt = match excerpt.trim().is_empty() {
        true => status.canonical_reason().unwrap_or("no body"),
        false => &excerpt,
    };
    Attempt::answered(status.as_u16(), excerpt)
}

/// The headers of the attempt: JSON and who sends it, then the given ones (marked sensitive: they
/// carry the signature). `None` if one is not valid HTTP.
fn header_map(headers: &[(&str, &str)]) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    map.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let mut value = HeaderValue::from_str(value).ok()?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Some(map)
}

/// The first characters of the answer's body (one more than an attempt keeps, so that it marks the
/// cut), reading at most about [`MAX_BODY_BYTES`]; what was read if the body breaks off or the time
/// is up.
async fn excerpt(mut body: Incoming, deadline: Instant) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    bytes.truncate(MAX_BODY_BYTES);
    String::from_utf8_lossy(&bytes).chars().take(MAX_EXCERPT_CHARS + 1).collect()
}

/// Why the request got no answer, in a few words: no URL, header or body in it.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    if let Some(tls) = tls_error(error) {
        return format!("TLS failed: {tls}");
    }
    let cause = innermost(error).map(ToString::to_string);
    match (error.is_connect(), cause) {
        (true, Some(cause)) => format!("cannot connect: {cause}"),
        (true, None) => "cannot connect".to_owned(),
        (false, Some(cause)) => format!("the request failed: {cause}"),
        (false, None) => "the request failed".to_owned(),
    }
}

/// "timed out after 15 s".
pub(super) fn timed_out(timeout: Duration) -> String {
    if timeout.subsec_millis() == 0 {
        format!("timed out after {} s", timeout.as_secs())
    } else {
        format!("timed out after {:.1} s", timeout.as_secs_f64())
    }
}

/// The rustls error behind `error`, if a TLS handshake failed. It comes wrapped in `io::Error`s
/// (twice: by tokio-rustls and hyper-rustls), whose `source` skips what they wrap: unwrap them with
/// `get_ref`.
fn tls_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = error.source();
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match error.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// The last of `error`'s causes (not `error` itself).
fn innermost<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    let mut last = error.source()?;
    while let Some(next) = last.source() {
        last = next;
    }
    Some(last)
}

/// The connector's resolver for one attempt: the checked addresses for the checked name, an error for
/// any other (there is no second lookup). A literal address in the URL is never resolved: the
/// connector connects to it as it is, and it was checked as it is.
#[derive(Clone)]
pub(super) struct Pinned {
    pub name: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

impl tower_service::Service<Name> for Pinned {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        std::future::ready(match &self.name {
            Some(checked) if checked.eq_ignore_ascii_case(name.as_str()) => Ok(self.addrs.clone().into_iter()),
            _ => Err(io::Error::other("a name that was not checked")),
        })
    }
}
