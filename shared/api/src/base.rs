//! Where the API is served: every route's path starts with [`BASE_PATH`] (the problems' links, a
//! created resource's `Location` and a list's `Link` name routes under it). At the bottom of the
//! crate: it names nothing else.

pub const BASE_PATH: &str = "/api/public/v1";
