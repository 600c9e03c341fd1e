//! Topic administration and the client types' thread-safety.

use logbus::kafka::{self, Admin, RDKafkaErrorCode};

use crate::broker::Tansu;

#[test]
fn ensure_topic_creates_once_and_reports_the_existing_count() {
    let broker = Tansu::start();
    let admin = Admin::builder(broker.bootstrap()).build().unwrap();
    assert_eq!(admin.partition_count("ensured").unwrap(), None);
    assert_eq!(admin.ensure_topic("ensured", 4).unwrap(), 4);
    assert_eq!(
        admin.ensure_topic("ensured", 9).unwrap(),
        4,
        "an existing topic keeps its count"
    );
    let e = admin.create_topic("ensured", 4).unwrap_err();
    assert_eq!(kafka::error_code(&e), Some(RDKafkaErrorCode::TopicAlreadyExists), "{e}");
    assert!(admin.topics().unwrap().contains(&("ensured".to_string(), 4)));
}

#[test]
fn producers_are_clone_send_sync_and_consumers_send() {
    fn clone_send_sync<T: Clone + Send + Sync>() {}
    fn send<T: Send>() {}
    clone_send_sync::<kafka::Producer>();
    send::<kafka::Consumer>();
    send::<Admin>();
    clone_send_sync::<kafka::KafkaRecord>();
}
