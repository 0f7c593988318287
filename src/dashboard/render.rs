//! Drawing a [`DashboardState`] into a frame: one function per region, no I/O, no clock (every
//! figure comes from the state), so a render is a pure function that tests compare cell by cell.
//!
//! Layout, top to bottom: tiers (one row per mount), jobs, then the selected job's detail beside
//! the event log, and a one-line footer. A terminal smaller than [`MIN_WIDTH`]x[`MIN_HEIGHT`]
//! drops the detail and the log first, then the tiers, and narrows the job table to its key
//! columns, rather than squeezing every panel until none reads.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use mavfs_actors::quote::shell_escape;
use mavfs_actors::{JobState, Progress};

use super::input::KEYS;
use super::state::{DashboardState, JobRow, Mode, TierRow};
use crate::shell::format::size;

/// Below this width or height the detail and log panels are dropped.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// Height of the detail and log row.
const BOTTOM_HEIGHT: u16 = 8;
/// Sparkline glyphs, lowest to highest.
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Draws the whole dashboard.
pub fn render(frame: &mut Frame, state: &DashboardState) {
    let area = frame.area();
    let full = area.width >= MIN_WIDTH && area.height >= MIN_HEIGHT;
    let tiers_height = tiers_height(state);
    // Tiers stay while the jobs panel keeps room for a header and three rows.
    let show_tiers = area.height >= tiers_height + 1 + 6;
    let [tiers, jobs, bottom, footer] = Layout::vertical([
        Constraint::Length(if show_tiers { tiers_height } else { 0 }),
        Constraint::Min(0),
        Constraint::Length(if full { BOTTOM_HEIGHT } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(area);
    if show_tiers {
        render_tiers(frame, tiers, state);
    }
    render_jobs(frame, jobs, state);
    if full {
        let [detail, log] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(bottom);
        render_detail(frame, detail, state);
        render_log(frame, log, state);
    }
    render_footer(frame, footer, state);
    if *state.mode() == Mode::Help {
        render_help(frame, area);
    }
}

/// A table column: its header, its width, and when it goes as the table narrows (`0`: never;
/// otherwise lower ranks go first).
struct Column {
    header: &'static str,
    width: u16,
    drop_rank: u8,
}

/// Which of `columns` fit beside a flexible column of at least `flex_min` cells in `inner`
/// cells (one cell between columns, `reserved` for a highlight symbol): the optional ones go in
/// rank order until the rest fits, so a narrow table loses whole columns instead of truncating
/// every one.
fn fit(columns: &[Column], inner: u16, flex_min: u16, reserved: u16) -> Vec<bool> {
    let mut keep = vec![true; columns.len()];
    let need = |keep: &[bool]| -> u16 {
        let kept = columns.iter().zip(keep).filter(|(_, k)| **k);
        kept.map(|(c, _)| c.width + 1).sum::<u16>() + flex_min + reserved
    };
    let mut ranks: Vec<(u8, usize)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.drop_rank > 0)
        .map(|(i, c)| (c.drop_rank, i))
        .collect();
    ranks.sort();
    for (_, i) in ranks {
        if need(&keep) <= inner {
            break;
        }
        keep[i] = false;
    }
    keep
}

/// Per mount, on two lines: path, backend, tier, files, directories and bytes (`~` while a
/// disk store's count is approximate); a capacity gauge of the bytes in use over `of` the
/// capacity; bytes used over bytes free; bytes read over bytes written per second, beside a
/// sparkline of each over the last minute. The mount path and the sparkline share what the other
/// columns leave.
pub fn render_tiers(frame: &mut Frame, area: Rect, state: &DashboardState) {
    const MOUNT_MIN: u16 = 8;
    const SPARK_MIN: u16 = 8;
    let inner = area.width.saturating_sub(2);
    let bar_width: u16 = if inner >= MIN_WIDTH { 10 } else { 6 };
    let columns = [
        Column {
            header: "backend",
            width: 7,
            drop_rank: 4,
        },
        Column {
            header: "tier",
            width: 4,
            drop_rank: 1,
        },
        Column {
            header: "files",
            width: 7,
            drop_rank: 3,
        },
        Column {
            header: "dirs",
            width: 6,
            drop_rank: 2,
        },
        Column {
            header: "bytes",
            width: 11,
            drop_rank: 0,
        },
        Column {
            header: "capacity",
            width: bar_width + 5,
            drop_rank: 6,
        },
        Column {
            header: "used\nfree",
            width: 10,
            drop_rank: 5,
        },
        Column {
            header: "read/s\nwrite/s",
            width: 13,
            drop_rank: 0,
        },
    ];
    let keep = fit(&columns, inner, MOUNT_MIN + SPARK_MIN + 1, 0);
    let used: u16 = columns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c.width + 1)
        .sum();
    // Explicit widths for both: the layout solver would give a `Min` column everything spare.
    let room = inner.saturating_sub(used + 1);
    let spark_width = room.saturating_sub(MOUNT_MIN).min(30);
    let mount_width = room - spark_width;
    let rows = state.tiers().iter().map(|t| {
        let usage = &t.stats.usage;
        let about = if usage.approximate { "~" } else { "" };
        let (gauge, of) = match t.capacity() {
            // No capacity is known, or the holder reports none (0).
            Some(capacity) if capacity > 0 => {
                let of = format!("of {}", size(capacity));
                // A narrow column keeps the figure and drops the word.
                let fits = of.chars().count() <= usize::from(bar_width + 5);
                (
                    gauge(t.used(), capacity, usize::from(bar_width)),
                    if fits { of } else { size(capacity) },
                )
            }
            _ => ("-".to_string(), String::new()),
        };
        let free = usage.available.map_or_else(|| "-".to_string(), size);
        let cells = [
            Cell::from(t.stats.backend.as_str()),
            Cell::from(t.stats.tier.as_str()),
            Cell::from(format!("{about}{}", usage.files)),
            Cell::from(format!("{about}{}", usage.dirs)),
            Cell::from(format!("{about}{}", size(usage.bytes))),
            Cell::from(format!("{gauge}\n{of}")),
            Cell::from(format!(
                "{}\n{free}",
                usage.used.map_or_else(|| "-".to_string(), size)
            )),
            Cell::from(format!("{}/s\n{}/s", size(t.read.rate), size(t.write.rate))),
        ];
        let kept = cells
            .into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c);
        let spark = Cell::from(sparklines(t, usize::from(spark_width))).cyan();
        Row::new(
            std::iter::once(Cell::from(t.stats.path.to_string()))
                .chain(kept)
                .chain([spark]),
        )
        .height(2)
    });
    let kept = || {
        columns
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c)
    };
    let header = std::iter::once("mount")
        .chain(kept().map(|c| c.header))
        .chain(["last min"]);
    let widths = std::iter::once(Constraint::Length(mount_width))
        .chain(kept().map(|c| Constraint::Length(c.width)))
        .chain([Constraint::Length(spark_width)]);
    let table = Table::new(rows, widths)
        .header(Row::new(header).height(2).bold())
        .block(Block::bordered().title(" tiers "));
    frame.render_widget(table, area);
}

