//! The audit's data-loss cases, through the real binary: a source that changes while `cp` or
//! `mv` copies it, Redis data freed in the background when the process exits right after, and a
//! Redis that restarts without persistence under a running shell.
//! Each asserts what must hold whatever the timing (nothing committed but a whole version of a
//! file, nothing deleted that was not copied, nothing left in Redis but the live data), so the
//! races these cases are made of never make them flaky.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use mavfs_test_support::redis as redis_support;
use redis_support::RedisServer;

use crate::harness::Mavfs;

const MIB: usize = 1 << 20;

/// `len` bytes of a pattern that differs at every offset within a MiB and from MiB to MiB, so
/// that a copy of the wrong bytes shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251 + i / MIB) as u8).collect()
}

/// Whether the file at `path` holds exactly `want`, read a MiB at a time (not whole: the
/// files here are large, and other tests run alongside).
fn same_as(path: &std::path::Path, want: &[u8]) -> bool {
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; MIB];
    let mut at = 0;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return at == want.len();
        }
        if at + n > want.len() || buf[..n] != want[at..at + n] {
            return false;
        }
        at += n;
    }
}

/// The size a transfer's summary line reports (`cp: 1 file, 200.00 MiB in ...`, on stderr), in
/// MiB, to the hundredth.
fn reported_mib(stderr: &str) -> f64 {
    let line = stderr.lines().find(|l| l.contains(" MiB")).unwrap_or("");
    let number = line
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    number.unwrap_or_else(|| panic!("no size in {stderr:?}"))
}

/// The reproduction: a 200 MiB file truncated to 30 MiB 20 ms into a same-mount `cp`
/// (the disk store's fast path). Whatever the timing, the destination is either left as it
/// was (and the copy failed saying why) or is a whole version of the source of the size
/// reported.
#[test]
fn a_same_mount_copy_of_a_source_truncated_meanwhile_commits_no_partial_file() {
    let m = Mavfs::new();
    let dir = m.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    let data = pattern(200 * MIB);
    for round in 0..3 {
        std::fs::write(dir.join("src"), &data).unwrap();
        std::fs::write(dir.join("dst"), b"OLD\n").unwrap();
        let child = m
            .command()
            .args(["--disk-dir", "d", "exec", "cp /vdisk/src /vdisk/dst"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + 10 * round));
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("src"))
            .unwrap()
            .set_len(30 * MIB as u64)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let dst_len = std::fs::metadata(dir.join("dst")).unwrap().len() as usize;
        let ctx = format!("round {round}: exit {:?}\n{stdout}{stderr}", out.status);
        if out.status.success() {
            assert!(
                dst_len == data.len() || dst_len == 30 * MIB,
                "{ctx}: committed {dst_len} bytes, neither version of the source"
            );
            assert!(
                same_as(&dir.join("dst"), &data[..dst_len]),
                "{ctx}: wrong bytes"
            );
            let reported = reported_mib(&stderr);
            let committed = dst_len as f64 / MIB as f64;
            assert!(
                (reported - committed).abs() < 0.01,
                "{ctx}: reported {reported} MiB, committed {committed} MiB"
            );
        } else {
            assert_eq!(out.status.code(), Some(1), "{ctx}");
            assert!(stderr.contains("source changed while copying"), "{ctx}");
            let dst = std::fs::read(dir.join("dst")).unwrap();
            assert_eq!(dst, b"OLD\n", "{ctx}: the old destination stays");
        }
        assert!(
            std::fs::read_dir(dir.join(".mavfs-staging"))
                .map(|d| d
                    .filter_map(|e| e.ok())
                    .all(|e| e.file_type().unwrap().is_dir()))
                .unwrap_or(true),
            "{ctx}: staging leftovers"
        );
    }
}

