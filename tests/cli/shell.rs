//! Every shell command through the real binary, in `exec` and script mode.

use crate::harness;

use std::fs;

use harness::{Mavfs, Served};

#[test]
fn the_readme_example_pushes_a_tree_to_disk() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir -p /vram/a/b",
        "echo hi > /vram/a/b/f",
        "push /vram/a /vdisk/a",
        "cat /vdisk/a/b/f",
        "ls /vdisk/a/b",
    ]);
    assert_eq!(out.ok(), "hi\nf\n");
    assert_eq!(
        fs::read_to_string(m.block_dir().join("a/b/f")).unwrap(),
        "hi\n"
    );
}

#[test]
fn pwd_and_cd_with_relative_paths() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "pwd",
        "mkdir -p x/y",
        "cd x",
        "pwd",
        "cd y/../y/./",
        "pwd",
        "cd ../..",
        "pwd",
        "cd ..",
        "pwd",
        "cd /vdisk",
        "pwd",
        "cd",
        "pwd",
        "cd /",
        "ls",
    ]);
    assert_eq!(
        out.ok(),
        "/vram\n/vram/x\n/vram/x/y\n/vram\n/vram\n/vdisk\n/vram\nvdisk/\nvram/\n"
    );
}

#[test]
fn cd_refuses_files_and_missing_paths() {
    let m = Mavfs::new();
    m.exec(&["touch /vram/f", "cd /vram/f"])
        .fails(1, "mavfs: cd: /vram/f: Not a directory");
    m.exec(&["cd /vram/none"])
        .fails(1, "mavfs: cd: /vram/none: No such file or directory");
}

#[test]
fn ls_sorts_marks_directories_and_long_lists() {
    let m = Mavfs::new();
    let out = m.exec(&["mkdir /vram/b", "touch /vram/c /vram/a", "ls", "ls /vram/a"]);
    assert_eq!(out.ok(), "a\nb/\nc\n/vram/a\n");
    let out = m.exec(&["echo hello > /vram/f", "ls -l /vram"]);
    let line = out.ok().trim_end();
    assert!(line.starts_with("- "), "{line}");
    assert!(
        line.contains(" 6 ") && line.contains(" hot ") && line.ends_with(" f"),
        "{line}"
    );
    let out = m.exec(&["mkdir /vdisk/d", "ls -l /vdisk"]);
    let line = out.ok().trim_end();
    assert!(
        line.starts_with("d ") && line.contains(" cold ") && line.ends_with(" d/"),
        "{line}"
    );
    let out = m.exec(&["ls -l /"]);
    assert!(out.ok().contains(" hot  vram/"), "{}", out.stdout);
}

/// Files `e0000`.. of a directory on the host disk, more than one listing page holds.
fn big_dir(m: &Mavfs, n: usize) -> Vec<String> {
    let dir = m.block_dir().join("big");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut names: Vec<String> = (0..n).map(|i| format!("e{i:04}")).collect();
    for name in &names {
        std::fs::write(dir.join(name), b"x").unwrap();
    }
    names.push("sub/".to_string());
    names
}

#[test]
fn ls_unsorted_lists_every_entry_once_on_disk_memory_and_through_a_daemon() {
    let m = Mavfs::new();
    let want = big_dir(&m, 2500);
    let check = |out: &str, what: &str| {
        let mut got: Vec<&str> = out.lines().collect();
        got.sort_unstable();
        assert_eq!(got, want, "{what}");
    };
    check(m.exec(&["ls -U /vdisk/big"]).ok(), "disk");
    // Sorted and unsorted list the same entries.
    let sorted = m.exec(&["ls /vdisk/big"]);
    assert_eq!(sorted.ok().lines().collect::<Vec<_>>(), want);
    // The memory store lives as long as its process: one session, parts split by markers.
    let out = m.exec(&[
        "pull /vdisk/big /vram/big",
        "echo ==",
        "ls -U /vram/big",
        "echo ==",
        "ls -lU /vram/big",
    ]);
    let parts: Vec<&str> = out.ok().split("==\n").collect();
    check(parts[1], "memory");
    let lines: Vec<&str> = parts[2].lines().collect();
    assert_eq!(lines.len(), want.len());
    assert!(lines.iter().all(|l| l.contains(" hot ")), "{}", lines[0]);
    // A daemon serves pages of at most 256 entries: the listing still comes whole.
    let _served = Served::start(&m);
    m.exec(&["pull /vdisk/big /vram/big"]).ok();
    check(m.exec(&["ls -U /vram/big"]).ok(), "daemon");
    assert_eq!(
        m.exec(&["ls /vram/big"]).ok().lines().collect::<Vec<_>>(),
        want
    );
}

