//! The shell's commands: one dispatch table, one file per group of related commands.
//!
//! Every command takes the session, its arguments (without its name) and an [`Output`], and
//! returns a [`Status`] or a [`CmdError`]. A command with several operands (`rm a b`, `cat a b`)
//! reports each failing operand itself, goes on with the rest, and fails at the end, as coreutils
//! does.

mod cat;
mod fs;
mod help;
mod info;
mod jobs;
mod nav;
pub mod transfer;

use std::collections::BTreeSet;

use super::output::{Output, OutputError};
use super::{CmdError, Session, Status};

/// One command's entry in the table: its name, usage line and summary (for `help`).
pub struct Spec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "pwd",
        usage: "pwd",
        summary: "print the current directory",
    },
    Spec {
        name: "cd",
        usage: "cd [path]",
        summary: "change directory (alone: to the first mount)",
    },
    Spec {
        name: "ls",
        usage: "ls [-l] [path...]",
        summary: "list a directory; -l adds kind, size, time and tier",
    },
    Spec {
        name: "mkdir",
        usage: "mkdir [-p] path...",
        summary: "create directories; -p creates parents, accepts existing",
    },
    Spec {
        name: "touch",
        usage: "touch path...",
        summary: "create empty files or update their times",
    },
    Spec {
        name: "rm",
        usage: "rm [-r] [-f] path...",
        summary: "remove files; -r directories too; -f ignores missing",
    },
    Spec {
        name: "cp",
        usage: "cp [-r] [-j N] src... dst",
        summary: "copy files (-r: trees) between any mounts",
    },
    Spec {
        name: "mv",
        usage: "mv [-j N] src... dst",
        summary: "move or rename files and trees between any mounts",
    },
    Spec {
        name: "push",
        usage: "push [-j N] src dst",
        summary: "copy a file or tree from a hot mount to a cold one",
    },
    Spec {
        name: "pull",
        usage: "pull [-j N] src dst",
        summary: "copy a file or tree from a cold mount to a hot one",
    },
    Spec {
        name: "cat",
        usage: "cat path...",
        summary: "write files' bytes to the output",
    },
    Spec {
        name: "echo",
        usage: "echo [-n] text...",
        summary: "write text (redirect with > or >>)",
    },
    Spec {
        name: "stat",
        usage: "stat path...",
        summary: "show an entry's metadata",
    },
    Spec {
        name: "du",
        usage: "du [-s] [-h] [path...]",
        summary: "bytes used under each directory; -s total only",
    },
    Spec {
        name: "tree",
        usage: "tree [path]",
        summary: "show a directory tree",
    },
    Spec {
        name: "stats",
        usage: "stats",
        summary: "files, directories and bytes per mount",
    },
    Spec {
        name: "mounts",
        usage: "mounts",
        summary: "list the mounts",
    },
    Spec {
        name: "help",
        usage: "help [command]",
        summary: "list commands, or show one command's usage",
    },
    Spec {
        name: "exit",
        usage: "exit [code]",
        summary: "leave the shell",
    },
];

/// Runs `argv` (name first) in `session`.
pub async fn run(
    session: &mut Session,
    argv: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let (name, args) = (argv[0].as_str(), &argv[1..]);
    match name {
        "pwd" => nav::pwd(session, args, out).await,
        "cd" => nav::cd(session, args).await,
        "exit" => nav::exit(args),
        "ls" => info::ls(session, args, out).await,
        "stat" => info::stat(session, args, out).await,
        "du" => info::du(session, args, out).await,
        "tree" => info::tree(session, args, out).await,
        "stats" => info::stats(session, args, out).await,
        "mounts" => info::mounts(session, args, out).await,
        "mkdir" => fs::mkdir(session, args).await,
        "touch" => fs::touch(session, args).await,
        "rm" => fs::rm(session, args).await,
        "cat" => cat::cat(session, args, out).await,
        "echo" => cat::echo(args, out).await,
        "cp" | "mv" | "push" | "pull" => transfer::run(session, argv).await,
        "jobs" => jobs::jobs(session, args, out).await,
        "wait" => jobs::wait(session, args).await,
        "fg" => jobs::fg(session, args).await,
        "kill" => jobs::kill(session, args).await,
        "help" => help::help(args, out).await,
        _ => Err(CmdError::Usage("command not found (try help)".into())),
    }
}

