//! Key names and the encoding of directory entries: the key layout of the module docs, in code.
//!
//! Nothing else in the store builds a key name, so that no key outside the namespace can ever be
//! named. The Lua scripts build metadata keys from the same prefix ([`Keys::meta_prefix`]) and
//! parse entries with the same grammar as [`Entry::parse`].

use std::time::{Duration, SystemTime};

use crate::store::{EntryKind, Meta};

/// The key names of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    ns: String,
    /// `<ns>:{<ns>}:`: the prefix of every metadata key. The braces are the hash tag that puts
    /// every metadata key in one cluster slot.
    meta_prefix: String,
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Keys {
        Keys {
            ns: namespace.to_string(),
            meta_prefix: format!("{namespace}:{{{namespace}}}:"),
        }
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.ns
    }

    /// The prefix the scripts receive as `ARGV[1]`.
    pub(crate) fn meta_prefix(&self) -> &str {
        &self.meta_prefix
    }

    /// `<ns>:{<ns>}:meta`: layout version, root mtime, last directory id. Every script names it
    /// as `KEYS[1]`, which routes the script to the metadata slot's node.
    pub(crate) fn meta(&self) -> String {
        format!("{}meta", self.meta_prefix)
    }

    /// `<ns>:{<ns>}:stats`: the maintained counters (named by the scripts).
    #[cfg(test)]
    pub(crate) fn stats(&self) -> String {
        format!("{}stats", self.meta_prefix)
    }

    /// `<ns>:{<ns>}:pending`: staged and dead data.
    pub(crate) fn pending(&self) -> String {
        format!("{}pending", self.meta_prefix)
    }

    /// `<ns>:{<ns>}:packs`: live files per pack (named by the scripts).
    #[cfg(test)]
    pub(crate) fn packs(&self) -> String {
        format!("{}packs", self.meta_prefix)
    }

    /// `<ns>:{<ns>}:trash`: detached directories being purged (named by the scripts).
    #[cfg(test)]
    pub(crate) fn trash(&self) -> String {
        format!("{}trash", self.meta_prefix)
    }

    /// `<ns>:{<ns>}:d:<id>`: the entries of directory `id` (the root is 0).
    pub(crate) fn dir(&self, id: &str) -> String {
        format!("{}d:{id}", self.meta_prefix)
    }

    /// `<ns>:c:{<place>:<index>}:<data>`: chunk `index` of data `data`. The hash tag holds the
    /// placement and the index, never anything common to all chunks, so chunks spread over every
    /// slot; a copy keeps its source's placement, so each source chunk and its copy share a slot
    /// and `COPY` works on a cluster.
    pub(crate) fn chunk(&self, place: &str, index: u64, data: &str) -> String {
        format!("{}:c:{{{place}:{index}}}:{data}", self.ns)
    }

    /// `<ns>:c:*`: a `SCAN` pattern that matches every chunk key of the namespace (and perhaps
    /// keys of other namespaces, which [`Keys::chunk_data`] tells apart). Namespaces hold no
    /// glob characters.
    pub(crate) fn chunk_pattern(&self) -> String {
        format!("{}:c:*", self.ns)
    }

    /// The data id of `key` if it is a chunk key of this namespace, as [`Keys::chunk`] makes
    /// them. Another namespace's key never passes: only `<ns>:c` could make keys starting
    /// `<ns>:c:{`, its metadata keys, whose tag `{<ns>:c}` ends in no chunk index.
    pub(crate) fn chunk_data<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(self.ns.as_str())?.strip_prefix(":c:{")?;
        let (tag, data) = rest.split_once("}:")?;
        let (place, index) = tag.rsplit_once(':')?;
        let valid = !place.is_empty()
            && !place.contains(['{', '}', ':'])
            && digits(index).is_some()
            && !data.is_empty()
            && !data.contains(['{', '}', ':']);
        valid.then_some(data)
    }
}

/// What a pending member names: data, placement and, for dead data, its chunk count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub data: String,
    pub place: String,
    /// Known for dead data (`<data>|<place>|<chunks>`); `None` for staged data, whose writer may
    /// have died mid-way.
    pub chunks: Option<u64>,
}

impl Member {
    pub(crate) fn parse(member: &str) -> Option<Member> {
        let mut parts = member.split('|');
        let data = parts.next()?.to_string();
        let place = parts.next()?.to_string();
        let chunks = match parts.next() {
            None => None,
            Some(n) => Some(n.parse().ok()?),
        };
        if parts.next().is_some() || data.is_empty() || place.is_empty() {
            return None;
        }
        Some(Member {
            data,
            place,
            chunks,
        })
    }
}

