//! What the dashboard shows, and every change to it, with no I/O: [`DashboardState`].
//!
//! Two things change it. [`DashboardState::load`] takes a [`Snapshot`] (mount usage each tick,
//! and the whole job table at start and after the event subscription lagged);
//! [`DashboardState::apply`] takes one pushed [`JobEvent`]. Both are pure, so tests drive them
//! with hand-made data. [`DashboardState::handle`] applies a key's [`Action`] and returns what
//! the loop must do outside the state (cancel a job, quit).
//!
//! Throughput per mount comes from the engine's byte counters of that mount
//! ([`MountStats::io`]): bytes read and bytes written between two snapshots over the time between
//! them, each direction on its own. So reads show, and so do writes that replace bytes of the
//! same size, which a change of the stored byte count would miss.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use mavfs_actors::{
    EventKind, IoCounters, JobEvent, JobId, JobInfo, JobState, MountInfo, MountStats, Progress,
};

use super::input::Action;

/// Event log lines kept; older ones are dropped.
pub const LOG_CAPACITY: usize = 200;
/// Ended jobs kept in the table (the newest ids); a long session does not grow without bound.
pub const ENDED_CAPACITY: usize = 100;

/// What the loop read from the engine at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was read: throughput is bytes moved over the time between two snapshots.
    pub taken: Instant,
    /// Usage of every mount, in mount order.
    pub stats: Vec<MountStats>,
    /// The whole job table, when it was read (at start and after a lag); `None` on a plain tick,
    /// where job rows come from events only.
    pub jobs: Option<Vec<JobInfo>>,
}

/// One mount's figures and its recent throughput.
#[derive(Debug, Clone)]
pub struct TierRow {
    pub stats: MountStats,
    /// The configured capacity, when the usage does not carry one.
    pub configured_capacity: Option<u64>,
    /// Bytes read from the mount per second, now and over the last minute.
    pub read: Throughput,
    /// Bytes written to the mount per second, now and over the last minute.
    pub write: Throughput,
    /// The counters and time of the previous snapshot.
    last: Option<(IoCounters, Instant)>,
}

impl TierRow {
    fn new(stats: MountStats, configured_capacity: Option<u64>) -> Self {
        TierRow {
            stats,
            configured_capacity,
            read: Throughput::default(),
            write: Throughput::default(),
            last: None,
        }
    }

    /// The capacity to draw a gauge against, if any is known.
    pub fn capacity(&self) -> Option<u64> {
        self.stats.usage.capacity.or(self.configured_capacity)
    }

    /// The bytes of [`Self::capacity`] in use: what the holder counts (`used`), else the
    /// mount's own bytes (a configured capacity that the usage does not report).
    pub fn used(&self) -> u64 {
        self.stats.usage.used.unwrap_or(self.stats.usage.bytes)
    }
}

/// One direction of a mount's traffic: the rate over the last interval and the last samples.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    /// Bytes per second over the last interval.
    pub rate: u64,
    /// The last rates, oldest first, for the sparkline.
    pub history: VecDeque<u64>,
}

impl Throughput {
    fn push(&mut self, rate: u64, keep: usize) {
        self.rate = rate;
        if self.history.len() == keep {
            self.history.pop_front();
        }
        self.history.push_back(rate);
    }
}

/// Bytes read and written per second between two readings of a mount's counters, `None` when
/// no time passed. A counter that went back (a daemon restarted under an attached client) counts
/// as no traffic rather than as a huge negative rate.
pub fn rates(before: (IoCounters, Instant), after: (IoCounters, Instant)) -> Option<(u64, u64)> {
    let secs = after.1.saturating_duration_since(before.1).as_secs_f64();
    if secs <= 0.0 {
        return None;
    }
    let per_sec = |a: u64, b: u64| (b.saturating_sub(a) as f64 / secs) as u64;
    Some((
        per_sec(before.0.bytes_read, after.0.bytes_read),
        per_sec(before.0.bytes_written, after.0.bytes_written),
    ))
}

/// One job row, kept current by events.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: JobId,
    pub label: String,
    pub sources: Vec<String>,
    pub dest: String,
    pub state: JobState,
    pub progress: Progress,
    /// The last file committed, for the detail panel.
    pub last_done: Option<String>,
    /// Why a failed job failed, in the user's terms.
    pub error: Option<String>,
    /// The job's own limit in bytes per second, `None` when it has none.
    pub bwlimit: Option<u64>,
}

