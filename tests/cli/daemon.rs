//! `mavfs serve` and the front ends attached to it, as real processes on a real socket: what
//! outlives what, the socket's rules, signals, other users, and garbage on the wire.
//!
//! Each test's daemon runs in its own scratch directory, whose `run/` is the test's
//! `XDG_RUNTIME_DIR`, so clients find it on the default socket as a user's would.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Mavfs, Served, TIMEOUT, signal};

fn default_socket(m: &Mavfs) -> PathBuf {
    m.path().join("run/mavfs/mavfs.sock")
}

/// Host files for `/vdisk/src`: `n` files of `size` bytes.
fn seed(m: &Mavfs, n: usize, size: usize) {
    let dir = m.block_dir().join("src");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i}")), vec![(i % 251) as u8; size]).unwrap();
    }
}

/// The lines of a session whose output does not depend on time or on where the engine runs.
const SCRIPT: &[&str] = &[
    "mkdir -p /vram/a/b",
    "echo hello > /vram/a/b/f",
    "echo more >> /vram/a/b/f",
    "cat /vram/a/b/f",
    "touch /vram/a/t",
    "ls /vram/a",
    "cp -r /vram/a /vram/c",
    "mv /vram/c/t /vram/c/u",
    "ls /vram/c",
    "push /vram/a /vdisk/a",
    "pull /vdisk/a /vram/p",
    "tree /vram/p",
    "du -s /vram/a",
    "rm -r /vram/c",
    "ls /",
    "stats",
    "cd /vdisk/a",
    "pwd",
    "ls b",
    "help wait",
];

#[test]
fn an_attached_exec_prints_what_an_embedded_one_prints() {
    let embedded = Mavfs::new();
    let expected = embedded.exec(SCRIPT);
    let m = Mavfs::new();
    let served = Served::start(&m);
    let attached = m.exec(SCRIPT);
    assert_eq!(attached.ok(), expected.ok());
    let mounts = m.exec(&["mounts"]);
    assert!(
        mounts
            .ok()
            .contains(&format!("attached to mavfs serve, pid {}", served.pid())),
        "{}",
        mounts.stdout
    );
    // --embedded ignores the daemon.
    let alone = m.run(&["--embedded", "exec", "ls /vram"]);
    assert_eq!(alone.ok(), "");
    let (code, log) = served.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("client connected"), "{log}");
    assert!(log.contains("started") && log.contains("done"), "{log}");
}

#[test]
fn a_background_job_outlives_its_client_and_any_client_waits_for_it() {
    let m = Mavfs::new();
    seed(&m, 200, 64 << 10);
    let served = Served::start(&m);
    m.exec(&["pull /vdisk/src /vram/src"]).ok();
    let started = m.exec(&["push /vram/src /vdisk/copy &"]);
    started.ok();
    assert!(
        started.stderr.contains("[2] push /vram/src /vdisk/copy"),
        "{}",
        started.stderr
    );
    // Another client: the ids are the daemon's.
    let waited = m.exec(&["wait %2", "jobs"]);
    let out = waited.ok();
    assert!(out.contains("[2]  done"), "{out}");
    assert!(out.contains("200/200"), "{out}");
    assert_eq!(
        std::fs::read_dir(m.block_dir().join("copy"))
            .unwrap()
            .count(),
        200
    );
    drop(served);
}

#[test]
fn a_second_daemon_on_a_live_socket_exits_2_naming_the_first() {
    let m = Mavfs::new();
    let served = Served::start(&m);
    let second = m.run(&["serve"]);
    second.fails(2, &format!("pid {}", served.pid()));
    // The first one still serves.
    m.exec(&["ls /"]).ok();
}

