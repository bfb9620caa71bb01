//! Code-scanning results in (`service::sarif`). Scope `sarif:ingest` (a CI key's; admins' sessions hold it).
//! - `POST /sarif`: a SARIF 2.1.0 log (JSON, or `Content-Encoding: gzip`) of at most
//!   [`sarif_intake::MAX_REQUEST_BYTES`] as sent, about the commit the `X-Source`, `X-Repo`, `X-Branch`,
//!   `X-Commit-Sha` and `X-Commit-Author-Email` headers name → `200` with the ingestion (a re-post of
//!   the repository and commit within 24 hours: the first one's, `Idempotent-Replayed: true`);
//!   larger → `413` naming the uploads route;
//! - `POST /sarif/uploads` (same headers and `X-Upload-Bytes`, the log's size; no body) → `201
//!   {uploadId, uploadUrl, …}`: a presigned PUT of exactly that size for 15 minutes; the object is
//!   ingested by the `sarif-worker` function under the same rules, while its uploader still may;
//! - `GET /sarif/uploads/{uploadId}`: where the upload stands, with its ingestion once done.

use ::http::{Method, StatusCode};
use api::http::{self, BASE_PATH, json_response};
use api::{ApiError, App, Call, auth, query, views};
use domain::{SarifUpload, Scan, UploadStatus};
use lambda_http::{Body, Response};
use sarif_intake::{IntakeError, UploadBucket};
use serde_json::{Value, json};

/// What this function builds once per container: the API's context and the uploads bucket.
pub struct Intake {
    pub app: App,
    pub bucket: UploadBucket,
}

impl api::entry::Context for Intake {
    async fn from_env() -> Result<Self, api::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let app = App::from_config(&config)?;
        Ok(Self { app, bucket: UploadBucket::from_env(&config)? })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<Intake> =
    |intake, req| Box::pin(api::serve(&intake.app, req, async |call| route(call, &intake.bucket).await));

async fn route(call: Call<'_>, bucket: &UploadBucket) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::SARIF_INGEST)?;
    query::none(call.req)?;
    let path = call.req.uri().path().trim_end_matches('/').to_owned();
    match (call.req.method().clone(), http::path_param(call.req, "uploadId")) {
        (Method::POST, None) if path.ends_with("/sarif") => ingest(&call).await,
        (Method::POST, None) => start_upload(&call, bucket).await,
        (Method::GET, Some(id)) => upload_status(&call, &id).await,
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// The scan the v1 headers describe (UTF-8: an author's email or a branch may not be ASCII).
fn scan_of(call: &Call<'_>) -> Result<Scan, ApiError> {
    let [source, repo, branch, sha, email] =
        ["x-source", "x-repo", "x-branch", "x-commit-sha", "x-commit-author-email"]
            .map(|name| call.req.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()));
    Scan::new(source.as_deref(), repo.as_deref(), branch.as_deref(), sha.as_deref(), email.as_deref()).map_err(|e| {
        let header = match e.field {
            "source" => "X-Source",
            "repo" => "X-Repo",
            "branch" => "X-Branch",
            "commitSha" => "X-Commit-Sha",
            _ => "X-Commit-Author-Email",
        };
        ApiError::field(header, e.message)
    })
}

fn invalid(err: IntakeError) -> ApiError {
    match err {
        IntakeError::Storage(e) => ApiError::Internal(e),
        // Decompressed past what a request may parse: the upload route takes it.
        IntakeError::TooLarge { limit, .. } => ApiError::PayloadTooLarge {
            what: "the log",
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            alternative: Some(UPLOADS),
        },
        other => ApiError::InvalidSarif(other.to_string()),
    }
}

const UPLOADS: &str = "/sarif/uploads";

async fn ingest(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let scan = scan_of(call)?;
    let body = http::body_bytes(call.req);
    if body.len() > sarif_intake::MAX_REQUEST_BYTES {
        return Err(ApiError::PayloadTooLarge {
            what: "the request body",
            limit: sarif_intake::MAX_REQUEST_BYTES,
            alternative: Some(UPLOADS),
        });
    }
    let findings = sarif_intake::read_request(body, http::header(call.req, "content-encoding")).map_err(invalid)?;
    let view = |a: &domain::Assignment| json!(views::assignment(a, call.now));
    let ingested =
        service::sarif::ingest(&call.ctx(), &call.principal.org, &scan, &findings, &call.actor(), &view).await?;
    let mut response = json_response(StatusCode::OK, &service::sarif::to_json(&ingested.ingestion)?);
    if ingested.replayed {
        response.headers_mut().insert("idempotent-replayed", ::http::HeaderValue::from_static("true"));
    }
    Ok(response)
}

// The refusal below and OpenAPI's `maximum` of the header state this number.
const _: () = assert!(sarif_intake::MAX_UPLOAD_BYTES == 104_857_600);

/// The log's size the client declares (`X-Upload-Bytes`): decimal digits only (as `Content-Length`),
/// from 1 to [`sarif_intake::MAX_UPLOAD_BYTES`] (the header's `maximum` in OpenAPI: larger, however many
/// digits, is `400` as every value outside its schema).
fn declared_bytes(call: &Call<'_>) -> Result<u64, ApiError> {
    const HEADER: &str = "X-Upload-Bytes";
    let raw = http::header(call.req, "x-upload-bytes")
        .ok_or_else(|| ApiError::field(HEADER, "is required: the log's size in bytes, which the upload URL signs"))?;
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::field(HEADER, "must be a whole number of bytes, digits only"));
    }
    let bytes = raw.trim_start_matches('0').parse::<u64>().unwrap_or(u64::MAX);
    if raw.trim_start_matches('0').is_empty() {
        return Err(ApiError::field(HEADER, "must be at least 1"));
    }
    if bytes > sarif_intake::MAX_UPLOAD_BYTES {
        return Err(ApiError::field(HEADER, "must be at most 104857600 (100 MiB): no larger log is taken"));
    }
    Ok(bytes)
}