impl JobRow {
    fn from_info(info: &JobInfo) -> Self {
        JobRow {
            id: info.id,
            label: info.route.label.clone(),
            sources: info.route.sources.iter().map(|s| s.to_string()).collect(),
            dest: info.route.dest.to_string(),
            state: info.state,
            progress: info.progress.clone(),
            last_done: None,
            error: info.error.as_ref().map(|e| e.to_string()),
            bwlimit: info.bwlimit,
        }
    }

    fn from_event(event: &JobEvent) -> Self {
        JobRow {
            id: event.job,
            label: event.route.label.clone(),
            sources: event.route.sources.iter().map(|s| s.to_string()).collect(),
            dest: event.route.dest.to_string(),
            state: JobState::Running,
            progress: event.progress.clone(),
            last_done: None,
            error: None,
            bwlimit: None,
        }
    }

    /// Whether `needle` (lower case) appears in the id, state or command.
    fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || self.id.to_string() == needle
            || self.state.as_str().contains(needle)
            || self.label.to_lowercase().contains(needle)
    }
}

/// What keys currently do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter after `/`.
    Filter,
    /// `x` was pressed on this job: `y` cancels it, anything else keeps it.
    ConfirmCancel(JobId),
    /// The key help is shown.
    Help,
}

/// What the loop must do after a key, beyond redrawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Cancel(JobId),
    /// `p` on a running job.
    Suspend(JobId),
    /// `p` on a stopped job.
    Resume(JobId),
    /// `+`/`-`: the job's new own limit in bytes per second, `None` for off.
    Throttle(JobId, Option<u64>),
    Quit,
}

/// The limit `-` sets on a job without one whose rate is not known yet.
pub const DEFAULT_SLOWER: u64 = 100 << 20;
/// The highest limit `+` sets; doubling past it turns the limit off.
pub const MAX_LIMIT: u64 = 64 << 30;
/// The lowest limit `-` sets: halving on and on must not fake a pause (`p` is the pause).
pub const MIN_LIMIT: u64 = 1 << 10;

/// The limit `+` gives a job limited to `limit`: twice as much, off past [`MAX_LIMIT`]. A job
/// without a limit has nothing to raise.
pub fn faster(limit: Option<u64>) -> Option<Option<u64>> {
    let limit = limit?;
    let doubled = limit.saturating_mul(2);
    Some((doubled <= MAX_LIMIT).then_some(doubled))
}

/// The limit `-` gives a job limited to `limit` that moves `rate` bytes per second: half its
/// limit; without one, half its current rate, or [`DEFAULT_SLOWER`] while the rate is unknown
/// (zero); never below [`MIN_LIMIT`].
pub fn slower(limit: Option<u64>, rate: f64) -> u64 {
    let half = match limit {
        Some(limit) => limit / 2,
        None if rate >= 1.0 => (rate / 2.0) as u64,
        None => DEFAULT_SLOWER,
    };
    half.max(MIN_LIMIT)
}

/// Everything the dashboard shows.
#[derive(Debug, Clone)]
pub struct DashboardState {
    tiers: Vec<TierRow>,
    jobs: BTreeMap<JobId, JobRow>,
    selected: Option<JobId>,
    /// Where the selection was, so that it stays near there when its job leaves the view.
    selected_index: usize,
    filter: String,
    mode: Mode,
    log: VecDeque<String>,
    history_len: usize,
    /// No daemon: only this process's jobs can show, which the footer says.
    embedded: bool,
}

impl DashboardState {
    /// An empty state; `history_len` samples make up a sparkline, `mounts` give capacities.
    pub fn new(mounts: &[MountInfo], history_len: usize, embedded: bool) -> Self {
        DashboardState {
            tiers: mounts
                .iter()
                .map(|m| {
                    let stats = MountStats {
                        path: m.path.clone(),
                        backend: m.backend,
                        tier: m.tier,
                        usage: Default::default(),
                        io: Default::default(),
                    };
                    TierRow::new(stats, m.capacity)
                })
                .collect(),
            jobs: BTreeMap::new(),
            selected: None,
            selected_index: 0,
            filter: String::new(),
            mode: Mode::Normal,
            log: VecDeque::new(),
            history_len: history_len.max(1),
            embedded,
        }
    }

