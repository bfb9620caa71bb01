//! Lambda entry point: see [`api::entry`].

fn main() -> Result<(), api::entry::Error> {
    api::entry::run(webhook_endpoints_fn::HANDLER)
}
