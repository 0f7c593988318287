//! `jobs`, `wait`, `fg`, `kill`, `stop`, `bg` and `throttle`: background transfer jobs, as in
//! bash, and what bash cannot do to them (suspend and continue a transfer, limit its rate).

use mavfs_actors::ErrorKind;
use mavfs_actors::quote;
use mavfs_actors::{JobId, JobState};

use super::transfer::{finish, parse_rate};
use super::{Opts, json_flag, json_line};
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
        .ok_or_else(|| CmdError::Usage(format!("{}: no such job", quote::diagnostic(spec))))
}

/// `jobs [--json]`: every job of the engine, running or ended, with its counts (`--json`: the
/// job table as one array of the engine's `JobInfo`).
pub async fn jobs(
    session: &Session,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let (args, json) = json_flag(session, args);
    Opts::parse(&args, "", "")?;
    let jobs = session.engine().jobs().await?;
    if json {
        json_line(out, &jobs).await?;
        return Ok(Status::Success);
    }
    for job in jobs {
        let p = &job.progress;
        // A job's own limit, when it has one, before its command line.
        let limit = job
            .bwlimit
            .map_or_else(String::new, |l| format!("{}/s ", format::size(l)));
        out.line(&format!(
            "[{}]  {:<9} {:>6}/{:<6} files {:>10}/{:<10} {limit}{}",
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

/// `fg [%N]`: waits for a job in the foreground (continuing it if stopped), with its progress
/// bar on a terminal, then prints its summary. Ctrl-C cancels it.
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
    if job.state == JobState::Stopped {
        // As bash's fg: a stopped job continues in the foreground.
        engine
            .resume(id)
            .await
            .map_err(|e| no_such_job(&format!("%{id}"), e))?;
    }
    // The wait Ctrl-Z left behind is this job's foreground handle: take it back rather than
    // open another, since dropping it would cancel the job.
    let waiting = match session.take_parked(id) {
        Some(waiting) => waiting,
        None => {
            let handle = engine
                .foreground(id)
                .await
                .map_err(|e| no_such_job(&format!("%{id}"), e))?;
            Box::pin(handle.wait())
        }
    };
    session.forget_background(id);
    let bar = session
        .options()
        .progress
        .then(|| progress::show(id, engine.subscribe()));
    // In the foreground, Ctrl-C (dropping this future, and with it the foreground handle)
    // cancels the job, as for any transfer; Ctrl-Z stops it again.
    let waited = session.wait_foreground(id, waiting).await;
    if let Some(bar) = bar {
        bar.finish().await;
    }
    finish(job.route.kind.command(), id, &job.route.label, waited)
}

/// Turns the engine's unknown-job error into bash's wording.
fn no_such_job(spec: &str, e: mavfs_actors::Error) -> CmdError {
    if e.kind() == ErrorKind::NotFound {
        CmdError::Usage(format!("{}: no such job", quote::diagnostic(spec)))
    } else {
        e.into()
    }
}

/// `kill %N...`: cancels jobs; each stops within a fraction of a second. `kill -STOP` and
/// `kill -CONT` suspend and continue them instead, as `stop` and `bg` do.
pub async fn kill(session: &mut Session, args: &[String]) -> Result<Status, CmdError> {
    match args.first().map(String::as_str) {
        Some("-STOP") => return stop(session, &args[1..]).await,
        Some("-CONT") => return bg(session, &args[1..]).await,
        _ => {}
    }
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

/// The command line of job `id`, for notices. Errors: `Usage` for an unknown job.
async fn label(session: &Session, id: JobId) -> Result<String, CmdError> {
    session
        .engine()
        .jobs()
        .await?
        .into_iter()
        .find(|j| j.id == id)
        .map(|j| j.route.label)
        .ok_or_else(|| CmdError::Usage(format!("%{id}: no such job")))
}

/// `stop %N...`: suspends jobs and prints `[N]+ Stopped command` for each; a suspended job
/// moves nothing, keeps what it committed and its files in flight, until `bg`, `fg` or `kill`.
pub async fn stop(session: &mut Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    opts.need(1)?;
    for spec in &opts.operands {
        let id = job_id(spec)?;
        session
            .engine()
            .suspend(id)
            .await
            .map_err(|e| no_such_job(spec, e))?;
        eprintln!("[{id}]+ Stopped {}", label(session, id).await?);
    }
    Ok(Status::Success)
}

/// `bg [%N...]`: continues suspended jobs in the background and prints `[N]+ command &` for
/// each; alone, the session's latest background job.
pub async fn bg(session: &mut Session, args: &[String]) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    let ids = if opts.operands.is_empty() {
        vec![
            session
                .last_background()
                .ok_or_else(|| CmdError::Usage("no current job".into()))?,
        ]
    } else {
        opts.operands
            .iter()
            .map(|s| job_id(s))
            .collect::<Result<_, _>>()?
    };
    for id in ids {
        session
            .engine()
            .resume(id)
            .await
            .map_err(|e| no_such_job(&format!("%{id}"), e))?;
        eprintln!("[{id}]+ {} &", label(session, id).await?);
    }
    Ok(Status::Success)
}

/// `throttle %N RATE|off`, `throttle all RATE|off`, `throttle %N -j N`: changes a job's own
/// limit, the global limit shared by all jobs, or a job's files at once, while they run.
pub async fn throttle(session: &mut Session, args: &[String]) -> Result<Status, CmdError> {
    let usage = || CmdError::Usage("usage: throttle %N|all RATE|off, throttle %N -j N".into());
    let engine = session.engine().clone();
    match args {
        [all, r] if all == "all" => engine.throttle_all(parse_rate(r)?).await?,
        [spec, j, n] if j == "-j" => {
            let jobs = n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=mavfs_actors::MAX_JOBS).contains(n))
                .ok_or_else(|| {
                    CmdError::Usage(format!(
                        "-j {}: not a number of files",
                        quote::diagnostic(n)
                    ))
                })?;
            let jobs = super::transfer::capped_jobs(session, "throttle", jobs);
            engine
                .set_jobs(job_id(spec)?, jobs)
                .await
                .map_err(|e| no_such_job(spec, e))?;
        }
        [spec, r] => engine
            .throttle(job_id(spec)?, parse_rate(r)?)
            .await
            .map_err(|e| no_such_job(spec, e))?,
        _ => return Err(usage()),
    }
    Ok(Status::Success)
}
