//! Paged listings: a directory read a page at a time ([`super::Store::list_page`]), so that a
//! listing of 10^6 entries never holds them all, in the store, the engine or the front end.
//!
//! A listing goes on from a [`ListCursor`] the previous page handed out. Cursors are stateless
//! on every store (nothing is kept open between pages, so an abandoned listing costs nothing):
//! the memory store's is the last name listed (its directories are sorted maps), the disk
//! store's the directory's identity and the kernel's offset after the last entry read
//! (`telldir`/`seekdir`'s cookie), the Redis store's the directory id and its `HSCAN` cursor.

use serde::{Deserialize, Serialize};

use super::DirEntry;

/// Entries a page holds when the caller has no reason to ask for another size: about 100 KiB
/// of entries, few enough to stay small, enough to spread each page's fixed cost (a message to
/// the actor, a round trip to Redis, a directory open) thin.
pub const LIST_PAGE_ENTRIES: usize = 1024;

/// Where a paged listing goes on. Opaque: a caller hands back the one it was given, for the
/// same directory of the same mount; its text means something only to the store that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCursor(String);

impl ListCursor {
    /// A cursor holding the store's own text.
    pub(crate) fn new(text: impl Into<String>) -> ListCursor {
        ListCursor(text.into())
    }

    /// The store's text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a directory listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    /// Entries of this page, in no particular order across pages (the memory store's happen to
    /// be sorted).
    pub entries: Vec<DirEntry>,
    /// Where the listing goes on; `None` when this page ends it.
    pub next: Option<ListCursor>,
}
