//! Machine-readable output through the real binary: `--json` on `jobs`, `stats`, `mounts`,
//! `stat` and transfers, `mavfs --json`, and `mavfs events [--json]`.
//!
//! Each document is parsed with serde_json and its values checked, and one example of each is
//! pinned field by field ([`pinned`]): the field names are a stable interface (README, "Machine-
//! readable output"), so renaming one must fail here.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Mavfs, Served, TIMEOUT, signal, wait_exit};

/// Stands for a value that varies from run to run (times, rates) in a pinned example.
const ANY: &str = "<any>";

/// Asserts that `actual` has exactly the fields of `expected`, recursively, with equal values
/// except where `expected` holds [`ANY`] (which still requires the field).
#[track_caller]
fn pinned(actual: &Value, expected: &Value) {
    fn walk(actual: &Value, expected: &Value, at: &str) {
        match (actual, expected) {
            (_, Value::String(s)) if s == ANY => {}
            (Value::Object(a), Value::Object(e)) => {
                let mut a_keys: Vec<&String> = a.keys().collect();
                let mut e_keys: Vec<&String> = e.keys().collect();
                a_keys.sort();
                e_keys.sort();
                assert_eq!(a_keys, e_keys, "fields of {at}");
                for (k, v) in e {
                    walk(&a[k], v, &format!("{at}.{k}"));
                }
            }
            (Value::Array(a), Value::Array(e)) => {
                assert_eq!(a.len(), e.len(), "length of {at}");
                for (i, (a, e)) in a.iter().zip(e).enumerate() {
                    walk(a, e, &format!("{at}[{i}]"));
                }
            }
            _ => assert_eq!(actual, expected, "value of {at}"),
        }
    }
    walk(actual, expected, "$");
}

