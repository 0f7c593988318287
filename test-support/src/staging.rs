//! What a disk store left in its staging directory: shared by the tests that check that nothing
//! partial stays behind.

use std::path::{Path, PathBuf};

/// Temp files anywhere under `staging` (a disk root's `.mavfs-staging`). The lock files of live
/// stores' sessions, and the session directories themselves, are no leftovers.
pub fn temp_files(staging: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![staging.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("staging dir {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else if !entry.file_name().to_string_lossy().ends_with(".lock") {
                found.push(entry.path());
            }
        }
    }
    found
}
