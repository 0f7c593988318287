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
#[cfg(test)]
mod parse_props;
pub mod progress;
pub mod terminate;

use std::fmt;
use std::io::BufRead;

use mavfs_actors::WriteMode;
use mavfs_actors::quote;
use mavfs_actors::{EntryKind, Error, ErrorKind, VPath};

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
            CmdError::BadPath(input, e) => {
                write!(f, "{}: {}", quote::diagnostic(input), e.reason())
            }
            // Usage messages quote what was typed with `quote::diagnostic`; this is the net.
            CmdError::Usage(msg) => f.write_str(&quote::prose(msg)),
            CmdError::Output(OutputError::Stdout(e)) => write!(f, "write error: {e}"),
            CmdError::Output(OutputError::Store(e)) => write!(f, "{e}"),
            CmdError::Output(OutputError::Closed) | CmdError::Reported => Ok(()),
        }
    }
}

/// Prints `mavfs: <command>: <error>` to stderr, the command's name quoted as names are in
/// diagnostics ([`quote::diagnostic`]).
pub fn report(command: &str, err: &CmdError) {
    match err {
        CmdError::Reported | CmdError::Output(OutputError::Closed) => {}
        _ => eprintln!("mavfs: {}: {err}", quote::diagnostic(command)),
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

    /// Resolves a path argument against the current directory, lexically (`..` stops at a
    /// mount root), then checks what the kernel's walk of the path would, as coreutils users
    /// expect: the entry before each `..` must be an existing directory (`missing/../f` is `No
    /// such file or directory`, `file/../f` is `Not a directory`), and a path written with a
    /// trailing `/` that names an existing non-directory is `Not a directory`. These errors name
    /// the path as typed, on every store alike. A missing path with a trailing `/` is left to
    /// the command.
    pub async fn resolve(&self, input: &str) -> Result<VPath, CmdError> {
        let path = self.lexical(input)?;
        let bad = |e: Error| CmdError::BadPath(input.to_string(), e);
        // Each `..` after a component inside a mount: that component must be a directory.
        let mut start = 0;
        for component in input.split('/') {
            let end = start + component.len();
            if component == ".." {
                let before = match start {
                    0 => self.cwd.clone(),
                    _ => self.lexical(&input[..start])?,
                };
                if before.components().count() >= 2 {
                    self.must_be_dir(&before).await.map_err(bad)?;
                }
            }
            start = end + 1;
        }
        let trailing = input.ends_with('/') || input.ends_with("/.");
        if trailing && path.components().count() >= 2 {
            match self.must_be_dir(&path).await {
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                other => other.map_err(bad)?,
            }
        }
        Ok(path)
    }

    /// `input` resolved against the current directory, lexically.
    fn lexical(&self, input: &str) -> Result<VPath, CmdError> {
        self.engine
            .resolve(&self.cwd, input)
            .map_err(|e| CmdError::BadPath(input.to_string(), e))
    }

    /// Errors: `NotFound` if nothing is at `path`, `NotADirectory` if a file or special file
    /// is, and the store's own errors. A symlink passes: MAVFS never follows one, and what a
    /// command does with it (`rm -r link/` removes the link) is the command's rule.
    async fn must_be_dir(&self, path: &VPath) -> Result<(), Error> {
        let meta = self
            .engine
            .stat(path)
            .await
            .map_err(|e| Error::new(e.kind(), "resolve").with_path(path))?;
        match meta.kind {
            EntryKind::Dir | EntryKind::Symlink => Ok(()),
            EntryKind::File | EntryKind::Special => {
                Err(Error::new(ErrorKind::NotADirectory, "resolve").with_path(path))
            }
        }
    }

    /// Runs every command of `line`; the status is that of the last command, or the first `exit`.
    /// A line over [`MAX_LINE_BYTES`] is refused whole.
    pub async fn run_line(&mut self, line: &str) -> Status {
        if line.len() > MAX_LINE_BYTES {
            eprintln!("mavfs: {}", too_long());
            return Status::Failed;
        }
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
                eprintln!(
                    "mavfs: {}: a background job has no output to redirect",
                    quote::diagnostic(&name)
                );
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
        let path = self.resolve(target).await?;
        let mode = if append {
            WriteMode::Append
        } else {
            WriteMode::Replace
        };
        Ok(Output::file(self.engine.write(&path, mode).await?))
    }
}

/// The longest shell line, in bytes: a longer one is refused with an error naming this limit.
/// Far above any line a person types or a script needs, and low enough that a runaway input
/// (a binary piped to `mavfs shell`) cannot make the shell hold it all.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The error for a line over [`MAX_LINE_BYTES`].
fn too_long() -> String {
    format!(
        "the line is longer than {} (the limit of a shell line)",
        format::size(MAX_LINE_BYTES as u64)
    )
}

/// One line of a script as read.
enum ScriptLine {
    Text(String),
    /// Not UTF-8: reported with its number, and the script goes on.
    NotUtf8,
    /// Over [`MAX_LINE_BYTES`]: the rest of it was skipped, not stored.
    TooLong,
}

/// Reads one line of at most [`MAX_LINE_BYTES`] bytes (without its newline) from `input`;
/// `None` at the end. A longer line is read to its end and dropped, never held whole.
fn read_script_line(input: &mut impl BufRead) -> std::io::Result<Option<ScriptLine>> {
    let mut line = Vec::new();
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long && line.len() + chunk.len() <= MAX_LINE_BYTES {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line = Vec::new();
        }
        let used = done.unwrap_or(chunk.len());
        input.consume(used);
        if done.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if too_long {
        return Ok(Some(ScriptLine::TooLong));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(match String::from_utf8(line) {
        Ok(text) => ScriptLine::Text(text),
        Err(_) => ScriptLine::NotUtf8,
    }))
}

/// Runs lines read from `input` as a script. Every line runs, as in bash; the exit code is 1 if
/// any command failed (so that a failure in the middle of a script is not lost), or the code given
/// to `exit`. A line that is not UTF-8, or longer than [`MAX_LINE_BYTES`], fails as a failing
/// command does: reported with its number (`mavfs: line 3: ...`), and the script goes on. Ended
/// background jobs are reported after each line; at the end the script waits for the rest. A
/// failed background job counts as a failed command.
pub async fn run_script(session: &mut Session, mut input: impl BufRead + Send + 'static) -> i32 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<ScriptLine>>(16);
    // Stdin is read on a thread of its own so that a slow producer never blocks the runtime.
    std::thread::spawn(move || {
        loop {
            let line = match read_script_line(&mut input) {
                Ok(Some(line)) => Ok(line),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            let failed = line.is_err();
            if tx.blocking_send(line).is_err() || failed {
                break;
            }
        }
    });
    let mut failed = false;
    let mut number = 0u64;
    while let Some(line) = rx.recv().await {
        number += 1;
        let line = match line {
            Ok(ScriptLine::Text(l)) => l,
            Ok(ScriptLine::NotUtf8) => {
                eprintln!("mavfs: line {number}: not valid UTF-8; skipped");
                failed = true;
                continue;
            }
            Ok(ScriptLine::TooLong) => {
                eprintln!("mavfs: line {number}: {}; skipped", too_long());
                failed = true;
                continue;
            }
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
