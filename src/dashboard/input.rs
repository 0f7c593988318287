//! Keys to [`Action`]s: what a key means depends only on the mode, so this is a pure table that
//! tests read like the help screen.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::Mode;

/// What a key asks for; [`super::state::DashboardState::handle`] carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Up,
    Down,
    /// `x`: ask whether to cancel the selected job.
    AskCancel,
    /// `p`: suspend the selected job, or continue it if it is stopped.
    ToggleStop,
    /// `+`: double the selected job's limit.
    Faster,
    /// `-`: halve the selected job's limit, or give it one.
    Slower,
    /// `y` to the cancel question.
    Confirm,
    /// Leave a prompt or the help without doing anything (`n`, Esc, Enter in the filter).
    Back,
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    /// Esc while typing a filter: drop it.
    ClearFilter,
    ToggleHelp,
    Quit,
}

/// The keys and what they do, for the help screen and the README.
pub const KEYS: &[(&str, &str)] = &[
    ("Up/Down, j/k", "select a job"),
    ("x", "cancel the selected job (asks y/n)"),
    ("p", "stop the selected job, or continue it"),
    ("+, -", "double or halve the selected job's limit"),
    ("", "- without a limit: half its rate, or 100 MiB/s"),
    ("", "+ past 64 GiB/s: no limit"),
    ("/", "filter jobs by text (Enter keeps, Esc clears)"),
    ("?", "show or hide this help"),
    ("q, Esc", "quit (jobs keep running)"),
];

/// The action of `key` in `mode`. Only presses count: terminals that report releases and
/// repeats would otherwise act twice.
pub fn map(mode: &Mode, key: KeyEvent) -> Action {
    if key.kind != KeyEventKind::Press {
        return Action::None;
    }
    // Ctrl-C quits from anywhere: raw mode turns it into a key, not a signal.
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Action::Quit;
    }
    match mode {
        Mode::Normal => match key.code {
            KeyCode::Up | KeyCode::Char('k') => Action::Up,
            KeyCode::Down | KeyCode::Char('j') => Action::Down,
            KeyCode::Char('x') => Action::AskCancel,
            KeyCode::Char('p') => Action::ToggleStop,
            // `=` is `+` without Shift on most layouts.
            KeyCode::Char('+') | KeyCode::Char('=') => Action::Faster,
            KeyCode::Char('-') => Action::Slower,
            KeyCode::Char('/') => Action::StartFilter,
            KeyCode::Char('?') => Action::ToggleHelp,
            KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
            _ => Action::None,
        },
        Mode::Filter => match key.code {
            KeyCode::Char(c) => Action::FilterChar(c),
            KeyCode::Backspace => Action::FilterBackspace,
            KeyCode::Enter => Action::Back,
            KeyCode::Esc => Action::ClearFilter,
            KeyCode::Up => Action::Up,
            KeyCode::Down => Action::Down,
            _ => Action::None,
        },
        Mode::ConfirmCancel(_) => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Action::Confirm,
            // Anything else keeps the job: a stray key must never cancel.
            _ => Action::Back,
        },
        Mode::Help => match key.code {
            KeyCode::Char('q') => Action::Quit,
            _ => Action::ToggleHelp,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mavfs_actors::JobId;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn normal_keys_select_cancel_filter_help_and_quit() {
        let m = Mode::Normal;
        assert_eq!(map(&m, press(KeyCode::Up)), Action::Up);
        assert_eq!(map(&m, press(KeyCode::Char('k'))), Action::Up);
        assert_eq!(map(&m, press(KeyCode::Down)), Action::Down);
        assert_eq!(map(&m, press(KeyCode::Char('j'))), Action::Down);
        assert_eq!(map(&m, press(KeyCode::Char('x'))), Action::AskCancel);
        assert_eq!(map(&m, press(KeyCode::Char('/'))), Action::StartFilter);
        assert_eq!(map(&m, press(KeyCode::Char('?'))), Action::ToggleHelp);
        assert_eq!(map(&m, press(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(map(&m, press(KeyCode::Esc)), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(map(&m, ctrl_c), Action::Quit);
    }

    #[test]
    fn job_control_keys_stop_and_throttle() {
        let m = Mode::Normal;
        assert_eq!(map(&m, press(KeyCode::Char('p'))), Action::ToggleStop);
        assert_eq!(map(&m, press(KeyCode::Char('+'))), Action::Faster);
        assert_eq!(map(&m, press(KeyCode::Char('='))), Action::Faster);
        assert_eq!(map(&m, press(KeyCode::Char('-'))), Action::Slower);
        // While typing a filter they are text.
        assert_eq!(
            map(&Mode::Filter, press(KeyCode::Char('p'))),
            Action::FilterChar('p')
        );
    }

    #[test]
    fn only_y_confirms_a_cancel() {
        let m = Mode::ConfirmCancel(JobId(1));
        assert_eq!(map(&m, press(KeyCode::Char('y'))), Action::Confirm);
        for code in [
            KeyCode::Char('n'),
            KeyCode::Char('x'),
            KeyCode::Esc,
            KeyCode::Enter,
        ] {
            assert_eq!(map(&m, press(code)), Action::Back);
        }
    }

    #[test]
    fn filter_mode_takes_text() {
        let m = Mode::Filter;
        assert_eq!(map(&m, press(KeyCode::Char('q'))), Action::FilterChar('q'));
        assert_eq!(map(&m, press(KeyCode::Backspace)), Action::FilterBackspace);
        assert_eq!(map(&m, press(KeyCode::Enter)), Action::Back);
        assert_eq!(map(&m, press(KeyCode::Esc)), Action::ClearFilter);
    }

    #[test]
    fn releases_do_nothing() {
        let mut key = press(KeyCode::Char('q'));
        key.kind = KeyEventKind::Release;
        assert_eq!(map(&Mode::Normal, key), Action::None);
    }
}
