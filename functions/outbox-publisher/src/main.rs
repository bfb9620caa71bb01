//! Lambda entry point: see [`events::entry`].

fn main() -> Result<(), events::entry::Error> {
    events::entry::run(outbox_publisher_fn::HANDLER)
}
