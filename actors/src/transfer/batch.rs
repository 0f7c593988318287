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

use bytes::Bytes;

use crate::backend::BackendHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{BATCH_FILES, SMALL_FILE_MAX, WholeFile, WholeRead, source_changed};

use super::{PlannedSource, Reporter};

/// Most bytes (by scanned size) in one batch: with the transfer's batches in flight, a few MiB.
const BATCH_BYTES: u64 = 2 << 20;

/// What a transfer step moves: one file, streamed, or a batch of small ones.
pub(super) enum Unit {
    One(VPath, u64),
    Batch(Vec<(VPath, u64)>),
}

/// Splits `files` (relative paths and scanned sizes, in scan order) into steps, in that order:
/// small files batched, each batch where its first file was, each other file on its own. Scan
/// order keeps a directory's files together, so a batch mostly writes into one directory.
pub(super) fn units(files: &[(VPath, u64)]) -> Vec<Unit> {
    let mut units = Vec::new();
    // The batch being filled: its place in `units`, and its bytes so far.
    let mut open: Option<(usize, u64)> = None;
    for (rel, size) in files {
        if *size > SMALL_FILE_MAX {
            units.push(Unit::One(rel.clone(), *size));
            continue;
        }
        let (at, bytes) = match open {
            Some((at, bytes))
                if batch_len(&units[at]) < BATCH_FILES && bytes + size <= BATCH_BYTES =>
            {
                (at, bytes)
            }
            _ => {
                units.push(Unit::Batch(Vec::new()));
                (units.len() - 1, 0)
            }
        };
        if let Unit::Batch(batch) = &mut units[at] {
            batch.push((rel.clone(), *size));
        }
        open = Some((at, bytes + size));
    }
    units
}

fn batch_len(unit: &Unit) -> usize {
    match unit {
        Unit::Batch(files) => files.len(),
        Unit::One(..) => 1,
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
    let batch = whole
        .iter()
        .map(|(i, data)| WholeFile {
            path: to[*i].clone(),
            data: data.clone(),
        })
        .collect();
    let mut failure = None;
    let mut committed = Vec::with_capacity(whole.len());
    for ((i, data), result) in whole.into_iter().zip(dst.write_files(batch).await) {
        match result {
            Ok(()) => {
                report.meter.add_bytes(data.len() as u64);
                committed.push((i, data));
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
    for (i, data) in &committed {
        if moves {
            pace.ready().await;
            src.remove_file_if(&from[*i], &versions[*i]).await?;
        }
        report.done(&to[*i], data.len() as u64);
        moved_files += 1;
        moved_bytes += data.len() as u64;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((moved_files, moved_bytes))
}

/// Reads the committed files of a moved batch back and checks each against what was sent.
/// Errors: `Io` naming the first that differs, or the read-back's own; either way no source of
/// the batch has been deleted yet, and all are kept.
async fn verify_batch(
    dst: &BackendHandle,
    to: &[VPath],
    committed: &[(usize, Bytes)],
) -> Result<()> {
    let paths: Vec<VPath> = committed.iter().map(|(i, _)| to[*i].clone()).collect();
    let back = dst.read_files(&paths, SMALL_FILE_MAX).await;
    for ((path, (_, sent)), got) in paths.iter().zip(committed).zip(back) {
        match got? {
            WholeRead::Data(data, _) if data == *sent => {}
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

    fn shape(units: &[Unit]) -> Vec<String> {
        units
            .iter()
            .map(|u| match u {
                Unit::One(rel, _) => rel.to_string(),
                Unit::Batch(files) => {
                    let names: Vec<String> = files.iter().map(|(r, _)| r.to_string()).collect();
                    format!("[{}]", names.join(" "))
                }
            })
            .collect()
    }

    #[test]
    fn batches_keep_scan_order_and_their_limits() {
        let p = |s: &str| VPath::parse(s).unwrap();
        let big = SMALL_FILE_MAX + 1;
        let files = vec![(p("/a"), 10), (p("/B"), big), (p("/c"), 10), (p("/D"), big)];
        assert_eq!(shape(&units(&files)), ["[/a /c]", "/B", "/D"]);

        let many: Vec<(VPath, u64)> = (0..BATCH_FILES + 1)
            .map(|i| (p(&format!("/f{i}")), 1))
            .collect();
        let got = units(&many);
        assert_eq!(got.len(), 2);
        assert_eq!(batch_len(&got[0]), BATCH_FILES);

        let per_batch = (BATCH_BYTES / SMALL_FILE_MAX) as usize;
        let full: Vec<(VPath, u64)> = (0..=per_batch)
            .map(|i| (p(&format!("/g{i}")), SMALL_FILE_MAX))
            .collect();
        let got = units(&full);
        assert_eq!(got.len(), 2);
        assert_eq!(batch_len(&got[0]), per_batch);
    }
}
