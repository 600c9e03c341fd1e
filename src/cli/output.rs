//! Printing records: tab-separated text or one JSON object per line.

use std::io::{self, BufWriter, StdoutLock, Write};

use base64::Engine;
use serde_json::{Map, Value};

use super::args::{ConsumeArgs, Format};
use crate::inspect::{Transactions, TxnMark};
use crate::log::consumed::ConsumedRecord;

/// What `consume` prints for each record.
pub(super) struct Printer {
    out: BufWriter<StdoutLock<'static>>,
    format: Format,
    key: bool,
    offset: bool,
    timestamp: bool,
    headers: bool,
    separator: String,
}

impl Printer {
    pub(super) fn new(a: &ConsumeArgs) -> Printer {
        Printer {
            out: BufWriter::new(io::stdout().lock()),
            format: a.format,
            key: a.print_key,
            offset: a.print_offset,
            timestamp: a.print_timestamp,
            headers: a.print_headers,
            separator: a.field_separator.clone().unwrap_or_else(|| "\t".to_string()),
        }
    }

    pub(super) fn print(&mut self, r: &ConsumedRecord) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let line = serde_json::to_string(&to_json(r)).map_err(io::Error::other)?;
                writeln!(self.out, "{line}")
            }
            Format::Text => {
                let mut fields: Vec<String> = Vec::with_capacity(5);
                if self.offset {
                    fields.push(format!("{}:{}", r.partition(), r.offset()));
                }
                if self.timestamp {
                    fields.push(r.timestamp().to_string());
                }
                if self.key {
                    fields.push(r.key().map_or_else(|| "null".to_string(), lossy));
                }
                if self.headers {
                    let hs: Vec<String> = r.headers().map(|(n, v)| format!("{n}={}", lossy(v))).collect();
                    fields.push(hs.join(","));
                }
                fields.push(lossy(r.value()));
                writeln!(self.out, "{}", fields.join(&self.separator))
            }
        }
    }

    /// Prints a record read with its part in a transaction: a marker as a
    /// `#` line (a JSON object with `"control"`), a record of a transaction
    /// that did not commit (so far) after a `#` line saying so (in JSON,
    /// `"transaction"` and `"committed"` fields).
    pub(super) fn print_marked(
        &mut self,
        r: &ConsumedRecord,
        mark: Option<TxnMark>,
        txns: &Transactions,
    ) -> io::Result<()> {
        match (mark, self.format) {
            (None, _) => self.print(r),
            (Some(TxnMark::Marker { id, commit }), Format::Text) => {
                let what = if commit { "commit" } else { "abort" };
                writeln!(
                    self.out,
                    "# {}:{} {what} marker of transaction {id}",
                    r.partition(),
                    r.offset()
                )
            }
            (Some(TxnMark::Marker { id, commit }), Format::Json) => {
                let mut obj = Map::new();
                obj.insert("topic".into(), Value::String(r.topic().to_string()));
                obj.insert("partition".into(), Value::from(r.partition()));
                obj.insert("offset".into(), Value::from(r.offset()));
                obj.insert("control".into(), Value::from(if commit { "commit" } else { "abort" }));
                obj.insert("transaction".into(), Value::from(id));
                let line = serde_json::to_string(&Value::Object(obj)).map_err(io::Error::other)?;
                writeln!(self.out, "{line}")
            }
            (Some(TxnMark::Record { id }), Format::Text) => {
                if !txns.is_committed(id) {
                    writeln!(
                        self.out,
                        "# {}:{} not committed: transaction {id} aborted or still open",
                        r.partition(),
                        r.offset()
                    )?;
                }
                self.print(r)
            }
            (Some(TxnMark::Record { id }), Format::Json) => {
                let mut obj = to_json(r);
                if let Value::Object(o) = &mut obj {
                    o.insert("transaction".into(), Value::from(id));
                    o.insert("committed".into(), Value::from(txns.is_committed(id)));
                }
                let line = serde_json::to_string(&obj).map_err(io::Error::other)?;
                writeln!(self.out, "{line}")
            }
        }
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Puts `bytes` under `name`: a string when UTF-8, else base64 with `<name>_encoding: "base64"`.
fn put_bytes(obj: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>) {
    match bytes.map(std::str::from_utf8) {
        None => {
            obj.insert(name.to_string(), Value::Null);
        }
        Some(Ok(s)) => {
            obj.insert(name.to_string(), Value::String(s.to_string()));
        }
        Some(Err(_)) => {
            let b = bytes.unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(b);
            obj.insert(name.to_string(), Value::String(encoded));
            obj.insert(format!("{name}_encoding"), Value::String("base64".into()));
        }
    }
}

/// The JSON form of a record: every field, always.
pub(super) fn to_json(r: &ConsumedRecord) -> Value {
    let mut obj = Map::new();
    obj.insert("topic".into(), Value::String(r.topic().to_string()));
    obj.insert("partition".into(), Value::from(r.partition()));
    obj.insert("offset".into(), Value::from(r.offset()));
    obj.insert("timestamp".into(), Value::from(r.timestamp()));
    put_bytes(&mut obj, "key", r.key());
    put_bytes(&mut obj, "value", Some(r.value()));
    let headers = r
        .headers()
        .map(|(n, v)| {
            let mut h = Map::new();
            h.insert("name".into(), Value::String(n.to_string()));
            put_bytes(&mut h, "value", Some(v));
            Value::Object(h)
        })
        .collect();
    obj.insert("headers".into(), Value::Array(headers));
    Value::Object(obj)
}

/// Bytes shown in one line for `dump`: the string when short printable UTF-8, else a length.
pub(super) fn preview(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().count() <= 60 => format!("{s:?}"),
        Ok(s) => format!("{:?}... ({} bytes)", s.chars().take(60).collect::<String>(), b.len()),
        Err(_) => format!("<{} bytes, not UTF-8>", b.len()),
    }
}