#[test]
fn ls_of_several_paths_reports_each_failure_and_goes_on() {
    let m = Mavfs::new();
    let out = m.exec(&["mkdir /vram/d", "touch /vram/d/x", "ls /vram/none /vram/d"]);
    out.fails(1, "mavfs: ls: /vram/none: No such file or directory");
    assert_eq!(out.stdout, "/vram/d:\nx\n");
}

#[test]
fn mkdir_touch_and_rm_follow_coreutils() {
    let m = Mavfs::new();
    m.exec(&["mkdir /vram/a/b"])
        .fails(1, "mavfs: mkdir: /vram/a/b: No such file or directory");
    m.exec(&["mkdir /vram/a", "mkdir /vram/a"])
        .fails(1, "/vram/a: File exists");
    let out = m.exec(&[
        "mkdir -p /vdisk/p/q",
        "mkdir -p /vdisk/p/q",
        "touch /vdisk/p/q/f",
        "rm /vdisk/p/q/f",
        "ls /vdisk/p/q",
    ]);
    assert_eq!(out.ok(), "");
    m.exec(&["mkdir -p /vram/d/e", "rm /vram/d"])
        .fails(1, "mavfs: rm: /vram/d: Is a directory");
    m.exec(&["rm /vram/none"])
        .fails(1, "No such file or directory");
    m.exec(&["rm -f /vram/none", "rm -rf /vram/d", "ls /vram"])
        .ok();
    assert!(!m.block_dir().join("p/q/f").exists());
}

#[test]
fn rm_refuses_mount_roots_and_the_root() {
    let m = Mavfs::new();
    m.exec(&["rm -r /vram"])
        .fails(1, "mavfs: rm: /vram: Device or resource busy");
    m.exec(&["rm -rf /vdisk"])
        .fails(1, "a mount root cannot be removed");
    m.exec(&["rm -r /"])
        .fails(1, "mavfs: rm: /: Device or resource busy");
    m.exec(&["cd /vram", "rm -r ."])
        .fails(1, "/vram: Device or resource busy");
}

#[test]
fn cat_streams_files_and_reports_each_failure() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "echo one > /vram/1",
        "echo two > /vdisk/2",
        "cat /vram/1 /vdisk/2",
    ]);
    assert_eq!(out.ok(), "one\ntwo\n");
    let out = m.exec(&["echo one > /vram/1", "cat /vram/none /vram/1"]);
    out.fails(1, "mavfs: cat: /vram/none: No such file or directory");
    assert_eq!(out.stdout, "one\n");
    m.exec(&["mkdir /vram/d", "cat /vram/d"])
        .fails(1, "mavfs: cat: /vram/d: Is a directory");
}

