//! The audit log (filters, paging, cursors bound to their range) and CSV exports (formula-safe,
//! nothing left behind on failure).

use chrono::Utc;
use gateway::seed;
use reqwest::StatusCode;
use serde_json::json;
use testkit::e2e::{Env, SECRET, assert_problem, parse_csv};

use crate::{assign_team_topic, deadline, path_of, team_topic};

#[tokio::test]
async fn the_audit_log_lists_admin_writes_newest_first_with_filters_and_paging() {
    let (env, org) = Env::with_org().await;
    let other = env.org().await;
    let key = org.api_keys.admin.as_str();
    let admin = org.admin().token.as_str();
    let created = env.post("/assignments").token(admin).json(team_topic(&org, "sql-injection")).await;
    let path = path_of(&created);
    env.patch(&path).token(key).json(json!({"note": "Q3"})).await;
    env.delete(&path).token(key).await;
    env.post("/assignments").token(other.api_keys.admin.as_str()).json(team_topic(&other, "path-traversal")).await;

    let all = env.get("/audit-log").token(key).await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    let actions: Vec<_> = all.body["items"].as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
    assert_eq!(actions, [json!("assignment.deactivated"), json!("assignment.updated"), json!("assignment.created")]);
    let first = &all.body["items"][2];
    assert_eq!(first["actorEmail"], json!(org.admin().email));
    assert_eq!(first["actorRole"], "org_admin");
    assert_eq!(
        (first["targetType"].clone(), first["targetId"].clone()),
        (json!("assignment"), created.body["id"].clone())
    );
    assert!(first["requestId"].is_string() && first["metadata"]["after"].is_object());
    assert_eq!(all.body["items"][1]["metadata"]["after"]["note"], "Q3");

    let by_action = env.get("/audit-log?action=assignment.updated").token(key).await;
    assert_eq!(by_action.body["items"].as_array().unwrap().len(), 1);
    let by_email = env.get(&format!("/audit-log?actorEmail={}", org.admin().email)).token(key).await;
    assert_eq!(by_email.body["items"].as_array().unwrap().len(), 1, "API-key writes carry no email");
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let future = env.get(&format!("/audit-log?from={tomorrow}")).token(key).await;
    assert_eq!(future.body["items"], json!([]));
    let today = env.get(&format!("/audit-log?to={}", Utc::now().date_naive())).token(key).await;
    assert_eq!(today.body["items"].as_array().unwrap().len(), 3);

    // Paging: one at a time, in the same order; the cursor is bound to the org and this listing.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/audit-log?limit=1&cursor={c}"),
            None => "/audit-log?limit=1".to_owned(),
        };
        let page = env.get(&query).token(key).await;
        seen.extend(page.body["items"].as_array().unwrap().iter().map(|e| e["action"].clone()));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        let stolen = env.get(&query).token(other.api_keys.admin.as_str()).await;
        if cursor.is_some() && query.contains("cursor") {
            assert_problem(&stolen, 400, "validation_failed");
        }
    }
    assert_eq!(seen, actions);

    assert_problem(&env.get("/audit-log?from=yesterday").token(key).await, 400, "validation_failed");
    assert_problem(&env.get("/audit-log?nope=1").token(key).await, 400, "validation_failed");
    let read_only = env.get("/audit-log").token(org.api_keys.read_only.as_str()).await;
    assert_problem(&read_only, 403, "insufficient_scope");
    let learner = org.learners().next().unwrap();
    assert_problem(&env.get("/audit-log").token(learner.token.as_str()).await, 403, "forbidden");
}

