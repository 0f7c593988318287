//! How names are shown to people: the quoting of GNU coreutils, in one place.
//!
//! A name may hold any character but `/` and NUL, so a name in a shared Redis namespace or a disk
//! root can carry ESC or BEL sequences that a terminal would run, or a newline that makes a
//! listing ambiguous. Every place that shows a name picks one [`Style`]:
//!
//! - [`Style::ShellEscape`]: coreutils' `shell-escape` (the default of `ls` on a terminal, and of
//!   every coreutils diagnostic): the name as is when it is safe, else in single quotes, with
//!   control characters as `$'\n'` pieces, so that `a<newline>b` is `'a'$'\n''b'` and ESC is
//!   `''$'\033'`. The result can be typed back into the shell.
//! - [`Style::Escape`]: `ls -b`: C escapes (`a\nb`, `\033`), `\\` and `\ `, no quotes.
//! - [`Style::Literal`]: `ls -N`, and `ls` when stdout is not a terminal: the name as is.
//!
//! On top of a style, [`hide_control`] is `ls -q` (and `ls -N` on a terminal): every control
//! character left becomes `?`.
//!
//! This module depends on nothing else of the engine: [`crate::error_kind`] uses it.
//!
//! Error messages use [`diagnostic`] (shell-escape, and very long names cut), whatever stderr
//! is, as coreutils does; free text in them (an error's detail) goes through [`prose`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// How a name is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The name as is.
    Literal,
    /// Quoted for a POSIX shell when needed, control characters as `$'...'` (GNU `shell-escape`).
    ShellEscape,
    /// C escapes for control characters, `\\` and `\ `, no quotes (GNU `ls -b`).
    Escape,
}

impl Style {
    /// `name` shown in this style.
    pub fn apply(self, name: &str) -> Cow<'_, str> {
        match self {
            Style::Literal => Cow::Borrowed(name),
            Style::ShellEscape => shell_escape(name),
            Style::Escape => escape(name),
        }
    }
}

/// How a listing shows names: a [`Style`], and whether control characters left are `?`.
///
/// The rule of GNU `ls`: on a terminal, [`Style::ShellEscape`] and `?` for control characters;
/// elsewhere (a pipe, a file) [`Style::Literal`], so that scripts get the names byte for byte.
/// `ls -b`, `-N`, `-q` and `--show-control-chars` change the parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// The quoting.
    pub style: Style,
    /// `ls -q`: control characters the style left are shown as `?`.
    pub hide_control: bool,
}

impl Shown {
    /// The default of a listing written to a terminal or, if `terminal` is false, elsewhere.
    pub fn listing(terminal: bool) -> Shown {
        Shown {
            style: if terminal {
                Style::ShellEscape
            } else {
                Style::Literal
            },
            hide_control: terminal,
        }
    }

    /// `name` as the listing shows it.
    pub fn name<'a>(&self, name: &'a str) -> Cow<'a, str> {
        let styled = self.style.apply(name);
        if !self.hide_control {
            return styled;
        }
        match hide_control(&styled) {
            Cow::Borrowed(_) => styled,
            Cow::Owned(hidden) => Cow::Owned(hidden),
        }
    }
}

/// Names in diagnostics longer than this many bytes are cut: `path::MAX_PATH_BYTES`, so that
/// every valid path shows whole. (A literal, not the constant: `path` builds on this module's
/// users, and the module graph stays one-way; a test of `path` holds them equal.)
pub const DIAGNOSTIC_MAX_BYTES: usize = 4096;

/// How many bytes of a cut name a diagnostic keeps, before its `...`.
const DIAGNOSTIC_KEEP_BYTES: usize = 256;

/// The named C escapes; other control characters are written in octal, byte by byte.
fn named_escape(c: char) -> Option<char> {
    Some(match c {
        '\x07' => 'a',
        '\x08' => 'b',
        '\x0c' => 'f',
        '\n' => 'n',
        '\r' => 'r',
        '\t' => 't',
        '\x0b' => 'v',
        _ => return None,
    })
}

/// Writes control character `c` as a C escape: `\n`, or `\033` (each UTF-8 byte in octal).
fn push_c_escape(out: &mut String, c: char) {
    if let Some(e) = named_escape(c) {
        out.push('\\');
        out.push(e);
        return;
    }
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\{b:03o}");
    }
}

/// Whether `c` at index `i` of `name` makes a shell read the name other than as one word.
/// GNU's list: blanks, `! " $ & ' ( ) * ; < = > ? [ \ ^ `` ` `` |`, control characters, `#` and
/// `~` first, and `{` or `}` alone.
fn needs_shell_quotes(name: &str, i: usize, c: char) -> bool {
    match c {
        ' ' | '!' | '"' | '$' | '&' | '\'' | '(' | ')' | '*' | ';' | '<' | '=' | '>' | '?'
        | '[' | '\\' | '^' | '`' | '|' => true,
        '#' | '~' => i == 0,
        '{' | '}' => name.len() == 1,
        c => c.is_control(),
    }
}

/// Whether `c` means the same inside double quotes as in C: GNU then quotes a name holding `'`
/// as `"it's"` rather than `'it'\''s'`.
fn double_quote_safe(name: &str, i: usize, c: char) -> bool {
    match c {
        ' ' | '\'' => true,
        '#' | '~' => i == 0,
        '{' | '}' => name.len() == 1,
        '!' | '"' | '$' | '&' | '(' | ')' | '*' | ';' | '<' | '=' | '>' | '?' | '[' | '\\'
        | '^' | '`' | '|' => false,
        c => !c.is_control(),
    }
}

