//! Writing a file: chunks `SET` under a fresh data id, several in flight, then one commit script.
//!
//! [`RedisWriter::write`] cuts what it is given into chunks of the store's chunk size (whole
//! chunks pass through without a copy) and starts a `SET` for each as a task of its own, keeping
//! at most `WRITE_AHEAD` in flight: a write returns as soon as its chunk is on its way, so the
//! caller's next read overlaps Redis's work and no chunk waits for the one before. `finish`
//! flushes the last partial chunk and waits for every `SET`. A `SET` of a chunk is idempotent, so
//! fred may re-send it after a reconnect.
//!
//! Until [`Store::start_commit`](crate::store::Store::start_commit) switches the file to the new
//! data id, nothing refers to the chunks but the data's `pending` member. A writer or staged file
//! dropped without commit deletes its chunks in the background once its in-flight `SET`s have
//! ended, then the member; if the process dies first, a sweep does it.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use fred::error::Error as FredError;
use fred::prelude::KeysInterface;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::task::JoinHandle;

use super::COPY_CONCURRENCY;
use super::gc::{Pin, discard};
use super::keys::{Entry, chunk_count};
use super::reader::{FileData, get_chunk};
use super::shared::Shared;
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::FileWriter;

/// Chunk `SET`s in flight per writer.
pub(crate) const WRITE_AHEAD: usize = 8;

type Inflight = FuturesUnordered<JoinHandle<Result<(), FredError>>>;

/// An append's old file, copied in front of the new bytes before the first of them.
pub(crate) struct Prefill {
    pub file: FileData,
    pub pin: Option<Pin>,
}

/// A write in progress. See the module docs.
pub struct RedisWriter {
    shared: Arc<Shared>,
    /// Store-local destination, for errors.
    path: VPath,
    data: String,
    place: String,
    member: String,
    buf: BytesMut,
    /// Chunks started so far: `0..next` may exist.
    next: u64,
    size: u64,
    inflight: Inflight,
    prefill: Option<Prefill>,
    /// Whether dropping this writer must discard its chunks (false once `finish` handed them on).
    armed: bool,
}

