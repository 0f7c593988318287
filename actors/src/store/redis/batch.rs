//! Small files in batches: [`read_files`] and [`write_files`], a few round trips per batch
//! whatever its length, where one file at a time costs a few per file.
//!
//! A batched read is one script that resolves every parent directory (`dirs`), a read of each
//! directory's entries from the client, then the chunk `GET`s of every file at once, which fred
//! pipelines. A batched write is one script that registers each file's new data in `pending`
//! (`stage_files`), the chunk `SET`s of every file at once, then one script that checks and
//! commits each file (`commit_files`). Each file keeps the rules of its one-file form: its own
//! checks and errors, an atomic switch to its new data, the old data retired, its staged chunks
//! discarded when it fails or the batch is dropped. One difference: a file's destination is
//! checked at its commit only, not before its data moves, which would cost every file a second
//! walk of its path in Lua.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use fred::error::Error as FredError;
use fred::prelude::{Client, KeysInterface, Value};
use tokio::task::JoinHandle;

use super::gc::{Pin, discard, retire};
use super::keys::{Entry, chunk_count};
use super::pack::{self, PACK_BYTES};
use super::raw;
use super::reader::{FileData, fetch};
use super::scripts::SCRIPTS;
use super::shared::{Shared, integer, text};
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{Version, WholeFile, WholeRead};

/// Files per script call: a script's arguments and reply stay a few thousand values.
const SCRIPT_FILES: usize = 256;

/// Reads each of `paths` whole if it holds at most `limit` bytes. See
/// [`crate::store::Store::start_read_files`].
pub(crate) async fn read_files(
    shared: Arc<Shared>,
    paths: Vec<VPath>,
    limit: u64,
) -> Vec<Result<WholeRead>> {
    let mut out = Vec::with_capacity(paths.len());
    for part in paths.chunks(SCRIPT_FILES) {
        if part.iter().any(VPath::is_root) {
            // The root is a directory: never sent, so that the scripts see parent and name.
            for path in part {
                out.extend(if path.is_root() {
                    vec![Err(
                        Error::new(ErrorKind::IsADirectory, "read").with_path(path)
                    )]
                } else {
                    read_part(&shared, std::slice::from_ref(path), limit).await
                });
            }
        } else {
            out.extend(read_part(&shared, part, limit).await);
        }
    }
    out
}

/// [`read_files`] of at most [`SCRIPT_FILES`] paths.
async fn read_part(shared: &Arc<Shared>, paths: &[VPath], limit: u64) -> Vec<Result<WholeRead>> {
    const OP: &str = "read";
    let entries = match entries(shared, paths).await {
        Ok(entries) => entries,
        Err(e) => return for_each(paths, e),
    };
    // Each path's file, or its outcome when there is nothing to fetch.
    let mut out: Vec<Option<Result<WholeRead>>> = Vec::with_capacity(paths.len());
    let mut found: Vec<Option<(FileData, Version)>> = Vec::with_capacity(paths.len());
    for (path, entry) in paths.iter().zip(entries) {
        let (answer, to_read) = match entry {
            Err(e) => (Some(Err(e.with_path(path))), None),
            Ok(entry) => match FileData::from_entry(entry) {
                Some((file, mtime)) if file.size == 0 => {
                    // Nothing to fetch (an empty file has no data): answered here.
                    let version = Version::redis(0, mtime, &file.data);
                    (Some(Ok(WholeRead::Data(Bytes::new(), version))), None)
                }
                Some((file, mtime)) if file.size <= limit => {
                    let version = Version::redis(file.size, mtime, &file.data);
                    (None, Some((file, version)))
                }
                Some((file, _)) => (Some(Ok(WholeRead::TooLarge(file.size))), None),
                None => {
                    let e = Error::new(ErrorKind::IsADirectory, OP).with_path(path);
                    (Some(Err(e)), None)
                }
            },
        };
        out.push(answer);
        found.push(to_read);
    }
    // In this process, a replace or remove now waits for these reads before deleting: a pin for
    // each data id read, however many files of the batch share it (a pack holds hundreds).
    // A pack's files come together, so most repeat the id before them: skipping those first
    // leaves a few ids to sort rather than one per file.
    let mut data_ids: Vec<&str> = Vec::new();
    for (file, _) in found.iter().flatten() {
        if data_ids.last() != Some(&file.data.as_str()) {
            data_ids.push(&file.data);
        }
    }
    data_ids.sort_unstable();
    data_ids.dedup();
    let _pins: Vec<Option<Pin>> = data_ids.into_iter().map(|data| shared.pin(data)).collect();

    // Packed files by runs of their packs, one `GETRANGE` each; the others chunk by chunk.
    let (runs, alone) = runs(&found);
    // Every run on one data connection: queued together, fred writes them in one go and Redis
    // reads them in one, where a connection each cost a write and a wakeup on both sides.
    let client = shared.data.next();
    let run_reads = runs
        .iter()
        .map(|run| read_run(shared, client, paths, &found, run));
    let alone_reads = alone.into_iter().map(|i| {
        let (file, _) = found[i].as_ref().expect("a file to read");
        async move { (i, read_whole(shared, &paths[i], file).await) }
    });
    let (run_bytes, alone_bytes) = futures::future::join(
        futures::future::join_all(run_reads),
        futures::future::join_all(alone_reads),
    )
    .await;
    for (i, bytes) in run_bytes.into_iter().flatten().chain(alone_bytes) {
        let version = found[i].take().expect("read once").1;
        out[i] = Some(bytes.map(|data| WholeRead::Data(data, version)));
    }
    out.into_iter()
        .map(|r| r.expect("every path answered"))
        .collect()
}

