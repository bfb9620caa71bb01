//! Just-in-time training from code scanning: the CWEs of a SARIF log's results, mapped to the
//! catalog's practice topics, become individual assignments for the commit's author — unless an active
//! assignment already gives the author that topic.
//!
//! One ingestion per (repository, commit) and org for 24 hours: the first one's response answers every
//! re-post, whether it came as a request or as an upload (an unknown author's is not remembered, so a
//! re-post once the user is known assigns). An ingestion writes all of its assignments, their audit
//! entries and rows, `assignment.created` for each, `sarif.ingested` and the response that answers
//! re-posts in one transaction: all of it or nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use domain::sarif::Findings;
use domain::{
    AssigneeType, Assignment, AssignmentId, Catalog, ContentArea, NewAssignment, OrgId, ResolvedTarget, Role,
    SarifUpload, Scan, Slug, Target, TargetType, TrackedUnit, User, UserId,
};
use serde_json::{Value, json};
use store::{IdempotencyBegin, IdempotencyKey, IndividualAssignment, Pages, StoreError, StoredResponse};

use crate::create::{created_audit, individual_row};
use crate::reach::{bundled_catalog, resolve_target};
use crate::{Actor, AppError, Ctx, outbound};

/// Days from an ingestion to the deadline of the assignments it creates.
pub const DEADLINE_DAYS: i64 = 14;
/// Most assignments one ingestion creates (the topics with the most rules first); further topics are
/// reported in `notCreated`. All of them commit in one transaction.
pub const MAX_CREATED: usize = 20;
/// Active assignments read per assignee (the author, their team, the org) to decide coverage, and
/// rows of the author read for new-starters rosters: beyond these, a topic may be assigned although
/// covered.
const MAX_COVERAGE_READS: usize = 2_000;
const PAGE: usize = 200;
/// The request hash every claim of a commit carries: a re-post gets the first response whatever its
/// body (a scanner's re-run writes new timestamps), instead of `idempotency_key_reused`.
const ANY_BODY: &str = "sarif-ingestion";

const _: () = assert!(MAX_CREATED <= store::MAX_INDIVIDUAL_ASSIGNMENTS, "an ingestion commits in one transaction");

/// What an ingestion did (the response of `POST /sarif`) and a topic in it: the `sarif.ingested`
/// event's detail, whose home is [`domain::event`].
pub use domain::event::{SarifIngested as Ingestion, TopicAssignment};

/// An ingestion's answer: the first ingestion of the commit (`replayed` for a re-post's copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub ingestion: Ingestion,
    pub replayed: bool,
}

fn cwe_name(cwe: u32) -> String {
    format!("CWE-{cwe}")
}

/// The mapped topics of a log's CWEs, the most rules first, and the CWEs no topic teaches.
struct Mapped<'c> {
    topics: Vec<(&'c domain::CatalogNode, BTreeSet<u32>, BTreeSet<String>)>,
    unmapped: Vec<u32>,
}

fn map_cwes<'c>(catalog: &'c Catalog, findings: &Findings) -> Mapped<'c> {
    let mut by_topic: BTreeMap<&Slug, (&domain::CatalogNode, BTreeSet<u32>, BTreeSet<String>)> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for (cwe, rules) in &findings.cwes {
        match catalog.topic_for_cwe(*cwe) {
            Some(node) => {
                let entry = by_topic.entry(&node.slug).or_insert_with(|| (node, BTreeSet::new(), BTreeSet::new()));
                entry.1.insert(*cwe);
                entry.2.extend(rules.iter().cloned());
            }
            None => unmapped.push(*cwe),
        }
    }
    let mut topics: Vec<_> = by_topic.into_values().collect();
    // Stable: equal rule counts stay in slug order.
    topics.sort_by_key(|(_, _, rules)| std::cmp::Reverse(rules.len()));
    Mapped { topics, unmapped }
}

fn topic_entry(node: &domain::CatalogNode, cwes: &BTreeSet<u32>, id: Option<AssignmentId>) -> TopicAssignment {
    TopicAssignment {
        assignment_id: id,
        topic_id: node.slug.to_string(),
        cwes: cwes.iter().copied().map(cwe_name).collect(),
    }
}