    /// Takes in what the loop read: mount figures (and read and write throughput since the last
    /// snapshot) and, when present, the whole job table, which replaces the rows events built.
    pub fn load(&mut self, snapshot: Snapshot) {
        for stats in snapshot.stats {
            let row = match self.tiers.iter_mut().find(|t| t.stats.path == stats.path) {
                Some(row) => row,
                None => {
                    self.tiers.push(TierRow::new(stats.clone(), None));
                    self.tiers.last_mut().expect("just pushed")
                }
            };
            let now = (stats.io, snapshot.taken);
            if let Some((read, write)) = row.last.and_then(|before| rates(before, now)) {
                row.read.push(read, self.history_len);
                row.write.push(write, self.history_len);
            }
            row.last = Some(now);
            row.stats = stats;
        }
        if let Some(jobs) = snapshot.jobs {
            // Keep what events taught us that the table does not carry.
            let mut rows = BTreeMap::new();
            for info in &jobs {
                let mut row = JobRow::from_info(info);
                if let Some(old) = self.jobs.get(&info.id) {
                    row.last_done = old.last_done.clone();
                }
                rows.insert(info.id, row);
            }
            self.jobs = rows;
            self.prune_ended();
        }
        self.fix_selection();
    }

    /// Applies one pushed event; a job not seen yet gets a row from the event's route.
    pub fn apply(&mut self, event: &JobEvent) {
        let row = self
            .jobs
            .entry(event.job)
            .or_insert_with(|| JobRow::from_event(event));
        row.progress = event.progress.clone();
        let line = match &event.kind {
            EventKind::Started => {
                row.state = JobState::Running;
                Some(format!("[{}] started  {}", row.id, row.label))
            }
            EventKind::Progress => None,
            EventKind::FileDone { path, .. } => {
                row.last_done = Some(path.to_string());
                None
            }
            EventKind::Finished(summary) => {
                row.state = JobState::Done;
                Some(format!(
                    "[{}] done     {}  ({} files, {})",
                    row.id,
                    row.label,
                    summary.files,
                    crate::shell::format::size(summary.bytes)
                ))
            }
            EventKind::Failed(error) => {
                row.state = JobState::Failed;
                row.error = Some(error.to_string());
                Some(format!("[{}] failed   {}: {error}", row.id, row.label))
            }
            EventKind::Cancelled => {
                row.state = JobState::Cancelled;
                Some(format!("[{}] cancelled  {}", row.id, row.label))
            }
            EventKind::Stopped => {
                row.state = JobState::Stopped;
                Some(format!("[{}] stopped  {}", row.id, row.label))
            }
            EventKind::Continued => {
                row.state = JobState::Running;
                Some(format!("[{}] continued  {}", row.id, row.label))
            }
            EventKind::Throttled { bwlimit, jobs } => {
                row.bwlimit = *bwlimit;
                let limit = bwlimit.map_or("off".to_string(), |b| {
                    format!("{}/s", crate::shell::format::size(b))
                });
                Some(format!(
                    "[{}] throttled  limit {limit}, -j {jobs}  {}",
                    row.id, row.label
                ))
            }
        };
        if let Some(line) = line {
            self.log(line);
        }
        if event.kind.is_terminal() {
            self.prune_ended();
        }
        self.fix_selection();
    }

    /// Notes that `skipped` events were missed; the loop reloads the job table next.
    pub fn lagged(&mut self, skipped: u64) {
        self.log(format!("missed {skipped} events; job table reloaded"));
    }

