//! Small files packed in Redis (issue 13): a batched write stores its small files back to back
//! in shared pack keys, and every operation on a packed file keeps the rules of any other file.
//!
//! - packing: one batch of small files is one pack key, `packs` counts its files, and the pack
//!   goes only with its last file (replaced, removed, moved over, or purged by `rm -r`), even
//!   when a batch replaces a file of its own pack;
//! - every operation on a packed file: read whole, read as a stream, copy, append, rename, move
//!   (`remove_file_if`), replace by a one-file write, a second store reading it;
//! - a pack whose key is gone is an `Io` error naming the file, never short data;
//! - an entry written by hand is an `Io` error naming the file and the key, and the rest of its
//!   batch is read;
//! - `rm -r` has freed its tree's data, packs and keys of their own, when it returns;
//! - a namespace of a layout this MAVFS does not know is refused by name;
//! - memory: the keys of 4 KiB files take at most 1.15x their bytes.
//!
//! Each test runs its own `redis-server`; without one the test says it is skipped and passes
//! (fails with `MAVFS_REQUIRE_REDIS=1`). The stores, reads and waits are `redis_faults`'s.

use bytes::Bytes;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::redis::{RedisOptions, RedisStore};
use mavfs_actors::store::{BATCH_FILES, WholeFile, WholeRead, WriteMode};
use mavfs_actors::{ErrorKind, VPath};

use mavfs_test_support::redis::{self as redis_support, RedisServer};

use crate::redis_faults::{chunk_keys, mount, pattern, read, settle};

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

async fn write_batch(b: &BackendHandle, files: &[(String, Bytes)]) {
    let batch = files
        .iter()
        .map(|(path, data)| WholeFile {
            path: p(path),
            data: data.clone(),
        })
        .collect();
    for result in b.write_files(batch).await {
        result.unwrap();
    }
}

async fn read_whole(b: &BackendHandle, paths: &[String]) -> Vec<Result<Bytes, ErrorKind>> {
    let paths: Vec<VPath> = paths.iter().map(|s| p(s)).collect();
    b.read_files(&paths, 1 << 20)
        .await
        .into_iter()
        .map(|r| match r {
            Ok(WholeRead::Data(data, _)) => Ok(data),
            Ok(WholeRead::TooLarge(n)) => panic!("too large: {n}"),
            Err(e) => Err(e.kind()),
        })
        .collect()
}

/// The `packs` hash: pack id -> files using it.
fn packs(server: &RedisServer, ns: &str) -> Vec<(String, u64)> {
    let flat = server.cli(&["HGETALL", &format!("{ns}:{{{ns}}}:packs")]);
    let lines: Vec<&str> = flat.lines().filter(|l| !l.is_empty()).collect();
    lines
        .chunks(2)
        .map(|pair| (pair[0].to_string(), pair[1].parse().unwrap()))
        .collect()
}

