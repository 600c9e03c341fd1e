//! Sequential reads from a cursor.

#[path = "../common/mod.rs"]
mod common;

mod cursor;
