//! The storage engine: segment layout, checkpoints, retention, indexes,
//! recovery from crashes and damage, and a model-based test.

#[path = "../common/mod.rs"]
mod common;

mod checkpoint;
mod compat;
mod corruption;
mod crash;
mod index_rebuild;
mod layout;
mod model;
mod retention;
mod tail_damage;
