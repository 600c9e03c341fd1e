//! `security.protocol=SSL` for real: records cross a TLS connection to the
//! broker intact, a consumer group works over it, a client that does not trust the broker's certificate fails
//! in seconds saying so, mutual TLS works with a client certificate and says
//! what is missing without one, and the librdkafka built into logbus has TLS
//! and SASL PLAIN/SCRAM at all.

use std::path::Path;
use std::time::{Duration, Instant};

use logbus::kafka::{Admin, AdminBuilder, Consumer, ConsumerBuilder, Producer, ProducerBuilder};
use logbus::{Error, OffsetReset, Record, TopicPartition};

use crate::support::poll_n;
use crate::tls_terminator::{TestCa, TlsBroker};

/// librdkafka retries a refused handshake until this runs out, so each
/// failing `build()` takes about this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `ssl.ca.location` as librdkafka takes it.
fn ca_location(pem: &Path) -> &str {
    pem.to_str().unwrap()
}

/// An admin client trusting the broker's CA.
fn tls_admin(tls: &TlsBroker) -> AdminBuilder {
    Admin::builder(tls.bootstrap())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca_location(tls.ca_pem()))
}

/// A producer trusting the broker's CA, with a short delivery timeout.
fn tls_producer(tls: &TlsBroker) -> ProducerBuilder {
    Producer::builder(tls.bootstrap())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca_location(tls.ca_pem()))
        .delivery_timeout(Duration::from_secs(20))
}

/// A consumer trusting the broker's CA, reading from the earliest offset.
fn tls_consumer(tls: &TlsBroker) -> ConsumerBuilder {
    Consumer::builder(tls.bootstrap())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca_location(tls.ca_pem()))
        .offset_reset(OffsetReset::Earliest)
        .request_timeout(Duration::from_secs(10))
}

#[test]
fn a_producer_and_an_assigned_consumer_over_tls_carry_100_records_intact() {
    let tls = TlsBroker::start();
    let admin = tls_admin(&tls).build().unwrap();
    admin.create_topic("secure", 1).unwrap();

    let producer = tls_producer(&tls).build().unwrap();
    let sent: Vec<Record> = (0..100)
        .map(|i| {
            Record::new(format!("secret #{i}"))
                .with_key(format!("k{i}"))
                .with_header("n", i.to_string())
                .with_partition(0)
        })
        .collect();
    let mds = producer.send_batch("secure", sent.clone()).unwrap();
    let offsets: Vec<u64> = mds.iter().map(|m| m.offset()).collect();
    assert_eq!(offsets, (0..100).collect::<Vec<u64>>());

    let mut consumer = tls_consumer(&tls).build().unwrap();
    consumer.assign(&[TopicPartition::new("secure", 0)]).unwrap();
    let got = poll_n(&mut consumer, 100);
    for (i, (r, s)) in got.iter().zip(&sent).enumerate() {
        assert_eq!((r.topic(), r.partition(), r.offset()), ("secure", 0, i as u64));
        assert_eq!(r.key(), s.key(), "key of record {i}");
        assert_eq!(r.value(), s.value(), "value of record {i}");
        assert_eq!(
            r.headers().collect::<Vec<_>>(),
            s.headers().collect::<Vec<_>>(),
            "headers of record {i}"
        );
    }

    // Every byte went through the terminator's TLS: admin, producer and
    // consumer each completed at least one handshake, none was refused.
    let t = tls.terminator();
    assert!(t.handshakes() >= 3, "{} TLS handshakes", t.handshakes());
    assert_eq!(t.refused(), Vec::<String>::new(), "refused TLS handshakes");
}

