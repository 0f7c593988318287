//! Small files in batches: [`read_files`] and [`write_files`], a few round trips per batch
//! whatever its length, where one file at a time costs a few per file.
//!
//! A batched read is one script that resolves every path (`stat_files`), then the chunk `GET`s
//! of every file at once, which fred pipelines. A batched write is one script that registers
//! each file's new data in `pending` (`stage_files`), the chunk `SET`s of every file at once,
//! then one script that checks and commits each file (`commit_files`). Each file keeps the rules
//! of its one-file form: its own checks and errors, an atomic switch to its new data, the old
//! data retired, its staged chunks discarded when it fails or the batch is dropped. One
//! difference: a file's destination is checked at its commit only, not before its data moves,
//! which would cost every file a second walk of its path in Lua.

use std::sync::Arc;

use bytes::Bytes;
use fred::error::Error as FredError;
use fred::prelude::{KeysInterface, Value};
use tokio::task::JoinHandle;

use super::gc::{discard, retire};
use super::keys::{Entry, chunk_count};
use super::reader::{FileData, fetch};
use super::scripts::SCRIPTS;
use super::shared::{Shared, text};
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
    let args = paths
        .iter()
        .flat_map(|path| {
            let (parent, name) = split(path);
            [parent, name]
        })
        .collect();
    let pairs = match shared.run(OP, &SCRIPTS.stat_files, args).await {
        Ok(reply) => match pairs(&reply, paths.len()) {
            Some(pairs) => pairs,
            None => return for_each(paths, shared.origin.bad_reply(OP, "stat_files")),
        },
        Err(e) => return for_each(paths, e),
    };
    let reads = paths.iter().zip(pairs).map(|(path, (code, value))| {
        async move {
            if !code.is_empty() {
                return Err(shared
                    .origin
                    .script_error(OP, &code, &value)
                    .with_path(path));
            }
            let Some(Entry::File {
                size,
                mtime,
                chunk_size,
                data,
                place,
            }) = Entry::parse(&value)
            else {
                return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(path));
            };
            if size > limit {
                return Ok(WholeRead::TooLarge(size));
            }
            // In this process, a replace or remove now waits for this read before deleting.
            let _pin = shared.pin(&data);
            let version = Version::redis(size, mtime, &data);
            let file = FileData {
                size,
                chunk_size,
                data,
                place,
            };
            let count = chunk_count(size, chunk_size);
            let chunks = futures::future::try_join_all(
                (0..count).map(|index| fetch(shared, path, &file, index, count)),
            )
            .await?;
            let data = match chunks.len() {
                0 => Bytes::new(),
                1 => chunks.into_iter().next().unwrap_or_default(),
                _ => Bytes::from(chunks.concat()),
            };
            Ok(WholeRead::Data(data, version))
        }
    });
    futures::future::join_all(reads).await
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

