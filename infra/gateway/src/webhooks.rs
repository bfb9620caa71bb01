//! The webhook functions as the local stack runs them, and the only place their local allowances
//! live: receivers on loopback (plain HTTP or HTTPS under a CA only this stack trusts) and a shorter
//! attempt schedule. No deployed function can build any of this: no function depends on the gateway
//! (`tests/tests/build.rs`), and the functions' own `from_env` take neither from their environment —
//! they parse URLs with `EndpointUrl::parse`, send with `webhooks::Sender::public()` and follow the
//! standard schedule.

use std::net::IpAddr;
use std::sync::Arc;

use domain::webhook::{EndpointUrl, Schedule, UrlError};
use events::webhooks::{DeliveryQueue, HttpPost, KmsVault};
use webhooks::{Reach, Resolve, Resolving};

use crate::GatewayError;

/// The CA (PEM) the local stack's HTTPS receivers are signed by (`infra/local/webhook_ca.py`).
pub const CA_FILE_VAR: &str = "LOCAL_WEBHOOK_CA_FILE";
/// A shorter schedule for the local stack: each attempt's wait in seconds, comma-separated
/// (`0,1,1,2`); the standard one when unset.
pub const SCHEDULE_VAR: &str = "LOCAL_WEBHOOK_ATTEMPT_DELAYS";

/// Loopback receivers (`http` or `https`, any port) besides every public one.
fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// How the local stack judges an endpoint URL: as deployed, or a loopback receiver.
pub fn local_url(raw: &str) -> Result<EndpointUrl, UrlError> {
    EndpointUrl::parse_admitting(raw, loopback)
}

/// The delivery's reach locally: what deployed functions reach, and loopback over plain HTTP too.
#[derive(Debug, Clone, Copy)]
pub struct LocalReach;

impl Reach for LocalReach {
    fn refused(&self, ip: IpAddr) -> Option<&'static str> {
        if ip.is_loopback() { None } else { domain::webhook::refused_address(ip) }
    }

    fn plain_http(&self) -> bool {
        true
    }
}

/// The local stack's resolver, which never asks the network: `localhost` is 127.0.0.1, and two names
/// under the reserved `.test` domain stand for a receiver inside a network — `*.private.test`
/// (10.0.0.1) and `*.metadata.test` (169.254.169.254) — so a test can register a name that resolves to
/// a refused address. Any other name does not resolve here (the local stack delivers to receivers on
/// this machine), so no test and no fuzzed endpoint ever makes a lookup leave it.
#[derive(Debug, Clone, Copy)]
pub struct LocalResolver;

impl Resolve for LocalResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> Resolving<'a> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let fixed: Option<IpAddr> = if name == "localhost" {
            Some(IpAddr::from([127, 0, 0, 1]))
        } else if name.ends_with(".private.test") {
            Some(IpAddr::from([10, 0, 0, 1]))
        } else if name.ends_with(".metadata.test") {
            Some(IpAddr::from([169, 254, 169, 254]))
        } else {
            None
        };
        Box::pin(async move {
            fixed.map(|ip| vec![ip]).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the local stack resolves only localhost and its *.test names",
                )
            })
        })
    }
}

/// The sender of the local delivery function: loopback allowed, the local CA trusted beside Mozilla's.
pub fn local_sender() -> Result<HttpPost, GatewayError> {
    let mut roots = Vec::new();
    if let Ok(path) = std::env::var(CA_FILE_VAR) {
        let pem = std::fs::read(&path).map_err(|e| GatewayError::Environment(format!("{path}: {e}")))?;
        roots = pem_certificates(&pem).map_err(|e| GatewayError::Environment(format!("{path}: {e}")))?;
    }
    let sender = webhooks::Sender::new(Arc::new(LocalResolver), Arc::new(LocalReach), roots)
        .map_err(|e| GatewayError::Environment(e.to_string()))?;
    Ok(HttpPost(sender))
}

/// The DER certificates of a PEM file.
fn pem_certificates(pem: &[u8]) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).map_err(|e| e.to_string())?;
    let mut certificates = Vec::new();
    for block in text.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let body = block.split("-----END CERTIFICATE-----").next().unwrap_or_default();
        let der: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(der).map_err(|e| e.to_string())?;
        certificates.push(rustls::pki_types::CertificateDer::from(der));
    }
    Ok(certificates)
}

/// The local schedule: [`SCHEDULE_VAR`]'s, else the standard one.
pub fn local_schedule() -> Result<Schedule, GatewayError> {
    let Ok(text) = std::env::var(SCHEDULE_VAR) else { return Ok(Schedule::default()) };
    let delays = text
        .split(',')
        .map(|s| s.trim().parse::<i64>().map(chrono::Duration::seconds))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GatewayError::Environment(format!("{SCHEDULE_VAR}: {e}")))?;
    Schedule::of(delays).ok_or_else(|| GatewayError::Environment(format!("{SCHEDULE_VAR}: no attempts")))
}

/// The KMS key's client for the local stack (moto's, `AWS_ENDPOINT_URL_KMS`), on the process's
/// credentials and region, recording the functions' KMS calls like every other client.
pub fn local_vault() -> Result<KmsVault, GatewayError> {
    let var = |name: &str| std::env::var(name).map_err(|_| GatewayError::Environment(format!("{name} not set")));
    let credentials = aws_sdk_kms::config::Credentials::new(
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "local",
    );
    let mut config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(var("AWS_REGION")?))
        .credentials_provider(credentials);
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_KMS") {
        config = config.endpoint_url(endpoint);
    }
    let client = crate::iam::kms(&aws_sdk_kms::Client::from_conf(config.build()));
    Ok(KmsVault::new(client, var(events::webhooks::SECRETS_KEY_VAR)?))
}

/// The delivery queue the local stack made.
pub fn delivery_queue(queue: events::queue::Queue) -> DeliveryQueue {
    DeliveryQueue(queue)
}
