//! `cp`, `mv`, `push` and `pull`: transfers between and within mounts, in the foreground (with a
//! progress bar on a terminal, then one summary line; with `--json`, the job's events as JSON
//! lines instead) or, followed by `&`, as background jobs.

use mavfs_actors::quote;
use mavfs_actors::{JobId, JobOptions, TransferKind, TransferRequest, TransferSummary};
use tokio::sync::broadcast::error::RecvError;

use super::{Opts, json_flag, json_line};
use crate::engine::Events;
use crate::shell::foreground::Waited;
use crate::shell::output::Output;
use crate::shell::{CmdError, Session, Status, format, progress};

/// Parses a rate: a size as the config writes them, optionally followed by `/s` (`50MiB/s`),
/// or `off`. Errors: `Usage` for anything else, and for 0.
pub fn parse_rate(spec: &str) -> Result<Option<u64>, CmdError> {
    if spec == "off" {
        return Ok(None);
    }
    crate::config::parse_size(spec.strip_suffix("/s").unwrap_or(spec))
        .filter(|r| *r > 0)
        .map(Some)
        .ok_or_else(|| {
            CmdError::Usage(format!(
                "{}: not a rate (50MiB/s, or off)",
                quote::diagnostic(spec)
            ))
        })
}

/// Takes `--bwlimit RATE` (or `--bwlimit=RATE`) out of `args`: the job's own limit.
fn bwlimit(args: &[String]) -> Result<(Vec<String>, JobOptions), CmdError> {
    let mut rest = Vec::with_capacity(args.len());
    let mut options = JobOptions::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            rest.push(arg.clone());
            rest.extend(iter.cloned());
            break;
        }
        let value = if arg == "--bwlimit" {
            iter.next()
                .ok_or_else(|| CmdError::Usage("--bwlimit: missing rate".into()))?
        } else if let Some(v) = arg.strip_prefix("--bwlimit=") {
            v
        } else {
            rest.push(arg.clone());
            continue;
        };
        options.bwlimit = parse_rate(value)?;
    }
    Ok((rest, options))
}

/// Open files one file of a transfer may hold at once: its source, its staged destination, and
/// a directory handle on each side.
const FDS_PER_FILE: u64 = 4;

/// Open files kept for everything else: stdio, the runtime, store connections, root handles.
const FDS_RESERVED: u64 = 64;

/// The most files a transfer may move at once under the open-file limit (`ulimit -n`), with
/// that limit, when it is below `jobs`; `None` when `jobs` fits (or there is no limit).
pub fn open_file_cap(jobs: usize) -> Option<(usize, u64)> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    let cap = usize::try_from((limit.saturating_sub(FDS_RESERVED) / FDS_PER_FILE).max(1))
        .unwrap_or(usize::MAX);
    (cap < jobs).then_some((cap, limit))
}

/// `jobs`, capped by this process's open-file limit when the engine runs here (a daemon's jobs
/// run under the daemon's limit), saying so on stderr: files that could not be opened would
/// fail the job with `Too many open files` instead.
pub fn capped_jobs(session: &Session, name: &str, jobs: usize) -> usize {
    if session.engine().attached().is_some() {
        return jobs;
    }
    match open_file_cap(jobs) {
        Some((cap, limit)) => {
            eprintln!(
                "mavfs: {name}: -j {jobs} capped to {cap}: the open-file limit (ulimit -n) is {limit}"
            );
            cap
        }
        None => jobs,
    }
}

/// Parses the arguments of transfer command `name`. `-j N` sets how many files move at once,
/// `--bwlimit RATE` the job's own limit; `--json` is taken out (a background job prints nothing
/// anyway: `mavfs events --json` shows its events).
pub async fn request(
    session: &Session,
    name: &str,
    args: &[String],
) -> Result<(TransferRequest, JobOptions), CmdError> {
    let (args, _) = json_flag(session, args);
    let (args, options) = bwlimit(&args)?;
    let args = args.as_slice();
    let (kind, flags) = match name {
        "cp" => (TransferKind::Copy, "rR"),
        "mv" => (TransferKind::Move, ""),
        "push" => (TransferKind::Push, "r"),
        _ => (TransferKind::Pull, "r"),
    };
    let opts = Opts::parse(args, flags, "j")?;
    let jobs = match opts.value('j') {
        None => session.options().jobs,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| {
                CmdError::Usage(format!(
                    "-j {}: expected a number from 1 to 64",
                    quote::diagnostic(v)
                ))
            })?,
    };
    let jobs = capped_jobs(session, name, jobs);
    opts.need(2)?;
    let (sources, dest) = opts.operands.split_at(opts.operands.len() - 1);
    if matches!(kind, TransferKind::Push | TransferKind::Pull) && sources.len() != 1 {
        return Err(CmdError::Usage(format!(
            "usage: {name} [-j N] [--bwlimit RATE] src dst"
        )));
    }
    let mut resolved = Vec::with_capacity(sources.len());
    for source in sources {
        resolved.push(session.resolve(source).await?);
    }
    let request = TransferRequest {
        kind,
        sources: resolved,
        dest: session.resolve(&dest[0]).await?,
        dest_is_dir: dest[0].ends_with('/'),
        recursive: kind != TransferKind::Copy || opts.has('r') || opts.has('R'),
        jobs,
    };
    Ok((request, options))
}

