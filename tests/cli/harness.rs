//! Runs the real `mavfs` binary in a scratch directory of its own.
//!
//! Every [`Mavfs`] gets a fresh temp dir as its working directory, so the built-in default
//! `/vdisk` at `./block_dir` lands there, and `HOME`, `XDG_CONFIG_HOME`, `XDG_STATE_HOME` and
//! `XDG_RUNTIME_DIR` point into it, so no user config, history or daemon leaks in.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

    /// Runs `mavfs shell` with `script` on stdin (script mode).
    pub fn script(&self, script: &str) -> Run {
        let mut child = self
            .command()
            .arg("shell")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
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