#[test]
fn a_client_that_does_not_trust_the_certificate_fails_build_naming_the_broker_and_tls() {
    let tls = TlsBroker::start();
    let other = TestCa::new("some other CA");
    let cases = [("no CA", None), ("another CA", Some(ca_location(other.ca_pem())))];
    for (case, ca) in cases {
        let t = Instant::now();
        let mut p = Producer::builder(tls.bootstrap())
            .set("security.protocol", "SSL")
            .connect_timeout(Some(CONNECT_TIMEOUT));
        let mut c = Consumer::builder(tls.bootstrap())
            .set("security.protocol", "SSL")
            .connect_timeout(Some(CONNECT_TIMEOUT));
        let mut a = Admin::builder(tls.bootstrap())
            .set("security.protocol", "SSL")
            .connect_timeout(Some(CONNECT_TIMEOUT));
        if let Some(ca) = ca {
            p = p.set("ssl.ca.location", ca);
            c = c.set("ssl.ca.location", ca);
            a = a.set("ssl.ca.location", ca);
        }
        let errors = [p.build().unwrap_err(), c.build().unwrap_err(), a.build().unwrap_err()];
        for e in errors {
            assert!(matches!(e, Error::Kafka { .. }), "{case}: {e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(&tls.bootstrap()),
                "{case}: the message should name the broker: {msg}"
            );
            assert!(
                msg.contains("TLS") && msg.contains("certificate"),
                "{case}: the message should say it is a TLS certificate problem: {msg}"
            );
            assert!(
                msg.contains("ssl.ca.location"),
                "{case}: the message should say what to set: {msg}"
            );
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{case}: took {:?}", t.elapsed());
    }
    // The terminator saw the clients refuse its certificate (librdkafka
    // retries, so there are more refusals than clients).
    let refused = tls.terminator().refused();
    assert!(
        refused.len() >= 6 && refused.iter().any(|r| r.contains("unknown ca")),
        "{} refused TLS handshakes, the first: {:?}",
        refused.len(),
        refused.first()
    );
    let t = tls.terminator();
    assert_eq!(
        t.handshakes(),
        0,
        "a client completed a handshake without trusting the CA"
    );
}

/// A consumer group over TLS: the group coordinator is reached through the
/// same TLS listener, a member that subscribes gets every partition, reads
/// what was sent and commits it.
#[test]
fn a_group_member_over_tls_subscribes_reads_and_commits() {
    let tls = TlsBroker::start();
    let admin = tls_admin(&tls).build().unwrap();
    admin.create_topic("secure-group", 2).unwrap();
    let producer = tls_producer(&tls).build().unwrap();
    let records = (0..10).map(|i| Record::new(format!("g{i}")).with_partition(i % 2));
    producer.send_batch("secure-group", records).unwrap();

    let mut member = tls_consumer(&tls)
        // tansu holds a join for about the session timeout.
        .set("session.timeout.ms", "6000")
        .group("secure-billing")
        .build()
        .unwrap();
    member.subscribe(&["secure-group"]).unwrap();
    let got = poll_n(&mut member, 10);
    let mut values: Vec<&[u8]> = got.iter().map(|r| r.value()).collect();
    values.sort();
    let expected: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
    let mut expected: Vec<&[u8]> = expected.iter().map(|v| v.as_bytes()).collect();
    expected.sort();
    assert_eq!(values, expected);
    let tps = [
        TopicPartition::new("secure-group", 0),
        TopicPartition::new("secure-group", 1),
    ];
    assert_eq!(
        member.assignment().unwrap(),
        tps.to_vec(),
        "one member owns every partition"
    );
    member.commit().unwrap();
    assert_eq!(member.committed(&tps[0]).unwrap(), Some(5));
    assert_eq!(member.committed(&tps[1]).unwrap(), Some(5));
    member.close().unwrap();
    assert_eq!(
        tls.terminator().refused(),
        Vec::<String>::new(),
        "refused TLS handshakes"
    );
}

/// Mutual TLS (the cluster authenticates clients by certificate, as MSK's
/// "TLS client authentication"): with `ssl.certificate.location` and
/// `ssl.key.location` records go through; without a client certificate
/// `build()` fails within seconds saying which settings to give.
#[test]
fn mutual_tls_carries_records_with_a_client_certificate_and_refuses_a_client_without_one() {
    let tls = TlsBroker::start_mutual();
    let (cert, key) = tls.ca().client_identity("orders-service");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let admin = tls_admin(&tls)
        .set("ssl.certificate.location", cert)
        .set("ssl.key.location", key)
        .build()
        .unwrap();
    admin.create_topic("mtls", 1).unwrap();
    let producer = tls_producer(&tls)
        .set("ssl.certificate.location", cert)
        .set("ssl.key.location", key)
        .build()
        .unwrap();
    let sent: Vec<Record> = (0..20)
        .map(|i| Record::new(format!("for the billing team #{i}")).with_partition(0))
        .collect();
    producer.send_batch("mtls", sent.clone()).unwrap();
    let mut consumer = tls_consumer(&tls)
        .set("ssl.certificate.location", cert)
        .set("ssl.key.location", key)
        .build()
        .unwrap();
    consumer.assign(&[TopicPartition::new("mtls", 0)]).unwrap();
    let got = poll_n(&mut consumer, 20);
    let values: Vec<&[u8]> = got.iter().map(|r| r.value()).collect();
    let expected: Vec<&[u8]> = sent.iter().map(|r| r.value()).collect();
    assert_eq!(values, expected);
    let t = tls.terminator();
    assert!(t.handshakes() >= 3, "{} TLS handshakes", t.handshakes());
    assert_eq!(t.refused(), Vec::<String>::new(), "refused TLS handshakes");

    // A missing client certificate stays missing: build() gives up at the
    // first refusal rather than retrying for its minute.
    let started = Instant::now();
    let e = tls_producer(&tls)
        .connect_timeout(Some(Duration::from_secs(60)))
        .build()
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    assert!(
        msg.contains(&tls.bootstrap()),
        "the message should name the broker: {msg}"
    );
    assert!(
        msg.contains("TLS") && msg.contains("ssl.certificate.location") && msg.contains("ssl.key.location"),
        "the message should say a client certificate may be what is missing: {msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let refused = tls.terminator().refused();
    assert!(
        refused.iter().any(|r| r.contains("certificate")),
        "the terminator should have refused a client without a certificate: {refused:?}"
    );
}

#[test]
fn the_vendored_librdkafka_has_tls_and_sasl_plain_and_scram_builtin() {
    let conf = rdkafka::ClientConfig::new().create_native_config().unwrap();
    let features = conf.get("builtin.features").unwrap();
    let list: Vec<&str> = features.split(',').collect();
    for f in ["ssl", "sasl_plain", "sasl_scram"] {
        assert!(list.contains(&f), "{f} is missing from builtin.features = {features}");
    }
}
