//! The sender against servers on loopback only: no test connects anywhere but 127.0.0.1. The tests of
//! refusals count the connections a listener saw (none) or give the sender an address nothing could
//! be connected to before the refusal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::webhook::delivery::{Attempt, MAX_EXCERPT_CHARS};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SIGNATURE: &str = "v1,c2VjcmV0IHNpZ25hdHVyZSBvZiB0aGUgdGVzdA==";

/// A test's name server: a fixed map, and how often it was asked.
struct Names {
    map: Vec<(&'static str, Vec<IpAddr>)>,
    asked: AtomicUsize,
}

impl Names {
    fn new(map: Vec<(&'static str, Vec<IpAddr>)>) -> Arc<Self> {
        Arc::new(Names { map, asked: AtomicUsize::new(0) })
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl Resolve for Names {
    fn resolve<'a>(&'a self, host: &'a str) -> Resolving<'a> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let answer = match self.map.iter().find(|(name, _)| *name == host) {
            Some((_, ips)) => Ok(ips.clone()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such name")),
        };
        Box::pin(std::future::ready(answer))
    }
}

/// What the local gateway allows: loopback too, and plain http.
struct Loopback;

impl Reach for Loopback {
    fn refused(&self, ip: IpAddr) -> Option<&'static str> {
        if ip.is_loopback() { None } else { domain::webhook::refused_address(ip) }
    }

    fn plain_http(&self) -> bool {
        true
    }
}

/// What a test server answers every request with.
#[derive(Clone)]
struct Answer {
    delay: Duration,
    bytes: Vec<u8>,
    /// Keep the connection open after writing (a body that never ends).
    hold: bool,
}

fn answer(status: &str, headers: &str, body: &str) -> Answer {
    let bytes =
        format!("HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    Answer { delay: Duration::ZERO, bytes: bytes.into_bytes(), hold: false }
}

/// A tiny HTTP/1.1 server on 127.0.0.1: it counts connections and keeps the requests it read.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(answer: Answer) -> Self {
        Self::start_with(answer, None).await
    }

    async fn start_with(answer: Answer, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (answer, seen, tls) = (answer.clone(), seen.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, answer, seen).await;
                            }
                        }
                        None => serve(stream, answer, seen).await,
                    }
                });
            }
        });
        Server { addr, connections, requests }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, answer: Answer, seen: Arc<Mutex<Vec<String>>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    while request.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    seen.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
    tokio::time::sleep(answer.delay).await;
    if stream.write_all(&answer.bytes).await.is_err() {
        return;
    }
    let _ = stream.flush().await;
    if answer.hold {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let _ = stream.shutdown().await;
}

fn loopback_sender(names: Arc<Names>) -> Sender {
    Sender::new(names, Arc::new(Loopback), Vec::new()).unwrap()
}

fn public_sender(names: Arc<Names>) -> Sender {
    Sender::new(names, Arc::new(PublicOnly), Vec::new()).unwrap()
}