/// The second case: 16 MiB appended to a source while `mv` copies it to another mount.
/// Whatever the timing, no byte is lost: a move that succeeded moved every byte the source
/// ever had, and one that failed ("changed during the move") kept the source whole.
#[test]
fn a_cross_mount_move_never_deletes_bytes_appended_meanwhile() {
    let m = Mavfs::new();
    let dir = m.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    let data = pattern(64 * MIB);
    let extra = vec![7u8; 16 * MIB];
    for round in 0..3 {
        std::fs::write(dir.join("src"), &data).unwrap();
        let child = m
            .command()
            .args([
                "--disk-dir",
                "d",
                "exec",
                "mv /vdisk/src /vram/dst",
                "cat /vram/dst > /vdisk/moved",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + 30 * round));
        // Without create: once the move removed the source, there is nothing to append to.
        let appended = match std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("src"))
        {
            Ok(mut file) => {
                file.write_all(&extra).unwrap();
                true
            }
            Err(_) => false,
        };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ctx = format!(
            "round {round}: appended {appended}, exit {:?}\n{stderr}",
            out.status
        );
        let mut whole = data.clone();
        whole.extend_from_slice(&extra);
        let src = std::fs::read(dir.join("src")).ok();
        if out.status.success() {
            let moved = std::fs::read(dir.join("moved")).unwrap();
            assert!(src.is_none(), "{ctx}: the source is gone");
            let want = if appended { &whole } else { &data };
            assert!(
                moved.len() == want.len() && moved == *want,
                "{ctx}: moved {} bytes of {}",
                moved.len(),
                want.len()
            );
        } else {
            assert!(appended, "{ctx}: failed without a change");
            assert!(
                stderr.contains("changed during the move")
                    || stderr.contains("source changed while copying"),
                "{ctx}"
            );
            assert!(
                src.as_deref() == Some(&whole[..]),
                "{ctx}: the source is kept whole"
            );
        }
        let _ = std::fs::remove_file(dir.join("moved"));
    }
}

/// A private Redis with a `maxmemory` and the flags of a `mavfs` using it as `/vram`.
struct SmallRedis {
    server: RedisServer,
    url: String,
}

impl SmallRedis {
    fn start(what: &str) -> Option<SmallRedis> {
        let args = ["--maxmemory", "48mb", "--maxmemory-policy", "noeviction"];
        let server = RedisServer::start_with(what, &args)?;
        let url = server.url();
        Some(SmallRedis { server, url })
    }

    /// Runs `mavfs exec <lines>` with `/vram` on this Redis and `/vdisk` at `./d`.
    fn exec(&self, m: &Mavfs, lines: &[&str]) -> crate::harness::Run {
        let mut args = vec![
            "--ram",
            "redis",
            "--redis-url",
            &self.url,
            "--disk-dir",
            "d",
        ];
        args.push("exec");
        args.extend_from_slice(lines);
        m.run(&args)
    }

    fn dbsize(&self) -> u64 {
        self.server.cli(&["DBSIZE"]).trim().parse().unwrap()
    }

    /// Chunk keys of every namespace.
    fn chunks(&self) -> usize {
        self.server.scan("*:c:*").len()
    }

    /// Members of every namespace's `pending` set: staged or dead data not yet deleted.
    fn pending(&self) -> u64 {
        self.server
            .scan("*:pending")
            .iter()
            .map(|key| {
                self.server
                    .cli(&["ZCARD", key])
                    .trim()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    }
}

/// After any command exits, Redis holds exactly the live data: a write refused at `maxmemory`
/// leaves none of its chunks, `rm` of a big file leaves none of its, and rounds of replaces
/// leave no `pending` members behind (all of it was freed in the background, which the
/// process finishes before it exits).
#[test]
fn redis_data_freed_in_the_background_is_gone_when_the_process_exits() {
    let Some(redis) = SmallRedis::start("redis cleanup at exit") else {
        return;
    };
    let m = Mavfs::new();
    std::fs::create_dir(m.path().join("d")).unwrap();
    std::fs::write(m.path().join("d/big"), pattern(80 * MIB)).unwrap();
    std::fs::write(m.path().join("d/mid"), pattern(8 * MIB)).unwrap();
    redis.exec(&m, &["ls /vram"]).ok();

    for round in 0..3 {
        let out = redis.exec(&m, &["cp /vdisk/big /vram/big"]);
        out.fails(1, "maxmemory");
        assert_eq!(
            (redis.chunks(), redis.pending()),
            (0, 0),
            "round {round}: a write refused at maxmemory left data behind"
        );
    }

    redis.exec(&m, &["cp /vdisk/mid /vram/mid"]).ok();
    let (keys, chunks) = (redis.dbsize(), redis.chunks());
    assert_eq!(chunks, 8, "the file's chunks");
    for round in 0..12 {
        redis.exec(&m, &["cp /vdisk/mid /vram/mid"]).ok();
        assert_eq!(
            (redis.dbsize(), redis.chunks(), redis.pending()),
            (keys, chunks, 0),
            "round {round} of replaces left data behind"
        );
    }
    for round in 0..3 {
        redis.exec(&m, &["rm /vram/mid"]).ok();
        assert_eq!(
            (redis.chunks(), redis.pending()),
            (0, 0),
            "round {round}: rm left data behind"
        );
        redis.exec(&m, &["cp /vdisk/mid /vram/mid"]).ok();
    }
}

/// A disk root deleted under a running shell: `ls /vdisk` fails naming the root, and `/` still
/// lists the mount.
#[test]
fn a_disk_root_deleted_under_a_running_shell_is_reported_naming_it() {
    use std::io::{BufRead, BufReader};
    let m = Mavfs::new();
    let root = m.path().join("d");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("f"), b"x").unwrap();
    let mut child = m.piped_shell(&["--disk-dir", "d"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "ls /vdisk").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "f\n", "the shell runs on the root");
    std::fs::remove_dir_all(&root).unwrap();
    writeln!(stdin, "ls /vdisk").unwrap();
    writeln!(stdin, "ls /").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("mavfs: ls: /vdisk: No such file or directory (the disk root d was deleted"),
        "{stderr}"
    );
    assert!(
        rest.contains("vdisk"),
        "`/` still lists the mount: {rest:?}"
    );
    assert!(!out.status.success());
}

