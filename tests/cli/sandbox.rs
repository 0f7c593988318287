use crate::harness;

// The disk store is a sandbox (DESIGN.md section 2), end to end through the real binary:
// symlinks that lead outside `block_dir`, `..`, host paths, FIFOs, and symlinks that stay inside.
//
// Every test that could hang on a FIFO or a symlink loop runs the binary under a deadline, so a
// hang fails the test instead of blocking the suite.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Mavfs, Run};

/// Bytes of the canary file outside the root: text, a NUL and a non-UTF-8 byte.
const CANARY: &[u8] = b"canary \x00\xff bytes\n";

/// How long a command may take before it counts as hanging.
const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `mavfs exec <lines>`, killing it and panicking if it runs past [`DEADLINE`].
///
/// Output goes to temp files, not pipes, so that a command printing a lot cannot block on a full
/// pipe and pass for a hang.
fn exec_within(m: &Mavfs, lines: &[&str]) -> Run {
    let mut stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let mut child = m
        .command()
        .arg("exec")
        .args(lines)
        .stdout(Stdio::from(stdout.try_clone().unwrap()))
        .stderr(Stdio::from(stderr.try_clone().unwrap()))
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mavfs exec {lines:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |file: &mut fs::File| {
        let mut bytes = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut bytes).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: read(&mut stdout),
        stderr: read(&mut stderr),
    }
}

