//! Hand-made engine data for the dashboard's tests: jobs, events and mount figures with fixed
//! numbers, so that states and renders are the same on every run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mavfs_actors::{
    BackendKind, EventKind, IoCounters, JobEvent, JobId, JobInfo, JobRoute, JobState, MountInfo,
    MountStats, Progress, Tier, TransferKind, Usage, VPath,
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

const GIB: u64 = 1 << 30;

/// Usage of both mounts: `/vram` holds `vram_mib` of its 64 MiB, has had `vram_mib` MiB written
/// and half as much read; `/vdisk` holds 3 MiB in a 200 GiB filesystem (150 GiB used, 40 GiB
/// free to users), still being counted (approximate), and has had `vram_mib / 2` MiB written.
pub fn stats(vram_mib: u64) -> Vec<MountStats> {
    let vram = Usage {
        files: 3,
        dirs: 1,
        bytes: vram_mib * MIB,
        capacity: Some(64 * MIB),
        used: Some(vram_mib * MIB),
        available: Some(64 * MIB - vram_mib.min(64) * MIB),
        approximate: false,
    };
    let vdisk = Usage {
        files: 2,
        dirs: 1,
        bytes: 3 * MIB,
        capacity: Some(200 * GIB),
        used: Some(150 * GIB),
        available: Some(40 * GIB),
        approximate: true,
    };
    let io = [
        IoCounters {
            bytes_read: vram_mib * MIB / 2,
            bytes_written: vram_mib * MIB,
        },
        IoCounters {
            bytes_read: 0,
            bytes_written: vram_mib * MIB / 2,
        },
    ];
    mounts()
        .into_iter()
        .zip([vram, vdisk])
        .zip(io)
        .map(|((m, usage), io)| MountStats {
            path: m.path,
            backend: m.backend,
            tier: m.tier,
            usage,
            io,
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