    /// Applies a key's action; returns what the loop must do outside the state.
    pub fn handle(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::None => {}
            Action::Quit => return Some(Command::Quit),
            Action::Up => self.step(-1),
            Action::Down => self.step(1),
            Action::AskCancel => {
                if let Some(id) = self.selected_job().map(|j| j.id)
                    && is_live(self.jobs[&id].state)
                {
                    self.mode = Mode::ConfirmCancel(id);
                }
            }
            Action::Confirm => {
                if let Mode::ConfirmCancel(id) = self.mode {
                    self.mode = Mode::Normal;
                    self.log(format!("[{id}] cancel requested"));
                    return Some(Command::Cancel(id));
                }
            }
            Action::ToggleStop => {
                return self.selected_job().and_then(|j| match j.state {
                    JobState::Running => Some(Command::Suspend(j.id)),
                    JobState::Stopped => Some(Command::Resume(j.id)),
                    _ => None,
                });
            }
            Action::Faster | Action::Slower => {
                let row = self.selected.and_then(|id| self.jobs.get_mut(&id))?;
                if !is_live(row.state) {
                    return None;
                }
                let limit = if action == Action::Faster {
                    faster(row.bwlimit)?
                } else {
                    Some(slower(row.bwlimit, row.progress.rate))
                };
                // Shown at once, so that a second press builds on it before the engine's
                // `Throttled` event confirms it.
                row.bwlimit = limit;
                return Some(Command::Throttle(row.id, limit));
            }
            Action::Back => self.mode = Mode::Normal,
            Action::StartFilter => self.mode = Mode::Filter,
            Action::FilterChar(c) => {
                self.filter.push(c);
                self.fix_selection();
            }
            Action::FilterBackspace => {
                self.filter.pop();
                self.fix_selection();
            }
            Action::ClearFilter => {
                self.filter.clear();
                self.mode = Mode::Normal;
                self.fix_selection();
            }
            Action::ToggleHelp => {
                self.mode = if self.mode == Mode::Help {
                    Mode::Normal
                } else {
                    Mode::Help
                }
            }
        }
        None
    }

    /// Rows in display order, filtered: running jobs by id, then ended ones, newest first.
    pub fn visible_jobs(&self) -> Vec<&JobRow> {
        let needle = self.filter.to_lowercase();
        let needle = needle.as_str();
        let matching = || self.jobs.values().filter(move |j| j.matches(needle));
        let running = matching().filter(|j| is_live(j.state));
        let ended = matching().rev().filter(|j| !is_live(j.state));
        running.chain(ended).collect()
    }

    /// The selected row, if any row is visible.
    pub fn selected_job(&self) -> Option<&JobRow> {
        self.selected.and_then(|id| self.jobs.get(&id))
    }

    /// The selected row's position in [`Self::visible_jobs`].
    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected?;
        self.visible_jobs().iter().position(|j| j.id == id)
    }

    pub fn tiers(&self) -> &[TierRow] {
        &self.tiers
    }

    pub fn job(&self, id: JobId) -> Option<&JobRow> {
        self.jobs.get(&id)
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Log lines, oldest first.
    pub fn log_lines(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.log.iter().map(String::as_str)
    }

    pub fn embedded(&self) -> bool {
        self.embedded
    }

    fn log(&mut self, line: String) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    fn step(&mut self, by: isize) {
        let rows = self.visible_jobs();
        if rows.is_empty() {
            return;
        }
        let at = self
            .selected_index()
            .map_or(0, |i| i.saturating_add_signed(by).min(rows.len() - 1));
        self.selected = Some(rows[at].id);
        self.selected_index = at;
    }

    /// Keeps the selection on its job while that job is visible; otherwise on the row now at the
    /// same position, so that a job ending or a filter does not throw the selection to the top.
    fn fix_selection(&mut self) {
        let rows = self.visible_jobs();
        let at = match self
            .selected
            .and_then(|id| rows.iter().position(|j| j.id == id))
        {
            Some(at) => Some(at),
            None if rows.is_empty() => None,
            None => Some(self.selected_index.min(rows.len() - 1)),
        };
        let id = at.map(|at| rows[at].id);
        self.selected = id;
        self.selected_index = at.unwrap_or(0);
        if let Mode::ConfirmCancel(asked) = self.mode
            && self.jobs.get(&asked).is_none_or(|j| !is_live(j.state))
        {
            // The job ended while the question was up: nothing left to cancel.
            self.mode = Mode::Normal;
        }
    }

    fn prune_ended(&mut self) {
        let ended: Vec<JobId> = self
            .jobs
            .values()
            .filter(|j| !is_live(j.state))
            .map(|j| j.id)
            .collect();
        if ended.len() > ENDED_CAPACITY {
            for id in &ended[..ended.len() - ENDED_CAPACITY] {
                self.jobs.remove(id);
            }
        }
    }
}

