//! `mavfs`: the binary. It parses the command line, loads the config, starts the engine and hands
//! over to a front end; it maps failures to exit codes (0 success, 1 a command failed, 2 usage or
//! config error).

mod bench;
mod cli;
mod config;
// Not wired to a command yet: `serve` lands with the daemon.
#[allow(dead_code)]
mod daemon;
mod engine;
mod hypervisor;
mod shell;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::shell::{Session, SessionOptions};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mavfs: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
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
    let config = match hypervisor::load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mavfs: {e}");
            return 2;
        }
    };
    let engine = match hypervisor::start(&config).await {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("mavfs: {e}");
            return 2;
        }
    };
    let options = SessionOptions {
        jobs: config.transfer.jobs,
        progress: false,
    };
    let code = match &cli.command {
        None | Some(Command::Shell) => {
            let mut session = Session::new(engine.clone(), options);
            if std::io::stdin().is_terminal() {
                shell::interactive::run(&mut session).await
            } else {
                shell::run_script(&mut session, std::io::BufReader::new(std::io::stdin())).await
            }
        }
        Some(Command::Exec { lines }) => {
            let mut session = Session::new(engine.clone(), options);
            shell::run_exec(&mut session, lines).await
        }
        Some(Command::Bench) => match bench::Settings::from_cli(&cli) {
            Ok(settings) => bench::run(&engine, settings).await,
            Err(e) => {
                eprintln!("mavfs: bench: {e}");
                2
            }
        },
    };
    engine.shutdown().await;
    code
}
