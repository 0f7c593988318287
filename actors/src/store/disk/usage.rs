//! The usage counters of a disk store: [`Store::usage`](crate::store::Store::usage) answers from
//! them, never from a walk, so that a dashboard asking each second costs nothing on the disk.
//!
//! - **The first count.** [`DiskStore::open`](super::DiskStore::open) starts the store's scanner
//!   thread, which walks the tree once `usage` is first asked for (open does not wait for it). A
//!   process that never asks (`mavfs exec "pull /disk/tree /vram/tree"`, the `df` of no one)
//!   never walks its roots: a walk of a million files takes seconds of a core, which a transfer
//!   started beside it had to share. Until that walk is applied, the counters hold what the
//!   store's own operations changed since open, and `usage` says so ([`Usage::approximate`]);
//!   `usage` asked within [`FIRST_COUNT_WAIT`] of the first ask waits for the walk, until then
//!   at most.
//! - **Own operations.** Each operation that changes the tree applies what it changed: a commit
//!   one file and its bytes, or the new size less the old when it replaced a file (an append is
//!   such a replace); a removal what it removed (`remove_all` walks the subtree it removes, in
//!   the same blocking job); `mkdir` each directory it created; a rename the destination it
//!   replaced. So the counters are exact for everything MAVFS does itself.
//! - **Rescans.** Once the first count is asked for, the scanner walks the tree again every
//!   [`DiskOptions::rescan`](super::DiskOptions) (default [`RESCAN_EVERY`]), to pick up changes
//!   made outside MAVFS (another program writing into the root). A failed removal also asks for
//!   an early rescan, since it may have removed part of what it meant to.
//!
//! A walk takes time and the store's operations go on meanwhile, most of them outside the actor
//! (on the lane, in batches, in the blocking pool). A walk that an operation raced may have seen
//! its change or not, so it cannot simply replace the counters. Each operation therefore
//! announces itself ([`Counters::begin`]) before it touches the tree and applies its change after
//! ([`Pending::apply`]); a walk's total replaces the counters only if no operation was under way
//! when it started and none began before it ended. A raced walk is thrown away (the counters
//! stay exact for own operations) and tried again after [`RACED_RETRY`], doubled for each raced
//! rescan in a row up to the rescan interval: a long transfer into the root races every walk,
//! and walking again each second would have the scanner walk a growing tree all the time. The
//! first walk, which has no counters to fall back on, gives up after [`FIRST_COUNT_TRIES`] raced
//! tries: then its total plus what own operations changed while it ran is applied and marked
//! approximate, until a quiet walk settles it.
//!
//! One small mutex guards the counters: an operation takes it twice, for nanoseconds, which
//! costs nothing beside the syscalls it makes (see the measurement in the usage commit).

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;
use tokio::sync::watch;

use crate::store::Usage;

use super::walk;

/// How often the scanner walks the tree again, by default. Changes made outside MAVFS show after
/// at most this long. A minute: a walk of a million files takes seconds of a core and evicts
/// metadata caches, and outside writers are the exception for a MAVFS root, while the store's
/// own writes show at once whatever the interval.
pub const RESCAN_EVERY: Duration = Duration::from_secs(60);

/// How long after the first `usage` call a `usage` call waits for the first count, at most.
/// Past it (a large tree), `usage` answers with what it knows, marked approximate, rather than
/// hold up the mount's actor, whose mailbox waits meanwhile.
const FIRST_COUNT_WAIT: Duration = Duration::from_millis(500);

/// Raced tries of the first walk before its total is applied with the changes made meanwhile.
const FIRST_COUNT_TRIES: u32 = 8;

/// The wait before a raced rescan is tried again, doubled for each raced rescan in a row (a
/// raced first walk waits from 10 ms, doubled likewise).
const RACED_RETRY: Duration = Duration::from_secs(1);

/// Signed totals: a change, or the counters themselves (which never go negative in practice, and
/// are clamped at zero when read should an outside removal make them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub(super) files: i64,
    pub(super) dirs: i64,
    pub(super) bytes: i64,
}

impl Totals {
    /// One new file of `len` bytes.
    pub(super) fn file(len: u64) -> Totals {
        Totals {
            files: 1,
            bytes: len as i64,
            dirs: 0,
        }
    }

    /// `n` new directories.
    pub(super) fn dirs(n: i64) -> Totals {
        Totals {
            dirs: n,
            ..Totals::default()
        }
    }

    /// A file's size changed from `old` to `new` bytes.
    pub(super) fn resized(old: u64, new: u64) -> Totals {
        Totals {
            bytes: new as i64 - old as i64,
            ..Totals::default()
        }
    }

