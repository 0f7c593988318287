//! `cp`, `mv`, `push` and `pull`: transfers between and within mounts.

use mavfs_actors::transfer::{TransferKind, TransferRequest, TransferSummary};

use super::Opts;
use crate::shell::{CmdError, Session, Status, format};

/// Runs the transfer command `name` with `args`. `-j N` sets how many files move at once.
pub async fn run(session: &Session, name: &str, args: &[String]) -> Result<Status, CmdError> {
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
            .ok_or_else(|| CmdError::Usage(format!("-j {v}: expected a number from 1 to 64")))?,
    };
    opts.need(2)?;
    let (sources, dest) = opts.operands.split_at(opts.operands.len() - 1);
    if matches!(kind, TransferKind::Push | TransferKind::Pull) && sources.len() != 1 {
        return Err(CmdError::Usage(format!("usage: {name} [-j N] src dst")));
    }
    let request = TransferRequest {
        kind,
        sources: sources
            .iter()
            .map(|s| session.resolve(s))
            .collect::<Result<_, _>>()?,
        dest: session.resolve(&dest[0])?,
        recursive: kind != TransferKind::Copy || opts.has('r') || opts.has('R'),
        jobs,
    };
    let summary = session.router().transfer(request).await?;
    // The summary goes to stderr, as rclone's stats do, so stdout stays the commands' data.
    if summary.files > 0 || summary.dirs > 0 {
        eprintln!("{}", summary_line(name, &summary));
    }
    Ok(Status::Success)
}

/// `push: 3 files, 1.00 GiB in 0.41 s (2.44 GiB/s)`.
pub fn summary_line(name: &str, summary: &TransferSummary) -> String {
    let files = if summary.files == 1 { "file" } else { "files" };
    format!(
        "{name}: {} {files}, {} in {:.2} s ({})",
        summary.files,
        format::size(summary.bytes),
        summary.elapsed.as_secs_f64(),
        format::rate(summary.bytes, summary.elapsed)
    )
}
