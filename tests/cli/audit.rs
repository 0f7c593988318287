//! Cases of the fault audit (`FAULTS.md`) that need real processes, a real filesystem or a real
//! network path, through the real binary:
//!
//! - 26, a full disk: a push into a 4 MiB tmpfs fails with "No space left on device", removes
//!   what it staged, and leaves the old destination and the source as they were. Mounting needs
//!   root (or a user namespace); without it the test says it is skipped.
//! - 15 and 17, the Redis connection cut mid-transfer: a pull through a local TCP proxy whose
//!   connections are cut midway fails within the command timeout, naming the mount, and leaves
//!   every destination file old or whole; the disk source is untouched.
//! - 22, two writers of one path in two processes, on Redis and on disk: the path ends holding
//!   exactly one writer's bytes, never a mix.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mavfs_test_support::redis::RedisServer;
use mavfs_test_support::staging::temp_files;

use crate::harness::{Mavfs, TIMEOUT, host_files, wait_exit};

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 13 + i / 509 + seed * 3) as u8)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 26: a full disk
// ---------------------------------------------------------------------------------------------

/// A tmpfs of `size` mounted at `dir` for as long as it lives.
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path, size: &str) -> Option<Tmpfs<'a>> {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_push_and_keeps_the_old_file_and_the_source() {
    let m = Mavfs::new();
    let disk = m.block_dir();
    let Some(_tmpfs) = Tmpfs::mount(&disk, "4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root), so no full disk to test");
        return;
    };
    fs::write(disk.join("src"), pattern(2 << 20, 1)).unwrap();
    fs::write(disk.join("old"), b"old bytes").unwrap();
    // The source goes to /vram, is pushed back twice over (8 MiB into a disk with 2 MiB free):
    // the second file cannot fit.
    let out = m.exec(&[
        "cp /vdisk/src /vram/a",
        "cp /vdisk/src /vram/b",
        "cat /vram/a /vram/b /vram/a > /vram/big",
        "push /vram/big /vdisk/old",
    ]);
    out.fails(1, "No space left on device");
    assert_eq!(fs::read(disk.join("old")).unwrap(), b"old bytes");
    assert_eq!(fs::read(disk.join("src")).unwrap(), pattern(2 << 20, 1));
    let left = temp_files(&disk.join(".mavfs-staging"));
    assert!(left.is_empty(), "staged data left on a full disk: {left:?}");
    // And the disk is usable again at once: what fits is written.
    m.exec(&["echo fits > /vdisk/small", "cat /vdisk/small"])
        .ok()
        .contains("fits")
        .then_some(())
        .expect("a small write after the full one");
}

// ---------------------------------------------------------------------------------------------
// 15, 17: the Redis connection cut mid-transfer
// ---------------------------------------------------------------------------------------------

/// A TCP proxy on a free loopback port to `target`, whose connections can be cut at once
/// (both directions shut down, new ones refused) to act out a network failure.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut2, streams2) = (cut.clone(), streams.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut kept = streams2.lock().unwrap();
                kept.push(client.try_clone().unwrap());
                kept.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut, streams }
    }

    /// Cuts every connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_redis_connection_cut_mid_pull_fails_it_and_leaves_files_old_or_whole() {
    let Some(server) = RedisServer::start_with("a Redis connection cut", &["--maxmemory", "256mb"])
    else {
        return;
    };
    let proxy = Proxy::start(server.port());
    let m = Mavfs::new();
    let src = m.block_dir().join("src");
    let mut tree = BTreeMap::new();
    for i in 0..6 {
        tree.insert(format!("big{i}"), pattern(2 << 20, i));
    }
    for (name, data) in &tree {
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join(name), data).unwrap();
    }
    let through_proxy = format!("redis://127.0.0.1:{}/0", proxy.port);
    let mut child = m
        .command()
        .args(["--ram", "redis", "--redis-url", &through_proxy, "exec"])
        .arg("pull --bwlimit 8MiB/s /vdisk/src /vram/dst")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Cut once the pull is under way (about 1.5 s of data at the limit).
    thread::sleep(Duration::from_millis(500));
    proxy.cut();
    let started = Instant::now();
    let (code, stderr) = wait_exit(&mut child);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("/vram") && stderr.contains("unavailable"),
        "the error names the mount and the failure: {stderr}"
    );
    assert!(started.elapsed() < TIMEOUT);

    // Straight to the server now: every file at the destination is whole, and the source is
    // as it was.
    let direct = server.url();
    let out = m.run(&[
        "--ram",
        "redis",
        "--redis-url",
        &direct,
        "exec",
        "mkdir -p /vram/dst",
        "push /vram/dst /vdisk/check",
    ]);
    out.ok();
    let landed = host_files(&m.block_dir().join("check"));
    for (name, data) in &landed {
        let name = name.trim_start_matches("src/");
        assert_eq!(
            Some(data),
            tree.get(name),
            "{name} is not whole at the destination"
        );
    }
    assert_eq!(host_files(&src), tree, "the source changed");
}

