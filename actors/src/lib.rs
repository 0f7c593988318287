//! The MAVFS engine.
pub mod error;
pub mod path;
pub mod store;
