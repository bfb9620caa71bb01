//! Lambda entry point: see [`api::entry`].

fn main() -> Result<(), api::entry::Error> {
    api::entry::run(detail_fn::HANDLER)
}
