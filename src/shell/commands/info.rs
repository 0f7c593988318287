//! Read-only views of the tree: `stat`, `du`, `tree`, `stats` and `mounts`; `stat`,
//! `stats` and `mounts` also as JSON (`--json`).

use mavfs_actors::Tier;
use mavfs_actors::VPath;
use mavfs_actors::quote::{self, Shown};
use mavfs_actors::{EntryKind, Meta};
use serde::Serialize;

use super::{OperandRun, Opts, json_flag, json_line};
use crate::shell::format;
use crate::shell::output::Output;
use crate::shell::{CmdError, Session, Status};

/// The tier of the mount holding `path`.
pub(super) fn tier_of(session: &Session, path: &VPath) -> Option<Tier> {
    session
        .engine()
        .mounts()
        .iter()
        .find(|m| path.starts_with(&m.path))
        .map(|m| m.tier)
}

pub(super) fn kind_char(kind: EntryKind) -> char {
    match kind {
        EntryKind::Dir => 'd',
        EntryKind::File => '-',
        EntryKind::Symlink => 'l',
        EntryKind::Special => 's',
    }
}

/// A name as a listing shows it: quoted as `shown` says, directories with a `/` suffix.
fn display_name(shown: &Shown, name: &str, meta: &Meta) -> String {
    let name = shown.name(name);
    if meta.is_dir() {
        format!("{name}/")
    } else {
        name.into_owned()
    }
}

/// One entry of `stat --json`: the path as resolved and the engine's `Meta`.
#[derive(Serialize)]
struct StatJson {
    path: VPath,
    meta: Meta,
}

/// `stat [--json] path...`: kind, size, modification time and mount, the path quoted for the
/// shell when it needs it, as coreutils' `stat` does (`--json`: one array of
/// `{path, meta}`, of the operands that could be read; the others are reported on stderr).
pub async fn stat(
    session: &Session,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let (args, json) = json_flag(session, args);
    let opts = Opts::parse(&args, "", "")?;
    opts.need(1)?;
    let mut run = OperandRun::new("stat");
    if json {
        let mut found = Vec::with_capacity(opts.operands.len());
        for arg in &opts.operands {
            let one = async {
                let path = session.resolve(arg).await?;
                let meta = session.engine().stat(&path).await?;
                Ok::<_, CmdError>(StatJson { path, meta })
            };
            run.record(one.await.map(|entry| found.push(entry)))?;
        }
        json_line(out, &found).await?;
        return run.finish();
    }
    for arg in &opts.operands {
        run.record(stat_one(session, arg, out).await)?;
    }
    run.finish()
}

async fn stat_one(session: &Session, arg: &str, out: &mut Output) -> Result<(), CmdError> {
    let path = session.resolve(arg).await?;
    let meta = session.engine().stat(&path).await?;
    let kind = match meta.kind {
        EntryKind::Dir => "directory",
        EntryKind::File => "regular file",
        EntryKind::Symlink => "symbolic link",
        EntryKind::Special => "special file",
    };
    let mount = session
        .engine()
        .mounts()
        .into_iter()
        .find(|m| path.starts_with(&m.path));
    // As coreutils' `stat` (its `%N`): the name quoted for the shell when it needs it, on a
    // terminal or not.
    out.line(&format!("  File: {}", quote::shell_escape(path.as_str())))
        .await?;
    out.line(&format!("  Type: {kind}")).await?;
    out.line(&format!(
        "  Size: {} ({})",
        meta.size,
        format::size(meta.size)
    ))
    .await?;
    out.line(&format!("Modify: {} UTC", format::timestamp(meta.modified)))
        .await?;
    if let Some(m) = mount {
        out.line(&format!(
            " Mount: {} ({}, {})",
            m.path,
            m.backend.as_str(),
            m.tier
        ))
        .await?;
    }
    Ok(())
}

/// Bytes under `path`, printing each directory's total after its children unless `summary`.
async fn du_walk(
    session: &Session,
    path: &VPath,
    summary: bool,
    human: bool,
    out: &mut Output,
) -> Result<u64, CmdError> {
    let mut total = 0;
    for entry in session.engine().list(path).await? {
        let child = path.join(&entry.name)?;
        total += if entry.meta.is_dir() {
            Box::pin(du_walk(session, &child, summary, human, out)).await?
        } else {
            entry.meta.size
        };
    }
    if !summary {
        out.line(&du_line(total, &out.shown().name(path.as_str()), human))
            .await?;
    }
    Ok(total)
}

fn du_line(bytes: u64, name: &str, human: bool) -> String {
    let size = if human {
        format::size(bytes)
    } else {
        bytes.to_string()
    };
    format!("{size}\t{name}")
}

/// `du [-s] [-h] [path...]`: apparent sizes in bytes (`-h`: human units), as `du -b` does;
/// paths shown as `ls` shows names ([`Shown::listing`]).
pub async fn du(session: &Session, args: &[String], out: &mut Output) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "sh", "")?;
    let (summary, human) = (opts.has('s'), opts.has('h'));
    let operands = if opts.operands.is_empty() {
        vec![session.cwd().as_str().to_string()]
    } else {
        opts.operands.clone()
    };
    let mut run = OperandRun::new("du");
    for arg in &operands {
        run.record(du_one(session, arg, summary, human, out).await)?;
    }
    run.finish()
}