/// [`write_files`] of at most [`SCRIPT_FILES`] files, none of them the root.
async fn write_part(shared: &Arc<Shared>, files: Vec<WholeFile>) -> Vec<Result<()>> {
    const OP: &str = "write";
    let paths: Vec<VPath> = files.iter().map(|f| f.path.clone()).collect();
    let sizes: Vec<u64> = files.iter().map(|f| f.data.len() as u64).collect();
    let mut results: Vec<Result<()>> = vec![Ok(()); files.len()];
    let cs = shared.chunk_size as u64;
    // A new write places its data by its own id, as `open` does for a replace.
    let ids: Vec<String> = files.iter().map(|_| shared.next_id()).collect();
    let members: Vec<String> = ids.iter().map(|id| format!("{id}|{id}")).collect();

    // Guarded from before the script that registers them: if this batch is dropped while the
    // script runs, the guard's cleanup follows it on the same connection and removes them.
    let mut guard = Staging {
        shared: shared.clone(),
        members: members
            .iter()
            .zip(&sizes)
            .map(|(member, size)| {
                shared.keep_alive(member);
                Some((member.clone(), chunk_count(*size, cs)))
            })
            .collect(),
        inflight: None,
    };
    if let Err(e) = shared.run(OP, &SCRIPTS.stage_files, members.clone()).await {
        return for_each(&paths, e);
    }
    let mut sets = Vec::new();
    for (i, file) in files.into_iter().enumerate() {
        for index in 0..chunk_count(sizes[i], cs) {
            let start = (index * cs) as usize;
            let end = (start + cs as usize).min(file.data.len());
            let key = shared.keys.chunk(&ids[i], index, &ids[i]);
            sets.push((i, key, file.data.slice(start..end)));
        }
    }

    // Every chunk at once: fred pipelines them over the data connections. In a task, so that a
    // dropped batch can wait for them before discarding what they wrote.
    let setter = shared.clone();
    guard.inflight = Some(shared.runtime.spawn(async move {
        let sets = sets.into_iter().map(|(i, key, chunk)| {
            let client = setter.data.next().clone();
            async move {
                let result = client.set::<(), _, _>(&key, chunk, None, None, false).await;
                (i, key, result)
            }
        });
        futures::future::join_all(sets).await
    }));
    let landed = match guard.inflight.as_mut() {
        Some(handle) => handle.await,
        None => Ok(Vec::new()),
    };
    guard.inflight = None;
    match landed {
        Ok(landed) => {
            for (i, key, result) in landed {
                if let Err(e) = result
                    && results[i].is_ok()
                {
                    results[i] = Err(shared.origin.error(OP, &e, Some(&key)).with_path(&paths[i]));
                    guard.discard(i);
                }
            }
        }
        Err(join) => {
            let e = Error::new(ErrorKind::Io, OP)
                .with_detail(format!("a chunk upload task failed: {join}"));
            for i in 0..paths.len() {
                if guard.members[i].is_some() {
                    results[i] = Err(e.clone().with_path(&paths[i]));
                    guard.discard(i);
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
        sizes,
        ids,
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

/// The commit of a batched write's staged files: owned, so that it can run in a task.
struct Committing {
    shared: Arc<Shared>,
    guard: Staging,
    paths: Vec<VPath>,
    members: Vec<String>,
    sizes: Vec<u64>,
    ids: Vec<String>,
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
            sizes,
            ids,
            mut results,
        } = self;
        let cs = shared.chunk_size as u64;
        let committing: Vec<usize> = (0..paths.len())
            .filter(|&i| guard.members[i].is_some())
            .collect();
        if !committing.is_empty() {
            let mut args = Vec::with_capacity(1 + 5 * committing.len());
            args.push(cs.to_string());
            for &i in &committing {
                let (parent, name) = split(&paths[i]);
                args.extend([parent, name, members[i].clone(), sizes[i].to_string()]);
                args.push(ids[i].clone());
            }
            match shared.run(OP, &SCRIPTS.commit_files, args).await {
                Ok(reply) => {
                    let Some(pairs) = pairs(&reply, committing.len()) else {
                        let e = shared.origin.bad_reply(OP, "commit_files");
                        for &i in &committing {
                            results[i] = Err(e.clone().with_path(&paths[i]));
                            // The outcome is unknown: leave the chunks to a sweep.
                            guard.abandon(i);
                        }
                        return results;
                    };
                    for (&i, (code, value)) in committing.iter().zip(pairs) {
                        if code.is_empty() {
                            guard.abandon(i);
                            if !value.is_empty() {
                                retire(&shared, value);
                            }
                        } else {
                            results[i] = Err(shared
                                .origin
                                .script_error(OP, &code, &value)
                                .with_path(&paths[i]));
                            guard.discard(i);
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
                            guard.abandon(i);
                        } else {
                            guard.discard(i);
                        }
                    }
                }
            }
        }
        results
    }
}

/// What the chunk `SET`s of a batch gave: per chunk, its file's index, its key and the result.
type Landed = Vec<(usize, String, Result<(), FredError>)>;

/// The staged data of a batched write not yet committed or given up: dropped, it discards each
/// member's chunks once the batch's `SET`s in flight have ended.
struct Staging {
    shared: Arc<Shared>,
    /// Per file: its member and chunk count while staged.
    members: Vec<Option<(String, u64)>>,
    inflight: Option<JoinHandle<Landed>>,
}

impl Staging {
    /// File `i` failed: delete its chunks (its `SET`s have ended) and its member.
    fn discard(&mut self, i: usize) {
        if let Some((member, chunks)) = self.members[i].take() {
            discard(&self.shared, member, chunks, async {});
        }
    }

    /// File `i` is no longer ours to clean up: committed, or its commit's outcome is unknown.
    fn abandon(&mut self, i: usize) {
        if let Some((member, _)) = self.members[i].take() {
            self.shared.let_go(&member);
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let staged: Vec<(String, u64)> = self.members.iter_mut().filter_map(Option::take).collect();
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

/// The `{code, value, ...}` pairs of a batch script's reply, if it holds `n` of them.
fn pairs(reply: &[Value], n: usize) -> Option<Vec<(String, String)>> {
    let Some(Value::Array(items)) = reply.first() else {
        return None;
    };
    if items.len() != 2 * n {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| Some((text(&pair[0])?.to_string(), text(&pair[1])?.to_string())))
        .collect()
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
