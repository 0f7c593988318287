//! The interactive shell on a terminal: rustyline line editing, a history file, Tab completion of
//! commands and virtual paths, and Ctrl-C that cancels the running command instead of the shell.
//!
//! rustyline blocks, so each `readline` runs on a blocking thread; the completer, called from that
//! thread, asks the engine for directory listings with the runtime handle's `block_on`.
//!
//! Ctrl-Z: during a foreground transfer the terminal sends SIGTSTP, which the transfer catches
//! to stop its job ([`Session::wait_foreground`]). tokio never gives a caught signal back to its
//! default action, so after the first transfer rustyline's own Ctrl-Z (which sends SIGTSTP to
//! the process group) would do nothing. At the prompt Ctrl-Z is therefore a key bound here: it
//! ends `readline` with the line kept, the process stops itself with SIGSTOP (the terminal
//! restored, as the default action leaves it), and on `fg` the prompt comes back with the line.
//!
//! SIGTERM ends the shell cleanly, at the prompt or during any command ([`super::terminate`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mavfs_actors::VPath;
use mavfs_actors::quote::Shown;

use crate::engine::Engine;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{FileHistory, History};
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Config, Context, Editor, Event, EventContext, EventHandler,
    Helper, KeyEvent, RepeatCount,
};

use super::commands::COMMANDS;
use super::terminate::Terminate;
use super::{Session, Status};

/// Where the history is kept: `$XDG_STATE_HOME/mavfs/history`, else `~/.local/state/mavfs/history`.
fn history_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("mavfs").join("history"))
}

/// Completes command names in first position and virtual paths elsewhere.
struct ShellHelper {
    engine: Engine,
    /// The session's current directory, updated after every line.
    cwd: Arc<Mutex<VPath>>,
    runtime: tokio::runtime::Handle,
}

/// Escapes the characters the parser treats specially, so a completed name reads back as itself.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(
            c,
            ' ' | '\t' | '\n' | '\'' | '"' | '\\' | '>' | '&' | ';' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The completion of entry `name` (a directory when `is_dir`) typed after `dir_part`. A name with
/// control characters is shown and inserted as `ls` shows it on a terminal (`'a'$'\n''b'`),
/// which the parser reads back as the name: raw, an escape sequence in a name would reach the
/// terminal and a newline would end the line.
fn path_completion(dir_part: &str, name: &str, is_dir: bool) -> Pair {
    let suffix = if is_dir { "/" } else { "" };
    if name.contains(char::is_control) {
        let quoted = mavfs_actors::quote::shell_escape(name);
        return Pair {
            display: format!("{quoted}{suffix}"),
            replacement: format!("{dir_part}{quoted}{suffix}"),
        };
    }
    Pair {
        display: format!("{name}{suffix}"),
        replacement: format!("{dir_part}{}{suffix}", escape(name)),
    }
}

/// The commands of the table whose names start with `prefix`, each completed with a blank.
pub(crate) fn complete_command(prefix: &str) -> Vec<Pair> {
    COMMANDS
        .iter()
        .filter(|c| c.name.starts_with(prefix))
        .map(|c| Pair {
            display: c.name.to_string(),
            replacement: format!("{} ", c.name),
        })
        .collect()
}

impl ShellHelper {
    fn complete_path(&self, word: &str) -> Vec<Pair> {
        let (dir_part, prefix) = match word.rfind('/') {
            Some(i) => (&word[..=i], &word[i + 1..]),
            None => ("", word),
        };
        let cwd = self
            .cwd
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| VPath::root());
        let lookup = if dir_part.is_empty() { "." } else { dir_part };
        let Ok(dir) = self.engine.resolve(&cwd, lookup) else {
            return Vec::new();
        };
        let Ok(entries) = self.runtime.block_on(self.engine.list(&dir)) else {
            return Vec::new();
        };
        entries
            .into_iter()
            .filter(|e| e.name.starts_with(prefix))
            .map(|e| path_completion(dir_part, &e.name, e.meta.is_dir()))
            .collect()
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind([' ', '\t']).map_or(0, |i| i + 1);
        let word = &before[start..];
        let first_word = before[..start].trim().is_empty();
        if first_word {
            return Ok((start, complete_command(word)));
        }
        Ok((start, self.complete_path(word)))
    }
}

/// The line being edited when Ctrl-Z was pressed at the prompt, and the cursor's place in it.
type Suspended = Arc<Mutex<Option<(String, usize)>>>;

/// Ctrl-Z at the prompt: keeps the line and ends `readline` as Ctrl-C does; the loop stops the
/// process and restores the line when it continues.
struct SuspendKey(Suspended);

impl ConditionalEventHandler for SuspendKey {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some((ctx.line().to_string(), ctx.pos()));
        }
        Some(Cmd::Interrupt)
    }
}