#[test]
fn redirection_replaces_and_appends_atomically() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "echo first > /vdisk/log",
        "echo second >> /vdisk/log",
        "echo -n third >> /vdisk/log",
        "cat /vdisk/log",
    ]);
    assert_eq!(out.ok(), "first\nsecond\nthird");
    let out = m.exec(&[
        "mkdir /vram/d",
        "touch /vram/d/x",
        "ls /vram/d > /vram/listing",
        "cat /vram/listing",
    ]);
    assert_eq!(out.ok(), "x\n");
    // A failing command leaves the target as it was.
    let out = m.exec(&["echo keep > /vram/t", "cat /vram/none > /vram/t"]);
    out.fails(1, "/vram/none: No such file or directory");
    assert_eq!(
        m.exec(&["echo keep > /vram/t", "cat /vram/t"]).ok(),
        "keep\n"
    );
    m.exec(&["echo x > /vram/no/dir/f"])
        .fails(1, "/vram/no/dir/f: No such file or directory");
}

#[test]
fn quoting_keeps_blanks_and_special_characters() {
    let m = Mavfs::new();
    let out = m.exec(&[
        r#"mkdir "/vram/a b""#,
        r#"echo 'x > y & z' > "/vram/a b/c\"d""#,
        r#"cat /vram/a\ b/c\"d"#,
        "ls '/vram/a b'",
    ]);
    assert_eq!(out.ok(), "x > y & z\nc\"d\n");
    m.exec(&["echo 'open"])
        .fails(1, "unterminated single quote");
}

#[test]
fn cp_copies_files_and_trees_across_and_within_mounts() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir -p /vram/t/sub/deeper /vram/t/empty",
        "echo a > /vram/t/a",
        "echo b > /vram/t/sub/b",
        "echo c > /vram/t/sub/deeper/c",
        "cp -r /vram/t /vdisk/t",
        "cp -r /vdisk/t /vdisk/t2",
        "cp /vdisk/t2/sub/b /vram/b-copy",
        "mkdir /vram/into",
        "cp /vram/t/a /vram/into",
        "cat /vdisk/t/sub/deeper/c /vdisk/t2/a /vram/b-copy /vram/into/a",
        "ls /vdisk/t",
    ]);
    assert_eq!(out.ok(), "c\na\nb\na\na\nempty/\nsub/\n");
    assert!(m.block_dir().join("t/empty").is_dir());
    m.exec(&["mkdir /vram/d", "cp /vram/d /vdisk/d"]).fails(
        1,
        "mavfs: cp: /vram/d: Is a directory (-r not specified; omitting directory)",
    );
}

#[test]
fn cp_merges_into_an_existing_directory_like_coreutils() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir -p /vram/src/x",
        "echo new > /vram/src/x/f",
        "mkdir -p /vdisk/dst",
        "cp -r /vram/src /vdisk/dst",
        "cp -r /vram/src /vdisk/dst",
        "ls /vdisk/dst /vdisk/dst/src/x",
    ]);
    assert_eq!(out.ok(), "/vdisk/dst:\nsrc/\n\n/vdisk/dst/src/x:\nf\n");
}

#[test]
fn a_target_with_a_trailing_slash_names_a_directory_like_coreutils() {
    let m = Mavfs::new();
    m.exec(&["echo a > /vram/f", "cp /vram/f /vdisk/missing/"])
        .fails(1, "mavfs: cp: /vdisk/missing: Not a directory");
    assert!(
        !m.block_dir().join("missing").exists(),
        "a file was made under a directory's name"
    );
    m.exec(&["echo a > /vram/f", "mv /vram/f /vdisk/missing/"])
        .fails(1, "mavfs: mv: /vdisk/missing: Not a directory");
    m.exec(&[
        "echo b > /vdisk/file",
        "echo a > /vram/f",
        "cp /vram/f /vdisk/file/",
    ])
    .fails(1, "mavfs: cp: /vdisk/file/: Not a directory");
    assert_eq!(std::fs::read(m.block_dir().join("file")).unwrap(), b"b\n");
    // A directory source creates it, and an existing directory receives the file, as without
    // the slash.
    let out = m.exec(&[
        "mkdir -p /vram/d",
        "echo x > /vram/d/x",
        "cp -r /vram/d /vdisk/newdir/",
        "echo a > /vram/f",
        "cp /vram/f /vdisk/newdir/",
        "cat /vdisk/newdir/x /vdisk/newdir/f",
    ]);
    assert_eq!(out.ok(), "x\na\n");
}

