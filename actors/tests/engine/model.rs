//! Model-based tests: random sequences of shell-level operations (`mkdir`, writes and appends,
//! `touch`, `rm`, `cp`, `mv`, `push`, `pull`, and two jobs at once) run against the engine over
//! two mounts and against [`Model`], a plain map of paths to directories and file contents. After
//! every step the two must agree on the result (success, or the error's kind) and on the whole
//! tree of both mounts, byte for byte.
//!
//! The model predicts exactly every outcome the engine decides before it writes: each
//! single-file operation, a transfer's plan (the `cp` destination rules), and a transfer whose
//! first step fails. A transfer that fails midway (a file where its tree needs a directory, or
//! the reverse) copied what it copied before the failure in an order `-j` decides, so for it the
//! model checks what must hold in any order, then takes the engine's tree: nothing outside the
//! targets (and a move's sources) changed, every target file is whole (its old bytes or its
//! source's), and every moved file is at its source or whole at its target, never lost.
//!
//! Each store pair runs [`CASES`] sequences from a fixed seed, so CI is repeatable;
//! `MAVFS_MODEL_CASES=N` runs more and `MAVFS_MODEL_SEED=S` another seed. A failure is shrunk by
//! proptest to a shortest sequence, printed with the step that disagreed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::store::redis::{RedisOptions, RedisStore};
use mavfs_actors::store::{Store, WriteMode};
use mavfs_actors::transfer::{TransferKind, TransferRequest};
use mavfs_actors::{BackendKind, ErrorKind, Mount, MountTable, RouterHandle, Tier, VPath};
use mavfs_test_support::redis as redis_support;
use mavfs_test_support::staging as staging_support;
use proptest::prelude::*;

use crate::chaos::{Chaos, ChaosStore};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Sequences per store pair in a default run.
const CASES: u32 = 32;
/// The default seed: any fixed 32 bytes.
const SEED: [u8; 32] = *b"mavfs model-based tests, seed 01";
/// Chunk size of the disk and Redis stores: small, so that one file of [`SIZES`] spans chunks.
const CHUNK: usize = 64 * 1024;
/// File sizes written: empty, tiny, a batched small file, and one streamed over two chunks.
const SIZES: [usize; 4] = [0, 7, 4096, CHUNK + 4465];
/// Names below each mount: the first [`GENERATED`] few, so that operations meet each other's
/// files, and the mounts' own names (a mount root copied into a directory keeps its name).
const NAMES: [&str; 5] = ["x", "y", "z", "a", "b"];
/// How many of [`NAMES`] random paths use.
const GENERATED: usize = 3;
/// The two mounts: the first hot, the second cold (so `push` goes from the first).
const MOUNTS: [&str; 2] = ["/a", "/b"];
/// Guards against a hang only.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// A path on one of [`MOUNTS`], up to three names deep (none: the mount root); or, before
/// [`Op::resolve`], the n-th path that exists at that step followed by `names` (so that most
/// operations meet existing files or create new ones in existing directories, as users' do,
/// instead of failing on a missing name). A pick's `mount` is 1 when it must not be a mount root.
#[derive(Clone, PartialEq, Eq)]
struct P {
    mount: usize,
    names: Vec<usize>,
    existing: Option<u16>,
}

impl fmt::Debug for P {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.existing {
            Some(n) => write!(f, "existing#{n}{:?}", self.names),
            None => write!(f, "{}", self.text()),
        }
    }
}

impl P {
    /// This path with `existing` replaced by the path it picks in `model`.
    fn resolve(&self, model: &Model) -> P {
        let Some(n) = self.existing else {
            return self.clone();
        };
        // A pick for a path that may not be a mount root picks among the others, if any.
        let candidates: Vec<&String> = model
            .tree
            .keys()
            .filter(|p| self.mount == 0 || !is_mount_root(p))
            .collect();
        let path = match candidates.len() {
            0 => MOUNTS[n as usize % MOUNTS.len()],
            len => candidates[n as usize % len].as_str(),
        };
        let mut picked = P::named(path);
        picked.names.extend(&self.names);
        picked
    }

    /// The named path of `path` (a mount and names of [`NAMES`]).
    fn named(path: &str) -> P {
        let mount = MOUNTS.iter().position(|m| under(path, m)).unwrap();
        let names = path[MOUNTS[mount].len()..]
            .split('/')
            .filter(|n| !n.is_empty())
            .map(|n| NAMES.iter().position(|x| *x == n).unwrap())
            .collect();
        P {
            mount,
            names,
            existing: None,
        }
    }

    fn text(&self) -> String {
        let mut s = MOUNTS[self.mount].to_string();
        for &n in &self.names {
            s.push('/');
            s.push_str(NAMES[n]);
        }
        s
    }

    fn vpath(&self) -> VPath {
        VPath::parse(&self.text()).unwrap()
    }
}

/// A transfer as the shell would start it.
#[derive(Debug, Clone)]
struct Transfer {
    kind: TransferKind,
    sources: Vec<P>,
    dest: P,
    /// `-r`; always set for the kinds that imply it.
    recursive: bool,
    jobs: usize,
}

