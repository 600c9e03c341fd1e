//! `Producer::send_async`: the append happens in the call, the future waits
//! for durability; many pending sends under `Sync` all resolve.

use std::collections::BTreeMap;
use std::sync::Arc;

use logbus::{Broker, BrokerConfig, Durability, Record, TopicConfig};

use crate::RUNTIMES;

fn sync_broker(dir: &std::path::Path) -> Broker {
    Broker::open_with(dir, BrokerConfig::default().durability(Durability::Sync)).unwrap()
}

#[test]
fn thousands_of_sends_in_flight_under_sync_all_resolve_and_survive_a_reopen() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker.create_topic("t", TopicConfig::new(3)).unwrap();
        let producer = broker.producer();
        let n = 3000usize;
        let metas = rt.block_on(async {
            // Every send is in flight at once, each awaited by a task of its own.
            let tasks: Vec<_> = (0..n)
                .map(|i| rt.spawn(producer.send_async("t", Record::new(format!("v{i}")).with_key(format!("k{i}")))))
                .collect();
            let mut metas = Vec::with_capacity(n);
            for t in tasks {
                metas.push(rt.within("a send_async to resolve", t).await.unwrap());
            }
            metas
        });
        // Per partition, the offsets are dense: nothing lost, nothing doubled.
        let mut per: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for m in &metas {
            per.entry(m.partition()).or_default().push(m.offset());
        }
        for offsets in per.values_mut() {
            offsets.sort_unstable();
            assert_eq!(*offsets, (0..offsets.len() as u64).collect::<Vec<_>>(), "{rt:?}");
        }
        broker.close().unwrap();

        let broker = sync_broker(dir.path());
        let topic = broker.topic("t").unwrap();
        for (i, m) in metas.iter().enumerate() {
            let got = topic.partition(m.partition()).unwrap().read(m.offset(), 1).unwrap();
            assert_eq!(got[0].value(), format!("v{i}").as_bytes(), "{rt:?} record {i}");
            assert_eq!(got[0].key(), Some(format!("k{i}").as_bytes()), "{rt:?} record {i}");
        }
    }
}

#[test]
fn the_append_happens_in_the_call_so_offsets_follow_the_calls_not_the_awaits() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let producer = broker.producer();
        let sends: Vec<_> = (0..50)
            .map(|i| producer.send_async("t", Record::new(vec![i as u8])))
            .collect();
        // Written before any future is polled.
        assert_eq!(broker.topic("t").unwrap().partition(0).unwrap().end_offset(), 50);
        let offsets = rt.block_on(async {
            let mut offsets = Vec::new();
            for send in sends.into_iter().rev() {
                offsets.push(rt.within("a send", send).await.unwrap().offset());
            }
            offsets
        });
        assert_eq!(offsets, (0..50).rev().collect::<Vec<u64>>(), "{rt:?}");
        let values: Vec<u8> = broker
            .topic("t")
            .unwrap()
            .partition(0)
            .unwrap()
            .read(0, 100)
            .unwrap()
            .iter()
            .map(|r| r.value()[0])
            .collect();
        assert_eq!(values, (0..50).collect::<Vec<u8>>());
    }
}

#[test]
fn without_sync_a_send_resolves_at_its_first_poll() {
    for durability in [
        Durability::PageCache,
        Durability::Interval(std::time::Duration::from_secs(3600)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open_with(dir.path(), BrokerConfig::default().durability(durability)).unwrap();
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let send = broker.producer().send_async("t", Record::new("x"));
        let first = smol::block_on(smol::future::poll_once(send));
        let meta = first.expect("ready at the first poll: no fsync to wait for").unwrap();
        assert_eq!((meta.topic(), meta.partition(), meta.offset()), ("t", 0, 0));
    }
}

#[test]
fn sends_from_many_tasks_under_sync_each_see_their_own_offset() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let producer = Arc::new(broker.producer());
        let per_task = 200;
        let results = rt.block_on(async {
            let tasks: Vec<_> = (0..8u8)
                .map(|task| {
                    let producer = Arc::clone(&producer);
                    rt.spawn(async move {
                        let mut seen = Vec::new();
                        for i in 0..per_task {
                            let meta = producer
                                .send_async("t", Record::new(vec![task]).with_header("i", format!("{i}")))
                                .await
                                .unwrap();
                            seen.push(meta.offset());
                        }
                        seen
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.push(rt.within("a task's sends", t).await);
            }
            all
        });
        let partition = broker.topic("t").unwrap().partition(0).unwrap();
        for (task, offsets) in results.iter().enumerate() {
            assert!(
                offsets.windows(2).all(|w| w[0] < w[1]),
                "{rt:?}: one task's sends land in order"
            );
            for &o in offsets {
                assert_eq!(
                    partition.read(o, 1).unwrap()[0].value(),
                    [task as u8],
                    "{rt:?} offset {o}"
                );
            }
        }
        assert_eq!(partition.end_offset(), 8 * per_task as u64);
    }
}
