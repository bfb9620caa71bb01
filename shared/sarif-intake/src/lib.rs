//! Code-scanning intake: a SARIF log as a client sends it — plain JSON or gzip — read within limits
//! into [`Findings`], and the bucket that takes logs too large for a request (a presigned PUT per
//! upload, read back by the function its object notification starts).

use std::cell::Cell;
use std::io::Read;
use std::time::Duration;

use domain::Findings;
use domain::OrgId;

pub mod parser;
pub use parser::SarifError;

/// Largest body `POST /sarif` takes, as sent (compressed, if gzip). API Gateway hands Lambda a
/// binary body base64-encoded, and a synchronous invocation carries at most 6 MB (6,291,456 bytes):
/// 4 MiB becomes 5,592,408 bytes of base64, which leaves room for the event's headers and context.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest upload the worker reads, as stored.
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
/// Largest log of a request once decompressed: a small gzip body cannot keep the function (29 s,
/// 512 MB) parsing until API Gateway gives up; parsing reads ~100 MB/s or more.
pub const MAX_REQUEST_LOG_BYTES: u64 = 128 * 1024 * 1024;
/// Largest uploaded log once decompressed (the worker has 5 minutes).
pub const MAX_UPLOAD_LOG_BYTES: u64 = 1024 * 1024 * 1024;
/// How long a presigned upload URL works.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// After this, a pending upload will not be ingested any more: its URL expired unused, or the worker
/// gave up on it (events are retried for an hour, then go to the failed-events queue).
pub const UPLOAD_GIVEN_UP_AFTER: Duration = Duration::from_secs(2 * 60 * 60);
const UPLOAD_PREFIX: &str = "sarif-uploads/";

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The log is not a SARIF 2.1.0 log this service takes (the reason says why).
    #[error(transparent)]
    Invalid(#[from] SarifError),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("Content-Encoding '{0}' is not supported: send gzip or identity")]
    UnsupportedEncoding(String),
    /// A log larger than it may be: as stored (an upload), or once decompressed.
    #[error("the log exceeds {limit} bytes{}", if *.decompressed { " once decompressed" } else { "" })]
    TooLarge { limit: u64, decompressed: bool },
    /// An uploaded object of another size than the client declared for it.
    #[error("the uploaded log is {stored} bytes, not the {declared} declared when the upload was started")]
    NotTheDeclaredSize { declared: u64, stored: u64 },
    /// The uploads bucket failed or refused.
    #[error("S3: {0}")]
    Storage(String),
}

/// Whether `bytes` start like a gzip stream (RFC 1952 magic): uploads say nothing of their encoding.
pub fn looks_gzipped(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Reads the body of `POST /sarif` sent with `content_encoding` (`identity`, `gzip` or `x-gzip`),
/// decompressing as it parses. Without the header, a gzip stream is recognised by its magic bytes (CI
/// scripts often send `.sarif.gz` as is).
pub fn read_request(bytes: &[u8], content_encoding: Option<&str>) -> Result<Findings, IntakeError> {
    match content_encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => read_sniffed(bytes, MAX_REQUEST_LOG_BYTES),
        Some("identity") => Ok(parser::parse(bytes)?),
        Some("gzip" | "x-gzip") => read_gzip(bytes, MAX_REQUEST_LOG_BYTES),
        Some(other) => Err(IntakeError::UnsupportedEncoding(other.to_owned())),
    }
}

/// Reads an uploaded object: gzip if it looks it, else plain JSON (uploads carry no encoding).
pub fn read_upload(bytes: &[u8]) -> Result<Findings, IntakeError> {
    read_sniffed(bytes, MAX_UPLOAD_LOG_BYTES)
}

fn read_sniffed(bytes: &[u8], limit: u64) -> Result<Findings, IntakeError> {
    if looks_gzipped(bytes) { read_gzip(bytes, limit) } else { Ok(parser::parse(bytes)?) }
}

