//! Tests of config loading: the shipped files, the defaults, lookup, sizes, and every error,
//! each checked for its file, line and key.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

const EXAMPLE: &str = include_str!("../../config/example.toml");
const DEFAULT: &str = include_str!("../../config/default.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("mavfs.toml"))
}

/// The message of the error `text` must produce.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `text` fails with `mavfs.toml:{line}: key {key}: ...` containing `fragment`.
#[track_caller]
fn assert_error(text: &str, line: usize, key: &str, fragment: &str) {
    let message = error(text);
    let prefix = format!("mavfs.toml:{line}: key {key}: ");
    assert!(
        message.starts_with(&prefix),
        "{message:?} does not start with {prefix:?}"
    );
    assert!(
        message.contains(fragment),
        "{message:?} does not contain {fragment:?}"
    );
}

fn vpath(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// A memory mount at `/vram`, to make the rest of a test document valid.
const VRAM: &str = "[[mount]]\npath = \"/vram\"\nbackend = \"memory\"\n";

/// A redis mount with the given extra lines (lines 1-3 are the header, path and backend).
fn redis(extra: &str) -> String {
    format!("[[mount]]\npath = \"/r\"\nbackend = \"redis\"\n{extra}")
}

// ----- the shipped files -----

#[test]
fn example_toml_parses() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("block_dir")).unwrap();
    let file = dir.path().join("example.toml");
    fs::write(&file, EXAMPLE).unwrap();

    let config = Config::load(&file).unwrap();
    assert_eq!(config.source.as_deref(), Some(file.as_path()));
    assert_eq!(
        config.transfer,
        TransferConfig {
            jobs: 4,
            chunk_size: 1 << 20,
            bwlimit: None,
        }
    );
    assert_eq!(config.mounts.len(), 3);

    let vram = &config.mounts[0];
    assert_eq!(vram.path, vpath("/vram"));
    assert_eq!(vram.tier, Tier::Hot);
    assert_eq!(
        vram.backend,
        BackendConfig::Memory {
            capacity: Some(8 << 30)
        }
    );

    let vdisk = &config.mounts[1];
    assert_eq!(vdisk.path, vpath("/vdisk"));
    assert_eq!(vdisk.tier, Tier::Cold);
    assert_eq!(
        vdisk.backend,
        BackendConfig::Disk {
            root: dir.path().join("block_dir"),
            fsync: true,
            create: false
        }
    );

    let shared = &config.mounts[2];
    assert_eq!(shared.path, vpath("/shared"));
    assert_eq!(shared.tier, Tier::Hot);
    assert_eq!(
        shared.backend,
        BackendConfig::Redis(RedisConfig {
            url: Some("redis://127.0.0.1:6379/0".into()),
            cluster: vec![],
            namespace: "mavfs".into(),
            password_env: Some("MAVFS_REDIS_PASSWORD".into()),
        })
    );
}

#[test]
fn example_toml_mentions_every_key() {
    for key in [
        "path",
        "backend",
        "tier",
        "capacity",
        "root",
        "fsync",
        "url",
        "# cluster",
        "namespace",
    ] {
        assert!(
            EXAMPLE.contains(&format!("{key} = ")),
            "example.toml lacks {key}"
        );
    }
    for key in ["password_env", "[transfer]", "jobs", "chunk_size"] {
        assert!(EXAMPLE.contains(key), "example.toml lacks {key}");
    }
}

#[test]
fn example_cluster_line_parses_when_uncommented() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("block_dir")).unwrap();
    let text = EXAMPLE
        .replace("url = \"redis://127.0.0.1:6379/0\"", "")
        .replace("# cluster = ", "cluster = ");
    let config = Config::parse(&text, &dir.path().join("mavfs.toml")).unwrap();
    let BackendConfig::Redis(redis) = &config.mounts[2].backend else {
        panic!("not redis")
    };
    assert_eq!(redis.url, None);
    assert_eq!(redis.cluster.len(), 3);
}

#[test]
fn default_toml_is_the_built_in_default() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("block_dir")).unwrap();
    let file = dir.path().join("default.toml");
    fs::write(&file, DEFAULT).unwrap();

    let loaded = Config::load(&file).unwrap();
    let mut built_in = Config::defaults(&dir.path().join("block_dir"));
    // The only differences: where it came from, and that a configured root is never created.
    built_in.source = Some(file.clone());
    if let BackendConfig::Disk { create, .. } = &mut built_in.mounts[1].backend {
        *create = false;
    }
    assert_eq!(loaded, built_in);
}