/// Stops this process as the default action of SIGTSTP would, until the job-control shell
/// continues it. SIGSTOP, because SIGTSTP may be caught by a transfer's handler by now.
fn stop_self() {
    use rustix::process::{Signal, getpid, kill_process};
    if let Err(e) = kill_process(getpid(), Signal::STOP) {
        eprintln!("mavfs: cannot suspend: {e}");
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

/// Runs the interactive shell until `exit`, end of input or SIGTERM; returns the exit code (0
/// after SIGTERM, an end asked for).
pub async fn run(session: &mut Session) -> i32 {
    // First, so that SIGTERM from here on ends the shell rather than kills it.
    let mut terminate = Terminate::install();
    let config = Config::builder()
        .auto_add_history(true)
        .max_history_size(10_000);
    let mut editor =
        match config.map(|c| Editor::<ShellHelper, FileHistory>::with_config(c.build())) {
            Ok(Ok(editor)) => editor,
            Ok(Err(e)) | Err(e) => {
                eprintln!("mavfs: cannot start the line editor: {e}");
                return 1;
            }
        };
    let cwd = Arc::new(Mutex::new(session.cwd().clone()));
    editor.set_helper(Some(ShellHelper {
        engine: session.engine().clone(),
        cwd: cwd.clone(),
        runtime: tokio::runtime::Handle::current(),
    }));
    // rustyline waits on a `select` over the terminal and its signal pipe only while an external
    // printer exists, so it is kept for the whole loop; without one it blocks in `read`, which a
    // SIGINT caught on another thread never interrupts, and SIGTERM at the prompt could not end
    // it (see super::terminate). Where there is none to have (stdout not a terminal), SIGTERM
    // falls back on restoring the terminal mode itself.
    let _printer = editor.create_external_printer().ok();
    let suspended: Suspended = Arc::default();
    editor.bind_sequence(
        KeyEvent::ctrl('Z'),
        EventHandler::Conditional(Box::new(SuspendKey(suspended.clone()))),
    );
    // The line kept by Ctrl-Z at the prompt, to edit again once continued.
    let mut initial: Option<(String, usize)> = None;
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is normal on first use.
        let _ = editor.history_mut().load(path);
    }
    session.set_progress(std::io::stderr().is_terminal());
    session.set_interactive(true);
    let mut code = 0;
    loop {
        session.report_ended_jobs().await;
        // An attached shell says so: its jobs are the daemon's and outlive it. The directory is
        // quoted as `ls` quotes names on a terminal: a name must not drive the terminal.
        let cwd_shown = Shown::listing(true)
            .name(session.cwd().as_str())
            .into_owned();
        let prompt = match session.engine().attached() {
            Some((pid, _)) => format!("mavfs@serve[{pid}]:{cwd_shown}$ "),
            None => format!("mavfs:{cwd_shown}$ "),
        };
        let kept = initial.take();
        let mut reading = tokio::task::spawn_blocking(move || {
            let line = match &kept {
                Some((line, pos)) => {
                    let (left, right) = line.split_at(*pos);
                    editor.readline_with_initial(&prompt, (left, right))
                }
                None => editor.readline(&prompt),
            };
            (editor, line)
        });
        let (joined, terminated) = tokio::select! {
            joined = &mut reading => (joined, false),
            () = terminate.recv() => match terminate.wake(&mut reading).await {
                Some(joined) => (joined, true),
                // The editor is stuck in its thread: no history to save.
                None => return 0,
            },
        };
        let Ok((returned, line)) = joined else {
            eprintln!("mavfs: the line editor stopped unexpectedly");
            return 1;
        };
        editor = returned;
        if terminated {
            code = 0;
            break;
        }
        match line {
            Ok(line) => {
                let status = tokio::select! {
                    status = session.run_line(&line) => status,
                    // Dropping the running command cancels it: transfers stop and discard what
                    // they had staged; the shell goes on.
                    _ = tokio::signal::ctrl_c() => {
                        // The terminal echoed ^C; end its line.
                        eprintln!();
                        Status::Failed
                    }
                    // Dropped the same way (the dashboard restores the terminal as it goes),
                    // and the shell ends.
                    () = terminate.recv() => Status::Exit(0),
                };
                if let Ok(mut c) = cwd.lock() {
                    *c = session.cwd().clone();
                }
                match status {
                    Status::Exit(c) => {
                        code = c;
                        break;
                    }
                    Status::Success => code = 0,
                    Status::Failed => code = 1,
                }
            }
            Err(ReadlineError::Interrupted) => {
                if let Some(kept) = suspended.lock().ok().and_then(|mut k| k.take()) {
                    stop_self();
                    initial = Some(kept);
                }
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("mavfs: reading input: {e}");
                code = 1;
                break;
            }
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = editor.history_mut().save(path) {
            eprintln!("mavfs: cannot save history to {}: {e}", path.display());
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parse::parse_line;

    /// The word a completed line reads back as, after `cp `.
    fn read_back(replacement: &str) -> String {
        let line = format!("cp {replacement} x");
        parse_line(&line).unwrap()[0].argv[1].clone()
    }

    #[test]
    fn completed_names_read_back_as_themselves_and_show_no_control_characters() {
        for name in [
            "plain",
            "a b",
            "it's",
            "x>y&z;#",
            "a\nb",
            "\u{1b}[31mred",
            "tab\there",
            "\r",
        ] {
            for is_dir in [false, true] {
                let pair = path_completion("/vram/d/", name, is_dir);
                assert!(
                    !pair.display.contains(char::is_control)
                        && !pair.replacement.contains(char::is_control),
                    "{name:?}: {:?} {:?}",
                    pair.display,
                    pair.replacement
                );
                let slash = if is_dir { "/" } else { "" };
                assert_eq!(
                    read_back(&pair.replacement),
                    format!("/vram/d/{name}{slash}")
                );
            }
        }
    }
}
