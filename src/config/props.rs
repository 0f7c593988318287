//! Property tests of the config loader: arbitrary text and bytes never panic it and every
//! refusal names the file (and a line within the text when it names one); configs built from
//! random mounts and sizes load to exactly what was written; and a valid config with one value
//! replaced by garbage is refused, naming that value's line. From a fixed seed, so CI is
//! repeatable (`PROPTEST_CASES` runs more).

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

use super::{BackendConfig, Config};

fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = RunnerConfig {
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, b"mavfs config loader properties 1");
    if let Err(e) = TestRunner::new_with_rng(config, rng).run(&strategy, test) {
        panic!("{e}");
    }
}

const FILE: &str = "fuzz.toml";

/// Checks that an error names the file, and a line the text has.
fn assert_well_formed(error: &super::ConfigError, text: &str) -> Result<(), TestCaseError> {
    let message = error.to_string();
    prop_assert!(message.starts_with(FILE), "{message:?}");
    if let Some(line) = error.line {
        prop_assert!(
            line >= 1 && line <= text.lines().count().max(1) + 1,
            "line {line} of {} lines: {message:?}",
            text.lines().count()
        );
    }
    Ok(())
}

/// Text made of TOML's pieces, so that the parser gets past the first byte.
fn tomlish() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "[[mount]]\n",
        "[transfer]\n",
        "[mount]\n",
        "path = ",
        "backend = ",
        "tier = ",
        "capacity = ",
        "root = ",
        "url = ",
        "jobs = ",
        "chunk_size = ",
        "bwlimit = ",
        "\"/vram\"",
        "\"memory\"",
        "\"disk\"",
        "\"redis\"",
        "\"hot\"",
        "\"cold\"",
        "\"8GiB\"",
        "\"1 MiB\"",
        "-1",
        "0",
        "18446744073709551616",
        "\"\"",
        "\"/\"",
        "\"/a/b\"",
        "\"..\"",
        "true",
        "\n",
        "# comment\n",
        "=",
        "\"",
        "[",
        "]",
        "{",
        "}",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(piece, 0..30).prop_map(|p| p.concat())
}

#[test]
fn arbitrary_text_never_panics_the_loader() {
    check(prop_oneof![any::<String>(), tomlish()], |text| {
        if let Err(e) = Config::parse(&text, Path::new(FILE)) {
            assert_well_formed(&e, &text)?;
        }
        Ok(())
    });
}

#[test]
fn arbitrary_bytes_never_panic_loading_a_file() {
    let dir = tempfile::tempdir().unwrap();
    check(prop::collection::vec(any::<u8>(), 0..512), |bytes| {
        let file = dir.path().join(FILE);
        std::fs::write(&file, &bytes).unwrap();
        if let Err(e) = Config::load(&file) {
            prop_assert!(e.to_string().contains(FILE), "{e}");
        }
        Ok(())
    });
}

/// A size as a user may write it, and its value in bytes.
fn size() -> impl Strategy<Value = (String, u64)> {
    let unit = prop::sample::select(vec![
        ("", 1u64),
        ("K", 1 << 10),
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("KB", 1000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
    ]);
    (1u64..4096, unit, any::<bool>(), any::<bool>()).prop_map(|(n, (unit, scale), space, bare)| {
        let text = if bare && unit.is_empty() {
            n.to_string()
        } else {
            format!("\"{n}{}{unit}\"", if space { " " } else { "" })
        };
        (text, n * scale)
    })
}

#[test]
fn generated_configs_load_to_what_was_written() {
    let name = prop::collection::vec(
        prop::sample::select(vec!['a', 'k', 'z', '0', '_', '-']),
        1..8,
    )
    .prop_map(|c| format!("m{}", c.into_iter().collect::<String>()));
    let names = prop::collection::btree_set(name, 1..5);
    check(
        (names, prop::collection::vec(size(), 5)),
        |(names, sizes)| {
            let mut text = String::new();
            let mut want = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let (size_text, bytes) = &sizes[i];
                let tier = if i % 2 == 0 { "hot" } else { "cold" };
                text.push_str(&format!(
                    "[[mount]]\npath = \"/{name}\"\nbackend = \"memory\"\ntier = \"{tier}\"\ncapacity = {size_text}\n\n"
                ));
                want.push((format!("/{name}"), tier, *bytes));
            }
            let config = Config::parse(&text, Path::new(FILE))
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(config.mounts.len(), want.len());
            for (mount, (path, tier, bytes)) in config.mounts.iter().zip(&want) {
                prop_assert_eq!(mount.path.as_str(), path.as_str());
                prop_assert_eq!(mount.tier.to_string(), *tier);
                match &mount.backend {
                    BackendConfig::Memory { capacity } => prop_assert_eq!(*capacity, Some(*bytes)),
                    other => prop_assert!(false, "{other:?}"),
                }
            }
            Ok(())
        },
    );
}

#[test]
fn one_garbage_value_is_refused_on_its_line() {
    let garbage = prop::sample::select(vec![
        "\"\"",
        "-5",
        "\"12 parsecs\"",
        "\"/\"",
        "\"nope\"",
        "[]",
        "{}",
        "\"..\"",
        "1.5",
        "99999999999999999999",
    ]);
    // Each value of this config, by line (1-based), may be the one replaced.
    let lines = [
        "[[mount]]",
        "path = \"/vram\"",
        "backend = \"memory\"",
        "tier = \"hot\"",
        "capacity = \"1GiB\"",
        "[transfer]",
        "jobs = 4",
        "chunk_size = \"1MiB\"",
    ];
    let valued: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].contains(" = "))
        .collect();
    check(
        (prop::sample::select(valued), garbage),
        |(index, garbage)| {
            let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let key = lines[index].split(" = ").next().unwrap();
            edited[index] = format!("{key} = {garbage}");
            let text = edited.join("\n");
            match Config::parse(&text, Path::new(FILE)) {
                Ok(config) => prop_assert!(false, "{key} = {garbage} loaded: {config:?}"),
                Err(e) => {
                    assert_well_formed(&e, &text)?;
                    prop_assert_eq!(e.line, Some(index + 1), "{}", e);
                }
            }
            Ok(())
        },
    );
}
