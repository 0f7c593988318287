//! Destinations claimed by running jobs, so that two jobs of one engine never write one path at
//! once.
//!
//! Each file commits atomically, so two writers of one path never mix bytes; but two jobs
//! copying onto the same file at once would each report success while one silently replaced
//! the other, and a move could delete its source after its copy was overwritten. So a job,
//! once planned, claims every file it will write (and a rename's target) before it moves
//! anything, and a second job meeting a claimed path is refused as busy, naming the job that
//! writes there. Claims go when the job ends, however it ends. Across processes sharing a store
//! the rule stays last-writer-wins.
//!
//! A claim holds a 64-bit hash of each path, not the path: a tree of 10^6 files would otherwise
//! keep every destination as a string (twice: in the table and in the claim) while it runs.
//! Two different paths of the same hash (chance about n^2 / 2^65 for n claimed paths, below
//! 10^-7 at 10^6) can only make a job refused as busy, never let two write one path.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};

use super::Plan;

/// The destinations of every running job of one engine. Shared by the jobs, behind an `Arc`.
#[derive(Debug, Default)]
pub struct Destinations {
    /// The hash of each path being written, and the number of the job writing it.
    writing: Mutex<HashMap<u64, u64>>,
    /// Hashes paths for `writing`, with keys of this engine's own.
    hasher: RandomState,
}

/// The paths one job claimed; dropping it (the job ended) releases them.
#[must_use = "the claim is released when dropped"]
pub struct Claim {
    destinations: Arc<Destinations>,
    /// Hashes of the paths claimed.
    paths: Vec<u64>,
}

impl Destinations {
    /// Claims every path `plan` will write for job number `job`, all or none. Errors: `Busy`
    /// naming the first path another running job writes, "job %N is writing there".
    pub fn claim(self: &Arc<Self>, job: u64, plan: &Plan) -> Result<Claim> {
        let mut writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        // Sized once: a table grown claim by claim rehashes every claim it holds at each doubling.
        let files = plan.totals().0 as usize;
        writing.reserve(files);
        let mut paths = Vec::with_capacity(files);
        let mut claim_all = || {
            for path in plan.destinations() {
                let path = path?;
                let hash = self.hasher.hash_one(&path);
                match writing.get(&hash) {
                    // A job may name one destination twice (two sources onto one name): its own.
                    Some(&owner) if owner == job => {}
                    Some(&owner) => {
                        return Err(Error::new(ErrorKind::Busy, plan.command())
                            .with_path(&path)
                            .with_detail(format!("job %{owner} is writing there")));
                    }
                    None => {
                        writing.insert(hash, job);
                        paths.push(hash);
                    }
                }
            }
            Ok(())
        };
        if let Err(e) = claim_all() {
            for claimed in &paths {
                writing.remove(claimed);
            }
            return Err(e);
        }
        Ok(Claim {
            destinations: self.clone(),
            paths,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut writing = self
            .destinations
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for path in &self.paths {
            writing.remove(path);
        }
    }
}
