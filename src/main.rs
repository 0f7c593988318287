//! `mavfs`: the binary. It parses the command line, loads the config, starts the engine and hands
//! over to a front end; it maps failures to exit codes (0 success, 1 a command failed, 2 usage or
//! config error).

mod attach;
mod bench;
mod cli;
mod config;
mod daemon;
mod dashboard;
mod engine;
mod events;
mod hypervisor;
mod shell;
mod signals;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::shell::{Session, SessionOptions};

/// jemalloc rather than glibc's malloc. A transfer into a memory mount keeps every file it reads
/// in an allocation of its own, made on a runtime worker; glibc grows a worker's arena by exactly
/// what each allocation needs, an `mprotect` call per 4 KiB file: 14% of `perf`'s samples in
/// pushing 20,000 files of 4 KiB out of Redis into a memory mount. In six alternating runs of
/// each, that push took 10% less time with jemalloc and the pull back into Redis 16% less.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, which it reads at its start (`_RJEM_MALLOC_CONF` in the environment
/// still overrides them): slabs of 16, 8 and 8 allocations for the size classes of 4, 8 and
/// 12 KiB (16, 16 and 24 pages).
/// By default jemalloc gives each of those a slab of its own (the only slab size it can fill
/// exactly), so every such allocation costs a slab's bookkeeping, and a memory mount makes one
/// for every file of those sizes it keeps. With these slabs, pushing 3 x 20,000 files
/// of 4 KiB out of Redis into a memory mount took 17% less user CPU and 8% less time (medians of
/// ten alternating runs); the slabs fill exactly, so nothing is wasted while they are full. The
/// price: a slab's pages stay resident while any of its files lives, so deleting most files of
/// a tree but not all can leave up to 15 free regions of its size a survivor, kept for the next
/// allocations of that size rather than returned to the system.
// Exporting a symbol is unsafe only in that two definitions of one name clash at link time:
// jemalloc declares this one weak precisely so that a program can define it.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 = &b"slab_sizes:4096-4096:16|8192-8192:16|12288-12288:24\0"[0];

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs each connection and job at info level by default.
    let serving = matches!(cli.command, Some(Command::Serve { .. }));
    init_tracing(cli.verbose + u8::from(serving));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if serving {
        // One worker: a request and its reply then never cross threads, and waking a second
        // worker (a futex per request) was most of an attached `stat`'s or small `cat`'s cost.
        // The daemon's heavy lifting runs off the workers anyway (disk lanes, blocking
        // threads); `benches/daemon.sh` measured the large push and `cat` no slower.
        builder.worker_threads(1);
    } else if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(embedded_workers());
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mavfs: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run(cli));
    // Everything of ours has ended by now; a line editor still blocked reading the terminal
    // (left behind by a SIGTERM at the prompt, see shell::terminate) must not keep the process.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runtime workers for an embedded engine (a shell or `exec`): one per core but one, at least
/// one. The runtime coordinates (the disk store reads and writes on blocking threads, Redis does
/// its work in its own process, usually on this host); a worker on every core contends with the
/// Redis server for them and wakes the other workers across cores. On 2 cores, 1 worker rather
/// than 2 pushed 20,000 files of 4 KiB out of Redis into a memory mount 12% faster (six
/// alternating runs) and large files out of Redis no slower; `benches/compare.sh` within noise.
/// Measured again a wave later: that push alone took 11% less time with 2 (ten alternating
/// runs), but in `benches/redis.sh` the pull of the same files from a tmpfs disk mount into
/// Redis fell from 0.55x to 0.46x of `redis-benchmark`'s new-key SETs and the push gained
/// nothing, so one it stays. `TOKIO_WORKER_THREADS` overrides it.
fn embedded_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Logs go to stderr only, so they never mix with command output.
fn init_tracing(verbose: u8) {
    // fred's own warnings (a QUIT racing the runtime's shutdown at exit, reconnect attempts)
    // duplicate or pre-empt the errors the Redis store reports in the user's terms.
    let default = match verbose {
        0 => "warn,fred=error",
        1 => "info,fred=warn",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> i32 {
    if let Some(Command::Serve { socket, metrics }) = &cli.command {
        if cli.connect.is_some() {
            eprintln!("mavfs: serve: --connect attaches a client; `serve` is the daemon itself");
            return 2;
        }
        let socket = socket
            .clone()
            .unwrap_or_else(daemon::socket::default_socket_path);
        return serve(&cli, &socket, *metrics).await;
    }
    let choice = match attach::choose(&cli, daemon::socket::socket_from_env()) {
        Ok(choice) => choice,
        Err(e) => {
            eprintln!("mavfs: {e}");
            return 2;
        }
    };
    let (engine, jobs) = match attach::attach(&choice).await {
        Err(e) => {
            eprintln!("mavfs: {e}");
            return 2;
        }
        // `-j` defaults to the engine's default; the daemon's config is its own.
        Ok(Some(remote)) => (engine::Engine::Remote(remote), mavfs_actors::DEFAULT_JOBS),
        Ok(None) => match start_embedded(&cli).await {
            Ok(started) => started,
            Err(code) => return code,
        },
    };
    let dashboard_interval = std::time::Duration::from_secs_f64(
        cli.dashboard_interval
            .unwrap_or(cli::DEFAULT_DASHBOARD_INTERVAL),
    );
    let options = SessionOptions {
        jobs,
        progress: false,
        json: cli.json,
        interactive: false,
        dashboard_interval,
    };
    let code = match &cli.command {
        None | Some(Command::Shell) => {
            let mut session = Session::new(engine.clone(), options);
            if std::io::stdin().is_terminal() {
                shell::interactive::run(&mut session).await
            } else {
                let stdin = std::io::BufReader::new(std::io::stdin());
                signals::until_terminated(shell::run_script(&mut session, stdin)).await
            }
        }
        Some(Command::Exec { lines }) => {
            let mut session = Session::new(engine.clone(), options);
            signals::until_terminated(shell::run_exec(&mut session, lines)).await
        }
        Some(Command::Dashboard) => dashboard::main(&engine, dashboard_interval, cli.json).await,
        Some(Command::Events) => events::run(&engine, cli.json).await,
        Some(Command::Bench) => match bench::Settings::from_cli(&cli) {
            Ok(settings) => bench::run(&engine, settings).await,
            Err(e) => {
                eprintln!("mavfs: bench: {e}");
                2
            }
        },
        Some(Command::Serve { .. }) => unreachable!("served above"),
    };
    engine.shutdown().await;
    code
}

/// Loads the config and starts an engine in this process; errors are printed, with exit code 2.
async fn start_embedded(cli: &Cli) -> Result<(engine::Engine, usize), i32> {
    let config = hypervisor::load_config(cli).map_err(|e| {
        eprintln!("mavfs: {e}");
        2
    })?;
    let engine = hypervisor::start(&config).await.map_err(|e| {
        eprintln!("mavfs: {e}");
        2
    })?;
    Ok((engine, config.transfer.jobs))
}

/// `mavfs serve`: the engine of this process, served on `socket` until SIGINT or SIGTERM.
async fn serve(cli: &Cli, socket: &std::path::Path, metrics: Option<std::net::SocketAddr>) -> i32 {
    let (engine, _) = match start_embedded(cli).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    daemon::serve::run(engine, socket, metrics).await
}
