//! The event bus: how every job's events reach any subscribed front end.
//!
//! An [`EventBus`] is a `tokio::sync::broadcast` channel: publishing never waits, and a
//! subscriber that falls behind by more than [`BUS_CAPACITY`] events skips the oldest ones
//! (`RecvError::Lagged`) instead of slowing the publisher; every job event carries a full
//! progress snapshot, so the next one brings a lagging subscriber up to date. The bus is generic
//! over what it carries, so it knows nothing of jobs.

use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it skips.
pub const BUS_CAPACITY: usize = 1024;

/// A broadcast channel of `E`. Cheap to clone.
pub struct EventBus<E> {
    sender: broadcast::Sender<E>,
}

impl<E> Clone for EventBus<E> {
    fn clone(&self) -> Self {
        EventBus {
            sender: self.sender.clone(),
        }
    }
}

impl<E: Clone> EventBus<E> {
    /// A bus with no subscribers yet.
    pub fn new() -> Self {
        EventBus {
            sender: broadcast::channel(BUS_CAPACITY).0,
        }
    }

    /// Sends `event` to every subscriber; never waits (with none, it is dropped).
    pub fn publish(&self, event: E) {
        let _ = self.sender.send(event);
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<E> {
        self.sender.subscribe()
    }
}

impl<E: Clone> Default for EventBus<E> {
    fn default() -> Self {
        Self::new()
    }
}