async fn post(sender: &Sender, url: &str) -> Attempt {
    let headers = [("webhook-id", "msg_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", SIGNATURE)];
    sender.post(url, &headers, r#"{"type":"webhook.test"}"#.to_owned()).await
}

fn error_of(attempt: &Attempt) -> (Option<u16>, &str) {
    match attempt {
        Attempt::Failed { status, error } => (*status, error),
        Attempt::Delivered { .. } => panic!("expected a failure, got {attempt:?}"),
    }
}

#[tokio::test]
async fn a_2xx_answer_delivers_and_the_headers_and_body_are_sent_to_the_checked_address() {
    let server = Server::start(answer("200 OK", "", "ok")).await;
    let names = Names::new(vec![("hooks.example.test", vec![LOCALHOST])]);
    let sender = loopback_sender(names.clone());

    let attempt = post(&sender, &format!("http://hooks.example.test:{}/hooks?x=1#never-sent", server.port())).await;

    assert_eq!(attempt, Attempt::Delivered { status: 200 });
    assert_eq!(names.asked(), 1, "one lookup, and reqwest made none of its own");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = requests[0].to_ascii_lowercase();
    assert!(request.starts_with("post /hooks?x=1 http/1.1\r\n"), "{request}");
    for header in [
        "webhook-id: msg_1",
        "webhook-timestamp: 1700000000",
        &format!("webhook-signature: {}", SIGNATURE.to_ascii_lowercase()),
        "content-type: application/json",
        "user-agent: training-assignments-webhooks/1",
        &format!("host: hooks.example.test:{}", server.port()),
    ] {
        assert!(request.contains(&format!("\r\n{header}\r\n")), "{header} in {request}");
    }
    assert!(requests[0].ends_with("\r\n\r\n{\"type\":\"webhook.test\"}"), "{}", requests[0]);
}

#[tokio::test]
async fn a_name_is_resolved_again_at_every_attempt() {
    let server = Server::start(answer("204 No Content", "", "")).await;
    let names = Names::new(vec![("hooks.example.test", vec![LOCALHOST])]);
    let sender = loopback_sender(names.clone());
    let url = format!("http://hooks.example.test:{}/", server.port());

    assert_eq!(post(&sender, &url).await, Attempt::Delivered { status: 204 });
    assert_eq!(post(&sender, &url).await, Attempt::Delivered { status: 204 });
    assert_eq!(names.asked(), 2);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_5xx_answer_fails_with_its_status_and_an_excerpt_of_its_body() {
    let body = "x".repeat(10 * 1024);
    let server = Server::start(answer("500 Internal Server Error", "", &body)).await;
    let sender = loopback_sender(Names::new(vec![]));

    let attempt = post(&sender, &format!("http://127.0.0.1:{}/", server.port())).await;

    let (status, error) = error_of(&attempt);
    assert_eq!(status, Some(500));
    assert_eq!(error, format!("{}…", "x".repeat(MAX_EXCERPT_CHARS)));
}

#[tokio::test]
async fn an_answer_without_a_body_fails_with_its_reason_phrase() {
    let server = Server::start(answer("503 Service Unavailable", "", "")).await;
    let sender = loopback_sender(Names::new(vec![]));

    let attempt = post(&sender, &format!("http://127.0.0.1:{}/", server.port())).await;

    assert_eq!(attempt, Attempt::Failed { status: Some(503), error: "Service Unavailable".into() });
}

#[tokio::test]
async fn a_huge_answer_is_not_read_whole() {
    // Announces a gigabyte, sends 64 KiB and never ends: the sender reads its excerpt and leaves.
    let head = "HTTP/1.1 400 Bad Request\r\ncontent-length: 1073741824\r\n\r\n";
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'y', 64 * 1024));
    let server = Server::start(Answer { delay: Duration::ZERO, bytes, hold: true }).await;
    let sender = loopback_sender(Names::new(vec![])).with_timeout(Duration::from_secs(10));

    let started = std::time::Instant::now();
    let attempt = post(&sender, &format!("http://127.0.0.1:{}/", server.port())).await;

    assert!(started.elapsed() < Duration::from_secs(5), "it did not wait for the rest: {:?}", started.elapsed());
    let (status, error) = error_of(&attempt);
    assert_eq!(status, Some(400));
    assert_eq!(error.chars().count(), MAX_EXCERPT_CHARS + 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let elsewhere = Server::start(answer("200 OK", "", "")).await;
    let location = format!("location: http://127.0.0.1:{}/inside\r\n", elsewhere.port());
    let server = Server::start(answer("302 Found", &location, "")).await;
    let sender = loopback_sender(Names::new(vec![]));

    let attempt = post(&sender, &format!("http://127.0.0.1:{}/", server.port())).await;

    let (status, error) = error_of(&attempt);
    assert_eq!(status, Some(302));
    assert!(error.contains("redirect"), "{error}");
    assert_eq!(server.connections(), 1);
    assert_eq!(elsewhere.connections(), 0, "the redirect's target saw no connection");
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_fails_the_attempt() {
    let mut slow = answer("200 OK", "", "");
    slow.delay = Duration::from_secs(5);
    let server = Server::start(slow).await;
    let sender = loopback_sender(Names::new(vec![])).with_timeout(Duration::from_millis(300));

    let started = std::time::Instant::now();
    let attempt = post(&sender, &format!("http://127.0.0.1:{}/", server.port())).await;

    assert_eq!(attempt, Attempt::Failed { status: None, error: "timed out after 0.3 s".into() });
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(server.requests().len(), 1, "the request was sent");
}

#[tokio::test]
async fn the_default_timeout_is_the_attempts() {
    let sender = public_sender(Names::new(vec![]));
    assert_eq!(sender.timeout, domain::webhook::delivery::ATTEMPT_TIMEOUT);
    assert_eq!(client::timed_out(sender.timeout), "timed out after 15 s");
}

#[tokio::test]
async fn a_closed_port_fails_with_a_short_reason_that_names_no_url_or_header() {
    let port = {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let sender = loopback_sender(Names::new(vec![]));

    let attempt = post(&sender, &format!("http://127.0.0.1:{port}/secret-path")).await;

    let (status, error) = error_of(&attempt);
    assert_eq!(status, None);
    assert!(error.starts_with("cannot connect"), "{error}");
    for secret in ["secret-path", "127.0.0.1", SIGNATURE, "msg_1"] {
        assert!(!error.contains(secret), "{secret} in {error}");
    }
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_before_any_connection() {
    let server = Server::start(answer("200 OK", "", "")).await;
    let names = Names::new(vec![("hooks.example.test", vec![LOCALHOST])]);
    let sender = public_sender(names.clone());

    let attempt = post(&sender, &format!("https://hooks.example.test:{}/", server.port())).await;

    let (status, error) = error_of(&attempt);
    assert_eq!(status, None);
    assert_eq!(error, "refused: the host resolves to a loopback address");
    assert_eq!(names.asked(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn names_resolving_inside_a_network_are_refused_with_the_reason() {
    let cases: [(IpAddr, &str); 4] = [
        ("10.1.2.3".parse().unwrap(), "a private address"),
        ("169.254.169.254".parse().unwrap(), "a link-local address"),
        ("::ffff:127.0.0.1".parse().unwrap(), "a loopback address"),
        ("fd00::1".parse().unwrap(), "a private address"),
    ];
    for (ip, reason) in cases {
        let names = Names::new(vec![("hooks.example.test", vec![ip])]);
        let sender = public_sender(names.clone()).with_timeout(Duration::from_millis(200));

        let attempt = post(&sender, "https://hooks.example.test/").await;

        assert_eq!(
            attempt,
            Attempt::Failed { status: None, error: format!("refused: the host resolves to {reason}") },
            "{ip}"
        );
        assert_eq!(names.asked(), 1, "{ip}");
    }
}

#[tokio::test]
async fn a_name_is_refused_when_any_of_its_addresses_is() {
    // Loopback is allowed here; the private address beside it refuses the name before any connection.
    let server = Server::start(answer("200 OK", "", "")).await;
    let names = Names::new(vec![("hooks.example.test", vec![LOCALHOST, "10.0.0.1".parse().unwrap()])]);
    let sender = loopback_sender(names.clone());

    let attempt = post(&sender, &format!("http://hooks.example.test:{}/", server.port())).await;

    assert_eq!(
        attempt,
        Attempt::Failed { status: None, error: "refused: the host resolves to a private address".into() }
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn plain_http_and_credentials_are_refused_before_resolution_under_public_only() {
    let names = Names::new(vec![("hooks.example.test", vec![LOCALHOST])]);
    let sender = public_sender(names.clone());

    for url in ["http://hooks.example.test/", "ftp://hooks.example.test/", "file:///etc/passwd"] {
        let attempt = post(&sender, url).await;
        assert_eq!(attempt, Attempt::Failed { status: None, error: "refused: the URL must use https".into() }, "{url}");
    }
    let attempt = post(&sender, "https://user:pass@hooks.example.test/").await;
    assert_eq!(attempt, Attempt::Failed { status: None, error: "refused: the URL must not carry credentials".into() });
    let attempt = post(&sender, "not a url").await;
    assert_eq!(attempt, Attempt::Failed { status: None, error: "refused: not an absolute URL".into() });
    assert_eq!(names.asked(), 0);
}

#[tokio::test]
async fn a_literal_address_is_checked_without_a_lookup() {
    let names = Names::new(vec![]);
    let sender = public_sender(names.clone());

    for (url, reason) in [
        ("https://127.0.0.1/", "a loopback address"),
        ("https://[::1]/", "a loopback address"),
        ("https://[::ffff:127.0.0.1]/", "a loopback address"),
        ("https://0x7f.1/", "a loopback address"),
        ("https://10.0.0.1/", "a private address"),
    ] {
        let attempt = post(&sender, url).await;
        assert_eq!(attempt, Attempt::Failed { status: None, error: format!("refused: the host is {reason}") }, "{url}");
    }
    assert_eq!(names.asked(), 0);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_fails_the_attempt() {
    let names = Names::new(vec![("empty.example.test", vec![])]);
    let sender = public_sender(names.clone());

    let attempt = post(&sender, "https://missing.example.test/").await;
    assert_eq!(attempt, Attempt::Failed { status: None, error: "the host cannot be resolved: no such name".into() });
    let attempt = post(&sender, "https://empty.example.test/").await;
    assert_eq!(attempt, Attempt::Failed { status: None, error: "the host cannot be resolved: no address".into() });
    assert_eq!(names.asked(), 2);
}

#[tokio::test]
async fn the_lookup_counts_in_the_attempts_time() {
    struct Hanging;
    impl Resolve for Hanging {
        fn resolve<'a>(&'a self, _: &'a str) -> Resolving<'a> {
            Box::pin(std::future::pending())
        }
    }
    let sender = Sender::new(Arc::new(Hanging), Arc::new(PublicOnly), Vec::new())
        .unwrap()
        .with_timeout(Duration::from_millis(300));

    let attempt = post(&sender, "https://hooks.example.test/").await;

    assert_eq!(
        attempt,
        Attempt::Failed { status: None, error: "the host cannot be resolved: timed out after 0.3 s".into() }
    );
}

#[tokio::test]
async fn the_connector_is_given_the_checked_addresses_for_the_checked_name_only() {
    use tower_service::Service as _;
    let name = |text: &str| text.parse::<hyper_util::client::legacy::connect::dns::Name>().unwrap();
    let addr = SocketAddr::new(LOCALHOST, 8443);
    let mut pinned = client::Pinned { name: Some("hooks.example.test".into()), addrs: vec![addr] };

    let addrs: Vec<_> = pinned.call(name("Hooks.Example.Test")).await.unwrap().collect();
    assert_eq!(addrs, [addr]);
    assert!(pinned.call(name("elsewhere.example.test")).await.is_err());
    let mut literal = client::Pinned { name: None, addrs: vec![addr] };
    assert!(literal.call(name("hooks.example.test")).await.is_err(), "a literal address resolves nothing");
}

#[tokio::test]
async fn the_public_sender_refuses_localhost_through_the_system_resolver() {
    let server = Server::start(answer("200 OK", "", "")).await;
    let sender = Sender::public().unwrap();

    let attempt = post(&sender, &format!("https://localhost:{}/", server.port())).await;

    let (status, error) = error_of(&attempt);
    assert_eq!(status, None);
    assert!(error.starts_with("refused: the host resolves to a loopback address"), "{error}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.connections(), 0);
}

/// A test CA, and a certificate it signed for `localhost` and 127.0.0.1.
struct TestPki {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "webhooks test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();

    TestPki {
        ca: ca.der().clone(),
        chain: vec![cert.der().clone(), ca.der().clone()],
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

async fn https_server(pki: &TestPki) -> Server {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    Server::start_with(answer("200 OK", "", "ok"), Some(acceptor)).await
}

#[tokio::test]
async fn https_to_a_server_a_trusted_root_signed_delivers() {
    let pki = test_pki();
    let server = https_server(&pki).await;
    let names = Names::new(vec![("localhost", vec![LOCALHOST])]);
    let sender = Sender::new(names.clone(), Arc::new(Loopback), vec![pki.ca.clone()]).unwrap();

    let attempt = post(&sender, &format!("https://localhost:{}/hooks", server.port())).await;

    assert_eq!(attempt, Attempt::Delivered { status: 200 });
    assert_eq!(names.asked(), 1);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].contains("\r\nwebhook-id: msg_1\r\n"), "{}", requests[0]);
}

#[tokio::test]
async fn https_to_a_server_no_trusted_root_signed_is_refused() {
    let pki = test_pki();
    let server = https_server(&pki).await;
    let names = Names::new(vec![("localhost", vec![LOCALHOST])]);
    // Mozilla's roots only: the test CA is not among them.
    let sender = Sender::new(names, Arc::new(Loopback), Vec::new()).unwrap();

    let attempt = post(&sender, &format!("https://localhost:{}/hooks", server.port())).await;

    let (status, error) = error_of(&attempt);
    assert_eq!(status, None);
    assert!(error.starts_with("TLS failed: invalid peer certificate"), "{error}");
    assert!(!error.contains(SIGNATURE) && !error.contains("/hooks"), "{error}");
    assert_eq!(server.connections(), 1);
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn https_only_refuses_a_plain_http_url_even_with_a_checked_address() {
    // A reach that allows loopback over https only: `http` is refused before any lookup.
    struct LoopbackHttps;
    impl Reach for LoopbackHttps {
        fn refused(&self, ip: IpAddr) -> Option<&'static str> {
            if ip.is_loopback() { None } else { domain::webhook::refused_address(ip) }
        }
    }
    let server = Server::start(answer("200 OK", "", "")).await;
    let names = Names::new(vec![("localhost", vec![LOCALHOST])]);
    let sender = Sender::new(names.clone(), Arc::new(LoopbackHttps), Vec::new()).unwrap();

    let attempt = post(&sender, &format!("http://localhost:{}/", server.port())).await;

    assert_eq!(attempt, Attempt::Failed { status: None, error: "refused: the URL must use https".into() });
    assert_eq!(names.asked(), 0);
    assert_eq!(server.connections(), 0);
}
