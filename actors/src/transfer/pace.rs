//! Pacing a running transfer: whether it may move at all (suspend and continue), how fast (token
//! buckets, one per job and one shared by every job of the engine) and how many files it moves
//! at once (`-j N`). All three change live, while the transfer runs.
//!
//! The transfer asks its [`Pace`] before every step that touches a store: [`Pace::ready`] before
//! a file, a batch or a store operation, [`Pace::admit`] before it writes a chunk or a batch's
//! bytes, and [`Pace::slot`] for each file or batch it moves side by side. So a suspended
//! transfer issues no store operation after the one in flight, holds its open writers (their
//! staged data) and continues where it stopped; a throttled one writes no faster than its
//! limits whatever the store pair, small files included.
//!
//! A [`Bucket`] lends: a write takes its bytes at once, possibly into debt, and waits until the
//! debt is paid back at the rate, in the order the writes came. So a chunk of any size passes,
//! the long-run rate is the limit (within one chunk), and the wait is re-checked every
//! [`RECHECK`] so a changed limit takes effect within that. Unused tokens pile up to [`BURST`]
//! worth of the rate only, so an idle or suspended job cannot save up for a burst. Times are tokio's, so tests run under a paused clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Longest a throttled write sleeps before looking at its limit again: a changed limit takes
/// effect within this.
pub const RECHECK: Duration = Duration::from_millis(50);

/// How much unused rate a bucket keeps: a tenth of a second's worth.
pub const BURST: Duration = Duration::from_millis(100);

/// A token bucket whose rate (bytes per second, or none) can change at any time.
///
/// Kept as two running totals: bytes taken, and bytes the rate has paid for. A write takes its
/// bytes (its place in line is the total after it) and waits until the paid total reaches its
/// place. So writers are served in the order they came, none starves another (jobs sharing the
/// global bucket each get their turn), and a new rate applies from the moment it is set to every
/// byte not yet paid for.
#[derive(Debug)]
pub struct Bucket {
    /// The rate; 0 means unlimited. An atomic, so that an unlimited write pays one load.
    rate: AtomicU64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    taken: f64,
    /// At most [`BURST`]'s worth ahead of `taken`: unused rate is not saved up beyond that.
    paid: f64,
    refilled: Instant,
}

/// The shortest wait: a wait of a fraction of this would not move tokio's clock, which counts
/// in milliseconds.
const MIN_WAIT: Duration = Duration::from_millis(1);

impl Bucket {
    /// A bucket with `rate` bytes per second (`None` or 0: unlimited).
    pub fn new(rate: Option<u64>) -> Self {
        Bucket {
            rate: AtomicU64::new(rate.unwrap_or(0)),
            state: Mutex::new(BucketState {
                taken: 0.0,
                paid: 0.0,
                refilled: Instant::now(),
            }),
        }
    }

    /// The rate in bytes per second, `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        match self.rate.load(Ordering::Relaxed) {
            0 => None,
            r => Some(r),
        }
    }

    /// Sets the rate (`None` or 0: unlimited). Writes waiting on the bucket see it within
    /// [`RECHECK`]; bytes already taken and not yet paid for are paid at the new rate, and
    /// forgiven when the limit goes.
    pub fn set_rate(&self, rate: Option<u64>) {
        if let Ok(mut state) = self.state.lock() {
            // Settle what the old rate paid up to now before the new one applies.
            Self::refill(&mut state, self.rate(), Instant::now());
            if rate.unwrap_or(0) == 0 {
                state.paid = state.taken;
            }
            self.rate.store(rate.unwrap_or(0), Ordering::Relaxed);
        }
    }

    fn refill(state: &mut BucketState, rate: Option<u64>, now: Instant) {
        if let Some(rate) = rate {
            let dt = now.duration_since(state.refilled).as_secs_f64();
            let cap = state.taken + rate as f64 * BURST.as_secs_f64();
            state.paid = (state.paid + rate as f64 * dt).min(cap.max(state.paid));
        }
        state.refilled = now;
    }

    /// Takes `n` bytes' worth of tokens and waits until they are paid for. Returns at once when
    /// unlimited. Cancel safety: dropping the future leaves the tokens taken.
    pub async fn take(&self, n: u64) {
        if self.rate().is_none() {
            return;
        }
        let place = match self.state.lock() {
            Ok(mut state) => {
                Self::refill(&mut state, self.rate(), Instant::now());
                state.taken += n as f64;
                state.taken
            }
            Err(_) => return,
        };
        loop {
            let Some(rate) = self.rate() else { return };
            let wait = {
                let Ok(mut state) = self.state.lock() else {
                    return;
                };
                Self::refill(&mut state, Some(rate), Instant::now());
                if state.paid >= place {
                    return;
                }
                Duration::from_secs_f64((place - state.paid) / rate as f64)
            };
            tokio::time::sleep(wait.clamp(MIN_WAIT, RECHECK)).await;
        }
    }
}

