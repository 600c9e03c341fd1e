//! The module layering holds: layers only look down (ARCHITECTURE.md, "Code
//! map"). Reads the sources of the lower layers and fails, naming file and
//! line, when one of them refers to a module above it:
//!
//! * `src/format/**` refers to nothing in the crate but `crate::format`;
//! * `src/log/**` refers to no API, group or tool module (broker, topic,
//!   producer, consumer, group, codec, inspect, cli);
//! * `src/group/**` refers to no consumer, topic, broker or producer (nor
//!   codec, inspect, cli);
//! * `src/obs.rs` (observability, used by every layer) refers to nothing in
//!   the crate.
//!
//! A reference is any path that reaches the crate root: `crate::x`, the items
//! of a `use crate::{x, y::z}` group, `super::` chains that climb out of the
//! layer, and root re-exports such as `crate::Consumer` (resolved to the
//! module they come from through `src/lib.rs`). Comments are not code and
//! are skipped (rustdoc links may name any public item).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Modules that the API, groups and tools are made of: none of them is below the log.
const ABOVE_LOG: &[&str] = &[
    "txn", "broker", "topic", "producer", "consumer", "group", "codec", "inspect", "cli", "client", "kafka",
];
const ABOVE_GROUP: &[&str] = &[
    "txn", "broker", "topic", "producer", "consumer", "codec", "inspect", "cli", "client", "kafka",
];

/// What one layer may not refer to.
enum Rule {
    /// Only these top-level modules.
    Only(&'static [&'static str]),
    /// Anything but these top-level modules.
    Not(&'static [&'static str]),
}

impl Rule {
    fn allows(&self, module: &str) -> bool {
        match self {
            Rule::Only(ok) => ok.contains(&module),
            Rule::Not(bad) => !bad.contains(&module),
        }
    }
}

fn layers() -> Vec<(&'static str, Rule)> {
    vec![
        ("format", Rule::Only(&["format"])),
        ("log", Rule::Not(ABOVE_LOG)),
        ("group", Rule::Not(ABOVE_GROUP)),
        // The Kafka bridge sits above the public API: nothing below it knows it.
        ("inspect", Rule::Not(&["kafka", "cli"])),
        // Every layer, `format/` aside, records metrics and traces through it.
        ("obs", Rule::Only(&["obs"])),
    ]
}

/// One reference to a crate module from a source file.
#[derive(Debug, PartialEq)]
struct Reference {
    line: usize,
    /// The crate's top-level module the path leads to (`crate::Consumer` gives `consumer`).
    module: String,
    /// The path as written, for the message.
    text: String,
}

/// `src/lib.rs`'s re-exports: exported name -> module it comes from.
fn root_exports(lib_rs: &str) -> BTreeMap<String, String> {
    let code = strip_comments(lib_rs);
    let mut out = BTreeMap::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("pub use ") {
        rest = &rest[at + "pub use ".len()..];
        let end = rest.find(';').unwrap_or(rest.len());
        let stmt = &rest[..end];
        rest = &rest[end..];
        let Some((module, tail)) = stmt.split_once("::") else {
            continue;
        };
        let module = module.trim().trim_start_matches("self::");
        for (pos, ident) in idents(tail) {
            let is_segment = tail[pos + ident.len()..].trim_start().starts_with("::");
            if !is_segment && ident != "self" && ident != "as" {
                out.insert(ident.to_string(), module.to_string());
            }
        }
    }
    out
}

/// Identifiers in `s` with their byte positions.
fn idents(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((start, &s[start..i]));
        } else {
            i += 1;
        }
    }
    out
}

