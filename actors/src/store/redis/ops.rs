//! `impl Store for RedisStore`: each operation of the contract. Every metadata read or update is
//! one script (`scripts`), one round trip whatever the path's depth; chunk data moves through
//! the reader, the writer and the batches, outside the store's actor.

use bytes::Bytes;
use fred::prelude::{ClientLike, Value};
use fred::types::InfoKind;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::errors::CHANGED;
use super::gc::{Pin, retire};
use super::keys::{Entry, chunk_count};
use super::raw;
use super::read_ahead::{Scanned, scan_page};
use super::reader::{self, FileData};
use super::scripts::SCRIPTS;
use super::shared::{integer, text};
use super::writer::{Prefill, RedisStaged, RedisWriter, copy_chunks, copy_packed};
use super::{LIST_PAGE, RedisStore, batch, gc};
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    BatchFuture, Capability, DirEntry, FileReader, ListCursor, ListPage, Meta, Store, Usage,
    Version, WholeFile, WholeRead, WriteMode, changed_during_move,
};

impl Store for RedisStore {
    type Writer = RedisWriter;

    fn capability(&self) -> Capability {
        Capability {
            fast_copy: true,
            // `copy_file` runs a script and a GETRANGE and SET (packed) or COPY per chunk for
            // each file: about 160 µs a small file against about 10 µs batched.
            batch_small_copies: true,
            capacity: false,
        }
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        Ok(self.entry("stat", path).await?.meta())
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut page = self.first_page(path, LIST_PAGE).await?;
        let paged = page.1.is_some();
        loop {
            out.append(&mut page.0);
            let Some((dir, scan)) = page.1 else { break };
            page = self.next_page(path, &dir, &scan, LIST_PAGE).await?;
        }
        if paged {
            // HSCAN may return an entry twice (a hash that shrank meanwhile): sorting and
            // dropping neighbours with one name costs less than a set of every name, and callers
            // sort anyway (an already sorted run sorts in one pass).
            out.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            out.dedup_by(|a, b| a.name == b.name);
        }
        Ok(out)
    }

