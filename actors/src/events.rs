//! Transfer events, the progress meter that feeds them, and the bus that carries them.
//!
//! Progress is metered once, in the stream: the transfer adds bytes to its [`Meter`] as chunks
//! reach the destination and files as they commit. A ticker turns the meter into at most one
//! [`EventKind::Progress`] per [`PROGRESS_INTERVAL`] per job. Every event carries the job's route
//! and a full [`Progress`] snapshot, so a subscriber that missed some (a slow dashboard) is up to
//! date with the next one.
//!
//! The [`EventBus`] is a `tokio::sync::broadcast` channel: publishing never waits, and a
//! subscriber that falls behind by more than [`BUS_CAPACITY`] events skips the oldest ones
//! (`RecvError::Lagged`) instead of slowing the transfer.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::error::Error;
use crate::path::VPath;
use crate::transfer::{TransferKind, TransferSummary};

/// How often a running job reports progress.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Events a subscriber may fall behind by before it skips.
pub const BUS_CAPACITY: usize = 1024;

/// A job's number, unique within one engine, counting from 1 (the shell's `%N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a job moves: its command, sources and destination, and the line that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRoute {
    pub kind: TransferKind,
    pub sources: Vec<VPath>,
    pub dest: VPath,
    /// The command as the user typed it (`push /vram/a /vdisk/a`), for listings and notices.
    pub label: String,
}

/// A job's progress at one moment. Done counts never decrease within a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The file most recently started, if any is in flight.
    pub current: Option<VPath>,
    /// Bytes per second, smoothed over the last second or so.
    pub rate: f64,
    pub elapsed: Duration,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// The sources are scanned; the totals are known.
    Started,
    /// Periodic progress.
    Progress,
    /// One file was committed (and, for a move, its source removed).
    FileDone { path: VPath, bytes: u64 },
    /// Terminal: the job completed.
    Finished(TransferSummary),
    /// Terminal: the job stopped on an error; what it committed stays.
    Failed(Error),
    /// Terminal: the job was cancelled; what it committed stays.
    Cancelled,
}

impl EventKind {
    /// Whether this event ends its job (exactly one per job does).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::Finished(_) | EventKind::Failed(_) | EventKind::Cancelled
        )
    }
}

/// One event of one job.
#[derive(Debug, Clone)]
pub struct JobEvent {
    pub job: JobId,
    pub route: Arc<JobRoute>,
    pub progress: Progress,
    pub kind: EventKind,
}

/// The engine's event channel. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<JobEvent>,
}

impl EventBus {
    pub fn new() -> Self {
        EventBus {
            sender: broadcast::channel(BUS_CAPACITY).0,
        }
    }

    /// Sends `event` to every subscriber; never waits (with none, it is dropped).
    pub fn publish(&self, event: JobEvent) {
        let _ = self.sender.send(event);
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

/// A job's counters, written by the transfer as data moves and read by the ticker, the job table
/// and `jobs`. Atomics, so that metering costs the stream one relaxed add per chunk.
#[derive(Debug)]
pub struct Meter {
    started: Instant,
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    current: Mutex<Option<VPath>>,
    rate: Mutex<RateEstimate>,
}

/// A moving average of the byte rate, updated once per tick.
#[derive(Debug, Default)]
struct RateEstimate {
    last: Option<(Instant, u64)>,
    rate: f64,
}

impl Meter {
    pub fn new() -> Self {
        Meter {
            started: Instant::now(),
            files_total: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            current: Mutex::new(None),
            rate: Mutex::new(RateEstimate::default()),
        }
    }

    /// Sets the totals found by the pre-scan.
    pub fn set_totals(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn file_started(&self, path: &VPath) {
        if let Ok(mut current) = self.current.lock() {
            *current = Some(path.clone());
        }
    }

    pub fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Folds the bytes moved since the last call into the smoothed rate. Called once per tick.
    pub fn tick(&self) {
        let now = Instant::now();
        let bytes = self.bytes_done.load(Ordering::Relaxed);
        let Ok(mut est) = self.rate.lock() else {
            return;
        };
        if let Some((then, before)) = est.last {
            let dt = now.duration_since(then).as_secs_f64();
            if dt > 0.0 {
                let instant = bytes.saturating_sub(before) as f64 / dt;
                // About one second of memory at ten ticks a second.
                est.rate = if est.rate == 0.0 {
                    instant
                } else {
                    0.8 * est.rate + 0.2 * instant
                };
            }
        }
        est.last = Some((now, bytes));
    }

    /// The counters now.
    pub fn snapshot(&self) -> Progress {
        Progress {
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            current: self.current.lock().ok().and_then(|c| c.clone()),
            rate: self.rate.lock().map_or(0.0, |r| r.rate),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}
