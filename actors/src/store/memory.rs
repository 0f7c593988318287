//! `MemoryStore`: the in-process hot tier.
//!
//! The tree is owned by the store's actor, so it needs no locks: directories are `BTreeMap`s of
//! nodes, files are shared, immutable lists of `Bytes` chunks. Reads hand out clones of the chunk
//! list (zero-copy); writes build a new chunk list outside the actor and swap it in at commit, so a
//! reader holding the old list keeps reading the old file whole. Copies inside the store share the
//! same buffers. A batch of whole files (a transfer's small files) skips the writer: each file is
//! checked and committed in one step in the actor, as one `start_commit` would commit it. Every
//! file made, replaced or touched takes a new generation from the store's counter: its
//! [`Version`], which a move checks before it removes its source.
//!
//! Capacity is a byte ledger shared with the writers, so that a write is refused with `NoSpace`
//! before the chunk that would exceed it is kept. Bytes count by logical file size: a file copied
//! inside the store counts twice, although its buffers are shared, so the ledger never depends on
//! which copy is freed first.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    BatchFuture, Capability, DirEntry, EntryKind, FileReader, FileWriter, ListCursor, ListPage,
    Meta, Store, Usage, Version, WholeFile, WriteMode, changed_during_move,
};

/// The in-memory store. Create it with [`MemoryStore::new`] and give it to a backend actor.
pub struct MemoryStore {
    root: DirNode,
    ledger: Arc<Ledger>,
    /// The last generation given to a file: every file made or changed takes the next.
    generation: u64,
}

/// Bytes in use against an optional capacity, shared by the store and its open writers.
#[derive(Debug)]
struct Ledger {
    used: AtomicU64,
    capacity: Option<u64>,
}

impl Ledger {
    /// Reserves `n` bytes. Errors: `NoSpace` when the capacity would be exceeded.
    fn reserve(&self, n: u64) -> Result<()> {
        let Some(cap) = self.capacity else {
            self.used.fetch_add(n, Ordering::Relaxed);
            return Ok(());
        };
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= cap)
            })
            .map(|_| ())
            .map_err(|_| {
                Error::new(ErrorKind::NoSpace, "write")
                    .with_detail(format!("memory capacity of {cap} bytes reached"))
            })
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// A file: 56 bytes, so that a directory's `BTreeMap` leaf of eleven entries (each a name and a
/// node) fits jemalloc's 896-byte class rather than the 1,024-byte one; a file's size is its
/// chunks' for that reason ([`Chunks::size`]).
#[derive(Clone)]
struct FileNode {
    chunks: Chunks,
    modified: SystemTime,
    /// Unique in the store to this version of the file: its [`Version`].
    generation: u64,
}

impl FileNode {
    fn size(&self) -> u64 {
        self.chunks.size()
    }
}

/// A file's contents. Most files of a large tree are one chunk: that one is held inline, since
/// a shared list of one would cost an allocation of 64 bytes a file besides the chunk's own.
#[derive(Clone)]
enum Chunks {
    /// No chunk or one (an empty `Bytes` allocates nothing).
    One(Bytes),
    /// Several, shared by the file's readers and copies, and their total size.
    Many(Arc<[Bytes]>, u64),
}

impl Chunks {
    fn new(mut chunks: Vec<Bytes>) -> Chunks {
        match chunks.len() {
            0 => Chunks::One(Bytes::new()),
            1 => Chunks::One(chunks.pop().unwrap_or_default()),
            _ => {
                let size = chunks.iter().map(|c| c.len() as u64).sum();
                Chunks::Many(Arc::from(chunks), size)
            }
        }
    }

    fn size(&self) -> u64 {
        match self {
            Chunks::One(b) => b.len() as u64,
            Chunks::Many(_, size) => *size,
        }
    }

    fn to_vec(&self) -> Vec<Bytes> {
        match self {
            Chunks::One(b) if b.is_empty() => Vec::new(),
            Chunks::One(b) => vec![b.clone()],
            Chunks::Many(all, _) => all.to_vec(),
        }
    }
}

#[derive(Default)]
struct DirNode {
    entries: BTreeMap<String, Node>,
    modified: Option<SystemTime>,
}

