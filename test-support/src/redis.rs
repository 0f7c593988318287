//! Private Redis servers for tests: a `redis-server` on a free port, or a 3-master cluster, each in
//! a temp dir of its own, without persistence unless a test saves explicitly.
//!
//! Used by the test binaries of both crates (`use mavfs_test_support::redis as redis_support;`).
//! Nothing here knows MAVFS: it only runs servers.
//!
//! When `redis-server` is not installed, [`RedisServer::start`] and friends print that the test
//! is skipped and return `None`, so the test passes; with `MAVFS_REQUIRE_REDIS=1` they panic
//! instead, so CI cannot skip silently.
//!
//! Every server runs under a small shell that holds a pipe from the test process and kills the
//! server (SIGKILL) when the pipe closes: when the handle drops, or when the test process exits
//! in any way, so the servers of `static` instances never outlive their test binary.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to answer PING, or a cluster to reach `cluster_state:ok`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether the environment demands Redis tests (CI).
pub fn required() -> bool {
    std::env::var("MAVFS_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// Whether `redis-server` and `redis-cli` can run here.
pub fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        ["redis-server", "redis-cli"].iter().all(|bin| {
            Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    })
}

/// Says that `what` is skipped for lack of Redis (once per `what`); panics instead when Redis is
/// required.
pub fn skip(what: &str) {
    assert!(
        !required(),
        "{what}: redis-server is not installed, and MAVFS_REQUIRE_REDIS=1"
    );
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|w| w == what) {
        said.push(what.to_string());
        // Straight to the process's stderr: libtest captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {what}: redis-server is not installed"
        );
    }
}

/// A namespace no other test uses.
pub fn namespace(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A free TCP port on 127.0.0.1; with `bus`, port + 10000 (a cluster node's bus) is free too.
fn free_port(bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().unwrap().port();
        if !bus {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// The `maxmemory` every test server gets unless its test says otherwise: far above what any test
/// stores, and a bound on what a runaway test can take from the shared machine.
pub const DEFAULT_MAXMEMORY: &str = "512mb";

/// One `redis-server` process on 127.0.0.1.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    /// The watchdog shell and the pipe whose closing kills the server.
    running: Option<(Child, ChildStdin)>,
}

impl RedisServer {
    /// A server with the test defaults ([`DEFAULT_MAXMEMORY`], `noeviction`), or `None` (after
    /// saying so) without Redis.
    pub fn start(what: &str) -> Option<RedisServer> {
        Self::start_with(what, &[])
    }

    /// A server with extra `redis-server` arguments (`["--maxmemory", "10mb"]`).
    pub fn start_with(what: &str, args: &[&str]) -> Option<RedisServer> {
        if !installed() {
            skip(what);
            return None;
        }
        Some(Self::launch(free_port(false), args))
    }

    fn launch(port: u16, args: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            args: args.iter().map(|s| s.to_string()).collect(),
            running: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let dir = self
            .dir
            .path()
            .to_str()
            .expect("a UTF-8 temp dir")
            .to_string();
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir,
            "--logfile",
            "redis.log",
            "--daemonize",
            "no",
            // Memory is shared with every other test: no server grows without bound. The
            // caller's arguments come after and win (`--maxmemory 0` lifts the limit).
            "--maxmemory",
            DEFAULT_MAXMEMORY,
            "--maxmemory-policy",
            "noeviction",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.args.iter().cloned());
        // The shell starts the server, then waits for its stdin to close, then kills it.
        let watchdog = r#"redis-server "$@" & pid=$!; cat >/dev/null; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0"#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .arg("sh")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let stdin = child.stdin.take().unwrap();
        self.running = Some((child, stdin));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // A server with `--requirepass` answers NOAUTH: it is up all the same.
            if self
                .try_cli(&["PING"])
                .is_some_and(|out| out.trim() == "PONG" || out.starts_with("NOAUTH"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not start; its log:\n{}",
                self.port,
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL, as a crash) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some((mut child, stdin)) = self.running.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (it loads `dump.rdb` if a test
    /// saved one).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `redis-cli` against this server and returns its output (panics if it cannot run).
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed on port {}", self.port))
    }

    /// Keys matching `pattern`, by SCAN.
    pub fn scan(&self, pattern: &str) -> Vec<String> {
        let out = self.cli(&["--scan", "--pattern", pattern]);
        out.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Feeds `commands` (one per line, redis-cli syntax) to redis-cli, for bulk setup.
    pub fn pipe(&self, commands: &str) {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-cli");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three masters, no replicas, on free ports.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// A new cluster, or `None` (after saying so) without Redis.
    pub fn start(what: &str) -> Option<RedisCluster> {
        if !installed() {
            skip(what);
            return None;
        }
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::launch(
                    free_port(true),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes };
        let deadline = Instant::now() + READY_TIMEOUT;
        while !cluster.nodes.iter().all(|n| {
            n.try_cli(&["CLUSTER", "INFO"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
        }) {
            assert!(Instant::now() < deadline, "the cluster never got ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(cluster)
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Runs `redis-cli -c` (following redirections) against the first node.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        self.nodes[0].cli(&all)
    }

    /// Keys matching `pattern` on every node.
    pub fn scan(&self, pattern: &str) -> Vec<String> {
        self.nodes.iter().flat_map(|n| n.scan(pattern)).collect()
    }

    /// The index of the node serving `key`'s slot.
    pub fn node_of(&self, key: &str) -> usize {
        let slot: u16 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("a slot number");
        self.nodes
            .iter()
            .position(|node| {
                // `CLUSTER NODES`: the `myself` line ends with the node's slot ranges.
                let nodes = node.cli(&["CLUSTER", "NODES"]);
                let me = nodes.lines().find(|l| l.contains("myself")).unwrap_or("");
                me.split_whitespace().skip(8).any(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
                })
            })
            .expect("a node serves every slot")
    }

    /// Kills node `i` and starts it again without its data (the cluster's tests run without
    /// persistence; it keeps its `nodes.conf`, so its slots), then waits for the cluster.
    pub fn restart_node(&mut self, i: usize) {
        self.nodes[i].restart();
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.nodes.iter().all(|n| {
            n.try_cli(&["CLUSTER", "INFO"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
        }) {
            assert!(Instant::now() < deadline, "the cluster never got ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One server shared by every test of the binary (each uses namespaces of its own), or `None`.
pub fn shared_server(what: &str) -> Option<&'static RedisServer> {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    if !installed() {
        skip(what);
        return None;
    }
    Some(SERVER.get_or_init(|| RedisServer::launch(free_port(false), &[])))
}

/// One cluster shared by every test of the binary, or `None`.
pub fn shared_cluster(what: &str) -> Option<&'static RedisCluster> {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    if !installed() {
        skip(what);
        return None;
    }
    Some(CLUSTER.get_or_init(|| RedisCluster::start(what).expect("installed")))
}