// ----- defaults, types -----

#[test]
fn defaults_are_vram_and_vdisk() {
    let config = Config::defaults(Path::new("./block_dir"));
    assert_eq!(config.source, None);
    assert_eq!(
        config.transfer,
        TransferConfig {
            jobs: 4,
            chunk_size: 1024 * 1024,
            bwlimit: None,
        }
    );
    assert_eq!(
        config.mounts,
        vec![
            MountConfig {
                path: vpath("/vram"),
                tier: Tier::Hot,
                backend: BackendConfig::Memory { capacity: None },
            },
            MountConfig {
                path: vpath("/vdisk"),
                tier: Tier::Cold,
                backend: BackendConfig::Disk {
                    root: PathBuf::from("./block_dir"),
                    fsync: false,
                    create: true
                },
            },
        ]
    );
}

#[test]
fn display_names() {
    assert_eq!(Tier::Hot.to_string(), "hot");
    assert_eq!(Tier::Cold.to_string(), "cold");
    assert_eq!(
        BackendConfig::Memory { capacity: None }.to_string(),
        "memory"
    );
    let disk = BackendConfig::Disk {
        root: "/x".into(),
        fsync: false,
        create: false,
    };
    assert_eq!(disk.to_string(), "disk");
}

#[test]
fn minimal_mounts_take_backend_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{VRAM}[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = {:?}\n{}",
        dir.path().to_str().unwrap(),
        redis("url = \"redis://localhost\"\n"),
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.transfer, TransferConfig::default());
    let tiers: Vec<Tier> = config.mounts.iter().map(|m| m.tier).collect();
    assert_eq!(tiers, [Tier::Hot, Tier::Cold, Tier::Hot]);
    assert_eq!(
        config.mounts[0].backend,
        BackendConfig::Memory { capacity: None }
    );
    assert_eq!(
        config.mounts[1].backend,
        BackendConfig::Disk {
            root: dir.path().to_path_buf(),
            fsync: false,
            create: false
        }
    );
    let BackendConfig::Redis(r) = &config.mounts[2].backend else {
        panic!("not redis")
    };
    assert_eq!(r.namespace, "mavfs");
    assert_eq!(r.password_env, None);
}

#[test]
fn tiers_can_be_overridden_and_capacity_may_be_an_integer() {
    let text =
        "[[mount]]\npath = \"/cold\"\nbackend = \"memory\"\ntier = \"cold\"\ncapacity = 4096\n";
    let config = parse(text).unwrap();
    assert_eq!(config.mounts[0].tier, Tier::Cold);
    assert_eq!(
        config.mounts[0].backend,
        BackendConfig::Memory {
            capacity: Some(4096)
        }
    );
}

#[test]
fn integer_sizes_in_any_toml_notation() {
    for (written, bytes) in [
        ("1_048_576", 1u64 << 20),
        ("0x1000", 4096),
        ("0o10", 8),
        ("0b11", 3),
    ] {
        let config = parse(&format!("{VRAM}capacity = {written}\n")).unwrap();
        assert_eq!(
            config.mounts[0].backend,
            BackendConfig::Memory {
                capacity: Some(bytes)
            },
            "{written}"
        );
    }
    let config = parse(&format!("{VRAM}[transfer]\njobs = 0x10\n")).unwrap();
    assert_eq!(config.transfer.jobs, 16);
}

#[test]
fn paths_are_normalised_and_inline_tables_work() {
    let text = "mount = [{ path = \"/vram/\", backend = \"memory\" }, { path = \"//x/.\", backend = \"memory\" }]\n";
    let config = parse(text).unwrap();
    assert_eq!(config.mounts[0].path, vpath("/vram"));
    assert_eq!(config.mounts[1].path, vpath("/x"));
}

#[test]
fn transfer_table_is_read() {
    let text = format!("{VRAM}[transfer]\njobs = 64\nchunk_size = \"4KiB\"\n");
    assert_eq!(
        parse(&text).unwrap().transfer,
        TransferConfig {
            jobs: 64,
            chunk_size: 4096,
            bwlimit: None,
        }
    );
    let text = format!("{VRAM}[transfer]\njobs = 1\nchunk_size = 67108864\n");
    assert_eq!(
        parse(&text).unwrap().transfer,
        TransferConfig {
            jobs: 1,
            chunk_size: 64 << 20,
            bwlimit: None,
        }
    );
}