#[test]
fn a_stale_socket_is_recovered() {
    let m = Mavfs::new();
    let socket = default_socket(&m);
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::fs::set_permissions(socket.parent().unwrap(), PermissionsExt::from_mode(0o700)).unwrap();
    // A daemon that died without cleaning up leaves its socket file behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let served = Served::start(&m);
    m.exec(&["ls /"]).ok();
    let (code, _) = served.terminate();
    assert_eq!(code, 0);
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn a_file_that_is_not_a_socket_is_never_deleted() {
    let m = Mavfs::new();
    let socket = default_socket(&m);
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::fs::set_permissions(socket.parent().unwrap(), PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(&socket, b"precious").unwrap();
    m.run(&["serve"]).fails(2, "not a socket");
    assert_eq!(std::fs::read(&socket).unwrap(), b"precious");
}

#[test]
fn sigterm_stops_the_daemon_and_removes_its_socket() {
    let m = Mavfs::new();
    let served = Served::start(&m);
    let socket = served.socket.clone();
    let (code, log) = served.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(!socket.exists());
    // With the daemon gone, clients run embedded again.
    m.exec(&["ls /vram"]).ok();
}

#[test]
fn attach_errors_are_clear() {
    let m = Mavfs::new();
    let nobody = m.path().join("nobody.sock");
    let connect = format!("--connect={}", nobody.display());
    m.run(&[&connect, "exec", "ls"])
        .fails(2, "cannot attach to the daemon");
    m.run(&["--connect", "--disk-dir", "x", "exec", "ls"])
        .fails(2, "--connect cannot be combined with --disk-dir");
    m.command()
        .env("MAVFS_SOCKET", &nobody)
        .args(["exec", "ls"])
        .output()
        .map(|out| assert_eq!(out.status.code(), Some(2)))
        .unwrap();
}

/// Sends `bytes` on a fresh connection and returns what the daemon answered before closing.
fn raw(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(bytes).unwrap();
    // Hang up our side: a frame cut short ends there.
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn garbage_on_the_socket_is_refused_and_other_clients_never_notice() {
    let m = Mavfs::new();
    let served = Served::start(&m);
    let hello = frame(br#"J{"type":"hello","version":1}"#);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "random bytes",
            (0..200u32).map(|i| (i * 97 % 256) as u8).collect(),
        ),
        ("a length of 4 GiB", vec![0xff, 0xff, 0xff, 0xff, b'J']),
        ("invalid JSON", frame(b"J{not json")),
        (
            "no Hello",
            frame(br#"J{"type":"request","id":1,"request":{"op":"jobs"}}"#),
        ),
        ("an unknown request", {
            let mut b = hello.clone();
            b.extend(frame(
                br#"J{"type":"request","id":1,"request":{"op":"format_disk"}}"#,
            ));
            b
        }),
        ("a bad path", {
            let mut b = hello.clone();
            b.extend(frame(
                br#"J{"type":"request","id":1,"request":{"op":"stat","path":"../x"}}"#,
            ));
            b
        }),
    ];
    for (what, bytes) in cases {
        let answer = String::from_utf8_lossy(&raw(&served.socket, &bytes)).into_owned();
        assert!(answer.contains("refused"), "{what}: {answer:?}");
        // Another client is served as usual.
        assert_eq!(m.exec(&["ls /"]).ok(), "vdisk/\nvram/\n", "after {what}");
    }
    // A frame cut short, then a hang-up.
    let mut truncated = hello.clone();
    truncated.extend_from_slice(&100u32.to_be_bytes());
    truncated.extend_from_slice(b"J{\"ty");
    raw(&served.socket, &truncated);
    assert_eq!(m.exec(&["ls /"]).ok(), "vdisk/\nvram/\n");
    let (code, log) = served.terminate();
    assert_eq!(code, 0, "the daemon never panicked: {log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_client_of_another_user_is_refused() {
    let setpriv = Path::new("/usr/bin/setpriv");
    if !setpriv.exists() || !running_as_root() {
        eprintln!("skipped: needs root and setpriv to run a client as another user");
        return;
    }
    let m = Mavfs::new();
    let served = Served::start(&m);
    // Open the way to the socket, so that the daemon's own check is what refuses.
    for dir in [
        m.path(),
        &m.path().join("run"),
        served.socket.parent().unwrap(),
    ] {
        std::fs::set_permissions(dir, PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&served.socket, PermissionsExt::from_mode(0o666)).unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_mavfs"))
        .arg(format!("--connect={}", served.socket.display()))
        .args(["exec", "ls /"])
        .current_dir("/")
        .env("HOME", "/")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("65534"),
        "{stderr}"
    );
    m.exec(&["ls /"]).ok();
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Files left in the disk store's staging area (a transfer cut off must leave none).
fn staged_files(m: &Mavfs) -> Vec<PathBuf> {
    mavfs_test_support::staging::temp_files(&m.block_dir().join(".mavfs-staging"))
}

/// Waits until the daemon lists a job in `state`, asked by a client of its own.
fn wait_for_state(m: &Mavfs, state: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let jobs = m.exec(&["jobs"]).ok().to_string();
        if jobs.contains(state) {
            return jobs;
        }
        assert!(Instant::now() < deadline, "no job became {state}: {jobs}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_job_stopped_by_one_client_is_stopped_for_all() {
    let m = Mavfs::new();
    seed(&m, 1, 4 << 20);
    let served = Served::start(&m);
    m.exec(&["pull --bwlimit 1MiB/s /vdisk/src /vram/src &"])
        .ok();
    m.exec(&["stop %1"]).ok();
    let jobs = wait_for_state(&m, "stopped");
    assert!(jobs.contains("1.00 MiB/s"), "the limit shows: {jobs}");
    m.exec(&["throttle %1 off", "bg %1", "wait %1"]).ok();
    assert!(m.exec(&["jobs"]).ok().contains("[1]  done"));
    let size = |dir: &str| {
        let du = m.exec(&[&format!("du -s {dir}")]);
        du.ok().split('\t').next().unwrap_or_default().to_string()
    };
    assert_eq!(size("/vram/src"), size("/vdisk/src"));
    drop(served);
}

#[test]
fn killing_a_client_cancels_its_foreground_transfer_with_nothing_partial() {
    let m = Mavfs::new();
    seed(&m, 1, 8 << 20);
    let served = Served::start(&m);
    m.exec(&["pull /vdisk/src /vram/src"]).ok();
    let mut client = m
        .command()
        .args(["exec", "push --bwlimit 1MiB/s /vram/src /vdisk/dst"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_state(&m, "running");
    signal(client.id(), "KILL");
    let _ = client.wait();
    let jobs = wait_for_state(&m, "cancelled");
    assert!(
        jobs.contains("push --bwlimit 1MiB/s /vram/src /vdisk/dst"),
        "{jobs}"
    );
    // The directory was created; the file was never committed, and nothing is staged.
    assert_eq!(m.exec(&["ls /vdisk/dst"]).ok(), "");
    assert_eq!(staged_files(&m), Vec::<PathBuf>::new());
    drop(served);
}

#[test]
fn sigterm_during_a_transfer_leaves_nothing_partial() {
    let m = Mavfs::new();
    seed(&m, 1, 8 << 20);
    let served = Served::start(&m);
    m.exec(&["pull /vdisk/src /vram/src"]).ok();
    m.exec(&["push --bwlimit 1MiB/s /vram/src /vdisk/dst &"])
        .ok();
    wait_for_state(&m, "running");
    let socket = served.socket.clone();
    let (code, log) = served.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(!socket.exists(), "the socket is removed");
    assert_eq!(staged_files(&m), Vec::<PathBuf>::new());
    assert!(!m.block_dir().join("dst/f0").exists(), "no partial file");
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `GET /metrics` over plain HTTP/1.0, as a bare scraper would: the status line's code and the
/// body.
fn scrape(addr: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The value of the sample `series` (its name and labels as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Scrapes until `ready` holds (the exporter refreshes every second) and returns the text.
fn scrape_until(addr: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (status, text) = scrape(addr);
        assert_eq!(status, 200, "{text}");
        if ready(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the figures never moved:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_of_the_real_daemon_move_after_an_attached_transfer() {
    let m = Mavfs::new();
    let (files, size) = (3, 100_000);
    seed(&m, files, size);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut daemon = m
        .command()
        .args(["serve", "--metrics", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let socket = default_socket(&m);
    let deadline = Instant::now() + TIMEOUT;
    while UnixStream::connect(&socket).is_err() {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited (port {addr} taken?)"
        );
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let total = (files * size) as f64;
    let mount = |name: &str, mount: &str| format!("mavfs_mount_{name}{{mount=\"{mount}\"}}");
    // The seeded files are on /vdisk before any job ran.
    let before = scrape_until(&addr, |t| {
        sample(t, &mount("files", "/vdisk")) == Some(files as f64)
    });
    assert_eq!(sample(&before, &mount("bytes", "/vdisk")), Some(total));
    assert_eq!(sample(&before, &mount("files", "/vram")), Some(0.0));
    assert_eq!(
        sample(&before, &mount("written_bytes_total", "/vram")),
        Some(0.0)
    );
    assert_eq!(sample(&before, "mavfs_transferred_bytes_total"), Some(0.0));
    assert_eq!(sample(&before, r#"mavfs_jobs{state="done"}"#), Some(0.0));

    // A transfer through an attached `exec`, in the daemon's engine.
    let pulled = m.exec(&["pull /vdisk/src /vram/src", "mounts"]);
    assert!(
        pulled.ok().contains("attached to mavfs serve"),
        "{}",
        pulled.stdout
    );

    let after = scrape_until(&addr, |t| {
        sample(t, r#"mavfs_jobs{state="done"}"#) == Some(1.0)
            && sample(t, "mavfs_transferred_bytes_total") == Some(total)
            && sample(t, &mount("files", "/vram")) == Some(files as f64)
    });
    assert_eq!(sample(&after, &mount("bytes", "/vram")), Some(total));
    assert_eq!(
        sample(&after, &mount("written_bytes_total", "/vram")),
        Some(total)
    );
    assert_eq!(
        sample(&after, &mount("read_bytes_total", "/vdisk")),
        Some(total)
    );
    assert_eq!(
        sample(&after, &mount("written_bytes_total", "/vdisk")),
        Some(0.0)
    );
    // What was on /vdisk is still there: a pull copies.
    assert_eq!(
        sample(&after, &mount("files", "/vdisk")),
        Some(files as f64)
    );

    signal(daemon.id(), "TERM");
    let (code, log) = crate::harness::wait_exit(&mut daemon);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("serving metrics"), "{log}");
}

/// Metrics have no authentication, so they listen on loopback only: any other address is a
/// usage error naming the rule, before anything starts.
#[test]
fn metrics_on_a_non_loopback_address_are_refused() {
    let m = Mavfs::new();
    for addr in ["0.0.0.0:9187", "[::]:9187", "192.0.2.1:9187"] {
        let out = m.run(&["serve", "--metrics", addr]);
        out.fails(2, "is not a loopback address");
        assert!(
            !m.path().join("run/mavfs/mavfs.sock").exists(),
            "{addr}: serve started"
        );
    }
    m.run(&["serve", "--metrics", "localhost"])
        .fails(2, "not an address with a port");
}
