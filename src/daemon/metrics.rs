//! The Prometheus exporter: `GET /metrics` over HTTP/1 on the address `serve --metrics` names,
//! in the OpenMetrics text format that Prometheus scrapes.
//!
//! It owns a `prometheus-client` registry (no global recorder, so every server and test has its
//! own), a task that keeps the registry current, and the listener. Mount figures are refreshed
//! every [`REFRESH`] from `Engine::stats` (counters the stores and backends keep, never a walk
//! per scrape) and job states from `Engine::jobs`; bytes transferred follow the event stream as
//! it is published, and the same per-second job read-out catches up whatever a lag skipped. A
//! scrape only encodes the registry.
//!
//! Metrics (counters carry the `_total` suffix in the exposition):
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `mavfs_mount_files` | gauge | `mount` | regular files on the mount |
//! | `mavfs_mount_directories` | gauge | `mount` | directories, the mount's root not counted |
//! | `mavfs_mount_bytes` | gauge | `mount` | bytes of file data |
//! | `mavfs_mount_capacity_bytes` | gauge | `mount` | the mount's capacity, only when known |
//! | `mavfs_mount_read_bytes_total` | counter | `mount` | bytes read from the mount |
//! | `mavfs_mount_written_bytes_total` | counter | `mount` | bytes written to the mount |
//! | `mavfs_jobs` | gauge | `state` | jobs in the job table by state (`running`, `done`, ...) |
//! | `mavfs_transferred_bytes_total` | counter | | bytes moved by jobs since the exporter started |
//! | `mavfs_events_dropped_total` | counter | | job events skipped by lagging subscribers |
//!
//! Events dropped are counted by whoever sees the lag, through [`events_dropped`]: the daemon for
//! its clients, and this exporter for its own subscription.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mavfs_actors::{JobId, JobInfo, JobState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::Engine;

/// How often mount figures and job states are read from the engine.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Scrapes served at once; more wait in the listen backlog. A scraper is one Prometheus, not a
/// crowd, so a few suffice and a flood of connections cannot grow the daemon.
const MAX_CONNECTIONS: usize = 8;

/// A connection that has not finished its exchange by then (one that sends nothing, or never
/// reads its response) is dropped.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The exposition's media type, as `prometheus-client` encodes it.
const CONTENT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Events dropped to lagging subscribers, process-wide: the daemon's connections and the
/// exporter's own subscription all add here, and every exporter reports it.
static EVENTS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Counts `n` job events that a lagging subscriber skipped (a `broadcast` `Lagged(n)`).
pub fn events_dropped(n: u64) {
    EVENTS_DROPPED.fetch_add(n, Ordering::Relaxed);
}

/// Serves `/metrics` on `addr` over `engine` until `shutdown` is cancelled, and returns the
/// address bound (so that `127.0.0.1:0` picks a free port). It binds only `addr`. The listener
/// and the refresh run as tasks of their own; all of them end when `shutdown` is cancelled.
/// Errors: the address cannot be bound, as a message naming it.
pub async fn serve(
    addr: SocketAddr,
    engine: Engine,
    shutdown: CancellationToken,
) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let metrics = Arc::new(Metrics::new());
    // Subscribed before the first read of the job table, so no job's bytes fall between them.
    let events = engine.subscribe();
    let tasks = TaskTracker::new();
    tasks.spawn(refresh(engine, events, metrics.clone(), shutdown.clone()));
    tasks.spawn(accept(listener, metrics, shutdown, tasks.clone()));
    tasks.close();
    tracing::info!(%local, "serving metrics");
    Ok(local)
}

/// The label of a mount's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountLabel {
    mount: String,
}