#[tokio::test]
async fn csv_exports_are_downloadable_formula_safe_and_keep_removed_learners() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let mut body = team_topic(&org, "sql-injection");
    body["note"] = json!("=HYPERLINK(\"http://x\")");
    let created = env.post("/assignments").token(key).json(body).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let other = assign_team_topic(&env, &org, "path-traversal").await;
    env.delete(&format!("/assignments/{}", other.body["id"].as_str().unwrap())).token(key).await;
    let leaver = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    env.consumer
        .handle(seed::member_event(false, &org.org_id, &org.teams[0], leaver.user_id, Utc::now()).envelope())
        .await
        .unwrap();
    let ready = env.subscribe(&org, "export.ready").await;

    let export = env.export(org.api_keys.read_only.as_str(), "assignments").await;
    assert_eq!((export.status, export.body["status"].as_str()), (StatusCode::OK, Some("ready")), "{:?}", export.body);
    assert_eq!((export.body["kind"].clone(), export.body["rowCount"].clone()), (json!("assignments"), json!(2)));
    assert!(export.body["completedAt"].is_string() && export.body["expiresAt"].is_string());
    let object_key = export.body["key"].as_str().unwrap();
    let now = Utc::now();
    assert!(
        object_key.starts_with(&format!("exports/{}/{}/", org.org_id, now.format("%Y/%m")))
            && object_key.ends_with(&format!("{}-assignments.csv", export.body["exportId"].as_str().unwrap())),
        "{object_key}"
    );
    let download = env.http.get(export.body["downloadUrl"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert!(download.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let text = download.text().await.unwrap();
    assert_eq!(text.len() as u64, export.body["bytes"].as_u64().unwrap());
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, exports::ASSIGNMENT_COLUMNS);
    assert_eq!(rows.len(), 2, "active and inactive");
    let note_col = header.iter().position(|h| h == "note").unwrap();
    let id_col = header.iter().position(|h| h == "assignmentId").unwrap();
    let ours = rows.iter().find(|r| &r[id_col] == id.as_str()).unwrap();
    assert_eq!(&ours[note_col], "'=HYPERLINK(\"http://x\")", "rendered as text, value kept");
    let active = header.iter().position(|h| h == "isActive").unwrap();
    assert_eq!(rows.iter().filter(|r| &r[active] == "false").count(), 1);

    let progress = env.export(key, "progress").await;
    assert_eq!(progress.body["status"], "ready", "{:?}", progress.body);
    let text = env.http.get(progress.body["downloadUrl"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, exports::PROGRESS_COLUMNS);
    assert_eq!(rows.len(), 10, "5 team members on each of the two assignments");
    let (user_col, status_col, removed_col) = (
        header.iter().position(|h| h == "userId").unwrap(),
        header.iter().position(|h| h == "status").unwrap(),
        header.iter().position(|h| h == "removedAt").unwrap(),
    );
    let gone: Vec<_> = rows.iter().filter(|r| r[user_col] == leaver.user_id.to_string()).collect();
    assert!(gone.iter().any(|r| &r[status_col] == "removed" && !r[removed_col].is_empty()), "{gone:?}");
    assert!(rows.iter().all(|r| r.len() == header.len()));

    let audit = env.get("/audit-log?action=assignment.exported").token(key).await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(audit.body["items"][0]["metadata"]["kind"], "progress");
    let announced = env.drain(&ready).await;
    assert_eq!(announced.len(), 2);
    assert!(announced.iter().any(|e| e["detail"]["key"] == json!(object_key)));

    assert_problem(
        &env.post("/assignments/exports").token(key).json(json!({"kind": "everything"})).await,
        400,
        "validation_failed",
    );
    assert_problem(
        &env.post("/assignments/exports").token(key).json(json!({"kind": "progress", "x": 1})).await,
        400,
        "validation_failed",
    );
    let learner = org.learners().next().unwrap();
    assert_problem(
        &env.post("/assignments/exports").token(learner.token.as_str()).json(json!({"kind": "progress"})).await,
        403,
        "forbidden",
    );

    // Every read of a ready export signs a fresh link; the listing has both, newest first.
    let path = format!("/assignments/exports/{}", export.body["exportId"].as_str().unwrap());
    let again = env.get(&path).token(key).await;
    assert_eq!(again.body["status"], "ready");
    let fresh = env.http.get(again.body["downloadUrl"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(fresh.text().await.unwrap().len() as u64, export.body["bytes"].as_u64().unwrap());
    // The worker given the same request again does nothing twice: no second audit entry or event.
    let requested = json!({"detail-type": "export.requested", "source": "assignments",
                           "detail": {"exportId": export.body["exportId"], "orgId": org.org_id.as_str()}});
    assert_eq!(env.invoke("ExportWorkerFunction", requested).await["status"], "ready");
    let audit = env.get("/audit-log?action=assignment.exported").token(key).await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 2);
    assert!(env.drain(&ready).await.is_empty(), "export.ready once per export");
    let listed = env.get("/assignments/exports?limit=1").token(key).await;
    assert_eq!(listed.body["items"][0]["exportId"], progress.body["exportId"]);
    let cursor = listed.body["nextCursor"].as_str().expect("a second page");
    let rest = env.get(&format!("/assignments/exports?limit=1&cursor={cursor}")).token(key).await;
    assert_eq!(rest.body["items"][0]["exportId"], export.body["exportId"]);
    assert_eq!(rest.body["items"][0]["status"], "ready");

    // Another org's admin: not found, and not listed.
    let other = env.org().await;
    let stranger = other.api_keys.admin.as_str();
    assert_problem(&env.get(&path).token(stranger).await, 404, "not_found");
    assert_eq!(env.get("/assignments/exports").token(stranger).await.body["items"], json!([]));
    assert_problem(&env.get("/assignments/exports/not-an-id").token(key).await, 404, "not_found");
}

/// Every export kind, opened by a real spreadsheet (LibreOffice Calc) with `,`, `;` and tab as its list
/// separator, has no formula cell, whatever an admin wrote in the fields they control: a formula start at
/// a cell's start, after whitespace, a line break or a separator. With `;` or tab Calc ends a row at a
/// line break inside our quoted cell, so what follows the break starts a cell of its own. The same
/// values written without neutralising do become formulas there, with each separator: the check has
/// teeth. The notes read back as written with a `'` before each formula start.
#[tokio::test]
async fn exports_open_in_a_real_spreadsheet_without_a_formula_whatever_the_separator() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let notes = [
        "=1+1",
        "\t=2+2",
        "\r=3+3",
        "  =4+4",
        "@SUM(5)",
        "x;=6+6,=7+7\t=8+8",
        "note\r=9+9",
        "note\n=10+10\r\n=11+11",
        "q\";=12+12\n\"=13+13\n\t=14+14",
    ];
    let reason = "Leave\r=15+15";
    let targets = org.learners().flat_map(|u| ["sql-injection", "path-traversal"].map(|topic| (u.user_id, topic)));
    let mut ids = Vec::new();
    for (note, (user, topic)) in notes.iter().zip(targets) {
        let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": topic,
                          "assigneeType": "user", "assigneeId": user, "deadline": deadline(30),
                          "isMandatory": true, "note": note});
        let created = env.post("/assignments").token(key).json(body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        ids.push((path_of(&created), user));
    }
    let (path, user) = &ids[0];
    let exempt =
        env.patch(&format!("{path}/users/{user}")).token(key).json(json!({"exempt": true, "reason": reason})).await;
    assert_eq!(exempt.body["exemptReason"], json!(reason), "{:?}", exempt.body);

    // Three callers, so that the export's polling stays inside each one's rate limit.
    let callers = [org.api_keys.read_only.as_str(), org.admin().token.as_str(), key];
    let mut files = Vec::new();
    for (kind, token) in ["assignments", "progress", "compliance"].into_iter().zip(callers) {
        let export = env.export(token, kind).await;
        assert_eq!(export.body["status"], "ready", "{:?}", export.body);
        let url = export.body["downloadUrl"].as_str().unwrap();
        files.push((kind, env.http.get(url).send().await.unwrap().text().await.unwrap()));
    }
    let (header, rows) = parse_csv(&files[0].1);
    let note_col = header.iter().position(|h| h == "note").unwrap();
    let mut read: Vec<String> = rows.iter().map(|r| r[note_col].to_owned()).collect();
    let mut written: Vec<String> = notes.iter().map(|n| exports::neutralise(n.to_string())).collect();
    read.sort();
    written.sort();
    assert_eq!(read, written, "each note is in the export, neutralised");
    assert!(files[2].1.contains(&exports::neutralise(reason.to_owned())), "the exemption reason is exported");

    // The control: the same values as cells, not neutralised, through the exports' own CSV writer.
    let mut raw = exports::csv_writer(Vec::new());
    for value in notes.iter().chain([&reason]) {
        raw.write_record(["id", value]).unwrap();
    }
    let raw = String::from_utf8(raw.into_inner().unwrap()).unwrap();
    let mut opened: Vec<(&str, &str)> = files.iter().map(|(kind, text)| (*kind, text.as_str())).collect();
    opened.push(("not-neutralised", raw.as_str()));
    // What each separator makes a formula of in the control: a cell's start (`,`), what follows a
    // line break (`;`: Calc ends the row there), a leading tab (tab).
    for (separator, expected) in testkit::spreadsheet::SEPARATORS.into_iter().zip(["of:=1+1", "of:=9+9", "of:=2+2"]) {
        for (name, formulas) in testkit::spreadsheet::formulas(&opened, separator) {
            if name == "not-neutralised" {
                assert!(
                    formulas.iter().any(|f| f.starts_with(expected)),
                    "separator {separator:?}: the control has no {expected}, so the check has no teeth: {formulas:?}"
                );
            } else {
                assert!(formulas.is_empty(), "{name}, separator {separator:?}: formula cells {formulas:?}");
            }
        }
    }
}

/// An audit-log cursor continues the range it was issued for; with another `from`/`to` it is refused
/// as a bad request, never a server error.
#[tokio::test]
async fn an_audit_cursor_is_bound_to_its_range() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    for topic in ["xxe", "idor"] {
        assign_team_topic(&env, &org, topic).await;
    }
    let today = Utc::now().date_naive();
    let first = env.get(&format!("/audit-log?limit=1&from={today}")).token(key).await;
    let cursor = first.body["nextCursor"].as_str().expect("a second page").to_owned();
    let same = env.get(&format!("/audit-log?limit=1&from={today}&cursor={cursor}")).token(key).await;
    assert_eq!(same.status, StatusCode::OK);
    let yesterday = today - chrono::Duration::days(1);
    for other in [format!("from={yesterday}"), format!("from={today}&to={today}"), String::new()] {
        let moved = env.get(&format!("/audit-log?limit=1&{other}&cursor={cursor}")).token(key).await;
        assert_problem(&moved, 400, "validation_failed");
    }
}

