//! `mavfs dashboard`: a live view of tiers, transfers and jobs over the [`Engine`].
//!
//! - [`state`]: what is shown, changed only by pure `load(snapshot)`, `apply(event)` and
//!   `handle(action)`;
//! - [`input`]: keys to actions;
//! - [`render`]: one function per screen region, no I/O;
//! - [`run`]: the loop that joins terminal input, the engine's events and the ticks.
//!
//! With a terminal on stdout, [`main`] runs the ratatui view; without one it prints one line per
//! mount and per running job each interval ([`plain`]), as JSON lines with `--json`.

#[cfg(test)]
mod fixtures;
pub mod input;
pub mod plain;
pub mod render;
pub mod run;
pub mod state;

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use crossterm::event::EventStream;

use crate::engine::Engine;

/// Runs the dashboard until the user quits, SIGINT/SIGTERM, or (plain output) stdout closes.
/// Returns the exit code.
pub async fn main(engine: &Engine, interval: Duration, json: bool) -> i32 {
    if json || !std::io::stdout().is_terminal() {
        return plain::run(engine, interval, json, crate::signals::interrupted()).await;
    }
    match on_terminal(engine, interval, crate::signals::interrupted()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mavfs: dashboard: {e}");
            1
        }
    }
}

/// Runs the ratatui view on this process's terminal until the user quits or `shutdown`
/// resolves, and restores the terminal on every way out, dropping the future included (the
/// shell drops a running command on SIGTERM). `mavfs dashboard` and the shell's `dashboard`
/// command share it. Errors: the terminal could not be set up, drawn or read, in words fit to
/// follow `dashboard: `.
pub async fn on_terminal(
    engine: &Engine,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let mut terminal =
        ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    // ratatui's panic hook restores the terminal on a panic; this covers every other way out.
    let _restore = Restore;
    run::run(
        &mut terminal,
        engine,
        EventStream::new(),
        interval,
        shutdown,
    )
    .await
    .map_err(|e| e.to_string())
}

/// Restores the terminal when dropped: on return, on error and when the future is dropped.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
