//! The mount table: which backend serves which part of the virtual tree.
//!
//! Mounts sit one level below `/` (`/vram`, `/vdisk`); `/` itself is a virtual directory listing
//! them. The table is built once at start and never changes, so the router shares it read-only
//! with every handle instead of answering each lookup through its mailbox.

use std::fmt;

use crate::backend::BackendHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;

/// Where a mount sits in the hierarchy: `push` moves hot -> cold, `pull` cold -> hot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Hot,
    Cold,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Hot => "hot",
            Tier::Cold => "cold",
        })
    }
}

/// One mounted backend.
#[derive(Clone)]
pub struct Mount {
    pub path: VPath,
    pub tier: Tier,
    pub backend: BackendHandle,
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

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The first mount, where the shell starts.
    pub fn home(&self) -> &VPath {
        &self.mounts[0].path
    }

    pub fn is_mount_root(&self, path: &VPath) -> bool {
        self.mounts.iter().any(|m| m.path == *path)
    }

    /// Resolves shell input against `cwd` (see [`VPath::resolve`]): `..` stops at mount roots.
    pub fn resolve(&self, cwd: &VPath, input: &str) -> Result<VPath> {
        VPath::resolve(cwd, input, |p| self.is_mount_root(p))
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