/// A directory entry as stored in its parent's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `d/<id>/<mtime ms>`
    Dir { id: String, mtime: u64 },
    /// `f/<size>/<mtime ms>/<chunk size>/<data>/<place>`; data and place are empty for a file
    /// created empty by `touch`, which has no data. A packed file (module `pack`) is
    /// `p/<size>/<mtime ms>/<offset>/<pack>`, read here as a file of one chunk (`chunk_size` is
    /// its size) whose chunk is the `size` bytes at `offset` of chunk 0 of data `<pack>`, placed
    /// by its own id.
    File {
        size: u64,
        mtime: u64,
        chunk_size: u64,
        data: String,
        place: String,
        /// Where the file starts in its pack, for a packed file.
        offset: Option<u64>,
    },
}

impl Entry {
    /// Parses a stored entry; `None` when it does not follow the grammar.
    pub(crate) fn parse(value: &str) -> Option<Entry> {
        Some(match Fields::parse(value)? {
            Fields::Dir { id, mtime } => Entry::Dir {
                id: id.to_string(),
                mtime,
            },
            Fields::File {
                size,
                mtime,
                chunk_size,
                data,
                place,
                offset,
            } => Entry::File {
                size,
                mtime,
                chunk_size,
                data: data.to_string(),
                place: place.to_string(),
                offset,
            },
        })
    }

    /// What a listing shows of a stored entry, checked against the grammar as [`Entry::parse`]
    /// does, without making the strings a listing drops.
    pub(crate) fn parse_meta(value: &str) -> Option<Meta> {
        let (kind, size, mtime) = match Fields::parse(value)? {
            Fields::Dir { mtime, .. } => (EntryKind::Dir, 0, mtime),
            Fields::File { size, mtime, .. } => (EntryKind::File, size, mtime),
        };
        Some(meta(kind, size, mtime))
    }

    pub(crate) fn meta(&self) -> Meta {
        let (kind, size, mtime) = match self {
            Entry::Dir { mtime, .. } => (EntryKind::Dir, 0, *mtime),
            Entry::File { size, mtime, .. } => (EntryKind::File, *size, *mtime),
        };
        meta(kind, size, mtime)
    }
}

fn meta(kind: EntryKind, size: u64, mtime: u64) -> Meta {
    Meta {
        kind,
        size,
        modified: SystemTime::UNIX_EPOCH + Duration::from_millis(mtime),
    }
}

/// An [`Entry`] as its stored value holds it: the grammar, in one place.
enum Fields<'a> {
    Dir {
        id: &'a str,
        mtime: u64,
    },
    File {
        size: u64,
        mtime: u64,
        chunk_size: u64,
        data: &'a str,
        place: &'a str,
        offset: Option<u64>,
    },
}

impl<'a> Fields<'a> {
    fn parse(value: &'a str) -> Option<Fields<'a>> {
        let mut parts = Parts(Some(value));
        let fields = match parts.next()? {
            "d" => Fields::Dir {
                id: digits(parts.next()?)?,
                mtime: parts.number()?,
            },
            "f" => Fields::File {
                size: parts.number()?,
                mtime: parts.number()?,
                chunk_size: parts.number()?,
                data: parts.next()?,
                place: parts.next()?,
                offset: None,
            },
            "p" => {
                let size = parts.number()?;
                let mtime = parts.number()?;
                let offset = parts.number()?;
                let pack = parts.next()?;
                if pack.is_empty() {
                    return None;
                }
                Fields::File {
                    size,
                    mtime,
                    chunk_size: size.max(1),
                    data: pack,
                    place: pack,
                    offset: Some(offset),
                }
            }
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        if let Fields::File {
            size, chunk_size, ..
        } = &fields
            && *size > 0
            && *chunk_size == 0
        {
            return None;
        }
        Some(fields)
    }
}

/// The `/`-separated fields of a stored entry, taken in order (as `split('/')` gives them).
///
/// By hand rather than `split` and `str::parse`: a listing parses every entry of every
/// directory it reads, and the fields are a few bytes each, shorter than a `memchr` pays off on.
struct Parts<'a>(Option<&'a str>);

impl<'a> Parts<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.0?;
        match rest.bytes().position(|b| b == b'/') {
            Some(cut) => {
                self.0 = Some(&rest[cut + 1..]);
                Some(&rest[..cut])
            }
            None => {
                self.0 = None;
                Some(rest)
            }
        }
    }

    /// The next field as a decimal number: ASCII digits only, at least one, within `u64`.
    fn number(&mut self) -> Option<u64> {
        let field = self.next()?;
        if field.is_empty() {
            return None;
        }
        field.bytes().try_fold(0u64, |n, b| {
            if b.is_ascii_digit() {
                n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        })
    }
}

fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// Chunks of a file of `size` bytes in chunks of `chunk_size`.
pub(crate) fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    if size == 0 {
        0
    } else {
        size.div_ceil(chunk_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_starts_with_the_namespace_and_metadata_shares_one_tag() {
        let k = Keys::new("mv");
        for key in [
            k.meta(),
            k.stats(),
            k.pending(),
            k.packs(),
            k.trash(),
            k.dir("0"),
        ] {
            assert!(key.starts_with("mv:{mv}:"), "{key}");
        }
        assert_eq!(k.chunk("p1", 7, "d2"), "mv:c:{p1:7}:d2");
        assert!(k.chunk("p", 0, "d").starts_with("mv:"));
    }

    #[test]
    fn chunk_keys_give_their_data_and_other_keys_none() {
        let k = Keys::new("a");
        assert_eq!(k.chunk_data(&k.chunk("p.1", 7, "d.2")), Some("d.2"));
        assert_eq!(k.chunk_pattern(), "a:c:*");
        // Keys the pattern also matches: namespace `a:c`'s metadata and chunks, and `a:cc`'s.
        let other = Keys::new("a:c");
        let cc = Keys::new("a:cc");
        for key in [
            other.meta(),
            other.dir("0"),
            other.chunk("p", 1, "d"),
            cc.chunk("p", 1, "d"),
            "a:c:{p:1}:".to_string(),
            "a:c:{:1}:d".to_string(),
            "a:c:{p:x}:d".to_string(),
        ] {
            assert_eq!(k.chunk_data(&key), None, "{key}");
        }
    }

    #[test]
    fn entries_round_trip_their_grammar() {
        assert_eq!(
            Entry::parse("d/12/1700000000000"),
            Some(Entry::Dir {
                id: "12".into(),
                mtime: 1_700_000_000_000
            })
        );
        assert_eq!(
            Entry::parse("f/5/9/1048576/ab.1/ab.1"),
            Some(Entry::File {
                size: 5,
                mtime: 9,
                chunk_size: 1_048_576,
                data: "ab.1".into(),
                place: "ab.1".into(),
                offset: None,
            })
        );
        assert_eq!(
            Entry::parse("p/4096/9/8192/ab.1"),
            Some(Entry::File {
                size: 4096,
                mtime: 9,
                chunk_size: 4096,
                data: "ab.1".into(),
                place: "ab.1".into(),
                offset: Some(8192),
            })
        );
        assert!(Entry::parse("f/0/9/0//").is_some(), "an empty touched file");
        for bad in [
            "",
            "x/1/2",
            "d/1",
            "d/a/2",
            "f/1/2/3/a",
            "f/1/2/0/a/a",
            "d/1/2/3",
            "p/1/2/3/",
            "p/1/2/x/a",
            "p/1/2/3/a/a",
            "f/+1/2/3/a/a",
            "f/1//3/a/a",
            "d/1/99999999999999999999",
            "p/1/2/3/a/",
        ] {
            assert_eq!(Entry::parse(bad), None, "{bad}");
            assert_eq!(Entry::parse_meta(bad), None, "a listing refuses {bad} too");
        }
        for good in [
            "d/12/1700000000000",
            "f/5/9/1048576/ab.1/ab.1",
            "p/4096/9/8192/ab.1",
        ] {
            let entry = Entry::parse(good).expect("a valid entry");
            assert_eq!(Entry::parse_meta(good), Some(entry.meta()), "{good}");
        }
    }

    #[test]
    fn members_carry_data_place_and_maybe_chunks() {
        assert_eq!(
            Member::parse("a.1|b.2"),
            Some(Member {
                data: "a.1".into(),
                place: "b.2".into(),
                chunks: None
            })
        );
        assert_eq!(Member::parse("a|b|3").unwrap().chunks, Some(3));
        assert_eq!(Member::parse("a"), None);
        assert_eq!(Member::parse("a|b|x"), None);
        assert_eq!(chunk_count(0, 4), 0);
        assert_eq!(chunk_count(4, 4), 1);
        assert_eq!(chunk_count(5, 4), 2);
    }
}
