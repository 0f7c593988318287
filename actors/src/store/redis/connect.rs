//! Connecting a [`RedisStore`]: the clients built and reached within the command timeout, every
//! master checked (version, eviction policy), the scripts loaded, the namespace initialised or
//! its layout checked and its epoch remembered, what crashed processes left swept (and, for a
//! namespace just created, what a lost one left on any master), and the heartbeat started. What
//! is worth telling but not fatal (an evicting `maxmemory-policy`, a failed sweep) becomes a
//! warning.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, ClusterInterface, Options, ReconnectPolicy};
use fred::types::InfoKind;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::epoch::is_epoch;
use super::errors::{self, Origin};
use super::gc::{self, SweepReport};
use super::keys::Keys;
use super::scripts::SCRIPTS;
use super::shared::{Session, Shared, text};
use super::{LAYOUT, RedisOptions, RedisStore};
use crate::error::{Error, ErrorKind, Result};

/// Connections (per node) for chunk data, besides the one for metadata. Measured with 4 files
/// at once against a local Redis: 16 instead of 4 cut Redis's CPU per GiB written by about 20%
/// and made both directions 10-15% faster; 8 was in between.
const DATA_CONNECTIONS: usize = 16;

/// Oldest Redis whose scripts take flags (`allow-oom`, `no-writes`).
const MIN_VERSION: (u32, u32) = (7, 0);