/// Every entry below `dir`, without following symlinks: files with their bytes, symlinks with
/// their target, directories as `None`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            let md = fs::symlink_metadata(&path).unwrap();
            if md.is_dir() {
                out.insert(rel, None);
                walk(base, &path, out);
            } else if md.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, Some(target.into_os_string().into_encoded_bytes()));
            } else {
                out.insert(rel, Some(fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[derive(Debug, Clone, Copy)]
enum LinkKind {
    Absolute,
    Relative,
}

/// A scratch MAVFS with `outside/` next to `block_dir/` (holding `canary` and `keep/k`), and in
/// the root `link` -> `outside` and `flink` -> `outside/canary`, absolute or relative.
struct Escape {
    m: Mavfs,
    outside: PathBuf,
    before: BTreeMap<PathBuf, Option<Vec<u8>>>,
}

impl Escape {
    fn new(kind: LinkKind) -> Self {
        let m = Mavfs::new();
        let outside = m.path().join("outside");
        fs::create_dir_all(outside.join("keep")).unwrap();
        fs::write(outside.join("canary"), CANARY).unwrap();
        fs::write(outside.join("keep/k"), b"keep").unwrap();
        fs::create_dir_all(m.block_dir()).unwrap();
        let (dir_target, file_target) = match kind {
            LinkKind::Absolute => (outside.clone(), outside.join("canary")),
            LinkKind::Relative => ("../outside".into(), "../outside/canary".into()),
        };
        symlink(&dir_target, m.block_dir().join("link")).unwrap();
        symlink(&file_target, m.block_dir().join("flink")).unwrap();
        let before = snapshot(&outside);
        Escape { m, outside, before }
    }

    /// Asserts that nothing outside the root changed, and the canary least of all.
    #[track_caller]
    fn assert_outside_untouched(&self, after: &str) {
        assert_eq!(
            fs::read(self.outside.join("canary")).unwrap(),
            CANARY,
            "canary changed after {after:?}"
        );
        assert_eq!(
            snapshot(&self.outside),
            self.before,
            "the outside directory changed after {after:?}"
        );
    }

    /// Asserts that both links are still in the root.
    #[track_caller]
    fn assert_links_remain(&self, after: &str) {
        for name in ["link", "flink"] {
            let md = fs::symlink_metadata(self.m.block_dir().join(name));
            assert!(
                md.is_ok_and(|md| md.is_symlink()),
                "{name} is gone after {after:?}"
            );
        }
    }
}

/// Commands through an escaping link, with the command and path that the error line must name.
const THROUGH_DIR_LINK: &[(&str, &str, &str)] = &[
    ("cat /vdisk/link/canary", "cat", "/vdisk/link/canary"),
    ("echo x > /vdisk/link/canary", "echo", "/vdisk/link/canary"),
    ("echo x >> /vdisk/link/canary", "echo", "/vdisk/link/canary"),
    ("echo x > /vdisk/link/new", "echo", "/vdisk/link/new"),
    ("cp /vram/f /vdisk/link/canary", "cp", "/vdisk/link/canary"),
    ("cp /vram/f /vdisk/link/new", "cp", "/vdisk/link/new"),
    ("cp /vdisk/link/canary /vram/c", "cp", "/vdisk/link/canary"),
    ("cp /vdisk/link/canary /vdisk/c", "cp", "/vdisk/link/canary"),
    ("mv /vdisk/link/canary /vram/c", "mv", "/vdisk/link/canary"),
    ("mv /vdisk/link/canary /vdisk/c", "mv", "/vdisk/link/canary"),
    ("mv /vram/f /vdisk/link/x", "mv", "/vdisk/link/x"),
    ("push /vram/f /vdisk/link/x", "push", "/vdisk/link/x"),
    (
        "pull /vdisk/link/canary /vram/c",
        "pull",
        "/vdisk/link/canary",
    ),
    ("cp /vram/f /vdisk/link", "cp", "/vdisk/link"),
    ("mkdir /vdisk/link/d", "mkdir", "/vdisk/link/d"),
    ("mkdir -p /vdisk/link/d/e", "mkdir", "/vdisk/link/d/e"),
    ("touch /vdisk/link/canary", "touch", "/vdisk/link/canary"),
    ("touch /vdisk/link/new", "touch", "/vdisk/link/new"),
    ("rm /vdisk/link/canary", "rm", "/vdisk/link/canary"),
    ("rm -r /vdisk/link/keep", "rm", "/vdisk/link/keep"),
    ("rm -rf /vdisk/link/canary", "rm", "/vdisk/link/canary"),
    ("ls /vdisk/link/keep", "ls", "/vdisk/link/keep"),
    ("stat /vdisk/link/canary", "stat", "/vdisk/link/canary"),
];

/// Commands on a link to an outside file whose reason is already `Permission denied`.
const ON_FILE_LINK: &[(&str, &str, &str)] = &[
    ("cat /vdisk/flink", "cat", "/vdisk/flink"),
    ("echo x > /vdisk/flink", "echo", "/vdisk/flink"),
    ("echo x >> /vdisk/flink", "echo", "/vdisk/flink"),
    ("cp /vram/f /vdisk/flink", "cp", "/vdisk/flink"),
    ("push /vram/f /vdisk/flink", "push", "/vdisk/flink"),
    ("touch /vdisk/flink", "touch", "/vdisk/flink"),
];

fn every_command_through_an_escaping_link_is_denied(kind: LinkKind) {
    let e = Escape::new(kind);
    for &(line, cmd, path) in THROUGH_DIR_LINK.iter().chain(ON_FILE_LINK) {
        let out = e.m.exec(&["echo f > /vram/f", line]);
        let context = format!("{kind:?} link, {line:?}");
        assert_eq!(out.code, 1, "{context}: exit code; stderr:\n{}", out.stderr);
        let expected = format!("mavfs: {cmd}: {path}: Permission denied");
        assert!(
            out.stderr.starts_with(&expected),
            "{context}: stderr lacks {expected:?}:\n{}",
            out.stderr
        );
        assert_eq!(out.stdout, "", "{context}: stdout");
        assert!(
            !out.stderr.contains("panicked"),
            "{context}: {}",
            out.stderr
        );
        e.assert_outside_untouched(line);
        e.assert_links_remain(line);
    }
}

#[test]
fn an_absolute_symlink_out_of_the_root_is_denied_for_every_command() {
    every_command_through_an_escaping_link_is_denied(LinkKind::Absolute);
}

#[test]
fn a_relative_symlink_out_of_the_root_is_denied_for_every_command() {
    every_command_through_an_escaping_link_is_denied(LinkKind::Relative);
}

/// Commands whose source is the escaping link itself: refused (the reason differs, see
/// `the_escaping_link_itself_is_denied_like_a_path_through_it`), nothing read, the link kept.
#[test]
fn transfers_of_the_escaping_link_itself_read_nothing() {
    for kind in [LinkKind::Absolute, LinkKind::Relative] {
        let e = Escape::new(kind);
        for (line, cmd, path) in [
            ("cp /vdisk/flink /vram/c", "cp", "/vdisk/flink"),
            ("pull /vdisk/flink /vram/c", "pull", "/vdisk/flink"),
            ("mv /vdisk/flink /vram/c", "mv", "/vdisk/flink"),
            ("cp /vdisk/link /vram/c", "cp", "/vdisk/link"),
            ("cp -r /vdisk/link /vram/c", "cp", "/vdisk/link"),
            ("pull /vdisk/link /vram/c", "pull", "/vdisk/link"),
            ("mv /vdisk/link /vram/c", "mv", "/vdisk/link"),
        ] {
            let context = format!("{kind:?} link, {line:?}");
            let out = e.m.exec(&[line]);
            assert_eq!(out.code, 1, "{context}: stderr:\n{}", out.stderr);
            assert!(
                out.stderr.starts_with(&format!("mavfs: {cmd}: {path}: ")),
                "{context}: {}",
                out.stderr
            );
            assert_eq!(out.stdout, "", "{context}");
            e.assert_outside_untouched(line);
            e.assert_links_remain(line);
            // Nothing arrived in /vram either.
            let out = e.m.script(&format!("{line}\nls /vram\n"));
            assert_eq!(out.stdout, "", "{context}");
        }
    }
}

/// A failed move into the escaping link keeps its source.
#[test]
fn a_move_refused_by_the_sandbox_keeps_its_source() {
    let e = Escape::new(LinkKind::Absolute);
    let out = e.m.script(
        "echo f > /vram/f\n\
         mv /vram/f /vdisk/link/x\n\
         cat /vram/f\n\
         echo g > /vdisk/g\n\
         mv /vdisk/g /vdisk/link/g\n\
         cat /vdisk/g\n",
    );
    out.fails(1, "mavfs: mv: /vdisk/link/x: Permission denied");
    assert!(
        out.stderr
            .contains("mavfs: mv: /vdisk/link/g: Permission denied")
    );
    assert_eq!(out.stdout, "f\ng\n");
    e.assert_outside_untouched("mv into the link");
}

/// Listing, `cd` and `tree` never show what lies outside.
#[test]
fn listing_an_escaping_link_shows_nothing_from_outside() {
    for kind in [LinkKind::Absolute, LinkKind::Relative] {
        let e = Escape::new(kind);
        for line in [
            "ls /vdisk/link",
            "ls -l /vdisk/link",
            "ls /vdisk/link/",
            "tree /vdisk/link",
            "du /vdisk/link",
            "cd /vdisk/link",
            "ls /vdisk",
            "tree /vdisk",
            "du /vdisk",
            "stats",
        ] {
            let out = exec_within(&e.m, &[line]);
            let context = format!("{kind:?} link, {line:?}");
            for secret in ["canary", "keep"] {
                assert!(
                    !out.stdout.contains(secret) && !out.stderr.contains(secret),
                    "{context} shows {secret:?}:\n{}\n{}",
                    out.stdout,
                    out.stderr
                );
            }
            assert!(
                !out.stderr.contains("panicked"),
                "{context}: {}",
                out.stderr
            );
            e.assert_outside_untouched(line);
        }
        // The root's own listing shows the links as links.
        let out = e.m.exec(&["ls -l /vdisk"]);
        let lines: Vec<&str> = out.ok().lines().collect();
        assert_eq!(lines.len(), 2, "{}", out.stdout);
        assert!(lines[0].starts_with("l ") && lines[0].ends_with(" flink"));
        assert!(lines[1].starts_with("l ") && lines[1].ends_with(" link"));
    }
}

/// The escaping link itself is an entry that cannot be followed: `ls` names it (as coreutils does a
/// dangling link), `cd` and `tree` find no directory, and a transfer refuses it as a symlink that
/// cannot be followed. Nothing behind it is ever read.
#[test]
fn the_escaping_link_itself_is_an_entry_that_cannot_be_followed() {
    let e = Escape::new(LinkKind::Absolute);
    assert_eq!(e.m.exec(&["ls /vdisk/link"]).ok(), "/vdisk/link\n");
    for (line, needle) in [
        ("cd /vdisk/link", "mavfs: cd: /vdisk/link: Not a directory"),
        (
            "tree /vdisk/link",
            "mavfs: tree: /vdisk/link: Not a directory",
        ),
        (
            "cp /vdisk/flink /vram/c",
            "mavfs: cp: /vdisk/flink: Operation not supported",
        ),
        (
            "pull /vdisk/flink /vram/c",
            "mavfs: pull: /vdisk/flink: Operation not supported",
        ),
        (
            "mv /vdisk/flink /vram/c",
            "mavfs: mv: /vdisk/flink: Operation not supported",
        ),
    ] {
        let out = e.m.exec(&[line]);
        out.fails(1, needle);
        assert_eq!(out.stdout, "", "{line}");
    }
}

/// `rm` of the link removes the link, never what it points at, as coreutils does.
#[test]
fn rm_of_an_escaping_link_removes_only_the_link() {
    for kind in [LinkKind::Absolute, LinkKind::Relative] {
        for line in [
            "rm /vdisk/link",
            "rm -r /vdisk/link",
            "rm -r /vdisk/link/",
            "rm -rf /vdisk/link",
        ] {
            let e = Escape::new(kind);
            e.m.exec(&[line]).ok();
            let context = format!("{kind:?} link, {line:?}");
            assert!(
                fs::symlink_metadata(e.m.block_dir().join("link")).is_err(),
                "{context}: the link remains"
            );
            e.assert_outside_untouched(line);
        }
        let e = Escape::new(kind);
        e.m.exec(&["rm /vdisk/flink"]).ok();
        assert!(fs::symlink_metadata(e.m.block_dir().join("flink")).is_err());
        e.assert_outside_untouched("rm /vdisk/flink");
    }
}

/// `rm -r` of a directory holding an escaping link removes the directory and the link, and
/// nothing behind the link.
#[test]
fn rm_r_of_a_tree_holding_an_escaping_link_stays_inside() {
    let e = Escape::new(LinkKind::Relative);
    let sub = e.m.block_dir().join("tree/sub");
    fs::create_dir_all(&sub).unwrap();
    fs::write(sub.join("f"), b"f").unwrap();
    symlink("../../../outside", sub.join("esc")).unwrap();
    symlink("../../../outside/canary", sub.join("fesc")).unwrap();
    e.m.exec(&["rm -r /vdisk/tree", "ls /vdisk"]).ok();
    assert!(!e.m.block_dir().join("tree").exists());
    e.assert_outside_untouched("rm -r /vdisk/tree");
}

/// Renaming the link inside the root moves the link itself.
#[test]
fn mv_of_an_escaping_link_inside_the_root_moves_the_link() {
    let e = Escape::new(LinkKind::Absolute);
    e.m.exec(&["mv /vdisk/link /vdisk/renamed"]).ok();
    assert_eq!(
        fs::read_link(e.m.block_dir().join("renamed")).unwrap(),
        e.outside
    );
    assert!(fs::symlink_metadata(e.m.block_dir().join("link")).is_err());
    e.assert_outside_untouched("mv /vdisk/link /vdisk/renamed");
}

/// A tree holding an escaping link is refused as a whole before anything is copied, and the
/// error names the link.
#[test]
fn tree_transfers_refuse_an_escaping_link_before_copying_anything() {
    for kind in [LinkKind::Absolute, LinkKind::Relative] {
        let e = Escape::new(kind);
        let sub = e.m.block_dir().join("tree/sub");
        fs::create_dir_all(&sub).unwrap();
        fs::write(e.m.block_dir().join("tree/a"), b"a").unwrap();
        fs::write(sub.join("b"), b"b").unwrap();
        let target = match kind {
            LinkKind::Absolute => e.outside.clone(),
            LinkKind::Relative => "../../../outside".into(),
        };
        symlink(target, sub.join("esc")).unwrap();
        let tree_before = snapshot(&e.m.block_dir().join("tree"));
        for (line, cmd, named) in [
            ("pull /vdisk/tree /vram/t", "pull", "/vdisk/tree/sub/esc"),
            ("cp -r /vdisk/tree /vram/t", "cp", "/vdisk/tree/sub/esc"),
            ("cp -r /vdisk/tree /vdisk/t", "cp", "/vdisk/tree/sub/esc"),
            ("mv /vdisk/tree /vram/t", "mv", "/vdisk/tree/sub/esc"),
            ("cp -r /vdisk /vram/copy", "cp", "/vdisk/flink"),
            ("pull /vdisk /vram/all", "pull", "/vdisk/flink"),
        ] {
            let context = format!("{kind:?} link, {line:?}");
            let out = exec_within(&e.m, &[line]);
            assert_eq!(out.code, 1, "{context}: stderr:\n{}", out.stderr);
            assert!(
                out.stderr
                    .starts_with(&format!("mavfs: {cmd}: {named}: Operation not supported")),
                "{context}: {}",
                out.stderr
            );
            e.assert_outside_untouched(line);
            assert_eq!(
                snapshot(&e.m.block_dir().join("tree")),
                tree_before,
                "{context}: the source tree changed"
            );
            assert!(!e.m.block_dir().join("t").exists(), "{context}");
        }
        // Nothing was copied into /vram before the refusal.
        let out = exec_within(&e.m, &["pull /vdisk/tree /vram/t", "ls /vram"]);
        assert_eq!(out.stdout, "");
        let out = e.m.script("cp -r /vdisk/tree /vram/t\nls /vram\n");
        assert_eq!(out.stdout, "");
    }
}

/// `..` is resolved by MAVFS and stops at the mount root: it never reaches the host directory
/// around `block_dir`.
#[test]
fn dot_dot_never_climbs_out_of_a_mount() {
    let m = Mavfs::new();
    fs::create_dir_all(m.block_dir()).unwrap();
    fs::write(m.path().join("secret"), b"host secret").unwrap();

    for (line, cmd, resolved) in [
        (
            "cat /vdisk/../../etc/hostname",
            "cat",
            "/vdisk/etc/hostname",
        ),
        ("cat /vdisk/../secret", "cat", "/vdisk/secret"),
        ("cat /vdisk/../../../secret", "cat", "/vdisk/secret"),
        // `a` is missing: the walk stops there, as the kernel's would.
        ("cat /vdisk/a/../../secret", "cat", "/vdisk/a/../../secret"),
        ("ls /vdisk/../../etc", "ls", "/vdisk/etc"),
        ("cp /vdisk/../secret /vram/s", "cp", "/vdisk/secret"),
        ("cat ../../etc/passwd", "cat", "/vram/etc/passwd"),
    ] {
        m.exec(&[line]).fails(
            1,
            &format!("mavfs: {cmd}: {resolved}: No such file or directory"),
        );
    }
    m.exec(&["cd /vdisk", "cat ../../secret"])
        .fails(1, "mavfs: cat: /vdisk/secret: No such file or directory");

    // `/vdisk/..` is /vdisk itself.
    fs::write(m.block_dir().join("inside"), b"in").unwrap();
    assert_eq!(m.exec(&["ls /vdisk/.."]).ok(), "inside\n");
    assert_eq!(m.exec(&["ls /vdisk/../../.."]).ok(), "inside\n");
    assert_eq!(m.exec(&["cd /vdisk/..", "pwd"]).ok(), "/vdisk\n");

    // Writes through `..` land inside the root.
    m.exec(&[
        "echo in > /vdisk/../secret",
        "mkdir /vdisk/../../made",
        "touch /vdisk/../touched",
    ])
    .ok();
    assert_eq!(fs::read(m.block_dir().join("secret")).unwrap(), b"in\n");
    assert!(m.block_dir().join("made").is_dir());
    assert!(m.block_dir().join("touched").is_file());
    assert_eq!(fs::read(m.path().join("secret")).unwrap(), b"host secret");
    assert!(!m.path().join("made").exists());
    assert!(!m.path().join("touched").exists());
    assert_eq!(m.exec(&["cat /vdisk/../../secret"]).ok(), "in\n");
}

/// A host path is not a MAVFS path: no ambient host access, for reading or writing.
#[test]
fn host_paths_are_not_under_any_mount() {
    let m = Mavfs::new();
    let host_file = m.path().join("host_file");
    fs::write(&host_file, b"host").unwrap();
    let host_file = host_file.to_str().unwrap().to_string();
    let made = m.path().join("made").to_str().unwrap().to_string();
    let block_dir_file = m.block_dir().join("f").to_str().unwrap().to_string();
    fs::create_dir_all(m.block_dir()).unwrap();
    fs::write(m.block_dir().join("f"), b"f").unwrap();

    let reason = "No such file or directory (not under any mount";
    for (line, cmd, path) in [
        ("cat /etc/passwd".to_string(), "cat", "/etc/passwd"),
        ("ls /etc".to_string(), "ls", "/etc"),
        ("ls -l /etc".to_string(), "ls", "/etc"),
        ("cp /etc/passwd /vram/p".to_string(), "cp", "/etc/passwd"),
        (
            "pull /etc/passwd /vram/p".to_string(),
            "pull",
            "/etc/passwd",
        ),
        ("cd /etc".to_string(), "cd", "/etc"),
        ("stat /etc/passwd".to_string(), "stat", "/etc/passwd"),
        (format!("cat {host_file}"), "cat", host_file.as_str()),
        (
            format!("cat {block_dir_file}"),
            "cat",
            block_dir_file.as_str(),
        ),
        (format!("echo x > {made}"), "echo", made.as_str()),
        (format!("touch {made}"), "touch", made.as_str()),
        (format!("mkdir {made}"), "mkdir", made.as_str()),
        (format!("cp /vram/f {made}"), "cp", made.as_str()),
        (format!("rm {host_file}"), "rm", host_file.as_str()),
    ] {
        let out = m.exec(&["echo f > /vram/f", &line]);
        out.fails(1, &format!("mavfs: {cmd}: {path}: {reason}"));
        assert_eq!(out.stdout, "", "{line}");
    }
    assert!(!Path::new(&made).exists());
    assert_eq!(fs::read(&host_file).unwrap(), b"host");
    assert_eq!(fs::read(m.block_dir().join("f")).unwrap(), b"f");
}

/// A scratch MAVFS with a FIFO at `block_dir/fifo`.
fn with_fifo() -> Mavfs {
    let m = Mavfs::new();
    fs::create_dir_all(m.block_dir()).unwrap();
    let status = Command::new("mkfifo")
        .arg(m.block_dir().join("fifo"))
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo failed");
    m
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|md| md.file_type().is_fifo())
}

/// Reading or writing a FIFO is refused at once, never blocking for a peer.
#[test]
fn a_fifo_is_refused_without_blocking() {
    let m = with_fifo();
    fs::write(m.block_dir().join("f"), b"f").unwrap();
    symlink("fifo", m.block_dir().join("to_fifo")).unwrap();
    for (line, cmd, path) in [
        ("cat /vdisk/fifo", "cat", "/vdisk/fifo"),
        ("cat /vdisk/to_fifo", "cat", "/vdisk/to_fifo"),
        ("cp /vdisk/fifo /vram/x", "cp", "/vdisk/fifo"),
        ("cp /vdisk/fifo /vdisk/x", "cp", "/vdisk/fifo"),
        ("pull /vdisk/fifo /vram/x", "pull", "/vdisk/fifo"),
        ("mv /vdisk/fifo /vram/x", "mv", "/vdisk/fifo"),
        ("echo x > /vdisk/fifo", "echo", "/vdisk/fifo"),
        ("echo x >> /vdisk/fifo", "echo", "/vdisk/fifo"),
        ("echo x > /vdisk/to_fifo", "echo", "/vdisk/to_fifo"),
        ("cp /vram/f /vdisk/fifo", "cp", "/vdisk/fifo"),
        ("push /vram/f /vdisk/fifo", "push", "/vdisk/fifo"),
        ("cp /vdisk/f /vdisk/fifo", "cp", "/vdisk/fifo"),
        ("pull /vdisk /vram/all", "pull", "/vdisk/fifo"),
        ("cp -r /vdisk /vram/all", "cp", "/vdisk/fifo"),
    ] {
        let out = exec_within(&m, &["echo f > /vram/f", line]);
        let expected = format!("mavfs: {cmd}: {path}: Operation not supported");
        assert_eq!(out.code, 1, "{line}: stderr:\n{}", out.stderr);
        assert!(
            out.stderr.starts_with(&expected),
            "{line}: stderr lacks {expected:?}:\n{}",
            out.stderr
        );
        assert_eq!(out.stdout, "", "{line}");
        assert!(is_fifo(&m.block_dir().join("fifo")), "{line}: fifo gone");
    }
    assert!(!m.block_dir().join("x").exists());
}

/// Metadata commands see a FIFO without opening it, and `rm` removes it.
#[test]
fn a_fifo_is_listed_stat_ed_and_removed_without_blocking() {
    let m = with_fifo();
    let out = exec_within(&m, &["ls -l /vdisk"]);
    let line = out.ok().trim_end();
    assert!(line.starts_with("s ") && line.ends_with(" fifo"), "{line}");
    assert_eq!(exec_within(&m, &["ls /vdisk"]).ok(), "fifo\n");
    assert_eq!(exec_within(&m, &["ls /vdisk/fifo"]).ok(), "/vdisk/fifo\n");
    exec_within(
        &m,
        &["stat /vdisk/fifo", "du /vdisk", "tree /vdisk", "stats"],
    )
    .ok();
    exec_within(&m, &["touch /vdisk/fifo"]).ok();
    assert!(is_fifo(&m.block_dir().join("fifo")));
    assert_eq!(exec_within(&m, &["rm /vdisk/fifo", "ls /vdisk"]).ok(), "");
    assert!(fs::symlink_metadata(m.block_dir().join("fifo")).is_err());
}

/// A symlink that stays inside the root is followed, relative or through `..`, by paths through
/// it; listings show it as a link (`l` in `ls -l`), so tree walks never follow it.
#[test]
fn a_symlink_inside_the_root_is_followed() {
    let m = Mavfs::new();
    let real = m.block_dir().join("real");
    fs::create_dir_all(real.join("deep")).unwrap();
    fs::write(real.join("f"), b"inner bytes").unwrap();
    symlink("real", m.block_dir().join("alias")).unwrap();
    symlink("../f", real.join("deep/up")).unwrap();
    symlink("real/f", m.block_dir().join("falias")).unwrap();

    let out = m.exec(&[
        "cat /vdisk/alias/f",
        "cat /vdisk/real/deep/up",
        "cat /vdisk/falias",
    ]);
    assert_eq!(out.ok(), "inner bytesinner bytesinner bytes");
    assert_eq!(m.exec(&["ls /vdisk/alias"]).ok(), "deep/\nf\n");
    assert_eq!(m.exec(&["cd /vdisk/alias", "cat f"]).ok(), "inner bytes");
    let out = m.exec(&["ls -l /vdisk"]);
    assert!(
        out.ok()
            .lines()
            .any(|l| l.starts_with("l ") && l.ends_with(" alias")),
        "{}",
        out.stdout
    );

    // Writes through the link land in the real directory; the links stay links.
    m.exec(&[
        "echo new > /vdisk/alias/g",
        "echo replaced > /vdisk/falias",
        "cp /vdisk/alias/g /vram/g",
        "cat /vram/g",
    ])
    .ok();
    assert_eq!(fs::read(real.join("g")).unwrap(), b"new\n");
    assert_eq!(fs::read(real.join("f")).unwrap(), b"replaced\n");
    assert!(
        fs::symlink_metadata(m.block_dir().join("falias"))
            .unwrap()
            .is_symlink()
    );

    // A tree holding inside links copies what they point at.
    fs::remove_file(real.join("deep/up")).unwrap();
    let out = m.exec(&["pull /vdisk/alias /vram/a", "cat /vram/a/f /vram/a/g"]);
    assert!(out.ok().ends_with("replaced\nnew\n"), "{}", out.stdout);
}

/// An absolute symlink is refused even when its target is inside the root: the sandbox resolves
/// every path beneath the root (openat2 RESOLVE_BENEATH), where an absolute link has no meaning.
/// Relative links that stay inside are followed.
#[test]
fn an_absolute_symlink_is_refused_even_into_the_root() {
    let m = Mavfs::new();
    let real = m.block_dir().join("real");
    fs::create_dir_all(&real).unwrap();
    fs::write(real.join("f"), b"inner").unwrap();
    symlink(&real, m.block_dir().join("alias")).unwrap();
    symlink("real", m.block_dir().join("relative")).unwrap();
    m.exec(&["cat /vdisk/alias/f"])
        .fails(1, "mavfs: cat: /vdisk/alias/f: Permission denied");
    assert_eq!(m.exec(&["cat /vdisk/relative/f"]).ok(), "inner");
}

/// A symlink loop inside the root (`real/loop -> ..`, next to `alias -> real`) must not make a
/// recursive command walk the cycle forever: it finishes promptly, succeeding or refusing the loop
/// with a clear error.
#[test]
fn a_symlink_loop_inside_the_root_does_not_hang_recursive_commands() {
    let m = Mavfs::new();
    let real = m.block_dir().join("real");
    fs::create_dir_all(&real).unwrap();
    fs::write(real.join("f"), b"f").unwrap();
    symlink("real", m.block_dir().join("alias")).unwrap();
    symlink("..", real.join("loop")).unwrap();
    for line in [
        "pull /vdisk /vram/all",
        "cp -r /vdisk /vram/all",
        "du -s /vdisk",
        "tree /vdisk",
    ] {
        let out = exec_within(&m, &[line]);
        assert!(out.code == 0 || out.code == 1, "{line}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{line}: {}", out.stderr);
    }
}