fn read_gzip(bytes: &[u8], limit: u64) -> Result<Findings, IntakeError> {
    let exceeded = Cell::new(false);
    let capped = Capped { inner: flate2::read::MultiGzDecoder::new(bytes), left: limit, exceeded: &exceeded };
    parser::parse_reader(capped)
        .map_err(|err| if exceeded.get() { IntakeError::TooLarge { limit, decompressed: true } } else { err.into() })
}

/// A reader that fails once more than `left` bytes came through, and says so in `exceeded` (the
/// parser's error would only say that reading failed).
struct Capped<'e, R> {
    inner: R,
    left: u64,
    exceeded: &'e Cell<bool>,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.left = self.left.checked_sub(read as u64).ok_or_else(|| {
            self.exceeded.set(true);
            std::io::Error::other("the decompressed log is too large")
        })?;
        Ok(read)
    }
}

/// The object key of an upload: the org and the upload id, nothing a client chose.
pub fn upload_key(org: &OrgId, upload_id: uuid::Uuid) -> String {
    format!("{UPLOAD_PREFIX}{org}/{upload_id}.sarif")
}

/// The org and upload an object key names, if it is an upload's key.
pub fn parse_upload_key(key: &str) -> Option<(OrgId, uuid::Uuid)> {
    let rest = key.strip_prefix(UPLOAD_PREFIX)?;
    let (org, file) = rest.split_once('/')?;
    let id = file.strip_suffix(".sarif")?;
    let org = OrgId::parse(org).ok()?;
    let id = uuid::Uuid::parse_str(id).ok()?;
    (upload_key(&org, id) == key).then_some((org, id))
}

/// The uploads bucket (`SARIF_BUCKET`).
pub struct UploadBucket {
    client: aws_sdk_s3::Client,
    name: String,
}

