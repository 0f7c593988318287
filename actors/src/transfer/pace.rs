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
//! [`RECHECK`] so a changed limit takes effect within that. A bucket's clock starts at its first
//! write, so time spent before it (a pre-scan) is no credit.
//!
//! Unused rate is kept up to a cap, and the cap is what decides whether a job that fell behind
//! may catch up. A job's own bucket keeps up to [`CATCH_UP`]: a busy machine or a slow store
//! holds a transfer below its limit now and then (measured on the shared 2-CPU machine: dips of
//! 100-500 ms, in which an unthrottled push fell to 200-400 MiB/s too), and with a cap of a
//! tenth of a second whatever a dip lost beyond that was lost for good (up to 0.44 s of a 1 GiB
//! push at 1 GiB/s, counted in the bucket). With a second's worth, the job catches up after a
//! dip of up to a second and its rate over the whole job stays its limit. It cannot save up while
//! suspended: continuing forgives the credit ([`Bucket::forgive`]). The engine's shared bucket
//! keeps only [`BURST`], since it idles between jobs and a new job must not start with a burst.
//! Times are tokio's, so tests run under a paused clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Longest a throttled write sleeps before looking at its limit again: a changed limit takes
/// effect within this.
pub const RECHECK: Duration = Duration::from_millis(50);

/// How much unused rate the engine's shared bucket keeps: a tenth of a second's worth.
pub const BURST: Duration = Duration::from_millis(100);

/// How much unused rate a job's own bucket keeps: a job held below its limit by the machine or
/// its stores for up to this long catches up afterwards, at most this much of its limit at once.
pub const CATCH_UP: Duration = Duration::from_secs(1);

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
    /// How much unused rate is kept, in time at the rate.
    keep: Duration,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    taken: f64,
    /// At most `keep`'s worth ahead of `taken`: unused rate is not saved up beyond that.
    paid: f64,
    /// When `paid` was last brought up to date; `None` until the first write.
    refilled: Option<Instant>,
}

/// The shortest wait: a wait of a fraction of this would not move tokio's clock, which counts
/// in milliseconds.
const MIN_WAIT: Duration = Duration::from_millis(1);

impl Bucket {
    /// A bucket with `rate` bytes per second (`None` or 0: unlimited) that keeps [`BURST`] of
    /// unused rate.
    pub fn new(rate: Option<u64>) -> Self {
        Bucket::keeping(rate, BURST)
    }

    /// A bucket with `rate` bytes per second (`None` or 0: unlimited) that keeps `keep` of
    /// unused rate: a writer held back for up to that long catches up afterwards.
    pub fn keeping(rate: Option<u64>, keep: Duration) -> Self {
        Bucket {
            rate: AtomicU64::new(rate.unwrap_or(0)),
            keep,
            state: Mutex::new(BucketState {
                taken: 0.0,
                paid: 0.0,
                refilled: None,
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
            self.refill(&mut state, self.rate(), Instant::now());
            if rate.unwrap_or(0) == 0 {
                state.paid = state.taken;
            }
            self.rate.store(rate.unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// Drops the unused rate kept so far: what follows moves at the rate from now on (a job
    /// continued after a suspension, which must not have saved up meanwhile).
    pub fn forgive(&self) {
        if let Ok(mut state) = self.state.lock() {
            self.refill(&mut state, self.rate(), Instant::now());
            state.paid = state.paid.min(state.taken);
        }
    }

    /// Brings `paid` up to `now`, keeping at most `keep`'s worth of unused rate. Before the
    /// first write the clock has not started (`refilled` stays `None`) unless `start`.
    fn refill_at(&self, state: &mut BucketState, rate: Option<u64>, now: Instant, start: bool) {
        if let (Some(rate), Some(then)) = (rate, state.refilled) {
            let dt = now.duration_since(then).as_secs_f64();
            let cap = state.taken + rate as f64 * self.keep.as_secs_f64();
            state.paid = (state.paid + rate as f64 * dt).min(cap.max(state.paid));
        }
        if start || state.refilled.is_some() {
            state.refilled = Some(now);
        }
    }

    fn refill(&self, state: &mut BucketState, rate: Option<u64>, now: Instant) {
        self.refill_at(state, rate, now, false);
    }

    /// Takes `n` bytes' worth of tokens and waits until they are paid for. Returns at once when
    /// unlimited. Cancel safety: dropping the future leaves the tokens taken.
    pub async fn take(&self, n: u64) {
        if self.rate().is_none() {
            return;
        }
        let place = match self.state.lock() {
            Ok(mut state) => {
                // The first write starts the clock.
                self.refill_at(&mut state, self.rate(), Instant::now(), true);
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
                self.refill(&mut state, Some(rate), Instant::now());
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
            limit: Bucket::keeping(limit, CATCH_UP),
            global,
            slots: Slots::new(jobs),
        }
    }

    /// A pace that never waits: no limits, never suspended, `jobs` at once.
    pub fn unlimited(jobs: usize) -> Self {
        Pace::new(None, std::sync::Arc::new(Bucket::new(None)), jobs)
    }

    /// Suspends (`false`) or continues (`true`) the transfer. Returns whether that changed it.
    /// Continuing forgives the unused rate of the job's own limit, so that the time suspended
    /// is not saved up for a burst.
    pub fn set_running(&self, running: bool) -> bool {
        if running && !self.is_running() {
            self.limit.forgive();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Takes `n` chunks of `chunk` bytes, one after the other.
    async fn write(bucket: &Bucket, n: u64, chunk: u64) {
        for _ in 0..n {
            bucket.take(chunk).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn time_before_the_first_write_is_no_credit() {
        let bucket = Bucket::keeping(Some(10 * MIB), CATCH_UP);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        write(&bucket, 10, MIB).await;
        // Each chunk waits until its bytes are paid for, the first included.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_held_back_catches_up_to_its_keep() {
        for (keep, stall, lost) in [
            // A stall shorter than what the bucket keeps costs nothing over the whole run...
            (CATCH_UP, 600, 0),
            // ... a longer one loses what exceeds it, and a small keep loses most of it.
            (CATCH_UP, 1500, 500),
            (BURST, 600, 500),
        ] {
            let bucket = Bucket::keeping(Some(10 * MIB), keep);
            let start = Instant::now();
            write(&bucket, 10, MIB).await;
            // A slow store: nothing taken for `stall` ms, as if one write took that long.
            tokio::time::sleep(Duration::from_millis(stall)).await;
            write(&bucket, 20, MIB).await;
            // 30 MiB at 10 MiB/s: 3 s from the first write.
            let want = Duration::from_millis(3000 + lost);
            assert_eq!(start.elapsed(), want, "keep {keep:?}, stall {stall} ms");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_continued_job_has_not_saved_up() {
        let pace = Pace::new(Some(10 * MIB), std::sync::Arc::new(Bucket::new(None)), 1);
        pace.admit(MIB).await;
        pace.set_running(false);
        tokio::time::sleep(Duration::from_millis(800)).await;
        pace.set_running(true);
        let start = Instant::now();
        for _ in 0..5 {
            pace.admit(MIB).await;
        }
        // The 800 ms suspended bought nothing: 5 MiB at 10 MiB/s.
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }
}