impl Transfer {
    fn request(&self) -> TransferRequest {
        TransferRequest {
            kind: self.kind,
            sources: self.sources.iter().map(P::vpath).collect(),
            dest: self.dest.vpath(),
            dest_is_dir: false,
            recursive: self.recursive,
            jobs: self.jobs,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Mkdir {
        path: P,
        parents: bool,
    },
    /// A write or append; with `parents`, after a `mkdir -p` of its directory (`install -D`).
    Write {
        path: P,
        size: usize,
        seed: u8,
        append: bool,
        parents: bool,
    },
    Touch {
        path: P,
    },
    Rm {
        path: P,
        recursive: bool,
    },
    Transfer(Transfer),
    /// Two background jobs started together, run only when their trees are disjoint.
    TwoJobs(Transfer, Transfer),
}

impl Transfer {
    fn resolve(&self, model: &Model) -> Transfer {
        Transfer {
            sources: self.sources.iter().map(|p| p.resolve(model)).collect(),
            dest: self.dest.resolve(model),
            ..self.clone()
        }
    }
}

impl Op {
    /// The operation with every picked path replaced by the path it picks now.
    fn resolve(&self, model: &Model) -> Op {
        match self {
            Op::Mkdir { path, parents } => Op::Mkdir {
                path: path.resolve(model),
                parents: *parents,
            },
            Op::Write {
                path,
                size,
                seed,
                append,
                parents,
            } => Op::Write {
                path: path.resolve(model),
                size: *size,
                seed: *seed,
                append: *append,
                parents: *parents,
            },
            Op::Touch { path } => Op::Touch {
                path: path.resolve(model),
            },
            Op::Rm { path, recursive } => Op::Rm {
                path: path.resolve(model),
                recursive: *recursive,
            },
            Op::Transfer(t) => Op::Transfer(t.resolve(model)),
            Op::TwoJobs(a, b) => Op::TwoJobs(a.resolve(model), b.resolve(model)),
        }
    }
}

/// A named path at least `min_depth` deep, or (with weight `existing` in 10) one that exists when
/// the step runs (not a mount root when `min_depth` is 1), or with `extra` sometimes a new name
/// in it.
fn path_strategy(min_depth: usize, existing: u32, extra: bool) -> impl Strategy<Value = P> {
    let named = (
        0..MOUNTS.len(),
        prop::collection::vec(0..GENERATED, min_depth..=3),
    )
        .prop_map(|(mount, names)| P {
            mount,
            names,
            existing: None,
        });
    let below = prop_oneof![
        2 => Just(Vec::new()),
        u32::from(extra) => (0..GENERATED).prop_map(|n| vec![n]),
    ];
    let picked = (any::<u16>(), below).prop_map(move |(n, names)| P {
        mount: min_depth.min(1),
        names,
        existing: Some(n),
    });
    prop_oneof![10 - existing => named, existing => picked]
}

fn transfer_strategy() -> impl Strategy<Value = Transfer> {
    let kind = prop_oneof![
        3 => Just(TransferKind::Copy),
        3 => Just(TransferKind::Move),
        1 => Just(TransferKind::Push),
        1 => Just(TransferKind::Pull),
    ];
    (
        kind,
        prop_oneof![4 => prop::collection::vec(path_strategy(1, 8, false), 1..=1), 1 => prop::collection::vec(path_strategy(1, 8, false), 2..=2)],
        path_strategy(0, 6, true),
        prop::bool::weighted(0.85),
        1usize..=4,
    )
        .prop_map(|(kind, sources, dest, recursive, jobs)| Transfer {
            kind,
            recursive: recursive || kind != TransferKind::Copy,
            sources,
            dest,
            jobs,
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (path_strategy(1, 2, true), any::<bool>()).prop_map(|(path, parents)| Op::Mkdir { path, parents }),
        5 => (
            path_strategy(1, 3, true),
            prop::sample::select(SIZES.to_vec()),
            any::<u8>(),
            prop::bool::weighted(0.2),
            any::<bool>(),
        )
            .prop_map(|(path, size, seed, append, parents)| Op::Write { path, size, seed, append, parents }),
        1 => path_strategy(0, 5, false).prop_map(|path| Op::Touch { path }),
        2 => (path_strategy(1, 7, false), any::<bool>()).prop_map(|(path, recursive)| Op::Rm { path, recursive }),
        5 => transfer_strategy().prop_map(Op::Transfer),
        2 => (transfer_strategy(), transfer_strategy()).prop_map(|(a, b)| Op::TwoJobs(a, b)),
    ]
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i / 253) as u8)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// Every path of both mounts (mount roots included) and what is there.
type Tree = BTreeMap<String, Node>;

fn parent_of(path: &str) -> &str {
    &path[..path.rfind('/').unwrap_or(0)]
}

fn name_of(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

/// `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('/'))
}

fn is_mount_root(path: &str) -> bool {
    MOUNTS.contains(&path)
}

/// The reference: what a file tree does, written as plainly as possible.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    tree: Tree,
}

/// What the model expects of one operation.
#[derive(Debug)]
enum Expect {
    /// This result, and the model's tree after it.
    Exact(Result<(), ErrorKind>),
    /// A transfer that fails midway: one of these kinds, and the invariants of [`check_partial`].
    Partial(Vec<ErrorKind>),
}

/// What a transfer will do, source by source, once its plan passed.
struct Planned {
    source: String,
    target: String,
    rename: bool,
}

impl Model {
    fn new() -> Model {
        Model {
            tree: MOUNTS.iter().map(|m| (m.to_string(), Node::Dir)).collect(),
        }
    }