/// A directory whose entries are all read when a batch asks for at least one in this many of
/// them: a small directory's hash is a listpack, in which each `HMGET` field is a scan of the
/// whole hash (about 1.6 µs a field in a hash of 200 files), while `HGETALL` reads it once.
const WHOLE_DIR_SHARE: usize = 4;

/// The entry of each of `paths` (none the root), or the error to answer it with (without its
/// path). Errors of the whole call: the script's, or a reply of the wrong shape.
///
/// One script resolves each parent directory once (`dirs`), then each directory's entries are
/// read from the client, side by side: `HMGET` of the names asked, or `HGETALL` when the batch
/// asks for a good share of the directory ([`WHOLE_DIR_SHARE`]). Reading them inside the script
/// cost more than 3 µs a file, mostly in turning values into Lua and back. As with `openat` on a
/// directory opened before, a directory renamed between the two steps is read where it went; one
/// removed has no entries left.
async fn entries(shared: &Shared, paths: &[VPath]) -> Result<Vec<Result<Entry>>> {
    const OP: &str = "read";
    // The parent directories in order of first appearance, each with its paths' indexes. A
    // batch's paths come a directory at a time, so most share the previous path's parent.
    let mut parents: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (i, path) in paths.iter().enumerate() {
        let parent = path.parent_str().unwrap_or("/");
        let slot = match parents.last() {
            Some((last, _)) if *last == parent => parents.len() - 1,
            _ => *at.entry(parent).or_insert_with(|| {
                parents.push((parent, Vec::new()));
                parents.len() - 1
            }),
        };
        parents[slot].1.push(i);
    }
    let args = parents
        .iter()
        .map(|(parent, _)| parent.to_string())
        .collect();
    let reply = shared.run(OP, &SCRIPTS.dirs, args).await?;
    let dirs = triples(&reply, parents.len()).ok_or_else(|| shared.origin.bad_reply(OP, "dirs"))?;
    let lookups = parents
        .iter()
        .zip(&dirs)
        .map(|((_, members), (code, id, count))| {
            let names: Vec<&str> = members
                .iter()
                .map(|&i| paths[i].file_name().unwrap_or_default())
                .collect();
            async move {
                if !code.is_empty() {
                    let e = shared.origin.script_error(OP, code, id);
                    return names.iter().map(|_| Err(e.clone())).collect();
                }
                dir_entries(shared, id, &names, *count).await
            }
        });
    let looked = futures::future::join_all(lookups).await;
    let mut out: Vec<Option<Result<Entry>>> = paths.iter().map(|_| None).collect();
    for ((_, members), entries) in parents.iter().zip(looked) {
        for (&i, entry) in members.iter().zip(entries) {
            out[i] = Some(entry);
        }
    }
    Ok(out
        .into_iter()
        .map(|e| e.expect("every path is in one directory"))
        .collect())
}

