//! The real binary in a real terminal: a tmux pane (a pty) per test, driven with `send-keys` and
//! read with `capture-pane`. It covers what needs a terminal: the ratatui dashboard (`mavfs
//! dashboard` and the shell's `dashboard`), Ctrl-Z on a foreground transfer, and SIGTERM to the
//! interactive shell (the terminal restored, the shell ended cleanly). [`Tmux`] also serves
//! `names`, which checks how names are quoted on a terminal.
//!
//! Each test runs its own tmux server (`-L` with a name of its own) in the scratch directory of
//! its [`Mavfs`], with the same environment as [`Mavfs::command`], and kills it when done, also
//! on failure. Every wait polls the screen against a deadline. Without tmux the tests say so and
//! pass.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Mavfs, signal};

/// How long any one screen may take to appear: generous, for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A pane command's tail that prints the terminal's line discipline once mavfs has exited:
/// `tty: icanon echo` when the terminal was restored, `tty: -icanon -echo` when left raw.
const TTY_MODE: &str =
    r#"echo "tty: $(stty -a | tr ' ;' '\n\n' | grep -E '^-?(icanon|echo)$' | tr '\n' ' ')""#;

/// A tmux server with one 120x40 window running one command.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `mavfs <args>` in a pane in `m`'s scratch directory, or `None` when tmux is
    /// missing.
    fn start(m: &Mavfs, args: &str) -> Option<Tmux> {
        Self::start_in(m, &Self::mavfs_command(m, args))
    }

    /// `mavfs <args>`, then `exited CODE`.
    fn mavfs_command(m: &Mavfs, args: &str) -> String {
        format!("{}; echo \"exited $?\"", Self::mavfs(m, args))
    }

    /// `mavfs <args>` with the environment of `Mavfs::command`, so that no user config, history
    /// or daemon leaks in (`env`, because a tmux server starts panes from its own environment).
    pub(crate) fn mavfs(m: &Mavfs, args: &str) -> String {
        format!(
            "env -u MAVFS_SOCKET -u RUST_LOG HOME={home} XDG_CONFIG_HOME={home}/xdg \
             XDG_STATE_HOME={home}/state XDG_RUNTIME_DIR={home}/run {bin} {args}",
            home = quote(m.path()),
            bin = quote(Path::new(env!("CARGO_BIN_EXE_mavfs"))),
        )
    }

    /// Starts the shell command `command` in a pane in `m`'s scratch directory, or `None` when
    /// tmux is missing.
    pub(crate) fn start_in(m: &Mavfs, command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("tmux is not installed: skipping the terminal test");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "mavfs-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmux = Tmux { socket };
        let dir = m.path();
        // The pane stays after the command ends, to show how it ended.
        let command = format!("{command}; exec cat");
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            dir.to_str().unwrap(),
            &command,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Sends keys as tmux names them (`Enter`, `C-z`, `q`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    /// Types `line` literally, then Enter.
    fn line(&self, line: &str) {
        assert!(
            self.run(&["send-keys", "-t", "0", "-l", line])
                .status
                .success()
        );
        self.keys(&["Enter"]);
    }

    /// The pid of the process the pane's shell is running (mavfs, started by `env`).
    fn child_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", "0", "#{pane_pid}"]);
        let pane = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let children = std::fs::read_to_string(format!("/proc/{pane}/task/{pane}/children"))
            .unwrap_or_else(|e| panic!("children of the pane's shell {pane}: {e}"));
        let child = children.split_whitespace().next();
        child
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("the pane's shell {pane} runs no child: {children:?}"))
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "0"]).stdout).into_owned()
    }

    /// The screen with the lines scrolled off it (up to 1000).
    pub(crate) fn history(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", "0", "-S", "-1000"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `done`; returns it. Panics with the screen at the
    /// deadline.
    #[track_caller]
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {DEADLINE:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen holds `needle`.
    #[track_caller]
    pub(crate) fn wait_text(&self, needle: &str) -> String {
        self.wait_for(needle, |s| s.contains(needle))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// `path` quoted for the pane's `sh -c`.
pub(crate) fn quote(path: &Path) -> String {
    format!("'{}'", path.to_str().unwrap().replace('\'', r"'\''"))
}

/// A sparse file of `mib` MiB at the root of `/vdisk`: it costs no disk, and pulled with a limit
/// it takes as long as the test needs.
fn big_file(m: &Mavfs, mib: u64) {
    std::fs::create_dir_all(m.block_dir()).unwrap();
    std::fs::File::create(m.block_dir().join("big"))
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
}

/// Starts `mavfs shell` in a pane that prints how mavfs exited and then the terminal's mode,
/// with `/vram/big` (`mib` MiB) pulled and a `push --bwlimit 4MiB/s` of it to `/vdisk/out`
/// started in the background as job 2; or `None` without tmux.
fn shell_pushing_in_the_background(m: &Mavfs, mib: u64) -> Option<Tmux> {
    big_file(m, mib);
    let command = format!("{}; {TTY_MODE}", Tmux::mavfs_command(m, "shell"));
    let tmux = Tmux::start_in(m, &command)?;
    tmux.wait_text("mavfs:/vram$");
    tmux.line("pull /vdisk/big /vram/big");
    tmux.wait_text("pull: 1 file");
    tmux.line("push --bwlimit 4MiB/s /vram/big /vdisk/out &");
    tmux.wait_text("[2] push --bwlimit 4MiB/s /vram/big /vdisk/out");
    Some(tmux)
}

/// Whether the disk store's staging directory holds a temp file with bytes in it: a transfer to
/// `/vdisk` is under way.
fn staging_has_bytes(m: &Mavfs) -> bool {
    let Ok(sessions) = std::fs::read_dir(m.block_dir().join(".mavfs-staging")) else {
        return false;
    };
    sessions
        .flatten()
        .filter_map(|session| std::fs::read_dir(session.path()).ok())
        .flatten()
        .flatten()
        .any(|temp| temp.metadata().is_ok_and(|meta| meta.len() > 0))
}

/// Asserts that `/vdisk` holds only `big` and an empty staging directory: the cancelled push
/// left neither `out` nor a temp file.
#[track_caller]
fn assert_nothing_partial(m: &Mavfs) {
    let mut names: Vec<String> = std::fs::read_dir(m.block_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".mavfs-staging", "big"]);
    let staged: Vec<_> = std::fs::read_dir(m.block_dir().join(".mavfs-staging"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(staged.is_empty(), "left in staging: {staged:?}");
}

/// The screen's line of job `%id` in the dashboard's job table.
fn job_row(screen: &str, id: u32) -> Option<&str> {
    let tag = format!("%{id} ");
    screen.lines().find(|l| l.contains(&tag))
}

#[test]
fn the_shell_dashboard_watches_a_background_job_to_done_and_q_returns() {
    let m = Mavfs::new();
    big_file(&m, 48);
    let Some(tmux) = Tmux::start(&m, "shell") else {
        return;
    };
    tmux.wait_text("mavfs:/vram$");
    tmux.line("pull --bwlimit 32MiB/s /vdisk/big /vram/big &");
    tmux.wait_text("[1] pull --bwlimit 32MiB/s /vdisk/big /vram/big");
    tmux.line("dashboard");
    tmux.wait_for("the job running in the dashboard", |s| {
        s.contains(" tiers ") && job_row(s, 1).is_some_and(|r| r.contains("running"))
    });
    let screen = tmux.wait_for("the job's row at 100% and done", |s| {
        job_row(s, 1).is_some_and(|r| r.contains("done") && r.contains("100%"))
    });
    assert!(screen.contains("[1] done"), "the event log:\n{screen}");
    tmux.keys(&["q"]);
    // Back at the prompt, which reports the job's end first.
    let screen = tmux.wait_text("[1]+ Done pull --bwlimit 32MiB/s /vdisk/big /vram/big");
    assert!(!screen.contains(" tiers "), "the view is gone:\n{screen}");
    tmux.line("ls -l /vram");
    tmux.wait_for("the pulled file", |s| {
        s.lines()
            .any(|l| l.ends_with(" big") && l.contains(&(48u64 << 20).to_string()))
    });
    tmux.line("exit");
    tmux.wait_text("exited 0");
}

#[test]
fn q_quits_mavfs_dashboard_and_restores_the_terminal() {
    let m = Mavfs::new();
    let Some(tmux) = Tmux::start(&m, "dashboard --dashboard-interval 0.2") else {
        return;
    };
    // The footer is drawn last: a whole frame is on the screen, not one caught mid-draw.
    let screen = tmux.wait_text("q quit");
    assert!(
        screen.contains(" tiers ") && screen.contains("/vram") && screen.contains("/vdisk"),
        "{screen}"
    );
    assert!(screen.contains(" jobs (0) "), "{screen}");
    tmux.keys(&["q"]);
    let screen = tmux.wait_text("exited 0");
    // The alternate screen is gone: only the exit line is left.
    assert!(!screen.contains(" tiers "), "{screen}");
}

#[test]
fn sigterm_in_the_shell_dashboard_restores_the_terminal_and_ends_the_shell_cleanly() {
    let m = Mavfs::new();
    let Some(tmux) = shell_pushing_in_the_background(&m, 48) else {
        return;
    };
    tmux.line("dashboard");
    tmux.wait_for("the push moving bytes in the dashboard", |s| {
        job_row(s, 2).is_some_and(|r| r.contains("running") && !r.contains(" 0 B/"))
    });
    signal(tmux.child_pid(), "TERM");
    let screen = tmux.wait_text("exited 0");
    assert!(!screen.contains(" tiers "), "the view is gone:\n{screen}");
    tmux.wait_text("tty: icanon echo");
    // The embedded engine cancelled the push and cleaned up before the process exited.
    assert_nothing_partial(&m);
}

#[test]
fn sigterm_at_the_prompt_ends_the_shell_cleanly_and_keeps_the_history() {
    let m = Mavfs::new();
    let Some(tmux) = shell_pushing_in_the_background(&m, 48) else {
        return;
    };
    // A line half typed: never run.
    tmux.keys(&["-l", "echo never"]);
    let deadline = Instant::now() + DEADLINE;
    while !staging_has_bytes(&m) {
        assert!(Instant::now() < deadline, "the push never wrote to /vdisk");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(tmux.child_pid(), "TERM");
    let screen = tmux.wait_text("exited 0");
    assert!(!screen.lines().any(|l| l == "never"), "{screen}");
    tmux.wait_text("tty: icanon echo");
    assert_nothing_partial(&m);
    let history = std::fs::read_to_string(m.path().join("state/mavfs/history")).unwrap();
    assert!(
        history.contains("push --bwlimit 4MiB/s /vram/big /vdisk/out &"),
        "{history}"
    );
}

#[test]
fn ctrl_z_stops_a_foreground_pull_and_bg_continues_it() {
    let m = Mavfs::new();
    big_file(&m, 64);
    let Some(tmux) = Tmux::start(&m, "shell") else {
        return;
    };
    tmux.wait_text("mavfs:/vram$");
    let label = "pull --bwlimit 8MiB/s /vdisk/big /vram/big";
    // Eight seconds at the limit: room for two Ctrl-Z and their screens on a loaded machine.
    tmux.line(label);
    // The bar shows once bytes move: the transfer runs, and with it the catching of Ctrl-Z.
    tmux.wait_for("the progress bar under way", |s| {
        s.lines()
            .any(|l| l.starts_with('[') && l.contains("MiB/64.00 MiB") && !l.contains(" 0 B/"))
    });
    tmux.keys(&["C-z"]);
    tmux.wait_text(&format!("[1]+ Stopped {label}"));
    tmux.wait_for("the prompt back", |s| {
        s.lines()
            .last_non_empty()
            .is_some_and(|l| l == "mavfs:/vram$")
    });
    tmux.line("jobs");
    tmux.wait_for("the job listed as stopped", |s| {
        s.lines()
            .any(|l| l.starts_with("[1]") && l.contains("stopped") && l.contains(label))
    });
    // fg continues it in the foreground, with its bar; a second Ctrl-Z stops it again.
    tmux.keys(&["C-l"]);
    tmux.line("fg %1");
    tmux.wait_for("the bar again", |s| {
        s.lines()
            .any(|l| l.starts_with('[') && l.contains("MiB/64.00 MiB"))
    });
    tmux.keys(&["C-z"]);
    tmux.wait_text(&format!("[1]+ Stopped {label}"));
    tmux.line("bg %1");
    tmux.wait_text(&format!("[1]+ {label} &"));
    tmux.line("wait");
    tmux.wait_text(&format!("[1]+ Done {label}"));
    tmux.line("ls -l /vram");
    tmux.wait_for("the whole file pulled", |s| {
        s.lines()
            .any(|l| l.ends_with(" big") && l.contains(&(64u64 << 20).to_string()))
    });
    tmux.line("exit");
    tmux.wait_text("exited 0");
}

#[test]
fn ctrl_z_at_the_prompt_stops_the_shell_and_fg_brings_back_the_line() {
    let m = Mavfs::new();
    big_file(&m, 1);
    // bash as the job-control shell around mavfs.
    let Some(tmux) = Tmux::start_in(&m, "bash --norc --noprofile -i") else {
        return;
    };
    tmux.line("PS1='bash$ '");
    tmux.line(&Tmux::mavfs(&m, "shell"));
    tmux.wait_text("mavfs:/vram$");
    // A transfer first, so that the process catches SIGTSTP from then on.
    tmux.line("pull /vdisk/big /vram/big");
    tmux.wait_text("pull: 1 file");
    // A line half typed, then Ctrl-Z at the prompt.
    tmux.keys(&["-l", "echo kept"]);
    tmux.keys(&["C-z"]);
    tmux.wait_for("bash reporting mavfs stopped", |s| {
        s.contains("Stopped") && s.lines().last_non_empty() == Some("bash$")
    });
    tmux.line("fg");
    tmux.wait_for("the prompt back with the line", |s| {
        s.lines().last_non_empty() == Some("mavfs:/vram$ echo kept")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the line run", |s| s.lines().any(|l| l == "kept"));
    tmux.line("exit");
    tmux.wait_for("back in bash", |s| {
        s.lines().last_non_empty() == Some("bash$")
    });
}

/// The last line of a screen that is not blank.
trait LastNonEmpty<'a> {
    fn last_non_empty(self) -> Option<&'a str>;
}

impl<'a, I: DoubleEndedIterator<Item = &'a str>> LastNonEmpty<'a> for I {
    fn last_non_empty(mut self) -> Option<&'a str> {
        self.rfind(|l| !l.trim().is_empty()).map(str::trim_end)
    }
}
