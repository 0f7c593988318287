//! Configuration: which mounts exist, what backs them, and the transfer defaults.
//!
//! This module owns everything between a TOML file and a validated [`Config`] (DESIGN.md sections
//! 3 and 7): finding the file ([`locate`]), the built-in defaults ([`Config::defaults`]), parsing and
//! validating ([`Config::load`], [`Config::parse`]) and size strings ([`parse_size`]). It checks
//! only what can be checked without starting anything: a disk root must exist, but whether a
//! Redis server answers is the engine's business.
//!
//! The rules themselves (limits and defaults, tiers and backend names, the namespace rule, Redis
//! URL checking and redaction) are the engine's, imported from its crate root; this module adds
//! only the file, line and key of what breaks them.
//!
//! Every error is a [`ConfigError`] that names the file, the 1-based line and the key, as in
//! `mavfs.toml:7: key mount[2].root: /x/y does not exist`. Mount tables are numbered from 1 in
//! these key paths, as a person counts them.
//!
//! Submodules: `parse` walks the TOML document, `size` reads sizes.

use std::fmt;
use std::path::{Path, PathBuf};

use mavfs_actors::redis_url;
pub use mavfs_actors::{
    BackendKind, DEFAULT_CHUNK_SIZE, DEFAULT_JOBS, DEFAULT_NAMESPACE, MAX_CHUNK_SIZE, MAX_JOBS,
    MIN_CHUNK_SIZE, Tier, VPath, redact_url,
};

mod parse;
#[cfg(test)]
mod props;
mod size;
#[cfg(test)]
mod tests;

pub use size::parse_size;

/// A validated configuration: the mount table and the transfer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The mounts, in file order; paths are distinct and each one level below `/`.
    pub mounts: Vec<MountConfig>,
    /// Transfer defaults.
    pub transfer: TransferConfig,
    /// The file this came from; `None` for the built-in defaults.
    pub source: Option<PathBuf>,
}

/// The `[transfer]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferConfig {
    /// Files of a tree moved in parallel: 1..=[`MAX_JOBS`], default [`DEFAULT_JOBS`].
    pub jobs: usize,
    /// Bytes per streamed chunk: [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`], default
    /// [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: usize,
    /// The limit in bytes per second all jobs share at start (`throttle all` changes it live);
    /// `None`: no limit.
    pub bwlimit: Option<u64>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            jobs: DEFAULT_JOBS,
            chunk_size: DEFAULT_CHUNK_SIZE,
            bwlimit: None,
        }
    }
}

/// One `[[mount]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountConfig {
    /// Where it appears: exactly one component below `/`, such as `/vram`.
    pub path: VPath,
    /// Hot or cold: `push` goes hot -> cold, `pull` cold -> hot.
    pub tier: Tier,
    /// What stores the data.
    pub backend: BackendConfig,
}

/// What backs a mount, with the settings that apply to that backend only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// The in-process memory store.
    Memory {
        /// Most bytes of file data it holds; `None` means no limit.
        capacity: Option<u64>,
    },
    /// A sandboxed directory on the host.
    Disk {
        /// The directory; relative roots in a file are already resolved against its directory.
        root: PathBuf,
        /// Whether committed files are fsynced (durable pushes, slower).
        fsync: bool,
        /// Whether the root is created when missing: true only for the built-in default root, so a
        /// typo in a config file is an error instead of a new empty tier.
        create: bool,
    },
    /// A Redis server or cluster.
    Redis(RedisConfig),
}

impl BackendConfig {
    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            BackendConfig::Memory { .. } => BackendKind::Memory,
            BackendConfig::Disk { .. } => BackendKind::Disk,
            BackendConfig::Redis(_) => BackendKind::Redis,
        }
    }
}

/// Prints the backend's name as in config files: `memory`, `disk` or `redis`.
impl fmt::Display for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind().as_str())
    }
}

/// Where a Redis mount lives. Exactly one of `url` and `cluster` is set.
///
/// `Debug` redacts any password embedded in a URL, so the value may be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// A single node, `redis://[user[:password]@]host[:port][/db]` (or `rediss://` for TLS).
    pub url: Option<String>,
    /// Cluster seed nodes, each a URL as above without a database other than 0.
    pub cluster: Vec<String>,
    /// Prefix of every key this mount uses, so several mounts can share one Redis.
    pub namespace: String,
    /// Name of an environment variable holding the password; read when connecting, not here.
    pub password_env: Option<String>,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cluster: Vec<_> = self.cluster.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("cluster", &cluster)
            .field("namespace", &self.namespace)
            .field("password_env", &self.password_env)
            .finish()
    }
}

/// A configuration that cannot be used: the file, the 1-based line and the key it is about, and
/// what is wrong. The message never holds a URL password (it is redacted when the error is built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    message: String,
}

impl ConfigError {
    /// Builds an error. URL passwords in `key` and `message` are redacted here, so no caller can
    /// leak one (a URL pasted as a key or as a mount path ends up in an error too).
    fn new(
        file: &Path,
        line: Option<usize>,
        key: Option<String>,
        message: impl AsRef<str>,
    ) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line,
            key: key.map(|k| redis_url::redact_urls_in(&k)),
            message: redis_url::redact_urls_in(message.as_ref()),
        }
    }
}