/// The entries `names` of directory `id`, which held `count` entries: each the file or
/// directory there, `NotFound` when there is none, or the error of the read.
async fn dir_entries(shared: &Shared, id: &str, names: &[&str], count: u64) -> Vec<Result<Entry>> {
    const OP: &str = "read";
    let key = shared.keys.dir(id);
    let values = if (names.len() * WHOLE_DIR_SHARE) as u64 >= count {
        // A missing hash (the directory went meanwhile) has no fields: every name is missing.
        raw::hgetall(&shared.client, &key).await.map(|all| {
            let mut wanted: HashMap<&[u8], usize> = HashMap::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                wanted.insert(name.as_bytes(), i);
            }
            let mut values = vec![None; names.len()];
            for (field, value) in all {
                if let Some(&i) = wanted.get(field.as_ref()) {
                    values[i] = Some(value);
                }
            }
            values
        })
    } else {
        raw::hmget(&shared.client, &key, names).await
    };
    let values = match values {
        Ok(values) => values,
        Err(e) => {
            let e = if shared.is_lost() {
                shared.lost_error(OP)
            } else {
                shared.origin.error(OP, &e, Some(&key))
            };
            return names.iter().map(|_| Err(e.clone())).collect();
        }
    };
    // A name is missing: was the namespace lost since the script resolved the directory?
    if values.iter().any(Option::is_none)
        && let Err(e) = shared.check_epoch(OP).await
    {
        return names.iter().map(|_| Err(e.clone())).collect();
    }
    names
        .iter()
        .zip(values)
        .map(|(name, value)| match value {
            None => Err(shared.origin.script_error(OP, "ENOENT", "")),
            Some(value) => std::str::from_utf8(&value)
                .ok()
                .and_then(Entry::parse)
                .ok_or_else(|| {
                    let field = format!("{key} field {name}");
                    shared.origin.script_error(OP, "CORRUPT", &field)
                }),
        })
        .collect()
}

/// Packed files whose ranges lie this close in one pack are read in one `GETRANGE`: fetching
/// the bytes between costs less than another request.
const RUN_GAP: u64 = 16 << 10;

/// Most bytes one run's `GETRANGE` spans. Larger replies cost the client more per byte (fred's
/// read buffer starts at 8 KiB and doubles, copying what it holds, until a reply fits), smaller
/// ones more requests (each flushed on its own). The balance moved as the rest got cheaper:
/// with whole-pack runs (about 500 KiB) a push of 3 x 20,000 files of 4 KiB into a memory mount
/// once took 950-980 ms of CPU against 460-590 ms with runs of 128 KiB; after this wave's other
/// changes, in three sets of eight to ten alternating runs, 256 KiB took 3-14% less time than
/// 128 KiB (sums 0.465 / 0.477 / 0.486 s against 0.479 / 0.536 / 0.566 s) and 6-18% less Redis
/// CPU; 512 KiB, in one set, about as fast as 256 KiB.
const RUN_BYTES: u64 = 256 << 10;

/// Splits the files of a batched read (`None`: nothing to read) into runs of packed files, each
/// a list of indexes in offset order within one pack, and the indexes of the others.
fn runs(found: &[Option<(FileData, Version)>]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut packed: Vec<usize> = Vec::new();
    let mut alone = Vec::new();
    for (i, f) in found.iter().enumerate() {
        match f {
            Some((file, _)) if file.offset.is_some() && file.size > 0 => packed.push(i),
            Some(_) => alone.push(i),
            None => {}
        }
    }
    let at = |i: usize| {
        let file = &found[i].as_ref().expect("a packed file").0;
        (file.data.as_str(), file.offset.unwrap_or(0), file.size)
    };
    packed.sort_by(|&a, &b| {
        let (pa, oa, _) = at(a);
        let (pb, ob, _) = at(b);
        (pa, oa).cmp(&(pb, ob))
    });
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut end = 0;
    for i in packed {
        let (pack, offset, size) = at(i);
        match runs.last_mut() {
            Some(run)
                if at(run[0]).0 == pack
                    && offset <= end + RUN_GAP
                    && offset + size - at(run[0]).1 <= RUN_BYTES =>
            {
                run.push(i);
                end = end.max(offset + size);
            }
            _ => {
                runs.push(vec![i]);
                end = offset + size;
            }
        }
    }
    (runs, alone)
}

