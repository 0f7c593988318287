//! Wiring: from the command line and config to a running engine.
//!
//! [`load_config`] picks the config (`-c`, `./mavfs.toml`, the XDG file or the built-in defaults)
//! and applies the seed's flags on top: `--ram` and the `--redis-*` flags choose `/vram`'s backend,
//! `--disk-dir` the root of `/vdisk`. [`start`] opens every store, spawns its backend actor and
//! the router. Both fail with an error in the user's terms, which `main` turns into exit code 2.
//!
//! A mount whose store cannot open (a Redis server that does not answer, a disk root that
//! vanished) does not stop the others: [`start`] reports it on stderr as
//! `mavfs: mount /shared: <reason>` and goes on without it, so the other tiers stay usable. Only
//! when no mount at all could start is that an error (exit 2). Warnings of the stores that did
//! open (a Redis that evicts keys) are printed at start too.

use std::fmt;
use std::path::Path;

use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::store::redis::{DEFAULT_COMMAND_TIMEOUT, RedisOptions, RedisStore};
use mavfs_actors::{Mount, MountTable, RouterHandle, Tier, VPath};

use crate::cli::{Cli, RamBackend};
use crate::config::{self, BackendConfig, Config, MountConfig, RedisConfig};
use crate::engine::Engine;

/// The mount the `--ram` flags configure.
const RAM_MOUNT: &str = "/vram";
/// The mount `--disk-dir` configures.
const DISK_MOUNT: &str = "/vdisk";
/// Where `/vdisk` lives when nothing says otherwise.
const DEFAULT_DISK_DIR: &str = "./block_dir";

/// A failure to configure or start, shown as `mavfs: <message>`.
#[derive(Debug)]
pub struct StartError(String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The config in effect for this run, flags applied.
pub fn load_config(cli: &Cli) -> Result<Config, StartError> {
    // Relative, so that errors name `./mavfs.toml` as the user knows it.
    let cwd = Path::new(".");
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(std::path::PathBuf::from);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = config::locate(cli.config.as_deref(), cwd, xdg.as_deref(), home.as_deref());
    let mut config = match file {
        Some(file) => {
            let config = Config::load(&file).map_err(|e| StartError(e.to_string()))?;
            warn_exposed_password(&file, &config);
            config
        }
        None => Config::defaults(Path::new(DEFAULT_DISK_DIR)),
    };
    apply_flags(&mut config, cli)?;
    Ok(config)
}

/// Warns on stderr, at every start, when `file` can be read by others and holds a password.
fn warn_exposed_password(file: &Path, config: &Config) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(file) else {
        return;
    };
    if let Some(warning) = config::exposed_password_warning(file, meta.permissions().mode(), config)
    {
        eprintln!("mavfs: {warning}");
    }
}

/// Applies `--ram`, `--redis-*` and `--disk-dir` to the `/vram` and `/vdisk` mounts. Errors: a
/// Redis URL (given, or made of `--redis-host`, `--redis-port` and `--redis-db`) that is not a
/// `redis://` or `rediss://` URL.
fn apply_flags(config: &mut Config, cli: &Cli) -> Result<(), StartError> {
    let redis_flags = cli.redis_url.is_some()
        || cli.redis_host.is_some()
        || cli.redis_port.is_some()
        || cli.redis_db.is_some();
    let ram = match cli.ram {
        Some(r) => Some(r),
        None if redis_flags => Some(RamBackend::Redis),
        None => None,
    };
    if let Some(ram) = ram {
        let backend = match ram {
            RamBackend::Memory | RamBackend::Dict => BackendConfig::Memory { capacity: None },
            RamBackend::Redis => BackendConfig::Redis(RedisConfig {
                url: Some(checked_redis_url(cli)?),
                cluster: Vec::new(),
                namespace: config::DEFAULT_NAMESPACE.to_string(),
                password_env: None,
            }),
        };
        set_mount(config, RAM_MOUNT, Tier::Hot, backend);
    }
    if let Some(dir) = &cli.disk_dir {
        // A missing directory is created at open; an existing one must be fit to be a root.
        if dir.is_dir()
            && let Some(problem) = config::unsuitable_disk_root(dir)
        {
            return Err(StartError(format!("--disk-dir: {problem}")));
        }
        let backend = BackendConfig::Disk {
            root: dir.clone(),
            fsync: false,
            create: true,
        };
        set_mount(config, DISK_MOUNT, Tier::Cold, backend);
    }
    Ok(())
}