/// The source with every `//` comment (doc comments included) blanked out,
/// lines kept. Naive about `//` inside string literals: that only hides text.
fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Depth of a file's module below the crate root: `log/mod.rs` 1, `log/read.rs` 2.
fn file_depth(rel: &Path) -> usize {
    let parts = rel.components().count();
    if rel.file_name().is_some_and(|n| n == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// Every path in `src` (a file `depth` modules below the root) that reaches
/// the crate root, resolved to the top-level module it names.
fn references(src: &str, depth: usize, exports: &BTreeMap<String, String>) -> Vec<Reference> {
    let code = strip_comments(src);
    // Module depth of each line: the file's, plus the inline `mod x {`
    // blocks around it (found by indentation: the sources are rustfmt'd).
    let mut line_depth = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for l in code.lines() {
        let indent = l.len() - l.trim_start().len();
        if open.last() == Some(&indent) && l.trim() == "}" {
            open.pop();
        }
        line_depth.push(depth + open.len());
        let t = l.trim();
        let t = t
            .strip_prefix("pub ")
            .or_else(|| t.strip_prefix("pub(crate) "))
            .unwrap_or(t);
        if t.starts_with("mod ") && t.ends_with('{') {
            open.push(indent);
        }
    }
    let line_of = |pos: usize| code[..pos].matches('\n').count() + 1;
    let mut out = Vec::new();
    for (pos, ident) in idents(&code) {
        let after = &code[pos + ident.len()..];
        if !after.starts_with("::") || (pos > 0 && code.as_bytes()[pos - 1] == b':') {
            continue;
        }
        // The start of a path: climb to the root, if it gets there.
        let rest_at = match ident {
            "crate" => pos + ident.len() + 2,
            "super" => {
                let mut at = pos;
                let mut climbs = 0;
                while code[at..].starts_with("super::") {
                    climbs += 1;
                    at += "super::".len();
                }
                if climbs < line_depth[line_of(pos) - 1] {
                    continue;
                }
                at
            }
            _ => continue,
        };
        for (at, module) in first_segments(&code, rest_at) {
            let module = exports.get(module).map_or(module, String::as_str);
            let end = code[at..]
                .find([';', ',', '(', ')', '<', '>', '{', '}', ' ', '\n'])
                .map_or(code.len(), |e| at + e);
            out.push(Reference {
                line: line_of(at),
                module: module.to_string(),
                text: format!("{}::{}", &code[pos..rest_at - 2], code[at..end].trim()),
            });
        }
    }
    out
}

/// The first segment of the path at `at`, or of each item of a `{...}` group there.
fn first_segments(code: &str, at: usize) -> Vec<(usize, &str)> {
    let rest = &code[at..];
    if !rest.starts_with('{') {
        return idents(rest).into_iter().take(1).map(|(p, i)| (at + p, i)).collect();
    }
    let mut out = Vec::new();
    let (mut depth, mut item_start) = (0usize, at + 1);
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' | ',' if depth == 1 => {
                if let Some(&(p, id)) = idents(&code[item_start..at + i]).first() {
                    if id != "self" {
                        out.push((item_start + p, id));
                    }
                }
                item_start = at + i + 1;
                if c == '}' {
                    break;
                }
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    out
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every reference from `layer`'s files that `rule` forbids, as "file:line: ..." lines.
fn violations(src_dir: &Path, layer: &str, rule: &Rule, exports: &BTreeMap<String, String>) -> Vec<String> {
    let mut files = Vec::new();
    let single = src_dir.join(format!("{layer}.rs"));
    if single.is_file() {
        files.push(single);
    } else {
        rs_files(&src_dir.join(layer), &mut files);
    }
    files.sort();
    assert!(!files.is_empty(), "no sources under src/{layer}");
    let mut out = Vec::new();
    for path in files {
        let rel = path.strip_prefix(src_dir).unwrap();
        let src = std::fs::read_to_string(&path).unwrap();
        for r in references(&src, file_depth(rel), exports) {
            if !rule.allows(&r.module) {
                out.push(format!(
                    "src/{}:{}: `{}` reaches `{}`, which `{layer}` may not use",
                    rel.display(),
                    r.line,
                    r.text,
                    r.module
                ));
            }
        }
    }
    out
}

#[test]
fn lower_layers_do_not_import_upper_ones() {
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let exports = root_exports(&std::fs::read_to_string(src_dir.join("lib.rs")).unwrap());
    assert_eq!(exports.get("Consumer").map(String::as_str), Some("consumer"));
    let found: Vec<String> = layers()
        .iter()
        .flat_map(|(layer, rule)| violations(&src_dir, layer, rule, &exports))
        .collect();
    assert!(
        found.is_empty(),
        "layers only look down (ARCHITECTURE.md); move the code or invert the dependency:\n{}",
        found.join("\n")
    );
}

/// The checker itself sees each way of writing a path to an upper layer.
#[test]
fn the_checker_finds_every_spelling_of_an_upward_path() {
    let exports = root_exports("pub use consumer::{Consumer, TopicPartition};\npub use log::consumed::RecordView;\n");
    assert_eq!(exports.get("RecordView").map(String::as_str), Some("log"));
    let src = "\
//! Docs may say crate::consumer::Consumer.
use crate::error::Result;
use crate::{
    config::LogConfig,
    consumer::{self, Consumer},
};
use super::read;

fn f() {
    let _ = crate::topic::validate_topic_name(\"t\"); // and crate::broker in a comment
    let _: Option<crate::TopicPartition> = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::read;
    use super::super::super::group::Coordinator;
}
";
    let found: Vec<(usize, String)> = references(src, 2, &exports)
        .into_iter()
        .map(|r| (r.line, r.module))
        .collect();
    let expect = [
        (2, "error"),
        (4, "config"),
        (5, "consumer"),
        (10, "topic"),
        (11, "consumer"),
    ];
    let expect: Vec<(usize, String)> = expect.iter().map(|&(l, m)| (l, m.to_string())).collect();
    assert_eq!(found[..expect.len()], expect[..]);
    // In `log/read.rs`, `super::super::` from inside `mod tests` is `log`;
    // one more `super` is the root.
    assert_eq!(found[expect.len()..], [(18, "group".to_string())]);
    // From `log/mod.rs` (depth 1), `super::` alone already climbs to the root.
    let found = references("use super::broker::Broker;\n", 1, &exports);
    assert!(
        matches!(&found[..], [r] if r.module == "broker" && r.line == 1),
        "{found:?}"
    );
    assert!(!Rule::Not(ABOVE_LOG).allows("consumer"));
    assert!(Rule::Only(&["format"]).allows("format"));
    assert!(!Rule::Only(&["format"]).allows("record"));
}