#[test]
fn a_directory_is_never_copied_or_moved_into_itself() {
    let m = Mavfs::new();
    m.exec(&["mkdir -p /vram/a/b", "cp -r /vram/a /vram/a/b"])
        .fails(1, "cannot copy a directory into itself");
    m.exec(&["mkdir -p /vram/a/b", "mv /vram/a /vram/a/b/c"])
        .fails(1, "cannot copy a directory into itself");
    m.exec(&["mkdir -p /vram/a", "cp -r /vram/a /vram"])
        .fails(1, "are the same file");
}

#[test]
fn mv_renames_within_a_mount_and_moves_across() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir -p /vram/t/sub",
        "echo 1 > /vram/t/one",
        "echo 2 > /vram/t/sub/two",
        "mv /vram/t /vram/u",
        "mv /vram/u /vdisk/u",
        "ls /vram",
        "cat /vdisk/u/one /vdisk/u/sub/two",
        "mv /vdisk/u/one /vdisk/u/uno",
        "mv /vdisk/u/uno /vram",
        "cat /vram/uno",
        "ls /vdisk/u",
    ]);
    assert_eq!(out.ok(), "1\n2\n1\nsub/\n");
    m.exec(&["mv /vram /vdisk/x"])
        .fails(1, "a mount root cannot be moved");
}

#[test]
fn push_and_pull_check_the_direction() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir -p /vdisk/cold",
        "echo c > /vdisk/cold/f",
        "pull /vdisk/cold /vram/hot",
        "cat /vram/hot/f",
    ]);
    assert_eq!(out.ok(), "c\n");
    m.exec(&["mkdir /vdisk/x", "push /vdisk/x /vram/x"]).fails(
        1,
        "push copies hot -> cold, but /vdisk is cold and /vram is hot; use cp",
    );
    m.exec(&["mkdir /vram/x", "pull /vram/x /vdisk/x"])
        .fails(1, "pull copies cold -> hot");
    m.exec(&["push /vram/none /vdisk/x"])
        .fails(1, "/vram/none: No such file or directory");
}

#[test]
fn stat_du_tree_stats_and_mounts_describe_the_tree() {
    let m = Mavfs::new();
    let setup = [
        "mkdir -p /vram/t/a /vram/t/b",
        "echo 12345 > /vram/t/a/f",
        "echo 123 > /vram/t/g",
    ];
    let mut lines = setup.to_vec();
    lines.extend([
        "stat /vram/t/a/f",
        "du /vram/t",
        "du -s /vram/t",
        "tree /vram/t",
    ]);
    let out = m.exec(&lines);
    let text = out.ok();
    assert!(
        text.contains("  File: /vram/t/a/f\n  Type: regular file\n  Size: 6 (6 B)\n"),
        "{text}"
    );
    assert!(text.contains(" Mount: /vram (memory, hot)"), "{text}");
    assert!(
        text.contains("6\t/vram/t/a\n0\t/vram/t/b\n10\t/vram/t\n10\t/vram/t\n"),
        "{text}"
    );
    assert!(
        text.ends_with("/vram/t\n├── a/\n│   └── f\n├── b/\n└── g\n\n2 directories, 2 files\n"),
        "{text}"
    );
    let mut lines = setup.to_vec();
    lines.extend(["stats", "mounts"]);
    let out = m.exec(&lines);
    let text = out.ok();
    let vram = text.lines().find(|l| l.starts_with("/vram")).unwrap();
    let cols: Vec<&str> = vram.split_whitespace().collect();
    assert_eq!(
        cols,
        ["/vram", "memory", "hot", "2", "3", "10", "-"],
        "{text}"
    );
    assert!(text.contains("/vdisk     disk     cold\n"), "{text}");
}