/// Fails S3's CompleteMultipartUpload before it is sent; every other call reaches the (moto) server.
#[derive(Debug)]
struct FailCompleteMultipartUpload;

impl aws_smithy_runtime_api::client::interceptors::Intercept for FailCompleteMultipartUpload {
    fn name(&self) -> &'static str {
        "FailCompleteMultipartUpload"
    }

    fn read_before_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadInput;
        match context.input().downcast_ref::<CompleteMultipartUploadInput>() {
            Some(_) => Err("injected failure of CompleteMultipartUpload".into()),
            None => Ok(()),
        }
    }
}

/// A running export job of `org` requested at `at`, whose request event is not sent (no worker runs
/// it unless the test does).
async fn running_export(env: &Env, org: &domain::OrgId, at: chrono::DateTime<Utc>) -> uuid::Uuid {
    let job = testkit::fixtures::running_export(org, at);
    assert!(env.store.request_export(org, &job, &[]).await.unwrap(), "a free export slot");
    job.export_id
}

/// An org runs at most 3 exports at once: a fourth request is 429 with `Retry-After` until one is
/// over (a job running for more than its hour counts as failed); other orgs are not held back.
#[tokio::test]
async fn an_org_runs_at_most_three_exports_at_once() {
    let (env, org) = Env::with_org().await;
    let other = env.org().await;
    let key = org.api_keys.admin.as_str();
    let stale = running_export(&env, &org.org_id, Utc::now() - chrono::Duration::hours(2)).await;
    for _ in 0..3 {
        running_export(&env, &org.org_id, Utc::now()).await;
    }
    let refused = env.post("/assignments/exports").token(key).json(json!({"kind": "progress"})).await;
    assert_problem(&refused, 429, "too_many_running_exports");
    assert_eq!(refused.headers["retry-after"], "30");
    assert_eq!(refused.body["limit"], 3, "{:?}", refused.body);
    let listed = env.get("/assignments/exports").token(key).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 4, "nothing recorded for the refused request");
    assert!(listed.body["items"].as_array().unwrap().iter().any(|j| j["exportId"] == stale.to_string()));

    let elsewhere =
        env.post("/assignments/exports").token(other.api_keys.admin.as_str()).json(json!({"kind": "progress"})).await;
    assert_eq!(elsewhere.status, StatusCode::ACCEPTED, "{:?}", elsewhere.body);
}