impl UploadBucket {
    /// Path-style addressing when a local endpoint (`AWS_ENDPOINT_URL_S3`) is set, since
    /// `bucket.127.0.0.1` does not resolve.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, String> {
        let local = std::env::var("AWS_ENDPOINT_URL_S3").is_ok();
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(local).build();
        Self::with_client(aws_sdk_s3::Client::from_conf(s3))
    }

    /// The bucket `SARIF_BUCKET` names, through `client` (the local gateway's, which records the
    /// permissions each function uses).
    pub fn with_client(client: aws_sdk_s3::Client) -> Result<Self, String> {
        let name = std::env::var("SARIF_BUCKET").map_err(|_| "environment variable SARIF_BUCKET is not set")?;
        Ok(Self { client, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A presigned PUT of the upload's object of exactly `bytes` bytes, working for [`UPLOAD_URL_TTL`]:
    /// `Content-Length` is one of the headers it signs, so S3 refuses a PUT of any other size (a client
    /// such as `curl -T` sends the file's own length).
    pub async fn upload_url(&self, org: &OrgId, upload_id: uuid::Uuid, bytes: u64) -> Result<String, IntakeError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(UPLOAD_URL_TTL)
            .map_err(|e| IntakeError::Storage(e.to_string()))?;
        let length =
            i64::try_from(bytes).map_err(|_| IntakeError::TooLarge { limit: MAX_UPLOAD_BYTES, decompressed: false })?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(upload_key(org, upload_id))
            .content_length(length)
            .presigned(config)
            .await
            .map_err(|e| IntakeError::Storage(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(presigned.uri().to_owned())
    }

    /// The object's bytes; [`IntakeError::TooLarge`] past [`MAX_UPLOAD_BYTES`] and
    /// [`IntakeError::NotTheDeclaredSize`] when the client declared another size (read no further).
    pub async fn read(&self, key: &str, declared: Option<u64>) -> Result<Vec<u8>, IntakeError> {
        let storage = |e: String| IntakeError::Storage(e);
        let object = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|e| storage(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        // S3 always sends the length; without it the object could not be bounded before reading.
        let size = object.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(u64::MAX);
        if size > MAX_UPLOAD_BYTES {
            return Err(IntakeError::TooLarge { limit: MAX_UPLOAD_BYTES, decompressed: false });
        }
        if let Some(declared) = declared.filter(|declared| *declared != size) {
            return Err(IntakeError::NotTheDeclaredSize { declared, stored: size });
        }
        let bytes = object.body.collect().await.map_err(|e| storage(e.to_string()))?;
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const LOG: &str = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t","rules":[
        {"id":"r","properties":{"tags":["external/cwe/cwe-089"]}}]}},"results":[{"ruleId":"r","ruleIndex":0}]}]}"#;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_logs_read_the_same() {
        let plain = read_request(LOG.as_bytes(), None).unwrap();
        assert_eq!(plain.cwes.keys().copied().collect::<Vec<_>>(), vec![89]);
        assert_eq!(read_request(&gzip(LOG.as_bytes()), Some("GZIP")).unwrap(), plain);
        assert_eq!(read_request(&gzip(LOG.as_bytes()), Some("x-gzip")).unwrap(), plain);
        assert_eq!(read_request(&gzip(LOG.as_bytes()), None).unwrap(), plain, "recognised without the header");
        assert_eq!(read_upload(&gzip(LOG.as_bytes())).unwrap(), plain);
        assert_eq!(read_upload(LOG.as_bytes()).unwrap(), plain);
        let br = read_request(LOG.as_bytes(), Some("br"));
        assert!(matches!(br, Err(IntakeError::UnsupportedEncoding(e)) if e == "br"));
        let not_gzip = read_request(LOG.as_bytes(), Some("gzip"));
        assert!(matches!(not_gzip, Err(IntakeError::Invalid(SarifError::Malformed(_)))));
    }

    #[test]
    fn a_gzip_bomb_is_refused_once_past_the_cap() {
        // 129 MiB of spaces after the log's opening brace compress to ~130 KB.
        let mut bomb = b"{".to_vec();
        bomb.resize(MAX_REQUEST_LOG_BYTES as usize + 1024 * 1024, b' ');
        let err = read_request(&gzip(&bomb), Some("gzip")).unwrap_err();
        assert!(matches!(err, IntakeError::TooLarge { limit: MAX_REQUEST_LOG_BYTES, decompressed: true }), "{err:?}");
        assert_eq!(err.to_string(), format!("the log exceeds {MAX_REQUEST_LOG_BYTES} bytes once decompressed"));
    }

    /// The presigned PUT signs `Content-Length`: S3 checks every signed header, so a PUT of another size
    /// fails its signature (moto, which the end-to-end tests run, does not check signatures; the worker's
    /// own size check is tested there).
    #[tokio::test]
    async fn an_upload_url_signs_the_declared_length() {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
            .build();
        // Presigning is computed here; no request is sent.
        let bucket = UploadBucket { client: aws_sdk_s3::Client::from_conf(config), name: "uploads".into() };
        let org = OrgId::parse("acme").unwrap();
        let url = bucket.upload_url(&org, uuid::Uuid::now_v7(), 12_345).await.unwrap();
        let signed = url.split(['?', '&']).find_map(|p| p.strip_prefix("X-Amz-SignedHeaders=")).unwrap();
        assert_eq!(signed.split("%3B").collect::<Vec<_>>(), ["content-length", "host"], "{url}");
    }

    #[test]
    fn upload_keys_name_their_org_and_upload_only() {
        let org = OrgId::parse("7d3f7a52-1111-4b6e-9c1e-2a4f3b9d0e11").unwrap();
        let id = uuid::Uuid::now_v7();
        let key = upload_key(&org, id);
        assert_eq!(parse_upload_key(&key), Some((org.clone(), id)));
        for bad in [
            key.replace("sarif-uploads/", "exports/"),
            key.replace(".sarif", ".json"),
            format!("{key}/x"),
            format!("sarif-uploads/not.an.org/{id}.sarif"),
            format!("sarif-uploads/{org}/not-a-uuid.sarif"),
        ] {
            assert_eq!(parse_upload_key(&bad), None, "{bad}");
        }
    }
}
