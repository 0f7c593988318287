//! Property tests of the shell's line parser ([`super::parse::parse_line`]): arbitrary text never
//! panics it, and any list of words (any characters: blanks, quotes, `;`, `&`, `>`, `#`,
//! newlines, escapes) quoted as a user would quote them comes back word for word, with its
//! redirection and `&`. From a fixed seed, so CI is repeatable (`PROPTEST_CASES` runs more).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::parse::{Command, Redirect, parse_line};

fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, b"mavfs shell parser properties 01");
    if let Err(e) = TestRunner::new_with_rng(config, rng).run(&strategy, test) {
        panic!("{e}");
    }
}

/// A word made mostly of the characters the parser treats specially.
fn word() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        " ", "\t", "\n", "'", "\"", "\\", ";", "&", ">", ">>", "#", "$", "*", "é", "\u{1b}", "a",
        "b", "-",
    ]);
    prop_oneof![
        3 => prop::collection::vec(special, 0..12).prop_map(|parts| parts.concat()),
        1 => any::<String>().prop_map(|s| s.replace('\0', "")),
    ]
}

/// `word` in single quotes, as a user quotes anything: `'` itself as `'\''`.
fn single_quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `word` in double quotes, escaping what double quotes do not keep literally.
fn double_quoted(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `word` with a backslash before every character that is not a letter (newlines quoted, since
/// a backslash-newline is the newline itself here, not a continuation).
fn backslashed(word: &str) -> String {
    if word.is_empty() {
        return "''".into();
    }
    word.chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() => c.to_string(),
            c => format!("\\{c}"),
        })
        .collect()
}

#[test]
fn arbitrary_lines_never_panic_the_parser() {
    check(any::<String>(), |line| {
        let _ = parse_line(&line);
        Ok(())
    });
    check(prop::collection::vec(word(), 0..8), |parts| {
        let _ = parse_line(&parts.concat());
        Ok(())
    });
}

#[test]
fn quoted_words_come_back_word_for_word() {
    let quoting = prop::sample::select(vec![0u8, 1, 2]);
    let redirect = prop::option::of((any::<bool>(), word()));
    let words = prop::collection::vec((word(), quoting), 1..6);
    check(
        (words, redirect, any::<bool>()),
        |(words, redirect, background)| {
            let quote = |(w, how): &(String, u8)| match how {
                0 => single_quoted(w),
                1 => double_quoted(w),
                _ => backslashed(w),
            };
            let mut line: Vec<String> = words.iter().map(quote).collect();
            if let Some((append, target)) = &redirect {
                line.push(if *append { ">>".into() } else { ">".into() });
                line.push(single_quoted(target));
            }
            if background {
                line.push("&".into());
            }
            let line = line.join(" ");
            let want = Command {
                argv: words.iter().map(|(w, _)| w.clone()).collect(),
                redirect: redirect.map(|(append, target)| Redirect { append, target }),
                background,
            };
            let got =
                parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
            prop_assert_eq!(got, vec![want], "{:?}", line);
            Ok(())
        },
    );
}

#[test]
fn separators_split_commands_and_comments_end_lines() {
    let command = prop::collection::vec(word(), 1..4);
    check(
        (prop::collection::vec(command, 1..4), word()),
        |(commands, comment)| {
            let line = commands
                .iter()
                .map(|words| {
                    words
                        .iter()
                        .map(|w| single_quoted(w))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join(" ; ");
            let line = format!("{line} #{comment}");
            let got =
                parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
            let argvs: Vec<Vec<String>> = got.into_iter().map(|c| c.argv).collect();
            prop_assert_eq!(argvs, commands, "{:?}", line);
            Ok(())
        },
    );
}