    async fn list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        // Pages past the first are read ahead ([`super::read_ahead`]): Redis scans the next
        // while the caller works through this one.
        let (entries, next) = match cursor {
            None => {
                let page = self.first_page(path, limit).await?;
                if let Some((dir, scan)) = &page.1 {
                    self.read_ahead.served(&self.shared, dir, Some(scan), limit);
                }
                page
            }
            Some(cursor) => {
                let (dir, scan) = Self::parse_cursor(path, &cursor)?;
                let scanned = self.read_ahead.page(&self.shared, dir, scan, limit).await;
                let page = self.scanned_page(path, dir, scanned)?;
                let next = page.1.as_ref().map(|(_, scan)| scan.as_str());
                self.read_ahead.served(&self.shared, dir, next, limit);
                page
            }
        };
        Ok(ListPage {
            entries,
            next: next.map(|(dir, scan)| ListCursor::new(format!("{dir}:{scan}"))),
        })
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        let flag = if parents { "1" } else { "0" };
        self.shared
            .run(
                "mkdir",
                &SCRIPTS.mkdir,
                vec![Self::path_arg(path), flag.to_string()],
            )
            .await
            .map(|_| ())
            .map_err(|e| e.with_path(path))
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        self.shared
            .run("touch", &SCRIPTS.touch, vec![Self::path_arg(path)])
            .await
            .map(|_| ())
            .map_err(|e| e.with_path(path))
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        let reply = self
            .shared
            .run("rm", &SCRIPTS.remove_file, vec![Self::path_arg(path)])
            .await
            .map_err(|e| e.with_path(path))?;
        if let Some(dead) = reply.first().and_then(text).filter(|d| !d.is_empty()) {
            retire(&self.shared, dead.to_string());
        }
        Ok(())
    }

    async fn remove_file_if(&mut self, path: &VPath, version: &Version) -> Result<()> {
        // One script checks the entry's size, mtime and data id and removes it: nothing can
        // slip in between.
        let Some(expected) = version.redis_fields() else {
            return Err(changed_during_move(path));
        };
        let reply = self
            .shared
            .run(
                "mv",
                &SCRIPTS.remove_file,
                vec![Self::path_arg(path), expected],
            )
            .await
            .map_err(|e| {
                if e.detail() == Some(CHANGED) {
                    changed_during_move(path)
                } else {
                    e.with_path(path)
                }
            })?;
        if let Some(dead) = reply.first().and_then(text).filter(|d| !d.is_empty()) {
            retire(&self.shared, dead.to_string());
        }
        Ok(())
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        self.shared
            .run("rmdir", &SCRIPTS.remove_dir, vec![Self::path_arg(path)])
            .await
            .map(|_| ())
            .map_err(|e| e.with_path(path))
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        let reply = self
            .shared
            .run("rm", &SCRIPTS.detach, vec![Self::path_arg(path)])
            .await
            .map_err(|e| e.with_path(path))?;
        let Some(id) = reply.first().and_then(text) else {
            return Err(self
                .shared
                .origin
                .bad_reply("rm", "directory id")
                .with_path(path));
        };
        // The directory is gone from the tree now; what follows only frees its contents. If it
        // fails, the id stays in `trash` and a later sweep finishes the job.
        if let Err(e) = gc::purge_tree(&self.shared, id.to_string()).await {
            tracing::warn!(
                namespace = self.shared.keys.namespace(),
                "{path}: removed; freeing its contents failed and is left to a sweep: {e}"
            );
        }
        Ok(())
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        const OP: &str = "mv";
        crate::store::refuse_root_rename(OP, from, to)?;
        let reply = self
            .shared
            .run_about(
                OP,
                &SCRIPTS.rename,
                vec![Self::path_arg(from), Self::path_arg(to)],
            )
            .await
            .map_err(|(e, about)| {
                if e.kind() == ErrorKind::InvalidInput {
                    e.with_path(to)
                        .with_detail(format!("cannot move {from} into itself"))
                } else {
                    name_path(e, &about, from, to)
                }
            })?;
        if let Some(dead) = reply.first().and_then(text).filter(|d| !d.is_empty()) {
            retire(&self.shared, dead.to_string());
        }
        Ok(())
    }

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        // One round trip in the actor finds the file and pins its data; the chunks stream
        // outside it. The open is handed out ready.
        const OP: &str = "read";
        let entry = self.entry(OP, path).await?;
        let Some((file, mtime)) = FileData::from_entry(entry) else {
            return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(path));
        };
        let pin = self.shared.pin(&file.data);
        let reader = FileReader {
            size: file.size,
            version: Version::redis(file.size, mtime, &file.data),
            chunks: reader::chunks(self.shared.clone(), path.clone(), file, pin),
        };
        Ok(futures::future::ready(Ok(reader)).boxed())
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<RedisWriter> {
        const OP: &str = "write";
        let data = self.shared.next_id();
        let append = if mode == WriteMode::Append { "1" } else { "0" };
        let reply = self
            .shared
            .run(
                OP,
                &SCRIPTS.open,
                vec![
                    Self::path_arg(path),
                    data.clone(),
                    self.shared.chunk_size.to_string(),
                    append.to_string(),
                ],
            )
            .await
            .map_err(|e| e.with_path(path))?;
        let (Some(member), Some(old)) = (reply.first().and_then(text), reply.get(1).and_then(text))
        else {
            return Err(self.shared.origin.bad_reply(OP, "open").with_path(path));
        };
        let member = member.to_string();
        self.shared.keep_alive(&member);
        let place = member.split('|').nth(1).unwrap_or(&data).to_string();
        let old = Entry::parse(old).as_ref().and_then(FileData::of);
        let prefill = match (mode, old) {
            (WriteMode::Append, Some(file)) if file.size > 0 => Some(Prefill {
                pin: self.shared.pin(&file.data),
                file,
            }),
            _ => None,
        };
        Ok(RedisWriter::new(
            self.shared.clone(),
            path.clone(),
            data,
            place,
            member,
            prefill,
        ))
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        staged: RedisStaged,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        // The commit is one script, run in the actor, and handed out ready.
        const OP: &str = "write";
        match self
            .shared
            .run(OP, &SCRIPTS.commit, staged.commit_args(path))
            .await
        {
            Ok(reply) => {
                staged.committed();
                if let Some(dead) = reply.first().and_then(text).filter(|d| !d.is_empty()) {
                    retire(&self.shared, dead.to_string());
                }
                Ok(futures::future::ready(Ok(())).boxed())
            }
            Err(e) if self.shared.is_ambiguous(&e) => {
                tracing::debug!(member = staged.member(), "commit outcome unknown: {e}");
                staged.abandon();
                Err(e.with_path(path))
            }
            // `staged` drops here and deletes its chunks; the old file is untouched.
            Err(e) => Err(e.with_path(path)),
        }
    }

    async fn start_read_files(
        &mut self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> Result<BatchFuture<WholeRead>> {
        // Nothing needs the actor: the batch's round trips run in the caller.
        Ok(batch::read_files(self.shared.clone(), paths, limit).boxed())
    }

    async fn start_write_files(&mut self, files: Vec<WholeFile>) -> Result<BatchFuture<()>> {
        Ok(batch::write_files(self.shared.clone(), files).boxed())
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<(RedisStaged, u64)>>> {
        const OP: &str = "cp";
        let data = self.shared.next_id();
        let reply = self
            .shared
            .run_about(
                OP,
                &SCRIPTS.copy,
                vec![Self::path_arg(from), Self::path_arg(to), data.clone()],
            )
            .await
            .map_err(|(e, about)| name_path(e, &about, from, to))?;
        let (Some(member), Some(source)) = (
            reply.first().and_then(text),
            reply.get(1).and_then(text).and_then(Entry::parse),
        ) else {
            return Err(self.shared.origin.bad_reply(OP, "copy").with_path(to));
        };
        let member = member.to_string();
        self.shared.keep_alive(&member);
        let place = member.split('|').nth(1).unwrap_or(&data).to_string();
        let Some(src) = FileData::of(&source) else {
            return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(from));
        };
        let (bytes, chunks) = (src.size, chunk_count(src.size, src.chunk_size));
        let pin: Option<Pin> = self.shared.pin(&src.data);
        // Created now, so that dropping the copy at any point discards what it made.
        let staged = RedisStaged::for_copy(
            self.shared.clone(),
            data.clone(),
            place.clone(),
            member,
            &source,
        );
        let shared = self.shared.clone();
        let to = to.clone();
        Ok(async move {
            if src.offset.is_some() && src.size > 0 {
                copy_packed(&shared, &to, &src, &place, &data).await?;
            } else {
                copy_chunks(&shared, &to, &place, &src.data, &data, 0..chunks).await?;
            }
            drop(pin);
            Ok((staged, bytes))
        }
        .boxed())
    }

    async fn close(&mut self) {
        self.read_ahead.clear();
        self.shut().await;
    }

    async fn usage(&mut self) -> Result<Usage> {
        const OP: &str = "stats";
        let reply = self.shared.run(OP, &SCRIPTS.usage, Vec::new()).await?;
        let number = |i: usize| reply.get(i).and_then(integer).unwrap_or(0).max(0) as u64;
        // INFO is per server: a cluster's nodes each have their own, so a cluster reports none.
        let (capacity, used) = if self.shared.cluster {
            (None, None)
        } else {
            let info: String = self
                .shared
                .client
                .info(Some(InfoKind::Memory))
                .await
                .map_err(|e| self.shared.origin.error(OP, &e, None))?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            // maxmemory 0 means no limit.
            (field("maxmemory").filter(|&m| m > 0), field("used_memory"))
        };
        Ok(Usage {
            files: number(0),
            dirs: number(1),
            bytes: number(2),
            capacity,
            used,
            available: capacity.zip(used).map(|(c, u)| c.saturating_sub(u)),
            approximate: false,
        })
    }
}

