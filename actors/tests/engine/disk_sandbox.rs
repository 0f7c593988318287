//! `DiskStore` behaviour the shared conformance suite cannot express: the sandbox (symlinks that
//! lead outside the root, relative `../..` escapes), special files refused without blocking,
//! staging (swept on open, hidden, nothing left by abandoned writes) and atomic commit. It also
//! checks that the disk store answers every contract error with the same kind as the memory store.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::error::{ErrorKind, Result};
use mavfs_actors::path::VPath;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::store::{EntryKind, FileReader, FileWriter, Store, WholeRead, WriteMode};

use mavfs_test_support::staging as staging_support;
use tempfile::TempDir;

const CANARY: &[u8] = b"canary: nothing may change me\n";

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// Opening and committing in one step, both parts of [`Store::start_open_read`] and
/// [`Store::start_commit`] run at once, as these tests call a store directly, without an actor.
trait OneStep: Store {
    async fn open_read(&mut self, path: &VPath) -> Result<FileReader> {
        self.start_open_read(path).await?.await
    }

    async fn commit(
        &mut self,
        path: &VPath,
        staged: <Self::Writer as FileWriter>::Staged,
    ) -> Result<()> {
        self.start_commit(path, staged).await?.await
    }
}

impl<S: Store> OneStep for S {}

/// A store root next to a directory outside it holding a canary, with escaping symlinks:
/// `/abs` (absolute, to the outside directory), `/abs_file` (absolute, to the canary),
/// `/sub/rel` and `/sub/rel_file` (relative, `../../outside...`).
struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    outside: PathBuf,
    store: DiskStore,
}

impl Fixture {
    fn new() -> Self {
        Self::with_options(DiskOptions {
            chunk_size: 4,
            ..DiskOptions::default()
        })
    }

    fn with_options(options: DiskOptions) -> Self {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("canary"), CANARY).unwrap();
        symlink(&outside, root.join("abs")).unwrap();
        symlink(outside.join("canary"), root.join("abs_file")).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        symlink("../../outside", root.join("sub/rel")).unwrap();
        symlink("../../outside/canary", root.join("sub/rel_file")).unwrap();
        std::fs::write(root.join("ok"), b"inside").unwrap();
        let store = DiskStore::open(&root, options).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            outside,
            store,
        }
    }

    /// The outside directory holds exactly the canary, byte-identical.
    fn assert_outside_intact(&self) {
        assert_eq!(std::fs::read(self.outside.join("canary")).unwrap(), CANARY);
        assert_eq!(names(&self.outside), vec!["canary".to_string()]);
    }

    fn staging(&self) -> PathBuf {
        self.root.join(".mavfs-staging")
    }

    /// Temp files anywhere under the staging directory (the live stores' lock files aside).
    fn temp_files(&self) -> Vec<PathBuf> {
        staging_support::temp_files(&self.staging())
    }

    fn assert_staging_empty(&self) {
        assert_eq!(self.temp_files(), Vec::<PathBuf>::new());
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn kind<T>(result: Result<T>) -> ErrorKind {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind(),
    }
}

async fn read_all<S: Store>(store: &mut S, path: &str) -> Result<Vec<u8>> {
    let reader = store.open_read(&p(path)).await?;
    let mut out = Vec::new();
    let mut chunks = reader.chunks;
    while let Some(chunk) = chunks.next().await {
        out.extend_from_slice(&chunk?);
    }
    assert_eq!(out.len() as u64, reader.size);
    Ok(out)
}

async fn write_file<S: Store>(store: &mut S, path: &str, data: &[u8]) -> Result<()> {
    let mut writer = store.open_write(&p(path), WriteMode::Replace).await?;
    writer.write(Bytes::copy_from_slice(data)).await?;
    let staged = writer.finish().await?;
    store.commit(&p(path), staged).await
}

#[tokio::test]
async fn reads_through_escaping_symlinks_are_refused() {
    let mut f = Fixture::new();
    for path in [
        "/abs/canary",
        "/abs_file",
        "/sub/rel/canary",
        "/sub/rel_file",
    ] {
        let err = f.store.open_read(&p(path)).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{path}");
        assert_eq!(err.path(), Some(&p(path)));
        assert_eq!(err.op(), "read");
    }
    // A batched read (a transfer's, which opens a listed file without a stat first) refuses the
    // same links, and a directory that a link to the outside replaced after it was listed.
    std::fs::create_dir(f.root.join("listed")).unwrap();
    std::fs::write(f.root.join("listed/canary"), b"inside").unwrap();
    std::fs::rename(f.root.join("listed"), f.root.join("was_listed")).unwrap();
    symlink(&f.outside, f.root.join("listed")).unwrap();
    symlink("ok", f.root.join("link_in")).unwrap();
    let paths = [
        "/abs/canary",
        "/abs_file",
        "/sub/rel/canary",
        "/sub/rel_file",
        "/listed/canary",
        "/ok",
        "/link_in",
    ];
    let batch = paths.iter().map(|s| p(s)).collect();
    let reads = f
        .store
        .start_read_files(batch, 1 << 20)
        .await
        .unwrap()
        .await;
    for (path, read) in paths.iter().zip(&reads).take(5) {
        let err = read
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{path}: read"));
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{path}");
        assert_eq!(err.path(), Some(&p(path)));
    }
    // A link that stays inside is followed, the long way.
    for read in &reads[5..] {
        assert!(
            matches!(read, Ok(WholeRead::Data(d, _)) if d == &b"inside"[..]),
            "{read:?}"
        );
    }
    assert_eq!(
        kind(f.store.list(&p("/abs")).await),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        kind(f.store.list(&p("/sub/rel")).await),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        kind(f.store.stat(&p("/abs/canary")).await),
        ErrorKind::PermissionDenied
    );
    // The links themselves are entries: listed and stat'ed as symlinks, never failing the listing.
    for path in ["/abs", "/abs_file", "/sub/rel", "/sub/rel_file"] {
        assert_eq!(
            f.store.stat(&p(path)).await.unwrap().kind,
            EntryKind::Symlink
        );
    }
    let root = f.store.list(&p("/")).await.unwrap();
    let kind_of = |name: &str| root.iter().find(|e| e.name == name).unwrap().meta.kind;
    assert_eq!(kind_of("abs"), EntryKind::Symlink);
    assert_eq!(kind_of("abs_file"), EntryKind::Symlink);
    assert_eq!(kind_of("ok"), EntryKind::File);
    assert_eq!(kind_of("sub"), EntryKind::Dir);
    let sub = f.store.list(&p("/sub")).await.unwrap();
    assert!(sub.iter().all(|e| e.meta.kind == EntryKind::Symlink));
    assert_eq!(sub.len(), 2);
    f.assert_outside_intact();
}

