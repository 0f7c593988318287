//! Every type the crate root exports for front ends survives a trip through JSON, the daemon's
//! wire format and `--json`'s output, unchanged; paths are checked again when decoded.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::*;

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// Encodes `value`, decodes it, and checks that the decoded value encodes the same.
fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> T {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    back
}

fn same<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
    assert_eq!(round_trip(&value), value);
}

fn progress() -> Progress {
    Progress {
        files_done: 3,
        files_total: 10,
        bytes_done: 3 << 20,
        bytes_total: 10 << 20,
        current: Some(p("/vdisk/a/f3")),
        rate: 1.5e6,
        elapsed: Duration::from_millis(2500),
    }
}

fn route() -> JobRoute {
    JobRoute {
        kind: TransferKind::Push,
        sources: vec![p("/vram/a")],
        dest: p("/vdisk/a"),
        label: "push /vram/a /vdisk/a".into(),
    }
}

fn error() -> Error {
    Error::from_io("read", std::io::Error::other("disk on fire"))
        .with_path(&p("/vdisk/x"))
        .with_detail("while reading")
}

#[test]
fn plain_data_round_trips() {
    same(p("/vram/a b/ü"));
    same(VPath::root());
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let meta = Meta {
        kind: EntryKind::File,
        size: 42,
        modified,
    };
    same(meta.clone());
    same(DirEntry {
        name: "f".into(),
        meta,
    });
    let usage = Usage {
        files: 1,
        dirs: 2,
        bytes: 3,
        capacity: Some(4),
        used: Some(5),
        available: Some(6),
        approximate: true,
    };
    same(usage);
    same(MountInfo {
        path: p("/vram"),
        tier: Tier::Hot,
        backend: BackendKind::Memory,
        capacity: Some(8 << 30),
    });
    same(MountStats {
        path: p("/vdisk"),
        backend: BackendKind::Disk,
        tier: Tier::Cold,
        usage,
        io: IoCounters {
            bytes_read: 5,
            bytes_written: 6,
        },
    });
    // Stats from an engine without the counters still decode, with zero counters.
    let old = r#"{"path":"/vram","backend":"memory","tier":"hot","usage":{"files":1,"dirs":2,"bytes":3,"capacity":null}}"#;
    let decoded: MountStats = serde_json::from_str(old).unwrap();
    assert_eq!(decoded.io, IoCounters::default());
    // ... and without the holder's figures, with none.
    assert_eq!((decoded.usage.used, decoded.usage.available), (None, None));
    assert!(!decoded.usage.approximate);
    same(BackendKind::Redis);
    same(WriteMode::Append);
    same(TransferRequest {
        kind: TransferKind::Move,
        sources: vec![p("/vram/a"), p("/vram/b")],
        dest: p("/vdisk"),
        dest_is_dir: false,
        recursive: true,
        jobs: 4,
    });
    same(TransferSummary {
        files: 2,
        dirs: 1,
        bytes: 9,
        elapsed: Duration::from_micros(1234),
    });
    same(JobId(7));
    same(JobState::Cancelled);
    same(route());
    same(progress());
    same(ErrorKind::NoSpace);
}

#[test]
fn errors_round_trip_and_print_the_same() {
    let original = error();
    let back = round_trip(&original);
    assert_eq!(back.kind(), original.kind());
    assert_eq!(back.op(), "read");
    assert_eq!(back.path(), Some(&p("/vdisk/x")));
    assert_eq!(back.detail(), original.detail());
    assert_eq!(back.to_string(), original.to_string());
    let source = std::error::Error::source(&back).map(|s| s.to_string());
    assert_eq!(source.as_deref(), Some("disk on fire"));
}

#[test]
fn jobs_and_events_round_trip() {
    let info = JobInfo {
        id: JobId(3),
        route: route(),
        state: JobState::Failed,
        progress: progress(),
        started: SystemTime::UNIX_EPOCH + Duration::from_secs(5),
        ended: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(6)),
        error: Some(error()),
        bwlimit: Some(50 << 20),
        jobs: 8,
    };
    round_trip(&info);
    let kinds = [
        EventKind::Started,
        EventKind::Progress,
        EventKind::FileDone {
            path: p("/vdisk/a/f"),
            bytes: 5,
        },
        EventKind::Finished(TransferSummary::default()),
        EventKind::Failed(error()),
        EventKind::Cancelled,
        EventKind::Stopped,
        EventKind::Continued,
        EventKind::Throttled {
            bwlimit: Some(1 << 20),
            jobs: 2,
        },
    ];
    for kind in kinds {
        let event = JobEvent {
            job: JobId(3),
            route: Arc::new(route()),
            progress: progress(),
            kind,
        };
        let back = round_trip(&event);
        assert_eq!(back.kind.is_terminal(), event.kind.is_terminal());
        assert_eq!(*back.route, *event.route);
    }
}

#[test]
fn older_json_decodes_with_defaults() {
    // A job row and start options from before suspend and throttle existed.
    let mut info = serde_json::to_value(JobInfo {
        id: JobId(1),
        route: route(),
        state: JobState::Stopped,
        progress: progress(),
        started: SystemTime::UNIX_EPOCH,
        ended: None,
        error: None,
        bwlimit: None,
        jobs: 2,
    })
    .unwrap();
    assert_eq!(info["state"], "stopped");
    let row = info.as_object_mut().unwrap();
    row.remove("bwlimit");
    row.remove("jobs");
    let back: JobInfo = serde_json::from_value(info).unwrap();
    assert_eq!((back.bwlimit, back.jobs), (None, DEFAULT_JOBS));
    let options: JobOptions = serde_json::from_str("{}").unwrap();
    assert_eq!(options, JobOptions::default());
    same(JobOptions {
        bwlimit: Some(100 << 20),
    });
}

#[test]
fn decoded_paths_keep_the_rules() {
    for bad in [
        "\"relative\"",
        "\"/a/../b\"",
        "\"/a//b\"",
        "\"/a/\"",
        "\"/a\\u0000b\"",
        "\"\"",
    ] {
        assert!(serde_json::from_str::<VPath>(bad).is_err(), "{bad}");
    }
    let long = format!("\"/{}\"", "x".repeat(MAX_NAME_BYTES + 1));
    assert!(serde_json::from_str::<VPath>(&long).is_err());
}

#[test]
fn names_pad_in_format_strings() {
    // Front ends align columns with widths (`stats`, `jobs`); the names must honour them.
    assert_eq!(format!("{:<8}|", BackendKind::Disk), "disk    |");
    assert_eq!(format!("{:<5}|", Tier::Hot), "hot  |");
    assert_eq!(format!("{:>9}|", JobState::Done), "     done|");
}
