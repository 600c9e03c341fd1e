//! logbus's Kafka client (`logbus::kafka`, cargo feature `kafka`) against a
//! real Kafka-compatible broker, tansu, started per test (see `broker.rs`).

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod broker;
mod client_shape;
mod errors;
mod groups;
mod ingest;
#[cfg(feature = "cli")]
mod ingest_cli;
mod mirror;
mod placement;
mod positions;
mod round_trip;
mod sasl;
mod support;
mod tansu;
mod tls;
mod tls_handshake;
mod tls_terminator;
