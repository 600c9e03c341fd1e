//! The storage engine: segment layout, checkpoints, retention, indexes,
//! recovery from crashes and damage, damage under every read path, and a
//! model-based test.

#[path = "../common/mod.rs"]
mod common;

mod checkpoint;
mod compaction;
mod compaction_model;
mod compat;
mod corruption;
mod crash;
mod damage_read_paths;
mod index_rebuild;
mod layout;
mod model;
mod partition_files;
mod retention;
mod tail_damage;