#[tokio::test]
async fn writes_through_escaping_symlinks_are_refused() {
    let mut f = Fixture::new();
    let targets = [
        "/abs/canary",
        "/abs/new",
        "/abs_file",
        "/sub/rel/canary",
        "/sub/rel_file",
    ];
    for path in targets {
        for mode in [WriteMode::Replace, WriteMode::Append] {
            let err = f.store.open_write(&p(path), mode).await.err().unwrap();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{path} {mode:?}");
            assert_eq!(err.path(), Some(&p(path)));
        }
        // A file staged for an innocent path, then committed onto the escaping one.
        let mut writer = f
            .store
            .open_write(&p("/innocent"), WriteMode::Replace)
            .await
            .unwrap();
        writer.write(Bytes::from_static(b"evil")).await.unwrap();
        let staged = writer.finish().await.unwrap();
        assert_eq!(
            kind(f.store.commit(&p(path), staged).await),
            ErrorKind::PermissionDenied,
            "{path}"
        );
        assert_eq!(
            kind(f.store.touch(&p(path)).await),
            ErrorKind::PermissionDenied
        );
    }
    for parents in [false, true] {
        assert_eq!(
            kind(f.store.mkdir(&p("/abs/newdir"), parents).await),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            kind(f.store.mkdir(&p("/sub/rel/newdir"), parents).await),
            ErrorKind::PermissionDenied
        );
    }
    f.assert_outside_intact();
    f.assert_staging_empty();
}

#[tokio::test]
async fn a_symlink_swapped_in_before_commit_is_refused() {
    let mut f = Fixture::new();
    let mut writer = f
        .store
        .open_write(&p("/victim"), WriteMode::Replace)
        .await
        .unwrap();
    writer.write(Bytes::from_static(b"evil")).await.unwrap();
    let staged = writer.finish().await.unwrap();
    symlink(f.outside.join("canary"), f.root.join("victim")).unwrap();
    assert_eq!(
        kind(f.store.commit(&p("/victim"), staged).await),
        ErrorKind::PermissionDenied
    );
    f.assert_outside_intact();
    f.assert_staging_empty();
}

#[tokio::test]
async fn copies_through_escaping_symlinks_are_refused() {
    let mut f = Fixture::new();
    let cases = [
        ("/abs/canary", "/stolen"),
        ("/abs_file", "/stolen"),
        ("/sub/rel_file", "/stolen"),
        ("/ok", "/abs/canary"),
        ("/ok", "/abs_file"),
        ("/ok", "/sub/rel/new"),
        ("/ok", "/sub/rel_file"),
    ];
    for (from, to) in cases {
        let err = f.store.copy_file(&p(from), &p(to)).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{from} -> {to}");
        assert_eq!(err.op(), "cp");
    }
    assert_eq!(kind(f.store.stat(&p("/stolen")).await), ErrorKind::NotFound);
    f.assert_outside_intact();
    f.assert_staging_empty();
}

