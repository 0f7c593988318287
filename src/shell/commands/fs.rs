//! `mkdir`, `touch` and `rm`: creating and removing entries.

use super::{OperandRun, Opts};
use crate::shell::{CmdError, Session, Status};

/// `mkdir [-p] path...`.
pub async fn mkdir(session: &Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "p", "")?;
    opts.need(1)?;
    let parents = opts.has('p');
    let mut run = OperandRun::new("mkdir");
    for arg in &opts.operands {
        let made = async {
            let path = session.resolve(arg).await?;
            Ok(session.engine().mkdir(&path, parents).await?)
        };
        run.record(made.await)?;
    }
    run.finish()
}

/// `touch path...`.
pub async fn touch(session: &Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    opts.need(1)?;
    let mut run = OperandRun::new("touch");
    for arg in &opts.operands {
        let touched = async {
            let path = session.resolve(arg).await?;
            Ok(session.engine().touch(&path).await?)
        };
        run.record(touched.await)?;
    }
    run.finish()
}

/// `rm [-r] [-f] path...`: `-R` is a synonym of `-r`, as in coreutils.
pub async fn rm(session: &Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "rRf", "")?;
    let (recursive, force) = (opts.has('r') || opts.has('R'), opts.has('f'));
    if !force {
        opts.need(1)?;
    }
    let mut run = OperandRun::new("rm");
    for arg in &opts.operands {
        let removed = async {
            let path = session.resolve(arg).await?;
            Ok(session.engine().remove(&path, recursive, force).await?)
        };
        run.record(removed.await)?;
    }
    run.finish()
}
