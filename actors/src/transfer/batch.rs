//! Small files in batches: read whole from the source and written whole to the destination,
//! a batch per step ([`BackendHandle::read_files`], [`BackendHandle::write_files`]), so that what
//! a file costs besides its bytes (messages to the actors, round trips to Redis, trips to a
//! blocking thread) is paid once per batch instead of once per file.
//!
//! Rules, the same as for a streamed file: each file commits atomically, and only at the size the
//! scan found (a file that changed size since fails the transfer, "source changed while
//! copying", before anything of its batch is written; one grown past [`SMALL_FILE_MAX`] is not
//! even read, so a batch never holds more than its share of memory); the first failure stops the
//! transfer and what was committed stays; a move deletes a source only once its copy is committed
//! and read back equal, and only if the source is still the version that was read.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::backend::BackendHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{BATCH_FILES, SMALL_FILE_MAX, WholeFile, WholeRead, source_changed};

use super::tree::Tree;
use super::{PlannedSource, Reporter};

/// Most bytes (by scanned size) in one batch: with the transfer's batches in flight, a few MiB.
const BATCH_BYTES: u64 = 2 << 20;

/// What a transfer step moves, by file index in the plan's [`Tree`]: one file, streamed, or a
/// batch of small ones.
pub(super) enum Unit {
    One(usize),
    Batch(Vec<usize>),
}

/// Splits the files of `tree` (in scan order) into steps, in that order, made one at a time as
/// the transfer asks: small files batched, each batch where its first file was, each other file
/// on its own, after the batch it was met in. Scan order keeps a directory's files together, so
/// a batch mostly writes into one directory.
pub(super) fn units(tree: &Tree) -> Units<'_> {
    Units {
        tree,
        next: 0,
        deferred: VecDeque::new(),
    }
}

/// The steps of a tree, made lazily ([`units`]).
pub(super) struct Units<'a> {
    tree: &'a Tree,
    /// The first file not yet in a step.
    next: usize,
    /// Large files met while a batch was filling: their steps come after it. At most
    /// [`BATCH_FILES`], so a batch among many large files closes early rather than hold them all.
    deferred: VecDeque<usize>,
}

impl Iterator for Units<'_> {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        if let Some(i) = self.deferred.pop_front() {
            return Some(Unit::One(i));
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while self.next < self.tree.file_count() {
            let (i, size) = (self.next, self.tree.size(self.next));
            if size > SMALL_FILE_MAX {
                self.next += 1;
                if batch.is_empty() {
                    return Some(Unit::One(i));
                }
                self.deferred.push_back(i);
                if self.deferred.len() >= BATCH_FILES {
                    break;
                }
                continue;
            }
            if batch.len() >= BATCH_FILES || bytes + size > BATCH_BYTES {
                break;
            }
            batch.push(i);
            bytes += size;
            self.next += 1;
        }
        if batch.is_empty() {
            return self.deferred.pop_front().map(Unit::One);
        }
        Some(Unit::Batch(batch))
    }
}