/// How many files (or batches) a transfer moves at once; the limit can change while it runs.
#[derive(Debug)]
pub struct Slots {
    /// (limit, in use).
    state: Mutex<(usize, usize)>,
    freed: Notify,
}

/// One file or batch in flight; dropping it frees its slot.
#[derive(Debug)]
pub struct Slot<'a> {
    slots: &'a Slots,
}

impl Slots {
    /// `limit` at once (at least 1).
    pub fn new(limit: usize) -> Self {
        Slots {
            state: Mutex::new((limit.max(1), 0)),
            freed: Notify::new(),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.state.lock().map_or(1, |s| s.0)
    }

    /// Sets the limit (at least 1). Raising it starts waiting work at once; lowering it lets the
    /// work in flight finish and starts no more until fewer than `limit` are in flight.
    pub fn set_limit(&self, limit: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = limit.max(1);
        }
        self.freed.notify_waiters();
    }

    /// Waits for a free slot. Cancel safety: dropping the future takes no slot.
    pub async fn acquire(&self) -> Slot<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a slot freed in between still wakes us.
            freed.as_mut().enable();
            if let Ok(mut state) = self.state.lock()
                && state.1 < state.0
            {
                state.1 += 1;
                return Slot { slots: self };
            }
            freed.await;
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.slots.state.lock() {
            state.1 -= 1;
        }
        self.slots.freed.notify_waiters();
    }
}

/// A running transfer's pace: running or suspended, its own limit, the engine's shared limit,
/// and its concurrency. Shared between the transfer, which obeys it, and whoever controls the
/// job, which changes it.
#[derive(Debug)]
pub struct Pace {
    /// `true` while the transfer may move; `false` while suspended.
    running: watch::Sender<bool>,
    limit: Bucket,
    /// Shared with every other job of the engine (the global limit).
    global: std::sync::Arc<Bucket>,
    slots: Slots,
}

impl Pace {
    /// A running pace with its own `limit`, the engine's `global` bucket, and `jobs` at once.
    pub fn new(limit: Option<u64>, global: std::sync::Arc<Bucket>, jobs: usize) -> Self {
        Pace {
            running: watch::Sender::new(true),
            limit: Bucket::new(limit),
            global,
            slots: Slots::new(jobs),
        }
    }

    /// A pace that never waits: no limits, never suspended, `jobs` at once.
    pub fn unlimited(jobs: usize) -> Self {
        Pace::new(None, std::sync::Arc::new(Bucket::new(None)), jobs)
    }

    /// Suspends (`false`) or continues (`true`) the transfer. Returns whether that changed it.
    pub fn set_running(&self, running: bool) -> bool {
        self.running
            .send_if_modified(|now| std::mem::replace(now, running) != running)
    }

    /// Whether the transfer may move now.
    pub fn is_running(&self) -> bool {
        *self.running.borrow()
    }

    /// Waits while the transfer is suspended. Cancel safety: none needed, it holds nothing.
    pub async fn ready(&self) {
        let mut rx = self.running.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|running| *running).await;
    }

    /// Waits until `n` bytes may be written: the job's limit and the global limit both allow
    /// them, and the transfer is not suspended.
    pub async fn admit(&self, n: u64) {
        self.limit.take(n).await;
        self.global.take(n).await;
        self.ready().await;
    }

    /// Waits for a free slot among the transfer's `-j N`.
    pub async fn slot(&self) -> Slot<'_> {
        self.slots.acquire().await
    }

    /// The job's own limit in bytes per second, `None` when unlimited.
    pub fn limit(&self) -> Option<u64> {
        self.limit.rate()
    }

    /// Sets the job's own limit (`None`: unlimited).
    pub fn set_limit(&self, rate: Option<u64>) {
        self.limit.set_rate(rate);
    }

    /// Files (or batches) moved at once.
    pub fn jobs(&self) -> usize {
        self.slots.limit()
    }

    /// Sets the files (or batches) moved at once (at least 1).
    pub fn set_jobs(&self, jobs: usize) {
        self.slots.set_limit(jobs);
    }
}
