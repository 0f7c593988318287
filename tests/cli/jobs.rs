//! Background transfer jobs through the real binary: `&`, `jobs`, `wait`, `fg`, `kill`, the
//! notices and summary lines, in script mode and `exec`.

use crate::harness;

use std::fs::{self, File};

use harness::Mavfs;

/// A sparse file large enough that a job reading it is still running when the next line comes.
fn big_sparse_file(m: &Mavfs) {
    fs::create_dir_all(m.block_dir()).unwrap();
    File::create(m.block_dir().join("big"))
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn a_killed_background_job_is_reported_in_order_and_leaves_nothing() {
    let m = Mavfs::new();
    big_sparse_file(&m);
    let out = m.script("pull /vdisk/big /vram/big &\njobs\nkill %1\nwait\njobs\nls /vram\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        lines(&out.stderr),
        [
            "[1] pull /vdisk/big /vram/big",
            "[1]+ Cancelled pull /vdisk/big /vram/big"
        ]
    );
    let stdout = lines(&out.stdout);
    assert_eq!(
        stdout.len(),
        2,
        "two job listings and an empty /vram: {}",
        out.stdout
    );
    assert!(stdout[0].starts_with("[1]  running"), "{}", stdout[0]);
    assert!(stdout[1].starts_with("[1]  cancelled"), "{}", stdout[1]);
    assert!(
        stdout[1].ends_with("pull /vdisk/big /vram/big"),
        "{}",
        stdout[1]
    );
    let staging = fs::read_dir(m.block_dir().join(".mavfs-staging"))
        .unwrap()
        .count();
    assert_eq!(staging, 0);
}

#[test]
fn a_finished_background_job_prints_done_after_wait() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir /vram/d",
        "echo x > /vram/d/f",
        "push /vram/d /vdisk/d &",
        "wait",
        "cat /vdisk/d/f",
    ]);
    assert_eq!(out.ok(), "x\n");
    assert_eq!(
        lines(&out.stderr),
        [
            "[1] push /vram/d /vdisk/d",
            "[1]+ Done push /vram/d /vdisk/d"
        ]
    );
}

#[test]
fn a_failed_background_job_names_its_reason() {
    let m = Mavfs::new();
    let out = m.exec(&["cp /vram/none /vdisk/x &", "wait"]);
    assert_eq!(out.code, 1, "a failed background job fails exec");
    assert_eq!(
        lines(&out.stderr),
        [
            "[1] cp /vram/none /vdisk/x",
            "[1]+ Failed: /vram/none: No such file or directory (cp /vram/none /vdisk/x)"
        ]
    );
}

#[test]
fn exec_waits_for_background_jobs_before_exiting() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir /vram/d",
        "echo y > /vram/d/f",
        "push /vram/d /vdisk/d &",
    ]);
    out.ok();
    assert_eq!(
        fs::read_to_string(m.block_dir().join("d/f")).unwrap(),
        "y\n"
    );
    assert!(
        out.stderr.ends_with("[1]+ Done push /vram/d /vdisk/d\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn script_mode_waits_for_background_jobs_at_the_end() {
    let m = Mavfs::new();
    let out = m.script("mkdir /vram/d\necho z > /vram/d/f\npull -j 2 /vram/d /vdisk/d &\n");
    assert_eq!(out.code, 1, "pull from a hot mount fails");
    assert!(
        out.stderr
            .contains("[1]+ Failed: Invalid argument (pull copies cold -> hot"),
        "{}",
        out.stderr
    );
    let out = m.script("mkdir /vram/d\necho z > /vram/d/f\npush -j 2 /vram/d /vdisk/d &\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(m.block_dir().join("d/f")).unwrap(),
        "z\n"
    );
}

#[test]
fn a_foreground_transfer_prints_one_summary_line() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "mkdir -p /vram/t/u",
        "echo 1 > /vram/t/a",
        "echo 22 > /vram/t/u/b",
        "push /vram/t /vdisk/t",
    ]);
    out.ok();
    let summary = lines(&out.stderr);
    assert_eq!(summary.len(), 1, "{}", out.stderr);
    assert!(
        summary[0].starts_with("push: 2 files, 5 B in "),
        "{}",
        summary[0]
    );
    assert!(summary[0].ends_with("/s)"), "{}", summary[0]);
}

#[test]
fn fg_brings_a_job_to_the_foreground() {
    let m = Mavfs::new();
    let out = m.exec(&[
        "echo x > /vram/f",
        "push /vram/f /vdisk/f &",
        "fg %1",
        "cat /vdisk/f",
    ]);
    assert_eq!(out.ok(), "x\n");
    let err = lines(&out.stderr);
    assert_eq!(err[0], "[1] push /vram/f /vdisk/f");
    // The job may end before `fg` runs (its notice then comes first); after `fg` echoes the
    // command, only the summary follows.
    let fg = err
        .iter()
        .position(|l| *l == "push /vram/f /vdisk/f")
        .expect("fg echoes the job");
    assert_eq!(err.len(), fg + 2, "{}", out.stderr);
    assert!(
        err[fg + 1].starts_with("push: 1 file, 2 B in "),
        "{}",
        out.stderr
    );
}

