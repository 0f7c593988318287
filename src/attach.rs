//! Which engine a front end gets: a daemon's, attached through its socket, or one of its own.
//!
//! The rules (DESIGN.md section 8):
//! - `--connect[=PATH]` or `MAVFS_SOCKET` attach, or fail clearly (exit 2); `--connect` with a
//!   mount-defining option (`-c`, `--ram`, `--disk-dir`, `--redis-*`) is a usage error naming
//!   them, since those configure an engine of this process. `MAVFS_SOCKET` yields to them: it is
//!   an environment default, not a request made on this command line.
//! - `--embedded` always runs the engine in this process.
//! - Otherwise a front end attaches when a daemon answers on the default socket and no
//!   mount-defining option was given, and runs embedded when none does.

use std::path::PathBuf;

use crate::cli::Cli;
use crate::daemon::client::Remote;
use crate::daemon::socket;

/// What to run over.
#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    /// An engine in this process.
    Embedded,
    /// The daemon at this socket; `required` when the user asked for it.
    Attach {
        /// The socket.
        socket: PathBuf,
        /// Whether failing to attach is an error (rather than a reason to run embedded).
        required: bool,
    },
}

/// Applies the rules to the command line and `MAVFS_SOCKET`. Errors: the usage error.
pub fn choose(cli: &Cli, env_socket: Option<PathBuf>) -> Result<Choice, String> {
    if cli.embedded {
        return Ok(Choice::Embedded);
    }
    let mount_options = cli.mount_options();
    if let Some(connect) = &cli.connect {
        if !mount_options.is_empty() {
            return Err(format!(
                "--connect cannot be combined with {}: they define the mounts of an engine in \
                 this process; give them to `mavfs serve` instead, or drop --connect",
                mount_options.join(", ")
            ));
        }
        let socket = connect.clone().unwrap_or_else(socket::default_socket_path);
        return Ok(Choice::Attach {
            socket,
            required: true,
        });
    }
    if !mount_options.is_empty() {
        return Ok(Choice::Embedded);
    }
    Ok(match env_socket {
        Some(socket) => Choice::Attach {
            socket,
            required: true,
        },
        None => Choice::Attach {
            socket: socket::default_socket_path(),
            required: false,
        },
    })
}

/// Attaches as `choice` says. `Ok(None)`: run embedded. Errors: a required attach failed.
pub async fn attach(choice: &Choice) -> Result<Option<Remote>, String> {
    let Choice::Attach { socket, required } = choice else {
        return Ok(None);
    };
    if !*required && !socket.exists() {
        return Ok(None);
    }
    match Remote::connect(socket).await {
        Ok(remote) => Ok(Some(remote)),
        Err(e) if *required => Err(format!("cannot attach to the daemon: {e}")),
        Err(e) => {
            tracing::debug!(error = %e, "no daemon on the default socket; running embedded");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("mavfs").chain(args.iter().copied()))
    }

    #[test]
    fn the_rules() {
        let env = Some(PathBuf::from("/env.sock"));
        assert_eq!(
            choose(&cli(&["--connect=/s", "shell"]), None).unwrap(),
            Choice::Attach {
                socket: "/s".into(),
                required: true
            }
        );
        assert!(matches!(
            choose(&cli(&["--connect", "shell"]), None).unwrap(),
            Choice::Attach { required: true, .. }
        ));
        let err = choose(
            &cli(&["--connect", "--disk-dir", "d", "-c", "x.toml"]),
            None,
        );
        let err = err.unwrap_err();
        assert!(err.contains("-c, --disk-dir"), "{err}");
        assert_eq!(
            choose(&cli(&["--embedded"]), env.clone()).unwrap(),
            Choice::Embedded
        );
        assert_eq!(
            choose(&cli(&["--ram", "dict"]), env.clone()).unwrap(),
            Choice::Embedded
        );
        assert_eq!(
            choose(&cli(&["exec", "ls"]), env.clone()).unwrap(),
            Choice::Attach {
                socket: "/env.sock".into(),
                required: true
            }
        );
        assert!(matches!(
            choose(&cli(&["exec", "ls"]), None).unwrap(),
            Choice::Attach {
                required: false,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["mavfs", "--connect", "--embedded"]).is_err());
    }
}
