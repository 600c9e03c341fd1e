//! How the crate holds names. A leaf module: it imports nothing from the
//! crate, so any layer may use it.
//!
//! A topic's name is one `Arc<str>`, allocated when the topic is opened and
//! shared by the topic, its partitions' logs and their segment maps (which is
//! where a read record finds it). [`TopicName`] is that name as send metadata
//! carries it; [`TopicPartition`] is the public (topic, partition) pair that
//! consumers, groups and the offsets store speak.

use std::fmt;
use std::sync::Arc;

/// A topic name and partition number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition number.
    pub partition: u32,
}

impl TopicPartition {
    /// A topic-partition pair.
    pub fn new(topic: impl Into<String>, partition: u32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic name as send metadata holds it: inline when short, so a send
/// bumps no reference count (an atomic increment, and a decrement when the
/// caller drops the metadata), else shared.
/// A struct of word-aligned fields, not an enum: an enum's one-byte tag put
/// the inline bytes at odd offsets, and every move of a send's result (it
/// passes through a few closures) became unaligned copies that stalled on
/// store forwarding.
#[derive(Clone)]
pub(crate) struct TopicName {
    /// The name when it is longer than [`TopicName::INLINE`].
    shared: Option<Arc<str>>,
    len: u8,
    bytes: [u8; TopicName::INLINE],
}

impl TopicName {
    /// Longest name kept inline (the struct is then 5 words).
    const INLINE: usize = 23;

    pub(crate) fn new(name: &Arc<str>) -> TopicName {
        let mut bytes = [0u8; TopicName::INLINE];
        match bytes.get_mut(..name.len()) {
            Some(dst) => {
                dst.copy_from_slice(name.as_bytes());
                TopicName {
                    shared: None,
                    len: name.len() as u8,
                    bytes,
                }
            }
            None => TopicName {
                shared: Some(Arc::clone(name)),
                len: 0,
                bytes,
            },
        }
    }

    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        match &self.shared {
            Some(s) => s,
            // A prefix of a `str` cut at its full length: always valid UTF-8.
            None => {
                std::str::from_utf8(self.bytes.get(..usize::from(self.len)).unwrap_or_default()).unwrap_or_default()
            }
        }
    }

    #[cfg(test)]
    fn is_inline(&self) -> bool {
        self.shared.is_none()
    }
}

impl PartialEq for TopicName {
    fn eq(&self, other: &TopicName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TopicName {}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_read_back_whether_inline_or_shared() {
        assert_eq!(std::mem::size_of::<TopicName>(), 40);
        for len in [0, 1, 22, 23, 24, 249] {
            let name: Arc<str> = Arc::from("t".repeat(len).as_str());
            let t = TopicName::new(&name);
            assert_eq!(t.as_str(), &*name);
            assert_eq!(t.is_inline(), len <= TopicName::INLINE);
            assert_eq!(t.clone(), t);
            assert_eq!(format!("{t:?}"), format!("{:?}", &*name));
        }
        // Shared names are the caller's allocation, not a copy.
        let long: Arc<str> = Arc::from("x".repeat(100).as_str());
        let _t = TopicName::new(&long);
        assert_eq!(Arc::strong_count(&long), 2);
    }
}
