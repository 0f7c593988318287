//! `mkdir`, `touch` and `rm`: creating and removing entries.

use super::{Opts, for_each_operand};
use crate::shell::{CmdError, Session, Status};

/// `mkdir [-p] path...`.
pub async fn mkdir(session: &Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "p", "")?;
    opts.need(1)?;
    let parents = opts.has('p');
    for_each_operand("mkdir", &opts.operands, |arg| async move {
        let path = session.resolve(&arg)?;
        Ok(session.engine().mkdir(&path, parents).await?)
    })
    .await
}

/// `touch path...`.
pub async fn touch(session: &Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    opts.need(1)?;
    for_each_operand("touch", &opts.operands, |arg| async move {
        let path = session.resolve(&arg)?;
        Ok(session.engine().touch(&path).await?)
    })
    .await
}

/// `rm [-r] [-f] path...`: `-R` is a synonym of `-r`, as in coreutils.
pub async fn rm(session: &Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "rRf", "")?;
    let (recursive, force) = (opts.has('r') || opts.has('R'), opts.has('f'));
    if !force {
        opts.need(1)?;
    }
    for_each_operand("rm", &opts.operands, |arg| async move {
        let path = session.resolve(&arg)?;
        Ok(session.engine().remove(&path, recursive, force).await?)
    })
    .await
}
