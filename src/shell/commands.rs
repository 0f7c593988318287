//! The shell's command set: one table, [`COMMANDS`], and one file per group of related commands.
//!
//! The table is the one list of commands. Dispatch ([`run`]), `help` (the list and `help CMD`),
//! Tab completion of command names and the check that only transfers run in the background with
//! `&` all read it, so a command cannot be dispatched yet missing from `help`. Adding a command is
//! one [`Spec`] here and its handler in the file of its group.
//!
//! Every handler takes the session, its arguments (without its name) and an [`Output`], and
//! returns a [`Status`] or a [`CmdError`]. A command with several operands (`rm a b`, `cat a b`)
//! goes through [`OperandRun`], which reports each failing operand, goes on with the rest,
//! and fails at the end, as coreutils does.

mod cat;
mod dashboard;
mod fs;
mod help;
mod info;
mod jobs;
mod ls;
mod nav;
pub mod transfer;

use std::collections::BTreeSet;

use futures::future::BoxFuture;

use super::output::{Output, OutputError};
use super::{CmdError, Session, Status};

/// A command's handler: the session, the arguments after the command's name, and the output.
/// The future is boxed so that handlers of different shapes fit one table.
pub type Handler = for<'a> fn(
    &'a mut Session,
    &'a [String],
    &'a mut Output,
) -> BoxFuture<'a, Result<Status, CmdError>>;

/// One command's entry in the table.
pub struct Spec {
    pub name: &'static str,
    /// The usage line `help` shows; it starts with the name.
    pub usage: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// Whether the command may run as a background job with `&`: only transfers, whose
    /// arguments [`transfer::request`] turns into a job.
    pub background: bool,
    pub run: Handler,
}

/// Every command, in the order `help` lists them.
// A `static`, not a `const`: `help` reads the table, so checking a const would need the type of
// `help`'s future, which needs the const checked first (a cycle rustc rejects).
pub static COMMANDS: &[Spec] = &[
    Spec {
        name: "pwd",
        usage: "pwd",
        summary: "print the current directory",
        background: false,
        run: |s, a, o| Box::pin(nav::pwd(s, a, o)),
    },
    Spec {
        name: "cd",
        usage: "cd [path]",
        summary: "change directory (alone: to the first mount)",
        background: false,
        run: |s, a, _| Box::pin(nav::cd(s, a)),
    },
    Spec {
        name: "ls",
        usage: "ls [-l] [-U] [-b|-N] [-q] [path...]",
        summary: "list a directory; -l adds kind, size, time and tier; -U unsorted, streamed",
        background: false,
        run: |s, a, o| Box::pin(ls::ls(s, a, o)),
    },
    Spec {
        name: "mkdir",
        usage: "mkdir [-p] path...",
        summary: "create directories; -p creates parents, accepts existing",
        background: false,
        run: |s, a, _| Box::pin(fs::mkdir(s, a)),
    },
    Spec {
        name: "touch",
        usage: "touch path...",
        summary: "create empty files or update their times",
        background: false,
        run: |s, a, _| Box::pin(fs::touch(s, a)),
    },
    Spec {
        name: "rm",
        usage: "rm [-r] [-f] path...",
        summary: "remove files; -r directories too; -f ignores missing",
        background: false,
        run: |s, a, _| Box::pin(fs::rm(s, a)),
    },
    Spec {
        name: "cp",
        usage: "cp [-r] [-j N] src... dst",
        summary: "copy files (-r: trees) between any mounts",
        background: true,
        run: |s, a, o| Box::pin(transfer::run(s, "cp", a, o)),
    },
    Spec {
        name: "mv",
        usage: "mv [-j N] src... dst",
        summary: "move or rename files and trees between any mounts",
        background: true,
        run: |s, a, o| Box::pin(transfer::run(s, "mv", a, o)),
    },
    Spec {
        name: "push",
        usage: "push [-j N] src dst",
        summary: "copy a file or tree from a hot mount to a cold one",
        background: true,
        run: |s, a, o| Box::pin(transfer::run(s, "push", a, o)),
    },
    Spec {
        name: "pull",
        usage: "pull [-j N] src dst",
        summary: "copy a file or tree from a cold mount to a hot one",
        background: true,
        run: |s, a, o| Box::pin(transfer::run(s, "pull", a, o)),
    },
    Spec {
        name: "jobs",
        usage: "jobs [--json]",
        summary: "list transfer jobs, running or ended, with their counts",
        background: false,
        run: |s, a, o| Box::pin(jobs::jobs(s, a, o)),
    },
    Spec {
        name: "wait",
        usage: "wait [%N...]",
        summary: "wait for jobs (alone: every background job of this shell)",
        background: false,
        run: |s, a, _| Box::pin(jobs::wait(s, a)),
    },
    Spec {
        name: "fg",
        usage: "fg [%N]",
        summary: "bring a job to the foreground (alone: the latest)",
        background: false,
        run: |s, a, _| Box::pin(jobs::fg(s, a)),
    },
    Spec {
        name: "kill",
        usage: "kill %N...",
        summary: "cancel jobs (kill -STOP %N: suspend, kill -CONT %N: continue)",
        background: false,
        run: |s, a, _| Box::pin(jobs::kill(s, a)),
    },
    Spec {
        name: "stop",
        usage: "stop %N...",
        summary: "suspend jobs: they move nothing until bg or fg",
        background: false,
        run: |s, a, _| Box::pin(jobs::stop(s, a)),
    },
    Spec {
        name: "bg",
        usage: "bg [%N...]",
        summary: "continue suspended jobs in the background (alone: the latest)",
        background: false,
        run: |s, a, _| Box::pin(jobs::bg(s, a)),
    },
    Spec {
        name: "throttle",
        usage: "throttle %N|all RATE|off, throttle %N -j N",
        summary: "limit a job's or all jobs' bytes per second (50MiB/s), or a job's files at once",
        background: false,
        run: |s, a, _| Box::pin(jobs::throttle(s, a)),
    },
    Spec {
        name: "cat",
        usage: "cat path...",
        summary: "write files' bytes to the output",
        background: false,
        run: |s, a, o| Box::pin(cat::cat(s, a, o)),
    },
    Spec {
        name: "echo",
        usage: "echo [-n] text...",
        summary: "write text (redirect with > or >>)",
        background: false,
        run: |_, a, o| Box::pin(cat::echo(a, o)),
    },
    Spec {
        name: "stat",
        usage: "stat [--json] path...",
        summary: "show an entry's metadata",
        background: false,
        run: |s, a, o| Box::pin(info::stat(s, a, o)),
    },
    Spec {
        name: "du",
        usage: "du [-s] [-h] [path...]",
        summary: "bytes used under each directory; -s total only",
        background: false,
        run: |s, a, o| Box::pin(info::du(s, a, o)),
    },
    Spec {
        name: "tree",
        usage: "tree [path]",
        summary: "show a directory tree",
        background: false,
        run: |s, a, o| Box::pin(info::tree(s, a, o)),
    },
    Spec {
        name: "stats",
        usage: "stats [--json]",
        summary: "files, directories and bytes per mount",
        background: false,
        run: |s, a, o| Box::pin(info::stats(s, a, o)),
    },
    Spec {
        name: "mounts",
        usage: "mounts [--json]",
        summary: "list the mounts",
        background: false,
        run: |s, a, o| Box::pin(info::mounts(s, a, o)),
    },
    Spec {
        name: "dashboard",
        usage: "dashboard",
        summary: "live view of tiers and jobs (interactive shell only; q returns)",
        background: false,
        run: |s, a, o| Box::pin(dashboard::dashboard(s, a, o)),
    },
    Spec {
        name: "help",
        usage: "help [command]",
        summary: "list commands, or show one command's usage",
        background: false,
        run: |_, a, o| Box::pin(help::help(a, o)),
    },
    Spec {
        name: "exit",
        usage: "exit [code]",
        summary: "leave the shell",
        background: false,
        run: |_, a, _| Box::pin(std::future::ready(nav::exit(a))),
    },
];

