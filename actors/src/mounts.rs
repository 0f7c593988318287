//! The mount table: which backend serves which part of the virtual tree, and what a front end
//! may know of it.
//!
//! Mounts sit one level below `/` (`/vram`, `/vdisk`); `/` itself is a virtual directory listing
//! them. The table is built once at start and never changes, so the router shares it read-only
//! with every handle instead of answering each lookup through its mailbox.
//!
//! A [`Mount`] holds its backend's handle privately; front ends see a mount as a [`MountInfo`]
//! (path, tier, backend kind, capacity) and its usage and traffic as [`MountStats`], plain data
//! that crosses a socket.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::backend::{BackendHandle, IoCounters};
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{BackendKind, Store, Usage};

/// Where a mount sits in the hierarchy: `push` moves hot -> cold, `pull` cold -> hot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Working data, fast: memory and Redis mounts by default.
    Hot,
    /// Storage, slower: disk mounts by default.
    Cold,
}

impl Tier {
    /// The name in config files and output: `hot` or `cold`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Cold => "cold",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that widths and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

/// What a front end knows of a mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountInfo {
    /// Where the mount appears (`/vram`).
    pub path: VPath,
    /// Hot or cold.
    pub tier: Tier,
    /// Which store serves it.
    pub backend: BackendKind,
    /// The configured capacity in bytes, if any.
    pub capacity: Option<u64>,
}

/// Usage of one mount, for `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountStats {
    /// Where the mount appears (`/vram`).
    pub path: VPath,
    /// Which store serves it.
    pub backend: BackendKind,
    /// Hot or cold.
    pub tier: Tier,
    /// Its totals and capacity.
    pub usage: Usage,
    /// Bytes read from and written to it since the engine started, for throughput figures.
    /// Absent (zero) in data from an engine that predates the counters.
    #[serde(default)]
    pub io: IoCounters,
}

/// One mounted backend: where it appears, its tier, and the actor that serves it.
#[derive(Clone)]
pub struct Mount {
    /// Where the mount appears (`/vram`).
    pub path: VPath,
    /// Hot or cold.
    pub tier: Tier,
    /// The backend's kind, for front ends.
    pub kind: BackendKind,
    /// The configured capacity, for front ends.
    pub capacity: Option<u64>,
    pub(crate) backend: BackendHandle,
}

impl Mount {
    /// Mounts the backend `backend` (spawned for `path`) at `path`.
    pub fn new(path: VPath, tier: Tier, backend: BackendHandle) -> Self {
        Mount {
            path,
            tier,
            kind: backend.kind(),
            capacity: None,
            backend,
        }
    }

    /// Mounts `store` at `path`: spawns the backend actor that owns it.
    pub fn spawn<S: Store>(path: VPath, tier: Tier, kind: BackendKind, store: S) -> Self {
        let backend = BackendHandle::spawn(path.clone(), kind, store);
        Mount::new(path, tier, backend)
    }

    /// Sets the capacity front ends are shown (a memory mount's configured `capacity`).
    pub fn with_capacity(mut self, capacity: Option<u64>) -> Self {
        self.capacity = capacity;
        self
    }

    /// What a front end may know of this mount.
    pub fn info(&self) -> MountInfo {
        MountInfo {
            path: self.path.clone(),
            tier: self.tier,
            backend: self.kind,
            capacity: self.capacity,
        }
    }
}

/// All mounts, in the order they were declared (the first is the shell's home).
pub struct MountTable {
    mounts: Vec<Mount>,
}

impl MountTable {
    /// Builds the table. Errors: `InvalidInput` for no mounts, a mount that is `/` or not one level
    /// below it, or a duplicate path.
    pub fn new(mounts: Vec<Mount>) -> Result<Self> {
        let invalid = |m: &Mount, why: &str| {
            Error::new(ErrorKind::InvalidInput, "mount")
                .with_path(&m.path)
                .with_detail(why.to_string())
        };
        if mounts.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "mount").with_detail("no mounts"));
        }
        for (i, m) in mounts.iter().enumerate() {
            if m.path.parent().is_none_or(|p| !p.is_root()) {
                return Err(invalid(m, "mount paths are one level below /"));
            }
            if mounts[..i].iter().any(|o| o.path == m.path) {
                return Err(invalid(m, "mounted twice"));
            }
        }
        Ok(MountTable { mounts })
    }

    /// Every mount, in declaration order.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The first mount, where the shell starts.
    pub fn home(&self) -> &VPath {
        &self.mounts[0].path
    }

    /// Whether `path` is a mount's root (`/vram`).
    pub fn is_mount_root(&self, path: &VPath) -> bool {
        self.mounts.iter().any(|m| m.path == *path)
    }

    /// Resolves shell input against `cwd` (see [`VPath::resolve`]): `..` stops at mount roots.
    pub fn resolve(&self, cwd: &VPath, input: &str) -> Result<VPath> {
        Ok(VPath::resolve(cwd, input, |p| self.is_mount_root(p))?)
    }

    /// The mount serving `path`; `None` for `/` itself. Errors: `NotFound` naming the mounts when
    /// `path` lies under none of them (a host path such as `/etc/passwd`).
    pub fn find(&self, op: &'static str, path: &VPath) -> Result<Option<&Mount>> {
        if path.is_root() {
            return Ok(None);
        }
        match self.mounts.iter().find(|m| path.starts_with(&m.path)) {
            Some(m) => Ok(Some(m)),
            None => {
                let names: Vec<&str> = self.mounts.iter().map(|m| m.path.as_str()).collect();
                Err(Error::new(ErrorKind::NotFound, op)
                    .with_path(path)
                    .with_detail(format!(
                        "not under any mount; the mounts are {}",
                        names.join(", ")
                    )))
            }
        }
    }

    /// The mount serving `path`. Errors: as [`MountTable::find`], and for `/` the error that an
    /// operation other than listing meets there (`/` holds only the mounts).
    pub fn get(&self, op: &'static str, path: &VPath, at_root: ErrorKind) -> Result<&Mount> {
        self.find(op, path)?.ok_or_else(|| {
            Error::new(at_root, op)
                .with_path(path)
                .with_detail("/ holds only the mounts")
        })
    }
}
