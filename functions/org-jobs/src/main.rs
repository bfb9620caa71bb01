//! Lambda entry point: see [`events::entry`].

fn main() -> Result<(), events::entry::Error> {
    events::entry::run(org_jobs_fn::HANDLER)
}
