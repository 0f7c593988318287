//! Opening for reading. A file larger than a chunk streams, each chunk read on the blocking pool
//! into a reused buffer ([`super::buffers`]); a small file is read whole with its open, so that
//! it costs one trip to a blocking thread. A file that ends before the size it had when opened
//! is an error, never a short read.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cap_std::fs::Dir;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{FileReader, WholeRead};

use super::buffers::Buffers;
use super::errors::{error, io_error, join_error, truncated};
use super::sandbox::{OpenDir, open_dir, open_listed_in, open_regular, rel_path, split_parent};
use super::staging::SMALL_FILE;

/// [`Store::start_open_read`](crate::store::Store::start_open_read) of `rel`: opens it, and
/// reads a small file whole while at it, so that its one chunk needs no other trip to a blocking
/// thread. A blocking call.
pub(super) fn open_read_blocking(
    root: &Dir,
    path: &VPath,
    rel: &Path,
    buffers: Buffers,
    chunk_size: usize,
) -> Result<FileReader> {
    const OP: &str = "read";
    let (mut file, size, version) = open_regular(root, OP, path, rel)?;
    if size > chunk_size.min(SMALL_FILE) as u64 {
        // A stream reads the file once, front to back: the kernel may read ahead further than
        // it dares for a file it knows nothing of. Advice only: a refusal changes nothing.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        return Ok(FileReader {
            size,
            version,
            chunks: chunk_stream(file, size, buffers, chunk_size, path.clone()),
        });
    }
    let chunk = read_whole_file(&mut file, size, path)?;
    let chunks = if chunk.is_empty() {
        Vec::new()
    } else {
        vec![Ok(chunk)]
    };
    Ok(FileReader {
        size,
        version,
        chunks: futures::stream::iter(chunks).boxed(),
    })
}

/// [`Store::start_read_files`](crate::store::Store::start_read_files): reads each of `paths`
/// whole if it holds at most `limit` bytes, each opened as a file its caller listed
/// ([`open_listed_in`]). A file's parent directory stays open for the next file if it is in the
/// same one (a batch mostly reads one directory), which saves opening and closing it for each
/// file. A blocking call.
pub(super) fn read_files_blocking(
    root: &Dir,
    paths: &[VPath],
    limit: u64,
) -> Vec<Result<WholeRead>> {
    let mut parent: Option<(PathBuf, OpenDir<'_>)> = None;
    paths
        .iter()
        .map(|path| read_whole_in(root, &mut parent, path, limit))
        .collect()
}

fn read_whole_in<'a>(
    root: &'a Dir,
    parent: &mut Option<(PathBuf, OpenDir<'a>)>,
    path: &VPath,
    limit: u64,
) -> Result<WholeRead> {
    const OP: &str = "read";
    if path.is_root() {
        return Err(error(ErrorKind::IsADirectory, OP, path));
    }
    let rel = rel_path(OP, path)?;
    let (dir_rel, _) = split_parent(&rel);
    if parent.as_ref().is_none_or(|(open, _)| open != dir_rel) {
        *parent = None;
        let dir = open_dir(root, dir_rel).map_err(io_error(OP, path))?;
        *parent = Some((dir_rel.to_path_buf(), dir));
    }
    let dir = &parent.as_ref().expect("opened above").1;
    let (mut file, size, version) = open_listed_in(root, dir, OP, path, &rel)?;
    if size > limit {
        return Ok(WholeRead::TooLarge(size));
    }
    Ok(WholeRead::Data(
        read_listed(&mut file, size, path)?,
        version,
    ))
}

/// [`read_whole_file`] of a file [`open_listed_in`] left non-blocking: where the filesystem
/// honours the flag (`WouldBlock`), it is cleared and the file read again from its start.
fn read_listed(file: &mut std::fs::File, size: u64, path: &VPath) -> Result<Bytes> {
    let data = match read_chunk(file, size as usize) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            rustix::fs::fcntl_setfl(&*file, rustix::fs::OFlags::empty())
                .and_then(|()| rustix::fs::seek(&*file, rustix::fs::SeekFrom::Start(0)).map(drop))
                .map_err(|e| io_error("read", path)(e.into()))?;
            read_chunk(file, size as usize)
        }
        read => read,
    };
    whole(data.map_err(io_error("read", path))?, size, path)
}

/// The `size` bytes of open `file`, all of them. Errors: `Io` when it holds fewer now (it was
/// truncated since its size was taken). A blocking call.
pub(super) fn read_whole_file(file: &mut std::fs::File, size: u64, path: &VPath) -> Result<Bytes> {
    whole(
        read_chunk(file, size as usize).map_err(io_error("read", path))?,
        size,
        path,
    )
}

/// `data` read from a file of `size` bytes, if it is all of them; `Io` naming the file that
/// ended early otherwise.
fn whole(data: Bytes, size: u64, path: &VPath) -> Result<Bytes> {
    if (data.len() as u64) < size {
        return Err(truncated(path, data.len() as u64, size));
    }
    Ok(data)
}

/// The chunks of an open file: exactly `size` bytes, each chunk read on the blocking pool.
pub(super) fn chunk_stream(
    file: std::fs::File,
    size: u64,
    buffers: Buffers,
    chunk_size: usize,
    path: VPath,
) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::try_unfold((file, 0u64), move |(mut file, done)| {
        let path = path.clone();
        let buffers = buffers.clone();
        async move {
            if done >= size {
                return Ok(None);
            }
            let want = (size - done).min(chunk_size as u64) as usize;
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = buffers.read(&mut file, want);
                (file, chunk)
            })
            .await
            .map_err(|e| join_error("read", &path, e))?;
            let chunk = chunk.map_err(|e| Error::from_io("read", e).with_path(&path))?;
            if chunk.len() < want {
                return Err(truncated(&path, done + chunk.len() as u64, size));
            }
            Ok(Some((chunk, (file, done + want as u64))))
        }
    })
    .boxed()
}

/// Reads the next `want` bytes, fewer only at end of file.
pub(super) fn read_chunk(file: &mut std::fs::File, want: usize) -> io::Result<Bytes> {
    // `read_to_end` into reserved capacity fills it without zeroing it first, and the Vec becomes
    // the Bytes without a copy.
    let mut buf = Vec::with_capacity(want);
    file.take(want as u64).read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}