impl RedisWriter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        path: VPath,
        data: String,
        place: String,
        member: String,
        prefill: Option<Prefill>,
    ) -> RedisWriter {
        RedisWriter {
            buf: BytesMut::new(),
            shared,
            path,
            data,
            place,
            member,
            next: 0,
            size: 0,
            inflight: FuturesUnordered::new(),
            prefill,
            armed: true,
        }
    }

    fn chunk_size(&self) -> usize {
        self.shared.chunk_size
    }

    fn error(&self, err: &FredError, key: Option<&str>) -> Error {
        self.shared
            .origin
            .error("write", err, key)
            .with_path(&self.path)
    }

    /// Waits for one in-flight `SET`.
    async fn reap_one(&mut self) -> Result<()> {
        match self.inflight.next().await {
            None => Ok(()),
            Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(self.error(&e, None)),
            Some(Err(join)) => Err(Error::new(ErrorKind::Io, "write")
                .with_path(&self.path)
                .with_detail(format!("a chunk upload task failed: {join}"))),
        }
    }

    /// Reports a `SET` that already failed, without waiting for the others.
    fn reap_ready(&mut self) -> Result<()> {
        while let Some(Some(done)) = self.inflight.next().now_or_never() {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.error(&e, None)),
                Err(join) => {
                    return Err(Error::new(ErrorKind::Io, "write")
                        .with_path(&self.path)
                        .with_detail(format!("a chunk upload task failed: {join}")));
                }
            }
        }
        Ok(())
    }

    /// Starts the `SET` of the next chunk, once fewer than [`WRITE_AHEAD`] are in flight.
    async fn send(&mut self, chunk: Bytes) -> Result<()> {
        if self.shared.is_lost() {
            // Nothing more into a namespace this store no longer has: its commit would fail.
            return Err(self.shared.lost_error("write").with_path(&self.path));
        }
        self.reap_ready()?;
        while self.inflight.len() >= WRITE_AHEAD {
            self.reap_one().await?;
        }
        let key = self.shared.keys.chunk(&self.place, self.next, &self.data);
        self.next += 1;
        let client = self.shared.data.next().clone();
        self.inflight.push(
            self.shared
                .runtime
                .spawn(async move { client.set::<(), _, _>(key, chunk, None, None, false).await }),
        );
        Ok(())
    }

    /// Appends bytes to the chunk stream.
    async fn push(&mut self, mut chunk: Bytes) -> Result<()> {
        let cs = self.chunk_size();
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            if self.buf.is_empty() && chunk.len() >= cs {
                let whole = chunk.split_to(cs);
                self.send(whole).await?;
                continue;
            }
            let take = (cs - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk[..take]);
            chunk.advance(take);
            if self.buf.len() == cs {
                let full = std::mem::replace(&mut self.buf, BytesMut::new()).freeze();
                self.send(full).await?;
            }
        }
        Ok(())
    }

    /// For an append: puts the old file's bytes in front, server-side when the chunk sizes match.
    async fn run_prefill(&mut self) -> Result<()> {
        let Some(Prefill { file: old, pin }) = self.prefill.take() else {
            return Ok(());
        };
        let cs = self.chunk_size() as u64;
        if old.offset.is_none() && old.chunk_size == cs && old.place == self.place {
            let whole = old.size / cs;
            // Counted before the copy, so that a failed copy's chunks are discarded too.
            self.next = whole;
            copy_chunks(
                &self.shared,
                &self.path,
                &old.place,
                &old.data,
                &self.data,
                0..whole,
            )
            .await?;
            self.size = whole * cs;
            if old.size % cs != 0 {
                let tail = read_chunk(&self.shared, &self.path, &old, whole).await?;
                self.buf.extend_from_slice(&tail);
                self.size += tail.len() as u64;
            }
        } else {
            for index in 0..chunk_count(old.size, old.chunk_size) {
                let chunk = read_chunk(&self.shared, &self.path, &old, index).await?;
                self.push(chunk).await?;
            }
        }
        drop(pin);
        Ok(())
    }
}

/// Chunk `index` of an append's old file. Errors: `Io` when it is gone.
async fn read_chunk(shared: &Shared, path: &VPath, old: &FileData, index: u64) -> Result<Bytes> {
    let key = old.key(&shared.keys, index);
    let chunk = get_chunk(shared, old, &key, index)
        .await
        .map_err(|e| shared.origin.error("write", &e, Some(&key)).with_path(path))?;
    chunk.ok_or_else(|| {
        Error::new(ErrorKind::Io, "write")
            .with_path(path)
            .with_detail(
                "the file being appended to was replaced or removed meanwhile (a chunk is gone)",
            )
    })
}