#[test]
fn relative_roots_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("etc/data")).unwrap();
    let file = dir.path().join("etc/mavfs.toml");
    for written in ["data", "./data"] {
        let text = format!("[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = \"{written}\"\n");
        let config = Config::parse(&text, &file).unwrap();
        let BackendConfig::Disk { root, .. } = &config.mounts[0].backend else {
            panic!("not disk")
        };
        assert_eq!(root, &dir.path().join("etc/data"));
    }
    // Named relative to the working directory, the file's directory is that directory.
    let text = "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = \"./data\"\n";
    let e = Config::parse(text, Path::new("./mavfs.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("./data does not exist"), "{e}");
}

#[test]
fn crlf_line_endings_count_lines_the_same() {
    let text = "[[mount]]\r\npath = \"/vram\"\r\nbackend = \"memory\"\r\nroot = \"/x\"\r\n";
    assert_error(text, 4, "mount[1].root", "not valid for a memory mount");
}

// ----- locate -----

#[test]
fn locate_prefers_explicit_then_cwd_then_xdg_then_home() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    let xdg = dir.path().join("xdg");
    let home = dir.path().join("home");
    for d in [&cwd, &xdg.join("mavfs"), &home.join(".config/mavfs")] {
        fs::create_dir_all(d).unwrap();
    }
    let explicit = Path::new("/nonexistent/explicit.toml");

    // Nothing exists yet: only an explicit file is returned, even a missing one.
    assert_eq!(locate(None, &cwd, Some(&xdg), Some(&home)), None);
    assert_eq!(
        locate(Some(explicit), &cwd, Some(&xdg), Some(&home)),
        Some(explicit.to_path_buf())
    );

    let home_file = home.join(".config/mavfs/config.toml");
    fs::write(&home_file, "").unwrap();
    assert_eq!(
        locate(None, &cwd, None, Some(&home)),
        Some(home_file.clone())
    );
    // An XDG_CONFIG_HOME that is set wins over ~/.config even when it holds no file.
    assert_eq!(locate(None, &cwd, Some(&xdg), Some(&home)), None);
    // A relative or empty XDG_CONFIG_HOME is ignored, as the XDG spec says.
    assert_eq!(
        locate(None, &cwd, Some(Path::new("rel")), Some(&home)),
        Some(home_file.clone())
    );
    assert_eq!(
        locate(None, &cwd, Some(Path::new("")), Some(&home)),
        Some(home_file.clone())
    );

    let xdg_file = xdg.join("mavfs/config.toml");
    fs::write(&xdg_file, "").unwrap();
    assert_eq!(
        locate(None, &cwd, Some(&xdg), Some(&home)),
        Some(xdg_file.clone())
    );

    let local = cwd.join("mavfs.toml");
    fs::write(&local, "").unwrap();
    assert_eq!(locate(None, &cwd, Some(&xdg), Some(&home)), Some(local));
    assert_eq!(
        locate(Some(explicit), &cwd, Some(&xdg), Some(&home)),
        Some(explicit.to_path_buf())
    );
}

#[test]
fn locate_without_home_or_xdg_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(locate(None, dir.path(), None, None), None);
    assert_eq!(locate(None, dir.path(), None, Some(Path::new(""))), None);
}

// ----- sizes -----

#[test]
fn sizes() {
    let cases: &[(&str, u64)] = &[
        ("123", 123),
        ("0", 0),
        ("123B", 123),
        ("123 b", 123),
        ("8GiB", 8 << 30),
        ("512 MiB", 512 << 20),
        ("1M", 1 << 20),
        ("1m", 1 << 20),
        ("100kb", 100_000),
        ("100kB", 100_000),
        ("4KiB", 4096),
        ("4k", 4096),
        ("2GB", 2_000_000_000),
        ("3T", 3 << 40),
        ("1TB", 1_000_000_000_000),
        ("1.5GiB", 3 << 29),
        ("0.5KiB", 512),
        ("  64 MiB  ", 64 << 20),
        ("1PiB", 1 << 50),
        ("15EiB", 15 << 60),
    ];
    for &(text, bytes) in cases {
        assert_eq!(parse_size(text), Some(bytes), "{text:?}");
    }
    for bad in [
        "",
        " ",
        "MiB",
        "-1",
        "+1",
        "1.5",
        "0.5B",
        "1.",
        ".5K",
        "1..2K",
        "12 34",
        "1 MiBs",
        "1Mi",
        "1 XB",
        "1e3",
        "8 GiB!",
        "16EiB",
        "99999999999999999999",
    ] {
        assert_eq!(parse_size(bad), None, "{bad:?}");
    }
}