    /// The whole of `usage`.
    pub(super) fn of(usage: &Usage) -> Totals {
        Totals {
            files: usage.files as i64,
            dirs: usage.dirs as i64,
            bytes: usage.bytes as i64,
        }
    }

    /// This change undone: what removing it takes away.
    pub(super) fn removed(self) -> Totals {
        Totals {
            files: -self.files,
            dirs: -self.dirs,
            bytes: -self.bytes,
        }
    }

    fn add(&mut self, other: Totals) {
        self.files += other.files;
        self.dirs += other.dirs;
        self.bytes += other.bytes;
    }

    fn sub(self, other: Totals) -> Totals {
        let mut out = self;
        out.add(other.removed());
        out
    }
}

#[derive(Debug, Default)]
struct State {
    totals: Totals,
    /// Operations begun since open: a walk compares it before and after.
    begun: u64,
    /// Operations begun and not yet applied (or dropped).
    in_flight: u64,
    /// A walk's total has been applied (exactly or not).
    counted: bool,
    /// The totals may be off: no walk applied yet, or the first one raced.
    approximate: bool,
}

/// What the scanner is told, under its own lock so that waking it never waits on the counters.
#[derive(Debug, Default)]
struct Wake {
    stop: bool,
    rescan: bool,
    /// `usage` has been asked for: the scanner may walk.
    asked: bool,
}

/// The counters of one store, shared by the store, its lane jobs and its scanner thread.
#[derive(Debug)]
pub(super) struct Counters {
    state: Mutex<State>,
    /// Becomes true once the first walk has ended (applied, given up or failed).
    first: watch::Sender<bool>,
    wake: Mutex<Wake>,
    wakeup: Condvar,
    /// When `usage` was first asked for.
    first_asked: OnceLock<Instant>,
}

/// An operation under way: created by [`Counters::begin`] before the tree changes, consumed by
/// [`Pending::apply`] after. Dropped without `apply`, it changed nothing.
#[must_use = "an operation that changed the tree must apply its change"]
pub(super) struct Pending<'a> {
    counters: &'a Counters,
}

impl Pending<'_> {
    /// Applies `change`, made by this operation.
    pub(super) fn apply(self, change: Totals) {
        let mut state = self.counters.lock();
        state.totals.add(change);
        // Drop decrements `in_flight`, under a second short lock.
    }

    /// This operation may have changed the tree by an unknown amount (a removal failed
    /// midway): the counters are marked approximate and the scanner walks soon.
    pub(super) fn unsure(self) {
        self.counters.lock().approximate = true;
        self.counters.rescan_soon();
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.counters.lock().in_flight -= 1;
    }
}

impl Counters {
    fn new() -> Counters {
        Counters {
            state: Mutex::new(State {
                approximate: true,
                ..State::default()
            }),
            first: watch::Sender::new(false),
            wake: Mutex::new(Wake::default()),
            wakeup: Condvar::new(),
            first_asked: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock guards plain numbers: a panic while holding it leaves them consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) -> MutexGuard<'_, Wake> {
        self.wake.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Announces an operation about to change the tree.
    pub(super) fn begin(&self) -> Pending<'_> {
        let mut state = self.lock();
        state.begun += 1;
        state.in_flight += 1;
        Pending { counters: self }
    }

    /// The counts now, for `usage`; the first count waited for while the store is young.
    pub(super) async fn usage(&self) -> Usage {
        let first_asked = *self.first_asked.get_or_init(|| {
            self.wake().asked = true;
            self.wakeup.notify_all();
            Instant::now()
        });
        let left = FIRST_COUNT_WAIT.saturating_sub(first_asked.elapsed());
        if !left.is_zero() {
            let mut first = self.first.subscribe();
            // A timeout only means the walk is still running: answer with what is known.
            let _ = tokio::time::timeout(left, first.wait_for(|&done| done)).await;
        }
        let state = self.lock();
        Usage {
            files: state.totals.files.max(0) as u64,
            dirs: state.totals.dirs.max(0) as u64,
            bytes: state.totals.bytes.max(0) as u64,
            approximate: state.approximate,
            ..Usage::default()
        }
    }

    /// Asks the scanner for a walk now.
    fn rescan_soon(&self) {
        self.wake().rescan = true;
        self.wakeup.notify_all();
    }

    fn stopped(&self) -> bool {
        self.wake().stop
    }

