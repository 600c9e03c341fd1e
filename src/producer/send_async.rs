//! `Producer::send_async` (feature `async`): append now, await durability.

use std::future::Future;

use super::Producer;
use crate::error::{Error, Result};
use crate::record::{Record, RecordMetadata};

impl Producer {
    /// Appends one record now and returns a future that resolves once it is
    /// as durable as the broker's [`Durability`](crate::Durability) promises:
    /// at once under `PageCache` and `Interval`, after the fsync that covers
    /// it under `Sync`. No runtime is needed and no thread waits per send:
    /// every pending send on a partition waits for the same group-commit
    /// round, so a thousand sends in flight share one `fdatasync`.
    ///
    /// The append happens in this call, before the future is polled: records
    /// sent one after the other land in that order, and a consumer may read
    /// a record before its future resolves (as with [`send`](Self::send)).
    /// Errors that [`send`](Self::send) reports before writing (an unknown
    /// topic or partition, a record too large, a closed broker) come from the
    /// future at its first poll, and nothing is written. Dropping the future
    /// does not undo the append; it only stops waiting.
    ///
    /// ```
    /// # fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use logbus::{Broker, BrokerConfig, Durability, Record, TopicConfig};
    /// let broker = Broker::open_with(dir.path(), BrokerConfig::default().durability(Durability::Sync))?;
    /// broker.create_topic("orders", TopicConfig::new(1))?;
    /// let producer = broker.producer();
    /// let sends: Vec<_> = (0..100).map(|i| producer.send_async("orders", Record::new(format!("order {i}")))).collect();
    /// // With any executor: `for send in sends { send.await?; }`
    /// # for send in sends { smol::block_on(send)?; }
    /// # Ok(()) }
    /// ```
    pub fn send_async(
        &self,
        topic: &str,
        record: Record,
    ) -> impl Future<Output = Result<RecordMetadata>> + Send + 'static {
        let started = self.send_one_with(topic, &record, |log, r| {
            log.append_deferred(std::slice::from_ref(r), self.compression)
        });
        let producer = self.clone();
        let topic = topic.to_string();
        async move {
            let (meta, durable) = started?;
            match durable.await {
                Ok(()) => Ok(meta),
                // The log was closed under the wait: by the topic's deletion
                // unless the broker itself closed.
                Err(Error::Closed) if !producer.broker.is_closed() => Err(Error::UnknownTopic { topic }),
                Err(e) => Err(e),
            }
        }
    }
}
