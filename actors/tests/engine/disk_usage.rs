//! The disk store's usage counters: `stats` answers from counters the store keeps, never from a
//! walk, so these tests hold the counters against a walk of the host directory of their own:
//!
//! - after every kind of write the store does (commits new and replacing, appends, renames of
//!   files and directories onto nothing and onto something, removals of each kind, `mkdir -p`,
//!   `touch`, batches, copies), the counters equal a fresh walk, exactly;
//! - a change made outside MAVFS shows after a rescan;
//! - the filesystem's size and free space are reported.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mavfs_actors::BackendKind;
use mavfs_actors::VPath;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::{Usage, WholeFile, WriteMode};

/// How long a test waits for a count or a rescan before it fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Path `s` of the store, mounted at `/d`.
fn p(s: &str) -> VPath {
    VPath::parse(&format!("/d{s}")).unwrap()
}

fn mount(root: &Path, rescan: Option<Duration>) -> BackendHandle {
    let options = DiskOptions {
        rescan,
        ..DiskOptions::default()
    };
    BackendHandle::spawn(
        VPath::parse("/d").unwrap(),
        BackendKind::Disk,
        DiskStore::open(root, options).unwrap(),
    )
}

/// Files, directories and bytes below `root`, as the store counts them: regular files and
/// directories, symlinks not followed, the staging directory left out.
fn walk(root: &Path) -> (u64, u64, u64) {
    fn below(dir: &Path, top: bool, totals: &mut (u64, u64, u64)) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if top && entry.file_name() == ".mavfs-staging" {
                continue;
            }
            let md = entry.path().symlink_metadata().unwrap();
            if md.is_dir() {
                totals.1 += 1;
                below(&entry.path(), false, totals);
            } else if md.is_file() {
                totals.0 += 1;
                totals.2 += md.len();
            }
        }
    }
    let mut totals = (0, 0, 0);
    below(root, true, &mut totals);
    totals
}

fn counted(usage: &Usage) -> (u64, u64, u64) {
    (usage.files, usage.dirs, usage.bytes)
}