/// Copies chunks `range` of data `from` to data `to`, both placed at `place`, with `COPY`: each
/// pair of keys shares a slot, so this runs server-side on a cluster too. Errors: `Io` naming
/// `path` when a source chunk is gone.
pub(crate) async fn copy_chunks(
    shared: &Shared,
    path: &VPath,
    place: &str,
    from: &str,
    to: &str,
    range: std::ops::Range<u64>,
) -> Result<()> {
    futures::stream::iter(range)
        .map(|index| async move {
            let src = shared.keys.chunk(place, index, from);
            let dst = shared.keys.chunk(place, index, to);
            let copied: i64 = shared
                .client
                .copy(&src, &dst, None, true)
                .await
                .map_err(|e| shared.origin.error("cp", &e, Some(&src)).with_path(path))?;
            if copied == 1 {
                Ok(())
            } else {
                Err(Error::new(ErrorKind::Io, "cp")
                    .with_path(path)
                    .with_detail(format!(
                        "chunk {} of the source is gone (key {src}): it was replaced or removed \
                     during the copy",
                        index + 1
                    )))
            }
        })
        .buffer_unordered(COPY_CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// Copies packed file `from` to chunk 0 of data `to` at `place`: its range of the pack is read and
/// written back as a key of its own (the pack belongs to the files in it). Errors: `Io` naming
/// `path` when the pack is gone.
pub(crate) async fn copy_packed(
    shared: &Shared,
    path: &VPath,
    from: &FileData,
    place: &str,
    to: &str,
) -> Result<()> {
    let key = from.key(&shared.keys, 0);
    let bytes = get_chunk(shared, from, &key, 0)
        .await
        .map_err(|e| shared.origin.error("cp", &e, Some(&key)).with_path(path))?;
    let Some(bytes) = bytes.filter(|b| b.len() as u64 == from.size) else {
        return Err(Error::new(ErrorKind::Io, "cp")
            .with_path(path)
            .with_detail("the source's data is gone: it was replaced or removed during the copy"));
    };
    let key = shared.keys.chunk(place, 0, to);
    shared
        .data
        .next()
        .set::<(), _, _>(&key, bytes, None, None, false)
        .await
        .map_err(|e| shared.origin.error("cp", &e, Some(&key)).with_path(path))
}

impl FileWriter for RedisWriter {
    type Staged = RedisStaged;

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.run_prefill().await?;
        if chunk.is_empty() {
            return Ok(());
        }
        self.push(chunk).await
    }

    async fn finish(mut self) -> Result<RedisStaged> {
        self.run_prefill().await?;
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.send(last).await?;
        }
        while !self.inflight.is_empty() {
            self.reap_one().await?;
        }
        self.armed = false;
        Ok(RedisStaged {
            shared: self.shared.clone(),
            data: std::mem::take(&mut self.data),
            place: std::mem::take(&mut self.place),
            member: std::mem::take(&mut self.member),
            size: self.size,
            chunk_size: self.shared.chunk_size as u64,
            chunks: self.next,
            armed: true,
        })
    }
}

impl Drop for RedisWriter {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let inflight = std::mem::take(&mut self.inflight);
        discard(
            &self.shared,
            std::mem::take(&mut self.member),
            self.next,
            inflight.for_each(|_| async {}),
        );
    }
}

/// Staged data, sealed and waiting for its commit. Dropped uncommitted, it deletes its chunks.
pub struct RedisStaged {
    shared: Arc<Shared>,
    data: String,
    place: String,
    member: String,
    size: u64,
    chunk_size: u64,
    /// Chunk keys `0..chunks` may exist.
    chunks: u64,
    armed: bool,
}

impl RedisStaged {
    /// Staged data for a copy of `source`, whose chunks the copy is about to create.
    pub(crate) fn for_copy(
        shared: Arc<Shared>,
        data: String,
        place: String,
        member: String,
        source: &Entry,
    ) -> RedisStaged {
        let (size, chunk_size) = match source {
            Entry::File {
                size, chunk_size, ..
            } => (*size, *chunk_size),
            Entry::Dir { .. } => (0, 0),
        };
        RedisStaged {
            shared,
            data,
            place,
            member,
            size,
            chunk_size,
            chunks: chunk_count(size, chunk_size),
            armed: true,
        }
    }

    pub(crate) fn commit_args(&self, path: &VPath) -> Vec<String> {
        vec![
            path.as_str().to_string(),
            self.member.clone(),
            self.size.to_string(),
            self.chunk_size.to_string(),
            self.data.clone(),
            self.place.clone(),
        ]
    }

    pub(crate) fn member(&self) -> &str {
        &self.member
    }

    /// The commit happened: the data belongs to the file now.
    pub(crate) fn committed(mut self) {
        self.armed = false;
        self.shared.let_go(&self.member);
    }

    /// The commit's outcome is unknown: keep the chunks (the file may use them) and stop
    /// vouching for them, so that a sweep deletes them if the commit did not happen.
    pub(crate) fn abandon(mut self) {
        self.armed = false;
        self.shared.let_go(&self.member);
    }
}

impl Drop for RedisStaged {
    fn drop(&mut self) {
        if self.armed {
            discard(
                &self.shared,
                std::mem::take(&mut self.member),
                self.chunks,
                async {},
            );
        }
    }
}