#[test]
fn help_lists_commands_and_unknown_commands_fail() {
    let m = Mavfs::new();
    let out = m.exec(&["help"]);
    for name in ["push [-j N] src dst", "pull", "cp [-r]", "stats", "tree"] {
        assert!(out.ok().contains(name), "{name}");
    }
    assert_eq!(
        m.exec(&["help cat"]).ok(),
        "usage: cat path...\nwrite files' bytes to the output\n"
    );
    m.exec(&["frobnicate"])
        .fails(1, "mavfs: frobnicate: command not found");
    m.exec(&["ls -z"])
        .fails(1, "mavfs: ls: invalid option -- 'z'");
}

#[test]
fn help_lists_the_job_commands() {
    let m = Mavfs::new();
    let out = m.exec(&["help"]);
    for usage in ["jobs ", "wait [%N...] ", "fg [%N] ", "kill %N... "] {
        assert!(
            out.ok().lines().any(|l| l.starts_with(usage)),
            "{usage}: {}",
            out.stdout
        );
    }
    assert!(m.exec(&["help fg"]).ok().starts_with("usage: fg [%N]\n"));
}

#[test]
fn exec_stops_at_the_first_failure() {
    let m = Mavfs::new();
    let out = m.exec(&["echo before", "cat /vram/none", "echo after"]);
    out.fails(1, "No such file or directory");
    assert_eq!(out.stdout, "before\n");
}

#[test]
fn exit_ends_with_its_code() {
    let m = Mavfs::new();
    let out = m.exec(&["echo a", "exit 3", "echo b"]);
    assert_eq!((out.code, out.stdout.as_str()), (3, "a\n"));
    assert_eq!(m.script("echo a\nexit 4\necho b\n").code, 4);
}

#[test]
fn script_mode_runs_every_line_and_reports_failure() {
    let m = Mavfs::new();
    let out = m.script(
        "mkdir /vram/s\n# a comment\n\ncd s\ncat missing\necho still here > f ; cat f\npwd\n",
    );
    assert_eq!(out.code, 1, "a failure in the middle is not lost");
    assert_eq!(out.stdout, "still here\n/vram/s\n");
    assert!(
        out.stderr
            .contains("mavfs: cat: /vram/s/missing: No such file or directory")
    );
    let out = m.script("echo fine\n");
    assert_eq!((out.code, out.stdout.as_str()), (0, "fine\n"));
}

#[test]
fn host_paths_are_not_mavfs_paths() {
    let m = Mavfs::new();
    m.exec(&["cat /etc/passwd"])
        .fails(1, "mavfs: cat: /etc/passwd: No such file or directory (not under any mount; the mounts are /vram, /vdisk)");
    m.exec(&["mkdir /newmount"]).fails(1, "not under any mount");
    m.exec(&["echo x > /f"])
        .fails(1, "/f: No such file or directory");
}

#[test]
fn dotdot_never_leaves_a_mount() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "echo in > /vram/f",
        "cat /vram/../../f",
        "cd /vdisk/../..",
        "pwd",
    ]);
    assert_eq!(out.ok(), "in\n/vdisk\n");
    // `..` at a mount root stays there, so this names /vram/vdisk, not /vdisk.
    m.exec(&["cat /vram/../vdisk/f"])
        .fails(1, "/vram/vdisk/f: No such file or directory");
    m.exec(&["cat /vdisk/../etc/passwd"])
        .fails(1, "/vdisk/etc/passwd: No such file or directory");
}

