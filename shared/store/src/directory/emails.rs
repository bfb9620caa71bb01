//! The email index of active users (code scanning finds a commit's author by email), and its backfill.

use super::*;

impl Store {
    /// The org's active user with this email (case-insensitive); of several, the lowest user id.
    /// An index read: a user written a moment ago may not be found yet.
    pub async fn active_user_by_email(&self, org: &OrgId, email: &str) -> Result<Option<User>, StoreError> {
        let pk = keys::user_email_index(org, email);
        let (items, _) = self
            .query_page(
                |q| {
                    q.index_name(keys::GSI3)
                        .key_condition_expression("GSI3PK = :pk")
                        .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                },
                None,
                Some(1),
            )
            .await?;
        items.into_iter().next().map(UserRecord::entity_of).transpose()
    }

    /// Gives active users written before the email index existed their index entry, in user-id order
    /// after `after`, reading at most `max` users. Returns the last user read, or `None` when none is
    /// left. Each entry is written only if the user is still active with the same email (a concurrent
    /// profile change writes its own).
    pub async fn index_user_emails(
        &self,
        org: &OrgId,
        after: Option<UserId>,
        max: usize,
    ) -> Result<Option<UserId>, StoreError> {
        let pk = keys::org_users(org);
        let after = after.map(|u| u.to_string());
        let (items, _) = self
            .query_page(
                |q| {
                    let q = q.index_name(keys::GSI1).expression_attribute_values(":pk", AttributeValue::S(pk.clone()));
                    match &after {
                        // A key condition cannot compare with "": the first call has none.
                        Some(after) => q
                            .key_condition_expression("GSI1PK = :pk AND GSI1SK > :after")
                            .expression_attribute_values(":after", AttributeValue::S(after.clone())),
                        None => q.key_condition_expression("GSI1PK = :pk"),
                    }
                },
                None,
                Some(i32::try_from(max).unwrap_or(i32::MAX)),
            )
            .await?;
        let mut last = None;
        for item in items {
            let indexed = item.contains_key(keys::GSI3PK);
            let user = UserRecord::entity_of(item)?;
            last = Some(user.user_id);
            if indexed || user.email.trim().is_empty() {
                continue;
            }
            let result = self
                .send_update(
                    self.update_request()
                        .key(keys::PK, AttributeValue::S(keys::user_pk(org, user.user_id)))
                        .key(keys::SK, AttributeValue::S(keys::PROFILE_SK.into()))
                        .update_expression("SET GSI3PK = :index, GSI3SK = :user")
                        .condition_expression("isActive = :yes AND email = :email AND attribute_not_exists(GSI3PK)")
                        .expression_attribute_values(
                            ":index",
                            AttributeValue::S(keys::user_email_index(org, &user.email)),
                        )
                        .expression_attribute_values(":user", AttributeValue::S(user.user_id.to_string()))
                        .expression_attribute_values(":yes", AttributeValue::Bool(true))
                        .expression_attribute_values(":email", AttributeValue::S(user.email.clone())),
                )
                .await;
            match result {
                Ok(_) | Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(last)
    }

    /// Where [`Store::index_user_emails`] stands for the org: `None` before it started, `Some(None)`
    /// once done, `Some(Some(user))` to go on after `user`.
    pub async fn email_index_progress(&self, org: &OrgId) -> Result<Option<Option<UserId>>, StoreError> {
        let Some(item) = self.get_item(keys::migration_pk(org), keys::EMAIL_INDEX_SK, true).await? else {
            return Ok(None);
        };
        let done = item.get("done").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
        let after = item.get("after").and_then(|v| v.as_s().ok()).and_then(|s| UserId::parse(s).ok());
        Ok(Some(if done { None } else { after }))
    }

    /// Records how far [`Store::index_user_emails`] went (`None`: done).
    pub async fn set_email_index_progress(&self, org: &OrgId, after: Option<UserId>) -> Result<(), StoreError> {
        let mut put = self
            .put_request()
            .item(keys::PK, AttributeValue::S(keys::migration_pk(org)))
            .item(keys::SK, AttributeValue::S(keys::EMAIL_INDEX_SK.into()))
            .item("entity", AttributeValue::S("migration".into()))
            .item("done", AttributeValue::Bool(after.is_none()));
        if let Some(after) = after {
            put = put.item("after", AttributeValue::S(after.to_string()));
        }
        self.send_put(put).await?;
        Ok(())
    }
}