/// Reads one run of packed files with one `GETRANGE`: each file's bytes in an allocation of its
/// own (see [`fetch`]), or the error of a pack that is gone.
async fn read_run(
    shared: &Shared,
    client: &Client,
    paths: &[VPath],
    found: &[Option<(FileData, Version)>],
    run: &[usize],
) -> Vec<(usize, Result<Bytes>)> {
    const OP: &str = "read";
    let file = |i: usize| &found[i].as_ref().expect("a packed file").0;
    let first = file(run[0]);
    let start = first.offset.unwrap_or(0);
    let end = run
        .iter()
        .map(|&i| file(i).offset.unwrap_or(0) + file(i).size)
        .max()
        .unwrap_or(start);
    let key = first.key(&shared.keys, 0);
    // The raw frame, not fred's `GETRANGE`, which scans every byte for UTF-8. fred flushes the
    // socket after each custom command (a `writev` per run, 1,372 a push of 20,000 files of
    // 4 KiB instead of 747), but the scan cost more: that push took 6% less time and 3% less
    // client CPU (medians of twelve alternating runs), and Redis no more CPU.
    let range = raw::getrange(client, &key, start, end - 1).await;
    run.iter()
        .map(|&i| {
            let f = file(i);
            let from = (f.offset.unwrap_or(0) - start) as usize;
            let bytes = match &range {
                Err(e) => Err(shared.origin.error(OP, e, Some(&key)).with_path(&paths[i])),
                Ok(range) if range.len() >= from + f.size as usize => {
                    Ok(Bytes::copy_from_slice(&range[from..from + f.size as usize]))
                }
                Ok(_) if shared.is_lost() => Err(shared.lost_error(OP).with_path(&paths[i])),
                Ok(_) => Err(Error::new(ErrorKind::Io, OP)
                    .with_path(&paths[i])
                    .with_detail(format!(
                        "its data is missing from Redis (key {key}): the file was replaced or \
                         removed while being read, or Redis evicted it"
                    ))),
            };
            (i, bytes)
        })
        .collect()
}

/// Every byte of `file`, chunk by chunk.
async fn read_whole(shared: &Shared, path: &VPath, file: &FileData) -> Result<Bytes> {
    let count = chunk_count(file.size, file.chunk_size);
    let chunks = futures::future::try_join_all(
        (0..count).map(|index| fetch(shared, path, file, index, count)),
    )
    .await?;
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    })
}

/// Writes each of `files` whole, each committed on its own. See
/// [`crate::store::Store::start_write_files`].
pub(crate) async fn write_files(shared: Arc<Shared>, mut files: Vec<WholeFile>) -> Vec<Result<()>> {
    const OP: &str = "write";
    let mut out = Vec::with_capacity(files.len());
    while !files.is_empty() {
        let rest = files.split_off(files.len().min(SCRIPT_FILES));
        let part = std::mem::replace(&mut files, rest);
        if part.iter().any(|f| f.path.is_root()) {
            // The root is a directory: never staged, so that the scripts see parent and name.
            for file in part {
                out.extend(if file.path.is_root() {
                    vec![Err(
                        Error::new(ErrorKind::IsADirectory, OP).with_path(&file.path)
                    )]
                } else {
                    write_part(&shared, vec![file]).await
                });
            }
        } else {
            out.extend(write_part(&shared, part).await);
        }
    }
    out
}

/// Where one file of a batched write puts its data.
struct Slot {
    /// Index of its unit in [`Staging::units`]; `None` for an empty file, which has no data.
    unit: Option<usize>,
    /// Its offset in its unit's pack, for a packed file.
    offset: Option<u64>,
}

/// One staged data id of a batched write: a pack of files, or one file's own data.
struct Unit {
    id: String,
    member: String,
    /// Its chunk keys: `SET` each of them, then commit.
    chunks: Vec<(String, Bytes)>,
}