#[tokio::test]
async fn renames_through_escaping_symlinks_are_refused_and_links_move_themselves() {
    let mut f = Fixture::new();
    let refused = [
        ("/abs/canary", "/stolen"),
        ("/sub/rel/canary", "/stolen"),
        ("/ok", "/abs/canary"),
        ("/ok", "/abs/new"),
        ("/ok", "/sub/rel/new"),
    ];
    for (from, to) in refused {
        let err = f.store.rename(&p(from), &p(to)).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{from} -> {to}");
        assert_eq!(err.op(), "mv");
    }
    // Moving a link moves the link; renaming a file onto a link replaces the link.
    f.store.rename(&p("/abs"), &p("/moved")).await.unwrap();
    assert!(
        std::fs::symlink_metadata(f.root.join("moved"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        f.store.stat(&p("/moved")).await.unwrap().kind,
        EntryKind::Symlink
    );
    f.store.rename(&p("/ok"), &p("/abs_file")).await.unwrap();
    assert_eq!(
        f.store.stat(&p("/abs_file")).await.unwrap().kind,
        EntryKind::File
    );
    assert_eq!(
        read_all(&mut f.store, "/abs_file").await.unwrap(),
        b"inside"
    );
    f.assert_outside_intact();
}

#[tokio::test]
async fn removals_take_links_never_their_targets() {
    let mut f = Fixture::new();
    for path in ["/abs/canary", "/sub/rel/canary"] {
        assert_eq!(
            kind(f.store.remove_file(&p(path)).await),
            ErrorKind::PermissionDenied
        );
    }
    assert_eq!(
        kind(f.store.remove_all(&p("/abs/canary")).await),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        kind(f.store.remove_dir(&p("/abs")).await),
        ErrorKind::NotADirectory
    );
    // A tree holding an escaping link goes without following it.
    std::fs::create_dir(f.root.join("tree")).unwrap();
    symlink(&f.outside, f.root.join("tree/link")).unwrap();
    f.store.remove_all(&p("/tree")).await.unwrap();
    // remove_all of a link, remove_file of links to a directory and to a file.
    f.store.remove_all(&p("/abs")).await.unwrap();
    f.store.remove_file(&p("/sub/rel")).await.unwrap();
    f.store.remove_file(&p("/abs_file")).await.unwrap();
    f.store.remove_all(&p("/sub/rel_file")).await.unwrap();
    assert_eq!(names(&f.root), vec![".mavfs-staging", "ok", "sub"]);
    assert_eq!(names(&f.root.join("sub")), Vec::<String>::new());
    f.assert_outside_intact();
}

#[tokio::test]
async fn symlinks_inside_the_root_are_followed() {
    let mut f = Fixture::new();
    std::fs::create_dir_all(f.root.join("data/deep")).unwrap();
    std::fs::write(f.root.join("data/f"), b"hello").unwrap();
    symlink("data", f.root.join("link_dir")).unwrap();
    symlink("data/f", f.root.join("link_file")).unwrap();
    symlink("../f", f.root.join("data/deep/up")).unwrap();
    symlink("missing", f.root.join("dangling")).unwrap();
    assert_eq!(
        read_all(&mut f.store, "/link_file").await.unwrap(),
        b"hello"
    );
    assert_eq!(
        read_all(&mut f.store, "/link_dir/f").await.unwrap(),
        b"hello"
    );
    assert_eq!(
        read_all(&mut f.store, "/data/deep/up").await.unwrap(),
        b"hello"
    );
    // Listing through a link works; the links it lists are shown as links, never followed, so
    // no walk built on listings can loop.
    let deep = f.store.list(&p("/link_dir/deep")).await.unwrap();
    assert_eq!(deep[0].meta.kind, EntryKind::Symlink);
    let root = f.store.list(&p("/")).await.unwrap();
    let kind_of = |name: &str| root.iter().find(|e| e.name == name).unwrap().meta.kind;
    assert_eq!(kind_of("link_dir"), EntryKind::Symlink);
    assert_eq!(kind_of("link_file"), EntryKind::Symlink);
    assert_eq!(kind_of("dangling"), EntryKind::Symlink);
    assert_eq!(
        kind(f.store.open_read(&p("/dangling")).await),
        ErrorKind::NotFound
    );
    // Writing onto a link replaces its target, as `>` does; the link stays.
    write_file(&mut f.store, "/link_file", b"replaced")
        .await
        .unwrap();
    assert!(
        std::fs::symlink_metadata(f.root.join("link_file"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(std::fs::read(f.root.join("data/f")).unwrap(), b"replaced");
    // Appending through a link too.
    let mut writer = f
        .store
        .open_write(&p("/link_file"), WriteMode::Append)
        .await
        .unwrap();
    writer.write(Bytes::from_static(b"+more")).await.unwrap();
    let staged = writer.finish().await.unwrap();
    f.store.commit(&p("/link_file"), staged).await.unwrap();
    assert_eq!(
        std::fs::read(f.root.join("data/f")).unwrap(),
        b"replaced+more"
    );
    // A dangling link inside the root is replaced by the written file.
    write_file(&mut f.store, "/dangling", b"new").await.unwrap();
    assert_eq!(
        f.store.stat(&p("/dangling")).await.unwrap().kind,
        EntryKind::File
    );
    f.assert_outside_intact();
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// Runs `fut`, failing the test if it does not finish promptly (a FIFO open that blocks).
async fn prompt<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("the operation blocked")
}

#[tokio::test]
async fn special_files_are_refused_without_blocking() {
    let mut f = Fixture::new();
    mkfifo(&f.root.join("fifo"));
    symlink("fifo", f.root.join("fifo_link")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(f.root.join("socket")).unwrap();
    for path in ["/fifo", "/fifo_link", "/socket"] {
        let err = prompt(f.store.open_read(&p(path))).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{path}");
        for mode in [WriteMode::Replace, WriteMode::Append] {
            let err = prompt(f.store.open_write(&p(path), mode))
                .await
                .err()
                .unwrap();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{path}");
        }
        let err = prompt(f.store.copy_file(&p(path), &p("/x")))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{path}");
        let err = prompt(f.store.copy_file(&p("/ok"), &p(path)))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{path}");
        let mut writer = f
            .store
            .open_write(&p("/x"), WriteMode::Replace)
            .await
            .unwrap();
        writer.write(Bytes::from_static(b"x")).await.unwrap();
        let staged = writer.finish().await.unwrap();
        let err = prompt(f.store.commit(&p(path), staged))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{path}");
        // Touching only sets times: it never opens the entry.
        prompt(f.store.touch(&p(path))).await.unwrap();
        let meta = prompt(f.store.stat(&p(path))).await.unwrap();
        assert_eq!(meta.kind, EntryKind::Special);
        assert_eq!(meta.size, 0);
    }
    // A batched read opens before it checks the kind (its caller listed regular files): a
    // special file put in since is refused all the same, without blocking, and the other files
    // of the batch are read.
    std::fs::write(f.root.join("ok"), b"ok").unwrap();
    let paths: Vec<VPath> = ["/fifo", "/fifo_link", "/socket", "/ok"]
        .iter()
        .map(|s| p(s))
        .collect();
    let reads = prompt(async {
        f.store
            .start_read_files(paths, 1 << 20)
            .await
            .unwrap()
            .await
    })
    .await;
    for (path, read) in ["/fifo", "/fifo_link", "/socket"].iter().zip(&reads) {
        assert_eq!(
            read.as_ref().err().map(|e| e.kind()),
            Some(ErrorKind::Unsupported),
            "{path}"
        );
    }
    assert!(
        matches!(&reads[3], Ok(WholeRead::Data(d, _)) if d == &b"ok"[..]),
        "{:?}",
        reads[3]
    );
    let root = prompt(f.store.list(&p("/"))).await.unwrap();
    for (name, kind) in [
        ("fifo", EntryKind::Special),
        ("fifo_link", EntryKind::Symlink),
        ("socket", EntryKind::Special),
    ] {
        let entry = root.iter().find(|e| e.name == name).unwrap();
        assert_eq!(entry.meta.kind, kind, "{name}");
    }
    prompt(f.store.remove_file(&p("/fifo"))).await.unwrap();
    assert_eq!(kind(f.store.stat(&p("/fifo")).await), ErrorKind::NotFound);
    f.assert_staging_empty();
}

#[tokio::test]
async fn staging_is_swept_on_open_and_reserved() {
    let f = Fixture::new();
    // A second store on the same root, as after a restart: it sweeps at open.
    std::fs::write(f.staging().join("orphan.tmp"), b"left by a killed process").unwrap();
    std::fs::create_dir_all(f.staging().join("nested/deeper")).unwrap();
    std::fs::write(f.staging().join("nested/deeper/x"), b"x").unwrap();
    let mut store = DiskStore::open(&f.root, DiskOptions::default()).unwrap();
    let left = names(&f.staging());
    assert!(
        !left.iter().any(|n| n == "orphan.tmp" || n == "nested"),
        "{left:?}"
    );
    f.assert_staging_empty();

    let staging = p("/.mavfs-staging");
    let root = store.list(&p("/")).await.unwrap();
    assert!(root.iter().all(|e| e.name != ".mavfs-staging"));
    let refusals = [
        kind(store.stat(&staging).await),
        kind(store.list(&staging).await),
        kind(store.open_read(&p("/.mavfs-staging/x")).await),
        kind(
            store
                .open_write(&p("/.mavfs-staging/x"), WriteMode::Replace)
                .await,
        ),
        kind(store.touch(&p("/.mavfs-staging/x")).await),
        kind(store.mkdir(&p("/.mavfs-staging/x"), true).await),
        kind(store.remove_all(&staging).await),
        kind(store.remove_dir(&staging).await),
        kind(store.remove_file(&staging).await),
        kind(store.rename(&staging, &p("/gone")).await),
        kind(store.rename(&p("/ok"), &p("/.mavfs-staging/x")).await),
        kind(store.copy_file(&p("/ok"), &p("/.mavfs-staging/x")).await),
    ];
    assert!(refusals.iter().all(|k| *k == ErrorKind::PermissionDenied));
    let err = store.stat(&staging).await.err().unwrap();
    assert_eq!(err.detail(), Some("reserved name"));
    // A name that is only reserved at the root.
    store.mkdir(&p("/sub/.mavfs-staging"), false).await.unwrap();

    // Usage counts neither the staging directory nor a write in progress. (Once the first
    // count is in: on a loaded machine it may take longer than `usage` waits for it.)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let before = loop {
        let usage = store.usage().await.unwrap();
        if !usage.approximate || std::time::Instant::now() > deadline {
            break usage;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut writer = store
        .open_write(&p("/pending"), WriteMode::Replace)
        .await
        .unwrap();
    writer.write(Bytes::from(vec![7u8; 1000])).await.unwrap();
    // The counts only: the file system's used and free space move with whatever else writes to
    // the host disk meanwhile.
    let after = store.usage().await.unwrap();
    let counts = |u: &mavfs_actors::Usage| (u.files, u.dirs, u.bytes);
    assert_eq!(counts(&after), counts(&before));
    assert_eq!(before.files, 1);
    assert_eq!(before.bytes, 6);
    assert_eq!(before.dirs, 2);
    drop(writer);

    // A listing of the root through a link to it hides the staging directory too.
    symlink(".", f.root.join("self")).unwrap();
    let via_link = store.list(&p("/self")).await.unwrap();
    assert!(via_link.iter().all(|e| e.name != ".mavfs-staging"));
}

#[tokio::test]
async fn two_stores_on_one_root_never_sweep_each_others_writes() {
    let mut f = Fixture::new();
    let mut writer = f
        .store
        .open_write(&p("/shared"), WriteMode::Replace)
        .await
        .unwrap();
    writer
        .write(Bytes::from(vec![5u8; 300 << 10]))
        .await
        .unwrap();
    // Another process opens the same root meanwhile: its sweep leaves this store's temp file.
    let mut other = DiskStore::open(&f.root, DiskOptions::default()).unwrap();
    let staged = writer.finish().await.unwrap();
    f.store.commit(&p("/shared"), staged).await.unwrap();
    assert_eq!(
        std::fs::read(f.root.join("shared")).unwrap(),
        vec![5u8; 300 << 10]
    );
    // And the other store writes as well, then goes: its session goes with it.
    let mut w = other
        .open_write(&p("/theirs"), WriteMode::Replace)
        .await
        .unwrap();
    w.write(Bytes::from_static(b"x")).await.unwrap();
    let staged = w.finish().await.unwrap();
    other.commit(&p("/theirs"), staged).await.unwrap();
    drop(other);
    assert_eq!(
        names(&f.staging()).len(),
        2,
        "only the first store's session"
    );
    f.assert_staging_empty();
}

#[tokio::test]
async fn the_session_of_a_dead_process_is_swept() {
    let f = Fixture::new();
    // What a killed process leaves: a session directory with a temp file, and its lock file,
    // which nobody holds any more.
    std::fs::create_dir(f.staging().join("999.dead")).unwrap();
    std::fs::write(f.staging().join("999.dead/1.tmp"), b"half a file").unwrap();
    std::fs::write(f.staging().join("999.dead.lock"), b"").unwrap();
    let _store = DiskStore::open(&f.root, DiskOptions::default()).unwrap();
    let left = names(&f.staging());
    assert!(!left.iter().any(|n| n.starts_with("999.")), "{left:?}");
    f.assert_staging_empty();
}

#[tokio::test]
async fn a_staging_symlink_is_replaced_not_followed() {
    let f = Fixture::new();
    // A second store on the same root, as after a restart: it sweeps at open.
    std::fs::remove_dir_all(f.staging()).unwrap();
    symlink(&f.outside, f.staging()).unwrap();
    let _store = DiskStore::open(&f.root, DiskOptions::default()).unwrap();
    assert!(std::fs::symlink_metadata(f.staging()).unwrap().is_dir());
    f.assert_outside_intact();
}

#[tokio::test]
async fn abandoned_writes_leave_no_temp_file() {
    let mut f = Fixture::new();
    // A writer dropped mid-way.
    let mut writer = f
        .store
        .open_write(&p("/a"), WriteMode::Replace)
        .await
        .unwrap();
    writer.write(Bytes::from_static(b"partial")).await.unwrap();
    assert_eq!(f.temp_files().len(), 1);
    drop(writer);
    f.assert_staging_empty();
    // A sealed file never committed.
    let mut writer = f
        .store
        .open_write(&p("/a"), WriteMode::Append)
        .await
        .unwrap();
    writer.write(Bytes::from_static(b"sealed")).await.unwrap();
    drop(writer.finish().await.unwrap());
    f.assert_staging_empty();
    // A copy never run, and a copy run but never committed.
    drop(f.store.copy_file(&p("/ok"), &p("/b")).await.unwrap());
    f.assert_staging_empty();
    let copy = f.store.copy_file(&p("/ok"), &p("/b")).await.unwrap();
    drop(copy.await.unwrap());
    f.assert_staging_empty();
    // A commit refused because the destination became a directory.
    let mut writer = f
        .store
        .open_write(&p("/c"), WriteMode::Replace)
        .await
        .unwrap();
    writer.write(Bytes::from_static(b"c")).await.unwrap();
    let staged = writer.finish().await.unwrap();
    std::fs::create_dir(f.root.join("c")).unwrap();
    assert_eq!(
        kind(f.store.commit(&p("/c"), staged).await),
        ErrorKind::IsADirectory
    );
    f.assert_staging_empty();
    for path in ["/a", "/b"] {
        assert_eq!(kind(f.store.stat(&p(path)).await), ErrorKind::NotFound);
    }
}

#[tokio::test]
async fn commit_is_atomic_for_open_readers() {
    let mut f = Fixture::new();
    let old: Vec<u8> = (0..64u8).collect();
    let new = vec![0xAAu8; 100];
    write_file(&mut f.store, "/file", &old).await.unwrap();
    let reader = f.store.open_read(&p("/file")).await.unwrap();
    assert_eq!(reader.size, 64);
    let mut chunks = reader.chunks;
    let first = chunks.next().await.unwrap().unwrap();
    assert_eq!(first.len(), 4, "chunks are chunk_size bytes");
    write_file(&mut f.store, "/file", &new).await.unwrap();
    let mut seen = first.to_vec();
    while let Some(chunk) = chunks.next().await {
        seen.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(seen, old);
    assert_eq!(read_all(&mut f.store, "/file").await.unwrap(), new);
    f.assert_staging_empty();
}

#[tokio::test]
async fn a_file_truncated_while_read_is_an_error_not_a_short_read() {
    let mut f = Fixture::new();
    write_file(&mut f.store, "/file", &[1u8; 64]).await.unwrap();
    let reader = f.store.open_read(&p("/file")).await.unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(f.root.join("file"))
        .unwrap()
        .set_len(10)
        .unwrap();
    let results: Vec<_> = reader.chunks.collect().await;
    let bytes: usize = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(Bytes::len)
        .sum();
    assert_eq!(bytes, 8);
    let err = results.last().unwrap().as_ref().err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.path(), Some(&p("/file")));
}

#[tokio::test]
async fn append_copy_and_replace_keep_the_contract() {
    let mut f = Fixture::with_options(DiskOptions {
        fsync: true,
        chunk_size: 1 << 16,
        ..DiskOptions::default()
    });
    // Append onto a missing file creates it; onto an existing one keeps the old bytes first.
    for (chunk, expected) in [(&b"abc"[..], &b"abc"[..]), (b"def", b"abcdef")] {
        let mut writer = f
            .store
            .open_write(&p("/log"), WriteMode::Append)
            .await
            .unwrap();
        writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        let staged = writer.finish().await.unwrap();
        f.store.commit(&p("/log"), staged).await.unwrap();
        assert_eq!(read_all(&mut f.store, "/log").await.unwrap(), expected);
    }
    // An append with no new bytes still carries the old ones.
    let writer = f
        .store
        .open_write(&p("/log"), WriteMode::Append)
        .await
        .unwrap();
    let staged = writer.finish().await.unwrap();
    f.store.commit(&p("/log"), staged).await.unwrap();
    assert_eq!(read_all(&mut f.store, "/log").await.unwrap(), b"abcdef");

    // A copy bigger than a chunk, committed by the caller.
    let big: Vec<u8> = (0..3 * (1 << 16) + 123).map(|i| (i % 251) as u8).collect();
    write_file(&mut f.store, "/big", &big).await.unwrap();
    let copy = f
        .store
        .copy_file(&p("/big"), &p("/sub/copy"))
        .await
        .unwrap();
    let (staged, copied) = copy.await.unwrap();
    assert_eq!(copied, big.len() as u64);
    assert_eq!(
        kind(f.store.stat(&p("/sub/copy")).await),
        ErrorKind::NotFound
    );
    f.store.commit(&p("/sub/copy"), staged).await.unwrap();
    assert_eq!(read_all(&mut f.store, "/sub/copy").await.unwrap(), big);
    let meta = f.store.stat(&p("/sub/copy")).await.unwrap();
    assert_eq!((meta.kind, meta.size), (EntryKind::File, big.len() as u64));

    // Replacing a file keeps its permission bits.
    std::fs::set_permissions(f.root.join("big"), std::fs::Permissions::from_mode(0o600)).unwrap();
    write_file(&mut f.store, "/big", b"small").await.unwrap();
    let mode = std::fs::metadata(f.root.join("big"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(f.store.capability().fast_copy);
    assert!(!f.store.capability().capacity);
    f.assert_staging_empty();
}

#[tokio::test]
async fn open_rejects_a_missing_root_or_a_file() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("missing");
    let err = DiskStore::open(&missing, DiskOptions::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.detail().unwrap().contains(&*missing.to_string_lossy()));
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = DiskStore::open(&file, DiskOptions::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
    assert!(err.detail().unwrap().contains(&*file.to_string_lossy()));
}

#[tokio::test]
async fn touch_creates_or_updates_mtime() {
    let mut f = Fixture::new();
    f.store.touch(&p("/t")).await.unwrap();
    assert_eq!(f.store.stat(&p("/t")).await.unwrap().size, 0);
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for path in ["t", "sub", "."] {
        let file = std::fs::File::open(f.root.join(path)).unwrap();
        file.set_modified(old).unwrap();
    }
    write_file(&mut f.store, "/t", b"keep").await.unwrap();
    std::fs::File::open(f.root.join("t"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    for path in ["/t", "/sub", "/"] {
        f.store.touch(&p(path)).await.unwrap();
        assert!(
            f.store.stat(&p(path)).await.unwrap().modified > old,
            "{path}"
        );
    }
    // Touch never truncates.
    assert_eq!(read_all(&mut f.store, "/t").await.unwrap(), b"keep");
}

/// One outcome per step: `None` for success, else the error's kind.
type Outcomes = Vec<(&'static str, Option<ErrorKind>)>;

fn outcome<T>(result: Result<T>) -> Option<ErrorKind> {
    result.err().map(|e| e.kind())
}

/// The same script of contract edge cases, run against any store.
async fn script<S: Store>(s: &mut S) -> Outcomes {
    let mut out: Outcomes = Vec::new();
    macro_rules! step {
        ($name:literal, $e:expr) => {
            out.push(($name, outcome($e.await)));
        };
    }
    step!("mkdir /d", s.mkdir(&p("/d"), false));
    step!("mkdir /e", s.mkdir(&p("/e"), false));
    step!("mkdir /empty", s.mkdir(&p("/empty"), false));
    step!("write /d/f", write_file(s, "/d/f", b"x"));
    step!("write /e/g", write_file(s, "/e/g", b"yy"));

    step!("stat /", s.stat(&p("/")));
    step!("stat /missing", s.stat(&p("/missing")));
    step!("stat /d/f/x", s.stat(&p("/d/f/x")));
    step!("stat /missing/x", s.stat(&p("/missing/x")));
    step!("list /", s.list(&p("/")));
    step!("list /missing", s.list(&p("/missing")));
    step!("list /d/f", s.list(&p("/d/f")));

    step!("mkdir /", s.mkdir(&p("/"), false));
    step!("mkdir -p /", s.mkdir(&p("/"), true));
    step!("mkdir /d", s.mkdir(&p("/d"), false));
    step!("mkdir -p /d", s.mkdir(&p("/d"), true));
    step!("mkdir /d/f", s.mkdir(&p("/d/f"), false));
    step!("mkdir -p /d/f", s.mkdir(&p("/d/f"), true));
    step!("mkdir /d/f/x", s.mkdir(&p("/d/f/x"), false));
    step!("mkdir -p /d/f/x", s.mkdir(&p("/d/f/x"), true));
    step!("mkdir /m/n", s.mkdir(&p("/m/n"), false));
    step!("mkdir -p /m/n", s.mkdir(&p("/m/n"), true));

    step!("touch /", s.touch(&p("/")));
    step!("touch /d", s.touch(&p("/d")));
    step!("touch /d/f", s.touch(&p("/d/f")));
    step!("touch /new", s.touch(&p("/new")));
    step!("touch /missing/x", s.touch(&p("/missing/x")));
    step!("touch /d/f/x", s.touch(&p("/d/f/x")));

    step!("rm /", s.remove_file(&p("/")));
    step!("rm /d", s.remove_file(&p("/d")));
    step!("rm /missing", s.remove_file(&p("/missing")));
    step!("rm /d/f/x", s.remove_file(&p("/d/f/x")));
    step!("rmdir /", s.remove_dir(&p("/")));
    step!("rmdir /d", s.remove_dir(&p("/d")));
    step!("rmdir /d/f", s.remove_dir(&p("/d/f")));
    step!("rmdir /missing", s.remove_dir(&p("/missing")));
    step!("rmdir /empty", s.remove_dir(&p("/empty")));
    step!("rm -r /", s.remove_all(&p("/")));
    step!("rm -r /missing", s.remove_all(&p("/missing")));
    step!("rm -r /new", s.remove_all(&p("/new")));

    step!("mv / /x", s.rename(&p("/"), &p("/x")));
    step!("mv /d /", s.rename(&p("/d"), &p("/")));
    step!("mv /missing /x", s.rename(&p("/missing"), &p("/x")));
    step!("mv /d /d", s.rename(&p("/d"), &p("/d")));
    step!("mv /d /d/sub", s.rename(&p("/d"), &p("/d/sub")));
    step!("mv /d/f /e", s.rename(&p("/d/f"), &p("/e")));
    step!("mv /d /e/g", s.rename(&p("/d"), &p("/e/g")));
    step!("mv /d /e", s.rename(&p("/d"), &p("/e")));
    step!("mv /d/f /missing/x", s.rename(&p("/d/f"), &p("/missing/x")));
    step!("mv /d/f /e/g/x", s.rename(&p("/d/f"), &p("/e/g/x")));
    step!("mv /d/f /d/f2", s.rename(&p("/d/f"), &p("/d/f2")));
    step!("mv /m /e2", s.rename(&p("/m"), &p("/e2")));
    step!("mv /d/f2 /e/g", s.rename(&p("/d/f2"), &p("/e/g")));

    step!("read /", s.open_read(&p("/")));
    step!("read /d", s.open_read(&p("/d")));
    step!("read /missing", s.open_read(&p("/missing")));
    step!("read /e/g/x", s.open_read(&p("/e/g/x")));
    step!("write /", s.open_write(&p("/"), WriteMode::Replace));
    step!("write /d", s.open_write(&p("/d"), WriteMode::Replace));
    step!(
        "write /missing/x",
        s.open_write(&p("/missing/x"), WriteMode::Replace)
    );
    step!(
        "write /e/g/x",
        s.open_write(&p("/e/g/x"), WriteMode::Append)
    );
    step!(
        "write /d/new",
        s.open_write(&p("/d/new"), WriteMode::Append)
    );
    step!("cp / /x", s.copy_file(&p("/"), &p("/x")));
    step!("cp /d /x", s.copy_file(&p("/d"), &p("/x")));
    step!("cp /missing /x", s.copy_file(&p("/missing"), &p("/x")));
    step!("cp /e/g /d", s.copy_file(&p("/e/g"), &p("/d")));
    step!("cp /e/g /", s.copy_file(&p("/e/g"), &p("/")));
    step!(
        "cp /e/g /missing/x",
        s.copy_file(&p("/e/g"), &p("/missing/x"))
    );
    step!("cp /e/g /e/g/x", s.copy_file(&p("/e/g"), &p("/e/g/x")));

    step!("rm -r /d", s.remove_all(&p("/d")));
    step!("stat /d", s.stat(&p("/d")));
    out
}

#[tokio::test]
async fn error_kinds_match_the_memory_store() {
    let tmp = TempDir::new().unwrap();
    let mut disk = DiskStore::open(tmp.path(), DiskOptions::default()).unwrap();
    let mut memory = MemoryStore::new(None);
    let on_disk = script(&mut disk).await;
    let in_memory = script(&mut memory).await;
    for (d, m) in on_disk.iter().zip(&in_memory) {
        assert_eq!(d, m, "disk and memory differ at {}", d.0);
    }
    assert_eq!(on_disk.len(), in_memory.len());
    let (du, mu) = (disk.usage().await.unwrap(), memory.usage().await.unwrap());
    assert_eq!((du.files, du.dirs, du.bytes), (mu.files, mu.dirs, mu.bytes));
    let sorted = |entries: Vec<mavfs_actors::store::DirEntry>| {
        let mut v: Vec<_> = entries
            .into_iter()
            .map(|e| (e.name, e.meta.kind, e.meta.size))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let disk_root = sorted(disk.list(&p("/")).await.unwrap());
    let memory_root = sorted(memory.list(&p("/")).await.unwrap());
    assert_eq!(disk_root, memory_root);
}

/// The fast path copies exactly the source it opened: a source truncated, grown or rewritten in
/// place (same inode) after the copy opened it is an error, and the staged copy goes.
#[tokio::test]
async fn a_fast_copy_of_a_source_changed_while_copying_fails() {
    let mut f = Fixture::new();
    let data: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    type Change = fn(&Path);
    let changes: [(&str, Change); 3] = [
        ("truncated", |host| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(host)
                .unwrap()
                .set_len(1000)
                .unwrap()
        }),
        ("grown", |host| {
            let mut file = std::fs::OpenOptions::new().append(true).open(host).unwrap();
            std::io::Write::write_all(&mut file, b"more").unwrap();
        }),
        ("rewritten in place", |host| {
            use std::os::unix::fs::FileExt;
            let file = std::fs::OpenOptions::new().write(true).open(host).unwrap();
            file.write_all_at(b"XXXX", 10).unwrap();
            // Another second, so that even a coarse mtime moves.
            let later = std::time::SystemTime::now() + Duration::from_secs(2);
            file.set_modified(later).unwrap();
        }),
    ];
    for (what, change) in changes {
        std::fs::write(f.root.join("src"), &data).unwrap();
        std::fs::write(f.root.join("dst"), b"OLD").unwrap();
        let copy = f.store.copy_file(&p("/src"), &p("/dst")).await.unwrap();
        change(&f.root.join("src"));
        let err = match copy.await {
            Ok(_) => panic!("{what}: the copy succeeded"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::Io, "{what}: {err}");
        assert!(
            err.to_string().contains("source changed while copying"),
            "{what}: {err}"
        );
        assert_eq!(err.path(), Some(&p("/src")), "{what}");
        assert_eq!(std::fs::read(f.root.join("dst")).unwrap(), b"OLD", "{what}");
        f.assert_staging_empty();
    }
    // Unchanged, the same copy goes through.
    std::fs::write(f.root.join("src"), &data).unwrap();
    let (staged, copied) = f
        .store
        .copy_file(&p("/src"), &p("/dst"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(copied, data.len() as u64);
    f.store.commit(&p("/dst"), staged).await.unwrap();
    assert_eq!(std::fs::read(f.root.join("dst")).unwrap(), data);
}

/// A root deleted, moved away or replaced under a running store is reported as such, naming
/// it, never shown as an empty directory.
#[tokio::test]
async fn a_root_deleted_or_replaced_while_running_is_an_error_naming_it() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("f"), b"data").unwrap();
    let mut store = DiskStore::open(&root, DiskOptions::default()).unwrap();
    assert_eq!(store.list(&p("/")).await.unwrap().len(), 1);

    // Replaced: moved away, another directory in its place.
    std::fs::rename(&root, tmp.path().join("moved")).unwrap();
    std::fs::create_dir(&root).unwrap();
    for (what, result) in [
        ("ls", store.list(&p("/")).await.map(|_| ())),
        ("stat", store.stat(&p("/f")).await.map(|_| ())),
        ("mkdir", store.mkdir(&p("/d"), false).await),
    ] {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{what}: {err}");
        let shown = err.to_string();
        assert!(
            shown.contains(&root.display().to_string()) && shown.contains("replaced"),
            "{what}: {shown}"
        );
    }
    assert!(!root.join("d").exists() && !tmp.path().join("moved/d").exists());

    // Deleted.
    std::fs::remove_dir(&root).unwrap();
    std::fs::remove_dir_all(tmp.path().join("moved")).unwrap();
    for (what, result) in [
        ("ls", store.list(&p("/")).await.map(|_| ())),
        ("touch", store.touch(&p("/new")).await),
    ] {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::NotFound, "{what}: {err}");
        let shown = err.to_string();
        assert!(
            shown.contains(&root.display().to_string()) && shown.contains("deleted"),
            "{what}: {shown}"
        );
    }
}

/// A file hard-linked to one outside the root is read like any other, but never modified in
/// place: `touch` is refused and the outside inode keeps its times. Replacing it (`>` or
/// `cp`) makes a new file and leaves the outside one alone.
#[tokio::test]
async fn a_hard_linked_file_is_read_but_never_modified_in_place() {
    let mut f = Fixture::new();
    let outside = f.outside.join("canary");
    std::fs::hard_link(&outside, f.root.join("link")).unwrap();
    let before = std::fs::metadata(&outside).unwrap().modified().unwrap();
    assert_eq!(read_all(&mut f.store, "/link").await.unwrap(), CANARY);

    let err = f.store.touch(&p("/link")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("2 hard links"), "{err}");
    assert_eq!(
        std::fs::metadata(&outside).unwrap().modified().unwrap(),
        before
    );
    // A file with one link is touched as before.
    f.store.touch(&p("/ok")).await.unwrap();

    write_file(&mut f.store, "/link", b"new").await.unwrap();
    assert_eq!(read_all(&mut f.store, "/link").await.unwrap(), b"new");
    f.assert_outside_intact();
}
