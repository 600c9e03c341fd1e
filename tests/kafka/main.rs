//! logbus's Kafka client (`logbus::kafka`, cargo feature `kafka`) against a
//! real Kafka-compatible broker, tansu, started per test (see `broker.rs`).

mod broker;
mod tansu;
