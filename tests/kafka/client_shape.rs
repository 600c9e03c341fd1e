//! One generic function (the `same_code_kafka` example's) gives the same
//! results against a local directory and a Kafka cluster.

#[path = "../../examples/same_code_kafka.rs"]
#[allow(dead_code)]
mod example;

use crate::broker::Tansu;

#[test]
fn the_generic_example_gives_the_same_results_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let local = example::run_local(dir.path()).unwrap();
    assert_eq!(local.records.len(), 5);
    assert_eq!(local.committed_after, Some(5));
    assert_eq!(local.replayed, b"order #2");

    let broker = Tansu::start();
    let remote = example::run_kafka(&broker.bootstrap()).unwrap();
    assert_eq!(remote, local);
}

#[test]
fn a_boxed_sink_picks_its_backend_at_run_time() {
    use logbus::{Record, RecordSink};
    let broker = Tansu::start();
    crate::support::create_topic(&broker, "boxed", 1);
    let dir = tempfile::tempdir().unwrap();
    let local = logbus::Broker::open(dir.path()).unwrap();
    local.create_topic("boxed", logbus::TopicConfig::new(1)).unwrap();
    let sinks: Vec<Box<dyn RecordSink>> = vec![Box::new(local.producer()), Box::new(crate::support::producer(&broker))];
    for sink in &sinks {
        let md = sink.send("boxed", Record::new("x")).unwrap();
        assert_eq!((md.topic(), md.partition(), md.offset()), ("boxed", 0, 0));
        sink.flush().unwrap();
    }
}