/// The height of the tiers panel: a border above and below, a two-line header, two lines a mount.
fn tiers_height(state: &DashboardState) -> u16 {
    2 + 2 + 2 * state.tiers().len() as u16
}

/// The job table: running jobs first, then ended ones; the selected row is highlighted. The
/// command column takes what the others leave, and the others go (files, eta, bytes, rate,
/// elapsed) before it shrinks below `COMMAND_MIN`.
pub fn render_jobs(frame: &mut Frame, area: Rect, state: &DashboardState) {
    const COMMAND_MIN: u16 = 24;
    /// Where the limit column goes among the others: after the rate.
    const LIMIT_AT: usize = 6;
    const HIGHLIGHT: &str = "> ";
    let inner = area.width.saturating_sub(2);
    let bar_width: u16 = if inner >= MIN_WIDTH { 10 } else { 6 };
    let mut columns = vec![
        Column {
            header: "job",
            width: 4,
            drop_rank: 0,
        },
        Column {
            header: "state",
            width: 9,
            drop_rank: 0,
        },
        Column {
            header: "progress",
            width: bar_width + 6,
            drop_rank: 0,
        },
        Column {
            header: "bytes",
            width: 19,
            drop_rank: 3,
        },
        Column {
            header: "files",
            width: 7,
            drop_rank: 1,
        },
        Column {
            header: "rate",
            width: 12,
            drop_rank: 4,
        },
        Column {
            header: "eta",
            width: 7,
            drop_rank: 2,
        },
        Column {
            header: "elapsed",
            width: 7,
            drop_rank: 5,
        },
    ];
    let jobs = state.visible_jobs();
    // The limit column shows only while some job has a limit, so that the usual view keeps
    // its files column at 120 cells.
    let show_limit = jobs.iter().any(|j| j.bwlimit.is_some());
    if show_limit {
        columns.insert(
            LIMIT_AT,
            Column {
                header: "limit",
                width: 10,
                drop_rank: 4,
            },
        );
    }
    let keep = fit(&columns, inner, COMMAND_MIN, HIGHLIGHT.len() as u16);
    let rows = jobs.iter().map(|j| {
        let p = &j.progress;
        let running = j.state == JobState::Running;
        let mut cells = vec![
            Cell::from(format!("%{}", j.id)),
            Cell::from(j.state.as_str()).style(state_style(j.state)),
            Cell::from(bar(p, usize::from(bar_width))),
            Cell::from(format!("{}/{}", size(p.bytes_done), size(p.bytes_total))),
            Cell::from(format!("{}/{}", p.files_done, p.files_total)),
            Cell::from(if running {
                format!("{}/s", size(p.rate as u64))
            } else {
                String::new()
            }),
            Cell::from(eta(j)),
            Cell::from(clock(p.elapsed.as_secs())),
        ];
        if show_limit {
            cells.insert(
                LIMIT_AT,
                Cell::from(j.bwlimit.map_or_else(String::new, limit)),
            );
        }
        let mut kept: Vec<Cell> = cells
            .into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c)
            .collect();
        kept.insert(2, Cell::from(j.label.clone()));
        Row::new(kept)
    });
    let kept = || {
        columns
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c)
    };
    let mut header: Vec<&str> = kept().map(|c| c.header).collect();
    header.insert(2, "command");
    let mut widths: Vec<Constraint> = kept().map(|c| Constraint::Length(c.width)).collect();
    widths.insert(2, Constraint::Min(COMMAND_MIN.min(inner)));
    let title = if state.filter().is_empty() {
        format!(" jobs ({}) ", jobs.len())
    } else {
        format!(" jobs ({}) matching \"{}\" ", jobs.len(), state.filter())
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).bold())
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol(HIGHLIGHT);
    let mut table_state = TableState::new().with_selected(state.selected_index());
    frame.render_stateful_widget(table, area, &mut table_state);
}

