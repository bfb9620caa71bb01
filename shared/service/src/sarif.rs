//! Just-in-time training from code scanning: the CWEs of a SARIF log's results, mapped to the
//! catalog's practice topics, become individual assignments for the commit's author — unless an active
//! assignment already gives the author that topic.
//!
//! One ingestion per (repository, commit) and org for 24 hours: the first one's response answers every
//! re-post, whether it came as a request or as an upload. An ingestion writes all of its assignments,
//! their audit entries and rows, `assignment.created` for each, `sarif.ingested` and the response that
//! answers re-posts in one transaction: all of it or nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use domain::sarif::Findings;
use domain::{
    AssigneeType, Assignment, AssignmentId, Catalog, ContentArea, NewAssignment, OrgId, ResolvedTarget, Scan, Slug,
    Source, Target, TargetType, TrackedUnit, User, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{AssignmentFilter, IdempotencyBegin, IdempotencyKey, Pages, StoredResponse};

use crate::{Actor, AppError, Ctx, outbound};

/// Days from an ingestion to the deadline of the assignments it creates.
pub const DEADLINE_DAYS: i64 = 14;
/// Most assignments one ingestion creates (the topics with the most rules first); further topics are
/// reported in `notCreated`. All of them commit in one transaction.
pub const MAX_CREATED: usize = 20;
/// Active assignments per assignee (the author, their team, the org) read to decide coverage, and the
/// author's rows read for new-starters rosters: beyond these, a topic may be assigned although covered.
const MAX_COVERAGE_READS: usize = 2_000;
const PAGE: usize = 200;
/// The stored response is the ingestion's own JSON; every re-post of the commit gets it, whatever it
/// carries (a re-run of a scanner writes different timestamps).
const SAME_COMMIT: &str = "sarif-ingestion";

static CATALOG: LazyLock<Result<Catalog, domain::CatalogError>> = LazyLock::new(Catalog::bundled);

/// A topic an ingestion assigned, found already assigned, or did not assign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicAssignment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<AssignmentId>,
    pub topic_id: String,
    pub cwes: Vec<String>,
}

/// What an ingestion did: the response of `POST /sarif` and the `sarif.ingested` event's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingestion {
    pub ingestion_id: uuid::Uuid,
    pub source: String,
    pub repo: String,
    #[serde(default)]
    pub branch: Option<String>,
    pub commit_sha: String,
    pub author_user_id: Option<UserId>,
    pub tools: Vec<String>,
    pub results: usize,
    pub cwes: Vec<String>,
    pub created: Vec<TopicAssignment>,
    pub already_covered: Vec<TopicAssignment>,
    /// Mapped topics not assigned: beyond [`MAX_CREATED`], or all of them when the author is unknown.
    pub not_created: Vec<TopicAssignment>,
    pub unmapped_cwes: Vec<String>,
    /// Why nothing was created for a known reason (an unknown author).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ingested_at: DateTime<Utc>,
}

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
/// answers [`AppError::IngestionInProgress`].
pub async fn ingest(
    ctx: &Ctx<'_>,
    org: &OrgId,
    scan: &Scan,
    findings: &Findings,
    actor: &Actor,
) -> Result<Ingested, AppError> {
    let store = ctx.store;
    let key = IdempotencyKey::new("sarif", "POST /sarif", &format!("{}\n{}", scan.repo, scan.commit_sha));
    match store.begin_idempotency(org, &key, SAME_COMMIT, actor.now).await? {
        IdempotencyBegin::Replay(stored) => {
            let ingestion = serde_json::from_str(&stored.body)
                .map_err(|e| AppError::Store(store::StoreError::Other(format!("stored ingestion: {e}"))))?;
            return Ok(Ingested { ingestion, replayed: true });
        }
        IdempotencyBegin::InProgress | IdempotencyBegin::Mismatch => return Err(AppError::IngestionInProgress),
        IdempotencyBegin::Started => {}
    }
    match run(ctx, org, scan, findings, actor, &key).await {
        Ok(ingestion) => Ok(Ingested { ingestion, replayed: false }),
        Err(err) => {
            // Nothing was written: let the client (or S3's retry) try again now.
            store.release_idempotency(org, &key).await?;
            Err(err)
        }
    }
}

