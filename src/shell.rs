//! The shell: one session of commands over the engine.
//!
//! A [`Session`] holds the current directory and runs lines: [`parse`] splits a line into
//! commands, [`commands`] runs each against the [`Engine`], and output goes to stdout or,
//! redirected, atomically into a virtual file ([`output`]). Errors are printed here, once, as
//! `mavfs: <command>: <path>: <reason>`. The three ways in share this: [`interactive`] (rustyline),
//! [`run_script`] (stdin not a terminal) and [`run_exec`] (`mavfs exec`).

pub mod commands;
pub mod foreground;
pub mod format;
pub mod interactive;
pub mod jobs;
pub mod output;
pub mod parse;
pub mod progress;
pub mod terminate;

use std::fmt;
use std::io::BufRead;

use mavfs_actors::WriteMode;
use mavfs_actors::{Error, VPath};

use crate::engine::Engine;

use self::output::{Output, OutputError};
use self::parse::Command;

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    /// A command failed; its errors are already printed.
    Failed,
    /// `exit [code]`.
    Exit(i32),
}

/// Why a command failed, printed as `mavfs: <command>: <message>`.
#[derive(Debug)]
pub enum CmdError {
    /// An engine error; its Display starts with the path.
    Engine(Error),
    /// A path argument that could not be resolved, shown as typed.
    BadPath(String, Error),
    /// Wrong options or operands.
    Usage(String),
    /// Writing the output failed.
    Output(OutputError),
    /// Errors were already printed (a command with several operands reports each).
    Reported,
}

impl From<Error> for CmdError {
    fn from(e: Error) -> Self {
        CmdError::Engine(e)
    }
}

impl From<mavfs_actors::PathError> for CmdError {
    fn from(e: mavfs_actors::PathError) -> Self {
        CmdError::Engine(e.into())
    }
}

impl From<OutputError> for CmdError {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::Store(e) => CmdError::Engine(e),
            other => CmdError::Output(other),
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Engine(e) => write!(f, "{e}"),
            CmdError::BadPath(input, e) => write!(f, "{input}: {}", e.reason()),
            CmdError::Usage(msg) => f.write_str(msg),
            CmdError::Output(OutputError::Stdout(e)) => write!(f, "write error: {e}"),
            CmdError::Output(OutputError::Store(e)) => write!(f, "{e}"),
            CmdError::Output(OutputError::Closed) | CmdError::Reported => Ok(()),
        }
    }
}

/// Prints `mavfs: <command>: <error>` to stderr.
pub fn report(command: &str, err: &CmdError) {
    match err {
        CmdError::Reported | CmdError::Output(OutputError::Closed) => {}
        _ => eprintln!("mavfs: {command}: {err}"),
    }
}

/// Settings a session takes from the config.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Files a transfer copies at once unless `-j N` says otherwise.
    pub jobs: usize,
    /// Draw live progress bars for foreground transfers (an interactive shell on a terminal).
    pub progress: bool,
    /// `mavfs --json`: every command that supports `--json` prints JSON as if given it.
    pub json: bool,
    /// The interactive shell (rustyline on a terminal), not a script or `exec`: only it may
    /// take over the terminal (`dashboard`) or catch Ctrl-Z during a foreground transfer.
    pub interactive: bool,
    /// The `dashboard` command's refresh interval (`--dashboard-interval`).
    pub dashboard_interval: std::time::Duration,
}

/// One shell session: a current directory over one engine.
pub struct Session {
    engine: Engine,
    cwd: VPath,
    options: SessionOptions,
    /// Jobs this session started with `&`, or stopped with Ctrl-Z, whose end it has not
    /// reported yet.
    background: Vec<mavfs_actors::JobId>,
    /// The foreground waits of jobs stopped with Ctrl-Z. Kept, because dropping one cancels its
    /// job; `fg` takes its wait back, and the notice of its end releases it. In a `Mutex` only
    /// so that the session stays `Sync` (handlers hold `&Session` across awaits); it is never
    /// contended.
    parked: Vec<(mavfs_actors::JobId, std::sync::Mutex<foreground::Waiting>)>,
}

impl Session {
    pub fn new(engine: Engine, options: SessionOptions) -> Self {
        let cwd = engine.home();
        Session {
            engine,
            cwd,
            options,
            background: Vec::new(),
            parked: Vec::new(),
        }
    }