    /// The node at `path`: `Ok(None)` when only its last name is missing, `NotFound` when an
    /// earlier one is, `NotADirectory` when an earlier one is a file.
    fn lookup(&self, path: &str) -> Result<Option<&Node>, ErrorKind> {
        let mount = MOUNTS.iter().find(|m| under(path, m)).unwrap();
        let mut at = mount.to_string();
        for name in path[mount.len()..].split('/').filter(|n| !n.is_empty()) {
            match self.tree.get(&at) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => return Err(ErrorKind::NotADirectory),
                None => return Err(ErrorKind::NotFound),
            }
            at.push('/');
            at.push_str(name);
        }
        Ok(self.tree.get(&at))
    }

    fn stat(&self, path: &str) -> Result<&Node, ErrorKind> {
        self.lookup(path)?.ok_or(ErrorKind::NotFound)
    }

    /// The parent of `path` must be a directory.
    fn check_parent(&self, path: &str) -> Result<(), ErrorKind> {
        match self.stat(parent_of(path))? {
            Node::Dir => Ok(()),
            Node::File(_) => Err(ErrorKind::NotADirectory),
        }
    }

    fn remove_tree(&mut self, path: &str) {
        self.tree.retain(|p, _| !under(p, path));
    }

    /// `path` and everything below it, relative to `path` ("" for itself).
    fn subtree(&self, path: &str) -> Vec<(String, Node)> {
        self.tree
            .range(path.to_string()..)
            .take_while(|(p, _)| p.starts_with(path))
            .filter(|(p, _)| under(p, path))
            .map(|(p, n)| (p[path.len()..].to_string(), n.clone()))
            .collect()
    }