#[test]
fn hostile_names_behave_alike_on_memory_and_disk() {
    let long = "n".repeat(255);
    let names = ["a b", "line\nbreak", "*", "?", "ünïcødé ✓", long.as_str()];
    for mount in ["/vram", "/vdisk"] {
        let m = Mavfs::new();
        let mut lines = Vec::new();
        for name in names {
            let quoted = format!("'{mount}/{name}'");
            lines.push(format!("echo -n data > {quoted}"));
            lines.push(format!("cat {quoted}"));
        }
        lines.push(format!("ls {mount}"));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = m.exec(&lines);
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort();
        let expected = format!("{}{}\n", "data".repeat(names.len()), sorted.join("\n"));
        assert_eq!(out.ok(), expected, "{mount}");
        let too_long = "n".repeat(256);
        m.exec(&[&format!("touch {mount}/{too_long}")])
            .fails(1, "File name too long");
    }
}

#[test]
fn usage_errors_exit_2() {
    let m = Mavfs::new();
    assert_eq!(m.run(&["--no-such-flag"]).code, 2);
    assert_eq!(m.run(&["exec"]).code, 2);
}

#[test]
fn seed_flags_work_before_and_after_the_command() {
    let m = Mavfs::new();
    let out = m.run(&[
        "exec",
        "--ram",
        "dict",
        "--disk-dir",
        "other",
        "echo x > /vdisk/f",
    ]);
    out.ok();
    assert!(m.path().join("other/f").exists());
    let out = m.run(&["--ram", "memory", "exec", "mounts"]);
    assert!(out.ok().contains("/vram      memory"));
}

#[test]
fn dashboard_needs_the_interactive_shell() {
    let m = Mavfs::new();
    m.exec(&["dashboard"])
        .fails(1, "mavfs: dashboard: needs a terminal");
    let run = m.script("dashboard\necho after\n");
    run.fails(1, "mavfs: dashboard: needs a terminal");
    assert_eq!(run.stdout, "after\n");
}

#[test]
fn a_script_line_that_is_not_utf8_is_reported_by_number_and_skipped() {
    let m = Mavfs::new();
    let mut child = m
        .command()
        .arg("shell")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let script: &[u8] = b"echo one\necho \xff\xfe bad\necho three\n";
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\nthree\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mavfs: line 2: not valid UTF-8; skipped"),
        "{stderr}"
    );
}

#[test]
fn a_shell_line_over_one_mib_is_refused_naming_the_limit() {
    let m = Mavfs::new();
    let huge = format!("echo {}", "x".repeat(2 << 20));
    let out = m.script(&format!("echo one\n{huge}\necho three\n"));
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "one\nthree\n");
    assert!(
        out.stderr.contains(
            "mavfs: line 2: the line is longer than 1.00 MiB (the limit of a shell line); skipped"
        ),
        "{}",
        &out.stderr[..out.stderr.len().min(500)]
    );
    assert!(out.stderr.len() < 1024, "the line is not echoed back");
    // At the limit, a line runs. (`exec` cannot reach it: the kernel caps one argument at
    // 128 KiB.)
    let fits = format!("echo {}\n", "y".repeat((1 << 20) - 5));
    assert_eq!(m.script(&fits).ok().len(), (1 << 20) - 5 + 1);
}

#[test]
fn j_is_capped_by_the_open_file_limit() {
    let m = Mavfs::new();
    let src = m.block_dir().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("f{i}")), vec![b'x'; 64 << 10]).unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_mavfs");
    // The limit is set by the shell around mavfs, as a user's `ulimit -n` would be.
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "ulimit -n 90 && exec \"$MAVFS_BIN\" exec 'cp -r -j 64 /vdisk/src /vdisk/dst' \
             'pull -j 64 /vdisk/src /vram/src' 'du -s /vram/src'",
        )
        .current_dir(m.path())
        .env("MAVFS_BIN", bin)
        .env("HOME", m.path())
        .env("XDG_CONFIG_HOME", m.path().join("xdg"))
        .env("XDG_RUNTIME_DIR", m.path().join("run"))
        .env_remove("MAVFS_SOCKET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("mavfs: cp: -j 64 capped to 6: the open-file limit (ulimit -n) is 90"),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{}\t/vram/src\n", 200 * (64 << 10))
    );
    assert_eq!(
        std::fs::read_dir(m.block_dir().join("dst"))
            .unwrap()
            .count(),
        200
    );
}