impl RedisStore {
    /// Connects, checks the server (version, eviction policy) and the namespace (layout, key
    /// types), creates the namespace in a new epoch or remembers its epoch (giving one to a
    /// namespace made before epochs), sweeps what crashed processes left, starts the background
    /// scan for chunks of other epochs when the namespace was just created, and starts the
    /// heartbeat.
    ///
    /// Errors: `InvalidInput` for bad options; `Unavailable` when Redis cannot be reached within
    /// the command timeout (the detail shows the URL without its password); `PermissionDenied`
    /// for refused credentials; `Unsupported` for a Redis older than 7.0; `Io` naming a key of
    /// the wrong type, or a namespace written by another layout version.
    pub async fn connect(options: RedisOptions) -> Result<RedisStore> {
        const OP: &str = "connect";
        options.validate()?;
        let timeout = options.command_timeout;
        let origin = Origin {
            shown: options.shown(),
            timeout,
        };
        let mut builder = Builder::from_config(options.fred_config()?);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                c.unresponsive.max_timeout = Some(timeout);
                c.unresponsive.interval = (timeout / 4).max(Duration::from_millis(100));
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            // Keep reconnecting for as long as the store lives; each command still fails after
            // the command timeout.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        let built = builder.build().and_then(|client| {
            let data = builder.build_pool(DATA_CONNECTIONS)?;
            Ok((client, data))
        });
        let (client, data) = built.map_err(|e| {
            Error::new(ErrorKind::InvalidInput, OP).with_detail(format!(
                "Redis at {}: {}",
                origin.shown,
                e.details()
            ))
        })?;
        let unreachable = |detail: String| {
            Error::new(ErrorKind::Unavailable, OP).with_detail(format!(
                "cannot connect to Redis at {}: {detail}",
                origin.shown
            ))
        };
        let init = async {
            client.init().await?;
            data.init().await
        };
        match tokio::time::timeout(timeout + Duration::from_secs(1), init).await {
            Ok(Ok(_handle)) => {}
            Ok(Err(e)) if *e.kind() == fred::error::ErrorKind::Auth => {
                return Err(origin.error(OP, &e, None));
            }
            Ok(Err(e)) => return Err(unreachable(errors::plain_details(&e))),
            Err(_) => return Err(unreachable(format!("no answer within {timeout:?}"))),
        }
        let shared = Arc::new(Shared {
            client,
            data,
            keys: Keys::new(&options.namespace),
            origin,
            chunk_size: options.chunk_size,
            cluster: options.is_cluster(),
            session: OnceLock::new(),
            lost: AtomicBool::new(false),
            pins: Mutex::new(HashMap::new()),
            live: Mutex::new(HashSet::new()),
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        });
        let result = Self::prepare(&shared).await;
        let (mut warnings, scan_owed) = match result {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = shared.client.quit().await;
                let _ = shared.data.quit().await;
                return Err(e);
            }
        };
        match gc::sweep(&shared, gc::ORPHAN_GRACE).await {
            Ok(SweepReport { data: 0, dirs: 0 }) => {}
            Ok(r) => tracing::info!(
                namespace = options.namespace,
                "swept {} abandoned data ids and {} removed directories",
                r.data,
                r.dirs
            ),
            Err(e) => warnings.push(format!("could not sweep abandoned data: {}", e.reason())),
        }
        if scan_owed {
            // In the background: a server that lost the namespace's metadata may have left
            // gigabytes of chunks on other masters; the store is usable meanwhile, and closing
            // waits for it (bounded). If it does not finish, the next start scans again.
            let owned = shared.clone();
            shared.spawn(async move {
                match gc::sweep_epochs(&owned).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        namespace = owned.keys.namespace(),
                        "deleted {n} chunks left by an earlier epoch of the namespace (its \
                         metadata was lost)"
                    ),
                    Err(_) if owned.is_lost() => {}
                    Err(e) => tracing::warn!(
                        namespace = owned.keys.namespace(),
                        "scanning for chunks of an earlier epoch: {e}"
                    ),
                }
            });
        }
        // Debug only: whoever opens the store shows `RedisStore::warnings` to its user, once
        // (`mavfs: mount /vram: warning: ...`); a `warn!` here printed each one twice.
        for warning in &warnings {
            tracing::debug!(namespace = options.namespace, "{warning}");
        }
        let stop = CancellationToken::new();
        tokio::spawn(gc::maintain(shared.clone(), stop.clone()));
        Ok(RedisStore {
            shared,
            warnings,
            stop,
            closed: false,
            read_ahead: Default::default(),
        })
    }

    /// Checks every master's version and eviction policy, loads the scripts and initialises or
    /// checks the namespace, and sets up the session in the namespace's epoch. Returns the
    /// warnings, and whether a scan for chunks of earlier epochs is owed.
    async fn prepare(shared: &Shared) -> Result<(Vec<String>, bool)> {
        const OP: &str = "connect";
        let origin = &shared.origin;
        let client = &shared.client;
        let nodes = if shared.cluster {
            client
                .cached_cluster_state()
                .map(|s| s.unique_primary_nodes())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut infos = Vec::new();
        if nodes.is_empty() {
            let info: String = client
                .info(Some(InfoKind::All))
                .await
                .map_err(|e| origin.error(OP, &e, None))?;
            infos.push((origin.shown.clone(), info));
        } else {
            for node in nodes {
                let options = Options {
                    cluster_node: Some(node.clone()),
                    ..Options::default()
                };
                let info: String = client
                    .with_options(&options)
                    .info(Some(InfoKind::All))
                    .await
                    .map_err(|e| origin.error(OP, &e, None))?;
                infos.push((format!("{}:{}", node.host, node.port), info));
            }
        }
        let mut warnings = Vec::new();
        for (node, info) in &infos {
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
            };
            let version = field("redis_version").unwrap_or("0");
            let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
            if (major, minor) < MIN_VERSION {
                return Err(Error::new(ErrorKind::Unsupported, OP).with_detail(format!(
                    "Redis at {node} is version {version}; MAVFS needs 7.0 or newer"
                )));
            }
            if let Some(policy) = field("maxmemory_policy")
                && policy.starts_with("allkeys-")
            {
                warnings.push(format!(
                    "Redis at {node} evicts keys when full (maxmemory-policy {policy}): an \
                     evicted chunk is lost data; set maxmemory-policy to noeviction"
                ));
            }
        }
        for script in SCRIPTS.all() {
            script
                .load(client)
                .await
                .map_err(|e| origin.error(OP, &e, None))?;
        }
        let epoch = super::epoch::new_epoch();
        let reply = shared.run_init(OP, vec![LAYOUT.to_string(), epoch]).await?;
        let field = |i: usize| reply.get(i).and_then(text);
        match field(0) {
            Some("layout") => {
                let found = field(1).unwrap_or("?");
                return Err(Error::new(ErrorKind::Io, OP).with_detail(format!(
                    "namespace {} at {} holds key layout {found}; this MAVFS uses layout {LAYOUT}",
                    shared.keys.namespace(),
                    origin.shown
                )));
            }
            Some("epoch") if field(1).is_some_and(is_epoch) => {
                let epoch = field(1).unwrap_or_default();
                let _ = shared.session.set(Session::new(&shared.keys, epoch));
            }
            _ => return Err(origin.bad_reply(OP, "init")),
        }
        let scan_owed = field(2) == Some("1");
        Ok((warnings, scan_owed))
    }
}