/// Ingests a log's findings for `scan`'s commit author (see the module docs). A re-post of the same
/// repository and commit within 24 hours gets the first ingestion's response; one still running
/// answers [`AppError::IngestionInProgress`]. `view` is how the audit entries show a new assignment
/// (the API's representation).
pub async fn ingest(
    ctx: &Ctx<'_>,
    org: &OrgId,
    scan: &Scan,
    findings: &Findings,
    actor: &Actor,
    view: &(dyn Fn(&Assignment) -> Value + Sync),
) -> Result<Ingested, AppError> {
    let store = ctx.store;
    // Repository names are case-insensitive on the forges CI posts from.
    let commit = format!("{}\n{}", scan.repo.to_lowercase(), scan.commit_sha);
    let key = IdempotencyKey::new("sarif", "POST /sarif", &commit);
    // The claim's lease and expiry are real durations (DynamoDB expires it by the wall clock), not the
    // org's time.
    match store.begin_idempotency(org, &key, ANY_BODY, ctx.clock.wall()).await? {
        IdempotencyBegin::Replay(stored) => {
            let ingestion = serde_json::from_str(&stored.body)
                .map_err(|e| AppError::Store(StoreError::Corrupt(format!("stored ingestion: {e}"))))?;
            return Ok(Ingested { ingestion, replayed: true });
        }
        // Every claim of a commit carries the same hash, so a mismatch cannot happen; if it did, the
        // claim is someone else's.
        IdempotencyBegin::InProgress | IdempotencyBegin::Mismatch => return Err(AppError::IngestionInProgress),
        IdempotencyBegin::Started => {}
    }
    let outcome = run(&One { ctx, org, scan, findings, actor, view, key: &key }).await;
    match outcome {
        Ok(ingestion) if ingestion.author_user_id.is_some() => Ok(Ingested { ingestion, replayed: false }),
        // An unknown author is not remembered: a re-post once the user is known assigns.
        Ok(ingestion) => {
            store.release_idempotency(org, &key).await?;
            Ok(Ingested { ingestion, replayed: false })
        }
        Err(err) => {
            // Nothing was written: let the client (or the upload's retry) try again now. If the key
            // cannot be given back, its lease runs out in a minute; the client hears the first error.
            if let Err(release) = store.release_idempotency(org, &key).await {
                tracing::error!(org = %org, error = %release, "an ingestion's claim was not released");
            }
            Err(err)
        }
    }
}

/// Rounds of an ingestion: a topic assigned to the author meanwhile (by an admin, or another commit's
/// ingestion) refuses the lot; the next round reports it covered.
const ROUNDS: usize = 3;

/// One ingestion: coverage read, assignments built, all committed at once. When the duplicate lock
/// names an assignment made for the author since coverage was read (the index may not show it yet),
/// that assignment is read by id and the ingestion goes round again with it as covering.
async fn run(one: &One<'_>) -> Result<Ingestion, AppError> {
    let (ctx, org) = (one.ctx, one.org);
    let mut meanwhile = Vec::new();
    let mut round = 0;
    loop {
        round += 1;
        match attempt(one, &meanwhile).await {
            Err(AppError::Store(StoreError::DuplicateAssignment { existing_id })) if round < ROUNDS => {
                meanwhile.extend(ctx.store.get_assignment(org, existing_id).await?);
            }
            other => return other,
        }
    }
}

/// What one ingestion works with.
struct One<'a> {
    ctx: &'a Ctx<'a>,
    org: &'a OrgId,
    scan: &'a Scan,
    findings: &'a Findings,
    actor: &'a Actor,
    view: &'a (dyn Fn(&Assignment) -> Value + Sync),
    key: &'a IdempotencyKey,
}

