//! From outside: a mirrored record read by a client nobody here wrote,
//! Confluent's Python client (`confluent-kafka` from PyPI, installed on first
//! use into `<target dir>/confluent-kafka`).

use std::fs::{self, File};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

use logbus::kafka::Mirror;
use logbus::{Record, TopicConfig};

use super::{local, wait_mirrored};
use crate::broker::{tansu_dir, Tansu};

const PIP_PACKAGE: &str = "confluent-kafka==2.16.1";

/// `<target dir>/confluent-kafka`, with the package installed (pip under a
/// file lock into a staging directory, then renamed into place).
fn confluent_kafka() -> PathBuf {
    let root = tansu_dir().parent().unwrap().join("confluent-kafka");
    let site = root.join("site");
    if site.join("confluent_kafka").is_dir() {
        return site;
    }
    fs::create_dir_all(&root).unwrap();
    let lock = File::create(root.join("install.lock")).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: flock(2) on a descriptor this function owns while it runs.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    if site.join("confluent_kafka").is_dir() {
        return site;
    }
    let staging = root.join(format!("pip-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&staging)
        .arg(PIP_PACKAGE)
        .output()
        .expect("python3 -m pip");
    assert!(
        out.status.success(),
        "this test needs Confluent's Python client and `python3 -m pip install {PIP_PACKAGE}` failed: {}\n\
         install it by hand with `python3 -m pip install --target {} {PIP_PACKAGE}`",
        String::from_utf8_lossy(&out.stderr),
        site.display()
    );
    fs::rename(&staging, &site).unwrap();
    site
}

const SCRIPT: &str = r#"
import json, sys
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, partition = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "python-reader", "enable.auto.commit": False})
c.assign([TopicPartition(topic, partition, 0)])
for _ in range(60):
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        raise SystemExit(str(m.error()))
    ts_type, ts = m.timestamp()
    print(json.dumps({
        "partition": m.partition(),
        "offset": m.offset(),
        "key": m.key().hex(),
        "value": m.value().hex(),
        "timestamp": ts,
        "timestamp_is_create_time": ts_type == 1,
        "headers": [[k, v.hex()] for k, v in (m.headers() or [])],
    }))
    break
else:
    raise SystemExit("no record within 30 s")
c.close()
"#;

#[test]
fn confluent_kafka_for_python_reads_a_mirrored_record_with_key_value_headers_timestamp_and_partition() {
    let site = confluent_kafka();
    let kafka = Tansu::start();
    let (_dir, broker) = local("py", TopicConfig::new(3));
    broker
        .producer()
        .send(
            "py",
            Record::new(vec![0u8, 1, 254, 255])
                .with_key("k-1")
                .with_header("trace", "abc")
                .with_timestamp(1_700_000_123_456)
                .with_partition(2),
        )
        .unwrap();
    let m = Mirror::builder(kafka.bootstrap())
        .topic("py")
        .source_id("py-source")
        .start(&broker)
        .unwrap();
    wait_mirrored(|| m.status(), 1);
    m.stop().unwrap();

    let out = Command::new("python3")
        .args(["-c", SCRIPT, &kafka.bootstrap(), "py", "2"])
        .env("PYTHONPATH", &site)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = |s: &[u8]| s.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let want = format!(
        r#"{{"partition": 2, "offset": 0, "key": "{}", "value": "0001feff", "timestamp": 1700000123456, "timestamp_is_create_time": true, "headers": [["trace", "{}"], ["logbus.source", "{}"], ["logbus.partition", "{}"], ["logbus.offset", "{}"]]}}"#,
        hex(b"k-1"),
        hex(b"abc"),
        hex(b"py-source"),
        hex(b"2"),
        hex(b"0"),
    );
    assert_eq!(stdout.trim(), want);
}
