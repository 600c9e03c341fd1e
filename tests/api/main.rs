//! The public API, one promise per module: producing, consuming, topics,
//! errors, typed records and the shape of the surface.

#[path = "../common/mod.rs"]
mod common;

mod consumer;
mod consumer_poll_with;
mod durability_docs;
mod error_debug;
mod errors;
mod lent_read_returns;
mod producer;
mod producer_borrowed;
mod producer_routes;
mod properties;
mod read_with;
mod readme_typed;
mod surface;
mod topics;
mod typed;
mod typed_more;