// ----- syntax errors -----

#[test]
fn toml_syntax_errors_give_the_line() {
    let message = error(&format!("{VRAM}\nbackend = = 3\n"));
    assert!(
        message.starts_with("mavfs.toml:5: TOML syntax error at column "),
        "{message}"
    );
}

#[test]
fn duplicate_toml_keys_name_the_key() {
    assert_error(
        &format!("{VRAM}path = \"/x\"\n"),
        4,
        "path",
        "duplicate key",
    );
}

#[test]
fn syntax_errors_do_not_quote_passwords() {
    let text = format!("{VRAM}{}", redis("url = \"redis://u:hunter2@h:6379\n"));
    let message = error(&text);
    assert!(
        message.starts_with("mavfs.toml:7: TOML syntax error"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

// ----- unknown keys -----

#[test]
fn unknown_top_level_key() {
    assert_error(&format!("mounts = 1\n{VRAM}"), 1, "mounts", "unknown key");
    // After a [[mount]] header, a key belongs to that mount, as TOML says.
    assert_error(
        &format!("{VRAM}\nmounts = 1\n"),
        5,
        "mount[1].mounts",
        "unknown key",
    );
    assert_error(&format!("{VRAM}[extra]\n"), 4, "extra", "unknown key");
}

#[test]
fn unknown_mount_key() {
    assert_error(
        &format!("{VRAM}[[mount]]\npath = \"/d\"\nbakend = \"disk\"\n"),
        6,
        "mount[2].bakend",
        "unknown key",
    );
}

#[test]
fn unknown_transfer_key() {
    assert_error(
        &format!("{VRAM}[transfer]\njobs = 2\nthreads = 3\n"),
        6,
        "transfer.threads",
        "unknown key",
    );
}

#[test]
fn first_unknown_key_in_file_order_is_reported() {
    // toml's map sorts keys by name; "zz" comes first in the file and must be the one reported.
    assert_error(
        "[[mount]]\nzz = 1\naa = 2\n",
        2,
        "mount[1].zz",
        "unknown key",
    );
}

// ----- missing keys -----

#[test]
fn missing_required_keys() {
    assert_error(
        &format!("{VRAM}\n[[mount]]\nbackend = \"memory\"\n"),
        5,
        "mount[2].path",
        "missing required key",
    );
    assert_error(
        &format!("{VRAM}\n[[mount]]\npath = \"/x\"\n"),
        5,
        "mount[2].backend",
        "missing required key",
    );
    assert_error(
        "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\n",
        1,
        "mount[1].root",
        "missing required key",
    );
    assert_error(&redis(""), 1, "mount[1].url", "url for one node or cluster");
}

#[test]
fn no_mounts() {
    assert_error("", 1, "mount", "no mounts");
    assert_error(
        "# nothing\n\n[transfer]\njobs = 2\n",
        1,
        "mount",
        "no mounts",
    );
    assert_error("\nmount = []\n", 2, "mount", "no mounts");
}

// ----- wrong types -----

#[test]
fn wrong_types() {
    assert_error(
        "[[mount]]\npath = 5\nbackend = \"memory\"\n",
        2,
        "mount[1].path",
        "expected a string, found integer",
    );
    assert_error(
        "[[mount]]\npath = \"/v\"\nbackend = true\n",
        3,
        "mount[1].backend",
        "expected a string",
    );
    assert_error(
        &format!("{VRAM}tier = 1\n"),
        4,
        "mount[1].tier",
        "expected a string",
    );
    assert_error(
        &format!("{VRAM}capacity = true\n"),
        4,
        "mount[1].capacity",
        "found boolean",
    );
    assert_error(
        &format!("{VRAM}capacity = 1.5\n"),
        4,
        "mount[1].capacity",
        "found float",
    );
    let dir = tempfile::tempdir().unwrap();
    let disk = format!(
        "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = {:?}\n",
        dir.path().to_str().unwrap()
    );
    assert_error(
        &format!("{disk}fsync = \"yes\"\n"),
        5,
        "mount[1].fsync",
        "expected a boolean",
    );
    assert_error(
        "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = 3\n",
        4,
        "mount[1].root",
        "expected a string",
    );
    assert_error(
        &redis("url = [\"redis://h\"]\n"),
        4,
        "mount[1].url",
        "expected a string, found array",
    );
    assert_error(
        &redis("cluster = \"redis://h\"\n"),
        4,
        "mount[1].cluster",
        "expected an array",
    );
    assert_error(
        &redis("cluster = [\n  \"redis://h\",\n  7,\n]\n"),
        6,
        "mount[1].cluster[2]",
        "expected a string",
    );
    assert_error(
        &redis("url = \"redis://h\"\nnamespace = 1\n"),
        5,
        "mount[1].namespace",
        "expected a string",
    );
    assert_error(
        &redis("url = \"redis://h\"\npassword_env = false\n"),
        5,
        "mount[1].password_env",
        "expected a string",
    );
    assert_error(
        &format!("{VRAM}[transfer]\njobs = \"4\"\n"),
        5,
        "transfer.jobs",
        "expected an integer",
    );
    assert_error(
        &format!("{VRAM}[transfer]\nchunk_size = 1.0\n"),
        5,
        "transfer.chunk_size",
        "found float",
    );
    assert_error(
        &format!("{VRAM}transfer = 3\n"),
        4,
        "mount[1].transfer",
        "unknown key",
    );
    assert_error(
        &format!("transfer = 3\n{VRAM}"),
        1,
        "transfer",
        "expected a table, found integer",
    );
    assert_error(
        "mount = \"/vram\"\n",
        1,
        "mount",
        "expected an array of [[mount]] tables, found string",
    );
    assert_error(
        "[mount]\npath = \"/vram\"\nbackend = \"memory\"\n",
        1,
        "mount",
        "found table",
    );
    assert_error(
        "mount = [1]\n",
        1,
        "mount[1]",
        "expected a table, found integer",
    );
}

// ----- unknown values -----

#[test]
fn unknown_backend_and_tier() {
    assert_error(
        "[[mount]]\npath = \"/v\"\nbackend = \"tape\"\n",
        3,
        "mount[1].backend",
        "unknown backend \"tape\"",
    );
    assert_error(
        &format!("{VRAM}tier = \"warm\"\n"),
        4,
        "mount[1].tier",
        "unknown tier \"warm\"",
    );
    assert_error(
        &format!("{VRAM}tier = \"Hot\"\n"),
        4,
        "mount[1].tier",
        "expected hot or cold",
    );
}

// ----- mount paths -----

#[test]
fn mount_paths() {
    let at = |path: &str| format!("{VRAM}\n[[mount]]\nbackend = \"memory\"\npath = {path:?}\n");
    assert_error(&at("vdisk"), 7, "mount[2].path", "not an absolute path");
    assert_error(&at(""), 7, "mount[2].path", "not an absolute path");
    assert_error(
        &at("/a/b"),
        7,
        "mount[2].path",
        "mount paths are one level below /",
    );
    assert_error(&at("/"), 7, "mount[2].path", "is / itself");
    assert_error(&at("/a/.."), 7, "mount[2].path", "is / itself");
    let nul = format!("{VRAM}\n[[mount]]\nbackend = \"memory\"\npath = \"/a\\u0000b\"\n");
    assert_error(&nul, 7, "mount[2].path", "not a valid path");
    assert_error(
        &at(&format!("/{}", "x".repeat(256))),
        7,
        "mount[2].path",
        "File name too long",
    );
}

#[test]
fn duplicate_mount_paths() {
    let text = format!(
        "{VRAM}\n[[mount]]\npath = \"/x\"\nbackend = \"memory\"\n\n[[mount]]\npath = \"/vram/\"\nbackend = \"memory\"\n"
    );
    assert_error(
        &text,
        10,
        "mount[3].path",
        "/vram is already mounted by mount[1] (line 2)",
    );
}

// ----- keys for another backend -----

#[test]
fn keys_of_other_backends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = format!("root = {:?}\n", dir.path().to_str().unwrap());
    assert_error(
        &format!("{VRAM}{root}"),
        4,
        "mount[1].root",
        "not valid for a memory mount (it applies to disk mounts only)",
    );
    assert_error(
        &format!("{VRAM}fsync = true\n"),
        4,
        "mount[1].fsync",
        "not valid for a memory mount",
    );
    assert_error(
        &format!("{VRAM}url = \"redis://h\"\n"),
        4,
        "mount[1].url",
        "applies to redis mounts only",
    );
    let disk = format!("[[mount]]\npath = \"/d\"\nbackend = \"disk\"\n{root}");
    assert_error(
        &format!("{disk}capacity = \"1GiB\"\n"),
        5,
        "mount[1].capacity",
        "not valid for a disk mount",
    );
    assert_error(
        &format!("{disk}namespace = \"x\"\n"),
        5,
        "mount[1].namespace",
        "not valid for a disk mount",
    );
    assert_error(
        &redis(&format!("url = \"redis://h\"\n{root}")),
        5,
        "mount[1].root",
        "not valid for a redis mount",
    );
    assert_error(
        &redis("url = \"redis://h\"\nfsync = true\n"),
        5,
        "mount[1].fsync",
        "not valid for a redis mount",
    );
    assert_error(
        &redis("url = \"redis://h\"\ncapacity = 5\n"),
        5,
        "mount[1].capacity",
        "not valid for a redis mount",
    );
}

// ----- disk roots -----

#[test]
fn disk_root_must_be_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("x/y");
    let text = format!(
        "{VRAM}\n[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = {:?}\n",
        missing.to_str().unwrap()
    );
    assert_error(
        &text,
        8,
        "mount[2].root",
        &format!("{} does not exist", missing.display()),
    );

    let plain = dir.path().join("file");
    fs::write(&plain, "").unwrap();
    let text = format!(
        "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = {:?}\n",
        plain.to_str().unwrap()
    );
    assert_error(&text, 4, "mount[1].root", "is not a directory");

    assert_error(
        "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = \"\"\n",
        4,
        "mount[1].root",
        "root is empty",
    );
    assert_error(
        "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = \"~/no-such-mavfs-dir\"\n",
        4,
        "mount[1].root",
        "~ is not expanded",
    );
}

#[test]
fn relative_root_errors_show_the_resolved_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mavfs.toml");
    let text = "[[mount]]\npath = \"/d\"\nbackend = \"disk\"\nroot = \"./gone\"\n";
    let message = Config::parse(text, &file).unwrap_err().to_string();
    let expected = format!(
        "{}:4: key mount[1].root: ./gone (resolved to {}) does not exist",
        file.display(),
        dir.path().join("gone").display()
    );
    assert_eq!(message, expected);
}

