//! The daemon: `mavfs serve`, the long-lived process that owns the engine.

pub mod metrics;