/// [`write_files`] of at most [`SCRIPT_FILES`] files, none of them the root.
///
/// Files of 1 to [`PACK_BYTES`] bytes go into packs (module `pack`), each one `SET`; a larger
/// file has data of its own, as a one-file write would; an empty file has none.
async fn write_part(shared: &Arc<Shared>, files: Vec<WholeFile>) -> Vec<Result<()>> {
    const OP: &str = "write";
    let paths: Vec<VPath> = files.iter().map(|f| f.path.clone()).collect();
    let sizes: Vec<u64> = files.iter().map(|f| f.data.len() as u64).collect();
    let mut results: Vec<Result<()>> = vec![Ok(()); files.len()];
    let (units, slots) = lay_out(shared, files);

    // Guarded from before the script that registers them: if this batch is dropped while the
    // script runs, the guard's cleanup follows it on the same connection and removes them.
    let mut guard = Staging {
        shared: shared.clone(),
        units: units
            .iter()
            .map(|unit| {
                shared.keep_alive(&unit.member);
                Some((unit.member.clone(), unit.chunks.len() as u64))
            })
            .collect(),
        inflight: None,
    };
    let members: Vec<String> = units.iter().map(|u| u.member.clone()).collect();
    if !members.is_empty()
        && let Err(e) = shared.run(OP, &SCRIPTS.stage_files, members.clone()).await
    {
        return for_each(&paths, e);
    }
    let ids: Vec<String> = units.iter().map(|u| u.id.clone()).collect();
    let sets: Vec<(usize, String, Bytes)> = units
        .into_iter()
        .enumerate()
        .flat_map(|(u, unit)| unit.chunks.into_iter().map(move |(key, b)| (u, key, b)))
        .collect();

    // Every chunk at once: fred pipelines them over the data connections. In a task, so that a
    // dropped batch can wait for them before discarding what they wrote.
    let setter = shared.clone();
    guard.inflight = Some(shared.runtime.spawn(async move {
        let sets = sets.into_iter().map(|(u, key, chunk)| {
            let client = setter.data.next().clone();
            async move {
                let result = client.set::<(), _, _>(&key, chunk, None, None, false).await;
                (u, key, result)
            }
        });
        futures::future::join_all(sets).await
    }));
    let landed = match guard.inflight.as_mut() {
        Some(handle) => handle.await,
        None => Ok(Vec::new()),
    };
    guard.inflight = None;
    let failed_unit = |results: &mut Vec<Result<()>>, u: usize, e: &Error| {
        for (i, slot) in slots.iter().enumerate() {
            if slot.unit == Some(u) && results[i].is_ok() {
                results[i] = Err(e.clone().with_path(&paths[i]));
            }
        }
    };
    match landed {
        Ok(landed) => {
            for (u, key, result) in landed {
                if let Err(e) = result
                    && guard.units[u].is_some()
                {
                    failed_unit(&mut results, u, &shared.origin.error(OP, &e, Some(&key)));
                    guard.discard(u);
                }
            }
        }
        Err(join) => {
            let e = Error::new(ErrorKind::Io, OP)
                .with_detail(format!("a chunk upload task failed: {join}"));
            for u in 0..guard.units.len() {
                if guard.units[u].is_some() {
                    failed_unit(&mut results, u, &e);
                    guard.discard(u);
                }
            }
        }
    }

    // Once the commit script is sent its outcome decides what the chunks are, so the commit
    // runs to its end in a task of its own even if this batch is dropped meanwhile.
    let batch = Committing {
        shared: shared.clone(),
        guard,
        paths: paths.clone(),
        members,
        ids,
        sizes,
        slots,
        results,
    };
    match shared.runtime.spawn(batch.run()).await {
        Ok(results) => results,
        Err(join) => for_each(
            &paths,
            Error::new(ErrorKind::Io, OP).with_detail(format!("the commit task failed: {join}")),
        ),
    }
}

/// Gives each file of a batch its place: the packs [`pack::cut`] makes of the files it can pack,
/// a unit of its own for each other file but an empty one, with every unit's chunk keys and
/// bytes.
fn lay_out(shared: &Shared, files: Vec<WholeFile>) -> (Vec<Unit>, Vec<Slot>) {
    let cs = shared.chunk_size as u64;
    let packable: Vec<usize> = (0..files.len())
        .filter(|&i| (1..=PACK_BYTES).contains(&(files[i].data.len() as u64)))
        .collect();
    let sizes: Vec<u64> = packable
        .iter()
        .map(|&i| files[i].data.len() as u64)
        .collect();
    let mut units = Vec::new();
    let mut slots: Vec<Option<Slot>> = (0..files.len()).map(|_| None).collect();
    for range in pack::cut(&sizes) {
        let id = shared.next_id();
        let bytes = sizes[range.clone()].iter().sum::<u64>() as usize;
        let mut packed = BytesMut::with_capacity(bytes);
        for &i in &packable[range] {
            slots[i] = Some(Slot {
                unit: Some(units.len()),
                offset: Some(packed.len() as u64),
            });
            packed.extend_from_slice(&files[i].data);
        }
        units.push(Unit {
            member: format!("{id}|{id}"),
            chunks: vec![(shared.keys.chunk(&id, 0, &id), packed.freeze())],
            id,
        });
    }
    for (i, file) in files.into_iter().enumerate() {
        if slots[i].is_some() {
            continue;
        }
        if file.data.is_empty() {
            slots[i] = Some(Slot {
                unit: None,
                offset: None,
            });
            continue;
        }
        // Placed by its own id, as `open` places a replace.
        let id = shared.next_id();
        let chunks = (0..chunk_count(file.data.len() as u64, cs))
            .map(|index| {
                let start = (index * cs) as usize;
                let end = (start + cs as usize).min(file.data.len());
                (
                    shared.keys.chunk(&id, index, &id),
                    file.data.slice(start..end),
                )
            })
            .collect();
        slots[i] = Some(Slot {
            unit: Some(units.len()),
            offset: None,
        });
        units.push(Unit {
            member: format!("{id}|{id}"),
            chunks,
            id,
        });
    }
    (units, slots.into_iter().flatten().collect())
}