impl RedisStore {
    /// The entry at `path`, or `None` for the root (whose mtime comes second).
    async fn entry(&self, op: &'static str, path: &VPath) -> Result<Entry> {
        let reply = self
            .shared
            .run(op, &SCRIPTS.stat, vec![path.as_str().to_string()])
            .await
            .map_err(|e| e.with_path(path))?;
        let value = reply.first().and_then(text).unwrap_or("");
        Entry::parse(value).ok_or_else(|| {
            self.shared
                .origin
                .bad_reply(op, &format!("entry {value:?}"))
                .with_path(path)
        })
    }

    fn path_arg(path: &VPath) -> String {
        path.as_str().to_string()
    }

    /// The first page of directory `path`, of about `count` entries: the whole directory when
    /// it holds no more (`HGETALL`), else the first `HSCAN` page and where to go on (the
    /// directory's id and the scan's cursor).
    async fn first_page(&self, path: &VPath, count: usize) -> Result<RedisPage> {
        const OP: &str = "list";
        let reply = self
            .shared
            .run(
                OP,
                &SCRIPTS.list,
                vec![Self::path_arg(path), count.max(1).to_string()],
            )
            .await
            .map_err(|e| e.with_path(path))?;
        let (Some(dir), Some(cursor), Some(flat)) = (
            reply.first().and_then(text),
            reply.get(1).and_then(text),
            reply.get(2),
        ) else {
            return Err(self.shared.origin.bad_reply(OP, "listing").with_path(path));
        };
        if cursor == "all" {
            // As with `openat` on a directory opened before: one renamed meanwhile is listed
            // where it went, one removed has no entries left.
            let key = self.shared.keys.dir(dir);
            let all = self
                .shared
                .read_checked(OP, &key, raw::hgetall(&self.shared.client, &key))
                .await
                .map_err(|e| e.with_path(path))?;
            return Ok((self.raw_entries(path, dir, &all)?, None));
        }
        let entries = self.entries(path, dir, flat)?;
        let next = (cursor != "0").then(|| (dir.to_string(), cursor.to_string()));
        Ok((entries, next))
    }

