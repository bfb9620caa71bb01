//! Lambda entry point: see [`api::entry`].

fn main() -> Result<(), api::entry::Error> {
    api::entry::run(sarif_fn::HANDLER)
}
