//! `help [command]`.

use super::COMMANDS;
use crate::shell::output::Output;
use crate::shell::{CmdError, Status};

pub async fn help(args: &[String], out: &mut Output) -> Result<Status, CmdError> {
    match args {
        [] => {
            let width = COMMANDS.iter().map(|c| c.usage.len()).max().unwrap_or(0);
            for c in COMMANDS {
                out.line(&format!("{:width$}  {}", c.usage, c.summary))
                    .await?;
            }
            out.line("").await?;
            out.line("Quote names with '...' or \"...\"; redirect output with > or >>.")
                .await?;
        }
        [name] => {
            let spec = COMMANDS
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| CmdError::Usage(format!("{name}: no such command")))?;
            out.line(&format!("usage: {}", spec.usage)).await?;
            out.line(spec.summary).await?;
        }
        _ => return Err(CmdError::Usage("too many arguments".into())),
    }
    Ok(Status::Success)
}
