//! The dashboard without a terminal: each interval, one line per mount and per running job, as
//! `juicefs stats` prints without a tty; with `--json`, one JSON object a line, built from the
//! seam's own serde types ([`MountStats`], [`JobInfo`]) with a `type` field beside their fields.
//!
//! A mount's plain line carries its usage (`~` before counts still approximate), what holds it
//! (used, capacity, free) and its read and write rates since the previous report (`-` in the
//! first). Its JSON line is the seam's [`MountStats`] as is: usage with `used`, `available` and
//! `approximate`, and the raw byte counters (`io`), from which a reader takes rates itself.
//!
//! It stops on SIGINT/SIGTERM, or when stdout closes: a reader that has seen enough
//! (`mavfs dashboard | head`) is success, not an error.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use mavfs_actors::{IoCounters, JobInfo, JobState, MountStats};
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use super::state::rates;
use crate::engine::Engine;
use crate::shell::format::size;

/// Each mount's byte counters at the previous report, by mount path.
type Previous = BTreeMap<String, (IoCounters, Instant)>;

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
    let mut previous = Previous::new();
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
        let taken = Instant::now();
        let text = if json {
            json_lines(&stats, &running)
        } else {
            plain_lines(&stats, &previous, taken, &running)
        };
        previous = stats
            .iter()
            .map(|m| (m.path.to_string(), (m.io, taken)))
            .collect();
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

/// `mount /vdisk disk cold files ~2 dirs ~1 bytes ~3.00 MiB used 150.00 GiB capacity 200.00 GiB
/// free 40.00 GiB read 0 B/s write 2.00 MiB/s` (rates since `previous`, `-` without it; `-` for
/// any figure the store does not know) and
/// `job %3 running push /vram/a /vdisk/a 50% 1.00 MiB/2.00 MiB files 1/2 rate 3.00 MiB/s`.
fn plain_lines(
    stats: &[MountStats],
    previous: &Previous,
    taken: Instant,
    jobs: &[&JobInfo],
) -> String {
    let known = |figure: Option<u64>| figure.map_or_else(|| "-".to_string(), size);
    let mut text = String::new();
    for m in stats {
        let u = &m.usage;
        let about = if u.approximate { "~" } else { "" };
        let (read, write) = previous
            .get(m.path.as_str())
            .and_then(|before| rates(*before, (m.io, taken)))
            .map_or_else(
                || ("-".to_string(), "-".to_string()),
                |(r, w)| (format!("{}/s", size(r)), format!("{}/s", size(w))),
            );
        text.push_str(&format!(
            "mount {} {} {} files {about}{} dirs {about}{} bytes {about}{} used {} capacity {} \
             free {} read {read} write {write}\n",
            m.path,
            m.backend,
            m.tier,
            u.files,
            u.dirs,
            size(u.bytes),
            known(u.used),
            known(u.capacity),
            known(u.available),
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
        let text = plain_lines(&stats(16)[..1], &Previous::new(), Instant::now(), &[&job]);
        assert_eq!(
            text,
            "mount /vram memory hot files 3 dirs 1 bytes 16.00 MiB used 16.00 MiB \
             capacity 64.00 MiB free 48.00 MiB read - write -\n\
             job %3 running push /vram/data3 /vdisk/data3 75% 6.00 MiB/8.00 MiB files 3/4 \
             rate 2.00 MiB/s\n"
        );
    }

    #[test]
    fn plain_mount_lines_give_rates_since_the_last_report_and_mark_approximate_counts() {
        let t0 = Instant::now();
        let previous: Previous = stats(8)
            .iter()
            .map(|m| (m.path.to_string(), (m.io, t0)))
            .collect();
        let text = plain_lines(&stats(16), &previous, t0 + Duration::from_secs(2), &[]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(" read 2.00 MiB/s write 4.00 MiB/s"),
            "{}",
            lines[0]
        );
        assert_eq!(
            lines[1],
            "mount /vdisk disk cold files ~2 dirs ~1 bytes ~3.00 MiB used 150.00 GiB \
             capacity 200.00 GiB free 40.00 GiB read 0 B/s write 2.00 MiB/s"
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
        assert_eq!(lines[0]["usage"]["used"], 16 << 20);
        assert_eq!(lines[0]["usage"]["available"], 48 << 20);
        assert_eq!(lines[0]["usage"]["approximate"], false);
        assert_eq!(lines[0]["io"]["bytes_written"], 16 << 20);
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