/// The commit of a batched write's staged files: owned, so that it can run in a task.
struct Committing {
    shared: Arc<Shared>,
    guard: Staging,
    paths: Vec<VPath>,
    /// Per unit.
    members: Vec<String>,
    ids: Vec<String>,
    /// Per file.
    sizes: Vec<u64>,
    slots: Vec<Slot>,
    /// Per file so far: `Ok` while it is still in the running.
    results: Vec<Result<()>>,
}

impl Committing {
    /// Commits every file still staged, in one script. Returns the result of every file.
    async fn run(self) -> Vec<Result<()>> {
        const OP: &str = "write";
        let Committing {
            shared,
            mut guard,
            paths,
            members,
            ids,
            sizes,
            slots,
            mut results,
        } = self;
        let committing: Vec<usize> = (0..paths.len())
            .filter(|&i| {
                results[i].is_ok() && slots[i].unit.is_none_or(|u| guard.units[u].is_some())
            })
            .collect();
        if committing.is_empty() {
            return results;
        }
        let mut args = Vec::with_capacity(1 + 6 * committing.len());
        args.push(shared.chunk_size.to_string());
        for &i in &committing {
            let (parent, name) = split(&paths[i]);
            let Slot { unit, offset } = slots[i];
            let (member, id) = match unit {
                Some(u) => (members[u].clone(), ids[u].clone()),
                None => (String::new(), String::new()),
            };
            args.extend([parent, name, member, sizes[i].to_string(), id]);
            args.push(offset.map(|o| o.to_string()).unwrap_or_default());
        }
        // Per unit: whether a file now uses it.
        let mut used = vec![false; guard.units.len()];
        match shared.run(OP, &SCRIPTS.commit_files, args).await {
            Ok(reply) => {
                let Some(pairs) = pairs(&reply, committing.len()) else {
                    let e = shared.origin.bad_reply(OP, "commit_files");
                    for &i in &committing {
                        results[i] = Err(e.clone().with_path(&paths[i]));
                        // The outcome is unknown: leave the chunks to a sweep.
                        if let Some(u) = slots[i].unit {
                            guard.abandon(u);
                        }
                    }
                    return results;
                };
                for (&i, (code, value)) in committing.iter().zip(pairs) {
                    if code.is_empty() {
                        if let Some(u) = slots[i].unit {
                            used[u] = true;
                        }
                        if !value.is_empty() {
                            retire(&shared, value);
                        }
                    } else {
                        results[i] = Err(shared
                            .origin
                            .script_error(OP, &code, &value)
                            .with_path(&paths[i]));
                    }
                }
                for (u, used) in used.into_iter().enumerate() {
                    if used {
                        guard.abandon(u);
                    } else {
                        guard.discard(u);
                    }
                }
            }
            Err(e) => {
                let ambiguous = shared.is_ambiguous(&e);
                for &i in &committing {
                    results[i] = Err(e.clone().with_path(&paths[i]));
                    if ambiguous {
                        // It may have committed: keep the chunks, and stop vouching for them so
                        // that a sweep deletes them if it did not.
                        if let Some(u) = slots[i].unit {
                            guard.abandon(u);
                        }
                    } else {
                        if let Some(u) = slots[i].unit {
                            guard.discard(u);
                        }
                    }
                }
            }
        }
        results
    }
}