async fn attempt(one: &One<'_>, meanwhile: &[Assignment]) -> Result<Ingestion, AppError> {
    let One { ctx, org, scan, findings, actor, view, key } = *one;
    let store = ctx.store;
    let mapped = map_cwes(bundled_catalog()?, findings);
    let mut ingestion = Ingestion {
        ingestion_id: uuid::Uuid::now_v7(),
        source: scan.source.clone(),
        repo: scan.repo.clone(),
        branch: scan.branch.clone(),
        commit_sha: scan.commit_sha.clone(),
        author_user_id: None,
        tools: findings.tools.clone(),
        results: findings.results,
        cwes: findings.cwes.keys().copied().map(cwe_name).collect(),
        created: Vec::new(),
        already_covered: Vec::new(),
        not_created: Vec::new(),
        unmapped_cwes: mapped.unmapped.iter().copied().map(cwe_name).collect(),
        reason: None,
        ingested_at: actor.now,
    };

    let mut to_create = Vec::new();
    let author = store.active_user_by_email(org, &scan.author_email).await?;
    match &author {
        None => {
            ingestion.reason = Some("no active user of the organization has the commit author's email".into());
            ingestion.not_created = mapped.topics.iter().map(|(node, cwes, _)| topic_entry(node, cwes, None)).collect();
        }
        Some(author) => {
            ingestion.author_user_id = Some(author.user_id);
            let mut covering = covering_assignments(ctx, org, author).await?;
            covering.extend(meanwhile.iter().filter(|a| a.is_active).cloned());
            for (node, cwes, rules) in &mapped.topics {
                if let Some(existing) = covering.iter().find(|a| teaches(a, &node.slug)) {
                    ingestion.already_covered.push(topic_entry(node, cwes, Some(existing.id)));
                } else if to_create.len() == MAX_CREATED {
                    ingestion.not_created.push(topic_entry(node, cwes, None));
                } else {
                    to_create.push((node, cwes, rules));
                }
            }
        }
    }

    // Targets as the table has them (what every other use case assigns): at most MAX_CREATED reads.
    let targets: Vec<Target> = to_create.iter().map(|(node, _, _)| topic_target(node)).collect();
    let resolved = futures::future::try_join_all(targets.iter().map(|t| resolve_target(store, org, t))).await?;
    let targets = targets.into_iter().zip(resolved);

    let mut written = Vec::with_capacity(to_create.len());
    let mut events = Vec::with_capacity(to_create.len() + 1);
    if let Some(author) = &author {
        for ((node, cwes, rules), (target, resolved)) in to_create.iter().zip(targets) {
            let assignment = assignment_for(author, target, resolved, scan, findings, rules, actor);
            let mut audit = created_audit(actor, &assignment, view(&assignment), 1);
            if let Value::Object(metadata) = &mut audit.metadata {
                metadata.insert("ingestionId".into(), json!(ingestion.ingestion_id));
                metadata.insert("source".into(), json!(scan.source));
                metadata.insert("repo".into(), json!(scan.repo));
                metadata.insert("commitSha".into(), json!(scan.commit_sha));
                metadata.insert("tools".into(), json!(findings.tools));
            }
            ingestion.created.push(topic_entry(node, cwes, Some(assignment.id)));
            events.push(outbound::created(org, &assignment, &actor.id, actor.now));
            let row = individual_row(&assignment, author, actor.now);
            written.push(IndividualAssignment { assignment, audit, row });
        }
    }
    let detail =
        serde_json::to_value(&ingestion).map_err(|e| AppError::Store(StoreError::Other(format!("ingestion: {e}"))))?;
    let response = StoredResponse { status: 200, headers: Vec::new(), body: detail.to_string() };
    events.push(outbound::event(org, actor.now, &ingestion));
    // An unknown author's answer is not remembered (see `ingest`).
    let remembered = author.is_some().then_some((key, &response));
    store.create_individual_assignments(org, &written, &events, remembered).await?;
    tracing::info!(ingestion_id = %ingestion.ingestion_id, created = ingestion.created.len(),
        covered = ingestion.already_covered.len(), "sarif ingested");
    Ok(ingestion)
}

fn topic_target(topic: &domain::CatalogNode) -> Target {
    Target { content_area: ContentArea::Practice, target_type: TargetType::Topic, target_id: topic.slug.to_string() }
}

/// Whether an assignment's tracked units include the whole topic (a topic, module, category or a
/// custom course that tracks it).
fn teaches(assignment: &Assignment, topic: &Slug) -> bool {
    assignment.units.iter().any(|unit| matches!(unit, TrackedUnit::Topic { topic_id, .. } if topic_id == topic))
}

/// The active assignments that give `author` training now: assigned to them, their team or the org
/// (not new-starters-only), and any whose roster holds a live row of theirs (a new-starters roster).
/// Each assignee's active assignments are one exact index partition, read up to
/// [`MAX_COVERAGE_READS`]; the author's rows too.
async fn covering_assignments(ctx: &Ctx<'_>, org: &OrgId, author: &User) -> Result<Vec<Assignment>, AppError> {
    let store = ctx.store;
    let mut assignees = vec![(AssigneeType::User, author.user_id.to_string()), (AssigneeType::Org, org.to_string())];
    if let Some(team) = author.team_id {
        assignees.push((AssigneeType::Team, team.to_string()));
    }
    let mut covering = Vec::new();
    for (assignee_type, assignee_id) in assignees {
        let mut pages = Pages::default();
        let mut read = 0;
        while let Some(start) = pages.next_start().filter(|_| read < MAX_COVERAGE_READS) {
            let page = store.active_assignments_page_for(org, assignee_type, &assignee_id, PAGE, start).await?;
            let page = pages.follow(page);
            read += page.len();
            covering.extend(page.into_iter().filter(|a| !a.new_starters_only));
        }
    }
    let known: HashSet<AssignmentId> = covering.iter().map(|a| a.id).collect();
    let mut rows = Pages::default();
    let (mut read, mut on_rosters) = (0, Vec::new());
    while let Some(start) = rows.next_start().filter(|_| read < MAX_COVERAGE_READS) {
        let page = rows.follow(store.user_progress_page(org, author.user_id, PAGE, start).await?);
        read += page.len();
        on_rosters.extend(
            page.into_iter()
                .filter(|r| r.removed_at.is_none() && !known.contains(&r.assignment_id))
                .map(|r| r.assignment_id),
        );
    }
    for ids in on_rosters.chunks(100) {
        covering.extend(store.get_assignments(org, ids).await?.into_iter().filter(|a| a.is_active));
    }
    Ok(covering)
}