/// Options and operands of one command line, parsed getopt-style: flags may be grouped (`-rf`),
/// a value may follow its flag joined or apart (`-j4`, `-j 4`), and `--` ends the options.
pub struct Opts {
    flags: BTreeSet<char>,
    values: Vec<(char, String)>,
    pub operands: Vec<String>,
}

impl Opts {
    /// Parses `args`, allowing the flags in `flags` and the value-taking options in `valued`.
    /// Errors: `Usage` naming an unknown option or a missing value.
    pub fn parse(args: &[String], flags: &str, valued: &str) -> Result<Opts, CmdError> {
        let mut opts = Opts {
            flags: BTreeSet::new(),
            values: Vec::new(),
            operands: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if arg == "--" {
                opts.operands.extend(iter.cloned());
                break;
            }
            let Some(group) = arg.strip_prefix('-').filter(|g| !g.is_empty()) else {
                opts.operands.push(arg.clone());
                continue;
            };
            for (i, c) in group.char_indices() {
                if valued.contains(c) {
                    let rest = &group[i + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        iter.next().cloned().ok_or_else(|| {
                            CmdError::Usage(format!("option requires an argument -- '{c}'"))
                        })?
                    } else {
                        rest.to_string()
                    };
                    opts.values.push((c, value));
                    break;
                } else if flags.contains(c) {
                    opts.flags.insert(c);
                } else {
                    return Err(CmdError::Usage(format!("invalid option -- '{c}'")));
                }
            }
        }
        Ok(opts)
    }

    pub fn has(&self, flag: char) -> bool {
        self.flags.contains(&flag)
    }

    /// The last value given for option `c`.
    pub fn value(&self, c: char) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
    }

    /// Errors with `missing operand` when there are fewer than `n` operands.
    pub fn need(&self, n: usize) -> Result<(), CmdError> {
        if self.operands.len() < n {
            return Err(CmdError::Usage("missing operand".into()));
        }
        Ok(())
    }
}

/// The coreutils rule for a command with several operands (`ls a b`, `cat a b`): a failing
/// operand is reported as `mavfs: <command>: <path>: <reason>` and the rest still run; the
/// command fails at the end if any did. An output error stops the command at once, since no later
/// operand could be written either: a closed stdout (`| head`) ends it quietly unless an operand
/// had failed.
///
/// The command keeps the loop and feeds each operand's result to [`OperandRun::record`]. (A
/// runner taking the per-operand step as an async closure reads better, but today's compiler
/// cannot prove its future `Send` for the command table.)
struct OperandRun {
    command: &'static str,
    failed: bool,
}

impl OperandRun {
    fn new(command: &'static str) -> Self {
        OperandRun {
            command,
            failed: false,
        }
    }

    /// Takes one operand's result: a failure is reported and the run goes on. Errors: the output
    /// error that ends the command, or `Reported` if the output closed after a failure.
    fn record(&mut self, result: Result<(), CmdError>) -> Result<(), CmdError> {
        match result {
            Ok(()) => Ok(()),
            Err(CmdError::Output(OutputError::Closed)) if self.failed => Err(CmdError::Reported),
            Err(e @ CmdError::Output(_)) => Err(e),
            Err(e) => {
                super::report(self.command, &e);
                self.failed = true;
                Ok(())
            }
        }
    }

    /// Success, or `Reported` if any operand failed.
    fn finish(self) -> Result<Status, CmdError> {
        if self.failed {
            Err(CmdError::Reported)
        } else {
            Ok(Status::Success)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn getopt_groups_values_and_double_dash() {
        let o = Opts::parse(&args(&["-rf", "-j4", "a", "--", "-b"]), "rf", "j").unwrap();
        assert!(o.has('r') && o.has('f'));
        assert_eq!(o.value('j'), Some("4"));
        assert_eq!(o.operands, ["a", "-b"]);
        let o = Opts::parse(&args(&["-j", "2", "-", "x"]), "", "j").unwrap();
        assert_eq!(o.value('j'), Some("2"));
        assert_eq!(o.operands, ["-", "x"]);
        assert!(Opts::parse(&args(&["-x"]), "r", "").is_err());
        assert!(Opts::parse(&args(&["-j"]), "", "j").is_err());
    }
}
