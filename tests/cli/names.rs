//! Hostile names (ESC and BEL sequences, newlines) on every store, through the real binary:
//! listings show them as GNU `ls` does (as they are off a terminal, quoted for the shell on
//! one, C escapes with `ls -b`), and no error message, on any output, lets a control character
//! through to the terminal.
//!
//! Each store gets the names from the shell (`touch`, `mkdir`); the disk root also gets one made
//! on the host, as a file dropped into a shared directory would be.

use std::fs;

use mavfs_test_support::redis::RedisServer;

use crate::harness::Mavfs;
use crate::tty::{Tmux, quote};

/// A name that would turn the terminal's text red.
const ESC: &str = "\x1b[31mred";
/// A name that would ring the bell.
const BEL: &str = "bell\x07";
/// A name that would make a listing of one name read as two.
const NL: &str = "a\nb";
/// A directory whose name would set the terminal's title.
const TITLE: &str = "d\x1b]0;pwned\x07";
/// A missing name that would clear the screen, for error messages.
const CLEAR: &str = "nope\x1b[2J";

/// Each name as GNU `ls` shows it on a terminal (`ls --quoting-style=shell-escape`, coreutils
/// 9.1), which is also how the shell reads it back (`$'...'`): the scripts type them so.
const SHOWN: &[(&str, &str)] = &[
    (ESC, "''$'\\033''[31mred'"),
    (BEL, "'bell'$'\\a'"),
    (NL, "'a'$'\\n''b'"),
    (TITLE, "'d'$'\\033'']0;pwned'$'\\a'"),
    (CLEAR, "'nope'$'\\033''[2J'"),
];

/// `name` as `ls` shows it on a terminal.
fn shown(name: &str) -> &'static str {
    SHOWN.iter().find(|(n, _)| *n == name).unwrap().1
}

/// One store under test: where it is mounted and the flags that mount it there.
struct Store {
    mount: &'static str,
    flags: Vec<String>,
    /// The Redis server behind a Redis store, stopped when the test ends.
    _server: Option<RedisServer>,
}

/// Memory, disk and (when redis-server is installed) Redis.
fn stores(what: &str) -> Vec<Store> {
    let mut stores = vec![
        Store {
            mount: "/vram",
            flags: Vec::new(),
            _server: None,
        },
        Store {
            mount: "/vdisk",
            flags: Vec::new(),
            _server: None,
        },
    ];
    if let Some(server) = RedisServer::start(what) {
        stores.push(Store {
            mount: "/vram",
            flags: vec![
                "--ram".into(),
                "redis".into(),
                "--redis-url".into(),
                server.url(),
            ],
            _server: Some(server),
        });
    }
    stores
}

impl Store {
    /// `mount/name` as typed in a shell line: the mount, then the name as `ls` shows it.
    fn path(&self, name: &str) -> String {
        format!("{}/{}", self.mount, shown(name))
    }

    /// The shell lines that create the hostile names, and a plain one.
    fn create(&self) -> Vec<String> {
        vec![
            format!(
                "touch {} {} {} {}/plain",
                self.path(ESC),
                self.path(BEL),
                self.path(NL),
                self.mount
            ),
            format!("mkdir -p {}", self.path(TITLE)),
        ]
    }

    /// Runs `mavfs <flags> exec` with the lines that create the names, then `line`: the
    /// memory store lives as long as the process.
    fn exec_after_create(&self, m: &Mavfs, line: &str) -> crate::harness::Run {
        let mut lines = self.create();
        lines.push(line.to_string());
        self.exec(m, &lines)
    }

    /// Runs `mavfs <flags> exec <lines>` in `m`.
    fn exec(&self, m: &Mavfs, lines: &[String]) -> crate::harness::Run {
        let mut args: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        args.push("exec");
        args.extend(lines.iter().map(String::as_str));
        m.run(&args)
    }
}

/// Asserts that `text` holds no ESC, BEL or other control character but newlines and tabs.
#[track_caller]
fn no_control(what: &str, text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{what} lets a control character through: {text:?}"
    );
}

#[test]
fn off_a_terminal_ls_lists_names_as_they_are_and_ls_b_escapes_them() {
    for store in stores("hostile names, off a terminal") {
        let m = Mavfs::new();
        let mut lines = store.create();
        let dir = store.mount;
        lines.extend([
            format!("ls {dir}"),
            format!("ls -b {dir}"),
            format!("ls --escape {dir}"),
            format!("ls -N {dir}"),
        ]);
        let out = store.exec(&m, &lines);
        let raw = format!("{ESC}\n{NL}\n{BEL}\n{TITLE}/\nplain\n");
        let escaped = "\\033[31mred\na\\nb\nbell\\a\nd\\033]0;pwned\\a/\nplain\n";
        assert_eq!(
            out.ok(),
            format!("{raw}{escaped}{escaped}{raw}"),
            "{dir} {:?}",
            store.flags
        );
        no_control("stderr", &out.stderr);
    }
}