/// Copies (or moves) a batch of small files of `planned`. Returns the files and bytes moved.
pub(super) async fn transfer_batch(
    planned: &PlannedSource,
    moves: bool,
    files: Vec<(VPath, u64)>,
    report: &Reporter<'_>,
) -> Result<(u64, u64)> {
    let (src, dst) = (&planned.from_mount.backend, &planned.to_mount.backend);
    let from: Vec<VPath> = files
        .iter()
        .map(|(rel, _)| rel.rebase(&planned.source))
        .collect();
    let to: Vec<VPath> = files
        .iter()
        .map(|(rel, _)| rel.rebase(&planned.target))
        .collect();
    let pace = report.pace;
    let op = if moves { "mv" } else { "cp" };
    if let Some(first) = to.first() {
        report.meter.file_started(first);
    }
    pace.ready().await;
    let mut whole = Vec::with_capacity(files.len());
    // One per file, in order (a file that is not read whole fails the batch): the version each
    // was read at, for a move's removal of its source.
    let mut versions = Vec::with_capacity(files.len());
    for (i, read) in src
        .read_files(&from, SMALL_FILE_MAX)
        .await
        .into_iter()
        .enumerate()
    {
        let planned = files[i].1;
        match read? {
            WholeRead::Data(data, version) if data.len() as u64 == planned => {
                whole.push((i, data));
                versions.push(version);
            }
            WholeRead::Data(data, _) => {
                return Err(source_changed(op, &from[i], planned, data.len() as u64));
            }
            WholeRead::TooLarge(size) => return Err(source_changed(op, &from[i], planned, size)),
        }
    }
    // The batch writes its bytes at once, so it takes their tokens first.
    let bytes: u64 = whole.iter().map(|(_, data)| data.len() as u64).sum();
    pace.admit(bytes).await;
    // Each file's bytes go to the destination, not a clone of them: a clone of bytes read into
    // a buffer of their own allocates a shared header, which a memory mount would keep for the
    // file's life (32 bytes a file). A move keeps a clone, to check the copy against.
    let mut sent = Vec::with_capacity(whole.len());
    let batch = whole
        .into_iter()
        .map(|(i, data)| {
            sent.push(Sent {
                index: i,
                len: data.len() as u64,
                kept: moves.then(|| data.clone()),
            });
            WholeFile {
                path: to[i].clone(),
                data,
            }
        })
        .collect();
    let mut failure = None;
    let mut committed = Vec::with_capacity(sent.len());
    for (file, result) in sent.into_iter().zip(dst.write_files(batch).await) {
        match result {
            Ok(()) => {
                report.meter.add_bytes(file.len);
                committed.push(file);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let (mut moved_files, mut moved_bytes) = (0, 0);
    if moves {
        pace.ready().await;
        verify_batch(dst, &to, &committed).await?;
    }
    for file in &committed {
        if moves {
            pace.ready().await;
            src.remove_file_if(&from[file.index], &versions[file.index])
                .await?;
        }
        report.done(&to[file.index], file.len);
        moved_files += 1;
        moved_bytes += file.len;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((moved_files, moved_bytes))
}

/// A file of a batch handed to the destination.
struct Sent {
    /// Its index in the batch.
    index: usize,
    len: u64,
    /// For a move: the bytes sent, to check the copy against before the source goes.
    kept: Option<Bytes>,
}

/// Reads the committed files of a moved batch back and checks each against what was sent.
/// Errors: `Io` naming the first that differs, or the read-back's own; either way no source of
/// the batch has been deleted yet, and all are kept.
async fn verify_batch(dst: &BackendHandle, to: &[VPath], committed: &[Sent]) -> Result<()> {
    let paths: Vec<VPath> = committed.iter().map(|f| to[f.index].clone()).collect();
    let back = dst.read_files(&paths, SMALL_FILE_MAX).await;
    for ((path, file), got) in paths.iter().zip(committed).zip(back) {
        match got? {
            WholeRead::Data(data, _) if Some(&data) == file.kept.as_ref() => {}
            _ => {
                return Err(Error::new(ErrorKind::Io, "mv")
                    .with_path(path)
                    .with_detail("the copy does not match what was sent; the source is kept"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, u64)]) -> Tree {
        let mut tree = Tree::directory();
        for (name, size) in files {
            tree.push_file(0, name, *size).unwrap();
        }
        tree
    }

    fn shape(tree: &Tree) -> Vec<String> {
        let name = |i: usize| tree.rel(i).unwrap().to_string();
        units(tree)
            .map(|u| match u {
                Unit::One(i) => name(i),
                Unit::Batch(files) => {
                    let names: Vec<String> = files.into_iter().map(name).collect();
                    format!("[{}]", names.join(" "))
                }
            })
            .collect()
    }

    fn lens(tree: &Tree) -> Vec<usize> {
        units(tree)
            .map(|u| match u {
                Unit::One(_) => 1,
                Unit::Batch(files) => files.len(),
            })
            .collect()
    }

    #[test]
    fn batches_keep_scan_order_and_their_limits() {
        let big = SMALL_FILE_MAX + 1;
        let files = tree(&[("a", 10), ("B", big), ("c", 10), ("D", big)]);
        assert_eq!(shape(&files), ["[/a /c]", "/B", "/D"]);

        let names: Vec<String> = (0..BATCH_FILES + 1).map(|i| format!("f{i}")).collect();
        let many: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        assert_eq!(lens(&tree(&many)), [BATCH_FILES, 1]);

        let per_batch = (BATCH_BYTES / SMALL_FILE_MAX) as usize;
        let names: Vec<String> = (0..=per_batch).map(|i| format!("g{i}")).collect();
        let full: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), SMALL_FILE_MAX)).collect();
        assert_eq!(lens(&tree(&full)), [per_batch, 1]);
    }

    #[test]
    fn a_batch_among_many_large_files_closes_early() {
        let big = SMALL_FILE_MAX + 1;
        let names: Vec<String> = (0..BATCH_FILES + 2).map(|i| format!("L{i}")).collect();
        let mut files = vec![("a", 1)];
        files.extend(names.iter().map(|n| (n.as_str(), big)));
        files.push(("z", 1));
        let got = lens(&tree(&files));
        // The batch of `a` closes once BATCH_FILES large files wait behind it.
        assert_eq!(got[0], 1);
        assert_eq!(got.iter().sum::<usize>(), files.len());
        assert_eq!(got.len(), files.len());
    }
}