    /// Sleeps until `usage` is first asked for. False when the store has gone first. An early
    /// rescan asked for meanwhile is dropped: the first walk is about to count everything.
    fn sleep_until_asked(&self) -> bool {
        let mut wake = self.wake();
        while !wake.stop && !wake.asked {
            wake = self.wakeup.wait(wake).unwrap_or_else(|p| p.into_inner());
        }
        wake.rescan = false;
        !wake.stop
    }

    /// Sleeps until `timeout` (forever if `None`) or an early rescan is asked for. False when
    /// the store has gone.
    fn sleep(&self, timeout: Option<Duration>) -> bool {
        let mut wake = self.wake();
        let deadline = timeout.map(|t| Instant::now() + t);
        while !wake.stop && !wake.rescan {
            match deadline {
                None => {
                    wake = self.wakeup.wait(wake).unwrap_or_else(|p| p.into_inner());
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    wake = self
                        .wakeup
                        .wait_timeout(wake, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        wake.rescan = false;
        !wake.stop
    }

    /// What a walk starting now compares against when it ends.
    fn mark(&self) -> Mark {
        let state = self.lock();
        Mark {
            begun: state.begun,
            quiet: state.in_flight == 0,
            totals: state.totals,
        }
    }

    /// Applies a walk's `total` if no operation raced it since `mark`, or, with `force`, with
    /// what own operations changed meanwhile, marked approximate. True when applied.
    fn settle(&self, mark: Mark, total: Totals, force: bool) -> bool {
        let mut state = self.lock();
        if mark.quiet && state.begun == mark.begun {
            state.totals = total;
            state.approximate = false;
        } else if force {
            let mut totals = total;
            totals.add(state.totals.sub(mark.totals));
            state.totals = totals;
            state.approximate = true;
        } else {
            return false;
        }
        state.counted = true;
        true
    }

    fn counted(&self) -> bool {
        self.lock().counted
    }
}

/// The counters at the start of a walk.
#[derive(Debug, Clone, Copy)]
struct Mark {
    begun: u64,
    quiet: bool,
    totals: Totals,
}

/// The store's side of its scanner thread: dropping it (with the store) stops the thread, at its
/// next directory if it is walking.
#[derive(Debug)]
pub(super) struct Scanner {
    counters: Arc<Counters>,
}

impl Scanner {
    /// Starts the scanner thread on `root`: the first count once `usage` is asked for, then a
    /// walk every `every` (none if `None`). Errors: the host could not start a thread.
    pub(super) fn start(root: Arc<Dir>, every: Option<Duration>) -> std::io::Result<Scanner> {
        let counters = Arc::new(Counters::new());
        let theirs = counters.clone();
        // A thread of its own rather than a tokio task: a store may be opened outside a runtime,
        // the walk blocks anyway, and a paused test clock must not make it walk in a loop.
        std::thread::Builder::new()
            .name("mavfs-disk-usage".into())
            .spawn(move || scan(&root, &theirs, every))?;
        Ok(Scanner { counters })
    }

    /// The counters the scanner keeps settled.
    pub(super) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.counters.wake().stop = true;
        self.counters.wakeup.notify_all();
    }
}

/// The wait before retrying a rescan raced `raced` times in a row before this one:
/// [`RACED_RETRY`] doubled for each, at most the rescan interval `every`.
fn raced_rescan_wait(raced: u32, every: Option<Duration>) -> Duration {
    let backoff = RACED_RETRY.saturating_mul(1 << raced.min(16));
    every.map_or(backoff, |every| backoff.min(every))
}

/// The scanner thread: walks, applies, sleeps, until the store goes.
fn scan(root: &Dir, counters: &Counters, every: Option<Duration>) {
    if !counters.sleep_until_asked() {
        return;
    }
    let mut first_tries = 0u32;
    let mut raced_rescans = 0u32;
    loop {
        let first = !counters.counted();
        let mark = counters.mark();
        let walked = walk::usage(root, Path::new("."), &|| counters.stopped());
        let mut wait = every;
        // Whether `usage` has nothing more to wait for: a walk applied, or one that failed.
        let mut first_over = true;
        match walked {
            Ok(usage) => {
                let force = first && first_tries + 1 >= FIRST_COUNT_TRIES;
                if counters.settle(mark, Totals::of(&usage), force) {
                    first_tries = 0;
                    raced_rescans = 0;
                } else if first {
                    first_tries += 1;
                    first_over = false;
                    wait = Some(Duration::from_millis(10 << first_tries.min(6)));
                } else {
                    wait = Some(raced_rescan_wait(raced_rescans, every));
                    raced_rescans += 1;
                }
            }
            Err(_) if counters.stopped() => return,
            Err(e) => {
                tracing::warn!(error = %e, "counting a disk store's usage failed; next try at the next rescan");
            }
        }
        if first && first_over {
            counters.first.send_replace(true);
        }
        if !counters.sleep(wait) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(files: i64, dirs: i64, bytes: i64) -> Totals {
        Totals { files, dirs, bytes }
    }

    fn now(counters: &Counters) -> (Totals, bool) {
        let state = counters.lock();
        (state.totals, state.approximate)
    }

    #[test]
    fn a_quiet_walk_replaces_the_counters() {
        let counters = Counters::new();
        counters.begin().apply(Totals::file(10));
        let mark = counters.mark();
        assert!(counters.settle(mark, totals(5, 2, 50), false));
        assert_eq!(now(&counters), (totals(5, 2, 50), false));
        // Operations after the walk ended count on top of it.
        counters.begin().apply(Totals::resized(50, 20));
        assert_eq!(now(&counters).0, totals(5, 2, 20));
    }

    #[test]
    fn a_walk_raced_by_an_operation_is_thrown_away() {
        let counters = Counters::new();
        assert!(counters.settle(counters.mark(), totals(1, 0, 1), false));
        let mark = counters.mark();
        // Begun during the walk: the walk may or may not have seen it.
        counters.begin().apply(Totals::file(7));
        assert!(!counters.settle(mark, totals(100, 0, 100), false));
        assert_eq!(now(&counters), (totals(2, 0, 8), false));
    }

    #[test]
    fn a_walk_that_started_during_an_operation_is_thrown_away() {
        let counters = Counters::new();
        assert!(counters.settle(counters.mark(), totals(1, 0, 1), false));
        let pending = counters.begin();
        let mark = counters.mark();
        pending.apply(Totals::file(7));
        assert!(!counters.settle(mark, totals(100, 0, 100), false));
        // Dropped without a change, an operation leaves nothing and races only its own walk.
        drop(counters.begin());
        let mark = counters.mark();
        assert!(counters.settle(mark, totals(3, 0, 3), false));
    }

    #[test]
    fn a_forced_first_walk_adds_what_changed_meanwhile_and_says_approximate() {
        let counters = Counters::new();
        counters.begin().apply(Totals::file(4));
        let mark = counters.mark();
        counters.begin().apply(Totals::dirs(1));
        assert!(counters.settle(mark, totals(10, 0, 100), true));
        assert_eq!(now(&counters), (totals(10, 1, 100), true));
        // A later quiet walk settles it.
        assert!(counters.settle(counters.mark(), totals(11, 1, 104), false));
        assert_eq!(now(&counters), (totals(11, 1, 104), false));
    }

    #[test]
    fn an_unsure_operation_marks_the_counters_and_wakes_the_scanner() {
        let counters = Counters::new();
        assert!(counters.settle(counters.mark(), Totals::default(), false));
        counters.begin().unsure();
        assert!(now(&counters).1);
        // The scanner's sleep ends at once.
        assert!(counters.sleep(None));
    }

    #[test]
    fn raced_rescans_back_off_up_to_the_rescan_interval() {
        let every = Some(Duration::from_secs(60));
        let waits: Vec<u64> = (0..8)
            .map(|raced| raced_rescan_wait(raced, every).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            raced_rescan_wait(0, Some(Duration::from_millis(100))),
            Duration::from_millis(100)
        );
        assert_eq!(raced_rescan_wait(40, None), RACED_RETRY * (1 << 16));
    }

    #[tokio::test]
    async fn the_scanner_waits_for_the_first_ask() {
        let counters = Arc::new(Counters::new());
        let theirs = counters.clone();
        let sleeper = std::thread::spawn(move || theirs.sleep_until_asked());
        // An early rescan (a failed removal) does not start the walk.
        counters.rescan_soon();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !sleeper.is_finished(),
            "the scanner walked before usage was asked for"
        );
        counters.first.send_replace(true);
        counters.usage().await;
        assert!(sleeper.join().unwrap(), "asked, the scanner walks");
        assert!(
            !counters.wake().rescan,
            "the first walk counts what the rescan would have"
        );
    }

    #[tokio::test]
    async fn usage_never_reports_negative_counts() {
        let counters = Counters::new();
        counters.first.send_replace(true);
        counters.begin().apply(Totals::file(5).removed());
        let usage = counters.usage().await;
        assert_eq!((usage.files, usage.bytes), (0, 0));
        assert!(usage.approximate, "no walk has been applied");
    }
}
