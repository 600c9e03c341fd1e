//! TLS is compiled in (OpenSSL, vendored): SSL and SASL_SSL clients build,
//! and a TLS client talking to a plaintext listener gets a clear error.
//! tansu 0.6.0's TLS listener cannot be enabled from its command line
//! (`--cert` and `--key` are mutually exclusive), so no handshake succeeds here.

use std::time::{Duration, Instant};

use logbus::kafka::{Consumer, Producer};
use logbus::Error;

use crate::broker::Tansu;

#[test]
fn ssl_and_sasl_ssl_clients_build() {
    // librdkafka refuses security.protocol=SSL at configuration time when
    // built without OpenSSL; these builds contact no broker.
    Producer::builder("127.0.0.1:9")
        .set("security.protocol", "SSL")
        .connect_timeout(None)
        .build()
        .unwrap();
    Consumer::builder("127.0.0.1:9")
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "user")
        .set("sasl.password", "secret")
        .connect_timeout(None)
        .build()
        .unwrap();
}

#[test]
fn a_tls_client_on_a_plaintext_listener_fails_with_a_clear_error() {
    let broker = Tansu::start();
    let t = Instant::now();
    let e = Producer::builder(broker.bootstrap())
        .set("security.protocol", "SSL")
        .connect_timeout(Some(Duration::from_secs(3)))
        .build()
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&broker.bootstrap()) && msg.contains("security.protocol"),
        "{msg}"
    );
}

#[test]
fn an_unknown_setting_is_refused_at_build() {
    let e = Producer::builder("127.0.0.1:9")
        .set("no.such.setting", "1")
        .connect_timeout(None)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    assert!(e.to_string().contains("no.such.setting"), "{e}");
}