fn small_files(dir: &str, n: usize, len: usize) -> Vec<(String, Bytes)> {
    (0..n)
        .map(|i| (format!("{dir}/f{i}"), Bytes::from(pattern(len, i))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_small_files_is_one_pack_that_goes_with_its_last_file() {
    let Some(server) = RedisServer::start("packs") else {
        return;
    };
    let ns = redis_support::namespace("packs");
    let b = mount(&server, &ns).await;
    b.mkdir(&p("/r/d"), true).await.unwrap();
    let files = small_files("/r/d", 10, 1000);
    write_batch(&b, &files).await;
    settle(&server, &ns, 1).await;
    let pack = packs(&server, &ns);
    assert_eq!(pack.len(), 1, "{pack:?}");
    assert_eq!(pack[0].1, 10);

    let paths: Vec<String> = files.iter().map(|(path, _)| path.clone()).collect();
    for ((path, data), whole) in files.iter().zip(read_whole(&b, &paths).await) {
        assert_eq!(whole.unwrap(), data, "{path} read whole");
        assert_eq!(read(&b, path).await.unwrap(), &data[..], "{path} streamed");
    }
    for (path, _) in &files[..9] {
        b.remove_file(&p(path)).await.unwrap();
    }
    settle(&server, &ns, 1).await;
    assert_eq!(packs(&server, &ns)[0].1, 1, "one file still uses the pack");
    assert_eq!(read(&b, &files[9].0).await.unwrap(), files[9].1);
    b.remove_file(&p(&files[9].0)).await.unwrap();
    settle(&server, &ns, 0).await;
    assert!(packs(&server, &ns).is_empty());
    assert_eq!(b.usage().await.unwrap().bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_writes_one_path_twice_keeps_the_last_and_its_pack() {
    let Some(server) = RedisServer::start("packs") else {
        return;
    };
    let ns = redis_support::namespace("packs");
    let b = mount(&server, &ns).await;
    let files = vec![
        ("/r/twice".to_string(), Bytes::from(pattern(1000, 1))),
        ("/r/other".to_string(), Bytes::from(pattern(1000, 2))),
        ("/r/twice".to_string(), Bytes::from(pattern(1000, 3))),
    ];
    write_batch(&b, &files).await;
    settle(&server, &ns, 1).await;
    assert_eq!(read(&b, "/r/twice").await.unwrap(), &files[2].1[..]);
    // Two files use the pack: the first `twice` was replaced by the second.
    assert_eq!(packs(&server, &ns)[0].1, 2);
    b.remove_file(&p("/r/other")).await.unwrap();
    settle(&server, &ns, 1).await;
    assert_eq!(read(&b, "/r/twice").await.unwrap(), &files[2].1[..]);
    b.remove_file(&p("/r/twice")).await.unwrap();
    settle(&server, &ns, 0).await;
    assert!(packs(&server, &ns).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_file_copies_appends_moves_and_is_replaced_like_any_other() {
    let Some(server) = RedisServer::start("packs") else {
        return;
    };
    let ns = redis_support::namespace("packs");
    let b = mount(&server, &ns).await;
    b.mkdir(&p("/r/d"), true).await.unwrap();
    let files = small_files("/r/d", 6, 4096);
    write_batch(&b, &files).await;
    let (f0, f1, f2, f3, f4, f5) = (
        &files[0], &files[1], &files[2], &files[3], &files[4], &files[5],
    );

    // A copy has data of its own: it outlives its source and the pack.
    b.copy_file(&p(&f0.0), &p("/r/copy"), 4096).await.unwrap();
    b.remove_file(&p(&f0.0)).await.unwrap();
    assert_eq!(read(&b, "/r/copy").await.unwrap(), f0.1);

    // An append writes old and new bytes as new data.
    let mut w = b.open_write(&p(&f1.0), WriteMode::Append).await.unwrap();
    w.write(Bytes::from_static(b" and more")).await.unwrap();
    w.commit().await.unwrap();
    let mut appended = f1.1.to_vec();
    appended.extend_from_slice(b" and more");
    assert_eq!(read(&b, &f1.0).await.unwrap(), appended);

    // A rename keeps the packed entry; a rename over a packed file retires it.
    b.rename(&p(&f2.0), &p("/r/moved")).await.unwrap();
    assert_eq!(read(&b, "/r/moved").await.unwrap(), f2.1);
    b.rename(&p("/r/moved"), &p(&f3.0)).await.unwrap();
    assert_eq!(read(&b, &f3.0).await.unwrap(), f2.1);

    // A move's remove of a changed source keeps it; of the version read, removes it.
    let version = match b.read_files(&[p(&f4.0)], 1 << 20).await.remove(0) {
        Ok(WholeRead::Data(_, version)) => version,
        other => panic!("{other:?}"),
    };
    b.remove_file_if(&p(&f4.0), &version).await.unwrap();
    assert_eq!(
        b.stat(&p(&f4.0)).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // A one-file write replaces a packed file.
    let mut w = b.open_write(&p(&f5.0), WriteMode::Replace).await.unwrap();
    w.write(Bytes::from_static(b"whole new")).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(read(&b, &f5.0).await.unwrap(), b"whole new");

    // Of the six packed files, only the one renamed over f3 still uses the pack; the copy, the
    // append and the replace have data of their own.
    settle(&server, &ns, 4).await;
    let left = packs(&server, &ns);
    assert!(left.len() == 1 && left[0].1 == 1, "{left:?}");

    // A second store on the namespace reads a packed file written by the first.
    let more = small_files("/r/e", 3, 100);
    b.mkdir(&p("/r/e"), false).await.unwrap();
    write_batch(&b, &more).await;
    let other = mount(&server, &ns).await;
    let paths: Vec<String> = more.iter().map(|(path, _)| path.clone()).collect();
    for ((_, data), read) in more.iter().zip(read_whole(&other, &paths).await) {
        assert_eq!(read.unwrap(), data);
    }
    b.remove_all(&p("/r/e")).await.unwrap();
    b.remove_all(&p("/r/d")).await.unwrap();
    for path in ["/r/copy"] {
        b.remove_file(&p(path)).await.unwrap();
    }
    settle(&server, &ns, 0).await;
    assert!(packs(&server, &ns).is_empty());
    let usage = b.usage().await.unwrap();
    assert_eq!((usage.files, usage.bytes), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_that_is_gone_fails_its_files_by_name_never_short() {
    let Some(server) = RedisServer::start("packs") else {
        return;
    };
    let ns = redis_support::namespace("packs");
    let b = mount(&server, &ns).await;
    b.mkdir(&p("/r/d"), true).await.unwrap();
    let files = small_files("/r/d", 4, 2000);
    write_batch(&b, &files).await;
    let keys = chunk_keys(&server, &ns);
    assert_eq!(keys.len(), 1);
    server.cli(&["DEL", &keys[0]]);
    let paths: Vec<String> = files.iter().map(|(path, _)| path.clone()).collect();
    for read in read_whole(&b, &paths).await {
        assert_eq!(read.unwrap_err(), ErrorKind::Io);
    }
    let err = read(&b, &paths[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("/r/d/f0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_4_kib_cost_at_most_1_15x_their_bytes_in_redis() {
    let Some(server) = RedisServer::start("packs") else {
        return;
    };
    let ns = redis_support::namespace("packs");
    let b = mount(&server, &ns).await;
    // What the namespace's keys take (`MEMORY USAGE` of each, every element counted): the
    // server's own buffers, which come and go with its connections, aside.
    let used = || -> u64 {
        server
            .scan(&format!("{ns}:*"))
            .iter()
            .map(|key| -> u64 {
                let usage = server.cli(&["MEMORY", "USAGE", key, "SAMPLES", "0"]);
                usage.trim().parse().unwrap()
            })
            .sum()
    };
    // As a transfer writes them: 2,000 files in batches of `BATCH_FILES`, 100 files a directory.
    for d in 0..20 {
        b.mkdir(&p(&format!("/r/d{d}")), true).await.unwrap();
    }
    let before = used();
    let files: Vec<(String, Bytes)> = (0..2000)
        .map(|i| {
            (
                format!("/r/d{}/file{i:05}", i / 100),
                Bytes::from(pattern(4096, i)),
            )
        })
        .collect();
    for batch in files.chunks(BATCH_FILES) {
        write_batch(&b, batch).await;
    }
    let per_file = (used() - before) as f64 / files.len() as f64;
    assert!(
        per_file <= 1.15 * 4096.0,
        "{per_file:.0} bytes of keys per 4 KiB file"
    );
}

/// An entry written into a directory's hash by hand is refused by name, by a batched read that
/// reads the directory whole (`HGETALL`) or name by name (`HMGET`) and by a listing; the other
/// files of the batch are read all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_written_by_hand_is_refused_by_name_and_alone() {
    let Some(server) = RedisServer::start("packs") else {
        return;
    };
    let ns = redis_support::namespace("packs");
    let b = mount(&server, &ns).await;
    b.mkdir(&p("/r/d"), true).await.unwrap();
    let files = small_files("/r/d", 40, 100);
    write_batch(&b, &files).await;
    // `/r` is the store's root (directory id 0); `d/<id>/<mtime>` is the entry of `d`.
    let d = server.cli(&["HGET", &format!("{ns}:{{{ns}}}:d:0"), "d"]);
    let id = d
        .trim()
        .split('/')
        .nth(1)
        .expect("a directory entry")
        .to_string();
    let hash = format!("{ns}:{{{ns}}}:d:{id}");
    server.cli(&["HSET", &hash, "junk", "not an entry"]);

    // Every name of the directory (read whole), then two of its 41 (read name by name).
    let junk = "/r/d/junk".to_string();
    let every: Vec<String> = files
        .iter()
        .map(|f| f.0.clone())
        .chain([junk.clone()])
        .collect();
    let two = vec![junk.clone(), files[39].0.clone()];
    for paths in [every, two] {
        let reads = read_whole(&b, &paths).await;
        for (path, read) in paths.iter().zip(&reads) {
            if *path == junk {
                assert_eq!(*read, Err(ErrorKind::Io));
            } else {
                assert!(read.is_ok(), "{path}: {read:?}");
            }
        }
    }
    let paths = [p("/r/d/junk")];
    let err = b.read_files(&paths, 1 << 20).await.remove(0).unwrap_err();
    assert!(err.to_string().contains("/r/d/junk"), "{err}");
    assert!(
        err.to_string().contains(&format!("{hash} field junk")),
        "{err}"
    );
    let err = b.list(&p("/r/d")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("field junk"), "{err}");
}

#[tokio::test]
async fn a_namespace_of_another_layout_is_refused_by_name() {
    let Some(server) = RedisServer::start("packs") else {
        return;
    };
    let ns = redis_support::namespace("packs");
    server.cli(&["HSET", &format!("{ns}:{{{ns}}}:meta"), "layout", "3"]);
    let options = RedisOptions {
        url: Some(server.url()),
        namespace: ns.clone(),
        ..RedisOptions::default()
    };
    let err = RedisStore::connect(options).await.err().expect("refused");
    assert!(err.to_string().contains("holds key layout 3"), "{err}");
}

/// `rm -r` frees the data of the tree it removes before it returns, packs and files of their
/// own alike (copies of packed files): nothing of it is left for the background. One thread,
/// which the checks below block: a deletion left to a background task would not have run.
#[tokio::test]
async fn rm_r_has_freed_the_data_of_its_tree_when_it_returns() {
    let Some(server) = RedisServer::start("rm -r frees") else {
        return;
    };
    let ns = redis_support::namespace("rmfree");
    let b = mount(&server, &ns).await;
    b.mkdir(&p("/r/d/sub"), true).await.unwrap();
    let packed = small_files("/r/d", 40, 700);
    write_batch(&b, &packed).await;
    // Copies have data of their own: a member each to delete.
    for (i, (path, _)) in packed.iter().enumerate() {
        let copy = p(&format!("/r/d/sub/c{i}"));
        b.copy_file(&p(path), &copy, 700).await.unwrap();
    }
    assert!(
        chunk_keys(&server, &ns).len() > packed.len(),
        "copies have keys of their own"
    );
    b.remove_all(&p("/r/d")).await.unwrap();
    assert_eq!(
        chunk_keys(&server, &ns),
        Vec::<String>::new(),
        "data left after rm -r"
    );
    let pending = server.cli(&["ZCARD", &format!("{ns}:{{{ns}}}:pending")]);
    assert_eq!(pending.trim(), "0", "members left in pending after rm -r");
    assert!(packs(&server, &ns).is_empty());
}
