//! A listing's next pages, read while its caller works through the page it has.
//!
//! Paged through [`crate::store::Store::list_page`], a large directory is one round trip a
//! page, each sent once the one before is parsed and served: Redis scans while the client
//! waits, then the client decodes, parses and prints while Redis waits. Once a page is served
//! and the listing goes on, a task of the store reads the next pages in turn, each `HSCAN` sent
//! as soon as the reply before it arrives, and holds them for the listing.
//!
//! Rules:
//! - Each of the last [`LISTINGS`] listings served is read ahead, by directory: a request for a
//!   page of a directory that is not the next read ahead for it reads its own, and that
//!   directory's read-ahead is dropped. A read changes nothing on the server, so nothing is
//!   undone.
//! - At most [`AHEAD`] pages wait per listing, read and not yet asked for; its task waits with
//!   them.
//! - A page is served only while fresh ([`FRESH`]): a caller who pauses between pages gets a
//!   page read at most that long before, and the pages after it read anew.
//! - Each page is read with the namespace's epoch right behind it ([`scan_page`]), as without
//!   reading ahead: a server's loss of the namespace is reported by the first page read after
//!   it. Pages read before it may still be served: they are the directory as it was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::raw;
use super::shared::Shared;
use crate::error::Result;

/// Longest a page read ahead is kept for its listing.
const FRESH: Duration = Duration::from_secs(1);

/// Pages of a listing read and not yet asked for, at most (besides the one being read).
const AHEAD: usize = 1;

/// Listings read ahead at once, at most: a daemon's clients may page through several.
const LISTINGS: usize = 4;

const OP: &str = "list";

/// One `HSCAN` reply: the cursor it goes on at (`"0"` at the end) and the page's name-entry pairs.
pub(super) type Scanned = (String, Vec<(Bytes, Bytes)>);

/// A page read ahead: the cursor it was read at, when, and what was read.
type Page = (String, Instant, Result<Scanned>);

/// The listings read ahead, the one served last at the end.
#[derive(Default)]
pub(super) struct ReadAheads(Vec<ReadAhead>);

impl ReadAheads {
    /// The page at `HSCAN` cursor `scan` of directory `dir` (id), `count` entries asked: the
    /// one read ahead for it if it is this one and fresh, else read now (and what was read
    /// ahead for `dir` dropped).
    pub(super) async fn page(
        &mut self,
        shared: &Shared,
        dir: &str,
        scan: &str,
        count: usize,
    ) -> Result<Scanned> {
        if let Some(at) = self.find(dir, count) {
            let mut ahead = self.0.remove(at);
            if let Some(page) = ahead.take(scan).await {
                self.0.push(ahead);
                return page;
            }
        }
        scan_page(shared, dir, scan, count).await
    }

    /// A page of `dir` was served, its listing going on at `next` (`None` at its end): reads
    /// ahead from there, unless that listing's read-ahead goes on already.
    pub(super) fn served(
        &mut self,
        shared: &Arc<Shared>,
        dir: &str,
        next: Option<&str>,
        count: usize,
    ) {
        match (next, self.find(dir, count)) {
            (None, Some(at)) => {
                self.0.remove(at);
            }
            (Some(scan), None) => {
                if self.0.len() == LISTINGS {
                    self.0.remove(0);
                }
                self.0.push(ReadAhead::start(shared, dir, scan, count));
            }
            (None, None) | (Some(_), Some(_)) => {}
        }
    }

    /// Drops every read-ahead.
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    fn find(&self, dir: &str, count: usize) -> Option<usize> {
        self.0.iter().position(|a| a.dir == dir && a.count == count)
    }
}

/// The listing of directory `dir` (id), `count` entries a page, read ahead.
struct ReadAhead {
    dir: String,
    count: usize,
    pages: mpsc::Receiver<Page>,
    _reader: AbortOnDropHandle<()>,
}

impl ReadAhead {
    /// Starts reading the pages of `dir` from `HSCAN` cursor `scan` on.
    fn start(shared: &Arc<Shared>, dir: &str, scan: &str, count: usize) -> Self {
        let (send, pages) = mpsc::channel(AHEAD);
        let reader = {
            let shared = shared.clone();
            let (dir, mut scan) = (dir.to_string(), scan.to_string());
            async move {
                loop {
                    let page = scan_page(&shared, &dir, &scan, count).await;
                    let next = match &page {
                        Ok((next, _)) if next != "0" => Some(next.clone()),
                        _ => None,
                    };
                    if send.send((scan, Instant::now(), page)).await.is_err() {
                        return;
                    }
                    match next {
                        Some(next) => scan = next,
                        None => return,
                    }
                }
            }
        };
        ReadAhead {
            dir: dir.to_string(),
            count,
            pages,
            _reader: AbortOnDropHandle::new(tokio::spawn(reader)),
        }
    }

    /// The next page read ahead, if it is the one at `scan` and still fresh.
    async fn take(&mut self, scan: &str) -> Option<Result<Scanned>> {
        let (at, read, page) = self.pages.recv().await?;
        (at == scan && read.elapsed() <= FRESH).then_some(page)
    }
}

/// Reads the page at `HSCAN` cursor `scan` of directory `dir` (id), about `count` entries, with
/// the namespace's epoch right behind it ([`Shared::read_checked`]).
pub(super) async fn scan_page(
    shared: &Shared,
    dir: &str,
    scan: &str,
    count: usize,
) -> Result<Scanned> {
    let key = shared.keys.dir(dir);
    shared
        .read_checked(
            OP,
            &key,
            raw::hscan(&shared.client, &key, scan, count.max(1)),
        )
        .await
}