/// The usage once the first count is in.
async fn settled(b: &BackendHandle) -> Usage {
    let start = Instant::now();
    loop {
        let usage = b.usage().await.unwrap();
        if !usage.approximate {
            return usage;
        }
        assert!(start.elapsed() < TIMEOUT, "the first count never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn write(b: &BackendHandle, path: &str, data: &[u8], mode: WriteMode) {
    let mut w = b.open_write(&p(path), mode).await.unwrap();
    w.write(Bytes::copy_from_slice(data)).await.unwrap();
    w.commit().await.unwrap();
}

/// Asserts that the counters equal a fresh walk of `root`, after `step`.
async fn check(b: &BackendHandle, root: &Path, step: &str) {
    let usage = b.usage().await.unwrap();
    assert!(!usage.approximate, "after {step}: approximate");
    assert_eq!(counted(&usage), walk(root), "after {step}");
}

#[tokio::test]
async fn counters_equal_a_fresh_walk_after_every_kind_of_write() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // What was there before open: the first count must find it.
    std::fs::create_dir_all(root.join("old/deep")).unwrap();
    std::fs::write(root.join("old/a"), vec![1u8; 1000]).unwrap();
    std::fs::write(root.join("old/deep/b"), vec![2u8; 3000]).unwrap();
    std::os::unix::fs::symlink("old/a", root.join("link")).unwrap();
    // No rescan: only the first count and the store's own operations move the counters.
    let b = mount(root, None);
    assert_eq!(counted(&settled(&b).await), walk(root), "the first count");
    assert_eq!(counted(&settled(&b).await), (2, 2, 4000));

    write(&b, "/new", &[3u8; 500], WriteMode::Replace).await;
    check(&b, root, "a new file").await;
    write(&b, "/new", &[4u8; 9000], WriteMode::Replace).await;
    check(&b, root, "a replace by a larger file").await;
    write(&b, "/new", &[5u8; 10], WriteMode::Replace).await;
    check(&b, root, "a replace by a smaller file").await;
    write(&b, "/new", &[6u8; 300_000], WriteMode::Append).await;
    check(&b, root, "a large append").await;
    write(&b, "/fresh-append", &[6u8; 7], WriteMode::Append).await;
    check(&b, root, "an append that creates").await;
    write(&b, "/link", &[7u8; 1234], WriteMode::Replace).await;
    check(&b, root, "a write through a symlink").await;
    write(&b, "/empty", &[], WriteMode::Replace).await;
    check(&b, root, "an empty file").await;

    b.mkdir(&p("/m/n/o"), true).await.unwrap();
    check(&b, root, "mkdir -p of three").await;
    b.mkdir(&p("/m/n/o"), true).await.unwrap();
    b.mkdir(&p("/m/x"), false).await.unwrap();
    check(&b, root, "mkdir").await;
    b.touch(&p("/m/t")).await.unwrap();
    b.touch(&p("/m/t")).await.unwrap();
    check(&b, root, "touch").await;

    b.rename(&p("/new"), &p("/m/n/moved")).await.unwrap();
    check(&b, root, "a file renamed").await;
    b.rename(&p("/m/n/moved"), &p("/old/a")).await.unwrap();
    check(&b, root, "a file renamed onto a file").await;
    b.rename(&p("/old/deep"), &p("/m/x")).await.unwrap();
    check(&b, root, "a directory renamed onto an empty one").await;
    b.rename(&p("/m"), &p("/m2")).await.unwrap();
    check(&b, root, "a directory renamed").await;
    std::fs::hard_link(root.join("empty"), root.join("hard")).unwrap();
    // rename(2) of a name onto another link of the same file does nothing: nothing to take off.
    let before = walk(root);
    b.rename(&p("/empty"), &p("/hard")).await.unwrap();
    assert_eq!(walk(root), before, "both links are still there");
    std::fs::remove_file(root.join("hard")).unwrap();
    check(&b, root, "a rename onto a hard link of the same file").await;

    let batch = (0..50)
        .map(|i| WholeFile {
            path: p(&format!("/m2/batch{}", i % 40)),
            data: Bytes::from(vec![8u8; 100 + i]),
        })
        .collect();
    for result in b.write_files(batch).await {
        result.unwrap();
    }
    check(&b, root, "a batch, some of its files written twice").await;
    let size = b.stat(&p("/old/a")).await.unwrap().size;
    b.copy_file(&p("/old/a"), &p("/m2/copy"), size)
        .await
        .unwrap();
    b.copy_file(&p("/old/a"), &p("/m2/batch0"), size)
        .await
        .unwrap();
    check(&b, root, "copies, new and replacing").await;

    b.remove_file(&p("/m2/copy")).await.unwrap();
    check(&b, root, "rm").await;
    b.remove_file(&p("/link")).await.unwrap();
    check(&b, root, "rm of a symlink").await;
    b.mkdir(&p("/gone"), false).await.unwrap();
    b.remove_dir(&p("/gone")).await.unwrap();
    check(&b, root, "rmdir").await;
    b.remove_all(&p("/m2")).await.unwrap();
    check(&b, root, "rm -r").await;
    assert!(b.remove_all(&p("/m2")).await.is_err());
    assert!(b.remove_file(&p("/nothing")).await.is_err());
    assert!(b.mkdir(&p("/old"), false).await.is_err());
    check(&b, root, "operations that failed").await;
}

#[tokio::test]
async fn a_change_made_outside_shows_after_a_rescan() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b = mount(root, Some(Duration::from_millis(50)));
    write(&b, "/mine", &[1u8; 100], WriteMode::Replace).await;
    assert_eq!(counted(&settled(&b).await), (1, 0, 100));
    std::fs::create_dir(root.join("theirs")).unwrap();
    std::fs::write(root.join("theirs/f"), vec![2u8; 5000]).unwrap();
    std::fs::remove_file(root.join("mine")).unwrap();
    let start = Instant::now();
    loop {
        let usage = b.usage().await.unwrap();
        if counted(&usage) == (1, 1, 5000) {
            assert!(!usage.approximate);
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "no rescan saw it: {usage:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The store's own writes still count on top of what the rescan found.
    write(&b, "/theirs/g", &[3u8; 10], WriteMode::Replace).await;
    let usage = b.usage().await.unwrap();
    assert!(usage.files >= 2 && usage.bytes >= 5010, "{usage:?}");
}

#[tokio::test]
async fn usage_reports_the_filesystem_size_and_free_space() {
    let tmp = tempfile::tempdir().unwrap();
    let b = mount(tmp.path(), None);
    let usage = settled(&b).await;
    let capacity = usage
        .capacity
        .expect("a disk store knows its filesystem's size");
    let used = usage.used.expect("and how much of it is used");
    let available = usage.available.expect("and how much is free");
    assert!(capacity > 0);
    assert!(used <= capacity && available <= capacity, "{usage:?}");
}