// ----- redis -----

#[test]
fn redis_urls() {
    for good in [
        "redis://localhost",
        "redis://127.0.0.1:6379/0",
        "rediss://cache.example.com:6380/15",
        "redis://[::1]:6379",
        "redis://user@h/",
        "redis://:pw@h",
        "redis://h?timeout=5",
    ] {
        parse(&redis(&format!("url = {good:?}\n"))).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    let bad = [
        ("http://h:6379", "scheme must be redis:// or rediss://"),
        ("localhost:6379", "expected a redis:// or rediss:// URL"),
        ("redis://", "missing host"),
        ("redis://:6379", "missing host"),
        ("redis://h:0", "port"),
        ("redis://h:70000", "port"),
        ("redis://h:+1", "port"),
        ("redis://h:", "port"),
        ("redis://h/db", "database number"),
        ("redis://h/0/1", "database number"),
        ("redis://h#x", "fragment"),
        ("redis://ho st", "whitespace"),
        ("redis://h!", "invalid host"),
        ("redis://[::1", "unclosed ["),
        ("redis://[nope]", "invalid IPv6"),
        ("redis://[::1]x", "after the IPv6"),
    ];
    for (url, fragment) in bad {
        assert_error(
            &redis(&format!("url = {url:?}\n")),
            4,
            "mount[1].url",
            fragment,
        );
    }
}

#[test]
fn redis_cluster() {
    let text =
        redis("cluster = [\"redis://a:7000\", \"redis://b:7000\"]\nnamespace = \"team-a:v1\"\n");
    let BackendConfig::Redis(r) = &parse(&text).unwrap().mounts[0].backend else {
        panic!("not redis")
    };
    assert_eq!(r.url, None);
    assert_eq!(r.cluster, ["redis://a:7000", "redis://b:7000"]);
    assert_eq!(r.namespace, "team-a:v1");

    assert_error(
        &redis("cluster = []\n"),
        4,
        "mount[1].cluster",
        "at least one node",
    );
    assert_error(
        &redis("cluster = [\n  \"redis://a:7000\",\n  \"ftp://b\",\n]\n"),
        6,
        "mount[1].cluster[2]",
        "scheme must be",
    );
    assert_error(
        &redis("cluster = [\"redis://a:7000/3\"]\n"),
        4,
        "mount[1].cluster[1]",
        "only database 0",
    );
    parse(&redis("cluster = [\"redis://a:7000/0\"]\n")).unwrap();
}

#[test]
fn redis_url_and_cluster_are_exclusive() {
    let text = redis("url = \"redis://h\"\ncluster = [\"redis://a\"]\n");
    assert_error(&text, 5, "mount[1].cluster", "not both");
    let text = redis("cluster = [\"redis://a\"]\nurl = \"redis://h\"\n");
    assert_error(&text, 5, "mount[1].url", "not both");
}

#[test]
fn redis_namespace_and_password_env() {
    let url = "url = \"redis://h\"\n";
    for bad in ["", "a b", "{tag}", "x/y"] {
        assert_error(
            &redis(&format!("{url}namespace = {bad:?}\n")),
            5,
            "mount[1].namespace",
            "invalid namespace",
        );
    }
    for bad in ["", "1ABC", "A-B", "A B"] {
        assert_error(
            &redis(&format!("{url}password_env = {bad:?}\n")),
            5,
            "mount[1].password_env",
            "not an environment variable name",
        );
    }
    parse(&redis(&format!("{url}password_env = \"_X1\"\n"))).unwrap();
}

/// The engine caps a namespace at 64 bytes; the config refuses a longer one at load, naming the
/// file, line and key, instead of letting it fail later at connect.
#[test]
fn a_namespace_past_the_engine_limit_is_refused_at_load() {
    let url = "url = \"redis://h\"\n";
    let longest = "n".repeat(64);
    parse(&redis(&format!("{url}namespace = {longest:?}\n"))).unwrap();
    let long = "n".repeat(65);
    assert_error(
        &redis(&format!("{url}namespace = {long:?}\n")),
        5,
        "mount[1].namespace",
        "1 to 64 letters",
    );
}

// ----- sizes in the file -----

#[test]
fn bad_sizes_and_ranges() {
    assert_error(
        &format!("{VRAM}capacity = \"8 GB!\"\n"),
        4,
        "mount[1].capacity",
        "invalid size \"8 GB!\"",
    );
    assert_error(
        &format!("{VRAM}capacity = -1\n"),
        4,
        "mount[1].capacity",
        "cannot be negative",
    );
    assert_error(
        &format!("{VRAM}capacity = 0\n"),
        4,
        "mount[1].capacity",
        "more than 0 bytes",
    );
    assert_error(
        &format!("{VRAM}capacity = \"0GiB\"\n"),
        4,
        "mount[1].capacity",
        "more than 0 bytes",
    );
    let transfer = |body: &str| format!("{VRAM}\n[transfer]\n{body}\n");
    assert_error(
        &transfer("chunk_size = \"4095\""),
        6,
        "transfer.chunk_size",
        "from 4KiB to 64MiB",
    );
    assert_error(
        &transfer("chunk_size = \"65MiB\""),
        6,
        "transfer.chunk_size",
        "from 4KiB to 64MiB",
    );
    assert_error(
        &transfer("chunk_size = \"lots\""),
        6,
        "transfer.chunk_size",
        "invalid size",
    );
    assert_error(&transfer("jobs = 0"), 6, "transfer.jobs", "from 1 to 64");
    assert_error(&transfer("jobs = 65"), 6, "transfer.jobs", "from 1 to 64");
    assert_error(&transfer("jobs = -1"), 6, "transfer.jobs", "from 1 to 64");
    assert_error(
        &transfer("jobs = 99999999999999999999"),
        6,
        "transfer.jobs",
        "from 1 to 64",
    );
}

// ----- secrets -----

#[test]
fn passwords_never_appear_in_errors() {
    let secret = "s3cr3t-pa55";
    let cases = [
        format!("url = \"redis://user:{secret}@h:99999\"\n"),
        format!("url = \"http://user:{secret}@h\"\n"),
        format!("url = \"redis://user:{secret}@h/x\"\n"),
        // An unescaped '/' or '#' in the password breaks URL parsing; it must still be hidden.
        format!("url = \"redis://user:{secret}/x@h\"\n"),
        format!("url = \"redis://user:{secret}#x@h\"\n"),
        format!("cluster = [\"redis://:{secret}@a:7000/2\"]\n"),
        format!("url = \"redis://:{secret}@h\"\npassword_env = \"PW\"\n"),
    ];
    for case in cases {
        let message = error(&redis(&case));
        assert!(!message.contains(secret), "{message}");
        assert!(
            message.contains("***") || message.contains("password"),
            "{message}"
        );
    }
    // A URL in the wrong place is echoed as a value or a key: still hidden.
    for text in [
        format!("[[mount]]\npath = \"/r\"\nbackend = \"redis://u:{secret}@h\"\n"),
        format!("[[mount]]\npath = \"redis://u:{secret}@h\"\nbackend = \"memory\"\n"),
        format!("{VRAM}\"redis://u:{secret}@h\" = 1\n"),
    ] {
        let message = error(&text);
        assert!(!message.contains(secret), "{message}");
        assert!(message.contains("redis://u:***@h"), "{message}");
    }
}

#[test]
fn redis_config_debug_redacts_passwords() {
    let config = RedisConfig {
        url: Some("redis://admin:hunter2@h:6379/0".into()),
        cluster: vec!["rediss://:hunter3@a:7000".into(), "redis://b:7000".into()],
        namespace: "mavfs".into(),
        password_env: Some("PW".into()),
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter"), "{debug}");
    assert!(debug.contains("redis://admin:***@h:6379/0"), "{debug}");
    assert!(debug.contains("rediss://:***@a:7000"), "{debug}");
    assert!(debug.contains("redis://b:7000"), "{debug}");
    let whole = format!("{:?}", BackendConfig::Redis(config));
    assert!(!whole.contains("hunter"), "{whole}");
}

#[test]
fn redact_url_cases() {
    assert_eq!(redact_url("redis://u:p@h:1/0"), "redis://u:***@h:1/0");
    assert_eq!(redact_url("redis://:p@h"), "redis://:***@h");
    assert_eq!(redact_url("redis://u@h"), "redis://u@h");
    assert_eq!(redact_url("redis://u:@h"), "redis://u:@h");
    assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
    assert_eq!(redact_url("redis://u:p@ss@h"), "redis://u:***@h");
    assert_eq!(redact_url("not a url"), "not a url");
    assert_eq!(
        redis_url::redact_urls_in("a \"redis://u:p@h\" and (rediss://:q@x) end"),
        "a \"redis://u:***@h\" and (rediss://:***@x) end"
    );
}

// ----- load -----

#[test]
fn load_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.toml");
    let message = Config::load(&missing).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{}: cannot read: No such file or directory",
            missing.display()
        )
    );

    let message = Config::load(dir.path()).unwrap_err().to_string();
    assert!(message.contains("cannot read: Is a directory"), "{message}");

    let binary = dir.path().join("bin.toml");
    fs::write(&binary, b"# ok\n# \xff\n").unwrap();
    let message = Config::load(&binary).unwrap_err().to_string();
    assert_eq!(message, format!("{}:2: not valid UTF-8", binary.display()));
}

