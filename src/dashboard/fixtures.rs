//! Hand-made engine data for the dashboard's tests: jobs, events and mount figures with fixed
//! numbers, so that states and renders are the same on every run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mavfs_actors::{
    BackendKind, EventKind, JobEvent, JobId, JobInfo, JobRoute, JobState, MountInfo, MountStats,
    Progress, Tier, TransferKind, Usage, VPath,
};

use super::state::{DashboardState, Snapshot};

const MIB: u64 = 1 << 20;

pub fn route(id: u64) -> JobRoute {
    let src = format!("/vram/data{id}");
    let dst = format!("/vdisk/data{id}");
    JobRoute {
        kind: TransferKind::Push,
        sources: vec![VPath::parse(&src).unwrap()],
        dest: VPath::parse(&dst).unwrap(),
        label: format!("push {src} {dst}"),
    }
}

/// Progress of `done` MiB of 8 MiB and files of 4, at 2 MiB/s, `secs` in.
pub fn progress(done_mib: u64, files_done: u64, secs: u64) -> Progress {
    Progress {
        files_done,
        files_total: 4,
        bytes_done: done_mib * MIB,
        bytes_total: 8 * MIB,
        current: Some(VPath::parse("/vram/data1/b.bin").unwrap()),
        rate: 2.0 * MIB as f64,
        elapsed: Duration::from_secs(secs),
    }
}

pub fn event(id: u64, kind: EventKind, done_mib: u64) -> JobEvent {
    JobEvent {
        job: JobId(id),
        route: Arc::new(route(id)),
        progress: progress(done_mib, done_mib / 2, done_mib),
        kind,
    }
}

pub fn info(id: u64, state: JobState, done_mib: u64) -> JobInfo {
    JobInfo {
        id: JobId(id),
        route: route(id),
        state,
        progress: progress(done_mib, done_mib / 2, done_mib),
        started: SystemTime::UNIX_EPOCH,
        ended: None,
        error: None,
        bwlimit: None,
        jobs: 4,
    }
}

pub fn mounts() -> Vec<MountInfo> {
    vec![
        MountInfo {
            path: VPath::parse("/vram").unwrap(),
            tier: Tier::Hot,
            backend: BackendKind::Memory,
            capacity: Some(64 * MIB),
        },
        MountInfo {
            path: VPath::parse("/vdisk").unwrap(),
            tier: Tier::Cold,
            backend: BackendKind::Disk,
            capacity: None,
        },
    ]
}

/// Usage of both mounts: `/vram` holds `vram_mib`, `/vdisk` 3 MiB.
pub fn stats(vram_mib: u64) -> Vec<MountStats> {
    mounts()
        .into_iter()
        .zip([(vram_mib, 3, 1), (3, 2, 1)])
        .map(|(m, (mib, files, dirs))| MountStats {
            path: m.path,
            backend: m.backend,
            tier: m.tier,
            usage: Usage {
                files,
                dirs,
                bytes: mib * MIB,
                capacity: m.capacity,
                ..Usage::default()
            },
            io: Default::default(),
        })
        .collect()
}

/// A state after three snapshots a second apart (`/vram` at 8, 12 and 16 MiB) and a job table of
/// two running jobs (job 3 limited to 4 MiB/s) and one done, plus a few events.
pub fn busy_state() -> DashboardState {
    let mut state = DashboardState::new(&mounts(), 60, true);
    let t0 = std::time::Instant::now();
    let mut limited = info(3, JobState::Running, 6);
    limited.bwlimit = Some(4 * MIB);
    let table = vec![
        info(1, JobState::Running, 2),
        info(2, JobState::Done, 8),
        limited,
    ];
    state.load(Snapshot {
        taken: t0,
        stats: stats(8),
        jobs: Some(table),
    });
    for (secs, mib) in [(1, 12), (2, 16)] {
        state.load(Snapshot {
            taken: t0 + Duration::from_secs(secs),
            stats: stats(mib),
            jobs: None,
        });
    }
    state.apply(&event(4, EventKind::Started, 0));
    state.apply(&event(4, EventKind::Cancelled, 1));
    state.apply(&event(1, EventKind::Progress, 4));
    state
}