/// What the chunk `SET`s of a batch gave: per chunk, its unit's index, its key and the result.
type Landed = Vec<(usize, String, Result<(), FredError>)>;

/// The staged units of a batched write not yet committed or given up: dropped, it discards each
/// unit's chunks once the batch's `SET`s in flight have ended.
struct Staging {
    shared: Arc<Shared>,
    /// Per unit: its member and chunk count while staged.
    units: Vec<Option<(String, u64)>>,
    inflight: Option<JoinHandle<Landed>>,
}

impl Staging {
    /// Unit `u` failed, or no file uses it: delete its chunks (its `SET`s have ended) and its
    /// member.
    fn discard(&mut self, u: usize) {
        if let Some((member, chunks)) = self.units[u].take() {
            discard(&self.shared, member, chunks, async {});
        }
    }

    /// Unit `u` is no longer ours to clean up: a file uses it, or a commit's outcome is unknown.
    fn abandon(&mut self, u: usize) {
        if let Some((member, _)) = self.units[u].take() {
            self.shared.let_go(&member);
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let staged: Vec<(String, u64)> = self.units.iter_mut().filter_map(Option::take).collect();
        if staged.is_empty() {
            return;
        }
        let inflight = self.inflight.take();
        let shared = self.shared.clone();
        self.shared.spawn(async move {
            if let Some(sets) = inflight {
                let _ = sets.await;
            }
            for (member, chunks) in staged {
                discard(&shared, member, chunks, async {});
            }
        });
    }
}

/// The `{code, id or key, count, ...}` triples of a `dirs` reply, if it holds `n` of them.
fn triples(reply: &[Value], n: usize) -> Option<Vec<(String, String, u64)>> {
    records(reply, n, 3)?
        .map(|t| {
            let count = u64::try_from(integer(&t[2])?).ok()?;
            Some((text(&t[0])?.to_string(), text(&t[1])?.to_string(), count))
        })
        .collect()
}

/// The `{code, value, ...}` pairs of a batch script's reply, if it holds `n` of them.
fn pairs(reply: &[Value], n: usize) -> Option<Vec<(String, String)>> {
    records(reply, n, 2)?
        .map(|pair| Some((text(&pair[0])?.to_string(), text(&pair[1])?.to_string())))
        .collect()
}

/// The `n` records of `width` values each in the flat array a batch script replies with.
fn records(reply: &[Value], n: usize, width: usize) -> Option<std::slice::Chunks<'_, Value>> {
    let Some(Value::Array(items)) = reply.first() else {
        return None;
    };
    (items.len() == width * n).then(|| items.chunks(width))
}

/// A path that is not the root as the scripts take it: its parent directory and its name.
fn split(path: &VPath) -> (String, String) {
    let parent = path.parent().unwrap_or_else(VPath::root);
    let name = path.file_name().unwrap_or_default();
    (parent.as_str().to_string(), name.to_string())
}

/// `err` for every path of a batch that failed as a whole.
fn for_each<T>(paths: &[VPath], err: Error) -> Vec<Result<T>> {
    paths
        .iter()
        .map(|path| Err(err.clone().with_path(path)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(pack: &str, offset: u64, size: u64) -> Option<(FileData, Version)> {
        let file = FileData {
            size,
            chunk_size: size,
            data: pack.to_string(),
            place: pack.to_string(),
            offset: Some(offset),
        };
        Some((file, Version::redis(size, 0, pack)))
    }

    #[test]
    fn runs_keep_to_one_pack_close_ranges_and_a_bounded_span() {
        let own = FileData {
            size: 10,
            chunk_size: 1 << 20,
            data: "own".into(),
            place: "own".into(),
            offset: None,
        };
        let found = vec![
            packed("a", 4096, 4096),
            packed("b", 0, 4096),
            packed("a", 0, 4096),
            None,
            Some((own, Version::redis(10, 0, "own"))),
            // Past the gap from the first run of `a`.
            packed("a", 8192 + RUN_GAP + 1, 100),
            packed("b", 4096, RUN_BYTES),
        ];
        let (runs, alone) = runs(&found);
        assert_eq!(alone, vec![4]);
        // `a` by offset: 0 and 4096 together, the far one alone; `b`: the second file would
        // take the run past RUN_BYTES.
        assert_eq!(runs, vec![vec![2, 0], vec![5], vec![1], vec![6]]);
    }
}
