//! Runs the real `mavfs` binary in a scratch directory of its own.
//!
//! Every [`Mavfs`] gets a fresh temp dir as its working directory, so the built-in default
//! `/vdisk` at `./block_dir` lands there, and `HOME`, `XDG_CONFIG_HOME`, `XDG_STATE_HOME` and
//! `XDG_RUNTIME_DIR` point into it, so no user config, history or daemon leaks in.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for a process to start or to exit.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success; stderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        &self.stdout
    }

    /// Asserts exit code `code` and that stderr contains `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
    }
}

pub struct Mavfs {
    pub dir: tempfile::TempDir,
}

impl Mavfs {
    pub fn new() -> Self {
        Mavfs {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host directory behind `/vdisk`.
    pub fn block_dir(&self) -> PathBuf {
        self.dir.path().join("block_dir")
    }

    /// The binary, set up to run in this scratch directory.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mavfs"));
        cmd.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            // No daemon of the user's (or of another test) is attached by accident.
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env_remove("MAVFS_SOCKET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `mavfs <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        collect(self.command().args(args).output().unwrap())
    }

    /// Runs `mavfs exec <lines>`.
    pub fn exec(&self, lines: &[&str]) -> Run {
        let mut args = vec!["exec"];
        args.extend_from_slice(lines);
        self.run(&args)
    }

    /// Starts `mavfs <flags> shell` in script mode with stdin, stdout and stderr piped, for a
    /// test that feeds it lines while it runs.
    pub fn piped_shell(&self, flags: &[&str]) -> Child {
        self.command()
            .args(flags)
            .arg("shell")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `mavfs shell` with `script` on stdin (script mode).
    pub fn script(&self, script: &str) -> Run {
        let mut child = self.piped_shell(&[]);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        collect(child.wait_with_output().unwrap())
    }
}

fn collect(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the calling test alone in a process of its own, for tests that read process-wide
/// figures such as `getrusage(RUSAGE_CHILDREN)`, which the other tests of this binary would skew.
///
/// In the test binary as run, this re-runs the binary with only the test `module::name` selected
/// (`module` is the caller's `module_path!()`), asserts that exactly that one test ran and passed,
/// and returns `false`: the caller returns. In that child process it returns `true`: the caller
/// runs its body.
pub fn alone_in_process(module: &str, name: &str) -> bool {
    const ALONE: &str = "MAVFS_TEST_ALONE";
    // libtest names a test by its path below the crate root.
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let test = format!("{module}::{name}");
    if std::env::var(ALONE).is_ok_and(|t| t == test) {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test.as_str(), "--exact", "--test-threads=1"])
        .env(ALONE, &test)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = collect(out);
    assert!(
        run.code == 0 && run.stdout.contains("test result: ok. 1 passed"),
        "{test}, alone in a process:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    false
}

/// Sends signal `name` (`TERM`, `INT`, `KILL`) to `pid` with kill(1), so that tests need no
/// `unsafe`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (at most [`TIMEOUT`]) for `child` to exit; returns its exit code (-1 when a signal
/// killed it) and its stderr, if piped.
pub fn wait_exit(child: &mut Child) -> (i32, String) {
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).unwrap();
    }
    (status.code().unwrap_or(-1), stderr)
}

/// A `mavfs serve` in a scratch directory, on its default socket (`run/mavfs/mavfs.sock`, since
/// `run/` is the directory's `XDG_RUNTIME_DIR`), so clients find it as a user's would. Killed
/// when dropped if still running.
pub struct Served {
    child: Child,
    /// The daemon's socket.
    pub socket: PathBuf,
}

impl Served {
    /// Starts `mavfs serve` in `m`'s directory (memory `/vram`, disk `/vdisk` at
    /// `./block_dir`) and waits until it accepts connections. Its log is kept for
    /// [`Served::terminate`].
    pub fn start(m: &Mavfs) -> Served {
        let socket = m.path().join("run/mavfs/mavfs.sock");
        let child = m
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Served { child, socket }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit code and the log.
    pub fn terminate(mut self) -> (i32, String) {
        signal(self.pid(), "TERM");
        wait_exit(&mut self.child)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file below `dir` on the host, by path relative to it, with its bytes; empty when `dir`
/// does not exist.
pub fn host_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}
