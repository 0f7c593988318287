//! Progress metering, once, in the stream: a transfer adds bytes to its [`Meter`] as chunks reach
//! the destination and files as they commit, and anyone (the job's ticker, the job table, `jobs`)
//! reads a [`Progress`] snapshot from it.
//!
//! Its clock is tokio's, so that tests run it under a paused clock; time a job spends suspended
//! ([`Meter::suspend`]) is not counted in its elapsed time, so a rate over the job's elapsed
//! time is the rate while it moved.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::path::VPath;

/// A job's progress at one moment. Done counts never decrease within a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Files committed so far.
    pub files_done: u64,
    /// Files the pre-scan found.
    pub files_total: u64,
    /// Bytes moved so far.
    pub bytes_done: u64,
    /// Bytes the pre-scan found.
    pub bytes_total: u64,
    /// The file most recently started, if any is in flight.
    pub current: Option<VPath>,
    /// Bytes per second, smoothed over the last second or so.
    pub rate: f64,
    /// Time since the job started.
    pub elapsed: Duration,
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
    suspended: Mutex<Suspended>,
}

/// Time spent suspended: finished spells, and the start of the current one.
#[derive(Debug, Default)]
struct Suspended {
    total: Duration,
    since: Option<Instant>,
}

/// A moving average of the byte rate, updated once per tick.
#[derive(Debug, Default)]
struct RateEstimate {
    last: Option<(Instant, u64)>,
    rate: f64,
}

impl Meter {
    /// A meter at zero, its clock started now.
    pub fn new() -> Self {
        Meter {
            started: Instant::now(),
            files_total: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            current: Mutex::new(None),
            rate: Mutex::new(RateEstimate::default()),
            suspended: Mutex::new(Suspended::default()),
        }
    }

    /// Stops (`true`) or restarts (`false`) the elapsed-time clock while the job is suspended.
    /// Calling it twice the same way changes nothing.
    pub fn suspend(&self, suspended: bool) {
        let now = Instant::now();
        if let Ok(mut s) = self.suspended.lock() {
            match (suspended, s.since) {
                (true, None) => s.since = Some(now),
                (false, Some(since)) => {
                    s.total += now.duration_since(since);
                    s.since = None;
                }
                _ => {}
            }
        }
    }

    /// Time since the meter started, less the time spent suspended.
    fn moving_time(&self) -> Duration {
        let now = Instant::now();
        let paused = self.suspended.lock().map_or(Duration::ZERO, |s| {
            s.total
                + s.since
                    .map_or(Duration::ZERO, |since| now.duration_since(since))
        });
        now.duration_since(self.started).saturating_sub(paused)
    }

    /// Sets the totals found by the pre-scan.
    pub fn set_totals(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
    }

    /// Counts `n` bytes as moved.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    /// Records `path` as the file in flight.
    pub fn file_started(&self, path: &VPath) {
        if let Ok(mut current) = self.current.lock() {
            *current = Some(path.clone());
        }
    }

    /// Counts one file as committed.
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
            elapsed: self.moving_time(),
        }
    }
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}
