//! The chaos store: a wrapper around any store that, driven by a seed, delays operations, hands
//! out read streams in short pieces, and (when told to) fails random operations before they take
//! effect: store calls, chunk writes, seals, commits, copies, batches, and read streams midway.
//!
//! Two uses:
//! - [`Chaos::calm`] only delays and shortens reads. Nothing may change: the conformance suite
//!   runs over chaos-wrapped stores (`chaos_*_store::<case>`) and every case must pass as is.
//! - [`Chaos::failing`] also fails. Transfers over every store pair, from many seeds, must then
//!   end whole or fail cleanly: a success leaves exactly the tree of a success; a failure names
//!   an injected fault, and leaves every target file old or whole, every source of a copy intact,
//!   every moved file at its source or whole at its target, nothing changed elsewhere, and
//!   nothing staged behind (checked with the model-based tests' tree and invariants).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use mavfs_actors::store::{
    BatchFuture, Capability, Copied, DirEntry, FileReader, FileWriter, ListCursor, ListPage, Meta,
    Store, Usage, Version, WholeFile, WholeRead, WriteMode,
};
use mavfs_actors::{Error, ErrorKind, Result, VPath};

/// The word every injected failure carries in its detail.
pub const INJECTED: &str = "injected chaos";

/// The dice of one chaos store (cheap to clone; clones share them).
#[derive(Clone)]
pub struct Chaos {
    state: Arc<ChaosState>,
}

struct ChaosState {
    /// xorshift64*: small, seeded, and the same sequence for the same seed and call order.
    rng: Mutex<u64>,
    /// Failures per 1,000 fallible steps while armed.
    fail_per_mille: AtomicU32,
    armed: AtomicBool,
    /// Failures injected so far, so tests can tell a run that met chaos from one that did not.
    failures: AtomicU64,
}

impl Chaos {
    /// Delays and short reads only: results must not change.
    pub fn calm(seed: u64) -> Chaos {
        Chaos::new(seed, 0)
    }

    /// Delays, short reads, and a failure in `per_mille` of 1,000 fallible steps.
    pub fn failing(seed: u64, per_mille: u32) -> Chaos {
        Chaos::new(seed, per_mille)
    }

    fn new(seed: u64, per_mille: u32) -> Chaos {
        Chaos {
            state: Arc::new(ChaosState {
                rng: Mutex::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
                fail_per_mille: AtomicU32::new(per_mille),
                armed: AtomicBool::new(true),
                failures: AtomicU64::new(0),
            }),
        }
    }

    /// Turns chaos on or off for the steps taken from now on (off: the store is the store).
    pub fn arm(&self, armed: bool) {
        self.state.armed.store(armed, Ordering::SeqCst);
    }

    fn armed(&self) -> bool {
        self.state.armed.load(Ordering::SeqCst)
    }

    /// Failures injected so far.
    pub fn failures(&self) -> u64 {
        self.state.failures.load(Ordering::SeqCst)
    }

    fn roll(&self, below: u64) -> u64 {
        let mut x = self.state.rng.lock().unwrap();
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % below.max(1)
    }

    /// A short pause now and then (a slow disk or network), so that concurrent steps interleave
    /// differently from run to run.
    async fn delay(&self) {
        if self.armed() && self.roll(4) == 0 {
            tokio::time::sleep(Duration::from_micros(self.roll(2000))).await;
        }
    }

    /// Fails this step, before it takes effect, with the configured odds.
    fn fail(&self, op: &'static str, path: &VPath) -> Result<()> {
        let odds = u64::from(self.state.fail_per_mille.load(Ordering::Relaxed));
        if self.armed() && odds > 0 && self.roll(1000) < odds {
            self.state.failures.fetch_add(1, Ordering::SeqCst);
            return Err(Error::new(ErrorKind::Io, op)
                .with_path(path)
                .with_detail(INJECTED));
        }
        Ok(())
    }

    async fn step(&self, op: &'static str, path: &VPath) -> Result<()> {
        self.delay().await;
        self.fail(op, path)
    }