    fn mkdir(&mut self, path: &str, parents: bool) -> Result<(), ErrorKind> {
        if is_mount_root(path) {
            return if parents {
                Ok(())
            } else {
                Err(ErrorKind::AlreadyExists)
            };
        }
        if !parents {
            self.check_parent(path)?;
            if self.tree.contains_key(path) {
                return Err(ErrorKind::AlreadyExists);
            }
            self.tree.insert(path.to_string(), Node::Dir);
            return Ok(());
        }
        // Files come before missing names (nothing lives under a missing directory), so `-p`
        // fails before it creates anything or not at all.
        let mount = MOUNTS.iter().find(|m| under(path, m)).unwrap();
        let mut at = mount.to_string();
        let mut create = Vec::new();
        for name in path[mount.len()..].split('/').filter(|n| !n.is_empty()) {
            at.push('/');
            at.push_str(name);
            match self.tree.get(&at) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) if at == path => return Err(ErrorKind::AlreadyExists),
                Some(Node::File(_)) => return Err(ErrorKind::NotADirectory),
                None => create.push(at.clone()),
            }
        }
        for dir in create {
            self.tree.insert(dir, Node::Dir);
        }
        Ok(())
    }

    fn write(&mut self, path: &str, data: &[u8], append: bool) -> Result<(), ErrorKind> {
        if is_mount_root(path) {
            return Err(ErrorKind::IsADirectory);
        }
        self.check_parent(path)?;
        match self.tree.get_mut(path) {
            Some(Node::Dir) => Err(ErrorKind::IsADirectory),
            Some(Node::File(old)) if append => {
                old.extend_from_slice(data);
                Ok(())
            }
            _ => {
                self.tree
                    .insert(path.to_string(), Node::File(data.to_vec()));
                Ok(())
            }
        }
    }

    fn touch(&mut self, path: &str) -> Result<(), ErrorKind> {
        if is_mount_root(path) {
            return Ok(());
        }
        self.check_parent(path)?;
        self.tree
            .entry(path.to_string())
            .or_insert(Node::File(Vec::new()));
        Ok(())
    }

    fn rm(&mut self, path: &str, recursive: bool) -> Result<(), ErrorKind> {
        if is_mount_root(path) {
            return Err(ErrorKind::Busy);
        }
        match self.stat(path)? {
            Node::Dir if !recursive => Err(ErrorKind::IsADirectory),
            _ => {
                self.remove_tree(path);
                Ok(())
            }
        }
    }

    /// The transfer's plan, as `cp`'s rules make it: where each source goes, or the error that
    /// refuses the whole transfer before anything is written.
    fn plan(&self, t: &Transfer) -> Result<Vec<Planned>, ErrorKind> {
        let dest = t.dest.text();
        let dest_node = match self.lookup(&dest) {
            Ok(node) => node,
            Err(ErrorKind::NotFound) => None,
            Err(kind) => return Err(kind),
        };
        let dest_is_dir = dest_node == Some(&Node::Dir);
        if t.sources.len() > 1 && !dest_is_dir {
            return Err(if dest_node.is_some() {
                ErrorKind::NotADirectory
            } else {
                ErrorKind::NotFound
            });
        }
        let mut plans = Vec::new();
        for source in &t.sources {
            let (want_from, want_to) = match t.kind {
                TransferKind::Push => (0, 1),
                TransferKind::Pull => (1, 0),
                _ => (source.mount, t.dest.mount),
            };
            if source.mount != want_from || t.dest.mount != want_to {
                return Err(ErrorKind::InvalidInput);
            }
            let src = source.text();
            let node = self.stat(&src)?;
            let moves = t.kind == TransferKind::Move;
            if moves && is_mount_root(&src) {
                return Err(ErrorKind::Busy);
            }
            if *node == Node::Dir && !t.recursive {
                return Err(ErrorKind::IsADirectory);
            }
            let target = if dest_is_dir {
                format!("{dest}/{}", name_of(&src))
            } else {
                dest.clone()
            };
            if src == target || (*node == Node::Dir && under(&target, &src)) {
                return Err(ErrorKind::InvalidInput);
            }
            match (self.lookup(&target), node) {
                (Err(ErrorKind::NotFound) | Ok(None), _) => {}
                (Err(kind), _) => return Err(kind),
                (Ok(Some(Node::Dir)), Node::File(_)) => return Err(ErrorKind::IsADirectory),
                (Ok(Some(Node::File(_))), Node::Dir) => return Err(ErrorKind::NotADirectory),
                (Ok(Some(_)), _) => {}
            }
            plans.push(Planned {
                rename: moves && source.mount == t.dest.mount,
                source: src,
                target,
            });
        }
        Ok(plans)
    }

    /// Whether the model can say what `t` does: not when its sources overlap one another or
    /// share a name, or a source lies inside its own target (a copy would read what it writes).
    fn predictable(&self, t: &Transfer, plans: &[Planned]) -> bool {
        let sources: Vec<String> = t.sources.iter().map(P::text).collect();
        for (i, a) in sources.iter().enumerate() {
            for b in &sources[i + 1..] {
                if under(a, b) || under(b, a) || name_of(a) == name_of(b) {
                    return false;
                }
            }
        }
        plans
            .iter()
            .all(|p| !under(&p.source, &p.target) && !under(&p.target, &p.source))
    }

    /// Runs a planned transfer on the model. A failure at its very first step (nothing written
    /// yet) is exact; a later one is [`Expect::Partial`], with every kind the steps could fail
    /// with. `self` holds the tree of a full success.
    fn execute(&mut self, plans: &[Planned], moves: bool) -> Expect {
        let mut failures = Vec::new();
        let single = plans.len() == 1;
        for plan in plans {
            if plan.rename {
                if let Err(kind) = self.rename(&plan.source, &plan.target) {
                    if single {
                        return Expect::Exact(Err(kind));
                    }
                    failures.push(kind);
                }
                continue;
            }
            let entries = self.subtree(&plan.source);
            let mut first_step = true;
            let mut failed_here = false;
            for (rel, node) in &entries {
                let to = format!("{}{rel}", plan.target);
                let step = match node {
                    Node::Dir => match self.lookup(&to) {
                        Ok(Some(Node::Dir)) => Ok(()),
                        Ok(Some(Node::File(_))) => Err(ErrorKind::NotADirectory),
                        Ok(None) => {
                            self.tree.insert(to.clone(), Node::Dir);
                            Ok(())
                        }
                        Err(kind) => Err(kind),
                    },
                    Node::File(data) => self.write(&to, data, false),
                };
                if let Err(kind) = step {
                    if single && first_step {
                        return Expect::Exact(Err(kind));
                    }
                    failures.push(kind);
                    failed_here = true;
                    break;
                }
                first_step = false;
            }
            if moves && !failed_here {
                self.remove_tree(&plan.source);
            }
        }
        if failures.is_empty() {
            Expect::Exact(Ok(()))
        } else {
            // A directory the tree needs may be refused as a file in the way either way.
            failures.extend([
                ErrorKind::NotADirectory,
                ErrorKind::AlreadyExists,
                ErrorKind::IsADirectory,
            ]);
            Expect::Partial(failures)
        }
    }

    /// `rename(2)` within one mount: a directory replaces only an empty directory.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), ErrorKind> {
        self.check_parent(to)?;
        let moved = self.subtree(from);
        match (self.tree.get(to), &moved[0].1) {
            (Some(Node::Dir), Node::File(_)) => return Err(ErrorKind::IsADirectory),
            (Some(Node::File(_)), Node::Dir) => return Err(ErrorKind::NotADirectory),
            (Some(Node::Dir), Node::Dir) if self.subtree(to).len() > 1 => {
                return Err(ErrorKind::DirectoryNotEmpty);
            }
            _ => {}
        }
        self.remove_tree(to);
        self.remove_tree(from);
        for (rel, node) in moved {
            self.tree.insert(format!("{to}{rel}"), node);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Partial transfers
// ---------------------------------------------------------------------------------------------

/// What must hold after a transfer that failed midway, whatever order its files ran in.
fn check_partial(
    before: &Tree,
    after: &Tree,
    plans: &[Planned],
    moves: bool,
) -> Result<(), String> {
    fn target_of<'a>(plans: &'a [Planned], path: &'a str) -> Option<(&'a Planned, &'a str)> {
        let plan = plans.iter().find(|p| under(path, &p.target))?;
        Some((plan, &path[plan.target.len()..]))
    }
    fn source_of<'a>(plans: &'a [Planned], path: &'a str) -> Option<(&'a Planned, &'a str)> {
        let plan = plans.iter().find(|p| under(path, &p.source))?;
        Some((plan, &path[plan.source.len()..]))
    }
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let (old, new) = (before.get(path), after.get(path));
        if old == new {
            continue;
        }
        if let Some((plan, rel)) = target_of(plans, path) {
            let source = before.get(&format!("{}{rel}", plan.source));
            let whole = match (new, source) {
                (Some(Node::Dir), Some(Node::Dir)) => true,
                (Some(Node::File(n)), Some(Node::File(s))) => n == s,
                _ => false,
            };
            if !whole {
                return Err(format!(
                    "{path}: was {old:?}, is {new:?}: neither its old content nor its source's"
                ));
            }
        } else if let Some((plan, rel)) = source_of(plans, path).filter(|_| moves) {
            let at_target = after.get(&format!("{}{rel}", plan.target));
            let moved_whole = new.is_none() && (at_target == old || old == Some(&Node::Dir));
            if !moved_whole {
                return Err(format!(
                    "{path}: a source of the move was {old:?}, is {new:?}, and its target \
                     holds {at_target:?}"
                ));
            }
        } else {
            return Err(format!(
                "{path}: outside the transfer, yet it was {old:?} and is {new:?}"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The engine side
// ---------------------------------------------------------------------------------------------

/// The stores a sequence can run on: each makes a fresh store at a mount.
#[derive(Debug, Clone, Copy)]
enum StoreKind {
    Memory,
    Disk,
    Redis,
}

/// A router over two fresh stores, and what they need kept alive.
struct World {
    router: RouterHandle,
    staging: Vec<PathBuf>,
    redis: Vec<(&'static redis_support::RedisServer, String)>,
    _dirs: Vec<tempfile::TempDir>,
}

impl World {
    /// `None` when a store cannot run here (no `redis-server`).
    /// A world over fresh stores of `kinds`, each wrapped in a [`ChaosStore`] sharing `chaos` when
    /// given.
    async fn new(kinds: [StoreKind; 2], chaos: Option<&Chaos>) -> Option<World> {
        fn spawn<S: Store>(
            at: &VPath,
            kind: BackendKind,
            store: S,
            chaos: Option<&Chaos>,
        ) -> BackendHandle {
            match chaos {
                Some(chaos) => BackendHandle::spawn(
                    at.clone(),
                    kind,
                    ChaosStore {
                        inner: store,
                        chaos: chaos.clone(),
                    },
                ),
                None => BackendHandle::spawn(at.clone(), kind, store),
            }
        }
        let mut mounts = Vec::new();
        let (mut staging, mut redis, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
        for (i, kind) in kinds.into_iter().enumerate() {
            let at = VPath::parse(MOUNTS[i]).unwrap();
            let backend = match kind {
                StoreKind::Memory => spawn(&at, BackendKind::Memory, MemoryStore::new(None), chaos),
                StoreKind::Disk => {
                    let dir = tempfile::tempdir().unwrap();
                    let options = DiskOptions {
                        chunk_size: CHUNK,
                        ..DiskOptions::default()
                    };
                    let store = DiskStore::open(dir.path(), options).unwrap();
                    staging.push(dir.path().join(".mavfs-staging"));
                    dirs.push(dir);
                    spawn(&at, BackendKind::Disk, store, chaos)
                }
                StoreKind::Redis => {
                    let server = redis_support::shared_server("model-based tests on Redis")?;
                    let namespace = redis_support::namespace("model");
                    let options = RedisOptions {
                        url: Some(server.url()),
                        namespace: namespace.clone(),
                        chunk_size: CHUNK,
                        command_timeout: Duration::from_secs(10),
                        ..RedisOptions::default()
                    };
                    let store = RedisStore::connect(options).await.unwrap();
                    redis.push((server, namespace));
                    spawn(&at, BackendKind::Redis, store, chaos)
                }
            };
            let tier = if i == 0 { Tier::Hot } else { Tier::Cold };
            mounts.push(Mount::new(at, tier, backend));
        }
        Some(World {
            router: RouterHandle::spawn(MountTable::new(mounts).unwrap()),
            staging,
            redis,
            _dirs: dirs,
        })
    }

    async fn apply(&self, op: &Op) -> Result<(), ErrorKind> {
        let r = &self.router;
        let result = match op {
            Op::Mkdir { path, parents } => r.mkdir(&path.vpath(), *parents).await,
            Op::Write {
                path,
                size,
                seed,
                append,
                parents,
            } => {
                if *parents {
                    let dir = path.vpath().parent().expect("below a mount");
                    r.mkdir(&dir, true).await.map_err(|e| e.kind())?;
                }
                let mode = if *append {
                    WriteMode::Append
                } else {
                    WriteMode::Replace
                };
                match r.write(&path.vpath(), mode).await {
                    Ok(mut handle) => {
                        let data = pattern(*size, *seed);
                        let mut result = Ok(());
                        for chunk in data.chunks(CHUNK / 2) {
                            result = handle.write(Bytes::copy_from_slice(chunk)).await;
                            if result.is_err() {
                                break;
                            }
                        }
                        match result {
                            Ok(()) => handle.commit().await,
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            Op::Touch { path } => r.touch(&path.vpath()).await,
            Op::Rm { path, recursive } => r.remove(&path.vpath(), *recursive, false).await,
            Op::Transfer(t) => r.transfer(t.request(), "model".into()).await.map(drop),
            Op::TwoJobs(..) => unreachable!("two jobs are applied by apply_two"),
        };
        result.map_err(|e| e.kind())
    }

    async fn apply_two(
        &self,
        a: &Transfer,
        b: &Transfer,
    ) -> (Result<(), ErrorKind>, Result<(), ErrorKind>) {
        let r = &self.router;
        let start = |t: &Transfer| r.start(t.request(), "model".into());
        let (ja, jb) = tokio::join!(start(a), start(b));
        let outcome = |job: mavfs_actors::Result<mavfs_actors::JobId>| async move {
            match job {
                Ok(id) => match r.wait(id).await {
                    Ok(outcome) => outcome.map(drop).map_err(|e| e.kind()),
                    Err(e) => Err(e.kind()),
                },
                Err(e) => Err(e.kind()),
            }
        };
        tokio::join!(outcome(ja), outcome(jb))
    }

    /// Both mounts' trees, read whole through the router.
    async fn tree(&self) -> Result<Tree, String> {
        let mut tree = Tree::new();
        let mut dirs: Vec<String> = MOUNTS.iter().map(|m| m.to_string()).collect();
        while let Some(dir) = dirs.pop() {
            let vdir = VPath::parse(&dir).unwrap();
            let entries = self
                .router
                .list(&vdir)
                .await
                .map_err(|e| format!("ls {dir}: {e}"))?;
            for entry in entries {
                let path = format!("{dir}/{}", entry.name);
                if entry.meta.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let vpath = VPath::parse(&path).unwrap();
                let mut reader = self
                    .router
                    .read(&vpath)
                    .await
                    .map_err(|e| format!("cat {path}: {e}"))?;
                let mut data = Vec::new();
                while let Some(chunk) = reader.chunks.next().await {
                    data.extend_from_slice(&chunk.map_err(|e| format!("cat {path}: {e}"))?);
                }
                if data.len() as u64 != entry.meta.size || reader.size != entry.meta.size {
                    return Err(format!(
                        "{path}: ls says {} bytes, the reader {}, and it read {}",
                        entry.meta.size,
                        reader.size,
                        data.len()
                    ));
                }
                tree.insert(path, Node::File(data));
            }
            tree.insert(dir, Node::Dir);
        }
        Ok(tree)
    }

    /// Nothing staged is left behind once the sequence is over.
    async fn check_clean(&self) -> Result<(), String> {
        for dir in &self.staging {
            let left = staging_support::temp_files(dir);
            if !left.is_empty() {
                return Err(format!("staging leftovers {left:?}"));
            }
        }
        for (server, ns) in &self.redis {
            let pending = format!("{ns}:{{{ns}}}:pending");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let left = server.cli(&["ZCARD", &pending]);
                if left.trim() == "0" {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!(
                        "Redis namespace {ns} keeps {left} pending data ids"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }
}

/// How a step was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// Result and tree exactly as the model said.
    Exact,
    /// A transfer that failed midway, checked by [`check_partial`].
    Partial,
    /// Not run: the model cannot say what it does.
    Skipped,
}

/// Applies `op` to the model and the engine and compares. Ops the model cannot predict are
/// skipped (returns without touching either).
async fn step(world: &World, model: &mut Model, op: &Op) -> Result<Checked, String> {
    let (expect, plans_moves) = match op {
        Op::Mkdir { path, parents } => (Expect::Exact(model.mkdir(&path.text(), *parents)), None),
        Op::Write {
            path,
            size,
            seed,
            append,
            parents,
        } => {
            let path = path.text();
            let data = pattern(*size, *seed);
            // `mkdir -p` of a mount root's parent (`/`) succeeds: the router has it.
            let made = match *parents && !is_mount_root(&path) {
                true => model.mkdir(parent_of(&path), true),
                false => Ok(()),
            };
            let written = made.and_then(|()| model.write(&path, &data, *append));
            (Expect::Exact(written), None)
        }
        Op::Touch { path } => (Expect::Exact(model.touch(&path.text())), None),
        Op::Rm { path, recursive } => (Expect::Exact(model.rm(&path.text(), *recursive)), None),
        Op::Transfer(t) => match model.plan(t) {
            Err(kind) => (Expect::Exact(Err(kind)), None),
            Ok(plans) if !model.predictable(t, &plans) => return Ok(Checked::Skipped),
            Ok(plans) => {
                let moves = t.kind == TransferKind::Move;
                let before = model.tree.clone();
                let expect = model.execute(&plans, moves);
                if matches!(expect, Expect::Exact(Err(_))) {
                    model.tree = before.clone();
                }
                (expect, Some((before, plans, moves)))
            }
        },
        Op::TwoJobs(a, b) => return two_jobs(world, model, a, b).await,
    };
    let got = tokio::time::timeout(STEP_TIMEOUT, world.apply(op))
        .await
        .map_err(|_| format!("{op:?}: no answer in {STEP_TIMEOUT:?}"))?;
    let after = world.tree().await?;
    let checked = match expect {
        Expect::Exact(want) => {
            if got != want {
                return Err(format!(
                    "{op:?}: the engine gave {got:?}, the model {want:?}"
                ));
            }
            Checked::Exact
        }
        Expect::Partial(kinds) => {
            let (before, plans, moves) = plans_moves.expect("only transfers fail partway");
            match got {
                Err(kind) if kinds.contains(&kind) => {}
                other => {
                    return Err(format!(
                        "{op:?}: the model expected a partial failure ({kinds:?}), the engine \
                         gave {other:?}"
                    ));
                }
            }
            check_partial(&before, &after, &plans, moves).map_err(|e| format!("{op:?}: {e}"))?;
            model.tree = after.clone();
            Checked::Partial
        }
    };
    if after != model.tree {
        return Err(format!(
            "{op:?}: the trees differ\n{}",
            diff(&model.tree, &after)
        ));
    }
    Ok(checked)
}

/// Two jobs at once, when the model can apply them one after the other: each job's plan and
/// outcome exact, and their trees disjoint.
async fn two_jobs(
    world: &World,
    model: &mut Model,
    a: &Transfer,
    b: &Transfer,
) -> Result<Checked, String> {
    // What a job reads or writes: its sources and targets; for a job its plan refuses, its
    // destination too (the other job must not create what the refusal depends on).
    let touched = |t: &Transfer, plans: &Result<Vec<Planned>, ErrorKind>| -> Vec<String> {
        let mut paths: Vec<String> = t.sources.iter().map(P::text).collect();
        match plans {
            Ok(plans) => paths.extend(plans.iter().map(|p| p.target.clone())),
            Err(_) => paths.push(t.dest.text()),
        }
        paths
    };
    let (plans_a, plans_b) = (model.plan(a), model.plan(b));
    let predictable = |t: &Transfer, plans: &Result<Vec<Planned>, ErrorKind>| match plans {
        Ok(plans) => model.predictable(t, plans),
        Err(_) => true,
    };
    if !predictable(a, &plans_a) || !predictable(b, &plans_b) {
        return Ok(Checked::Skipped);
    }
    let (ta, tb) = (touched(a, &plans_a), touched(b, &plans_b));
    let overlap = ta
        .iter()
        .any(|x| tb.iter().any(|y| under(x, y) || under(y, x)));
    if overlap {
        return Ok(Checked::Skipped);
    }
    // Each job's outcome, exact: a refusal, or a success (a job failing midway is left to the
    // single-transfer steps, whose invariants know its plan).
    let mut next = model.clone();
    let mut outcome = |t: &Transfer, plans: Result<Vec<Planned>, ErrorKind>| match plans {
        Err(kind) => Some(Err(kind)),
        Ok(plans) => match next.execute(&plans, t.kind == TransferKind::Move) {
            Expect::Exact(Ok(())) => Some(Ok(())),
            _ => None,
        },
    };
    let (Some(want_a), Some(want_b)) = (outcome(a, plans_a), outcome(b, plans_b)) else {
        return Ok(Checked::Skipped);
    };
    let (got_a, got_b) = tokio::time::timeout(STEP_TIMEOUT, world.apply_two(a, b))
        .await
        .map_err(|_| format!("two jobs {a:?} and {b:?}: no answer in {STEP_TIMEOUT:?}"))?;
    if (got_a, got_b) != (want_a, want_b) {
        return Err(format!(
            "two jobs {a:?} and {b:?}: the engine gave {got_a:?} and {got_b:?}, the model \
             {want_a:?} and {want_b:?}"
        ));
    }
    let after = world.tree().await?;
    if after != next.tree {
        return Err(format!(
            "two jobs {a:?} and {b:?}: the trees differ\n{}",
            diff(&next.tree, &after)
        ));
    }
    *model = next;
    Ok(Checked::Exact)
}

/// The paths on which two trees differ, one line each.
fn diff(model: &Tree, engine: &Tree) -> String {
    let show = |n: Option<&Node>| match n {
        None => "absent".to_string(),
        Some(Node::Dir) => "dir".to_string(),
        Some(Node::File(d)) => format!("file of {} bytes", d.len()),
    };
    let paths: std::collections::BTreeSet<&String> = model.keys().chain(engine.keys()).collect();
    paths
        .into_iter()
        .filter(|p| model.get(*p) != engine.get(*p))
        .map(|p| {
            format!(
                "  {p}: model {}, engine {}\n",
                show(model.get(p)),
                show(engine.get(p))
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.parse().ok()
}

/// A runtime for one test's sequences, or `None` (after a message) when a store of `kinds`
/// cannot run here.
fn runtime_for(kinds: [StoreKind; 2]) -> Option<tokio::runtime::Runtime> {
    if matches!(kinds, [StoreKind::Redis, _] | [_, StoreKind::Redis])
        && redis_support::shared_server("model-based tests on Redis").is_none()
    {
        return None;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Some(runtime)
}

/// Runs `ops` on fresh stores of `kinds` and on a fresh model, step by step; returns how each
/// step was checked, or what disagreed.
async fn run_sequence(kinds: [StoreKind; 2], ops: &[Op]) -> Result<Vec<Checked>, String> {
    let world = World::new(kinds, None).await.expect("the stores open");
    let mut model = Model::new();
    let mut checked = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let op = op.resolve(&model);
        let how = step(&world, &mut model, &op)
            .await
            .map_err(|e| format!("step {i} on {kinds:?}: {e}"))?;
        checked.push(how);
    }
    world
        .check_clean()
        .await
        .map_err(|e| format!("{kinds:?}: {e}"))?;
    world.router.shutdown().await;
    Ok(checked)
}

/// Runs the random sequences over one pair of stores.
fn run(kinds: [StoreKind; 2]) {
    let Some(runtime) = runtime_for(kinds) else {
        return;
    };
    let cases = env_number("MAVFS_MODEL_CASES").unwrap_or(CASES);
    let mut seed = SEED;
    if let Some(s) = env_number::<u64>("MAVFS_MODEL_SEED") {
        seed[..8].copy_from_slice(&s.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let result = runner.run(&prop::collection::vec(op_strategy(), 1..40), |ops| {
        runtime
            .block_on(run_sequence(kinds, &ops))
            .map(drop)
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn memory_and_disk_agree_with_the_model() {
    run([StoreKind::Memory, StoreKind::Disk]);
}

#[test]
fn disk_and_redis_agree_with_the_model() {
    run([StoreKind::Disk, StoreKind::Redis]);
}

#[test]
fn redis_and_memory_agree_with_the_model() {
    run([StoreKind::Redis, StoreKind::Memory]);
}

#[test]
fn disk_and_disk_agree_with_the_model() {
    run([StoreKind::Disk, StoreKind::Disk]);
}

/// Random sequences seldom make a tree fail midway; this one does, on every store pair: a copy
/// and a move whose source has a directory where the target has a file.
#[test]
fn transfers_failing_midway_keep_their_invariants() {
    let write = |path: &str| Op::Write {
        path: P::named(path),
        size: 4096,
        seed: path.len() as u8,
        append: false,
        parents: true,
    };
    let transfer = |kind, source: &str, dest: &str| {
        Op::Transfer(Transfer {
            kind,
            sources: vec![P::named(source)],
            dest: P::named(dest),
            recursive: true,
            jobs: 2,
        })
    };
    let pairs = [
        [StoreKind::Memory, StoreKind::Disk],
        [StoreKind::Disk, StoreKind::Redis],
        [StoreKind::Redis, StoreKind::Memory],
    ];
    for kinds in pairs {
        let Some(runtime) = runtime_for(kinds) else {
            continue;
        };
        for kind in [TransferKind::Copy, TransferKind::Move] {
            let ops = [
                write("/a/x/z"),
                write("/a/x/y/z"),
                write("/a/x/x"),
                write("/b/x/y"),
                write("/b/x/x/z"),
                transfer(kind, "/a/x", "/b"),
            ];
            let checked = runtime
                .block_on(run_sequence(kinds, &ops))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                checked.last(),
                Some(&Checked::Partial),
                "{kind:?} on {kinds:?}: the transfer should have failed midway"
            );
        }
    }
}

/// Transfers over every store pair through [`ChaosStore`]s that fail random steps: each ends
/// whole (exactly the model's tree) or fails with an injected `Io` error and keeps the
/// invariants of a transfer failing midway, and leaves nothing staged. Over all seeds, both
/// endings must occur, so the test cannot pass by never meeting a failure.
#[test]
fn transfers_under_chaos_end_whole_or_fail_cleanly() {
    let pairs = [
        [StoreKind::Memory, StoreKind::Disk],
        [StoreKind::Disk, StoreKind::Redis],
        [StoreKind::Redis, StoreKind::Memory],
        [StoreKind::Disk, StoreKind::Disk],
    ];
    let seeds: u64 = env_number("MAVFS_CHAOS_SEEDS").unwrap_or(6);
    let (mut whole, mut failed) = (0, 0);
    for kinds in pairs {
        let Some(runtime) = runtime_for(kinds) else {
            continue;
        };
        for kind in [TransferKind::Copy, TransferKind::Move] {
            for seed in 0..seeds {
                let ctx = format!("{kind:?} on {kinds:?}, seed {seed}");
                let ended = runtime
                    .block_on(chaos_transfer(kinds, kind, seed))
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                match ended {
                    Ok(()) => whole += 1,
                    Err(_) => failed += 1,
                }
            }
        }
    }
    if whole + failed > 0 {
        assert!(
            whole > 0 && failed > 0,
            "{whole} whole and {failed} failed runs: chaos never bit, or always did"
        );
    }
}

/// One transfer of a small tree (every size, nested, over some old files) under chaos; returns
/// how it ended, or what broke a rule.
async fn chaos_transfer(
    kinds: [StoreKind; 2],
    kind: TransferKind,
    seed: u64,
) -> Result<Result<(), ErrorKind>, String> {
    let chaos = Chaos::failing(seed, 40);
    chaos.arm(false);
    let world = World::new(kinds, Some(&chaos))
        .await
        .expect("the stores open");
    let mut model = Model::new();
    let files = [
        "/a/x/x",
        "/a/x/y/x",
        "/a/x/y/y",
        "/a/x/y/z/x",
        "/a/x/z",
        "/b/x/y/y",
        "/b/x/x",
    ];
    for (i, path) in files.iter().enumerate() {
        let write = Op::Write {
            path: P::named(path),
            size: SIZES[i % SIZES.len()],
            seed: i as u8,
            append: false,
            parents: true,
        };
        step(&world, &mut model, &write).await?;
    }
    let transfer = Transfer {
        kind,
        sources: vec![P::named("/a/x")],
        dest: P::named("/b"),
        recursive: true,
        jobs: 3,
    };
    let plans = model
        .plan(&transfer)
        .map_err(|e| format!("the plan: {e:?}"))?;
    let before = model.tree.clone();
    let Expect::Exact(Ok(())) = model.execute(&plans, kind == TransferKind::Move) else {
        return Err("the model expected a clean transfer".into());
    };
    chaos.arm(true);
    let got = tokio::time::timeout(STEP_TIMEOUT, world.apply(&Op::Transfer(transfer)))
        .await
        .map_err(|_| format!("no answer in {STEP_TIMEOUT:?}"))?;
    chaos.arm(false);
    let after = world.tree().await?;
    match got {
        Ok(()) if after != model.tree => {
            return Err(format!(
                "a success left another tree\n{}",
                diff(&model.tree, &after)
            ));
        }
        Ok(()) => {}
        Err(ErrorKind::Io) if chaos.failures() == 0 => {
            return Err("failed with Io, but chaos injected no failure".into());
        }
        Err(ErrorKind::Io) => check_partial(&before, &after, &plans, kind == TransferKind::Move)?,
        Err(other) => return Err(format!("failed with {other:?}, not the injected Io error")),
    }
    world.check_clean().await?;
    world.router.shutdown().await;
    Ok(got)
}
