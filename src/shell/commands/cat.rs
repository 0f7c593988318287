//! `cat` and `echo`: bytes to the output.

use futures::StreamExt;

use super::{OperandRun, Opts};
use crate::shell::output::Output;
use crate::shell::{CmdError, Session, Status};

/// `cat path...`: streams each file's chunks to the output as they arrive.
pub async fn cat(session: &Session, args: &[String], out: &mut Output) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    opts.need(1)?;
    let mut run = OperandRun::new("cat");
    for arg in &opts.operands {
        run.record(cat_one(session, arg, out).await)?;
    }
    run.finish()
}

async fn cat_one(session: &Session, arg: &str, out: &mut Output) -> Result<(), CmdError> {
    let path = session.resolve(arg).await?;
    let mut reader = session.engine().read(&path).await?;
    while let Some(chunk) = reader.chunks.next().await {
        out.bytes(chunk?).await?;
    }
    Ok(())
}

/// `echo [-n] text...`: the words joined by blanks, then a newline unless `-n`.
pub async fn echo(args: &[String], out: &mut Output) -> Result<Status, CmdError> {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    out.text(&words.join(" ")).await?;
    if newline {
        out.text("\n").await?;
    }
    Ok(Status::Success)
}
