//! `kafka::Admin`: the few cluster operations a bridge needs (create a
//! topic, count its partitions), blocking like the rest of logbus.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer as _};

use super::context::Context;
use super::error::kafka_error;
use super::settings::{Settings, EVENTS_WAIT};
use crate::error::Result;

/// Builds an [`Admin`]. Setters consume and return the builder.
#[derive(Debug, Clone)]
#[must_use]
pub struct AdminBuilder {
    settings: Settings,
    request_timeout: Duration,
}

impl AdminBuilder {
    /// Sets a raw librdkafka setting (`security.protocol`, `sasl.mechanism`...).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> AdminBuilder {
        self.settings.set(key, value);
        self
    }

    /// Bound on each request to the cluster. Default = 30 s.
    pub fn request_timeout(mut self, d: Duration) -> AdminBuilder {
        self.request_timeout = d;
        self
    }

    /// `build()` asks the cluster for its metadata and fails if no answer
    /// comes within this time; `None` builds without contacting the cluster.
    /// Default = 30 s.
    pub fn connect_timeout(mut self, d: Option<Duration>) -> AdminBuilder {
        self.settings.connect_timeout = d;
        self
    }

    /// Creates the admin client.
    pub fn build(self) -> Result<Admin> {
        let config = self.settings.client_config(&[])?;
        let inner = AdminClient::from_config_and_context(&config, Context::default())
            .map_err(|e| kafka_error("creating an admin client", &self.settings.bootstrap, e, None))?;
        // The reachability check runs on a short-lived producer with the same
        // settings: an admin client has no public poll, so a check on its own
        // connection could not read the queued TLS or login failure behind a
        // timeout, nor end early on a refused login.
        let probe: BaseProducer<Context> = BaseProducer::from_config_and_context(&config, Context::default())
            .map_err(|e| kafka_error("creating an admin client", &self.settings.bootstrap, e, None))?;
        self.settings
            .check_reachable(probe.client(), || probe.poll(EVENTS_WAIT))?;
        drop(probe);
        Ok(Admin {
            inner,
            bootstrap: self.settings.bootstrap,
            request_timeout: self.request_timeout,
        })
    }
}

/// Topic administration on a Kafka cluster.
pub struct Admin {
    inner: AdminClient<Context>,
    bootstrap: String,
    request_timeout: Duration,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("kafka::Admin")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl Admin {
    /// A builder for an admin client of the cluster at `bootstrap_servers`.
    pub fn builder(bootstrap_servers: impl Into<String>) -> AdminBuilder {
        AdminBuilder {
            settings: Settings::new(bootstrap_servers),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Creates a topic with the cluster's default replication factor.
    /// An existing topic is an error whose code is `TopicAlreadyExists`.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        self.create_topic_with(name, partitions, -1, &[])
    }

    /// Creates a topic with a replication factor (-1: the cluster's default)
    /// and topic settings (`("cleanup.policy", "compact")`...).
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: u32,
        replication: i32,
        config: &[(&str, &str)],
    ) -> Result<()> {
        let what = format!("creating topic '{name}' with {partitions} partitions");
        let mut topic = NewTopic::new(
            name,
            i32::try_from(partitions).unwrap_or(i32::MAX),
            TopicReplication::Fixed(replication),
        );
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().request_timeout(Some(self.request_timeout));
        let results = block_on(self.inner.create_topics([&topic], &opts)).map_err(|e| self.err(&what, e))?;
        for r in results {
            if let Err((_, code)) = r {
                return Err(self.err(&what, KafkaError::AdminOp(code)));
            }
        }
        Ok(())
    }

    /// Creates the topic with `partitions` partitions unless it exists, and
    /// returns its partition count (the existing count if it existed, which
    /// may differ from `partitions`). Safe against a concurrent creation.
    pub fn ensure_topic(&self, name: &str, partitions: u32) -> Result<u32> {
        if let Some(n) = self.partition_count(name)? {
            return Ok(n);
        }
        match self.create_topic(name, partitions) {
            Ok(()) => Ok(partitions),
            Err(e) if super::error_code(&e) == Some(RDKafkaErrorCode::TopicAlreadyExists) => {
                Ok(self.partition_count(name)?.unwrap_or(partitions))
            }
            Err(e) => Err(e),
        }
    }

    /// The topic's partition count, `None` when the cluster has no such topic.
    /// Reads the whole cluster's metadata, so asking never auto-creates the topic.
    pub fn partition_count(&self, topic: &str) -> Result<Option<u32>> {
        Ok(self
            .topics()?
            .into_iter()
            .find(|(name, _)| name == topic)
            .map(|(_, n)| n))
    }

    /// Every topic of the cluster with its partition count, sorted by name.
    pub fn topics(&self) -> Result<Vec<(String, u32)>> {
        let md = self
            .inner
            .inner()
            .fetch_metadata(None, self.request_timeout)
            .map_err(|e| self.err("reading the cluster's metadata", e))?;
        let mut out: Vec<(String, u32)> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as u32))
            .collect();
        out.sort();
        Ok(out)
    }

    fn err(&self, what: &str, e: KafkaError) -> crate::Error {
        kafka_error(what, &self.bootstrap, e, self.inner.inner().context().last_error())
    }
}

/// Runs a future to completion on this thread. rdkafka's admin futures are
/// completed by its own polling thread, so parking until woken is enough;
/// no async runtime is needed.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}
