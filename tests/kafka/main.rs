//! logbus's Kafka client (`logbus::kafka`, cargo feature `kafka`) against a
//! real Kafka-compatible broker, tansu, started per test (see `broker.rs`).

mod broker;
mod client_shape;
mod errors;
mod groups;
mod mirror;
mod placement;
mod positions;
mod round_trip;
mod support;
mod tansu;
