//! The interactive loop: one `tokio::select!` over terminal input, the engine's job events, the
//! tier tick and the frame tick, generic over ratatui's [`Backend`] and over the input stream so
//! that tests drive it with a `TestBackend` and a channel of key events.
//!
//! Every branch's future is cancel safe, so losing a race loses nothing: crossterm's
//! `EventStream::next`, `broadcast::Receiver::recv` and `Interval::tick` all are. Engine calls
//! (`stats`, `jobs`, `cancel`, `suspend`, `resume`, `throttle`) run inside a branch's body, never raced.
//!
//! Redraws happen on the frame tick and only when something changed, so the dashboard draws at
//! most [`FRAME`]^-1 times a second however fast events arrive, and not at all when idle.

use std::future::Future;
use std::io;
use std::time::Duration;

use crossterm::event::Event;
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior};

use super::input;
use super::render;
use super::state::{Command, DashboardState, Snapshot, history_len};
use crate::engine::Engine;

/// The shortest time between two redraws: at most ten a second.
pub const FRAME: Duration = Duration::from_millis(100);

/// Runs the dashboard until `q`/Esc, the end of `keys`, or `shutdown` resolves. Jobs keep
/// running when it returns. Errors: the terminal could not be drawn or the engine read.
pub async fn run<B, S>(
    terminal: &mut Terminal<B>,
    engine: &Engine,
    mut keys: S,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    B: Backend,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    // Subscribe before reading the table, so that no event falls between the two.
    let mut events = engine.subscribe();
    let embedded = matches!(engine, Engine::Local(_));
    let mut state = DashboardState::new(&engine.mounts(), history_len(interval), embedded);
    state.load(snapshot(engine, true).await?);
    let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dirty = true;
    let mut events_open = true;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            key = keys.next() => match key {
                Some(Ok(Event::Key(key))) => {
                    let action = input::map(state.mode(), key);
                    match state.handle(action) {
                        Some(Command::Quit) => break,
                        // A job that ended meanwhile is not an error worth stopping for; its
                        // row shows how it ended.
                        Some(Command::Cancel(id)) => {
                            let _ = engine.cancel(id).await;
                        }
                        Some(Command::Suspend(id)) => {
                            let _ = engine.suspend(id).await;
                        }
                        Some(Command::Resume(id)) => {
                            let _ = engine.resume(id).await;
                        }
                        Some(Command::Throttle(id, limit)) => {
                            let _ = engine.throttle(id, limit).await;
                        }
                        None => {}
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            },
            event = events.recv(), if events_open => {
                match event {
                    Ok(event) => state.apply(&event),
                    Err(RecvError::Lagged(skipped)) => {
                        state.lagged(skipped);
                        state.load(snapshot(engine, true).await?);
                    }
                    // The engine is shutting down; tiers keep refreshing until the user quits.
                    Err(RecvError::Closed) => events_open = false,
                }
                dirty = true;
            }
            _ = tick.tick() => {
                state.load(snapshot(engine, false).await?);
                dirty = true;
            }
            _ = frame.tick(), if dirty => {
                terminal
                    .draw(|f| render::render(f, &state))
                    .map_err(|e| io::Error::other(e.to_string()))?;
                dirty = false;
            }
        }
    }
    Ok(())
}

/// Reads mount usage and, with `jobs`, the job table.
pub async fn snapshot(engine: &Engine, jobs: bool) -> io::Result<Snapshot> {
    let stats = engine.stats().await.map_err(io::Error::other)?;
    let jobs = if jobs {
        Some(engine.jobs().await.map_err(io::Error::other)?)
    } else {
        None
    };
    Ok(Snapshot {
        taken: std::time::Instant::now(),
        stats,
        jobs,
    })
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use futures::channel::mpsc;
    use mavfs_actors::{ErrorKind, JobId, JobState, TransferKind, TransferRequest, VPath};
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::config::{BackendConfig, Config};

    /// `/vram` is capped, so that the job below fails rather than eats memory if a test hangs.
    async fn engine_with_a_long_job(dir: &std::path::Path) -> (Engine, JobId) {
        let block_dir = dir.join("block_dir");
        let mut config = Config::defaults(&block_dir);
        config.mounts[0].backend = BackendConfig::Memory {
            capacity: Some(1 << 30),
        };
        let engine = crate::hypervisor::start(&config).await.unwrap();
        // Sparse: costs no disk, and reading it takes far longer than the keys below.
        std::fs::File::create(block_dir.join("big"))
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
        let request = TransferRequest {
            kind: TransferKind::Pull,
            sources: vec![VPath::parse("/vdisk/big").unwrap()],
            dest: VPath::parse("/vram/big").unwrap(),
            dest_is_dir: false,
            recursive: true,
            jobs: 1,
        };
        let id = engine
            .start(
                request,
                "pull /vdisk/big /vram/big".into(),
                Default::default(),
            )
            .await
            .unwrap();
        (engine, id)
    }

    /// Runs the loop over `keys`, which must end with `q`; returns when it has handled them all.
    async fn press(engine: &Engine, keys: &str) {
        let (tx, rx) = mpsc::unbounded();
        for c in keys.chars() {
            let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
            tx.unbounded_send(Ok(Event::Key(key))).unwrap();
        }
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        run(
            &mut terminal,
            engine,
            rx,
            Duration::from_secs(1),
            std::future::pending(),
        )
        .await
        .unwrap();
    }

    async fn state_of(engine: &Engine, id: JobId) -> JobState {
        let jobs = engine.jobs().await.unwrap();
        jobs.iter().find(|j| j.id == id).unwrap().state
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn x_asks_then_n_keeps_the_job_and_y_cancels_it() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, id) = engine_with_a_long_job(dir.path()).await;

        press(&engine, "xnq").await;
        assert_eq!(state_of(&engine, id).await, JobState::Running);

        press(&engine, "xyq").await;
        let outcome = tokio::time::timeout(Duration::from_secs(10), engine.wait(id))
            .await
            .expect("the job ends soon after y")
            .expect("a known job");
        assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(state_of(&engine, id).await, JobState::Cancelled);
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn the_loop_ends_when_input_ends_or_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::hypervisor::start(&Config::defaults(&dir.path().join("b")))
            .await
            .unwrap();
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let no_keys = futures::stream::empty();
        run(
            &mut terminal,
            &engine,
            no_keys,
            Duration::from_secs(1),
            std::future::pending(),
        )
        .await
        .unwrap();
        let never = futures::stream::pending();
        run(
            &mut terminal,
            &engine,
            never,
            Duration::from_secs(1),
            async {},
        )
        .await
        .unwrap();
        engine.shutdown().await;
    }
}