/// The command as typed, for listings: words joined by blanks, quoted when they hold any; a
/// word with control characters is shown as `ls` shows such names on a terminal
/// (`'a'$'\n''b'`, [`quote::shell_escape`]), since a label reaches terminals and logs alike.
pub fn label(name: &str, args: &[String]) -> String {
    std::iter::once(name)
        .chain(args.iter().map(String::as_str))
        .map(|w| {
            if w.contains(char::is_control) {
                quote::shell_escape(w).into_owned()
            } else if w.is_empty()
                || w.contains(|c: char| c.is_whitespace() || "'\"\\&;>#".contains(c))
            {
                format!("'{}'", w.replace('\'', r"'\''"))
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs transfer command `name` with `args` in the foreground. Ctrl-C (dropping this future)
/// cancels it; in the interactive shell, Ctrl-Z stops it and returns the prompt. With `--json`
/// its events go to `out` as JSON lines instead of the bar and the summary.
pub async fn run(
    session: &mut Session,
    name: &str,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let (request, options) = request(session, name, args).await?;
    let engine = session.engine().clone();
    let label = label(name, args);
    if json_flag(session, args).1 {
        // Subscribed before the job starts, so that its `started` event is among those printed.
        let events = engine.subscribe();
        let job = engine.run(request, label, options).await?;
        print_events(job.id(), events, out).await?;
        // Its failure was printed as a `failed` event; on stderr it is reported as always.
        job.wait().await?;
        return Ok(Status::Success);
    }
    // Subscribe before the job starts, so the bar sees its first event.
    let events = session.options().progress.then(|| engine.subscribe());
    let job = engine.run(request, label.clone(), options).await?;
    let id = job.id();
    let bar = events.map(|events| progress::show(id, events));
    let waited = session.wait_foreground(id, Box::pin(job.wait())).await;
    if let Some(bar) = bar {
        bar.finish().await;
    }
    finish(name, id, &label, waited)
}

/// Reports how a foreground wait ended: the summary line, or `[N]+ Stopped command` after
/// Ctrl-Z, which fails the line as a stopped job does in bash.
pub fn finish(name: &str, id: JobId, label: &str, waited: Waited) -> Result<Status, CmdError> {
    match waited {
        Waited::Ended(result) => {
            print_summary(name, &result?);
            Ok(Status::Success)
        }
        Waited::Stopped => {
            eprintln!("[{id}]+ Stopped {label}");
            Ok(Status::Failed)
        }
    }
}

/// Prints the events of job `id` from `events`, one JSON line each, flushed one by one so that a
/// reader follows the job live, up to and including its terminal event. Events skipped by a slow
/// reader show as `{"type":"lagged","skipped":N}` (the next event carries full counts again).
async fn print_events(id: JobId, mut events: Events, out: &mut Output) -> Result<(), CmdError> {
    loop {
        match events.recv().await {
            Ok(event) if event.job == id => {
                json_line(out, &event).await?;
                out.flush().await?;
                if event.kind.is_terminal() {
                    return Ok(());
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(skipped)) => {
                json_line(out, &crate::events::Lagged::new(skipped)).await?;
            }
            // The engine is gone: waiting for the job reports why.
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}

/// Prints the summary line of a finished transfer on stderr, as rclone prints its stats, so that
/// stdout stays the commands' data. A rename-only `mv` moves no data and prints nothing, as
/// coreutils' `mv` does.
pub fn print_summary(name: &str, summary: &TransferSummary) {
    if summary.bytes > 0 || summary.dirs > 0 || name != "mv" {
        eprintln!("{}", summary_line(name, summary));
    }
}

/// `push: 3 files, 1.00 GiB in 0.412 s (2.43 GiB/s)`: milliseconds, which short transfers need.
pub fn summary_line(name: &str, summary: &TransferSummary) -> String {
    let files = if summary.files == 1 { "file" } else { "files" };
    format!(
        "{name}: {} {files}, {} in {:.3} s ({})",
        summary.files,
        format::size(summary.bytes),
        summary.elapsed.as_secs_f64(),
        format::rate(summary.bytes, summary.elapsed)
    )
}
