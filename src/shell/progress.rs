//! The live progress bar of a foreground transfer on a terminal: bytes, files, rate and ETA,
//! drawn on stderr from the job's events and cleared when it ends.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mavfs_actors::{EventKind, JobId};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::format;
use crate::engine::Events;

const TEMPLATE: &str = "[{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}";

/// A bar being drawn by a task of its own.
pub struct Bar {
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl Bar {
    /// Clears the bar (its job has ended, or the caller gave up on it).
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts drawing the progress of job `id` from `events`.
pub fn show(id: JobId, mut events: Events) -> Bar {
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        loop {
            let event = tokio::select! {
                () = stopped.cancelled() => break,
                event = events.recv() => event,
            };
            let event = match event {
                Ok(e) if e.job == id => e,
                // Another job's event, or some skipped: the next event carries a full snapshot.
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            if event.kind.is_terminal() {
                break;
            }
            let p = &event.progress;
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_done);
            bar.set_message(format!(
                "{}/{} files {}/s",
                p.files_done,
                p.files_total,
                format::size(p.rate as u64)
            ));
            if matches!(event.kind, EventKind::Started) {
                bar.reset_eta();
            }
        }
        bar.finish_and_clear();
    });
    Bar { task, stop }
}
