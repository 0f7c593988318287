//! The dashboard without a terminal: each interval, one line per mount and per running job, as
//! `juicefs stats` prints without a tty; with `--json`, one JSON object a line, built from the
//! seam's own serde types ([`MountStats`], [`JobInfo`]) with a `type` field beside their fields.
//!
//! It stops on SIGINT/SIGTERM, or when stdout closes: a reader that has seen enough
//! (`mavfs dashboard | head`) is success, not an error.

use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use mavfs_actors::{JobInfo, JobState, MountStats};
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use crate::engine::Engine;
use crate::shell::format::size;

/// One JSON line.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum JsonLine<'a> {
    Mount(&'a MountStats),
    Job(&'a JobInfo),
}

/// Prints every `interval` until a signal or a closed stdout; returns the exit code.
pub async fn run(
    engine: &Engine,
    interval: Duration,
    json: bool,
    shutdown: impl Future<Output = ()>,
) -> i32 {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return 0,
            _ = tick.tick() => {}
        }
        let (stats, jobs) = match (engine.stats().await, engine.jobs().await) {
            (Ok(stats), Ok(jobs)) => (stats, jobs),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("mavfs: dashboard: {e}");
                return 1;
            }
        };
        let running: Vec<&JobInfo> = jobs
            .iter()
            .filter(|j| j.state == JobState::Running)
            .collect();
        let text = if json {
            json_lines(&stats, &running)
        } else {
            plain_lines(&stats, &running)
        };
        // One write per interval, so a reader never sees half a report.
        let mut out = io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return 0,
            Err(e) => {
                eprintln!("mavfs: dashboard: stdout: {e}");
                return 1;
            }
        }
    }
}

/// `mount /vram memory hot files 2 dirs 1 bytes 1.00 MiB capacity -` and
/// `job %3 running push /vram/a /vdisk/a 50% 1.00 MiB/2.00 MiB files 1/2 rate 3.00 MiB/s`.
fn plain_lines(stats: &[MountStats], jobs: &[&JobInfo]) -> String {
    let mut text = String::new();
    for m in stats {
        let u = &m.usage;
        let capacity = u.capacity.map_or_else(|| "-".to_string(), size);
        text.push_str(&format!(
            "mount {} {} {} files {} dirs {} bytes {} capacity {}\n",
            m.path,
            m.backend,
            m.tier,
            u.files,
            u.dirs,
            size(u.bytes),
            capacity
        ));
    }
    for j in jobs {
        let p = &j.progress;
        let percent = p
            .bytes_done
            .saturating_mul(100)
            .checked_div(p.bytes_total)
            .unwrap_or(0);
        text.push_str(&format!(
            "job %{} {} {} {}% {}/{} files {}/{} rate {}/s\n",
            j.id,
            j.state,
            j.route.label,
            percent,
            size(p.bytes_done),
            size(p.bytes_total),
            p.files_done,
            p.files_total,
            size(p.rate as u64)
        ));
    }
    text
}

fn json_lines(stats: &[MountStats], jobs: &[&JobInfo]) -> String {
    let lines = stats
        .iter()
        .map(JsonLine::Mount)
        .chain(jobs.iter().map(|j| JsonLine::Job(j)));
    let mut text = String::new();
    for line in lines {
        // These types serialise without fail: plain data, string keys.
        text.push_str(&serde_json::to_string(&line).expect("seam types serialise"));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use mavfs_actors::JobState;

    use super::super::fixtures::{info, stats};
    use super::*;

    #[test]
    fn plain_lines_name_each_mount_and_running_job() {
        let job = info(3, JobState::Running, 6);
        let text = plain_lines(&stats(16)[..1], &[&job]);
        assert_eq!(
            text,
            "mount /vram memory hot files 3 dirs 1 bytes 16.00 MiB capacity 64.00 MiB\n\
             job %3 running push /vram/data3 /vdisk/data3 75% 6.00 MiB/8.00 MiB files 3/4 \
             rate 2.00 MiB/s\n"
        );
    }

    #[test]
    fn json_lines_are_the_seam_types_with_a_type_field() {
        let job = info(3, JobState::Running, 6);
        let text = json_lines(&stats(16)[..1], &[&job]);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["type"], "mount");
        assert_eq!(lines[0]["usage"]["bytes"], 16 << 20);
        assert_eq!(lines[1]["type"], "job");
        assert_eq!(lines[1]["id"], 3);
        assert_eq!(lines[1]["state"], "running");
        assert_eq!(lines[1]["progress"]["bytes_done"], 6 << 20);
        // What a client would decode: the seam's own type, from the same line.
        let mut object = lines[1].clone();
        object.as_object_mut().unwrap().remove("type");
        let back: JobInfo = serde_json::from_value(object).unwrap();
        assert_eq!(back.route, job.route);
    }
}
