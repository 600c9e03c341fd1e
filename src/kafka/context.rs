//! The librdkafka client context shared by producers, consumers and admins:
//! it remembers the client's last asynchronous error for error messages and
//! notes rebalances for the consumer.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

/// Client callbacks: no logging to the `log` crate (errors reach the caller
/// through `Error::Kafka` instead), the last error kept for context.
#[derive(Debug, Default)]
pub(crate) struct Context {
    last_error: Mutex<Option<String>>,
    rebalanced: AtomicBool,
}

impl Context {
    /// The client's most recent asynchronous error, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// True once after each rebalance.
    pub(crate) fn take_rebalanced(&self) -> bool {
        self.rebalanced.swap(false, Ordering::AcqRel)
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // Failures such as a refused TLS handshake arrive as log lines before
        // (or instead of) an error event: keep the latest for error messages.
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            *self.last_error.lock() = Some(format!("{fac}: {log_message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        *self.last_error.lock() = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.rebalanced.store(true, Ordering::Release);
    }
}