    /// The directory id and `HSCAN` cursor of a listing cursor, `<dir id>:<HSCAN cursor>` as
    /// [`Store::list_page`] hands it out. Errors: `InvalidInput` for any other text.
    fn parse_cursor<'c>(path: &VPath, cursor: &'c ListCursor) -> Result<(&'c str, &'c str)> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        cursor
            .as_str()
            .split_once(':')
            .filter(|(dir, scan)| digits(dir) && digits(scan))
            .ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, "list")
                    .with_path(path)
                    .with_detail("not a listing cursor")
            })
    }

    /// The page of directory `dir` (id) of `path` at `HSCAN` cursor `scan`, of about `count`
    /// entries. A directory removed meanwhile has no hash left: its listing ends.
    ///
    /// The `HSCAN` is sent from the client, not through a script (which spent about 0.5 µs an
    /// entry handing the page through Lua, 40% of Redis's time for a page of 1,000), and is
    /// followed on the same connection by a read of the namespace's epoch, which Redis runs
    /// after it: an epoch still the store's says the page is of the namespace it opened, where
    /// one the server lost would list as an empty directory.
    async fn next_page(
        &self,
        path: &VPath,
        dir: &str,
        scan: &str,
        count: usize,
    ) -> Result<RedisPage> {
        let scanned = scan_page(&self.shared, dir, scan, count).await;
        self.scanned_page(path, dir, scanned)
    }

    /// The page of `path` (directory `dir`) an `HSCAN` read, and where its listing goes on.
    fn scanned_page(&self, path: &VPath, dir: &str, scanned: Result<Scanned>) -> Result<RedisPage> {
        let (next, page) = scanned.map_err(|e| e.with_path(path))?;
        let entries = self.raw_entries(path, dir, &page)?;
        let next = (next != "0").then(|| (dir.to_string(), next));
        Ok((entries, next))
    }

    /// The entries of `name, entry` pairs read from directory `dir`'s hash.
    fn raw_entries(
        &self,
        path: &VPath,
        dir: &str,
        pairs: &[(Bytes, Bytes)],
    ) -> Result<Vec<DirEntry>> {
        fn utf8(b: &Bytes) -> Option<&str> {
            std::str::from_utf8(b).ok()
        }
        let pairs = pairs
            .iter()
            .map(|(name, value)| Some((utf8(name)?, utf8(value)?)));
        self.listed_entries(path, dir, pairs)
    }

    /// The entries of a flat `name, entry, ...` reply from directory `dir`'s hash.
    fn entries(&self, path: &VPath, dir: &str, flat: &Value) -> Result<Vec<DirEntry>> {
        let Value::Array(items) = flat else {
            return Err(self
                .shared
                .origin
                .bad_reply("list", "entries")
                .with_path(path));
        };
        let pairs = items
            .chunks(2)
            .map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)));
        self.listed_entries(path, dir, pairs)
    }

    /// The entries of directory `dir` (of `path`) from its names and entries, `None` for a pair
    /// that is not text.
    fn listed_entries<'a>(
        &self,
        path: &VPath,
        dir: &str,
        pairs: impl ExactSizeIterator<Item = Option<(&'a str, &'a str)>>,
    ) -> Result<Vec<DirEntry>> {
        let mut out = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let Some((name, value)) = pair else {
                return Err(self
                    .shared
                    .origin
                    .bad_reply("list", "entry")
                    .with_path(path));
            };
            out.push(self.listed_entry(path, dir, name, value)?);
        }
        Ok(out)
    }

    /// Entry `name` of directory `dir` (of `path`), listed as `value`.
    fn listed_entry(&self, path: &VPath, dir: &str, name: &str, value: &str) -> Result<DirEntry> {
        let meta = Entry::parse_meta(value).ok_or_else(|| {
            self.shared
                .origin
                .script_error(
                    "list",
                    "CORRUPT",
                    &format!("{} field {name}", self.shared.keys.dir(dir)),
                )
                .with_path(path)
        })?;
        Ok(DirEntry {
            name: name.to_string(),
            meta,
        })
    }
}

/// A page of a Redis listing: its entries, and the directory id and `HSCAN` cursor it goes on
/// from (`None`: it ended).
type RedisPage = (Vec<DirEntry>, Option<(String, String)>);

/// Names the path a two-path script's error is about: `to` when the script said so.
fn name_path(err: Error, about: &str, from: &VPath, to: &VPath) -> Error {
    if about == "to" {
        err.with_path(to)
    } else {
        err.with_path(from)
    }
}