/// `paths` quoted as `ls` quotes names on a terminal, so that a hostile name cannot drive it.
fn quoted_all(paths: &[String]) -> String {
    let quoted: Vec<_> = paths.iter().map(|p| shell_escape(p)).collect();
    quoted.join(" ")
}

/// The selected job: command, sources, destination, file in flight or last committed, error.
/// Paths are quoted as `ls` quotes them on a terminal.
pub fn render_detail(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let lines = match state.selected_job() {
        None => vec![Line::from("no job selected")],
        Some(j) => {
            let mut lines = vec![
                Line::from(vec![
                    Span::from(format!("%{} ", j.id)).bold(),
                    Span::styled(j.state.as_str(), state_style(j.state)),
                    Span::from(format!("  {}", j.label)),
                ]),
                Line::from(format!("from: {}", quoted_all(&j.sources))),
                Line::from(format!("to:   {}", shell_escape(&j.dest))),
            ];
            if let Some(current) = &j.progress.current
                && j.state == JobState::Running
            {
                lines.push(Line::from(format!(
                    "file: {}",
                    shell_escape(current.as_str())
                )));
            } else if let Some(done) = &j.last_done {
                lines.push(Line::from(format!("last: {}", shell_escape(done))));
            }
            if let Some(error) = &j.error {
                lines.push(Line::from(format!("error: {error}")).red());
            }
            lines
        }
    };
    let paragraph = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" detail "));
    frame.render_widget(paragraph, area);
}

/// The newest log lines that fit, oldest at the top.
pub fn render_log(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let fit = area.height.saturating_sub(2) as usize;
    let lines = state.log_lines();
    let skip = lines.len().saturating_sub(fit);
    let lines: Vec<Line> = lines.skip(skip).map(Line::from).collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" events ")),
        area,
    );
}

