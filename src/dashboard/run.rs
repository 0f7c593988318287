//! The interactive loop: one `tokio::select!` over terminal input, the engine's job events, the
//! tier tick and the frame tick, generic over ratatui's [`Backend`] and over the input stream so
//! that tests drive it with a `TestBackend` and a channel of key events.
//!
//! Every branch's future is cancel safe, so losing a race loses nothing: crossterm's
//! `EventStream::next`, `broadcast::Receiver::recv` and `Interval::tick` all are. Engine calls
//! (`stats`, `jobs`, `cancel`) run inside a branch's body, never raced.
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
                        Some(Command::Cancel(id)) => {
                            // A job that ended meanwhile is not an error worth stopping for.
                            let _ = engine.cancel(id).await;
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
