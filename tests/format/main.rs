//! The on-disk decoders, fuzzed with proptest.

#[path = "../common/mod.rs"]
mod common;

mod fuzz;