/// Requests made at the same moment cannot share a slot: of six, three are recorded; a finished job's
/// slot is free for the next.
#[tokio::test]
async fn concurrent_export_requests_take_at_most_three_slots() {
    let (env, org) = Env::with_org().await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (store, org) = (env.store.clone(), org.org_id.clone());
        requests.spawn(async move {
            let job = testkit::fixtures::running_export(&org, Utc::now());
            store.request_export(&org, &job, &[]).await.unwrap().then_some(job)
        });
    }
    let mut recorded = Vec::new();
    while let Some(done) = requests.join_next().await {
        recorded.extend(done.unwrap());
    }
    assert_eq!(recorded.len(), 3, "one job per slot");
    let late = testkit::fixtures::running_export(&org.org_id, Utc::now());
    assert!(!env.store.request_export(&org.org_id, &late, &[]).await.unwrap());
    assert!(env.store.export_job(&org.org_id, late.export_id).await.unwrap().is_none(), "nothing recorded");

    let failed = recorded[0].failed("test", Utc::now());
    assert!(env.store.finish_export(&org.org_id, &failed, None, &[]).await.unwrap());
    env.store.release_export_slot(&org.org_id, failed.export_id).await.unwrap();
    assert!(env.store.request_export(&org.org_id, &late, &[]).await.unwrap(), "the finished job's slot");
}

