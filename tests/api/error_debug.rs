//! `fn main() -> logbus::Result<()>` reports an error with `Debug`: for
//! `logbus::Error` that starts with the `Display` message (what happened and
//! what to do), then the variant and its fields for tests and logs.

use logbus::{Broker, Error, Record, TopicConfig};

fn assert_debug_shows_display_then_fields(err: &Error, variant: &str, field: &str) {
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(
        debug.starts_with(&display),
        "Debug must start with Display:\n{debug}\n---\n{display}"
    );
    let rest = &debug[display.len()..];
    assert!(rest.starts_with('\n'), "fields on their own line: {debug:?}");
    assert!(
        rest.trim_start().starts_with(variant),
        "variant {variant} after the message: {debug}"
    );
    assert!(rest.contains(field), "field {field} in {debug}");
}

#[test]
fn debug_of_an_error_contains_its_display_message_and_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("orders", TopicConfig::new(2)).unwrap();

    let unknown = broker.producer().send("nope", Record::new("x")).unwrap_err();
    assert_debug_shows_display_then_fields(&unknown, "UnknownTopic {", "topic: \"nope\"");
    assert!(format!("{unknown:?}").contains("create it first"), "{unknown:?}");

    let partition = broker
        .producer()
        .send("orders", Record::new("x").with_partition(7))
        .unwrap_err();
    assert_debug_shows_display_then_fields(&partition, "UnknownPartition {", "partition_count: 2");

    let config = broker.create_topic("zero", TopicConfig::new(0)).unwrap_err();
    assert_debug_shows_display_then_fields(&config, "InvalidConfig {", "field: ");

    let locked = Broker::open(dir.path()).unwrap_err();
    assert_debug_shows_display_then_fields(&locked, "Locked {", "pid: ");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let io = Broker::open(&file).unwrap_err();
    assert_debug_shows_display_then_fields(&io, "Io {", "source: ");

    broker.clone().close().unwrap();
    let closed = broker.topic("orders").unwrap_err();
    assert_eq!(format!("{closed:?}"), format!("{closed}\nClosed"));
}

/// What `fn main() -> logbus::Result<()>` prints on `Err` is `Error: {err:?}`.
#[test]
fn a_main_returning_the_error_would_print_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let run = || -> logbus::Result<()> {
        broker.topic("orders")?;
        Ok(())
    };
    let printed = format!("Error: {:?}", run().unwrap_err());
    assert!(
        printed.starts_with("Error: unknown topic 'orders'; create it first with Broker::create_topic"),
        "{printed}"
    );
}