/// The label of a job state's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// The registry and a handle on each metric in it (handles share their values with it).
struct Metrics {
    registry: Registry,
    files: Family<MountLabel, Gauge>,
    dirs: Family<MountLabel, Gauge>,
    bytes: Family<MountLabel, Gauge>,
    capacity: Family<MountLabel, Gauge>,
    read: Family<MountLabel, Counter>,
    written: Family<MountLabel, Counter>,
    jobs: Family<StateLabel, Gauge>,
    transferred: Counter,
    dropped: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            files: Family::default(),
            dirs: Family::default(),
            bytes: Family::default(),
            capacity: Family::default(),
            read: Family::default(),
            written: Family::default(),
            jobs: Family::default(),
            transferred: Counter::default(),
            dropped: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "mavfs_mount_files",
            "Regular files on the mount",
            m.files.clone(),
        );
        r.register(
            "mavfs_mount_directories",
            "Directories on the mount",
            m.dirs.clone(),
        );
        r.register(
            "mavfs_mount_bytes",
            "Bytes of file data on the mount",
            m.bytes.clone(),
        );
        r.register(
            "mavfs_mount_capacity_bytes",
            "The mount's capacity, when known",
            m.capacity.clone(),
        );
        r.register(
            "mavfs_mount_read_bytes",
            "Bytes read from the mount",
            m.read.clone(),
        );
        r.register(
            "mavfs_mount_written_bytes",
            "Bytes written to the mount",
            m.written.clone(),
        );
        r.register(
            "mavfs_jobs",
            "Jobs in the job table, by state",
            m.jobs.clone(),
        );
        r.register(
            "mavfs_transferred_bytes",
            "Bytes moved by jobs since the exporter started",
            m.transferred.clone(),
        );
        r.register(
            "mavfs_events_dropped",
            "Job events skipped by lagging subscribers",
            m.dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The exposition of every metric now.
    fn render(&self) -> String {
        self.dropped
            .inner()
            .store(EVENTS_DROPPED.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Takes the mount figures of one `Engine::stats`.
    fn load_mounts(&self, stats: &[mavfs_actors::MountStats]) {
        for s in stats {
            let label = MountLabel {
                mount: s.path.to_string(),
            };
            self.files.get_or_create(&label).set(gauge(s.usage.files));
            self.dirs.get_or_create(&label).set(gauge(s.usage.dirs));
            self.bytes.get_or_create(&label).set(gauge(s.usage.bytes));
            match s.usage.capacity {
                Some(c) => {
                    self.capacity.get_or_create(&label).set(gauge(c));
                }
                None => {
                    self.capacity.remove(&label);
                }
            }
            // The engine's counters are monotonic; these mirror them rather than add.
            let store = |family: &Family<MountLabel, Counter>, v: u64| {
                family
                    .get_or_create(&label)
                    .inner()
                    .store(v, Ordering::Relaxed);
            };
            store(&self.read, s.io.bytes_read);
            store(&self.written, s.io.bytes_written);
        }
    }

    /// Takes the job states of one `Engine::jobs`; every known state has a series, zero or not.
    fn load_jobs(&self, jobs: &[JobInfo]) {
        let mut counts: HashMap<&'static str, i64> = [
            JobState::Running,
            JobState::Done,
            JobState::Failed,
            JobState::Cancelled,
        ]
        .into_iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for job in jobs {
            *counts.entry(job.state.as_str()).or_default() += 1;
        }
        for (state, n) in counts {
            let label = StateLabel {
                state: state.to_string(),
            };
            self.jobs.get_or_create(&label).set(n);
        }
    }
}

/// A gauge's value from a count; no mount holds 2^63 bytes.
fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Bytes each job has moved as far as the exporter has counted them, so that events and the
/// job table can both report a job's progress and each byte is counted once.
#[derive(Default)]
struct JobBytes {
    counted: HashMap<JobId, u64>,
}

impl JobBytes {
    /// Takes `bytes_done` of `job` and returns what it adds to the count; progress never counts
    /// backwards.
    fn observe(&mut self, job: JobId, bytes_done: u64) -> u64 {
        let counted = self.counted.entry(job).or_insert(0);
        let new = bytes_done.saturating_sub(*counted);
        *counted += new;
        new
    }

    /// Takes the whole job table: catches up on what lagged events skipped, and forgets jobs the
    /// table no longer holds.
    fn reconcile(&mut self, jobs: &[JobInfo]) -> u64 {
        let new = jobs
            .iter()
            .map(|j| self.observe(j.id, j.progress.bytes_done))
            .sum();
        let ids: std::collections::HashSet<JobId> = jobs.iter().map(|j| j.id).collect();
        self.counted.retain(|id, _| ids.contains(id));
        new
    }
}

/// Keeps the registry current until `shutdown`: the engine's figures every [`REFRESH`], bytes
/// transferred as events arrive.
async fn refresh(
    engine: Engine,
    mut events: crate::engine::Events,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut bytes = JobBytes::default();
    // What jobs had moved before the exporter started is not counted.
    match engine.jobs().await {
        Ok(jobs) => {
            bytes.reconcile(&jobs);
        }
        Err(e) => tracing::warn!("metrics: cannot read the job table: {e}"),
    }
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut subscribed = true;
    loop {
        // Both branches are cancel safe: a tick not taken fires next time, and an event not
        // received stays queued in the receiver.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let read = async {
                    load(&engine, &metrics, &mut bytes).await;
                };
                if shutdown.run_until_cancelled(read).await.is_none() {
                    return;
                }
            }
            event = events.recv(), if subscribed => match event {
                Ok(event) => {
                    metrics
                        .transferred
                        .inc_by(bytes.observe(event.job, event.progress.bytes_done));
                }
                // The next read of the job table catches up the skipped progress.
                Err(broadcast::error::RecvError::Lagged(n)) => events_dropped(n),
                // The engine has stopped: its figures no longer move, but scrapes still answer.
                Err(broadcast::error::RecvError::Closed) => subscribed = false,
            },
        }
    }
}

/// One read of the engine's figures into `metrics`. A failed read keeps the last figures.
async fn load(engine: &Engine, metrics: &Metrics, bytes: &mut JobBytes) {
    match engine.stats().await {
        Ok(stats) => metrics.load_mounts(&stats),
        Err(e) => tracing::warn!("metrics: cannot read mount stats: {e}"),
    }
    match engine.jobs().await {
        Ok(jobs) => {
            metrics.load_jobs(&jobs);
            metrics.transferred.inc_by(bytes.reconcile(&jobs));
        }
        Err(e) => tracing::warn!("metrics: cannot read the job table: {e}"),
    }
}

