//! The read-only `Inspector` next to a live owner.

#[path = "../common/mod.rs"]
mod common;

mod live;
