//! `pwd`, `cd` and `exit`: the session's place and end.

use super::Opts;
use crate::shell::output::Output;
use crate::shell::{CmdError, Session, Status};

pub async fn pwd(session: &Session, args: &[String], out: &mut Output) -> Result<Status, CmdError> {
    Opts::parse(args, "", "")?;
    out.line(session.cwd().as_str()).await?;
    Ok(Status::Success)
}

/// `cd [path]`: the target must be a directory; alone, goes to the first mount.
pub async fn cd(session: &mut Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    let target = match opts.operands.as_slice() {
        [] => session.engine().home().clone(),
        [path] => session.resolve(path).await?,
        _ => return Err(CmdError::Usage("too many arguments".into())),
    };
    let meta = session.engine().stat(&target).await?;
    if !meta.is_dir() {
        return Err(
            mavfs_actors::Error::new(mavfs_actors::ErrorKind::NotADirectory, "cd")
                .with_path(&target)
                .into(),
        );
    }
    session.cwd = target;
    Ok(Status::Success)
}

/// `exit [code]`.
pub fn exit(args: &[String]) -> Result<Status, CmdError> {
    match args {
        [] => Ok(Status::Exit(0)),
        [code] => code.parse::<i32>().map(Status::Exit).map_err(|_| {
            CmdError::Usage(format!(
                "{}: numeric argument required",
                mavfs_actors::quote::diagnostic(code)
            ))
        }),
        _ => Err(CmdError::Usage("too many arguments".into())),
    }
}