/// The one JSON document a command printed: exactly one line.
#[track_caller]
fn document(stdout: &str) -> Value {
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    serde_json::from_str(stdout).unwrap()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A time as serde writes `SystemTime`.
fn any_time() -> Value {
    json!({"secs_since_epoch": ANY, "nanos_since_epoch": ANY})
}

/// A duration as serde writes `Duration`.
fn any_duration() -> Value {
    json!({"secs": ANY, "nanos": ANY})
}

/// `/vram/a` holds `x` (3 bytes) and `b/y` (6 bytes).
const SEED: &[&str] = &[
    "mkdir -p /vram/a/b",
    "echo hi > /vram/a/x",
    "echo hello > /vram/a/b/y",
];

fn seeded(m: &Mavfs, lines: &[&str]) -> crate::harness::Run {
    let mut all = SEED.to_vec();
    all.extend_from_slice(lines);
    m.exec(&all)
}

#[test]
fn jobs_json_is_the_job_table_pinned() {
    let m = Mavfs::new();
    // A script, which goes on after the failed job, unlike `exec`.
    let mut script = SEED.join("\n");
    script += "\npush /vram/a /vdisk/a &\nwait\ncp /vram/nope /vram/z &\nwait\njobs --json\n";
    let out = m.script(&script);
    assert_eq!(
        out.code, 1,
        "the failed job fails the script: {}",
        out.stderr
    );
    let jobs = document(&out.stdout);
    let route = |kind: &str, src: &str, dest: &str, label: &str| json!({"kind": kind, "sources": [src], "dest": dest, "label": label});
    pinned(
        &jobs,
        &json!([
            {
                "id": 1,
                "route": route("push", "/vram/a", "/vdisk/a", "push /vram/a /vdisk/a"),
                "state": "done",
                "progress": {
                    "files_done": 2, "files_total": 2, "bytes_done": 9, "bytes_total": 9,
                    "current": ANY, "rate": ANY, "elapsed": any_duration()
                },
                "started": any_time(),
                "ended": any_time(),
                "error": null,
                "bwlimit": null,
                "jobs": 4
            },
            {
                "id": 2,
                "route": route("copy", "/vram/nope", "/vram/z", "cp /vram/nope /vram/z"),
                "state": "failed",
                "progress": {
                    "files_done": 0, "files_total": 0, "bytes_done": 0, "bytes_total": 0,
                    "current": null, "rate": ANY, "elapsed": any_duration()
                },
                "started": any_time(),
                "ended": any_time(),
                "error": {"kind": "not_found", "op": "stat", "path": "/vram/nope"},
                "bwlimit": null,
                "jobs": 4
            }
        ]),
    );
}

#[test]
fn a_running_job_shows_its_state_and_limit() {
    let m = Mavfs::new();
    std::fs::create_dir_all(m.block_dir()).unwrap();
    std::fs::File::create(m.block_dir().join("big"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = m.exec(&[
        "pull --bwlimit 1MiB/s /vdisk/big /vram/big &",
        "stop %1",
        "jobs --json",
        "kill %1",
    ]);
    out.ok();
    let jobs = document(&out.stdout);
    assert_eq!(jobs[0]["id"], 1);
    assert_eq!(jobs[0]["state"], "stopped");
    assert_eq!(jobs[0]["bwlimit"], 1 << 20);
    assert_eq!(jobs[0]["ended"], Value::Null);
}

#[test]
fn mounts_and_stats_json_are_pinned() {
    let m = Mavfs::new();
    let out = seeded(&m, &["mounts --json", "stats --json"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    pinned(
        &serde_json::from_str(lines[0]).unwrap(),
        &json!([
            {"path": "/vram", "tier": "hot", "backend": "memory", "capacity": null},
            {"path": "/vdisk", "tier": "cold", "backend": "disk", "capacity": null}
        ]),
    );
    pinned(
        &serde_json::from_str(lines[1]).unwrap(),
        &json!([
            {
                "path": "/vram", "backend": "memory", "tier": "hot",
                "usage": {
                    "files": 2, "dirs": 2, "bytes": 9, "capacity": null,
                    "used": ANY, "available": null, "approximate": false
                },
                "io": {"bytes_read": ANY, "bytes_written": ANY}
            },
            {
                "path": "/vdisk", "backend": "disk", "tier": "cold",
                // A disk mount reports its filesystem's size, used and free space.
                "usage": {
                    "files": 0, "dirs": 0, "bytes": 0, "capacity": ANY,
                    "used": ANY, "available": ANY, "approximate": ANY
                },
                "io": {"bytes_read": ANY, "bytes_written": ANY}
            }
        ]),
    );
}

#[test]
fn stat_json_is_pinned_and_reports_missing_operands_on_stderr() {
    let m = Mavfs::new();
    let out = seeded(&m, &["stat --json /vram/a/x a /vram/nope"]);
    out.fails(1, "mavfs: stat: /vram/nope: No such file or directory");
    pinned(
        &document(&out.stdout),
        &json!([
            {"path": "/vram/a/x", "meta": {"kind": "file", "size": 3, "modified": any_time()}},
            {"path": "/vram/a", "meta": {"kind": "dir", "size": 0, "modified": any_time()}}
        ]),
    );
}

#[test]
fn a_transfer_prints_its_events_ending_with_one_finished() {
    let m = Mavfs::new();
    let out = seeded(&m, &["push --json /vram/a /vdisk/a"]);
    let events = json_lines(out.ok());
    // No summary line in JSON mode: stdout is the events, stderr is for errors.
    assert_eq!(out.stderr, "");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["kind"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"started"), "{types:?}");
    assert_eq!(types.last(), Some(&"finished"), "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "finished").count(), 1);
    assert_eq!(types.iter().filter(|t| **t == "file_done").count(), 2);
    let mut done: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"]["type"] == "file_done")
        .map(|e| e["kind"]["path"].as_str().unwrap())
        .collect();
    done.sort();
    assert_eq!(done, ["/vdisk/a/b/y", "/vdisk/a/x"]);
    let route = json!({
        "kind": "push", "sources": ["/vram/a"], "dest": "/vdisk/a",
        "label": "push --json /vram/a /vdisk/a"
    });
    pinned(
        events.last().unwrap(),
        &json!({
            "job": 1,
            "route": route,
            "progress": {
                "files_done": 2, "files_total": 2, "bytes_done": 9, "bytes_total": 9,
                "current": ANY, "rate": ANY, "elapsed": any_duration()
            },
            "kind": {"type": "finished", "files": 2, "dirs": 2, "bytes": 9, "elapsed": any_duration()}
        }),
    );
    pinned(
        &events[0],
        &json!({
            "job": 1,
            "route": route,
            "progress": {
                "files_done": 0, "files_total": 2, "bytes_done": 0, "bytes_total": 9,
                "current": null, "rate": ANY, "elapsed": any_duration()
            },
            "kind": {"type": "started"}
        }),
    );
    let file_done = events
        .iter()
        .find(|e| e["kind"]["type"] == "file_done" && e["kind"]["path"] == "/vdisk/a/x")
        .unwrap();
    pinned(
        &file_done["kind"],
        &json!({"type": "file_done", "path": "/vdisk/a/x", "bytes": 3}),
    );
    // The disk mount outlives the process: the pushed file is there.
    assert_eq!(m.exec(&["cat /vdisk/a/b/y"]).ok(), "hello\n");
}

#[test]
fn a_failed_transfer_prints_a_failed_event_and_its_error_on_stderr() {
    let m = Mavfs::new();
    let out = m.exec(&["cp --json /vram/nope /vram/z"]);
    out.fails(1, "mavfs: cp: /vram/nope: No such file or directory");
    let events = json_lines(&out.stdout);
    pinned(
        &events.last().unwrap()["kind"],
        &json!({"type": "failed", "kind": "not_found", "op": "stat", "path": "/vram/nope"}),
    );
}

#[test]
fn the_global_flag_makes_every_command_that_can_print_json() {
    let m = Mavfs::new();
    let out = m.run(&[
        "--json",
        "exec",
        "mkdir /vram/d",
        "echo hi > /vram/d/f",
        "cp /vram/d/f /vram/g",
        "jobs",
        "stat /vram/g",
        "ls /vram",
    ]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(out.stderr, "", "no summary line");
    let (json, ls) = lines.split_at(lines.len() - 2);
    assert_eq!(ls, ["d/", "g"], "ls stays text");
    let docs: Vec<Value> = json
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = docs.len();
    assert_eq!(docs[n - 3]["kind"]["type"], "finished");
    assert_eq!(docs[n - 2][0]["state"], "done");
    assert_eq!(docs[n - 2][0]["progress"]["files_done"], 1);
    assert_eq!(docs[n - 1][0]["path"], "/vram/g");
    assert_eq!(docs[n - 1][0]["meta"]["size"], 3);
    assert_eq!(docs[n - 1][0]["meta"]["kind"], "file");
}

fn spawn_events(m: &Mavfs, json: bool) -> Child {
    let mut cmd = m.command();
    cmd.arg("events");
    if json {
        cmd.arg("--json");
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn embedded_events_say_so_and_exit_0_on_sigterm_and_sigint() {
    let m = Mavfs::new();
    for (json, sig) in [(false, "TERM"), (true, "INT")] {
        let mut child = spawn_events(&m, json);
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut note = String::new();
        // The note comes once the handlers are installed, or just before: wait for it.
        stderr.read_line(&mut note).unwrap();
        assert!(
            note.contains("embedded engine: only this process's jobs"),
            "{note}"
        );
        std::thread::sleep(Duration::from_millis(100));
        signal(child.id(), sig);
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        // Its stderr is already taken: the note and the rest are read here.
        let (code, _) = wait_exit(&mut child);
        assert_eq!(code, 0, "{sig}");
        assert_eq!(stdout, "");
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "", "the note comes once");
    }
}

/// The lines of `child`'s stdout, as a thread reads them.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one contains `needle`; all lines read, that one last.
fn until(rx: &mpsc::Receiver<String>, needle: &str) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(2)).ok()?;
        let found = line.contains(needle);
        lines.push(line);
        if found {
            return Some(lines);
        }
    }
}

#[test]
fn attached_events_show_another_clients_job_as_text_and_json() {
    let m = Mavfs::new();
    let _served = Served::start(&m);
    m.exec(&SEED[..2]).ok();
    let mut text = spawn_events(&m, false);
    let mut json = spawn_events(&m, true);
    let (text_rx, json_rx) = (stdout_lines(&mut text), stdout_lines(&mut json));
    // Nothing tells when a client has subscribed at the daemon: copy until both see a job end.
    let mut seen = None;
    for i in 0..10 {
        m.exec(&[&format!("cp /vram/a/x /vram/c{i}")]).ok();
        let label = format!("cp /vram/a/x /vram/c{i}");
        let Some(t) = until(&text_rx, &format!("finished {label}")) else {
            continue;
        };
        let j = until(&json_rx, &format!("\"label\":\"{label}\"")).map(|mut lines| {
            // This job's lines up to its terminal one.
            while !lines.last().unwrap().contains("\"finished\"") {
                lines.push(json_rx.recv_timeout(TIMEOUT).unwrap());
            }
            lines
        });
        if let Some(j) = j {
            seen = Some((label, t, j));
            break;
        }
    }
    let (label, text_lines, json_lines_seen) = seen.expect("the events of a job");
    let last = text_lines.last().unwrap();
    assert!(
        last.contains(&format!("] finished {label} cp: 1 file, 3 B in ")),
        "{last}"
    );
    let last: Value = serde_json::from_str(json_lines_seen.last().unwrap()).unwrap();
    assert_eq!(last["kind"]["type"], "finished");
    assert_eq!(last["kind"]["files"], 1);
    assert_eq!(last["route"]["label"], label.as_str());
    for mut child in [text, json] {
        signal(child.id(), "TERM");
        let (code, stderr) = wait_exit(&mut child);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stderr, "", "attached: no note");
    }
}