impl DirNode {
    /// The directory at `path` below this one. Errors: `NotFound`, `NotADirectory`.
    fn descend(&self, op: &'static str, path: &VPath) -> Result<&DirNode> {
        let mut dir = self;
        for name in path.components() {
            match dir.entries.get(name) {
                Some(Node::Dir(d)) => dir = d,
                Some(Node::File(_)) => {
                    return Err(Error::new(ErrorKind::NotADirectory, op).with_path(path));
                }
                None => return Err(not_found(op, path)),
            }
        }
        Ok(dir)
    }

    /// [`DirNode::descend`], for changing what it finds.
    fn descend_mut(&mut self, op: &'static str, path: &VPath) -> Result<&mut DirNode> {
        self.walk_mut(op, path.components(), path)
    }

    /// The directory that holds `path` (not the root), for changing it, without building the
    /// parent's path. Errors name `path`: `NotFound`, `NotADirectory`.
    fn parent_mut(&mut self, op: &'static str, path: &VPath) -> Result<&mut DirNode> {
        let mut names = path.components();
        names.next_back();
        self.walk_mut(op, names, path)
    }

    /// The directory at `names` below this one; errors name `path`.
    fn walk_mut<'n>(
        &mut self,
        op: &'static str,
        names: impl Iterator<Item = &'n str>,
        path: &VPath,
    ) -> Result<&mut DirNode> {
        let mut dir = self;
        for name in names {
            match dir.entries.get_mut(name) {
                Some(Node::Dir(d)) => dir = d,
                Some(Node::File(_)) => {
                    return Err(Error::new(ErrorKind::NotADirectory, op).with_path(path));
                }
                None => return Err(not_found(op, path)),
            }
        }
        Ok(dir)
    }
}

impl Node {
    fn meta(&self) -> Meta {
        match self {
            Node::File(f) => Meta {
                kind: EntryKind::File,
                size: f.size(),
                modified: f.modified,
            },
            Node::Dir(d) => Meta {
                kind: EntryKind::Dir,
                size: 0,
                modified: d.modified.unwrap_or(SystemTime::UNIX_EPOCH),
            },
        }
    }

    /// Bytes held by this node and everything below it.
    fn bytes(&self) -> u64 {
        match self {
            Node::File(f) => f.size(),
            Node::Dir(d) => d.entries.values().map(Node::bytes).sum(),
        }
    }
}

/// An error met on the way to `path` (a parent missing, or a file where a directory should be)
/// as reported for `path` itself: the full path, as the disk and Redis stores name it and as
/// coreutils does (`cat: f/x: Not a directory`).
fn on_the_way(e: Error, op: &'static str, path: &VPath) -> Error {
    match e.kind() {
        ErrorKind::NotADirectory => e.with_path(path),
        _ => not_found(op, path),
    }
}

fn not_found(op: &'static str, path: &VPath) -> Error {
    Error::new(ErrorKind::NotFound, op).with_path(path)
}

impl MemoryStore {
    /// An empty store; `capacity` limits the bytes of file data it holds.
    pub fn new(capacity: Option<u64>) -> Self {
        MemoryStore {
            root: DirNode {
                entries: BTreeMap::new(),
                modified: Some(SystemTime::now()),
            },
            ledger: Arc::new(Ledger {
                used: AtomicU64::new(0),
                capacity,
            }),
            generation: 0,
        }
    }

    /// A generation no file has had yet.
    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// The directory at `path`. Errors: `NotFound`, `NotADirectory`.
    fn dir(&self, op: &'static str, path: &VPath) -> Result<&DirNode> {
        self.root.descend(op, path)
    }

    fn dir_mut(&mut self, op: &'static str, path: &VPath) -> Result<&mut DirNode> {
        self.root.descend_mut(op, path)
    }