    /// `reader`, handed out in pieces of random length, maybe failing before a piece.
    fn wrap(&self, path: &VPath, reader: FileReader) -> FileReader {
        if !self.armed() {
            return reader;
        }
        let chaos = self.clone();
        let path = path.clone();
        let pieces = reader
            .chunks
            .flat_map(move |chunk| {
                let pieces: Vec<Result<Bytes>> = match chunk {
                    Err(e) => vec![Err(e)],
                    Ok(mut chunk) => {
                        let mut out = Vec::new();
                        while chunk.len() > 1 && chaos.roll(3) == 0 {
                            let cut = 1 + chaos.roll(chunk.len() as u64 - 1) as usize;
                            out.push(Ok(chunk.split_to(cut)));
                        }
                        out.push(Ok(chunk));
                        out.into_iter()
                            .map(|piece| piece.and_then(|p| chaos.fail("read", &path).map(|()| p)))
                            .collect()
                    }
                };
                futures::stream::iter(pieces)
            })
            // The first error ends the stream, as a store's own read error does.
            .scan(false, |failed, piece| {
                let out = (!*failed).then_some(piece);
                if let Some(Err(_)) = &out {
                    *failed = true;
                }
                futures::future::ready(out)
            });
        FileReader {
            size: reader.size,
            version: reader.version,
            chunks: pieces.boxed(),
        }
    }
}

/// A store that delegates every operation to `inner`, after the chaos of [`Chaos`].
pub struct ChaosStore<S: Store> {
    pub inner: S,
    pub chaos: Chaos,
}

/// A writer whose chunk writes and seal may fail (before reaching the store's writer).
pub struct ChaosWriter<W: FileWriter> {
    inner: W,
    chaos: Chaos,
    path: VPath,
}

impl<W: FileWriter> FileWriter for ChaosWriter<W> {
    type Staged = W::Staged;

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.chaos.step("write", &self.path).await?;
        self.inner.write(chunk).await
    }

    async fn finish(self) -> Result<Self::Staged> {
        self.chaos.step("write", &self.path).await?;
        self.inner.finish().await
    }
}

type StagedOf<S> = <<S as Store>::Writer as FileWriter>::Staged;

impl<S: Store> Store for ChaosStore<S> {
    type Writer = ChaosWriter<S::Writer>;

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        self.chaos.step("stat", path).await?;
        self.inner.stat(path).await
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        self.chaos.step("ls", path).await?;
        self.inner.list(path).await
    }

    async fn list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        self.chaos.step("ls", path).await?;
        self.inner.list_page(path, cursor, limit).await
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        self.chaos.step("mkdir", path).await?;
        self.inner.mkdir(path, parents).await
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        self.chaos.step("touch", path).await?;
        self.inner.touch(path).await
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        self.chaos.step("rm", path).await?;
        self.inner.remove_file(path).await
    }

    async fn remove_file_if(&mut self, path: &VPath, version: &Version) -> Result<()> {
        self.chaos.step("rm", path).await?;
        self.inner.remove_file_if(path, version).await
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        self.chaos.step("rmdir", path).await?;
        self.inner.remove_dir(path).await
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        self.chaos.step("rm", path).await?;
        self.inner.remove_all(path).await
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        self.chaos.step("mv", from).await?;
        self.inner.rename(from, to).await
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<Self::Writer> {
        self.chaos.step("write", path).await?;
        Ok(ChaosWriter {
            inner: self.inner.open_write(path, mode).await?,
            chaos: self.chaos.clone(),
            path: path.clone(),
        })
    }

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        self.chaos.step("read", path).await?;
        let open = self.inner.start_open_read(path).await?;
        let chaos = self.chaos.clone();
        let path = path.clone();
        Ok(async move { Ok(chaos.wrap(&path, open.await?)) }.boxed())
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        staged: StagedOf<S>,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        // A failure here drops `staged`: the store must discard it.
        self.chaos.step("write", path).await?;
        let commit = self.inner.start_commit(path, staged).await?;
        let chaos = self.chaos.clone();
        Ok(async move {
            chaos.delay().await;
            commit.await
        }
        .boxed())
    }

    async fn start_read_files(
        &mut self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> Result<BatchFuture<WholeRead>> {
        if let Some(first) = paths.first() {
            self.chaos.step("read", first).await?;
        }
        self.inner.start_read_files(paths, limit).await
    }

    async fn start_write_files(&mut self, files: Vec<WholeFile>) -> Result<BatchFuture<()>> {
        if let Some(first) = files.first() {
            self.chaos.step("write", &first.path).await?;
        }
        self.inner.start_write_files(files).await
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<Copied<Self>>>> {
        self.chaos.step("cp", from).await?;
        let copy = self.inner.copy_file(from, to).await?;
        let chaos = self.chaos.clone();
        let to = to.clone();
        Ok(async move {
            // Failing here drops the copy before it ran: nothing may stay staged.
            chaos.step("cp", &to).await?;
            copy.await
        }
        .boxed())
    }

    async fn usage(&mut self) -> Result<Usage> {
        self.inner.usage().await
    }
}
