//! Rate-limit counters per org and key (with TTL), and an org's own limits.

use super::*;

/// Whose requests a rate counter counts: an API key, the user behind session tokens, or the whole org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateSubject {
    ApiKey(uuid::Uuid),
    User(domain::UserId),
    Org,
}

impl std::fmt::Display for RateSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateSubject::ApiKey(id) => write!(f, "key-{id}"),
            RateSubject::User(id) => write!(f, "user-{id}"),
            RateSubject::Org => f.write_str("org"),
        }
    }
}

/// An org's own limits on all its requests together, per calendar minute and per sliding hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_minute: u32,
    pub per_hour: u32,
}

/// Requests counted for one caller in each of the last 60 calendar minutes (UTC), oldest first; the
/// last entry is the current minute, this request included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCounts {
    pub per_minute: [u32; 60],
}

impl RateCounts {
    /// Requests in the current calendar minute.
    pub fn minute(&self) -> u32 {
        self.per_minute[59]
    }

    /// Requests in the sliding hour: this minute and the 59 before it.
    pub fn hour(&self) -> u32 {
        self.per_minute.iter().sum()
    }
}

impl Store {
    /// The org's own limits, if an operator set them (else the service's default applies).
    pub async fn org_rate_limits(&self, org: &OrgId) -> Result<Option<RateLimits>, StoreError> {
        let Some(item) = self.get(keys::rate_limits_pk(org), keys::RATE_SK).await? else { return Ok(None) };
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u32>().ok());
        match (number("perMinute"), number("perHour")) {
            (Some(per_minute), Some(per_hour)) => Ok(Some(RateLimits { per_minute, per_hour })),
            _ => Err(StoreError::Corrupt(format!("{}: perMinute and perHour", keys::rate_limits_pk(org)))),
        }
    }

    /// Sets the org's own limits (`None`: back to the default). An operator's setting; no route writes it.
    pub async fn set_org_rate_limits(&self, org: &OrgId, limits: Option<RateLimits>) -> Result<(), StoreError> {
        let key = crate::dynamo::Item::from([
            (keys::PK.to_owned(), s(keys::rate_limits_pk(org))),
            (keys::SK.to_owned(), s(keys::RATE_SK)),
        ]);
        match limits {
            Some(limits) => {
                let mut item = key;
                item.insert("perMinute".into(), n(limits.per_minute));
                item.insert("perHour".into(), n(limits.per_hour));
                self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(classify)?;
            }
            None => {
                self.client.delete_item().table_name(&self.table).set_key(Some(key)).send().await.map_err(classify)?;
            }
        }
        Ok(())
    }

    /// Counts one request of `subject` and returns its counts per minute over the last hour.
    ///
    /// Counters live in one item per calendar hour with an attribute per minute: one UpdateItem adds
    /// to the current minute and returns the hour so far; the minutes of the previous hour still in the
    /// sliding window come from one GetItem of that hour's item, made at the same time.
    pub async fn count_request(
        &self,
        org: &OrgId,
        subject: RateSubject,
        now: DateTime<Utc>,
    ) -> Result<RateCounts, StoreError> {
        let hour_key = |at: DateTime<Utc>| keys::rate_pk(org, &subject.to_string(), &at.format("%Y%m%d%H").to_string());
        let minute = now.minute() as usize;
        let minute_attr = format!("m{minute:02}");
        let expires = now.timestamp() - i64::from(now.minute() * 60 + now.second()) + 2 * 3600;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(hour_key(now)))
            .key(keys::SK, s(keys::RATE_SK))
            .update_expression("ADD #minute :one SET expiresAt = if_not_exists(expiresAt, :ttl)")
            .expression_attribute_names("#minute", minute_attr.as_str())
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires))
            .return_values(ReturnValue::AllNew)
            .set_return_consumed_capacity(self.capacity_mode())
            .send();
        let previous_hour = async {
            if minute == 59 {
                return Ok(None); // the whole window is in the current hour
            }
            self.get(hour_key(now - Duration::hours(1)), keys::RATE_SK).await
        };
        let (updated, previous) = tokio::join!(update, previous_hour);
        let updated = updated.map_err(classify)?;
        self.note_write(updated.consumed_capacity());
        let current = updated.attributes.unwrap_or_default();
        let previous = previous?.unwrap_or_default();
        let count = |item: &crate::dynamo::Item, m: usize| -> u32 {
            item.get(&format!("m{m:02}")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let mut per_minute = [0u32; 60];
        for (slot, value) in per_minute.iter_mut().enumerate() {
            // slot 59 is this minute; slot 59 - k is k minutes ago.
            let ago = 59 - slot;
            *value = if ago <= minute { count(&current, minute - ago) } else { count(&previous, 60 + minute - ago) };
        }
        Ok(RateCounts { per_minute })
    }
}