    /// The parent directory of `path` and its last name. Errors: `Busy` for the root, and as `dir`.
    fn parent_mut<'a>(
        &mut self,
        op: &'static str,
        path: &'a VPath,
    ) -> Result<(&mut DirNode, &'a str)> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::new(ErrorKind::Busy, op).with_path(path));
        };
        let dir = self
            .dir_mut(op, &parent)
            .map_err(|e| on_the_way(e, op, path))?;
        Ok((dir, name))
    }

    /// The node at `path`, which callers guarantee is not the root (the root is a `DirNode`
    /// held directly; `stat` and `file` answer for it themselves).
    fn node(&self, op: &'static str, path: &VPath) -> Result<&Node> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::new(ErrorKind::Busy, op).with_path(path));
        };
        let dir = self.dir(op, &parent).map_err(|e| on_the_way(e, op, path))?;
        dir.entries.get(name).ok_or_else(|| not_found(op, path))
    }

    /// Checks that `path` can receive a file: its parent is a directory and it is not one itself.
    fn check_writable(&self, op: &'static str, path: &VPath) -> Result<Option<&FileNode>> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::new(ErrorKind::IsADirectory, op).with_path(path));
        };
        let dir = self.dir(op, &parent).map_err(|e| on_the_way(e, op, path))?;
        match dir.entries.get(name) {
            Some(Node::Dir(_)) => Err(Error::new(ErrorKind::IsADirectory, op).with_path(path)),
            Some(Node::File(f)) => Ok(Some(f)),
            None => Ok(None),
        }
    }

    /// Writes `data` as the file at `path`, replacing any file there: what `open_write`
    /// ([`WriteMode::Replace`]), one `write` and `start_commit` do, with their errors, in one
    /// step and one walk to the file's directory; the file and its directory modified at `now`.
    fn write_whole(&mut self, path: &VPath, data: Bytes, now: SystemTime) -> Result<()> {
        const OP: &str = "write";
        let Some(name) = path.file_name() else {
            return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(path));
        };
        let generation = self.next_generation();
        let dir = self
            .root
            .parent_mut(OP, path)
            .map_err(|e| on_the_way(e, OP, path))?;
        // One search of the directory, not three: a batch writes thousands of files into one.
        let slot = dir.entries.entry(name.to_string());
        let old_size = match &slot {
            Entry::Occupied(o) => match o.get() {
                Node::Dir(_) => {
                    return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(path));
                }
                Node::File(f) => f.size(),
            },
            Entry::Vacant(_) => 0,
        };
        self.ledger
            .reserve(data.len() as u64)
            .map_err(|e| e.with_path(path))?;
        // An empty slice of a larger buffer must not keep that buffer.
        let data = if data.is_empty() { Bytes::new() } else { data };
        let file = Node::File(FileNode {
            chunks: Chunks::One(data),
            modified: now,
            generation,
        });
        match slot {
            Entry::Occupied(mut o) => {
                o.insert(file);
            }
            Entry::Vacant(v) => {
                v.insert(file);
            }
        }
        dir.modified = Some(now);
        self.ledger.release(old_size);
        Ok(())
    }

    fn file(&self, op: &'static str, path: &VPath) -> Result<&FileNode> {
        if path.is_root() {
            return Err(Error::new(ErrorKind::IsADirectory, op).with_path(path));
        }
        match self.node(op, path)? {
            Node::File(f) => Ok(f),
            Node::Dir(_) => Err(Error::new(ErrorKind::IsADirectory, op).with_path(path)),
        }
    }
}

/// A write in progress: chunks kept in order, bytes reserved against the capacity.
pub struct MemoryWriter {
    staged: MemoryStaged,
}

/// A sealed write. Dropping it returns its reservation.
pub struct MemoryStaged {
    chunks: Vec<Bytes>,
    size: u64,
    /// Bytes this write reserved in the ledger (excludes chunks carried over by an append).
    reserved: u64,
    ledger: Arc<Ledger>,
}

impl Drop for MemoryStaged {
    fn drop(&mut self) {
        self.ledger.release(self.reserved);
    }
}

impl FileWriter for MemoryWriter {
    type Staged = MemoryStaged;

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let n = chunk.len() as u64;
        self.staged.ledger.reserve(n)?;
        self.staged.reserved += n;
        self.staged.size += n;
        self.staged.chunks.push(chunk);
        Ok(())
    }

    async fn finish(self) -> Result<MemoryStaged> {
        Ok(self.staged)
    }
}

impl Store for MemoryStore {
    type Writer = MemoryWriter;

