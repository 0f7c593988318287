//! `mavfs events [--json]`: every job event of the engine, as it happens, one line each, until
//! SIGINT, SIGTERM or a closed stdout (all exit 0).
//!
//! Attached to a daemon this is every client's jobs; embedded, the engine is this process's own
//! and runs no jobs, which it says once on stderr. Each event is printed as it comes: nothing is
//! skipped by this command and nothing coalesced. If it falls behind the engine anyway, the
//! engine's channel drops the oldest events and a line says how many ([`Lagged`]).
//!
//! The readable lines are `[N] <type> <command line>` followed by what the event carries:
//! `[3] progress push /vram/a /vdisk/a 12/40 files 1.20 GiB/3.90 GiB`; names with control
//! characters are quoted as in error messages (`mavfs_actors::quote`). With `--json` each line
//! is the engine's `JobEvent` as serde writes it, whose field names README documents as stable.

use std::io::Write;
use std::time::Duration;

use mavfs_actors::quote;
use mavfs_actors::{EventKind, JobEvent};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::engine::Engine;
use crate::shell::commands::transfer::summary_line;
use crate::shell::format;

/// How often a quiet stream checks whether its reader went away, since only a write would
/// otherwise find out.
const CLOSED_CHECK: Duration = Duration::from_millis(200);

/// The line for events the engine dropped because this reader fell behind:
/// `{"type":"lagged","skipped":N}`, in the shape of an event's `type` tag.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "lagged")]
pub struct Lagged {
    /// How many events were dropped.
    pub skipped: u64,
}

impl Lagged {
    pub fn new(skipped: u64) -> Self {
        Lagged { skipped }
    }
}

/// Streams the events of `engine` to stdout until a signal, a closed stdout, or the engine's end
/// (exit 1, with the reason on stderr). Returns the exit code.
pub async fn run(engine: &Engine, json: bool) -> i32 {
    // Subscribed first, so that no event between the note and the loop is lost; the signal
    // handlers are in place before the note, so that a reader who saw it may stop us at once.
    let mut events = engine.subscribe();
    let signalled = crate::signals::interrupted();
    if engine.attached().is_none() {
        eprintln!(
            "mavfs: events: embedded engine: only this process's jobs show (start `mavfs serve` \
             to see every client's)"
        );
    }
    tokio::pin!(signalled);
    let mut check = tokio::time::interval(CLOSED_CHECK);
    loop {
        let line = tokio::select! {
            () = &mut signalled => return 0,
            _ = check.tick() => {
                if stdout_closed() {
                    return 0;
                }
                continue;
            }
            event = events.recv() => match event {
                Ok(event) if json => to_json(&event),
                Ok(event) => readable(&event),
                Err(RecvError::Lagged(n)) if json => to_json(&Lagged::new(n)),
                Err(RecvError::Lagged(n)) => format!("lagged: {n} events skipped"),
                Err(RecvError::Closed) => {
                    eprintln!("mavfs: events: the engine's event stream ended");
                    return 1;
                }
            },
        };
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return 0,
            Err(e) => {
                eprintln!("mavfs: events: write error: {e}");
                return 1;
            }
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // The engine's types serialise infallibly (no maps with non-string keys, no custom errors).
    serde_json::to_string(value).expect("seam types serialise")
}

/// `[3] progress push /vram/a /vdisk/a 12/40 files 1.20 GiB/3.90 GiB`: the job, the event's
/// `type` as in JSON, the command line, then what this kind of event carries.
pub fn readable(event: &JobEvent) -> String {
    let p = &event.progress;
    let counts = || {
        format!(
            "{}/{} files {}/{}",
            p.files_done,
            p.files_total,
            format::size(p.bytes_done),
            format::size(p.bytes_total)
        )
    };
    let (kind, detail) = match &event.kind {
        EventKind::Started => ("started", counts()),
        EventKind::Progress => ("progress", counts()),
        EventKind::FileDone { path, bytes } => {
            // Quoted as names in messages are, on a terminal or not: this is a log.
            let path = quote::shell_escape(path.as_str());
            ("file_done", format!("{path} {}", format::size(*bytes)))
        }
        EventKind::Stopped => ("stopped", counts()),
        EventKind::Continued => ("continued", counts()),
        EventKind::Throttled { bwlimit, jobs } => {
            let limit =
                bwlimit.map_or_else(|| "off".to_string(), |l| format!("{}/s", format::size(l)));
            ("throttled", format!("bwlimit {limit} -j {jobs}"))
        }
        EventKind::Finished(summary) => (
            "finished",
            summary_line(event.route.kind.command(), summary),
        ),
        EventKind::Failed(error) => ("failed", error.to_string()),
        EventKind::Cancelled => ("cancelled", counts()),
    };
    // A label is quoted by the shell that made it; `prose` is the net for any other client.
    format!(
        "[{}] {kind} {} {detail}",
        event.job,
        quote::prose(&event.route.label)
    )
}

/// Whether stdout is a pipe or socket whose reader has gone (poll reports an error or hang-up
/// on the writing end): a quiet `mavfs events | head -1` ends when `head` does.
fn stdout_closed() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::OUT)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).is_ok()
        && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use mavfs_actors::{JobId, JobRoute, Progress, TransferKind, TransferSummary, VPath};

    use super::*;

    fn event(kind: EventKind) -> JobEvent {
        JobEvent {
            job: JobId(3),
            route: Arc::new(JobRoute {
                kind: TransferKind::Push,
                sources: vec![VPath::parse("/vram/a").unwrap()],
                dest: VPath::parse("/vdisk/a").unwrap(),
                label: "push /vram/a /vdisk/a".into(),
            }),
            progress: Progress {
                files_done: 12,
                files_total: 40,
                bytes_done: 1288490189,
                bytes_total: 4187593113,
                ..Progress::default()
            },
            kind,
        }
    }

    #[test]
    fn readable_lines_name_the_job_the_type_and_the_counts() {
        assert_eq!(
            readable(&event(EventKind::Progress)),
            "[3] progress push /vram/a /vdisk/a 12/40 files 1.20 GiB/3.90 GiB"
        );
        assert_eq!(
            readable(&event(EventKind::Throttled {
                bwlimit: Some(50 << 20),
                jobs: 4
            })),
            "[3] throttled push /vram/a /vdisk/a bwlimit 50.00 MiB/s -j 4"
        );
        let summary = TransferSummary {
            files: 2,
            dirs: 1,
            bytes: 2048,
            elapsed: Duration::from_millis(500),
        };
        assert_eq!(
            readable(&event(EventKind::Finished(summary))),
            "[3] finished push /vram/a /vdisk/a push: 2 files, 2.00 KiB in 0.500 s (4.00 KiB/s)"
        );
    }

    #[test]
    fn lagged_is_tagged_like_an_event() {
        assert_eq!(to_json(&Lagged::new(7)), r#"{"type":"lagged","skipped":7}"#);
    }
}