// ---------------------------------------------------------------------------------------------
// 22: two writers of one path, in two processes
// ---------------------------------------------------------------------------------------------

/// Runs `line` in two processes at once, `rounds` times; after each round `read` must give
/// exactly one of the two writers' bytes.
fn two_writers(
    m: &Mavfs,
    flags: &[&str],
    lines: [&str; 2],
    read: impl Fn() -> Vec<u8>,
    whole: [&[u8]; 2],
) {
    for round in 0..6 {
        let children: Vec<_> = lines
            .iter()
            .map(|line| {
                m.command()
                    .args(flags)
                    .args(["exec", line])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            let (code, stderr) = wait_exit(&mut child);
            assert_eq!(code, 0, "round {round}: {stderr}");
        }
        let got = read();
        assert!(
            got == whole[0] || got == whole[1],
            "round {round}: the path holds {} bytes, neither writer's file whole",
            got.len()
        );
    }
}

#[test]
fn two_processes_writing_one_redis_path_leave_one_file_whole() {
    let Some(server) = RedisServer::start_with("two writers on Redis", &["--maxmemory", "256mb"])
    else {
        return;
    };
    let m = Mavfs::new();
    let (a, b) = (pattern(3 << 20, 1), pattern(5 << 20, 2));
    fs::create_dir_all(m.block_dir()).unwrap();
    fs::write(m.block_dir().join("a"), &a).unwrap();
    fs::write(m.block_dir().join("b"), &b).unwrap();
    let url = server.url();
    let flags = ["--ram", "redis", "--redis-url", url.as_str()];
    let read = || {
        let _ = fs::remove_file(m.block_dir().join("out"));
        let mut args = flags.to_vec();
        args.extend(["exec", "push /vram/x /vdisk/out"]);
        m.run(&args).ok();
        fs::read(m.block_dir().join("out")).unwrap()
    };
    two_writers(
        &m,
        &flags,
        ["cp /vdisk/a /vram/x", "cp /vdisk/b /vram/x"],
        read,
        [&a, &b],
    );
}

#[test]
fn two_processes_writing_one_disk_path_leave_one_file_whole() {
    let m = Mavfs::new();
    let (a, b) = (pattern(3 << 20, 3), pattern(5 << 20, 4));
    fs::create_dir_all(m.block_dir().join("in")).unwrap();
    fs::write(m.block_dir().join("in/a"), &a).unwrap();
    fs::write(m.block_dir().join("in/b"), &b).unwrap();
    let read = || fs::read(m.block_dir().join("x")).unwrap();
    // Each process streams its file through its own memory mount into the shared disk path.
    two_writers(
        &m,
        &[],
        [
            "cp /vdisk/in/a /vram/a ; cp /vram/a /vdisk/x",
            "cp /vdisk/in/b /vram/b ; cp /vram/b /vdisk/x",
        ],
        read,
        [&a, &b],
    );
}