/// History samples for a minute of sparkline at `interval`, at least 2.
pub fn history_len(interval: Duration) -> usize {
    ((60.0 / interval.as_secs_f64()).ceil() as usize).clamp(2, 600)
}

/// Whether a job is still to end: running or stopped (they list first, and can be cancelled).
fn is_live(state: JobState) -> bool {
    matches!(state, JobState::Running | JobState::Stopped)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mavfs_actors::{Error, ErrorKind, TransferSummary, VPath};

    use super::super::fixtures::{busy_state, event, info, mounts, stats};
    use super::*;

    fn ids(state: &DashboardState) -> Vec<u64> {
        state.visible_jobs().iter().map(|j| j.id.0).collect()
    }

    fn empty() -> DashboardState {
        DashboardState::new(&mounts(), 60, true)
    }

    #[test]
    fn started_adds_a_running_row_and_logs_it() {
        let mut s = empty();
        s.apply(&event(1, EventKind::Started, 0));
        let row = s.job(JobId(1)).unwrap();
        assert_eq!(row.state, JobState::Running);
        assert_eq!(row.label, "push /vram/data1 /vdisk/data1");
        assert_eq!(
            s.log_lines().last(),
            Some("[1] started  push /vram/data1 /vdisk/data1")
        );
        assert_eq!(s.selected_job().map(|j| j.id), Some(JobId(1)));
    }

    #[test]
    fn progress_updates_the_row_without_logging() {
        let mut s = empty();
        s.apply(&event(1, EventKind::Started, 0));
        s.apply(&event(1, EventKind::Progress, 4));
        assert_eq!(s.job(JobId(1)).unwrap().progress.bytes_done, 4 << 20);
        assert_eq!(s.log_lines().len(), 1);
    }

    #[test]
    fn an_event_of_an_unseen_job_makes_its_row() {
        let mut s = empty();
        s.apply(&event(7, EventKind::Progress, 2));
        assert_eq!(s.job(JobId(7)).unwrap().state, JobState::Running);
    }

    #[test]
    fn file_done_records_the_last_file() {
        let mut s = empty();
        let path = VPath::parse("/vdisk/data1/a.bin").unwrap();
        s.apply(&event(1, EventKind::FileDone { path, bytes: 5 }, 1));
        assert_eq!(
            s.job(JobId(1)).unwrap().last_done.as_deref(),
            Some("/vdisk/data1/a.bin")
        );
    }

    #[test]
    fn terminal_events_set_the_outcome() {
        let mut s = empty();
        let summary = TransferSummary {
            files: 4,
            dirs: 1,
            bytes: 8 << 20,
            elapsed: Duration::from_secs(4),
        };
        s.apply(&event(1, EventKind::Finished(summary), 8));
        let error =
            Error::new(ErrorKind::NoSpace, "write").with_path(&VPath::parse("/vram/x").unwrap());
        s.apply(&event(2, EventKind::Failed(error), 3));
        s.apply(&event(3, EventKind::Cancelled, 1));
        assert_eq!(s.job(JobId(1)).unwrap().state, JobState::Done);
        assert_eq!(s.job(JobId(2)).unwrap().state, JobState::Failed);
        assert_eq!(s.job(JobId(3)).unwrap().state, JobState::Cancelled);
        let error = s.job(JobId(2)).unwrap().error.clone().unwrap();
        assert!(error.starts_with("/vram/x: "), "{error}");
        let log: Vec<&str> = s.log_lines().collect();
        assert_eq!(
            log[0],
            "[1] done     push /vram/data1 /vdisk/data1  (4 files, 8.00 MiB)"
        );
        assert!(log[1].starts_with("[2] failed   push /vram/data2 /vdisk/data2: /vram/x: "));
        assert_eq!(log[2], "[3] cancelled  push /vram/data3 /vdisk/data3");
    }

    #[test]
    fn running_jobs_come_first_then_ended_ones_newest_first() {
        let s = busy_state();
        assert_eq!(ids(&s), vec![1, 3, 4, 2]);
    }

    #[test]
    fn a_reload_after_lag_replaces_the_rows_events_built() {
        let mut s = empty();
        s.apply(&event(1, EventKind::Started, 0));
        s.apply(&event(2, EventKind::Started, 0));
        // Events of job 2's end and job 3's whole life were missed.
        s.lagged(5);
        s.load(Snapshot {
            taken: std::time::Instant::now(),
            stats: stats(0),
            jobs: Some(vec![
                info(1, JobState::Running, 4),
                info(2, JobState::Done, 8),
                info(3, JobState::Running, 1),
            ]),
        });
        assert_eq!(ids(&s), vec![1, 3, 2]);
        assert_eq!(s.job(JobId(1)).unwrap().progress.bytes_done, 4 << 20);
        assert_eq!(
            s.log_lines().last(),
            Some("missed 5 events; job table reloaded")
        );
    }

    #[test]
    fn the_filter_matches_command_state_or_id() {
        let mut s = busy_state();
        for c in "data3".chars() {
            s.handle(Action::FilterChar(c));
        }
        assert_eq!(ids(&s), vec![3]);
        s.handle(Action::ClearFilter);
        for c in "DONE".chars() {
            s.handle(Action::FilterChar(c));
        }
        assert_eq!(ids(&s), vec![2]);
        s.handle(Action::ClearFilter);
        s.handle(Action::FilterChar('4'));
        assert_eq!(ids(&s), vec![4]);
        s.handle(Action::FilterBackspace);
        assert_eq!(ids(&s), vec![1, 3, 4, 2]);
    }

    #[test]
    fn the_selection_stays_on_its_job_as_rows_change() {
        let mut s = busy_state();
        s.handle(Action::Down); // 1 -> 3
        assert_eq!(s.selected_job().unwrap().id, JobId(3));
        // A new running job sorts before job 3's position changes nothing for the selection...
        s.apply(&event(0, EventKind::Started, 0));
        assert_eq!(ids(&s), vec![0, 1, 3, 4, 2]);
        assert_eq!(s.selected_job().unwrap().id, JobId(3));
        // ...nor does job 3 ending and moving down among the ended ones.
        s.apply(&event(3, EventKind::Cancelled, 6));
        assert_eq!(ids(&s), vec![0, 1, 4, 3, 2]);
        assert_eq!(s.selected_job().unwrap().id, JobId(3));
        assert_eq!(s.selected_index(), Some(3));
    }

    #[test]
    fn a_filtered_out_selection_moves_to_the_row_at_its_place() {
        let mut s = busy_state();
        s.handle(Action::Down);
        s.handle(Action::Down); // on job 4
        s.handle(Action::FilterChar('r')); // "running" and every "push ... /vdisk/..." match
        assert!(ids(&s).contains(&4));
        s.handle(Action::FilterChar('u')); // "ru": running only
        assert_eq!(ids(&s), vec![1, 3]);
        assert_eq!(s.selected_job().unwrap().id, JobId(3));
    }

    #[test]
    fn up_and_down_stop_at_the_ends() {
        let mut s = busy_state();
        s.handle(Action::Up);
        assert_eq!(s.selected_index(), Some(0));
        for _ in 0..10 {
            s.handle(Action::Down);
        }
        assert_eq!(s.selected_index(), Some(3));
    }

    #[test]
    fn cancel_asks_and_only_yes_cancels() {
        let mut s = busy_state();
        assert_eq!(s.handle(Action::AskCancel), None);
        assert_eq!(*s.mode(), Mode::ConfirmCancel(JobId(1)));
        assert_eq!(s.handle(Action::Back), None);
        assert_eq!(*s.mode(), Mode::Normal);
        s.handle(Action::AskCancel);
        assert_eq!(s.handle(Action::Confirm), Some(Command::Cancel(JobId(1))));
        assert_eq!(*s.mode(), Mode::Normal);
    }

    #[test]
    fn an_ended_job_cannot_be_cancelled_and_ending_closes_the_question() {
        let mut s = busy_state();
        s.handle(Action::Down);
        s.handle(Action::Down); // job 4, cancelled
        s.handle(Action::AskCancel);
        assert_eq!(*s.mode(), Mode::Normal);
        s.handle(Action::Up); // job 3, running
        s.handle(Action::AskCancel);
        s.apply(&event(3, EventKind::Cancelled, 6));
        assert_eq!(*s.mode(), Mode::Normal);
        assert_eq!(s.handle(Action::Confirm), None);
    }

    #[test]
    fn p_stops_a_running_job_and_continues_a_stopped_one() {
        let mut s = busy_state();
        assert_eq!(
            s.handle(Action::ToggleStop),
            Some(Command::Suspend(JobId(1)))
        );
        // The row changes on the engine's event, not on the key.
        assert_eq!(s.job(JobId(1)).unwrap().state, JobState::Running);
        s.apply(&event(1, EventKind::Stopped, 4));
        let row = s.job(JobId(1)).unwrap();
        assert_eq!(row.state, JobState::Stopped);
        assert_eq!(
            s.log_lines().last(),
            Some("[1] stopped  push /vram/data1 /vdisk/data1")
        );
        // Still listed with the live jobs, and still selected.
        assert_eq!(ids(&s), vec![1, 3, 4, 2]);
        assert_eq!(
            s.handle(Action::ToggleStop),
            Some(Command::Resume(JobId(1)))
        );
        s.apply(&event(1, EventKind::Continued, 4));
        assert_eq!(s.job(JobId(1)).unwrap().state, JobState::Running);
        // An ended job has nothing to stop.
        s.handle(Action::Down);
        s.handle(Action::Down); // job 4, cancelled
        assert_eq!(s.handle(Action::ToggleStop), None);
    }

    #[test]
    fn plus_and_minus_double_and_halve_the_limit() {
        let mut s = busy_state();
        s.handle(Action::Down); // job 3, limited to 4 MiB/s
        let limit = |s: &DashboardState| s.job(JobId(3)).unwrap().bwlimit;
        assert_eq!(limit(&s), Some(4 << 20));
        assert_eq!(
            s.handle(Action::Faster),
            Some(Command::Throttle(JobId(3), Some(8 << 20)))
        );
        // Shown at once, so that the next press doubles again.
        assert_eq!(limit(&s), Some(8 << 20));
        s.handle(Action::Faster);
        assert_eq!(limit(&s), Some(16 << 20));
        for _ in 0..3 {
            s.handle(Action::Slower);
        }
        assert_eq!(limit(&s), Some(2 << 20));
        // The engine's event is the final word.
        s.apply(&event(
            3,
            EventKind::Throttled {
                bwlimit: Some(5 << 20),
                jobs: 4,
            },
            6,
        ));
        assert_eq!(limit(&s), Some(5 << 20));
        s.apply(&event(
            3,
            EventKind::Throttled {
                bwlimit: None,
                jobs: 4,
            },
            6,
        ));
        assert_eq!(limit(&s), None);
    }

    #[test]
    fn minus_on_an_unlimited_job_sets_half_its_rate_and_plus_does_nothing() {
        let mut s = busy_state(); // job 1: no limit, 2 MiB/s
        assert_eq!(s.handle(Action::Faster), None);
        assert_eq!(
            s.handle(Action::Slower),
            Some(Command::Throttle(JobId(1), Some(1 << 20)))
        );
        // Without a rate yet: 100 MiB/s.
        let mut s = empty();
        let mut started = event(9, EventKind::Started, 0);
        started.progress.rate = 0.0;
        s.apply(&started);
        assert_eq!(
            s.handle(Action::Slower),
            Some(Command::Throttle(JobId(9), Some(DEFAULT_SLOWER)))
        );
        // Ended jobs are not throttled.
        s.apply(&event(9, EventKind::Cancelled, 0));
        assert_eq!(s.handle(Action::Slower), None);
    }

    #[test]
    fn the_limit_rules_at_their_ends() {
        assert_eq!(faster(None), None);
        assert_eq!(faster(Some(1 << 20)), Some(Some(2 << 20)));
        assert_eq!(faster(Some(MAX_LIMIT / 2)), Some(Some(MAX_LIMIT)));
        assert_eq!(faster(Some(MAX_LIMIT)), Some(None));
        assert_eq!(faster(Some(u64::MAX)), Some(None));
        assert_eq!(slower(Some(8 << 20), 1e9), 4 << 20);
        assert_eq!(slower(None, 6.0 * (1 << 20) as f64), 3 << 20);
        assert_eq!(slower(None, 0.0), DEFAULT_SLOWER);
        assert_eq!(slower(Some(MIN_LIMIT), 0.0), MIN_LIMIT);
        assert_eq!(slower(None, 10.0), MIN_LIMIT);
    }

    #[test]
    fn throughput_is_read_and_written_bytes_over_time_each_way() {
        let s = busy_state();
        let (vram, vdisk) = (&s.tiers()[0], &s.tiers()[1]);
        assert_eq!((vram.read.rate, vram.write.rate), (2 << 20, 4 << 20));
        assert_eq!(vram.read.history, [2 << 20, 2 << 20]);
        assert_eq!(vram.write.history, [4 << 20, 4 << 20]);
        assert_eq!((vdisk.read.rate, vdisk.write.rate), (0, 2 << 20));
    }

    #[test]
    fn traffic_that_keeps_the_byte_count_still_shows() {
        // Reads, and a file rewritten with as many bytes: the stored bytes do not move.
        let mut s = empty();
        let t0 = std::time::Instant::now();
        for (secs, moved) in [(0, 0), (2, 10 << 20)] {
            let mut stats = stats(8);
            stats[1].io = IoCounters {
                bytes_read: moved,
                bytes_written: moved / 2,
            };
            s.load(Snapshot {
                taken: t0 + Duration::from_secs(secs),
                stats,
                jobs: None,
            });
        }
        let vdisk = &s.tiers()[1];
        assert_eq!((vdisk.read.rate, vdisk.write.rate), (5 << 20, 5 << 19));
    }

    #[test]
    fn counters_that_go_back_count_as_no_traffic() {
        let t0 = std::time::Instant::now();
        let counters = |n: u64| IoCounters {
            bytes_read: n,
            bytes_written: n,
        };
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            rates((counters(100), t0), (counters(5), later)),
            Some((0, 0))
        );
        assert_eq!(rates((counters(0), t0), (counters(9), t0)), None);
    }

    #[test]
    fn usage_figures_are_kept_as_the_engine_gave_them() {
        let s = busy_state();
        let vdisk = &s.tiers()[1];
        assert!(vdisk.stats.usage.approximate);
        assert_eq!(vdisk.capacity(), Some(200 << 30));
        assert_eq!(vdisk.used(), 150 << 30);
        assert_eq!(vdisk.stats.usage.available, Some(40 << 30));
        // A capacity from the config alone: the mount's own bytes fill it.
        let mut s = empty();
        let mut stats = stats(16);
        stats[0].usage.capacity = None;
        stats[0].usage.used = None;
        s.load(Snapshot {
            taken: std::time::Instant::now(),
            stats,
            jobs: None,
        });
        assert_eq!(s.tiers()[0].capacity(), Some(64 << 20));
        assert_eq!(s.tiers()[0].used(), 16 << 20);
    }

    #[test]
    fn history_and_log_are_bounded() {
        let mut s = DashboardState::new(&mounts(), 3, true);
        let t0 = std::time::Instant::now();
        for i in 0..10 {
            s.load(Snapshot {
                taken: t0 + Duration::from_secs(i),
                stats: stats(i),
                jobs: None,
            });
        }
        assert_eq!(s.tiers()[0].read.history.len(), 3);
        assert_eq!(s.tiers()[0].write.history.len(), 3);
        for i in 0..(LOG_CAPACITY as u64 + 10) {
            s.apply(&event(i, EventKind::Started, 0));
        }
        assert_eq!(s.log_lines().len(), LOG_CAPACITY);
    }

    #[test]
    fn ended_jobs_are_bounded() {
        let mut s = empty();
        for i in 0..(ENDED_CAPACITY as u64 + 5) {
            s.apply(&event(i, EventKind::Cancelled, 0));
        }
        assert_eq!(s.visible_jobs().len(), ENDED_CAPACITY);
        assert!(s.job(JobId(4)).is_none() && s.job(JobId(5)).is_some());
    }

    #[test]
    fn a_minute_of_history_at_any_interval() {
        assert_eq!(history_len(Duration::from_secs(1)), 60);
        assert_eq!(history_len(Duration::from_millis(500)), 120);
        assert_eq!(history_len(Duration::from_secs(120)), 2);
    }
}