/// An export whose upload fails to complete is marked failed with the reason, aborts its multipart
/// upload (nothing is left in the bucket) and writes no audit entry.
#[tokio::test]
async fn a_failed_export_aborts_its_upload() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    assign_team_topic(&env, &org, "xxe").await;
    // A requested export whose request event is not sent: only the worker below runs it.
    let export_id = running_export(&env, &org.org_id, Utc::now()).await;

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let mut bucket = exports::Bucket::from_env(&config).unwrap();
    let healthy = bucket.client.clone();
    let failing = healthy.config().to_builder().interceptor(FailCompleteMultipartUpload).build();
    bucket.client = gateway::iam::s3(&aws_sdk_s3::Client::from_conf(failing));
    let template = gateway::Template::of_project().unwrap();
    let publisher = events::Publisher::new(env.events.clone(), std::env::var("EVENT_BUS_NAME").unwrap());
    let jobs = gateway::bus::queues(&env.sqs).unwrap();
    let broken = gateway::Gateway::new(
        api::App::new(env.store.clone(), SECRET),
        publisher,
        bucket.clone(),
        jobs,
        template.routes,
    )
    .unwrap();
    let requested = json!({"detail-type": "export.requested", "source": "assignments",
                           "detail": {"exportId": export_id, "orgId": org.org_id.as_str(), "kind": "progress"}});
    // Runs that cannot write the file are errors (the rule redelivers) until the last, which fails it.
    for run in 1..domain::ExportJob::MAX_ATTEMPTS {
        let outcome = broken.invoke("ExportWorkerFunction", requested.clone()).await.unwrap();
        assert_eq!(outcome["errorType"], "ConsumerError", "run {run}: {outcome:?}");
        let still = env.get(&format!("/assignments/exports/{export_id}")).token(key).await;
        assert_eq!(still.body["status"], "running");
    }
    let outcome = broken.invoke("ExportWorkerFunction", requested).await.unwrap();
    assert_eq!(outcome["status"], "failed", "{outcome:?}");
    let failed = env.get(&format!("/assignments/exports/{export_id}")).token(key).await;
    assert_eq!(failed.body["status"], "failed");
    assert_eq!(failed.body["failure"], "the file could not be written", "{:?}", failed.body);
    assert_eq!(failed.body["downloadUrl"], json!(null));

    let prefix = format!("exports/{}/", org.org_id.as_str());
    let uploads = healthy.list_multipart_uploads().bucket(&bucket.name).prefix(&prefix).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "the upload was aborted: {:?}", uploads.uploads());
    let objects = healthy.list_objects_v2().bucket(&bucket.name).prefix(&prefix).send().await.unwrap();
    assert_eq!(objects.key_count(), Some(0));
    let audit = env.get("/audit-log?action=assignment.exported").token(key).await;
    assert_eq!(audit.body["items"], json!([]));
}