async fn run(
    ctx: &Ctx<'_>,
    org: &OrgId,
    scan: &Scan,
    findings: &Findings,
    actor: &Actor,
    key: &IdempotencyKey,
) -> Result<Ingestion, AppError> {
    let store = ctx.store;
    let catalog = CATALOG.as_ref().map_err(|e| AppError::Unavailable(format!("bundled catalog: {e}")))?;
    let mapped = map_cwes(catalog, findings);
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

    let mut created = Vec::new();
    let mut events = Vec::new();
    match store.active_user_by_email(org, &scan.author_email).await? {
        None => {
            ingestion.reason = Some("no active user of the organization has the commit author's email".into());
            ingestion.not_created = mapped.topics.iter().map(|(node, cwes, _)| topic_entry(node, cwes, None)).collect();
        }
        Some(author) => {
            ingestion.author_user_id = Some(author.user_id);
            let covering = covering_assignments(ctx, org, &author).await?;
            for (node, cwes, rules) in &mapped.topics {
                if let Some(existing) = covering.iter().find(|a| teaches(a, &node.slug)) {
                    ingestion.already_covered.push(topic_entry(node, cwes, Some(existing.id)));
                } else if created.len() == MAX_CREATED {
                    ingestion.not_created.push(topic_entry(node, cwes, None));
                } else {
                    let assignment = assignment_for(&author, node, scan, findings, rules, actor);
                    ingestion.created.push(topic_entry(node, cwes, Some(assignment.id)));
                    created.push(assignment);
                }
            }
        }
    }

    let mut written = Vec::with_capacity(created.len());
    for assignment in created {
        let view = json!({"assignmentId": assignment.id, "targetId": assignment.target.target_id,
                          "assigneeId": assignment.assignee.assignee_id, "deadline": assignment.deadline});
        let audit = actor.audit(
            "assignment.created",
            ("assignment", assignment.id.to_string(), assignment.target_title.clone()),
            json!({"before": null, "after": view, "learnerCount": 1, "ingestionId": ingestion.ingestion_id,
                   "repo": scan.repo, "commitSha": scan.commit_sha, "tools": findings.tools, "source": scan.source}),
        );
        events.push(outbound::assignment_changed("assignment.created", org, &assignment, &actor.id, actor.now));
        let user = UserId::parse(&assignment.assignee.assignee_id)
            .map_err(|_| AppError::UnknownAssignee("the author's id is not a user id".into()))?;
        let row = assignment.new_row(user, Source::Individual, actor.now);
        written.push((assignment, audit, row));
    }
    let detail = serde_json::to_value(&ingestion)
        .map_err(|e| AppError::Store(store::StoreError::Other(format!("ingestion: {e}"))))?;
    events.push(outbound::other("sarif.ingested", org, actor.now, detail.clone()));
    let response = StoredResponse { status: 200, headers: Vec::new(), body: detail.to_string() };
    store.create_individual_assignments(org, &written, &events, Some((key, &response)), actor.now).await?;
    tracing::info!(ingestion_id = %ingestion.ingestion_id, created = ingestion.created.len(),
        covered = ingestion.already_covered.len(), "sarif ingested");
    Ok(ingestion)
}

/// Whether an assignment's tracked units include the whole topic (a topic, module, category or a
/// custom course that tracks it).
fn teaches(assignment: &Assignment, topic: &Slug) -> bool {
    assignment.units.iter().any(|unit| matches!(unit, TrackedUnit::Topic { topic_id, .. } if topic_id == topic))
}

/// The active assignments that give `author` training now: assigned to them, their team or the org
/// (not new-starters-only), and any whose roster holds a live row of theirs (a new-starters roster).
async fn covering_assignments(ctx: &Ctx<'_>, org: &OrgId, author: &User) -> Result<Vec<Assignment>, AppError> {
    let store = ctx.store;
    let mut assignees = vec![(AssigneeType::User, author.user_id.to_string()), (AssigneeType::Org, org.to_string())];
    if let Some(team) = author.team_id {
        assignees.push((AssigneeType::Team, team.to_string()));
    }
    let mut covering = Vec::new();
    for (assignee_type, assignee_id) in assignees {
        let filter = AssignmentFilter {
            is_active: Some(true),
            assignee_type: Some(assignee_type),
            assignee_id: Some(assignee_id),
            ..Default::default()
        };
        let mut pages = Pages::default();
        let mut read = 0;
        while let Some(start) = pages.next_start().filter(|_| read < MAX_COVERAGE_READS) {
            let page = pages.follow(store.list_assignments(org, &filter, PAGE, start).await?);
            read += page.len();
            covering.extend(page.into_iter().filter(|a| !a.new_starters_only));
        }
    }
    let known: HashSet<AssignmentId> = covering.iter().map(|a| a.id).collect();
    let mut rows = Pages::default();
    let mut on_rosters = Vec::new();
    while let Some(start) = rows.next_start().filter(|_| on_rosters.len() < MAX_COVERAGE_READS) {
        let page = rows.follow(store.user_progress_page(org, author.user_id, PAGE, start).await?);
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

/// The individual assignment of `topic` for the author, due in [`DEADLINE_DAYS`], its note naming the
/// scan.
fn assignment_for(
    author: &User,
    topic: &domain::CatalogNode,
    scan: &Scan,
    findings: &Findings,
    rules: &BTreeSet<String>,
    actor: &Actor,
) -> Assignment {
    let short_sha: String = scan.commit_sha.chars().take(12).collect();
    let rules: Vec<&str> = rules.iter().map(String::as_str).take(10).collect();
    let mut note = format!(
        "Code scanning ({}) found this in {}@{short_sha}{}: {}{}.",
        if findings.tools.is_empty() { scan.source.clone() } else { findings.tools.join(", ") },
        scan.repo,
        scan.branch.as_deref().map(|b| format!(" ({b})")).unwrap_or_default(),
        if rules.is_empty() { "results".to_owned() } else { format!("rule {}", rules.join(", ")) },
        if rules.len() == 10 { " …" } else { "" },
    );
    if note.chars().count() > domain::validation::MAX_NOTE_CHARS {
        note = note.chars().take(domain::validation::MAX_NOTE_CHARS - 1).collect::<String>() + "…";
    }
    let new = NewAssignment {
        target: Target {
            content_area: ContentArea::Practice,
            target_type: TargetType::Topic,
            target_id: topic.slug.to_string(),
        },
        assignee: domain::Assignee { assignee_type: AssigneeType::User, assignee_id: author.user_id.to_string() },
        deadline: (actor.now + Duration::days(DEADLINE_DAYS)).date_naive(),
        due_in_days: None,
        new_starters_only: false,
        recurrence: None,
        is_mandatory: false,
        note: Some(note),
    };
    new.into_assignment(
        AssignmentId::new_v7(),
        ResolvedTarget::from(topic.clone()),
        author.name.clone(),
        actor.id.clone(),
        actor.now,
    )
}

/// The JSON of an ingestion (the response body, the upload's outcome).
pub fn to_json(ingestion: &Ingestion) -> Value {
    serde_json::to_value(ingestion).unwrap_or(Value::Null)
}
