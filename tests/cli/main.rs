//! The integration tests of the `mavfs` binary: one test binary, linked once, with one module per
//! area. Every test runs the real binary through [`harness`].
//!
//! - [`allocator`]: jemalloc applies the binary's own settings.
//! - [`architecture`]: the import graph between the shell's modules has no cycles.
//! - [`audit`]: fault-audit cases needing a full disk, a cut connection or two processes.
//! - [`config`]: config files, their lookup order and mounts, Redis mounts.
//! - [`crash`]: SIGKILL mid-transfer, then a new start: every file old or whole.
//! - [`daemon`]: `mavfs serve` and attached clients, as real processes on a real socket.
//! - [`dashboard`]: `mavfs dashboard` without a terminal: plain and JSON lines until stopped.
//! - [`faults`]: the audit's data-loss cases: sources changing under `cp` and `mv`, Redis data
//!   freed in the background at exit.
//! - [`jobs`]: background transfer jobs and their notices.
//! - [`json`]: `--json` on shell commands and transfers, and `mavfs events`, parsed and pinned.
//! - [`names`]: hostile names (control characters) in listings and errors, on every store, on
//!   a terminal (tmux) and off one.
//! - [`memory_bound`]: a 1 GiB round trip holds one copy in memory (in a process of its own).
//! - [`sandbox`]: the disk store's sandbox, end to end.
//! - [`shell`]: every shell command, in `exec` and script mode.
//! - [`tty`]: the dashboard and Ctrl-Z in a real terminal (a tmux pane).
//!
//! Private Redis servers come from the `mavfs-test-support` crate, shared with the engine's tests.

mod harness;

mod allocator;
mod architecture;
mod audit;
mod config;
mod crash;
mod daemon;
mod dashboard;
mod faults;
mod jobs;
mod json;
mod memory_bound;
mod names;
mod sandbox;
mod shell;
mod tty;
