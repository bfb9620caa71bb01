//! Lambda entry point: see [`events::entry`].

fn main() -> Result<(), events::entry::Error> {
    events::entry::run(sarif_worker_fn::HANDLER)
}
