//! Settings every Kafka client shares: the bootstrap address, raw librdkafka
//! settings, and the reachability check at build time.

use std::time::Duration;

use rdkafka::client::Client;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use super::context::Context;
use super::error::kafka_error;
use crate::error::{Error, Result};

/// Default bound on the reachability check of `build()`.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// port or a TLS mismatch fails `build()` within `connect_timeout`
    /// instead of every later call.
    pub(crate) fn check_reachable(&self, client: &Client<Context>) -> Result<()> {
        let Some(timeout) = self.connect_timeout else {
            return Ok(());
        };
        match client.fetch_metadata(None, timeout) {
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
