//! Pattern 2 and 4 reads: the org's assignments listed and filtered, and those aimed at one assignee.

use super::*;

/// Filters of the list route; all optional and combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    pub is_active: Option<bool>,
    pub assignee_type: Option<AssigneeType>,
    pub assignee_id: Option<String>,
    pub content_area: Option<ContentArea>,
    /// Only assignments that may have someone overdue on this date: active, and a deadline that has
    /// passed ([`domain::deadline`]) with learners not done, or learners with dates of their own. A
    /// superset: `service::reads::list_assignments` keeps those whose summary counts someone overdue.
    pub overdue_on: Option<NaiveDate>,
    /// Only assignments that may have a lapsed recertification on this date: active, with learners
    /// counted by date (a superset, made exact by the use case as above).
    pub expired_on: Option<NaiveDate>,
}

impl Store {
    /// Pattern 2: the org's assignments, newest first, filtered, up to `limit`.
    pub async fn list_assignments(
        &self,
        org: &OrgId,
        filter: &AssignmentFilter,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<Assignment>, StoreError> {
        let mut conditions = Vec::new();
        let mut values = vec![(":org".to_owned(), s(keys::org_assignments(org)))];
        if let Some(active) = filter.is_active {
            conditions.push("isActive = :active");
            values.push((":active".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(active)));
        }
        if let Some(t) = filter.assignee_type {
            conditions.push("assigneeType = :atype");
            values.push((":atype".into(), s(t.as_str())));
        }
        if let Some(id) = &filter.assignee_id {
            conditions.push("assigneeId = :aid");
            values.push((":aid".into(), s(id.as_str())));
        }
        if let Some(area) = filter.content_area {
            conditions.push("contentArea = :area");
            values.push((":area".into(), s(area.as_str())));
        }
        if let Some(today) = filter.overdue_on {
            // Rows with their own dates may be overdue before the deadline, or not after it.
            conditions.push("isActive = :overdueActive AND ((deadline <= :lastPassed AND (inProgressUsers > :zero OR notStartedUsers > :zero)) OR datedRows > :zero)");
            values.push((":overdueActive".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(true)));
            let last_passed = domain::deadline::last_passed(today).unwrap_or(NaiveDate::MIN);
            values.push((":lastPassed".into(), s(last_passed.to_string())));
            values.push((":zero".into(), n(0)));
        }
        if filter.expired_on.is_some() {
            conditions.push("isActive = :expiredActive AND datedRows > :none");
            values.push((":expiredActive".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(true)));
            values.push((":none".into(), n(0)));
        }
        let filter_expression = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        let (items, next) = self
            .query_bounded(
                |q| {
                    q.index_name(keys::GSI1)
                        .key_condition_expression("GSI1PK = :org")
                        .set_filter_expression(filter_expression.clone())
                        .set_expression_attribute_values(Some(values.iter().cloned().collect()))
                        .scan_index_forward(false)
                },
                Some(keys::GSI1),
                filter_expression.is_some(),
                start,
                limit,
            )
            .await?;
        let items = items.into_iter().map(AssignmentRecord::entity_of).collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }

    /// Pattern 4: the active assignments aimed at one assignee (a team, the org, a user).
    pub async fn active_assignments_for(
        &self,
        org: &OrgId,
        assignee_type: AssigneeType,
        assignee_id: &str,
    ) -> Result<Vec<Assignment>, StoreError> {
        let aimed_at = Partition::index(keys::GSI2, keys::assignee_index(org, assignee_type, assignee_id)?);
        self.all_of::<AssignmentRecord>(&aimed_at).await
    }

    /// Pattern 4, a page at a time: the active assignments aimed at one assignee.
    pub async fn active_assignments_page_for(
        &self,
        org: &OrgId,
        assignee_type: AssigneeType,
        assignee_id: &str,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<Assignment>, StoreError> {
        let aimed_at = Partition::index(keys::GSI2, keys::assignee_index(org, assignee_type, assignee_id)?);
        self.page_of::<AssignmentRecord>(&aimed_at, start, limit).await
    }
}
