//! Pattern 1 and 3 reads: an assignment's rows, and a learner's rows across assignments.

use super::*;

impl Store {
    /// The rows `users` have on assignment `id` (those that exist, in no particular order).
    pub async fn progress_rows_of(
        &self,
        org: &OrgId,
        id: AssignmentId,
        users: &[UserId],
    ) -> Result<Vec<ProgressRow>, StoreError> {
        let sort_keys: Vec<String> = users.iter().map(|u| keys::progress_sk(*u)).collect();
        self.batch_get_entities::<ProgressRecord>(
            sort_keys.iter().map(|sk| (keys::assignment_pk(org, id), sk.as_str())),
        )
        .await
    }

    /// Pattern 1 (rows): a page of an assignment's progress rows, by user id.
    pub async fn progress_page(
        &self,
        org: &OrgId,
        id: AssignmentId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<ProgressRow>, StoreError> {
        let rows = Partition::table(keys::assignment_pk(org, id)).prefixed(keys::PROGRESS_SK_PREFIX);
        self.page_of::<ProgressRecord>(&rows, start, limit).await
    }

    /// One learner's row on one assignment.
    pub async fn progress_row(
        &self,
        org: &OrgId,
        id: AssignmentId,
        user: UserId,
    ) -> Result<Option<ProgressRow>, StoreError> {
        self.get_entity::<ProgressRecord>(keys::assignment_pk(org, id), &keys::progress_sk(user)).await
    }

    /// Pattern 3: every progress row of a user (their assignments, active or not).
    pub async fn user_progress_rows(&self, org: &OrgId, user: UserId) -> Result<Vec<ProgressRow>, StoreError> {
        self.all_of::<ProgressRecord>(&user_rows(org, user)).await
    }

    /// Pattern 3, paged: up to `limit` of a user's progress rows (the learner view).
    pub async fn user_progress_page(
        &self,
        org: &OrgId,
        user: UserId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<ProgressRow>, StoreError> {
        self.page_of::<ProgressRecord>(&user_rows(org, user), start, limit).await
    }
}
