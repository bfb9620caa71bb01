//! Lambda entry point: see [`events::entry`].

fn main() -> Result<(), events::entry::Error> {
    events::entry::run(webhook_dispatcher_fn::HANDLER)
}