async fn du_one(
    session: &Session,
    arg: &str,
    summary: bool,
    human: bool,
    out: &mut Output,
) -> Result<(), CmdError> {
    let path = session.resolve(arg).await?;
    let meta = session.engine().stat(&path).await?;
    if !meta.is_dir() {
        let name = out.shown().name(path.as_str()).into_owned();
        out.line(&du_line(meta.size, &name, human)).await?;
        return Ok(());
    }
    let total = du_walk(session, &path, summary, human, out).await?;
    if summary {
        let name = out.shown().name(path.as_str()).into_owned();
        out.line(&du_line(total, &name, human)).await?;
    }
    Ok(())
}

/// Counts of what `tree` printed.
#[derive(Default)]
struct TreeCounts {
    dirs: u64,
    files: u64,
}

async fn tree_walk(
    session: &Session,
    path: &VPath,
    prefix: &str,
    counts: &mut TreeCounts,
    out: &mut Output,
) -> Result<(), CmdError> {
    let entries = session.engine().list(path).await?;
    let last = entries.len().saturating_sub(1);
    for (i, entry) in entries.iter().enumerate() {
        let (branch, indent) = if i == last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        out.line(&format!(
            "{prefix}{branch}{}",
            display_name(&out.shown(), &entry.name, &entry.meta)
        ))
        .await?;
        if entry.meta.is_dir() {
            counts.dirs += 1;
            let child = path.join(&entry.name)?;
            let deeper = format!("{prefix}{indent}");
            Box::pin(tree_walk(session, &child, &deeper, counts, out)).await?;
        } else {
            counts.files += 1;
        }
    }
    Ok(())
}

/// `tree [path]`: the tree below a directory, then the counts; names shown as `ls` shows them
/// ([`Shown::listing`]).
pub async fn tree(
    session: &Session,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let opts = Opts::parse(args, "", "")?;
    let path = match opts.operands.as_slice() {
        [] => session.cwd().clone(),
        [p] => session.resolve(p).await?,
        _ => return Err(CmdError::Usage("too many arguments".into())),
    };
    let meta = session.engine().stat(&path).await?;
    if !meta.is_dir() {
        return Err(
            mavfs_actors::Error::new(mavfs_actors::ErrorKind::NotADirectory, "tree")
                .with_path(&path)
                .into(),
        );
    }
    let root = out.shown().name(path.as_str()).into_owned();
    out.line(&root).await?;
    let mut counts = TreeCounts::default();
    tree_walk(session, &path, "", &mut counts, out).await?;
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    out.line(&format!(
        "\n{}, {}",
        plural(counts.dirs, "directory", "directories"),
        plural(counts.files, "file", "files")
    ))
    .await?;
    Ok(Status::Success)
}

/// `stats [--json]`: per mount, backend, tier, files, directories, bytes and capacity (`--json`:
/// one array of the engine's `MountStats`, with its I/O counters).
pub async fn stats(
    session: &Session,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let (args, json) = json_flag(session, args);
    Opts::parse(&args, "", "")?;
    let rows = session.engine().stats().await?;
    if json {
        json_line(out, &rows).await?;
        return Ok(Status::Success);
    }
    out.line(&format!(
        "{:<10} {:<8} {:<4} {:>10} {:>8} {:>14} {:>12}",
        "MOUNT", "BACKEND", "TIER", "FILES", "DIRS", "BYTES", "CAPACITY"
    ))
    .await?;
    for row in rows {
        let capacity = row
            .usage
            .capacity
            .map_or_else(|| "-".to_string(), format::size);
        out.line(&format!(
            "{:<10} {:<8} {:<4} {:>10} {:>8} {:>14} {:>12}",
            row.path.as_str(),
            row.backend,
            row.tier.to_string(),
            row.usage.files,
            row.usage.dirs,
            row.usage.bytes,
            capacity
        ))
        .await?;
    }
    Ok(Status::Success)
}

/// `mounts [--json]`: each mount's path, backend and tier (`--json`: one array of the engine's
/// `MountInfo`, capacity included; the note on the attached daemon is text only).
pub async fn mounts(
    session: &Session,
    args: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let (args, json) = json_flag(session, args);
    Opts::parse(&args, "", "")?;
    if json {
        json_line(out, &session.engine().mounts()).await?;
        return Ok(Status::Success);
    }
    for m in session.engine().mounts() {
        out.line(&format!(
            "{:<10} {:<8} {}",
            m.path.as_str(),
            m.backend.as_str(),
            m.tier
        ))
        .await?;
    }
    if let Some((pid, socket)) = session.engine().attached() {
        out.line(&format!(
            "(attached to mavfs serve, pid {pid}, socket {})",
            socket.display()
        ))
        .await?;
    }
    Ok(Status::Success)
}
