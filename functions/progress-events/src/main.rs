//! Consumer of `platform.training` `challenge.completed` and `scenario.completed`: marks the item done on every active assignment of the learner that tracks it, with the counters in the same transaction.
//!
//! [`events::Consumer`] parses the event and runs its use case (`service`); this binary is the Lambda the
//! template's rule invokes. The local gateway runs the same [`events::entry::CONSUME`].

fn main() -> Result<(), events::entry::Error> {
    events::entry::run(events::entry::CONSUME)
}