/// Two jobs writing one destination at once: the one that claims it second is refused as busy,
/// naming the other, which goes on. (`&` returns before its job has planned, so which of the
/// two claims first is a race, as between two shells.)
#[test]
fn a_second_job_onto_a_destination_being_written_is_refused_naming_the_first() {
    let m = Mavfs::new();
    std::fs::create_dir_all(m.block_dir()).unwrap();
    std::fs::File::create(m.block_dir().join("big"))
        .unwrap()
        .set_len(64 * MIB as u64)
        .unwrap();
    std::fs::write(m.block_dir().join("small"), b"small").unwrap();
    // The first job crawls at 1 MiB/s, so it is still writing when the second starts.
    let out = m.script(
        "cp --bwlimit 1MiB/s /vdisk/big /vram/big &\ncp /vdisk/small /vram/big\nkill %1\nwait\n",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let second_refused = "mavfs: cp: /vram/big: Device or resource busy (job %1 is writing there)";
    let first_refused = "/vram/big: Device or resource busy (job %2 is writing there)";
    assert!(
        out.stderr.contains(second_refused) ^ out.stderr.contains(first_refused),
        "exactly one job refused, naming the other:\n{}",
        out.stderr
    );
    let out = m.exec(&["cp /vdisk/small /vram/big", "cat /vram/big"]);
    assert_eq!(out.ok(), "small");
}

/// A Redis restarted without persistence under a running shell: the next commands on `/vram`
/// say that the server lost the namespace's data and what to do, a copy into it is refused and
/// nothing lands in the fresh server; the next start begins afresh.
#[test]
fn a_redis_restarted_without_persistence_under_a_running_shell_is_reported() {
    use std::io::{BufRead, BufReader};
    let Some(mut redis) = SmallRedis::start("redis restarted under a shell") else {
        return;
    };
    let m = Mavfs::new();
    std::fs::create_dir(m.path().join("d")).unwrap();
    std::fs::write(m.path().join("d/x"), pattern(3 * MIB)).unwrap();
    let mut child = m.piped_shell(&[
        "--ram",
        "redis",
        "--redis-url",
        &redis.url,
        "--disk-dir",
        "d",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "cp /vdisk/x /vram/x").unwrap();
    writeln!(stdin, "ls /vram").unwrap();
    let mut line = String::new();
    while line != "x\n" {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the shell ended");
    }
    assert!(redis.dbsize() > 0);

    redis.server.restart();
    writeln!(stdin, "ls /vram").unwrap();
    writeln!(stdin, "cp /vdisk/x /vram/y").unwrap();
    writeln!(stdin, "mkdir /vram/d").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lost = format!(
        "Backend unavailable (Redis at {} lost the data of namespace mavfs: restarted without \
         persistence? Restart mavfs to start afresh)",
        redis.url
    );
    for command in ["mavfs: ls: /vram: ", "mavfs: mkdir: /vram/d: "] {
        assert!(stderr.contains(&format!("{command}{lost}")), "{stderr}");
    }
    assert!(
        stderr.contains("cp: ") && stderr.matches(&lost).count() >= 3,
        "{stderr}"
    );
    assert!(
        !rest.contains('x'),
        "no listing of a tree that is gone: {rest:?}"
    );
    assert!(!out.status.success());
    assert_eq!(
        redis.dbsize(),
        0,
        "nothing was written into the fresh server"
    );

    // The next start begins afresh.
    assert_eq!(redis.exec(&m, &["ls /vram"]).ok(), "");
    redis.exec(&m, &["cp /vdisk/x /vram/x"]).ok();
    assert_eq!(redis.exec(&m, &["ls /vram"]).ok(), "x\n");
}
