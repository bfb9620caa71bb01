//! No code: see this crate's `Cargo.toml` for why every function depends on it.
