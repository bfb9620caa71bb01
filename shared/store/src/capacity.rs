//! Consumed capacity, counted across requests when a test or benchmark asks for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::ConsumedCapacity;

/// Consumed capacity added up across requests, in hundredths of a unit.
#[derive(Debug, Clone, Default)]
pub struct Capacity {
    read_centi: Arc<AtomicU64>,
    write_centi: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl Capacity {
    pub fn reads(&self) -> f64 {
        self.read_centi.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn writes(&self) -> f64 {
        self.write_centi.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.read_centi.store(0, Ordering::Relaxed);
        self.write_centi.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
    }

    pub(crate) fn record<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        for c in consumed {
            let reads = c.read_capacity_units().unwrap_or(0.0);
            let writes = c.write_capacity_units().unwrap_or(0.0);
            // Tables in on-demand mode report only CapacityUnits; attribute them by operation kind.
            let total = c.capacity_units().unwrap_or(0.0);
            let (reads, writes) = if reads == 0.0 && writes == 0.0 { (total, 0.0) } else { (reads, writes) };
            self.read_centi.fetch_add((reads * 100.0).round() as u64, Ordering::Relaxed);
            self.write_centi.fetch_add((writes * 100.0).round() as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_writes<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        for c in consumed {
            let writes = c.write_capacity_units().or(c.capacity_units()).unwrap_or(0.0);
            self.write_centi.fetch_add((writes * 100.0).round() as u64, Ordering::Relaxed);
        }
    }
}