#[test]
fn wait_for_a_named_job_fails_when_it_did_not_complete() {
    let m = Mavfs::new();
    big_sparse_file(&m);
    let out = m.script("pull /vdisk/big /vram/big &\nkill %1\nwait %1\n");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = m.script("echo x > /vram/f\npush /vram/f /vdisk/f &\nwait %1\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn job_commands_refuse_what_bash_refuses() {
    let m = Mavfs::new();
    m.exec(&["ls /vram &"]).fails(
        1,
        "mavfs: ls: only transfers (cp, mv, push, pull) run in the background",
    );
    m.exec(&["kill %9"])
        .fails(1, "mavfs: kill: %9: no such job");
    m.exec(&["wait %4"])
        .fails(1, "mavfs: wait: %4: no such job");
    m.exec(&["fg"]).fails(1, "mavfs: fg: no current job");
    m.exec(&["echo x > /vram/f", "push /vram/f /vdisk/f > /vram/log &"])
        .fails(1, "a background job has no output to redirect");
}

#[test]
fn stop_bg_and_throttle_a_background_job() {
    let m = Mavfs::new();
    big_sparse_file(&m);
    let out = m.script(
        "pull --bwlimit 64MiB/s /vdisk/big /vram/big &\nstop %1\njobs\nthrottle %1 1MiB/s\nthrottle %1 -j 2\n\
         throttle all 10MiB/s\nthrottle all off\njobs\nkill -CONT %1\nkill -STOP %1\nbg %1\n\
         kill %1\nwait\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let label = "pull --bwlimit 64MiB/s /vdisk/big /vram/big";
    assert_eq!(
        lines(&out.stderr),
        [
            format!("[1] {label}"),
            format!("[1]+ Stopped {label}"),
            format!("[1]+ {label} &"),
            format!("[1]+ Stopped {label}"),
            format!("[1]+ {label} &"),
            format!("[1]+ Cancelled {label}"),
        ]
    );
    let stdout = lines(&out.stdout);
    assert!(stdout[0].starts_with("[1]  stopped"), "{}", stdout[0]);
    assert!(
        stdout[0].ends_with(&format!("64.00 MiB/s {label}")),
        "{}",
        stdout[0]
    );
    assert!(
        stdout[1].ends_with(&format!("1.00 MiB/s {label}")),
        "{}",
        stdout[1]
    );
}

#[test]
fn throttle_refuses_what_it_cannot_do() {
    let m = Mavfs::new();
    for (line, says) in [
        ("throttle %1 1MiB/s", "no such job"),
        ("throttle all fast", "not a rate"),
        ("throttle %1 -j 0", "not a number of files"),
        ("stop %7", "no such job"),
        ("push --bwlimit fast /vram/a /vdisk/a", "not a rate"),
    ] {
        let out = m.exec(&[line]);
        assert_ne!(out.code, 0, "{line}");
        assert!(out.stderr.contains(says), "{line}: {}", out.stderr);
    }
}

#[test]
fn a_script_ending_with_a_stopped_job_cancels_it() {
    let m = Mavfs::new();
    big_sparse_file(&m);
    let out = m.script("pull /vdisk/big /vram/big &\nstop %1\n");
    let label = "pull /vdisk/big /vram/big";
    assert_eq!(
        lines(&out.stderr),
        [
            format!("[1] {label}"),
            format!("[1]+ Stopped {label}"),
            format!("[1]+ Cancelled {label}"),
        ]
    );
}

#[test]
fn fg_continues_a_stopped_job() {
    let m = Mavfs::new();
    let out = m.script(
        "echo hello > /vram/f\npush --bwlimit 1B/s /vram/f /vdisk/f &\nstop %1\n\
         throttle %1 off\nfg %1\ncat /vdisk/f\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "hello\n");
    assert!(
        out.stderr
            .contains("[1]+ Stopped push --bwlimit 1B/s /vram/f /vdisk/f"),
        "{}",
        out.stderr
    );
}

#[test]
fn sigterm_or_sighup_ends_exec_and_scripts_with_nothing_staged() {
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let m = Mavfs::new();
        fs::create_dir_all(m.block_dir()).unwrap();
        // Sparse: 8 s at the pull's limit, written at once.
        File::create(m.block_dir().join("big"))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        // A foreground pull, and a background push of what is already in /vram: both cancelled.
        let mut child = m
            .command()
            .args([
                "exec",
                "echo x > /vram/small",
                "push --bwlimit 4MiB/s /vram/small /vdisk/pushed &",
                "pull --bwlimit 8MiB/s /vdisk/big /vram/big",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Time to start, even on a loaded machine; the pull still has seconds to go.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        harness::signal(child.id(), signal);
        let (exit, stderr) = harness::wait_exit(&mut child);
        assert_eq!(exit, code, "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("SIG{signal}: stopping")),
            "{stderr}"
        );
        let staged = mavfs_test_support::staging::temp_files(&m.block_dir().join(".mavfs-staging"));
        assert!(
            staged.is_empty(),
            "SIG{signal} left staged files {staged:?}"
        );
        assert_eq!(
            fs::metadata(m.block_dir().join("big")).unwrap().len(),
            64 << 20
        );
    }
}
