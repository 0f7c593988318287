//! The command line, declared with clap.
//!
//! Global options are accepted before or after the command, so the seed's
//! `mavfs shell --ram dict --disk-dir block_dir` works as written. With no command, `mavfs` runs
//! the shell.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mavfs",
    version,
    about = "A storage hypervisor: one shell over memory, disk and Redis tiers"
)]
pub struct Cli {
    /// Config file (default: ./mavfs.toml, else $XDG_CONFIG_HOME/mavfs/config.toml, else built-in).
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Backend of /vram: memory (`dict` is the seed's name for it) or redis.
    #[arg(long, global = true, value_enum)]
    pub ram: Option<RamBackend>,

    /// Redis URL for `--ram redis` (`redis://[user:password@]host:port/db`).
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,

    /// Redis host for `--ram redis` when no URL is given.
    #[arg(long, global = true, value_name = "HOST")]
    pub redis_host: Option<String>,

    /// Redis port for `--ram redis` when no URL is given.
    #[arg(long, global = true, value_name = "PORT")]
    pub redis_port: Option<u16>,

    /// Redis database number for `--ram redis` when no URL is given.
    #[arg(long, global = true, value_name = "N")]
    pub redis_db: Option<u32>,

    /// Host directory of /vdisk (created if missing).
    #[arg(long, global = true, value_name = "DIR")]
    pub disk_dir: Option<PathBuf>,

    /// `bench`: bytes per file (a size such as 64KiB).
    #[arg(long, global = true, value_name = "SIZE")]
    pub bench_size: Option<String>,

    /// `bench`: files written and read per mount.
    #[arg(long, global = true, value_name = "N")]
    pub bench_iters: Option<usize>,

    /// `bench`: only this mount (e.g. /vram); default every mount.
    #[arg(long, global = true, value_name = "MOUNT")]
    pub bench_mount: Option<String>,

    /// Attach to the daemon (`mavfs serve`) on its default socket, or on `--connect=PATH`;
    /// fails (exit 2) when none answers. `MAVFS_SOCKET` does the same.
    #[arg(
        long,
        global = true,
        value_name = "SOCKET",
        num_args = 0..=1,
        require_equals = true,
        conflicts_with = "embedded"
    )]
    pub connect: Option<Option<PathBuf>>,

    /// Run the engine in this process even when a daemon is running.
    #[arg(long, global = true)]
    pub embedded: bool,

    /// JSON instead of text: every shell command of the session that supports it (`jobs`,
    /// `stats`, `mounts`, `stat`, transfers), `events` and `dashboard`.
    #[arg(long, global = true)]
    pub json: bool,

    /// `dashboard`: seconds between refreshes of the tier figures (default 1.0; more than 0).
    #[arg(long, global = true, value_name = "S", value_parser = parse_interval)]
    pub dashboard_interval: Option<f64>,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The mount-defining options given (`-c`, `--ram`, `--disk-dir`, `--redis-*`), by name:
    /// they configure an engine of this process, so they rule out attaching to a daemon.
    pub fn mount_options(&self) -> Vec<&'static str> {
        let given = [
            ("-c", self.config.is_some()),
            ("--ram", self.ram.is_some()),
            ("--disk-dir", self.disk_dir.is_some()),
            ("--redis-url", self.redis_url.is_some()),
            ("--redis-host", self.redis_host.is_some()),
            ("--redis-port", self.redis_port.is_some()),
            ("--redis-db", self.redis_db.is_some()),
        ];
        given
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RamBackend {
    Memory,
    Dict,
    Redis,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Interactive shell; when stdin is not a terminal, runs it as a script.
    Shell,
    /// Runs each argument as one shell line in one session; stops at the first failure.
    Exec {
        /// Shell lines, e.g. 'mkdir -p /vram/a' 'ls /vram'.
        #[arg(required = true, value_name = "LINE")]
        lines: Vec<String>,
    },
    /// Read and write latency and throughput per mount, through the whole engine.
    Bench,
    /// Runs the hypervisor as a daemon on a Unix socket; shell, exec and dashboard attach to it.
    Serve {
        /// The socket (default: $XDG_RUNTIME_DIR/mavfs/mavfs.sock, else /tmp/mavfs-$UID/mavfs.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics on a loopback address (e.g.
        /// 127.0.0.1:9187 or `[::1]:9187`).
        #[arg(long, value_name = "ADDR", value_parser = parse_metrics_addr)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Live view of tiers, transfers and jobs; without a terminal, one line per mount and job
    /// (`--json`: one JSON object a line, which implies the non-interactive output).
    Dashboard,
    /// Every job event of the engine (of the daemon when attached), one line each (`--json`: one
    /// JSON object a line), until SIGINT, SIGTERM or a closed stdout.
    Events,
}

/// The dashboard's interval when none is given, in seconds.
pub const DEFAULT_DASHBOARD_INTERVAL: f64 = 1.0;

/// A positive, finite number of seconds, at most a day.
/// `--metrics`: a socket address on loopback only. The metrics page answers anyone who can
/// reach it, without authentication, so it is never offered beyond this machine (FAULTS.md case
/// 35: the daemon's control is a Unix socket; only metrics listen on TCP, on loopback).
fn parse_metrics_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not an address with a port, such as 127.0.0.1:9187"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{} is not a loopback address: metrics are served on 127.0.0.1 or ::1 only, \
             since they have no authentication",
            addr.ip()
        ))
    }
}

fn parse_interval(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 {
        Ok(secs)
    } else {
        Err(format!(
            "must be more than 0 and at most 86400 seconds, not {text}"
        ))
    }
}