#[test]
fn load_names_the_file_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mavfs.toml");
    fs::write(
        &file,
        "[[mount]]\npath = \"/v\"\nbackend = \"memory\"\nbogus = 1\n",
    )
    .unwrap();
    let message = Config::load(&file).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{}:4: key mount[1].bogus: unknown key",
            file.display()
        )),
        "{message}"
    );
}

#[test]
fn transfer_bwlimit_is_a_rate() {
    for (text, bytes) in [
        ("\"50MiB/s\"", 50 << 20),
        ("\"1GiB\"", 1 << 30),
        ("1000", 1000),
    ] {
        let text = format!(
            "[transfer]\nbwlimit = {text}\n[[mount]]\npath = \"/m\"\nbackend = \"memory\"\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.transfer.bwlimit, Some(bytes), "{text}");
    }
    let mount = "[[mount]]\npath = \"/m\"\nbackend = \"memory\"\n";
    let bad = |rate: &str| format!("[transfer]\nbwlimit = {rate}\n{mount}");
    assert_error(&bad("\"fast\""), 2, "transfer.bwlimit", "invalid rate");
    assert_error(&bad("0"), 2, "transfer.bwlimit", "above 0");
}

#[test]
fn deeply_nested_toml_is_an_error_not_a_crash() {
    // FAULTS.md case 37: nesting far past any real config must fail as a parse error (the TOML
    // parser limits its depth), never overflow the stack.
    for depth in [100, 10_000, 200_000] {
        let text = format!(
            "[[mount]]\npath = {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(parse(&text).is_err(), "depth {depth}");
        let text = format!("x = {}1{}\n", "{a = ".repeat(depth), "}".repeat(depth));
        assert!(parse(&text).is_err(), "inline tables, depth {depth}");
    }
}
