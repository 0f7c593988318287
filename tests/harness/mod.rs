//! Runs the real `mavfs` binary in a scratch directory of its own.
//!
//! Every [`Mavfs`] gets a fresh temp dir as its working directory, so the built-in default
//! `/vdisk` at `./block_dir` lands there, and `HOME` and `XDG_CONFIG_HOME` point into it, so no
//! user config or history leaks in.

#![allow(dead_code)] // each test file uses a different part of the harness

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
