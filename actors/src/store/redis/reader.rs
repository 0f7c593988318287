//! Reading a file: its chunks fetched a few at a time ahead of the consumer.
//!
//! A reader captures the file's data id, size and chunk size when it opens, and pins the data id
//! so that this process defers deleting it while the reader lives: a replace or remove in this
//! process never cuts a reader short. A replace by another process deletes the old chunks at
//! once; a reader racing it finds a chunk missing and fails with an `Io` error naming the file,
//! never a short read and never a mix of versions (chunk keys are per data id).
//!
//! Every chunk handed out owns its memory: see [`fetch`].

use std::sync::Arc;

use bytes::Bytes;
use fred::error::Error as FredError;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::gc::Pin;
use super::keys::{Entry, Keys, chunk_count};
use super::raw;
use super::shared::Shared;
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;

/// Chunk reads in flight ahead of the consumer. More only queues replies in Redis's output
/// buffers and the socket while the consumer catches up: with 4 files at once, 8 ahead made
/// Redis spend about 20% more CPU than 4 and the transfer about 15% slower on a 2-core host.
const READ_AHEAD: usize = 4;

/// Where a file's data lives.
#[derive(Debug, Clone)]
pub(crate) struct FileData {
    pub size: u64,
    pub chunk_size: u64,
    pub data: String,
    pub place: String,
    /// A packed file's offset in its pack: its one chunk is that range of the pack's chunk 0.
    pub offset: Option<u64>,
}

impl FileData {
    /// Where `entry`'s data lives; `None` for a directory.
    pub(crate) fn of(entry: &Entry) -> Option<FileData> {
        match entry {
            Entry::Dir { .. } => None,
            file => Self::from_entry(file.clone()).map(|(data, _)| data),
        }
    }

    /// Where `entry`'s data lives, and its modification time (ms); `None` for a directory. Takes
    /// the entry, so that a batched read moves its strings rather than cloning them.
    pub(crate) fn from_entry(entry: Entry) -> Option<(FileData, u64)> {
        match entry {
            Entry::Dir { .. } => None,
            Entry::File {
                size,
                mtime,
                chunk_size,
                data,
                place,
                offset,
            } => Some((
                FileData {
                    size,
                    chunk_size,
                    data,
                    place,
                    offset,
                },
                mtime,
            )),
        }
    }

    /// Bytes in chunk `index`.
    pub(crate) fn chunk_len(&self, index: u64) -> u64 {
        (self.size - index * self.chunk_size).min(self.chunk_size)
    }

    /// The key holding chunk `index`: for a packed file, its pack's one key.
    pub(crate) fn key(&self, keys: &Keys, index: u64) -> String {
        let index = if self.offset.is_some() { 0 } else { index };
        keys.chunk(&self.place, index, &self.data)
    }
}

/// Chunk `index` of `file`, held at `key` ([`FileData::key`]), as the server has it, `None` when
/// the key is gone: a `GET`, or for a packed file a `GETRANGE` of its pack (which answers a
/// missing key with no bytes).
pub(crate) async fn get_chunk(
    shared: &Shared,
    file: &FileData,
    key: &str,
    index: u64,
) -> std::result::Result<Option<Bytes>, FredError> {
    let client = shared.data.next();
    let Some(offset) = file.offset else {
        return raw::get(client, key).await;
    };
    let len = file.chunk_len(index);
    if len == 0 {
        return Ok(Some(Bytes::new()));
    }
    let range = raw::getrange(client, key, offset, offset + len - 1).await?;
    Ok((!range.is_empty()).then_some(range))
}

/// The chunks of `file`: exactly `file.size` bytes or an error.
pub(crate) fn chunks(
    shared: Arc<Shared>,
    path: VPath,
    file: FileData,
    pin: Option<Pin>,
) -> BoxStream<'static, Result<Bytes>> {
    let count = chunk_count(file.size, file.chunk_size);
    futures::stream::iter(0..count)
        .map(move |index| {
            // The pin lives in this closure, so as long as the stream does.
            let _pin = &pin;
            let shared = shared.clone();
            let path = path.clone();
            let file = file.clone();
            async move { fetch(&shared, &path, &file, index, count).await }
        })
        .buffered(READ_AHEAD)
        .boxed()
}

/// Chunk `index` of `count`, checked for its length, in an allocation of its own.
///
/// The reply fred hands back is a slice of its connection's read buffer, which grows by doubling
/// while a 1 MiB reply arrives and then also holds the start of the next one: a consumer that
/// keeps the chunk (a memory mount, anything buffering) would pin about twice its size and pay
/// the page faults for all of it. One copy per chunk is cheaper than those faults (pushing 1 GiB
/// to a memory mount: 1.9 GB resident and 479k page faults without the copy, 1.2 GB and 300k with
/// it, and less CPU).
pub(crate) async fn fetch(
    shared: &Shared,
    path: &VPath,
    file: &FileData,
    index: u64,
    count: u64,
) -> Result<Bytes> {
    const OP: &str = "read";
    let key = file.key(&shared.keys, index);
    let chunk = get_chunk(shared, file, &key, index)
        .await
        .map_err(|e| shared.origin.error(OP, &e, Some(&key)).with_path(path))?;
    let expected = file.chunk_len(index);
    match chunk {
        None if shared.is_lost() => Err(shared.lost_error(OP).with_path(path)),
        None => Err(Error::new(ErrorKind::Io, OP)
            .with_path(path)
            .with_detail(format!(
                "chunk {} of {count} is missing from Redis (key {key}): the file was replaced or \
             removed while being read, or Redis evicted it",
                index + 1
            ))),
        Some(chunk) if chunk.len() as u64 != expected => Err(Error::new(ErrorKind::Io, OP)
            .with_path(path)
            .with_detail(format!(
                "chunk {} of {count} (key {key}) holds {} bytes instead of {expected}",
                index + 1,
                chunk.len()
            ))),
        Some(chunk) => Ok(Bytes::copy_from_slice(&chunk)),
    }
}