/// GNU `shell-escape` quoting: `name` unchanged when a shell reads it as one word, else quoted:
/// `'a b'`, `"it's"`, `'a'$'\n''b'`, `''$'\033''[31m'`.
pub fn shell_escape(name: &str) -> Cow<'_, str> {
    if name.is_empty() {
        return Cow::Borrowed("''");
    }
    if !name
        .char_indices()
        .any(|(i, c)| needs_shell_quotes(name, i, c))
    {
        return Cow::Borrowed(name);
    }
    if name.contains('\'')
        && name
            .char_indices()
            .all(|(i, c)| double_quote_safe(name, i, c))
    {
        return Cow::Owned(format!("\"{name}\""));
    }
    let mut out = String::with_capacity(name.len() + 8);
    out.push('\'');
    // Whether a `$'...'` piece is open (after a control character).
    let mut in_dollar = false;
    for c in name.chars() {
        if c.is_control() {
            if !in_dollar {
                out.push_str("'$'");
                in_dollar = true;
            }
            push_c_escape(&mut out, c);
            continue;
        }
        if c == '\'' {
            // Ends the quoted piece (whichever kind), a quoted quote, and a new piece.
            out.push_str("'\\''");
            in_dollar = false;
            continue;
        }
        if in_dollar {
            out.push_str("''");
            in_dollar = false;
        }
        out.push(c);
    }
    out.push('\'');
    Cow::Owned(out)
}

/// GNU `ls -b` (`escape` quoting, with blanks escaped as `ls` does): control characters as C
/// escapes, `\` as `\\`, a blank as `\ `; nothing else changes.
pub fn escape(name: &str) -> Cow<'_, str> {
    if !name
        .chars()
        .any(|c| c.is_control() || c == '\\' || c == ' ')
    {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' => out.push_str("\\ "),
            c if c.is_control() => push_c_escape(&mut out, c),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// GNU `ls -q`: each control character as `?`.
pub fn hide_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
    )
}

/// A name as an error message shows it: [`shell_escape`]d, as coreutils' diagnostics do, and,
/// when longer than [`DIAGNOSTIC_MAX_BYTES`] (no valid path is), cut to its first 256 bytes
/// followed by `...`, so that a mistyped megabyte is not echoed back.
pub fn diagnostic(name: &str) -> Cow<'_, str> {
    if name.len() <= DIAGNOSTIC_MAX_BYTES {
        return shell_escape(name);
    }
    let mut end = DIAGNOSTIC_KEEP_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", shell_escape(&name[..end])))
}

/// Free text of a message (an error's detail, a host error's text): control characters as C
/// escapes, so that no text reaching a terminal can drive it; nothing else changes.
pub fn prose(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            push_c_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs taken from GNU coreutils 9.1: `ls --quoting-style=shell-escape` and `ls -b`.
    const GNU: &[(&str, &str, &str)] = &[
        ("a\nb", "'a'$'\\n''b'", "a\\nb"),
        ("\x1b[31mred", "''$'\\033''[31mred'", "\\033[31mred"),
        ("bell\x07", "'bell'$'\\a'", "bell\\a"),
        ("sp ace", "'sp ace'", "sp\\ ace"),
        ("it's", "\"it's\"", "it's"),
        ("it's a", "\"it's a\"", "it's\\ a"),
        ("x*y", "'x*y'", "x*y"),
        ("#h", "'#h'", "#h"),
        ("a#", "a#", "a#"),
        ("~t", "'~t'", "~t"),
        ("a=b", "'a=b'", "a=b"),
        ("q?", "'q?'", "q?"),
        ("{", "'{'", "{"),
        ("{a}", "{a}", "{a}"),
        ("b\\c", "'b\\c'", "b\\\\c"),
        ("t\tab", "'t'$'\\t''ab'", "t\\tab"),
        ("ünï", "ünï", "ünï"),
        ("\u{85}", "''$'\\302\\205'", "\\302\\205"),
        ("a@b", "a@b", "a@b"),
        ("-x", "-x", "-x"),
        ("\x7f", "''$'\\177'", "\\177"),
        ("p!", "'p!'", "p!"),
    ];

    #[test]
    fn shell_escape_and_escape_match_gnu() {
        for (name, shell, esc) in GNU {
            assert_eq!(shell_escape(name), *shell, "shell-escape of {name:?}");
            assert_eq!(escape(name), *esc, "escape of {name:?}");
        }
    }

    #[test]
    fn a_quote_after_a_control_character_closes_the_dollar_piece() {
        // As GNU: `$'\n'` ends, `\'` is the quote, `'` opens the rest.
        assert_eq!(shell_escape("a\n'b"), "'a'$'\\n'\\''b'");
        assert_eq!(shell_escape(""), "''");
    }

    #[test]
    fn no_control_character_survives_any_quoting_but_literal() {
        let name = "a\x1b]0;pwned\x07\nb\u{9b}c";
        for shown in [
            shell_escape(name),
            escape(name),
            hide_control(name),
            prose(name),
        ] {
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
        assert_eq!(hide_control("a\nb\x1b"), "a?b?");
        assert_eq!(prose("it's a\nb"), "it's a\\nb");
    }

    #[test]
    fn diagnostics_cut_names_no_path_can_have() {
        let long = "é".repeat(3000);
        let shown = diagnostic(&long);
        assert!(shown.ends_with("..."), "{shown}");
        assert!(shown.len() <= DIAGNOSTIC_KEEP_BYTES + 3);
        let fits = "a".repeat(DIAGNOSTIC_MAX_BYTES);
        assert_eq!(diagnostic(&fits), fits);
    }
}
