//! A refused SASL login fails `build()` at once, with advice about the
//! credentials, for every client: producer, consumer, admin and ingest. tansu 0.6.0 as the tests run it (memory storage, no
//! `--authentication`) answers every SASL handshake "Unsupported SASL
//! mechanism", which librdkafka reports as an authentication failure, as it
//! does a wrong password (docs/KAFKA_SECURITY.md, "What is tested").

use std::time::{Duration, Instant};

use logbus::kafka::{Admin, Consumer, Ingest, Producer};
use logbus::{Broker, Error};

use crate::broker::Tansu;

/// Far longer than the refusal takes: a build that waited it out would
/// have retried a login that cannot succeed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

const SCRAM: [(&str, &str); 4] = [
    ("security.protocol", "SASL_PLAINTEXT"),
    ("sasl.mechanisms", "SCRAM-SHA-512"),
    ("sasl.username", "alice"),
    ("sasl.password", "secret"),
];

/// `e` is the refused login's error, found before `CONNECT_TIMEOUT / 2`.
fn assert_refused_login(what: &str, started: Instant, e: &Error, bootstrap: &str) {
    assert!(
        started.elapsed() < CONNECT_TIMEOUT / 2,
        "{what}: the refused login was retried for {:?}",
        started.elapsed()
    );
    assert!(matches!(e, Error::Kafka { .. }), "{what}: {e:?}");
    let msg = e.to_string();
    for part in [
        bootstrap,
        "Unsupported SASL mechanism",
        "refused the login",
        "sasl.password",
    ] {
        assert!(msg.contains(part), "{what}: no '{part}' in: {msg}");
    }
}

/// `builder` with the SCRAM settings, given through its own `set`.
fn with_scram<B>(builder: B, set: impl Fn(B, &'static str, &'static str) -> B) -> B {
    SCRAM.iter().fold(builder, |b, &(k, v)| set(b, k, v))
}

#[test]
fn a_refused_login_fails_build_at_once_with_advice_about_the_credentials() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();

    let t = Instant::now();
    let producer = Producer::builder(&bootstrap).connect_timeout(Some(CONNECT_TIMEOUT));
    let e = with_scram(producer, |b, k, v| b.set(k, v)).build().unwrap_err();
    assert_refused_login("producer", t, &e, &bootstrap);

    let t = Instant::now();
    let consumer = Consumer::builder(&bootstrap).connect_timeout(Some(CONNECT_TIMEOUT));
    let e = with_scram(consumer, |b, k, v| b.set(k, v)).build().unwrap_err();
    assert_refused_login("consumer", t, &e, &bootstrap);

    let t = Instant::now();
    let admin = Admin::builder(&bootstrap).connect_timeout(Some(CONNECT_TIMEOUT));
    let e = with_scram(admin, |b, k, v| b.set(k, v)).build().unwrap_err();
    assert_refused_login("admin", t, &e, &bootstrap);

    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    let t = Instant::now();
    let ingest = Ingest::builder(&bootstrap)
        .topic("orders")
        .connect_timeout(CONNECT_TIMEOUT);
    let e = with_scram(ingest, |b, k, v| b.set(k, v)).start(&local).unwrap_err();
    assert_refused_login("ingest", t, &e, &bootstrap);
    local.close().unwrap();
}
