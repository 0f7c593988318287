//! Crash tests: the real binary is killed with SIGKILL at seeded random instants of a `pull`
//! (disk -> Redis), a `push` (Redis -> disk) and an `mv` each way, with `/vram` on a private
//! `redis-server` and `/vdisk` on disk. After each kill a new process starts on the same stores,
//! and every file must be as a crash allows:
//!
//! - at the destination, a file is absent (or its old bytes, where one stood before) or its
//!   source's bytes whole, never a part;
//! - a copy's sources are intact; a move's source file is intact, or gone with its destination
//!   whole;
//! - nothing else appears;
//! - the disk's staging holds nothing once a new process has opened it, and Redis's `pending`
//!   set holds nothing once swept. A new process sweeps members nobody has vouched for in
//!   `ORPHAN_GRACE` (five minutes, so as never to take a live process's staged data); the test
//!   stands in for those minutes by sweeping with no grace, through the engine.
//!
//! The transfers run under `--bwlimit`, so that they last about a second and a kill lands in
//! their middle, whatever the machine's speed.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mavfs_actors::store::redis::{RedisOptions, RedisStore};
use mavfs_test_support::redis::RedisServer;
use mavfs_test_support::staging::temp_files;

use crate::harness::{Mavfs, host_files};

/// Files of the source tree: a few large ones (streamed, several chunks) and small ones
/// (batched), in nested directories.
fn source_tree() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for i in 0..4 {
        files.insert(format!("big{i}"), pattern(2 << 20, i));
    }
    for i in 0..40 {
        files.insert(format!("d{}/small{i}", i % 4), pattern(4096 + i, i + 10));
    }
    files
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + i / 257 + seed * 7) as u8)
        .collect()
}

/// Bytes standing at some destination paths before the transfer: they must survive whole or be
/// replaced whole.
fn old_bytes(name: &str) -> Option<Vec<u8>> {
    (name == "big1" || name == "d1/small5").then(|| b"old bytes".to_vec())
}

fn write_host(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (name, data) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
}

/// One scenario: where the tree starts, the command, where it goes.
struct Scenario {
    name: &'static str,
    /// The source starts on Redis (`/vram/src`) rather than on disk (`/vdisk/src`).
    from_redis: bool,
    command: &'static str,
    moves: bool,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "pull disk -> redis",
        from_redis: false,
        command: "pull --bwlimit 12MiB/s /vdisk/src /vram/dst",
        moves: false,
    },
    Scenario {
        name: "push redis -> disk",
        from_redis: true,
        command: "push --bwlimit 12MiB/s /vram/src /vdisk/dst",
        moves: false,
    },
    Scenario {
        name: "mv disk -> redis",
        from_redis: false,
        command: "mv --bwlimit 12MiB/s /vdisk/src /vram/dst",
        moves: true,
    },
    Scenario {
        name: "mv redis -> disk",
        from_redis: true,
        command: "mv --bwlimit 12MiB/s /vram/src /vdisk/dst",
        moves: true,
    },
];

/// The kill instants, in ms after the process starts: from a fixed seed, spread over the
/// transfer (about 0.7 s of data at the limit, after the start-up) and just past its end.
fn instants(runs: usize) -> Vec<u64> {
    let mut x: u64 = 0x5eed_c0de;
    (0..runs)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            60 + (x >> 33) % 1400
        })
        .collect()
}

/// A scratch directory whose config mounts the test's Redis and its own disk root.
struct Setup<'a> {
    m: &'a Mavfs,
    namespace: String,
}

