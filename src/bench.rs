//! `mavfs bench`: read and write latency and throughput per mount, through the whole engine.
//!
//! For each mount (or the one `--bench-mount` names) it writes `iters` files of `size` bytes into
//! a scratch directory, reads them all back, stats each, and reports p50 and p99 latency per
//! operation and the throughput over all of them (operations per second for `stat`); the scratch
//! directory is removed afterwards. Each write is open, write and atomic commit; each read is
//! open and every chunk. Attached to a daemon (`mavfs serve`), the same figures include the
//! socket, so running it `--embedded` and attached compares the two. The loop runs in a spawned
//! task, since an `ask` from the runtime's main task pays cross-thread wake-ups that no real
//! front end pays.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::{VPath, WriteMode};

use crate::cli::Cli;
use crate::config::parse_size;
use crate::engine::Engine;
use crate::shell::format;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bytes per file.
    pub size: usize,
    /// Files per mount.
    pub iters: usize,
    /// Only this mount, when given.
    pub mount: Option<VPath>,
}

impl Settings {
    /// From `--bench-size` (default 64 KiB) and `--bench-iters` (default 1000).
    pub fn from_cli(cli: &Cli) -> Result<Settings, String> {
        let size = match &cli.bench_size {
            None => 64 * 1024,
            Some(s) => parse_size(s)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=1 << 30).contains(n))
                .ok_or_else(|| format!("--bench-size {s}: expected a size from 1 B to 1 GiB"))?,
        };
        let iters = cli.bench_iters.unwrap_or(1000);
        if iters == 0 {
            return Err("--bench-iters must be at least 1".into());
        }
        let mount = match &cli.bench_mount {
            None => None,
            Some(m) => {
                Some(VPath::parse(m).map_err(|e| format!("--bench-mount {m}: {}", e.reason()))?)
            }
        };
        Ok(Settings { size, iters, mount })
    }
}

/// Latencies of one operation on one mount.
struct Sample {
    latencies: Vec<Duration>,
    total: Duration,
}

impl Sample {
    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

/// Runs the benchmark on every mount and prints a table; returns the exit code.
pub async fn run(engine: &Engine, settings: Settings) -> i32 {
    println!(
        "{:<10} {:<8} {:<5} {:>10} {:>7} {:>10} {:>10} {:>12}",
        "MOUNT", "BACKEND", "OP", "SIZE", "ITERS", "P50", "P99", "THROUGHPUT"
    );
    let mut code = 0;
    let mounts: Vec<_> = engine
        .mounts()
        .into_iter()
        .filter(|m| settings.mount.as_ref().is_none_or(|only| *only == m.path))
        .collect();
    if mounts.is_empty() {
        eprintln!("mavfs: bench: no such mount");
        return 2;
    }
    for mount in mounts {
        let scratch = match mount
            .path
            .join(&format!(".mavfs-bench-{}", std::process::id()))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("mavfs: bench: {e}");
                return 1;
            }
        };
        let task = tokio::spawn(measure(engine.clone(), scratch.clone(), settings.clone()));
        let result = task
            .await
            .unwrap_or_else(|e| Err(format!("benchmark task failed: {e}")));
        // Clean up whatever was written, even after a failure.
        let _ = engine.remove(&scratch, true, true).await;
        match result {
            Ok(mut samples) => {
                let ops = [
                    ("write", &mut samples.0),
                    ("read", &mut samples.1),
                    ("stat", &mut samples.2),
                ];
                for (op, sample) in ops {
                    let bytes = (settings.size * settings.iters) as u64;
                    let throughput = if op == "stat" {
                        let secs = sample.total.as_secs_f64().max(1e-9);
                        format!("{:.0} op/s", settings.iters as f64 / secs)
                    } else {
                        format::rate(bytes, sample.total)
                    };
                    println!(
                        "{:<10} {:<8} {:<5} {:>10} {:>7} {:>10} {:>10} {:>12}",
                        mount.path.as_str(),
                        mount.backend.as_str(),
                        op,
                        format::size(settings.size as u64),
                        settings.iters,
                        format::duration(sample.percentile(0.5)),
                        format::duration(sample.percentile(0.99)),
                        throughput
                    );
                }
            }
            Err(e) => {
                eprintln!("mavfs: bench: {}: {e}", mount.path);
                code = 1;
            }
        }
    }
    code
}

async fn measure(
    engine: Engine,
    dir: VPath,
    settings: Settings,
) -> Result<(Sample, Sample, Sample), String> {
    engine.mkdir(&dir, false).await.map_err(|e| e.to_string())?;
    let data = Bytes::from(vec![0xA5u8; settings.size]);
    let paths: Vec<VPath> = (0..settings.iters)
        .map(|i| dir.join(&format!("f{i}")).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut writes = Sample {
        latencies: Vec::with_capacity(settings.iters),
        total: Duration::ZERO,
    };
    let started = Instant::now();
    for path in &paths {
        let t = Instant::now();
        let mut w = engine
            .write(path, WriteMode::Replace)
            .await
            .map_err(|e| e.to_string())?;
        w.write(data.clone()).await.map_err(|e| e.to_string())?;
        w.commit().await.map_err(|e| e.to_string())?;
        writes.latencies.push(t.elapsed());
    }
    writes.total = started.elapsed();
    let mut reads = Sample {
        latencies: Vec::with_capacity(settings.iters),
        total: Duration::ZERO,
    };
    let started = Instant::now();
    for path in &paths {
        let t = Instant::now();
        let mut r = engine.read(path).await.map_err(|e| e.to_string())?;
        let mut n = 0;
        while let Some(chunk) = r.chunks.next().await {
            n += chunk.map_err(|e| e.to_string())?.len();
        }
        reads.latencies.push(t.elapsed());
        if n != settings.size {
            return Err(format!("{path}: read {n} bytes, wrote {}", settings.size));
        }
    }
    reads.total = started.elapsed();
    let mut stats = Sample {
        latencies: Vec::with_capacity(settings.iters),
        total: Duration::ZERO,
    };
    let started = Instant::now();
    for path in &paths {
        let t = Instant::now();
        let meta = engine.stat(path).await.map_err(|e| e.to_string())?;
        stats.latencies.push(t.elapsed());
        if meta.size != settings.size as u64 {
            return Err(format!("{path}: stat says {} bytes", meta.size));
        }
    }
    stats.total = started.elapsed();
    Ok((writes, reads, stats))
}