/// The individual assignment of a topic for the author, due in [`DEADLINE_DAYS`], its note naming the
/// scan.
fn assignment_for(
    author: &User,
    target: Target,
    resolved: ResolvedTarget,
    scan: &Scan,
    findings: &Findings,
    rules: &BTreeSet<String>,
    actor: &Actor,
) -> Assignment {
    const NOTE_RULES: usize = 10;
    let short_sha: String = scan.commit_sha.chars().take(12).collect();
    let named: Vec<&str> = rules.iter().map(String::as_str).take(NOTE_RULES).collect();
    let mut note = format!(
        "Code scanning ({}) found this in {}@{short_sha}{}: {}{}.",
        if findings.tools.is_empty() { scan.source.clone() } else { findings.tools.join(", ") },
        scan.repo,
        scan.branch.as_deref().map(|b| format!(" ({b})")).unwrap_or_default(),
        if named.is_empty() { "results".to_owned() } else { format!("rule {}", named.join(", ")) },
        if rules.len() > NOTE_RULES { " …" } else { "" },
    );
    if note.chars().count() > domain::validation::MAX_NOTE_CHARS {
        note = note.chars().take(domain::validation::MAX_NOTE_CHARS - 1).collect::<String>() + "…";
    }
    let new = NewAssignment {
        target,
        assignee: domain::Assignee { assignee_type: AssigneeType::User, assignee_id: author.user_id.to_string() },
        deadline: (actor.now + Duration::days(DEADLINE_DAYS)).date_naive(),
        due_in_days: None,
        new_starters_only: false,
        recurrence: None,
        is_mandatory: false,
        note: Some(note),
    };
    new.into_assignment(AssignmentId::new_v7(), resolved, author.name.clone(), actor.id.clone(), actor.now)
}

/// The JSON of an ingestion (the response body, the upload's outcome).
pub fn to_json(ingestion: &Ingestion) -> Result<Value, AppError> {
    serde_json::to_value(ingestion).map_err(|e| AppError::Store(StoreError::Other(format!("ingestion: {e}"))))
}

/// Whether whoever started `upload` may still ingest it, checked right before its log is ingested (up
/// to two hours after the upload URL): its API key neither revoked nor expired, or its session user still
/// an active org admin. The refusal's reason otherwise. An upload acts as its uploader, so a key revoked
/// or an admin demoted in between must not create assignments through it. A key the org's index does
/// not list yet (a key made a moment ago; the index is eventually consistent) is `Unavailable`: asked
/// again on the event's retry, not refused.
pub async fn uploader_may_ingest(
    ctx: &Ctx<'_>,
    org: &OrgId,
    upload: &SarifUpload,
    now: DateTime<Utc>,
) -> Result<Result<(), String>, AppError> {
    let id = |raw: &str| uuid::Uuid::parse_str(raw).ok();
    if let Some(key_id) = upload.actor_id.strip_prefix("apikey:").and_then(id) {
        let key = ctx.store.api_key_by_id(org, key_id).await?;
        return match key {
            Some(key) if key.is_usable(now) => Ok(Ok(())),
            Some(_) => Ok(Err("the API key that started the upload is revoked or expired".to_owned())),
            None => Err(AppError::Unavailable(format!("API key {key_id} is not listed in its org yet"))),
        };
    }
    if let Some(user) = upload.actor_id.strip_prefix("user:").and_then(id) {
        let current = ctx.store.current_user(org, UserId(user)).await?;
        return Ok(match current {
            Some(user) if user.is_active && user.role == Role::OrgAdmin => Ok(()),
            _ => Err("the user who started the upload is no longer an active org admin".to_owned()),
        });
    }
    Ok(Err(format!("the upload's starter ({}) is not an API key or a user", upload.actor_id)))
}