/// The prompt of the current mode, or the keys; embedded, the note about other processes.
pub fn render_footer(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let line = match state.mode() {
        Mode::ConfirmCancel(id) => {
            let label = state.job(*id).map_or("", |j| j.label.as_str());
            Line::from(format!("cancel %{id} ({label})? y/n"))
                .yellow()
                .bold()
        }
        Mode::Filter => Line::from(format!("/{}▏ Enter keeps, Esc clears", state.filter())),
        Mode::Normal | Mode::Help => {
            const KEYS_LONG: &str =
                "q quit  ↑↓ jk select  x cancel  p stop  +- limit  / filter  ? help";
            const KEYS_SHORT: &str = "q quit  ? help";
            const NOTE_LONG: &str =
                "  · embedded: other processes' transfers show only with `mavfs serve`";
            const NOTE_SHORT: &str = "  · embedded: only this process's jobs";
            let note = if state.embedded() {
                (NOTE_LONG, NOTE_SHORT)
            } else {
                ("", "")
            };
            // The longest wording that fits, rather than a cut-off sentence.
            let width = usize::from(area.width);
            let fits = |a: &str, b: &str| a.chars().count() + b.chars().count() <= width;
            let (keys, note) = if fits(KEYS_LONG, note.0) {
                (KEYS_LONG, note.0)
            } else if fits(KEYS_LONG, note.1) {
                (KEYS_LONG, note.1)
            } else {
                (KEYS_SHORT, note.1)
            };
            Line::from(format!("{keys}{note}"))
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The key help, over the middle of the screen.
fn render_help(frame: &mut Frame, area: Rect) {
    let width = 70.min(area.width);
    let height = (KEYS.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| Line::from(format!("{key:>14}  {what}")))
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ")),
        popup,
    );
}

/// A limit in at most 10 cells: `4 MiB/s`, `12.5 MiB/s`, `100 MiB/s`.
fn limit(bytes_per_sec: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes_per_sec as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let number = if value >= 100.0 {
        format!("{value:.0}")
    } else {
        let one = format!("{value:.1}");
        one.strip_suffix(".0").map_or(one.clone(), str::to_string)
    };
    format!("{number} {}/s", UNITS[unit])
}

fn state_style(state: JobState) -> Style {
    match state {
        JobState::Running => Style::new().cyan(),
        JobState::Stopped => Style::new().magenta(),
        JobState::Done => Style::new().green(),
        JobState::Failed => Style::new().red(),
        JobState::Cancelled => Style::new().yellow(),
    }
}

/// `[#####.....]  50%` over `width` cells of bar.
fn bar(p: &Progress, width: usize) -> String {
    let fraction = if p.bytes_total > 0 {
        p.bytes_done as f64 / p.bytes_total as f64
    } else if p.files_total > 0 {
        p.files_done as f64 / p.files_total as f64
    } else {
        0.0
    }
    .clamp(0.0, 1.0);
    let filled = (fraction * width as f64).round() as usize;
    format!(
        "{}{} {:>3}%",
        "█".repeat(filled),
        "░".repeat(width - filled),
        (fraction * 100.0).floor() as u32
    )
}

/// A capacity gauge like the job bar: `used` of `capacity` (more than 0), the percentage
/// rounded.
fn gauge(used: u64, capacity: u64, width: usize) -> String {
    let fraction = (used as f64 / capacity as f64).clamp(0.0, 1.0);
    let filled = (fraction * width as f64).round() as usize;
    format!(
        "{}{} {:>3}%",
        "█".repeat(filled),
        "░".repeat(width - filled),
        (fraction * 100.0).round() as u32
    )
}

/// Two sparklines of at most `width` cells, read above write, over the whole history (a
/// minute): when it has more samples than cells, each cell shows the busiest of the samples it
/// stands for, so that a burst is never averaged away. Both lines share one scale, so the
/// taller line is the busier direction; blank before any sample.
fn sparklines(tier: &TierRow, width: usize) -> String {
    let read = squeeze(&tier.read.history, width);
    let write = squeeze(&tier.write.history, width);
    let max = read.iter().chain(&write).copied().max().unwrap_or(0);
    let line = |samples: &[u64]| -> String {
        samples
            .iter()
            .map(|&s| {
                if max == 0 {
                    SPARKS[0]
                } else {
                    let level = (s as f64 / max as f64) * (SPARKS.len() - 1) as f64;
                    SPARKS[level.round() as usize]
                }
            })
            .collect()
    };
    format!("{}\n{}", line(&read), line(&write))
}

/// `samples` in at most `width` values, oldest first: the maximum of each run of
/// `ceil(len / width)` samples, the runs counted from the newest, so that only the oldest run
/// may be short.
fn squeeze(samples: &VecDeque<u64>, width: usize) -> Vec<u64> {
    if width == 0 {
        return Vec::new();
    }
    let per = samples.len().div_ceil(width).max(1);
    let newest_first: Vec<u64> = samples.iter().rev().copied().collect();
    let mut cells: Vec<u64> = newest_first
        .chunks(per)
        .map(|run| run.iter().copied().max().unwrap_or(0))
        .collect();
    cells.reverse();
    cells
}

/// Time left at the current rate, for running jobs with a known total.
fn eta(job: &JobRow) -> String {
    let p = &job.progress;
    if job.state != JobState::Running || p.rate <= 0.0 || p.bytes_total < p.bytes_done {
        return String::new();
    }
    clock(((p.bytes_total - p.bytes_done) as f64 / p.rate).ceil() as u64)
}

/// Seconds as `m:ss`, or `h:mm:ss` from an hour.
fn clock(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    use super::super::fixtures::busy_state;
    use super::*;

    fn draw(state: &DashboardState, width: u16, height: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, state)).unwrap();
        terminal.backend().buffer().clone()
    }

    /// Compares symbols only: styles are checked by eye, the layout by these tests.
    #[track_caller]
    fn assert_symbols(mut actual: Buffer, expected: Buffer) {
        let area = actual.area;
        actual.set_style(area, Style::reset());
        assert_eq!(actual, expected);
    }

    #[test]
    fn a_full_terminal_shows_every_panel() {
        #[rustfmt::skip]
        let expected = Buffer::with_lines([
            "┌ tiers ───────────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
            "│mount    backend tier files   dirs   bytes       capacity        used       read/s        last min                    │",
            "│                                                                 free       write/s                                   │",
            "│/vram    memory  hot  3       1      16.00 MiB   ███░░░░░░░  25% 16.00 MiB  2.00 MiB/s    ▅▅                          │",
            "│                                                 of 64.00 MiB    48.00 MiB  4.00 MiB/s    ██                          │",
            "│/vdisk   disk    cold ~2      ~1     ~3.00 MiB   ████████░░  75% 150.00 GiB 0 B/s         ▁▁                          │",
            "│                                                 of 200.00 GiB   40.00 GiB  2.00 MiB/s    ██                          │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
            "┌ jobs (4) ────────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
            "│  job  state     command                  progress         bytes               rate         limit      eta     elapsed│",
            "│> %1   running   push /vram/data1 /vdisk/ █████░░░░░  50%  4.00 MiB/8.00 MiB   2.00 MiB/s              0:02    0:04   │",
            "│  %3   running   push /vram/data3 /vdisk/ ████████░░  75%  6.00 MiB/8.00 MiB   2.00 MiB/s   4 MiB/s    0:01    0:06   │",
            "│  %4   cancelled push /vram/data4 /vdisk/ █░░░░░░░░░  12%  1.00 MiB/8.00 MiB                                   0:01   │",
            "│  %2   done      push /vram/data2 /vdisk/ ██████████ 100%  8.00 MiB/8.00 MiB                                   0:08   │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "│                                                                                                                      │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
            "┌ detail ──────────────────────────────────────────────────┐┌ events ──────────────────────────────────────────────────┐",
            "│%1 running  push /vram/data1 /vdisk/data1                 ││[4] started  push /vram/data4 /vdisk/data4                │",
            "│from: /vram/data1                                         ││[4] cancelled  push /vram/data4 /vdisk/data4              │",
            "│to:   /vdisk/data1                                        ││                                                          │",
            "│file: /vram/data1/b.bin                                   ││                                                          │",
            "│                                                          ││                                                          │",
            "│                                                          ││                                                          │",
            "└──────────────────────────────────────────────────────────┘└──────────────────────────────────────────────────────────┘",
            "q quit  ↑↓ jk select  x cancel  p stop  +- limit  / filter  ? help  · embedded: only this process's jobs                ",
        ]);
        assert_symbols(draw(&busy_state(), 120, 40), expected);
    }

    #[test]
    fn a_small_terminal_drops_detail_and_log_and_narrows_the_tables() {
        #[rustfmt::skip]
        let expected = Buffer::with_lines([
            "┌ tiers ───────────────────────────────────────────────────┐",
            "│mount    bytes       capacity    read/s        last min   │",
            "│                                 write/s                  │",
            "│/vram    16.00 MiB   ██░░░░  25% 2.00 MiB/s    ▅▅         │",
            "│                     64.00 MiB   4.00 MiB/s    ██         │",
            "│/vdisk   ~3.00 MiB   █████░  75% 0 B/s         ▁▁         │",
            "│                     200.00 GiB  2.00 MiB/s    ██         │",
            "└──────────────────────────────────────────────────────────┘",
            "┌ jobs (4) ────────────────────────────────────────────────┐",
            "│  job  state     command                      progress    │",
            "│> %1   running   push /vram/data1 /vdisk/data ███░░░  50% │",
            "│  %3   running   push /vram/data3 /vdisk/data █████░  75% │",
            "│  %4   cancelled push /vram/data4 /vdisk/data █░░░░░  12% │",
            "│  %2   done      push /vram/data2 /vdisk/data ██████ 100% │",
            "│                                                          │",
            "│                                                          │",
            "│                                                          │",
            "│                                                          │",
            "└──────────────────────────────────────────────────────────┘",
            "q quit  ? help  · embedded: only this process's jobs        ",
        ]);
        assert_symbols(draw(&busy_state(), 60, 20), expected);
    }

    #[test]
    fn any_size_renders_without_panicking_and_tiny_ones_drop_the_tiers() {
        let mut state = busy_state();
        for (w, h) in (0..=130)
            .step_by(13)
            .flat_map(|w| (0..=45).step_by(3).map(move |h| (w, h)))
        {
            draw(&state, w, h);
        }
        state.handle(super::super::input::Action::ToggleHelp);
        for (w, h) in [(120, 40), (60, 20), (20, 5), (1, 1)] {
            draw(&state, w, h);
        }
        let tiny = draw(&busy_state(), 60, 10);
        let top: String = (0..60).map(|x| tiny[(x, 0)].symbol()).collect();
        assert!(top.starts_with("┌ jobs (4) "), "{top}");
    }

    #[test]
    fn a_minute_of_samples_squeezes_into_the_cells_keeping_bursts() {
        let mut minute: VecDeque<u64> = (0..60).map(|_| 1).collect();
        minute[7] = 80; // one burst, long ago
        let cells = squeeze(&minute, 28);
        // Runs of 3 from the newest: 20 cells, the burst in the run of samples 6..9.
        assert_eq!(cells.len(), 20);
        assert_eq!(cells[2], 80);
        assert_eq!(cells.iter().filter(|&&c| c == 1).count(), 19);
        let few: VecDeque<u64> = [1, 2, 3].into();
        assert_eq!(squeeze(&few, 28), [1, 2, 3]);
        assert_eq!(squeeze(&few, 2), [1, 3]);
        assert!(squeeze(&few, 0).is_empty());
    }

    #[test]
    fn read_and_write_sparklines_share_one_scale() {
        let mut state = busy_state();
        let t0 = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // /vdisk: nothing read; written at 2, 2, 0, 8 and 16 MiB/s.
        for (secs, mib) in [(0, 16), (1, 32), (2, 64)] {
            state.load(super::super::state::Snapshot {
                taken: t0 + std::time::Duration::from_secs(secs),
                stats: super::super::fixtures::stats(mib),
                jobs: None,
            });
        }
        let vdisk = &state.tiers()[1];
        assert_eq!(sparklines(vdisk, 30), "▁▁▁▁▁\n▂▂▁▅█");
    }

    #[test]
    fn the_help_popup_lists_the_job_control_keys() {
        let mut state = busy_state();
        state.handle(super::super::input::Action::ToggleHelp);
        let screen = draw(&state, 120, 40);
        let row = |y: u16| -> String { (0..120).map(|x| screen[(x, y)].symbol()).collect() };
        #[rustfmt::skip]
        let expected = [
                "│                        ┌ keys ──────────────────────────────────────────────────────────────┐                        │",
                "│                        │  Up/Down, j/k  select a job                                        │                        │",
                "│                        │             x  cancel the selected job (asks y/n)                  │                        │",
                "│                        │             p  stop the selected job, or continue it               │                        │",
                "│                        │          +, -  double or halve the selected job's limit            │                        │",
                "│                        │                - without a limit: half its rate, or 100 MiB/s      │                        │",
                "│                        │                + past 64 GiB/s: no limit                           │                        │",
                "│                        │             /  filter jobs by text (Enter keeps, Esc clears)       │                        │",
                "│                        │             ?  show or hide this help                              │                        │",
                "│                        │        q, Esc  quit (jobs keep running)                            │                        │",
                "│                        └────────────────────────────────────────────────────────────────────┘                        │",
        ];
        for (y, line) in (14..).zip(expected) {
            assert_eq!(row(y), line, "line {y}");
        }
    }
}
