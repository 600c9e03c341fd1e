//! One truth about when `PageCache` fsyncs: the README's Durability table and
//! the `Durability` rustdoc quote the defaults `BrokerConfig` exposes.

use logbus::BrokerConfig;

const README: &str = include_str!("../../README.md");
const CONFIG_RS: &str = include_str!("../../src/config.rs");

/// The `PageCache` row of the table that starts with `row_start`.
fn page_cache_row<'a>(text: &'a str, row_start: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(row_start))
        .unwrap_or_else(|| panic!("no line starting with {row_start:?}"))
}

fn fsync_phrase() -> String {
    format!(
        "fsyncs every {} s or {} GiB",
        BrokerConfig::DEFAULT_SYNC_CHECKPOINT_INTERVAL.as_secs(),
        BrokerConfig::DEFAULT_SYNC_CHECKPOINT_BYTES >> 30
    )
}

#[test]
fn readme_durability_table_quotes_the_page_cache_fsync_defaults() {
    let row = page_cache_row(README, "| `PageCache` (default)");
    assert!(
        row.contains(&fsync_phrase()),
        "README's PageCache row must say {:?}: {row}",
        fsync_phrase()
    );
    let elsewhere = format!(
        "every {} s or {} MiB",
        BrokerConfig::DEFAULT_CHECKPOINT_INTERVAL.as_secs(),
        BrokerConfig::DEFAULT_CHECKPOINT_BYTES >> 20
    );
    assert!(
        row.contains(&elsewhere),
        "README's PageCache row must say {elsewhere:?} outside Linux: {row}"
    );
}

#[test]
fn durability_rustdoc_quotes_the_page_cache_fsync_defaults() {
    let row = page_cache_row(CONFIG_RS, "/// | `PageCache` |");
    assert!(
        row.contains(&fsync_phrase()),
        "Durability's PageCache row must say {:?}: {row}",
        fsync_phrase()
    );
    assert!(!row.contains("once a second"), "{row}");
}

#[test]
fn broker_config_default_uses_the_published_defaults() {
    let shown = format!("{:?}", BrokerConfig::default());
    for part in [
        format!("checkpoint_interval: {:?}", BrokerConfig::DEFAULT_CHECKPOINT_INTERVAL),
        format!("checkpoint_bytes: {}", BrokerConfig::DEFAULT_CHECKPOINT_BYTES),
        format!(
            "sync_checkpoint_interval: {:?}",
            BrokerConfig::DEFAULT_SYNC_CHECKPOINT_INTERVAL
        ),
        format!("sync_checkpoint_bytes: {}", BrokerConfig::DEFAULT_SYNC_CHECKPOINT_BYTES),
    ] {
        assert!(shown.contains(&part), "{part} not in {shown}");
    }
}
