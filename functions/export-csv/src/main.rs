//! Lambda entry point: see [`api::entry`].

fn main() -> Result<(), api::entry::Error> {
    api::entry::run(export_csv_fn::HANDLER)
}