    pub fn cwd(&self) -> &VPath {
        &self.cwd
    }

    /// The engine this session works on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn options(&self) -> SessionOptions {
        self.options
    }

    pub fn set_progress(&mut self, progress: bool) {
        self.options.progress = progress;
    }

    pub fn set_interactive(&mut self, interactive: bool) {
        self.options.interactive = interactive;
    }

    /// Resolves a path argument against the current directory.
    pub fn resolve(&self, input: &str) -> Result<VPath, CmdError> {
        self.engine
            .resolve(&self.cwd, input)
            .map_err(|e| CmdError::BadPath(input.to_string(), e))
    }

    /// Runs every command of `line`; the status is that of the last command, or the first `exit`.
    pub async fn run_line(&mut self, line: &str) -> Status {
        let commands = match parse::parse_line(line) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("mavfs: {e}");
                return Status::Failed;
            }
        };
        let mut status = Status::Success;
        for command in commands {
            status = self.run_command(command).await;
            if let Status::Exit(_) = status {
                break;
            }
        }
        status
    }

    async fn run_command(&mut self, command: Command) -> Status {
        let name = command.argv[0].clone();
        if command.background {
            if command.redirect.is_some() {
                eprintln!("mavfs: {name}: a background job has no output to redirect");
                return Status::Failed;
            }
            return match jobs::start_background(self, &command.argv).await {
                Ok(status) => status,
                Err(e) => {
                    report(&name, &e);
                    Status::Failed
                }
            };
        }
        let mut out = match &command.redirect {
            None => Output::stdout(),
            Some(redirect) => match self.open_redirect(&redirect.target, redirect.append).await {
                Ok(out) => out,
                Err(e) => {
                    report(&name, &e);
                    return Status::Failed;
                }
            },
        };
        let result = commands::run(self, &command.argv, &mut out).await;
        // A failed command's redirected output is discarded: the target keeps its old contents.
        let result = match result {
            Ok(status) => out.finish().await.map(|()| status).map_err(CmdError::from),
            Err(e) => {
                out.abandon().await;
                Err(e)
            }
        };
        match result {
            Ok(status) => status,
            Err(CmdError::Output(OutputError::Closed)) => Status::Success,
            Err(e) => {
                report(&name, &e);
                Status::Failed
            }
        }
    }

    async fn open_redirect(&self, target: &str, append: bool) -> Result<Output, CmdError> {
        let path = self.resolve(target)?;
        let mode = if append {
            WriteMode::Append
        } else {
            WriteMode::Replace
        };
        Ok(Output::file(self.engine.write(&path, mode).await?))
    }
}

/// Runs lines read from `input` as a script. Every line runs, as in bash; the exit code is 1 if
/// any command failed (so that a failure in the middle of a script is not lost), or the code given
/// to `exit`. Ended background jobs are reported after each line; at the end the script waits
/// for the rest. A failed background job counts as a failed command.
pub async fn run_script(session: &mut Session, input: impl BufRead + Send + 'static) -> i32 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(16);
    // Stdin is read on a thread of its own so that a slow producer never blocks the runtime.
    std::thread::spawn(move || {
        for line in input.lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut failed = false;
    while let Some(line) = rx.recv().await {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("mavfs: reading the script: {e}");
                return 1;
            }
        };
        let status = session.run_line(&line).await;
        failed |= session.report_ended_jobs().await;
        match status {
            Status::Success => {}
            Status::Failed => failed = true,
            Status::Exit(code) => {
                session.wait_background().await;
                return code;
            }
        }
    }
    failed |= session.wait_background().await;
    i32::from(failed)
}

/// Runs each argument as one line, in one session; stops at the first failure with exit code 1.
/// Background jobs are waited for, and reported, before it returns; a failed one also makes the
/// exit code 1.
pub async fn run_exec(session: &mut Session, lines: &[String]) -> i32 {
    let mut background_failed = false;
    for line in lines {
        let status = session.run_line(line).await;
        background_failed |= session.report_ended_jobs().await;
        match status {
            Status::Success if !background_failed => {}
            Status::Success | Status::Failed => {
                session.wait_background().await;
                return 1;
            }
            Status::Exit(code) => {
                session.wait_background().await;
                return code;
            }
        }
    }
    i32::from(session.wait_background().await)
}
