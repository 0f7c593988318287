//! `help [command]`: the command table, as text.

use super::{COMMANDS, Spec, find};
use crate::shell::output::Output;
use crate::shell::{CmdError, Status};

pub async fn help(args: &[String], out: &mut Output) -> Result<Status, CmdError> {
    let text = match args {
        [] => listing(),
        [name] => find(name).map(usage).ok_or_else(|| {
            CmdError::Usage(format!(
                "{}: no such command",
                mavfs_actors::quote::diagnostic(name)
            ))
        })?,
        _ => return Err(CmdError::Usage("too many arguments".into())),
    };
    out.text(&text).await?;
    Ok(Status::Success)
}

/// Every command's usage and summary, one a line, then a note on quoting and redirection.
pub fn listing() -> String {
    let width = COMMANDS.iter().map(|c| c.usage.len()).max().unwrap_or(0);
    let mut text = String::new();
    for c in COMMANDS {
        text += &format!("{:width$}  {}\n", c.usage, c.summary);
    }
    text + "\nQuote names with '...' or \"...\"; redirect output with > or >>.\n"
}

/// `help CMD`: the usage line, then the summary.
pub fn usage(spec: &Spec) -> String {
    format!("usage: {}\n{}\n", spec.usage, spec.summary)
}