/// The command called `name`.
pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Runs `argv` (name first) in `session`, in the foreground.
pub async fn run(
    session: &mut Session,
    argv: &[String],
    out: &mut Output,
) -> Result<Status, CmdError> {
    let spec =
        find(&argv[0]).ok_or_else(|| CmdError::Usage("command not found (try help)".into()))?;
    (spec.run)(session, &argv[1..], out).await
}

/// Takes `--json` out of `args` (up to a `--`): whether the command prints JSON, given there or
/// for the whole session (`mavfs --json`). Machine-readable output is the serde form of the
/// engine's own types, one document per command, compact on one line: its field names are the
/// stable interface README documents.
pub fn json_flag(session: &Session, args: &[String]) -> (Vec<String>, bool) {
    let mut json = session.options().json;
    let mut rest = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            rest.push(arg.clone());
            rest.extend(iter.cloned());
            break;
        }
        if arg == "--json" {
            json = true;
        } else {
            rest.push(arg.clone());
        }
    }
    (rest, json)
}

/// Writes `value` as one line of compact JSON.
pub async fn json_line<T: serde::Serialize + ?Sized>(
    out: &mut Output,
    value: &T,
) -> Result<(), CmdError> {
    // The engine's types serialise infallibly (no maps with non-string keys, no custom errors).
    let text = serde_json::to_string(value).expect("seam types serialise");
    Ok(out.line(&text).await?)
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
    fn every_command_has_help_text_and_completes() {
        let listing = help::listing();
        for spec in COMMANDS {
            let name = spec.name;
            assert_eq!(spec.usage.split(' ').next(), Some(name), "{name}: usage");
            assert!(!spec.summary.is_empty(), "{name}: summary");
            assert!(
                listing
                    .lines()
                    .any(|l| l.starts_with(spec.usage) && l.ends_with(spec.summary)),
                "{name}: missing from help"
            );
            let found = find(name).expect(name);
            assert!(std::ptr::eq(found, spec), "{name}: named twice");
            assert!(help::usage(found).starts_with(&format!("usage: {name}")));
            for prefix in ["", &name[..1], name] {
                assert!(
                    crate::shell::interactive::complete_command(prefix)
                        .iter()
                        .any(|p| p.replacement == format!("{name} ")),
                    "{name}: not completed from {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn only_transfers_run_in_the_background() {
        let background: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.background)
            .map(|c| c.name)
            .collect();
        assert_eq!(background, ["cp", "mv", "push", "pull"]);
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