impl<'a> Setup<'a> {
    /// Writes the scratch directory's `mavfs.toml`: `/vram` on `url` in `namespace`, `/vdisk`
    /// on `./block_dir`.
    fn new(m: &'a Mavfs, url: String, namespace: String) -> Setup<'a> {
        let config = format!(
            "[[mount]]\npath = \"/vram\"\nbackend = \"redis\"\nurl = \"{}\"\nnamespace = \"{}\"\n\n\
             [[mount]]\npath = \"/vdisk\"\nbackend = \"disk\"\ntier = \"cold\"\nroot = \"./block_dir\"\n",
            url, namespace
        );
        fs::create_dir_all(m.block_dir()).unwrap();
        fs::write(m.path().join("mavfs.toml"), config).unwrap();
        Setup { m, namespace }
    }

    fn exec(&self, lines: &[&str]) -> crate::harness::Run {
        self.m.exec(lines)
    }

    /// The tree under `/vram/<dir>`, copied out through a new process into a fresh host
    /// directory and read there.
    fn redis_files(&self, dir: &str) -> BTreeMap<String, Vec<u8>> {
        let out = format!("out{}", rand_suffix());
        let exists = self.exec(&[&format!("stat /vram/{dir}")]);
        if exists.code != 0 {
            return BTreeMap::new();
        }
        self.exec(&[&format!("push /vram/{dir} /vdisk/{out}")]).ok();
        let files = host_files(&self.m.block_dir().join(&out));
        fs::remove_dir_all(self.m.block_dir().join(&out)).unwrap();
        files
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Checks the rules of a crash against what the stores now hold.
fn check(
    ctx: &str,
    scenario: &Scenario,
    tree: &BTreeMap<String, Vec<u8>>,
    sources: &BTreeMap<String, Vec<u8>>,
    dests: &BTreeMap<String, Vec<u8>>,
) {
    for name in dests.keys() {
        assert!(
            tree.contains_key(name),
            "{ctx}: {name} appeared at the destination"
        );
    }
    for name in sources.keys() {
        assert!(
            tree.contains_key(name),
            "{ctx}: {name} appeared at the source"
        );
    }
    for (name, want) in tree {
        let dest = dests.get(name);
        let whole = dest == Some(want);
        let allowed_before = dest == old_bytes(name).as_ref();
        assert!(
            whole || allowed_before,
            "{ctx}: destination {name} holds {} bytes, neither its old bytes nor the source's {}",
            dest.map_or(0, Vec::len),
            want.len()
        );
        match sources.get(name) {
            Some(src) => assert_eq!(src, want, "{ctx}: source {name} changed"),
            None if scenario.moves => {
                assert!(
                    whole,
                    "{ctx}: {name} left its source but is not whole at the target"
                )
            }
            None => panic!("{ctx}: the copy's source {name} is gone"),
        }
    }
}

#[test]
fn sigkill_mid_transfer_keeps_every_file_old_or_whole() {
    let Some(server) = RedisServer::start("crash tests on Redis") else {
        return;
    };
    let tree = source_tree();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut swept_any = false;
    for scenario in &SCENARIOS {
        for (run, after_ms) in instants(3).into_iter().enumerate() {
            let ctx = format!("{}, killed after {after_ms} ms", scenario.name);
            let m = Mavfs::new();
            let namespace = format!("crash{}x{run}", rand_suffix());
            let setup = Setup::new(&m, server.url(), namespace);
            // The source tree and the old destination files, through unkilled processes.
            write_host(&m.block_dir().join("src"), &tree);
            let olds: BTreeMap<String, Vec<u8>> = tree
                .keys()
                .filter_map(|name| Some((name.clone(), old_bytes(name)?)))
                .collect();
            write_host(&m.block_dir().join("old/src"), &olds);
            let dst_dir = if scenario.from_redis {
                setup
                    .exec(&["pull /vdisk/src /vram/src", "rm -r /vdisk/src"])
                    .ok();
                "/vdisk/dst"
            } else {
                "/vram/dst"
            };
            // The destination directory exists, so the tree lands in `dst/src`, over the old
            // files already there.
            setup
                .exec(&[&format!("cp -r /vdisk/old {dst_dir}"), "rm -r /vdisk/old"])
                .ok();

            let mut child = m
                .command()
                .args(["exec", scenario.command])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(after_ms));
            child.kill().unwrap();
            child.wait().unwrap();

            // A new process on the same stores reads both sides.
            let (sources, dests) = if scenario.from_redis {
                let dests = host_files(&m.block_dir().join("dst/src"));
                (setup.redis_files("src"), dests)
            } else {
                let sources = host_files(&m.block_dir().join("src"));
                (sources, setup.redis_files("dst/src"))
            };
            check(&ctx, scenario, &tree, &sources, &dests);
            let staging = m.block_dir().join(".mavfs-staging");
            let left = temp_files(&staging);
            assert!(
                left.is_empty(),
                "{ctx}: a new start left staged files {left:?}"
            );

            // Redis: what the killed process staged is swept, and then nothing is pending.
            let report = runtime.block_on(async {
                let store = RedisStore::connect(RedisOptions {
                    url: Some(server.url()),
                    namespace: setup.namespace.clone(),
                    ..RedisOptions::default()
                })
                .await
                .unwrap();
                store.sweep(Duration::ZERO).await.unwrap()
            });
            swept_any |= report.data > 0;
            let pending = format!("{0}:{{{0}}}:pending", setup.namespace);
            let left = server.cli(&["ZCARD", &pending]);
            assert_eq!(
                left.trim(),
                "0",
                "{ctx}: pending members left after a sweep"
            );
        }
    }
    // A kill mid-write into Redis leaves staged data (which is why the sweep exists): if no
    // run ever left any, no kill landed mid-transfer and the test proved nothing.
    assert!(swept_any, "no kill left staged Redis data behind");
}
