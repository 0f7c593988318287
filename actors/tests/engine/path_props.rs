//! Property-based tests of the path parser ([`VPath`]): arbitrary text never panics it, fails
//! only with the kinds its documentation names, and what it accepts keeps every rule of a
//! normalised path and survives every round trip (text, JSON, parent and name, prefix and
//! rebase). A plain stack-based resolver is the reference for `.` and `..`.
//!
//! proptest's default of 256 cases each, from a fixed seed (`PROPTEST_CASES` runs more).

use mavfs_actors::{ErrorKind, MAX_NAME_BYTES, MAX_PATH_BYTES, VPath};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Runs `test` on `strategy` from a fixed seed, so a CI run is repeatable.
fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, b"mavfs path parser properties 001");
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// Text made mostly of what paths are made of: slashes, dots, short names, and now and then a
/// NUL, a control character, a multi-byte character or a very long name.
fn pathlike() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        4 => Just("/".to_string()),
        2 => Just(".".to_string()),
        2 => Just("..".to_string()),
        4 => prop::sample::select(vec!["a", "b", "c", "ab", "abc"]).prop_map(String::from),
        1 => Just("\0".to_string()),
        1 => Just("\u{1b}[31m".to_string()),
        1 => Just("é\u{7}\n".to_string()),
        1 => (200usize..300).prop_map(|n| "n".repeat(n)),
    ];
    prop::collection::vec(part, 0..24).prop_map(|parts| parts.concat())
}

/// Arbitrary text: any `char`s, any length up to a few times [`MAX_PATH_BYTES`].
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => pathlike().prop_map(|s| format!("/{s}")),
        1 => (1usize..3).prop_map(|n| format!("/{}", "abcdefgh/".repeat(n * MAX_PATH_BYTES / 9 + 1))),
    ]
}

/// What every accepted path must be.
fn assert_normal(path: &VPath) -> Result<(), TestCaseError> {
    let text = path.as_str();
    prop_assert!(text.starts_with('/'), "{text:?} is not absolute");
    prop_assert!(text == "/" || !text.ends_with('/'), "{text:?} ends with /");
    prop_assert!(!text.contains("//"), "{text:?} has an empty component");
    prop_assert!(!text.contains('\0'), "{text:?} holds NUL");
    prop_assert!(text.len() <= MAX_PATH_BYTES, "{} bytes", text.len());
    for name in path.components() {
        prop_assert!(name != "." && name != "..", "{text:?} keeps {name:?}");
        prop_assert!(
            name.len() <= MAX_NAME_BYTES,
            "a name of {} bytes",
            name.len()
        );
    }
    Ok(())
}

/// The reference resolver: a stack of names, `..` popping (never past the root).
fn reference(input: &str) -> Vec<&str> {
    let mut stack = Vec::new();
    for part in input.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            name => stack.push(name),
        }
    }
    stack
}

#[test]
fn parsing_never_panics_and_fails_only_as_documented() {
    check(any_text(), |text| {
        match VPath::parse(&text) {
            Ok(path) => {
                assert_normal(&path)?;
                prop_assert!(text.starts_with('/'));
                prop_assert!(!text.contains('\0'));
            }
            Err(e) => {
                let kind = e.kind();
                prop_assert!(
                    matches!(kind, ErrorKind::InvalidInput | ErrorKind::NameTooLong),
                    "{text:?}: {kind:?}"
                );
                let why = if !text.starts_with('/') || text.contains('\0') {
                    ErrorKind::InvalidInput
                } else {
                    ErrorKind::NameTooLong
                };
                prop_assert_eq!(kind, why, "{:?}", text);
                // The message names what was wrong and prints on one line.
                prop_assert!(!e.to_string().is_empty());
            }
        }
        Ok(())
    });
}

#[test]
fn parsing_resolves_dots_as_the_reference_does() {
    check(pathlike(), |text| {
        let input = format!("/{text}");
        let Ok(path) = VPath::parse(&input) else {
            return Ok(());
        };
        let want = reference(&input);
        let got: Vec<&str> = path.components().collect();
        prop_assert_eq!(got, want, "{:?}", input);
        Ok(())
    });
}

#[test]
fn accepted_paths_survive_every_round_trip() {
    check(pathlike(), |text| {
        let Ok(path) = VPath::parse(&format!("/{text}")) else {
            return Ok(());
        };
        // Text: parsing is idempotent, and Display is the text.
        prop_assert_eq!(VPath::parse(path.as_str()).unwrap(), path.clone());
        prop_assert_eq!(path.to_string(), path.as_str());
        // JSON: decoded again to the same path.
        let json = serde_json::to_string(&path).unwrap();
        prop_assert_eq!(serde_json::from_str::<VPath>(&json).unwrap(), path.clone());
        // Parent and name put the path back together.
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            prop_assert_eq!(parent.join(name).unwrap(), path.clone());
            prop_assert!(path.starts_with(&parent));
            prop_assert!(!parent.starts_with(&path));
        } else {
            prop_assert!(path.is_root());
        }
        // Every ancestor is a prefix, and rebase undoes strip_prefix.
        let mut ancestor = Some(path.clone());
        while let Some(prefix) = ancestor {
            let rest = path.strip_prefix(&prefix).unwrap();
            prop_assert_eq!(rest.rebase(&prefix), path.clone());
            ancestor = prefix.parent();
        }
        Ok(())
    });
}

#[test]
fn decoding_refuses_text_that_is_not_normal() {
    check(pathlike(), |text| {
        let input = format!("/{text}");
        let decoded = serde_json::from_str::<VPath>(&serde_json::to_string(&input).unwrap());
        match VPath::parse(&input) {
            Ok(path) if path.as_str() == input => prop_assert_eq!(decoded.unwrap(), path),
            // Anything parse would have to change (or refuses) is refused on the wire.
            _ => prop_assert!(decoded.is_err(), "{input:?} decoded"),
        }
        Ok(())
    });
}

#[test]
fn relative_paths_never_climb_above_a_mount_root() {
    let vram = VPath::parse("/vram").unwrap();
    let is_root = |p: &VPath| p.as_str() == "/vram";
    check((pathlike(), pathlike()), |(base, input)| {
        let Ok(base) = VPath::parse(&format!("/vram/{base}")) else {
            return Ok(());
        };
        if !base.starts_with(&vram) {
            return Ok(());
        }
        let input = input.trim_start_matches('/');
        if input.is_empty() {
            return Ok(());
        }
        if let Ok(path) = VPath::resolve(&base, input, is_root) {
            assert_normal(&path)?;
            prop_assert!(path.starts_with(&vram), "{base} + {input:?} = {path}");
        }
        Ok(())
    });
}

#[test]
fn names_are_joined_only_when_valid() {
    let dir = VPath::parse("/vram/d").unwrap();
    check(any::<String>(), |name| {
        match dir.join(&name) {
            Ok(path) => {
                assert_normal(&path)?;
                prop_assert_eq!(path.file_name(), Some(name.as_str()));
                prop_assert_eq!(path.parent(), Some(dir.clone()));
            }
            Err(e) => prop_assert!(
                name.is_empty()
                    || name == "."
                    || name == ".."
                    || name.contains(['/', '\0'])
                    || name.len() > MAX_NAME_BYTES,
                "{name:?} refused: {e}"
            ),
        }
        Ok(())
    });
}
