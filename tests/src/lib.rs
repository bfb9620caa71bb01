//! What the tests share, so each test file holds only its scenarios:
//!
//! - [`stack`]: clients of the local stack (DynamoDB Local, moto) that `infra/test.sh` starts, the
//!   consumers' context, a fresh org id per test (tests run in parallel on one table);
//! - [`fixtures`]: assignments, audit entries and rosters built without the API;
//! - [`e2e`]: the local gateway on loopback and a request builder to drive it as a client would;
//! - [`scanners`], [`spreadsheet`]: the real tools whose output the service reads (code scanners' SARIF)
//!   or that read what it writes (LibreOffice Calc opening the CSV exports);
//! - [`load`]: the load-and-fault run (the bench's, and its short version among the tests);
//! - [`webhooks`]: webhook receivers on loopback, and the reference library that verifies what they got;
//! - [`shuffled`]: a deterministic shuffle for order-independence tests.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

pub mod e2e;
pub mod fixtures;
pub mod load;
pub mod scanners;
pub mod spreadsheet;
pub mod stack;
pub mod webhooks;

/// A small deterministic generator (an LCG) for property tests: the same seed gives the same run, so
/// a failing sequence can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize % n
    }
}

/// A deterministic shuffle (Fisher–Yates driven by a small LCG): the same `seed` gives the same order,
/// so a failing replay can be run again.
pub fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    let mut state = seed;
    for i in (1..out.len()).rev() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        out.swap(i, (state >> 33) as usize % (i + 1));
    }
    out
}
