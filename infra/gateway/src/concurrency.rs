//! Reserved concurrency, as Lambda applies it: a function whose template sets
//! `ReservedConcurrentExecutions` runs at most that many invocations at once; one more is throttled
//! (the Invoke API answers 429 `TooManyRequestsException`, an HTTP route 500 as API Gateway's Lambda
//! proxy does, and the event source keeps the event and retries it: the local bus's queue makes it
//! visible again after its visibility timeout).
//!
//! One registry per process, as the functions' concurrency is one per account: the HTTP gateway and the
//! event delivery's gateway share it. Tests may take a function's slots themselves (`hold`) to see the
//! next event wait and nothing lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::GatewayError;

#[derive(Debug, Default)]
pub struct Concurrency {
    limits: Mutex<HashMap<String, Slots>>,
}

/// One function's reserved concurrency: its free slots, and how many invocations found none.
#[derive(Debug, Clone)]
struct Slots {
    free: Arc<Semaphore>,
    throttled: Arc<AtomicU64>,
}

static SHARED: LazyLock<Arc<Concurrency>> = LazyLock::new(Arc::default);

impl Concurrency {
    /// The process's registry, which every gateway of the process applies.
    pub fn shared() -> Arc<Concurrency> {
        Arc::clone(&SHARED)
    }

    /// Sets the reserved concurrency the template gives these functions (once per function: a gateway
    /// started again in the same process keeps the slots in use).
    pub fn reserve(&self, reserved: &HashMap<String, usize>) {
        let Ok(mut limits) = self.limits.lock() else { return };
        for (function, slots) in reserved {
            limits.entry(function.clone()).or_insert_with(|| Slots {
                free: Arc::new(Semaphore::new(*slots)),
                throttled: Arc::new(AtomicU64::new(0)),
            });
        }
    }

    fn slots(&self, function: &str) -> Option<Slots> {
        self.limits.lock().ok()?.get(function).cloned()
    }

    /// A slot for one invocation of `function` (`None`: it has no reserved concurrency), or
    /// [`GatewayError::Throttled`] when every slot is taken.
    pub fn admit(&self, function: &str) -> Result<Option<OwnedSemaphorePermit>, GatewayError> {
        let Some(slots) = self.slots(function) else { return Ok(None) };
        match slots.free.try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                slots.throttled.fetch_add(1, Ordering::Relaxed);
                Err(GatewayError::Throttled(function.to_owned()))
            }
        }
    }

    /// Takes `slots` of `function`'s reserved concurrency (waiting for them), as that many running
    /// invocations would, until the permit is dropped.
    pub async fn hold(&self, function: &str, slots: u32) -> Option<OwnedSemaphorePermit> {
        self.slots(function)?.free.acquire_many_owned(slots).await.ok()
    }

    /// How many invocations of `function` were throttled so far.
    pub fn throttled(&self, function: &str) -> u64 {
        self.slots(function).map_or(0, |slots| slots.throttled.load(Ordering::Relaxed))
    }
}

/// Each function's `ReservedConcurrentExecutions` in the template: a number, a `!Ref` to a parameter
/// with a default, or `!If [<condition>, !Ref <parameter>, !Ref AWS::NoValue]` — the template's form for
/// "0 reserves none", whose condition is that the parameter is not 0 (`tests/tests/template.rs`).
pub(crate) fn reserved(
    resources: &serde_yaml_ng::Mapping,
    parameters: &serde_yaml_ng::Value,
) -> Result<HashMap<String, usize>, GatewayError> {
    let mut reserved = HashMap::new();
    for (logical_id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let function = logical_id.as_str().unwrap_or_default();
        let value = &resource["Properties"]["ReservedConcurrentExecutions"];
        let default_of = |value: &serde_yaml_ng::Value| match value {
            serde_yaml_ng::Value::Tagged(tagged) if tagged.tag == "Ref" => {
                parameters[tagged.value.as_str().unwrap_or_default()]["Default"].as_u64()
            }
            other => other.as_u64(),
        };
        let slots = match value {
            serde_yaml_ng::Value::Null => continue,
            serde_yaml_ng::Value::Tagged(tagged) if tagged.tag == "If" => match default_of(&tagged.value[1]) {
                Some(0) => continue,
                slots => slots,
            },
            other => default_of(other),
        };
        let slots = slots.ok_or_else(|| {
            GatewayError::Template(format!("{function}: ReservedConcurrentExecutions is not a number: {value:?}"))
        })?;
        reserved.insert(function.to_owned(), usize::try_from(slots).unwrap_or(usize::MAX));
    }
    Ok(reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_at_its_reserved_concurrency_is_throttled_until_a_slot_frees() {
        let template = crate::Template::of_project().unwrap();
        assert_eq!(template.reserved.get("ExportWorkerFunction"), Some(&5), "{:?}", template.reserved);
        let concurrency = Concurrency::default();
        concurrency.reserve(&HashMap::from([("F".to_owned(), 2)]));
        let (first, second) = (concurrency.admit("F").unwrap(), concurrency.admit("F").unwrap());
        assert!(first.is_some() && second.is_some());
        assert!(matches!(concurrency.admit("F"), Err(GatewayError::Throttled(_))));
        assert_eq!(concurrency.throttled("F"), 1);
        drop(first);
        assert!(concurrency.admit("F").unwrap().is_some(), "a finished invocation frees its slot");
        assert!(concurrency.admit("Unreserved").unwrap().is_none());
    }
}