async fn start_upload(call: &Call<'_>, bucket: &UploadBucket) -> Result<Response<Body>, ApiError> {
    let scan = scan_of(call)?;
    let bytes = declared_bytes(call)?;
    if !http::body_bytes(call.req).iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field("body", "must be empty: the log goes to the upload URL"));
    }
    let org = &call.principal.org;
    let actor = call.actor();
    let upload = SarifUpload {
        upload_id: uuid::Uuid::now_v7(),
        scan,
        actor_id: actor.id,
        actor_email: actor.email,
        actor_role: actor.role,
        bytes: Some(bytes),
        created_at: call.now,
        status: UploadStatus::Pending,
        outcome: None,
        failure: None,
    };
    let url = bucket.upload_url(org, upload.upload_id, bytes).await.map_err(invalid)?;
    call.app.store.put_sarif_upload(org, &upload).await?;
    let location = format!("{BASE_PATH}/sarif/uploads/{}", upload.upload_id);
    let expires_at = call.now + chrono::Duration::from_std(sarif_intake::UPLOAD_URL_TTL).unwrap_or_default();
    let mut body = view(&upload);
    body["uploadUrl"] = json!(url);
    body["method"] = json!("PUT");
    body["expiresAt"] = json!(expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    body["maxBytes"] = json!(sarif_intake::MAX_UPLOAD_BYTES);
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(location) = location.parse() {
        response.headers_mut().insert("location", location);
    }
    Ok(response)
}

async fn upload_status(call: &Call<'_>, id: &str) -> Result<Response<Body>, ApiError> {
    let id = uuid::Uuid::parse_str(id).map_err(|_| service::AppError::NotFound)?;
    let upload = call.app.store.sarif_upload(&call.principal.org, id).await?.ok_or(service::AppError::NotFound)?;
    let mut body = view(&upload);
    let given_up = chrono::Duration::from_std(sarif_intake::UPLOAD_GIVEN_UP_AFTER).unwrap_or_default();
    if upload.status == UploadStatus::Pending && call.now > upload.created_at + given_up {
        body["status"] = json!("expired");
        body["failure"] = json!("no log was ingested: the upload URL expired unused, or the log could not be read");
    }
    Ok(json_response(StatusCode::OK, &body))
}

fn view(upload: &SarifUpload) -> Value {
    let mut view = json!({
        "uploadId": upload.upload_id,
        "status": upload.status,
        "source": upload.scan.source,
        "repo": upload.scan.repo,
        "branch": upload.scan.branch,
        "commitSha": upload.scan.commit_sha,
        "createdAt": upload.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(bytes) = upload.bytes {
        view["bytes"] = json!(bytes);
    }
    if let Some(outcome) = upload.outcome.as_deref().and_then(|o| serde_json::from_str::<Value>(o).ok()) {
        view["ingestion"] = outcome;
    }
    if let Some(failure) = &upload.failure {
        view["failure"] = json!(failure);
    }
    view
}