/// Each fault, and the error it must give with the mount written `M`: the same on every store.
const FAULTS: &[(&str, &str)] = &[
    ("cat M/f/", "mavfs: cat: M/f/: Not a directory"),
    ("ls M/f/", "mavfs: ls: M/f/: Not a directory"),
    ("cat M/f/.", "mavfs: cat: M/f/.: Not a directory"),
    (
        "cat M/missing/../f",
        "mavfs: cat: M/missing/../f: No such file or directory",
    ),
    ("cat M/f/../f", "mavfs: cat: M/f/../f: Not a directory"),
    ("cat M/f/x", "mavfs: cat: M/f/x: Not a directory"),
    ("mkdir M/f/x", "mavfs: mkdir: M/f/x: Not a directory"),
    ("touch M/f/x", "mavfs: touch: M/f/x: Not a directory"),
    ("echo y > M/f/x", "mavfs: echo: M/f/x: Not a directory"),
    ("rm M/f/x", "mavfs: rm: M/f/x: Not a directory"),
    ("stat M/f/x", "mavfs: stat: M/f/x: Not a directory"),
    ("mv M/d/z M/f/x", "mavfs: mv: M/f/x: Not a directory"),
    ("cp M/d/z M/f/x", "mavfs: cp: M/f/x: Not a directory"),
    (
        "ls M/missing/x",
        "mavfs: ls: M/missing/x: No such file or directory",
    ),
    (
        "mkdir M/missing/x",
        "mavfs: mkdir: M/missing/x: No such file or directory",
    ),
    ("rm M/d", "mavfs: rm: M/d: Is a directory"),
    ("cat M/d", "mavfs: cat: M/d: Is a directory"),
    ("mkdir M/d", "mavfs: mkdir: M/d: File exists"),
];

/// The same fault gives the same error, naming the same path, on memory, disk and Redis; a
/// trailing `/` and `..` are walked as the kernel walks them, not only lexically.
#[test]
fn the_same_fault_names_the_same_path_on_every_store() {
    let server = mavfs_test_support::redis::RedisServer::start("the same fault on every store");
    let url = server.as_ref().map(|s| s.url());
    let mut stores: Vec<(&str, Vec<&str>)> = vec![("/vram", vec![]), ("/vdisk", vec![])];
    if let Some(url) = &url {
        stores.push(("/vram", vec!["--ram", "redis", "--redis-url", url.as_str()]));
    }
    for (mount, flags) in stores {
        let m = Mavfs::new();
        for (fault, expected) in FAULTS {
            let setup = [
                format!("rm -rf {mount}/f {mount}/d"),
                format!("echo hi > {mount}/f"),
                format!("mkdir {mount}/d"),
                format!("echo z > {mount}/d/z"),
                fault.replace('M', mount),
            ];
            let mut args = flags.clone();
            args.push("exec");
            args.extend(setup.iter().map(String::as_str));
            let out = m.run(&args);
            assert_eq!(out.code, 1, "{fault} on {mount} {flags:?}: {}", out.stderr);
            assert_eq!(
                out.stderr.trim_end(),
                expected.replace('M', mount),
                "{fault} on {mount} {flags:?}"
            );
        }
        // Where the walk is fine, `..` and a trailing `/` work as before.
        let mut args = flags.clone();
        args.push("exec");
        let lines = [
            format!("rm -rf {mount}/f {mount}/d"),
            format!("echo hi > {mount}/f"),
            format!("mkdir {mount}/d"),
            format!("cat {mount}/d/../f"),
            format!("cd {mount}/d/"),
            "cat ../f".to_string(),
            format!("ls {mount}/d/"),
        ];
        args.extend(lines.iter().map(String::as_str));
        assert_eq!(m.run(&args).ok(), "hi\nhi\n", "{mount} {flags:?}");
    }
}
