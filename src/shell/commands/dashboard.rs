//! `dashboard`: the live view of [`crate::dashboard`] over the session's own engine, so that the
//! background jobs started in this shell are watched as they run; `q` returns to the prompt and
//! the jobs go on.

use std::io::IsTerminal;

use super::Opts;
use crate::shell::output::Output;
use crate::shell::{CmdError, Session, Status};

/// `dashboard`: takes over the terminal until `q`, Esc or Ctrl-C (SIGTERM ends the shell).
/// Errors: `needs a terminal` in a
/// script, in `exec`, or with stdin or stdout not a terminal (or redirected).
pub async fn dashboard(
    session: &mut Session,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    if !Opts::parse(args, "", "")?.operands.is_empty() {
        return Err(CmdError::Usage("too many arguments".into()));
    }
    let on_terminal =
        out.is_stdout() && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !session.options().interactive || !on_terminal {
        return Err(CmdError::Usage("needs a terminal".into()));
    }
    // SIGTERM is the shell's own (shell::terminate): it drops this command, which restores the
    // terminal, and ends the shell. In raw mode Ctrl-C arrives as a key and quits the view.
    crate::dashboard::on_terminal(
        session.engine(),
        session.options().dashboard_interval,
        std::future::pending(),
    )
    .await
    .map_err(CmdError::Usage)?;
    Ok(Status::Success)
}
