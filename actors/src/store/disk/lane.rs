//! A lane of blocking threads for the store's short host jobs: opening a file for reading,
//! committing a staged file.
//!
//! Why not `spawn_blocking` per job: for files of a few KiB the hand-offs cost more than the work.
//! Each `spawn_blocking` wakes a sleeping pool thread; on the 2-CPU virtual machine measured, a
//! round trip took about 20 us, as long as creating, writing and renaming a 4 KiB file. With
//! several files in flight it also runs as many threads as jobs, more than there are cores, and
//! they contend in the kernel for the staging directory. A lane queues its jobs and drains them
//! on at most `width` threads. A thread takes the next job without sleeping while one is queued,
//! and lingers for [`LINGER`] after the queue runs dry, yielding its CPU to anything else
//! runnable, so that the next job of a transfer finds it awake. Past that it returns to tokio's
//! blocking pool: an idle store holds no thread.
//!
//! Rules: jobs never run on the async runtime; a job whose caller stopped waiting before it
//! started is dropped unrun, with whatever it owns; long jobs (streaming chunks, copies, walks,
//! fsync) do not belong here, since they would hold up the short ones queued behind them.

use std::collections::VecDeque;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How long a lane thread waits for another job before it leaves: longer than the gap between
/// two files of a transfer. Meanwhile it keeps a CPU busy yielding, which is what spares the next
/// job a wake-up; after a burst of jobs that costs at most this much CPU time.
const LINGER: Duration = Duration::from_micros(200);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A queue of blocking jobs drained by at most `width` threads. Cheap to clone.
#[derive(Clone)]
pub(super) struct Lane {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Jobs in the queue, readable without the lock by lingering threads.
    queued: AtomicUsize,
    width: usize,
}

struct State {
    jobs: VecDeque<Job>,
    /// Threads in the drain loop, busy or lingering.
    running: usize,
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane")
            .field("width", &self.inner.width)
            .finish_non_exhaustive()
    }
}

/// A job's result never came: the job panicked, or the runtime shut down before running it.
#[derive(Debug)]
pub(super) struct Lost;

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the blocking job panicked or was dropped at shutdown")
    }
}

impl Lane {
    /// A lane of at most `width` threads (at least one).
    pub(super) fn new(width: usize) -> Lane {
        Lane {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    running: 0,
                }),
                queued: AtomicUsize::new(0),
                width: width.max(1),
            }),
        }
    }

    /// Runs `job` on the lane and returns its result. If the returned future is dropped before
    /// the job starts, the job is dropped unrun, with whatever it owns.
    pub(super) async fn run<T, F>(&self, job: F) -> Result<T, Lost>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(job());
            }
        }));
        rx.await.map_err(|_| Lost)
    }

    fn submit(&self, job: Job) {
        let mut state = self.inner.lock();
        state.jobs.push_back(job);
        self.inner.queued.fetch_add(1, Ordering::Release);
        // Another thread only when every thread in the loop has a job waiting for it already: a
        // lingering thread takes the new one.
        if state.running < self.inner.width && state.jobs.len() > state.running {
            state.running += 1;
            drop(state);
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || inner.drain());
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No job runs under the lock, so a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drain(&self) {
        loop {
            let mut state = self.lock();
            let job = match state.jobs.pop_front() {
                Some(job) => job,
                None => {
                    drop(state);
                    if self.linger() {
                        continue;
                    }
                    state = self.lock();
                    match state.jobs.pop_front() {
                        Some(job) => job,
                        None => {
                            // Under the lock, so that a submitter sees this thread gone and
                            // starts another.
                            state.running -= 1;
                            return;
                        }
                    }
                }
            };
            self.queued.fetch_sub(1, Ordering::Relaxed);
            drop(state);
            // A panicking job loses its own result (its sender drops), never the lane.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
        }
    }

    /// Waits up to [`LINGER`] for a job to be queued, yielding the CPU meanwhile. True if one was.
    fn linger(&self) -> bool {
        let until = Instant::now() + LINGER;
        loop {
            if self.queued.load(Ordering::Acquire) > 0 {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panic() {
        let lane = Lane::new(2);
        assert_eq!(lane.run(|| 1 + 1).await.unwrap(), 2);
        assert!(lane.run(|| -> u8 { panic!("boom") }).await.is_err());
        let results = futures::future::join_all((0..32).map(|i| lane.run(move || i * 2))).await;
        let total: usize = results.into_iter().map(Result::unwrap).sum();
        assert_eq!(total, (0..32).map(|i| i * 2).sum::<usize>());
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_is_dropped_unrun() {
        let lane = Lane::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        // Occupy the only thread, queue a job behind it, then drop that job's future.
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let lane = lane.clone();
            async move {
                lane.run(move || {
                    let _ = started_tx.send(());
                    release_rx.recv().ok()
                })
                .await
            }
        });
        started_rx.await.unwrap();
        let queued = tokio::spawn({
            let (lane, ran) = (lane.clone(), ran.clone());
            async move { lane.run(move || ran.fetch_add(1, Ordering::SeqCst)).await }
        });
        while lane.inner.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        queued.abort();
        let _ = queued.await;
        release_tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // Queued after the abandoned job, so it runs after the lane skipped that one.
        lane.run(|| ()).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