/// `file:line: key k: message`, leaving out the line or key when there is none.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Built-in defaults: `/vram` memory hot (no capacity), `/vdisk` disk cold at `disk_dir`
    /// (created if missing, without fsync), default transfer settings.
    pub fn defaults(disk_dir: &Path) -> Config {
        Config {
            mounts: vec![
                MountConfig {
                    path: VPath::parse("/vram").expect("a valid literal path"),
                    tier: Tier::Hot,
                    backend: BackendConfig::Memory { capacity: None },
                },
                MountConfig {
                    path: VPath::parse("/vdisk").expect("a valid literal path"),
                    tier: Tier::Cold,
                    backend: BackendConfig::Disk {
                        root: disk_dir.to_path_buf(),
                        fsync: false,
                        create: true,
                    },
                },
            ],
            transfer: TransferConfig::default(),
            source: None,
        }
    }

    /// Reads and validates a TOML file. Errors: the file cannot be read or is not UTF-8, and every
    /// error of [`Config::parse`].
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(file).map_err(|e| {
            ConfigError::new(file, None, None, format!("cannot read: {}", io_reason(&e)))
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let line = parse::line_of(e.as_bytes(), e.utf8_error().valid_up_to());
            ConfigError::new(file, Some(line), None, "not valid UTF-8")
        })?;
        Self::parse(&text, file)
    }

    /// Parses and validates `text` as if read from `file`: `file` names the errors, and relative
    /// disk roots resolve against its directory (and are checked to exist there).
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        parse::parse(text, file)
    }
}

/// Host directories a disk root may not be: the whole host, and the directories of the system
/// itself (`/etc`, `/usr`, ...). A root there would expose, and let `rm -r` remove, the host's own
/// files.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/sys", "/usr", "/var",
];

/// File systems of the kernel's (`statfs` magic numbers): they show the kernel's state as files,
/// and cannot hold a store's files (creating one fails with a misleading `No such file`).
const KERNEL_FILE_SYSTEMS: &[(i64, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x1cd1, "devpts"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
];

/// Why `root`, an existing directory, cannot be a disk root, or `None` if it can: it is `/` or a
/// system directory ([`SYSTEM_DIRS`], after resolving symlinks), or it is on one of the kernel's
/// file systems (`/proc`, `/sys`, anywhere they are mounted).
pub fn unsuitable_disk_root(root: &Path) -> Option<String> {
    let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let shown = if real == root {
        root.display().to_string()
    } else {
        format!("{} (resolved to {})", root.display(), real.display())
    };
    if real == Path::new("/") {
        return Some(format!(
            "{shown} is the host's whole file system; a disk root must be a directory of its own"
        ));
    }
    // The file system first: for `/proc` it says what would really fail.
    // `f_type`'s integer type differs between architectures; i64 holds every magic number.
    #[allow(clippy::unnecessary_cast)]
    let kind = rustix::fs::statfs(&real).ok().map(|s| s.f_type as i64);
    if let Some((_, name)) = KERNEL_FILE_SYSTEMS.iter().find(|(m, _)| Some(*m) == kind) {
        return Some(format!(
            "{shown} is on the kernel's {name} file system, which cannot hold files; a disk root \
             must be a directory of its own"
        ));
    }
    if SYSTEM_DIRS.iter().any(|d| real == Path::new(d)) {
        return Some(format!(
            "{shown} is a system directory; a disk root must be a directory of its own"
        ));
    }
    None
}

/// The warning for a config file that others can read and that holds a Redis password in a URL,
/// or `None`: it names the file, its mode and the remedy (`password_env`, or `chmod 600`).
/// `mode` is the file's permission bits; only the group and other read bits count, since the
/// owner is the one who wrote the password there.
pub fn exposed_password_warning(file: &Path, mode: u32, config: &Config) -> Option<String> {
    if mode & 0o044 == 0 {
        return None;
    }
    let holds_password = config.mounts.iter().any(|m| match &m.backend {
        BackendConfig::Redis(r) => r
            .url
            .iter()
            .chain(&r.cluster)
            .any(|u| redis_url::has_password(u)),
        _ => false,
    });
    holds_password.then(|| {
        let who = if mode & 0o004 != 0 {
            "every user"
        } else {
            "its group"
        };
        format!(
            "warning: {} is readable by {who} (mode {:03o}) and holds a Redis password in a URL; \
             give the password in an environment variable named by password_env, or chmod 600 the \
             file",
            file.display(),
            mode & 0o777
        )
    })
}

/// Which config file applies: `explicit` (`-c FILE`) if given, whether or not it exists (loading
/// then reports it); else `cwd/mavfs.toml` if it exists; else `mavfs/config.toml` under the XDG
/// config directory if it exists; else `None`, meaning the built-in defaults.
///
/// The XDG config directory is `xdg_config_home` when it is an absolute path (the XDG spec says to
/// ignore empty and relative values), else `home/.config`. The environment comes in as parameters
/// so tests need not change the process environment.
pub fn locate(
    explicit: Option<&Path>,
    cwd: &Path,
    xdg_config_home: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(file) = explicit {
        return Some(file.to_path_buf());
    }
    let local = cwd.join("mavfs.toml");
    if local.exists() {
        return Some(local);
    }
    let config_home = match xdg_config_home.filter(|p| p.is_absolute()) {
        Some(dir) => dir.to_path_buf(),
        None => home.filter(|h| !h.as_os_str().is_empty())?.join(".config"),
    };
    let user = config_home.join("mavfs").join("config.toml");
    user.exists().then_some(user)
}

/// An I/O error's reason without Rust's ` (os error N)` suffix, as the shell prints reasons.
fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}