/// The Redis URL of `--ram redis`: `--redis-url`, or one made of `--redis-host`, `--redis-port`
/// and `--redis-db`. Errors: a URL `redis_url::check` refuses (`http://...`), naming the flag.
fn checked_redis_url(cli: &Cli) -> Result<String, StartError> {
    let (url, flag) = match &cli.redis_url {
        Some(url) => (url.clone(), "--redis-url"),
        None => (
            format!(
                "redis://{}:{}/{}",
                cli.redis_host.as_deref().unwrap_or("127.0.0.1"),
                cli.redis_port.unwrap_or(6379),
                cli.redis_db.unwrap_or(0)
            ),
            "--redis-host",
        ),
    };
    mavfs_actors::redis_url::check(&url, false).map_err(|m| StartError(format!("{flag}: {m}")))?;
    Ok(url)
}

/// Replaces the backend of the mount at `path`, or adds that mount.
fn set_mount(config: &mut Config, path: &str, tier: Tier, backend: BackendConfig) {
    let vpath = VPath::parse(path).expect("the flag mounts are valid paths");
    match config.mounts.iter_mut().find(|m| m.path == vpath) {
        Some(m) => m.backend = backend,
        None => config.mounts.push(MountConfig {
            path: vpath,
            tier,
            backend,
        }),
    }
}

/// Opens every mount's store and starts the engine in this process. A mount that cannot open
/// is reported on stderr and left out; it is an error only when none can.
pub async fn start(config: &Config) -> Result<Engine, StartError> {
    let mut mounts = Vec::with_capacity(config.mounts.len());
    let mut failed = Vec::new();
    for mount in &config.mounts {
        match open_mount(mount, config).await {
            Ok(m) => mounts.push(m),
            Err(e) => {
                eprintln!("mavfs: {e}");
                failed.push(mount.path.to_string());
            }
        }
    }
    if mounts.is_empty() {
        return Err(StartError(format!(
            "no mount could start ({})",
            failed.join(", ")
        )));
    }
    let table = MountTable::new(mounts).map_err(|e| StartError(format!("mount {e}")))?;
    let router = RouterHandle::spawn(table);
    router.throttle_all(config.transfer.bwlimit);
    Ok(Engine::Local(router))
}

/// Opens `mount`'s store and mounts it.
async fn open_mount(mount: &MountConfig, config: &Config) -> Result<Mount, StartError> {
    let path = mount.path.clone();
    let (tier, kind) = (mount.tier, mount.backend.kind());
    match &mount.backend {
        BackendConfig::Memory { capacity } => {
            Ok(
                Mount::spawn(path, tier, kind, MemoryStore::new(*capacity))
                    .with_capacity(*capacity),
            )
        }
        BackendConfig::Disk {
            root,
            fsync,
            create,
        } => {
            if *create {
                std::fs::create_dir_all(root).map_err(|e| {
                    StartError(format!(
                        "mount {path}: cannot create {}: {e}",
                        root.display()
                    ))
                })?;
            }
            let options = DiskOptions {
                fsync: *fsync,
                chunk_size: config.transfer.chunk_size,
                ..DiskOptions::default()
            };
            let store = DiskStore::open(root, options).map_err(|e| {
                StartError(format!("mount {path}: {}: {}", root.display(), e.reason()))
            })?;
            Ok(Mount::spawn(path, tier, kind, store))
        }
        BackendConfig::Redis(redis) => {
            let store = open_redis(redis, config)
                .await
                .map_err(|reason| StartError(format!("mount {path}: {reason}")))?;
            for warning in store.warnings() {
                eprintln!("mavfs: mount {path}: warning: {warning}");
            }
            Ok(Mount::spawn(path, tier, kind, store))
        }
    }
}

/// Connects a Redis mount, its password read from `password_env` when that is given. Errors
/// are the reason alone; the store's already show its URL without the password.
async fn open_redis(redis: &RedisConfig, config: &Config) -> Result<RedisStore, String> {
    let password = match &redis.password_env {
        Some(var) => match std::env::var(var) {
            Ok(password) => Some(password),
            Err(_) => {
                return Err(format!(
                    "environment variable {var} (password_env) is not set"
                ));
            }
        },
        None => None,
    };
    let options = RedisOptions {
        url: redis.url.clone(),
        cluster: redis.cluster.clone(),
        namespace: redis.namespace.clone(),
        password,
        chunk_size: config.transfer.chunk_size,
        command_timeout: DEFAULT_COMMAND_TIMEOUT,
    };
    RedisStore::connect(options).await.map_err(|e| e.reason())
}
