//! The namespace's epoch and the data ids that carry it.
//!
//! An epoch is a short random text recorded in the namespace's `meta` hash (`epoch`) when the
//! namespace is created (or, for a namespace made before epochs, when it is first opened). A
//! store remembers it at connect and every script checks it first (`lua/prelude.lua`): a `meta`
//! that is gone or holds another epoch means the server lost the namespace's data under the
//! running store (a restart without persistence, a flush), and the store then refuses every
//! operation rather than carry on with an empty tree or write into a namespace it did not open.
//!
//! Every data id carries the epoch it was made in (`<epoch>-<store>.<counter>`), so that chunk
//! keys left behind by a lost namespace, on any master, can be told from live ones without
//! their metadata: no script of another epoch can ever commit again, so no live writer or
//! committed file owns them (see [`super::gc::sweep_epochs`]). Ids made before epochs
//! (`<16 hex digits>.<counter>`) carry none and are never deleted that way.
//!
//! Sizes: 6 characters of `[0-9A-Za-z]` for the epoch (about 36 bits: two epochs of one
//! namespace collide once in 57 billion restarts), and 11 for the store's random part (64 bits,
//! as before epochs): a data id is 2 bytes longer than before, so an entry 4 and a chunk key 4.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Characters of epochs and of the random part of data ids: none of the `| / : { } -` that
/// members, entries, keys and the id itself use as separators.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of an epoch.
pub(crate) const EPOCH_LEN: usize = 6;
/// Characters of a store's random part of its data ids: enough for 64 bits.
const STORE_LEN: usize = 11;
/// Separates the epoch from the rest of a data id.
const SEPARATOR: char = '-';

/// A new random epoch.
pub(crate) fn new_epoch() -> String {
    base62(random(), EPOCH_LEN)
}

/// Whether `text` could be an epoch (what `meta.epoch` holds).
pub(crate) fn is_epoch(text: &str) -> bool {
    text.len() == EPOCH_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The epoch data id `data` carries, or `None` for an id made before epochs (or not an id).
pub(crate) fn epoch_of(data: &str) -> Option<&str> {
    let (epoch, rest) = data.split_once(SEPARATOR)?;
    let (store, counter) = rest.split_once('.')?;
    let valid = is_epoch(epoch)
        && store.len() == STORE_LEN
        && store.bytes().all(|b| b.is_ascii_alphanumeric())
        && !counter.is_empty()
        && counter.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then_some(epoch)
}

/// Data ids: unique across processes without asking Redis (the epoch, a random part per store
/// and a counter), so opening a write costs no extra round trip.
pub(crate) struct IdGen {
    prefix: String,
    next: AtomicU64,
}

impl IdGen {
    /// Ids of a store connected in `epoch`.
    pub(crate) fn new(epoch: &str) -> IdGen {
        IdGen {
            prefix: format!("{epoch}{SEPARATOR}{}", base62(random(), STORE_LEN)),
            next: AtomicU64::new(1),
        }
    }

    /// `<epoch>-<11 characters>.<counter in hex>`.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}.{n:x}", self.prefix)
    }
}

/// 64 random bits: std's randomly keyed hasher over the time, the process id and a counter.
fn random() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// `n` in base 62, `len` characters (the high digits are dropped if `n` needs more).
fn base62(mut n: u64, len: usize) -> String {
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_epoch_and_old_ids_none() {
        let epoch = new_epoch();
        assert!(is_epoch(&epoch), "{epoch}");
        let ids = IdGen::new(&epoch);
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(epoch_of(&a), Some(epoch.as_str()));
        assert_eq!(a.len(), EPOCH_LEN + 1 + STORE_LEN + 2, "{a}");
        for bad in [
            "0123456789abcdef.1",
            "",
            "abc-0123456789A.1",
            "abcdef-0123456789A.",
            "abcdef-0123456789A.g",
            "abcdef-0123456789:.1",
            "abc:ef-0123456789A.1",
        ] {
            assert_eq!(epoch_of(bad), None, "{bad}");
        }
        for id in [&a, &epoch] {
            assert!(!id.contains(['|', '/', ':', '{', '}']), "{id}");
        }
    }

    #[test]
    fn base62_fills_its_width() {
        assert_eq!(base62(0, 3), "000");
        assert_eq!(base62(61, 2), "0z");
        assert_eq!(base62(62, 2), "10");
        assert_eq!(base62(u64::MAX, STORE_LEN).len(), STORE_LEN);
        assert_ne!(new_epoch(), new_epoch());
    }
}
