//! Settings every Kafka client shares: the bootstrap address, raw librdkafka
//! settings, and the reachability check at build time.

use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaResult;
use rdkafka::metadata::Metadata;

use super::context::Context;
use super::error::{kafka_error, refused_for_good};
use crate::error::{Error, Result};

/// Default bound on the reachability check of `build()`.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a failed `build()` polls for the client's queued log and error events.
pub(crate) const EVENTS_WAIT: Duration = Duration::from_millis(100);

/// How long each metadata request of a reachability check waits before the
/// client's queued events are looked at (see [`first_metadata`]).
const CHECK_SLICE: Duration = Duration::from_millis(500);

/// Asks the cluster for its metadata for up to `timeout`, in requests of
/// `CHECK_SLICE`: after each one that fails, serves the client's queued
/// events (`serve_events`) and gives up at once when `last_error` then
/// reports a refused SASL login or TLS client certificate. librdkafka
/// retries until the timeout, but a wrong password, an unoffered mechanism
/// or a missing client certificate stays wrong: waiting out a 30 s
/// `connect_timeout` would only delay the same error.
pub(crate) fn first_metadata<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
    serve_events: impl Fn(),
    last_error: impl Fn() -> Option<String>,
) -> KafkaResult<Metadata> {
    let deadline = Instant::now() + timeout;
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).min(CHECK_SLICE);
        match client.fetch_metadata(None, slice) {
            Ok(md) => return Ok(md),
            Err(e) => {
                serve_events();
                if Instant::now() >= deadline || last_error().is_some_and(|l| refused_for_good(&l)) {
                    return Err(e);
                }
            }
        }
    }
}

/// Bootstrap servers, raw settings and the connect check of one client.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) bootstrap: String,
    pub(crate) raw: Vec<(String, String)>,
    pub(crate) connect_timeout: Option<Duration>,
}

impl Settings {
    pub(crate) fn new(bootstrap: impl Into<String>) -> Settings {
        Settings {
            bootstrap: bootstrap.into(),
            raw: Vec::new(),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
        }
    }

    pub(crate) fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.raw.push((key.into(), value.into()));
    }

    /// A librdkafka config: `defaults` first, then the caller's raw settings,
    /// which win.
    pub(crate) fn client_config(&self, defaults: &[(&str, String)]) -> Result<ClientConfig> {
        if self.bootstrap.trim().is_empty() {
            return Err(Error::InvalidConfig {
                field: "bootstrap.servers",
                value: self.bootstrap.clone(),
                reason: "give at least one HOST:PORT of the Kafka cluster".into(),
            });
        }
        let mut c = ClientConfig::new();
        // Warnings reach Context::log, which keeps the latest for error messages.
        c.set_log_level(RDKafkaLogLevel::Warning);
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in defaults {
            c.set(*k, v);
        }
        for (k, v) in &self.raw {
            c.set(k, v);
        }
        Ok(c)
    }

    /// Asks the cluster for its metadata, so that a wrong address, a closed
    /// port, a TLS mismatch or refused credentials fail `build()` (within
    /// `connect_timeout`; a refused login within a second) instead of every
    /// later call. `serve_events` polls the client: librdkafka queues its log
    /// and error events (such as the refused TLS handshake behind a timeout)
    /// until then, and the error quotes the latest of them.
    pub(crate) fn check_reachable(&self, client: &Client<Context>, serve_events: impl Fn()) -> Result<()> {
        let Some(timeout) = self.connect_timeout else {
            return Ok(());
        };
        match first_metadata(client, timeout, serve_events, || client.context().last_error()) {
            Ok(_) => Ok(()),
            Err(e) => Err(kafka_error(
                &format!("the first metadata request (connect_timeout {timeout:?})"),
                &self.bootstrap,
                e,
                client.context().last_error(),
            )),
        }
    }
}

/// Milliseconds for a librdkafka setting.
pub(crate) fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}