/// Accepts scrapes until `shutdown`, at most [`MAX_CONNECTIONS`] at once, each in a task of
/// `tasks` that ends by [`CONNECTION_TIMEOUT`] or at shutdown.
async fn accept(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Cancel safe: an unused permit goes back; a connection not yet accepted stays queued.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // the next accept may succeed.
                    tracing::warn!("metrics: accept failed: {e}");
                    continue;
                }
            },
        };
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&metrics, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let exchange = tokio::time::timeout(CONNECTION_TIMEOUT, conn);
            if let Some(Ok(Err(e))) = shutdown.run_until_cancelled(exchange).await {
                tracing::debug!("metrics: connection ended: {e}");
            }
            drop(permit);
        });
    }
}

/// The answer to one request: the exposition for `GET /metrics`, 404 or 405 otherwise.
fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<String> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, metrics.render()),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "see /metrics\n".to_string()),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if status == StatusCode::OK {
        let content = HeaderValue::from_static(CONTENT);
        response.headers_mut().insert(CONTENT_TYPE, content);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use mavfs_actors::{TransferKind, TransferRequest, VPath};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::config::{BackendConfig, Config};

    /// Guards against hangs only; the refresh runs every second.
    const TIMEOUT: Duration = Duration::from_secs(15);

    fn p(s: &str) -> VPath {
        VPath::parse(s).unwrap()
    }

    /// `GET path` over HTTP/1.0, as a bare client would: the status code and the body.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    /// The value of the sample `series` (name and labels as exposed), if present.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    }

    /// Scrapes until `ready` holds for the exposition, and returns it.
    async fn scrape_until(addr: SocketAddr, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let (status, text) = get(addr, "/metrics").await;
            assert_eq!(status, 200);
            if ready(&text) {
                return text;
            }
            assert!(start.elapsed() < TIMEOUT, "never ready:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn figures_move_after_a_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults(dir.path());
        config.mounts[0].backend = BackendConfig::Memory {
            capacity: Some(1 << 30),
        };
        let engine = crate::hypervisor::start(&config).await.unwrap();
        let shutdown = CancellationToken::new();
        let any_port = "127.0.0.1:0".parse().unwrap();
        let addr = serve(any_port, engine.clone(), shutdown.clone())
            .await
            .unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);

        let vram_files = r#"mavfs_mount_files{mount="/vram"}"#;
        let before = scrape_until(addr, |t| value(t, vram_files).is_some()).await;
        assert_eq!(value(&before, r#"mavfs_jobs{state="done"}"#), Some(0.0));
        assert_eq!(value(&before, "mavfs_transferred_bytes_total"), Some(0.0));
        let written = r#"mavfs_mount_written_bytes_total{mount="/vdisk"}"#;
        assert_eq!(value(&before, written), Some(0.0));
        assert!(before.contains("# TYPE mavfs_events_dropped counter"));
        let capacity = |mount: &str| {
            value(
                &before,
                &format!("mavfs_mount_capacity_bytes{{mount=\"{mount}\"}}"),
            )
        };
        assert_eq!(capacity("/vram"), Some((1u64 << 30) as f64));
        assert_eq!(get(addr, "/other").await.0, 404);

        // A file of a few chunks on /vram, pushed to /vdisk.
        let size = 300_000;
        let mut file = engine
            .write(&p("/vram/f"), mavfs_actors::WriteMode::Replace)
            .await
            .unwrap();
        file.write(Bytes::from(vec![7u8; size])).await.unwrap();
        file.commit().await.unwrap();
        let request = TransferRequest {
            kind: TransferKind::Push,
            sources: vec![p("/vram/f")],
            dest: p("/vdisk/f"),
            dest_is_dir: false,
            recursive: false,
            jobs: 1,
        };
        let job = engine
            .run(request, "push /vram/f /vdisk/f".into(), Default::default())
            .await
            .unwrap();
        let summary = tokio::time::timeout(TIMEOUT, job.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(summary.bytes, size as u64);

        let n = size as f64;
        let after = scrape_until(addr, |t| {
            value(t, r#"mavfs_jobs{state="done"}"#) == Some(1.0)
                && value(t, written) == Some(n)
                && value(t, "mavfs_transferred_bytes_total") == Some(n)
        })
        .await;
        // A push copies: it read the file from /vram once, and read nothing back from /vdisk.
        let read = |mount: &str| {
            value(
                &after,
                &format!("mavfs_mount_read_bytes_total{{mount=\"{mount}\"}}"),
            )
        };
        assert_eq!(read("/vram"), Some(n));
        assert_eq!(read("/vdisk"), Some(0.0));
        assert_eq!(
            value(&after, r#"mavfs_mount_files{mount="/vdisk"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&after, r#"mavfs_mount_bytes{mount="/vdisk"}"#),
            Some(n)
        );

        shutdown.cancel();
        engine.shutdown().await;
    }
}
