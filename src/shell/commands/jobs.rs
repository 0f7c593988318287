//! `jobs`, `wait`, `fg` and `kill`: background transfer jobs, as in bash.

use mavfs_actors::ErrorKind;
use mavfs_actors::JobId;

use super::Opts;
use super::transfer::print_summary;
use crate::shell::output::Output;
use crate::shell::{CmdError, Session, Status, format, progress};

/// Parses `%N` (or a bare `N`) into a job id.
fn job_id(spec: &str) -> Result<JobId, CmdError> {
    spec.strip_prefix('%')
        .unwrap_or(spec)
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(JobId)
        .ok_or_else(|| CmdError::Usage(format!("{spec}: no such job")))
}

/// `jobs`: every job of the engine, running or ended, with its counts.
pub async fn jobs(
    session: &Session,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    Opts::parse(args, "", "")?;
    for job in session.engine().jobs().await? {
        let p = &job.progress;
        out.line(&format!(
            "[{}]  {:<9} {:>6}/{:<6} files {:>10}/{:<10} {}",
            job.id,
            job.state.to_string(),
            p.files_done,
            p.files_total,
            format::size(p.bytes_done),
            format::size(p.bytes_total),
            job.route.label
        ))
        .await?;
    }
    Ok(Status::Success)
}

/// `wait [%N...]`: waits for the given jobs, failing if one of them did not complete; alone, waits
/// for every background job of the session and succeeds, as bash's `wait` does (their notices
/// tell how each ended).
pub async fn wait(session: &mut Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    if opts.operands.is_empty() {
        for id in session.background.clone() {
            // How it ended is reported by its notice.
            let _ = session.engine().wait(id).await;
        }
        return Ok(Status::Success);
    }
    let ids: Vec<JobId> = opts
        .operands
        .iter()
        .map(|s| job_id(s))
        .collect::<Result<_, _>>()?;
    let mut status = Status::Success;
    for id in ids {
        let outcome = session.engine().wait(id).await;
        if outcome
            .map_err(|e| no_such_job(&format!("%{id}"), e))?
            .is_err()
        {
            status = Status::Failed;
        }
    }
    Ok(status)
}

/// `fg [%N]`: waits for a job in the foreground, with its progress bar on a terminal, then prints
/// its summary. Ctrl-C cancels it.
pub async fn fg(session: &mut Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    let id = match opts.operands.as_slice() {
        [] => session
            .last_background()
            .ok_or_else(|| CmdError::Usage("no current job".into()))?,
        [spec] => job_id(spec)?,
        _ => return Err(CmdError::Usage("too many arguments".into())),
    };
    let engine = session.engine().clone();
    let job = engine
        .jobs()
        .await?
        .into_iter()
        .find(|j| j.id == id)
        .ok_or_else(|| CmdError::Usage(format!("%{id}: no such job")))?;
    eprintln!("{}", job.route.label);
    session.forget_background(id);
    let bar = session
        .options()
        .progress
        .then(|| progress::show(id, engine.subscribe()));
    // In the foreground, Ctrl-C (dropping this future, and with it the foreground handle)
    // cancels the job, as for any transfer.
    let result = engine
        .foreground(id)
        .await
        .map_err(|e| no_such_job(&format!("%{id}"), e))?
        .wait()
        .await;
    if let Some(bar) = bar {
        bar.finish().await;
    }
    let name = job.route.kind.command();
    print_summary(name, &result?);
    Ok(Status::Success)
}

/// Turns the engine's unknown-job error into bash's wording.
fn no_such_job(spec: &str, e: mavfs_actors::Error) -> CmdError {
    if e.kind() == ErrorKind::NotFound {
        CmdError::Usage(format!("{spec}: no such job"))
    } else {
        e.into()
    }
}

/// `kill %N...`: cancels jobs; each stops within a fraction of a second.
pub async fn kill(session: &Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    opts.need(1)?;
    for spec in &opts.operands {
        session
            .engine()
            .cancel(job_id(spec)?)
            .await
            .map_err(|e| no_such_job(spec, e))?;
    }
    Ok(Status::Success)
}