    fn capability(&self) -> Capability {
        Capability {
            fast_copy: true,
            batch_small_copies: false,
            capacity: self.ledger.capacity.is_some(),
        }
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        if path.is_root() {
            return Ok(Meta {
                kind: EntryKind::Dir,
                size: 0,
                modified: self.root.modified.unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(self.node("stat", path)?.meta())
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        let dir = self.dir("list", path)?;
        Ok(dir
            .entries
            .iter()
            .map(|(name, node)| DirEntry {
                name: name.clone(),
                meta: node.meta(),
            })
            .collect())
    }

    async fn list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        // A directory is a sorted map: the cursor is the last name listed (after `m/`, which no
        // other store's cursor starts with), and the next page starts after it, whatever
        // changed meanwhile.
        let after = match &cursor {
            Some(c) => Bound::Excluded(c.as_str().strip_prefix("m/").ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, "list")
                    .with_path(path)
                    .with_detail("not a listing cursor")
            })?),
            None => Bound::Unbounded,
        };
        let dir = self.dir("list", path)?;
        let mut rest = dir.entries.range::<str, _>((after, Bound::Unbounded));
        let entries: Vec<DirEntry> = rest
            .by_ref()
            .take(limit.max(1))
            .map(|(name, node)| DirEntry {
                name: name.clone(),
                meta: node.meta(),
            })
            .collect();
        let more = rest.next().is_some();
        let next = entries
            .last()
            .filter(|_| more)
            .map(|last| ListCursor::new(format!("m/{}", last.name)));
        Ok(ListPage { entries, next })
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        const OP: &str = "mkdir";
        if path.is_root() {
            return if parents {
                Ok(())
            } else {
                Err(Error::new(ErrorKind::AlreadyExists, OP).with_path(path))
            };
        }
        let now = SystemTime::now();
        if parents {
            let mut dir = &mut self.root;
            let last = path.components().count() - 1;
            for (depth, name) in path.components().enumerate() {
                let entry = dir.entries.entry(name.to_string()).or_insert_with(|| {
                    Node::Dir(DirNode {
                        entries: BTreeMap::new(),
                        modified: Some(now),
                    })
                });
                match entry {
                    Node::Dir(d) => dir = d,
                    Node::File(_) => {
                        // By position, not by name: in `/x/x`, a file `/x` is in the way.
                        let kind = if depth == last {
                            ErrorKind::AlreadyExists
                        } else {
                            ErrorKind::NotADirectory
                        };
                        return Err(Error::new(kind, OP).with_path(path));
                    }
                }
            }
            return Ok(());
        }
        let (dir, name) = self.parent_mut(OP, path)?;
        if dir.entries.contains_key(name) {
            return Err(Error::new(ErrorKind::AlreadyExists, OP).with_path(path));
        }
        dir.entries.insert(
            name.to_string(),
            Node::Dir(DirNode {
                entries: BTreeMap::new(),
                modified: Some(now),
            }),
        );
        dir.modified = Some(now);
        Ok(())
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        let now = SystemTime::now();
        if path.is_root() {
            self.root.modified = Some(now);
            return Ok(());
        }
        let generation = self.next_generation();
        let (dir, name) = self.parent_mut("touch", path)?;
        match dir.entries.get_mut(name) {
            Some(Node::File(f)) => {
                f.modified = now;
                f.generation = generation;
            }
            Some(Node::Dir(d)) => d.modified = Some(now),
            None => {
                dir.entries.insert(
                    name.to_string(),
                    Node::File(FileNode {
                        chunks: Chunks::One(Bytes::new()),
                        modified: now,
                        generation,
                    }),
                );
                dir.modified = Some(now);
            }
        }
        Ok(())
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rm";
        if path.is_root() {
            return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(path));
        }
        let (dir, name) = self.parent_mut(OP, path)?;
        match dir.entries.get(name) {
            None => Err(not_found(OP, path)),
            Some(Node::Dir(_)) => Err(Error::new(ErrorKind::IsADirectory, OP).with_path(path)),
            Some(Node::File(f)) => {
                let size = f.size();
                dir.entries.remove(name);
                dir.modified = Some(SystemTime::now());
                self.ledger.release(size);
                Ok(())
            }
        }
    }

    async fn remove_file_if(&mut self, path: &VPath, version: &Version) -> Result<()> {
        // The check and the removal are one step: nothing else runs in the actor between them.
        let current = Version::memory(self.file("mv", path)?.generation);
        if !version.matches(&current) {
            return Err(changed_during_move(path));
        }
        self.remove_file(path).await
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rmdir";
        let (dir, name) = self.parent_mut(OP, path)?;
        match dir.entries.get(name) {
            None => Err(not_found(OP, path)),
            Some(Node::File(_)) => Err(Error::new(ErrorKind::NotADirectory, OP).with_path(path)),
            Some(Node::Dir(d)) if !d.entries.is_empty() => {
                Err(Error::new(ErrorKind::DirectoryNotEmpty, OP).with_path(path))
            }
            Some(Node::Dir(_)) => {
                dir.entries.remove(name);
                dir.modified = Some(SystemTime::now());
                Ok(())
            }
        }
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rm";
        let (dir, name) = self.parent_mut(OP, path)?;
        match dir.entries.get(name) {
            None => Err(not_found(OP, path)),
            Some(Node::File(_)) => Err(Error::new(ErrorKind::NotADirectory, OP).with_path(path)),
            Some(Node::Dir(_)) => {
                let removed = dir.entries.remove(name).map_or(0, |n| n.bytes());
                dir.modified = Some(SystemTime::now());
                self.ledger.release(removed);
                Ok(())
            }
        }
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        const OP: &str = "mv";
        crate::store::refuse_root_rename(OP, from, to)?;
        let from_is_dir = self.node(OP, from)?.meta().is_dir();
        if from == to {
            return Ok(());
        }
        if from_is_dir && to.starts_with(from) {
            return Err(Error::new(ErrorKind::InvalidInput, OP)
                .with_path(to)
                .with_detail(format!("cannot move {from} into itself")));
        }
        let to_parent = to.parent().unwrap_or_else(VPath::root);
        let to_name = to.file_name().unwrap_or_default().to_string();
        let replaced_bytes = {
            let dir = self
                .dir(OP, &to_parent)
                .map_err(|e| on_the_way(e, OP, to))?;
            match (dir.entries.get(&to_name), from_is_dir) {
                (None, _) => 0,
                (Some(Node::File(f)), false) => f.size(),
                (Some(Node::Dir(_)), false) => {
                    return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(to));
                }
                (Some(Node::File(_)), true) => {
                    return Err(Error::new(ErrorKind::NotADirectory, OP).with_path(to));
                }
                (Some(Node::Dir(d)), true) if !d.entries.is_empty() => {
                    return Err(Error::new(ErrorKind::DirectoryNotEmpty, OP).with_path(to));
                }
                (Some(Node::Dir(_)), true) => 0,
            }
        };
        let now = SystemTime::now();
        let (from_dir, from_name) = self.parent_mut(OP, from)?;
        let node = from_dir
            .entries
            .remove(from_name)
            .ok_or_else(|| not_found(OP, from))?;
        from_dir.modified = Some(now);
        // Checked above: the destination's parent exists and is a directory.
        let to_dir = self.dir_mut(OP, &to_parent)?;
        to_dir.entries.insert(to_name, node);
        to_dir.modified = Some(now);
        self.ledger.release(replaced_bytes);
        Ok(())
    }

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        // Opening is a lookup in the tree only the actor may touch: done here, handed out ready.
        let file = self.file("read", path)?.clone();
        let stream = futures::stream::iter(file.chunks.to_vec().into_iter().map(Ok));
        let reader = FileReader {
            size: file.size(),
            version: Version::memory(file.generation),
            chunks: stream.boxed(),
        };
        Ok(futures::future::ready(Ok(reader)).boxed())
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<MemoryWriter> {
        let existing = self.check_writable("write", path)?;
        let (chunks, size) = match (mode, existing) {
            (WriteMode::Append, Some(f)) => (f.chunks.to_vec(), f.size()),
            _ => (Vec::new(), 0),
        };
        Ok(MemoryWriter {
            staged: MemoryStaged {
                chunks,
                size,
                reserved: 0,
                ledger: self.ledger.clone(),
            },
        })
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        mut staged: MemoryStaged,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        // Committing is a quick change to the tree only the actor may touch: done here, handed
        // out ready.
        const OP: &str = "write";
        let old_size = self.check_writable(OP, path)?.map_or(0, FileNode::size);
        let now = SystemTime::now();
        let generation = self.next_generation();
        let (dir, name) = self.parent_mut(OP, path)?;
        let chunks = std::mem::take(&mut staged.chunks);
        dir.entries.insert(
            name.to_string(),
            Node::File(FileNode {
                chunks: Chunks::new(chunks),
                modified: now,
                generation,
            }),
        );
        dir.modified = Some(now);
        // The new file's bytes are now owned by the tree: the reservation becomes its usage, the
        // old file's usage goes, and bytes carried over by an append are counted again.
        let carried = staged.size - staged.reserved;
        staged.reserved = 0;
        self.ledger.release(old_size);
        self.ledger.used.fetch_add(carried, Ordering::AcqRel);
        Ok(futures::future::ready(Ok(())).boxed())
    }

    async fn start_write_files(&mut self, files: Vec<WholeFile>) -> Result<BatchFuture<()>> {
        // Each file commits here, in the actor, as `start_commit` commits one: a batch is
        // handed out done, its files all modified at the same time.
        let now = SystemTime::now();
        let done: Vec<Result<()>> = files
            .into_iter()
            .map(|WholeFile { path, data }| self.write_whole(&path, data, now))
            .collect();
        Ok(futures::future::ready(done).boxed())
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<(MemoryStaged, u64)>>> {
        let file = self.file("cp", from)?.clone();
        self.check_writable("cp", to)?;
        self.ledger
            .reserve(file.size())
            .map_err(|e| e.with_path(to))?;
        let staged = MemoryStaged {
            chunks: file.chunks.to_vec(),
            size: file.size(),
            reserved: file.size(),
            ledger: self.ledger.clone(),
        };
        Ok(futures::future::ready(Ok((staged, file.size()))).boxed())
    }

    async fn usage(&mut self) -> Result<Usage> {
        fn walk(dir: &DirNode, usage: &mut Usage) {
            for node in dir.entries.values() {
                match node {
                    Node::File(f) => {
                        usage.files += 1;
                        usage.bytes += f.size();
                    }
                    Node::Dir(d) => {
                        usage.dirs += 1;
                        walk(d, usage);
                    }
                }
            }
        }
        let used = self.ledger.used.load(Ordering::Relaxed);
        let mut usage = Usage {
            capacity: self.ledger.capacity,
            used: Some(used),
            available: self.ledger.capacity.map(|c| c.saturating_sub(used)),
            ..Usage::default()
        };
        walk(&self.root, &mut usage);
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory's entries are a `BTreeMap<String, Node>`, eleven to a leaf: at 56 bytes a
    /// node, a leaf takes 896 bytes, 128 fewer than at 64 (the next jemalloc class).
    #[test]
    fn a_node_stays_small_enough_for_its_leaf_to_fit_896_bytes() {
        assert!(
            std::mem::size_of::<Node>() <= 56,
            "{}",
            std::mem::size_of::<Node>()
        );
    }

    fn file(path: &str, data: &'static [u8]) -> WholeFile {
        WholeFile {
            path: VPath::parse(path).unwrap(),
            data: Bytes::from_static(data),
        }
    }

    /// A batch fills the capacity file by file: what fits is committed, what does not is
    /// refused by name and reserves nothing, and a replaced file's bytes are given back.
    #[tokio::test]
    async fn a_batch_is_refused_file_by_file_at_the_capacity() {
        let mut store = MemoryStore::new(Some(10));
        store
            .mkdir(&VPath::parse("/d").unwrap(), false)
            .await
            .unwrap();
        let batch = vec![
            file("/d/a", b"1234"),
            file("/d/b", b"12345678"),
            file("/d/c", b"123"),
            file("/d/a", b"1"),
            file("/d/b", b"12345"),
        ];
        let done = store.start_write_files(batch).await.unwrap().await;
        let kinds: Vec<_> = done
            .iter()
            .map(|r| r.as_ref().err().map(Error::kind))
            .collect();
        assert_eq!(
            kinds,
            [None, Some(ErrorKind::NoSpace), None, None, None],
            "{done:?}"
        );
        let refused = done[1].as_ref().unwrap_err();
        assert_eq!(refused.path(), Some(&VPath::parse("/d/b").unwrap()));
        // a (1) + c (3) + b (5): the first a's 4 bytes were given back when it was replaced.
        assert_eq!(store.ledger.used.load(Ordering::Relaxed), 9);
        assert_eq!(store.usage().await.unwrap().bytes, 9);
    }

    #[test]
    fn a_file_of_many_chunks_is_as_large_as_they_are() {
        let chunks = Chunks::new(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]);
        assert_eq!(chunks.size(), 5);
        assert_eq!(chunks.to_vec().concat(), b"abcde");
        assert_eq!(Chunks::new(Vec::new()).size(), 0);
        assert!(Chunks::new(Vec::new()).to_vec().is_empty());
    }
}