#[test]
fn error_messages_quote_names_whatever_the_output() {
    for store in stores("hostile names in error messages") {
        let m = Mavfs::new();
        let dir = store.mount;
        let lines = [
            format!("cat {}", store.path(CLEAR)),
            format!("mkdir {}", store.path(TITLE)),
            format!("cd {}", store.path(BEL)),
            format!("stat {}", store.path(NL)),
            format!("cp {} {dir}/copy &", store.path(BEL)),
        ];
        for line in &lines {
            let out = store.exec_after_create(&m, line);
            no_control(line, &out.stderr);
            no_control(line, &out.stdout);
        }
        let out = store.exec_after_create(&m, &lines[0]);
        out.fails(
            1,
            &format!("mavfs: cat: '{dir}/nope'$'\\033''[2J': No such file or directory"),
        );
        let out = store.exec_after_create(&m, &lines[1]);
        out.fails(
            1,
            &format!("mavfs: mkdir: '{dir}/d'$'\\033'']0;pwned'$'\\a': File exists"),
        );
        let out = store.exec_after_create(&m, &lines[2]);
        out.fails(
            1,
            &format!("mavfs: cd: '{dir}/bell'$'\\a': Not a directory"),
        );
        // stat quotes its name as coreutils' stat does, on a terminal or not.
        let out = store.exec_after_create(&m, &lines[3]);
        assert!(
            out.ok().contains(&format!("  File: '{dir}/a'$'\\n''b'\n")),
            "{}",
            out.stdout
        );
        // A job's label is the command as typed, with the name quoted.
        let out = store.exec_after_create(&m, &lines[4]);
        out.ok();
        assert!(
            out.stderr
                .contains(&format!("[1] cp '{dir}/bell'$'\\a' {dir}/copy\n")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_name_made_on_the_host_is_quoted_in_errors_about_it() {
    let m = Mavfs::new();
    let root = m.block_dir();
    fs::create_dir_all(root.join("host\x1b[2Jdir")).unwrap();
    fs::write(root.join("host\x1b[2Jdir/f"), "x").unwrap();
    let out = m.exec(&["rm '/vdisk/host\x1b[2Jdir'"]);
    out.fails(
        1,
        "mavfs: rm: '/vdisk/host'$'\\033''[2Jdir': Is a directory",
    );
    no_control("rm", &out.stderr);
    assert_eq!(m.exec(&["ls -b /vdisk"]).ok(), "host\\033[2Jdir/\n");
}

#[test]
fn a_long_mistyped_name_is_cut_in_the_error() {
    let m = Mavfs::new();
    let long = "x".repeat(1 << 16);
    let out = m.exec(&[&format!("cat /vram/{long}")]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.len() < 1024, "{} bytes", out.stderr.len());
    assert!(out.stderr.contains("xxx...: "), "{}", &out.stderr);
}

/// The screen of `mavfs <flags> shell < script` run in a terminal: stdout is the pane, as when a
/// user runs a script by hand.
fn on_a_terminal(m: &Mavfs, store: &Store, script: &[String]) -> Option<String> {
    let file = m.path().join("script");
    fs::write(&file, script.join("\n") + "\n").unwrap();
    let flags: Vec<String> = store
        .flags
        .iter()
        .map(|f| quote(std::path::Path::new(f)))
        .collect();
    let command = format!(
        "{} < {}; echo \"exited $?\"",
        Tmux::mavfs(m, &format!("{} shell", flags.join(" "))),
        quote(&file)
    );
    let tmux = Tmux::start_in(m, &command)?;
    tmux.wait_text("exited ");
    Some(tmux.history())
}

#[test]
fn on_a_terminal_listings_and_errors_quote_names_as_gnu_ls_does() {
    for store in stores("hostile names on a terminal") {
        let m = Mavfs::new();
        let dir = store.mount;
        let mut script = store.create();
        script.extend([
            format!("ls {dir}"),
            format!("ls -l {dir}"),
            format!("ls -N {dir}"),
            format!("tree {dir}"),
            format!("du {dir}"),
            format!("stat {}", store.path(NL)),
            format!("cat {}", store.path(CLEAR)),
            format!("cp {} {dir}/copy &", store.path(BEL)),
            "wait".to_string(),
            "jobs".to_string(),
        ]);
        let Some(screen) = on_a_terminal(&m, &store, &script) else {
            return;
        };
        let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
        let has = |line: &str| lines.contains(&line);
        let ends = |tail: &str| lines.iter().any(|l| l.ends_with(tail));
        // ls: one name a line, quoted.
        for name in ["''$'\\033''[31mred'", "'a'$'\\n''b'", "'bell'$'\\a'"] {
            assert!(has(name), "ls {name} on {dir}:\n{screen}");
        }
        assert!(has("'d'$'\\033'']0;pwned'$'\\a'/"), "{screen}");
        // ls -l: quoted names; the others aligned by a blank, as GNU's.
        assert!(ends(" 'a'$'\\n''b'"), "ls -l:\n{screen}");
        let column = |needle: &str| {
            lines
                .iter()
                .find(|l| l.starts_with("- ") && l.ends_with(needle))
                .map(|l| l.len() - needle.len())
        };
        let quoted = column("'a'$'\\n''b'").expect("ls -l of the quoted name");
        assert_eq!(
            column("plain"),
            Some(quoted + 1),
            "ls -l aligns plain names:\n{screen}"
        );
        // ls -N: control characters as `?`.
        assert!(
            has("?[31mred") && has("a?b") && has("bell?"),
            "ls -N:\n{screen}"
        );
        // tree, du and stat.
        assert!(has("├── 'a'$'\\n''b'"), "tree:\n{screen}");
        assert!(has("├── 'd'$'\\033'']0;pwned'$'\\a'/"), "tree:\n{screen}");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(&format!("'{dir}/d'$'\\033'']0;pwned'$'\\a'"))),
            "du:\n{screen}"
        );
        assert!(
            has(&format!("  File: '{dir}/a'$'\\n''b'")),
            "stat:\n{screen}"
        );
        // The error and the job's label.
        assert!(
            has(&format!(
                "mavfs: cat: '{dir}/nope'$'\\033''[2J': No such file or directory"
            )),
            "cat:\n{screen}"
        );
        assert!(
            ends(&format!("cp '{dir}/bell'$'\\a' {dir}/copy")),
            "jobs:\n{screen}"
        );
        assert!(has("exited 1"), "{screen}");
    }
}
