//! `mavfs dashboard` without a terminal, through the real binary: one line per mount each
//! interval, as text or JSON lines, until a signal or a closed stdout, either of which is success.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};

use crate::harness::{Mavfs, signal, wait_exit};

/// Starts `mavfs dashboard` with a short interval and its stdout piped; `/vdisk` holds one file.
fn spawn(m: &Mavfs, extra: &[&str]) -> (Child, BufReader<ChildStdout>) {
    std::fs::create_dir_all(m.block_dir().join("d")).unwrap();
    std::fs::write(m.block_dir().join("d/a.txt"), b"hello").unwrap();
    let mut child = m
        .command()
        .args(["dashboard", "--dashboard-interval", "0.05"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

fn read_lines(out: &mut BufReader<ChildStdout>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim_end().to_string()
        })
        .collect()
}

#[test]
fn without_a_terminal_it_prints_a_line_per_mount_each_interval_until_sigterm() {
    let m = Mavfs::new();
    let (mut child, mut out) = spawn(&m, &[]);
    let lines = read_lines(&mut out, 4);
    // Rates need a previous report: `-` in the first, measured from the second on.
    assert_eq!(
        lines[0],
        "mount /vram memory hot files 0 dirs 0 bytes 0 B used 0 B capacity - free - \
         read - write -"
    );
    assert_eq!(
        lines[2],
        "mount /vram memory hot files 0 dirs 0 bytes 0 B used 0 B capacity - free - \
         read 0 B/s write 0 B/s"
    );
    // A disk mount's used, capacity and free are its filesystem's, which depend on the host.
    for (line, rates) in [
        (&lines[1], "read - write -"),
        (&lines[3], "read 0 B/s write 0 B/s"),
    ] {
        let figures = line
            .strip_prefix("mount /vdisk disk cold files 1 dirs 1 bytes 5 B used ")
            .and_then(|rest| rest.strip_suffix(rates))
            .unwrap_or_else(|| panic!("{line}"));
        let words: Vec<&str> = figures.split(' ').collect();
        // `42.00 GiB capacity 251.97 GiB free 51.00 GiB `: three known sizes, a blank at the end.
        assert_eq!(words.len(), 9, "{line}");
        assert_eq!((words[2], words[5], words[8]), ("capacity", "free", ""));
        assert!(
            !words.contains(&"-"),
            "a disk mount knows its filesystem: {line}"
        );
    }
    signal(child.id(), "TERM");
    let (code, stderr) = wait_exit(&mut child);
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[test]
fn json_prints_the_seam_types_one_object_a_line_until_sigint() {
    let m = Mavfs::new();
    let (mut child, mut out) = spawn(&m, &["--json"]);
    let lines = read_lines(&mut out, 2);
    let mut vdisk: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    // The filesystem's figures depend on the host: present, then left out of the comparison.
    let usage = vdisk["usage"].as_object_mut().unwrap();
    for field in ["capacity", "used", "available"] {
        let figure = usage.remove(field).unwrap();
        assert!(figure.is_u64(), "{field}: {figure}");
    }
    assert_eq!(
        vdisk,
        serde_json::json!({
            "type": "mount",
            "path": "/vdisk",
            "backend": "disk",
            "tier": "cold",
            "usage": {"files": 1, "dirs": 1, "bytes": 5, "approximate": false},
            "io": {"bytes_read": 0, "bytes_written": 0}
        })
    );
    let vram: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(vram["path"], "/vram");
    signal(child.id(), "INT");
    let (code, stderr) = wait_exit(&mut child);
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[test]
fn a_closed_stdout_ends_it_successfully() {
    let m = Mavfs::new();
    let (mut child, mut out) = spawn(&m, &[]);
    read_lines(&mut out, 1);
    drop(out);
    let (code, stderr) = wait_exit(&mut child);
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[test]
fn the_interval_must_be_positive() {
    let m = Mavfs::new();
    for bad in ["0", "-1", "soon", "inf"] {
        let arg = format!("--dashboard-interval={bad}");
        m.run(&["dashboard", &arg]).fails(2, "--dashboard-interval");
    }
}
