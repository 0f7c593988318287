//! The scanned tree of one source, held compactly: what a plan keeps of every file until the
//! transfer ends.
//!
//! A tree of 10^6 files must not hold 10^6 paths (each a heap string of its whole relative path,
//! cloned again for every step of the transfer): that cost ~100 bytes a file before any copy,
//! more than the rest of the transfer. So each directory's relative path is held once, every
//! file name once in one buffer of names, and a file is 16 bytes: its directory, where its name
//! starts, and its size. A file's path is made when the transfer reaches it, and dropped once
//! that file is done.
//!
//! Rule: files are in scan order, a directory's files together and sorted by name, directories
//! parents first; the root directory is `/` (index 0).

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;

/// A scanned tree: directories, and files with their sizes at scan time.
#[derive(Debug, Default)]
pub(super) struct Tree {
    /// Directories relative to the source, parents first; `/` first for a directory source,
    /// none for a file source.
    dirs: Vec<VPath>,
    /// Every file name, back to back, in file order.
    names: String,
    files: Vec<FileRec>,
}

/// One file of a [`Tree`]: 16 bytes.
#[derive(Debug, Clone, Copy)]
struct FileRec {
    /// Its directory, an index into [`Tree::dirs`]; `u32::MAX` for a file source itself.
    dir: u32,
    /// Where its name starts in [`Tree::names`]; it ends where the next file's starts.
    start: u32,
    size: u64,
}

/// A file source: its own path is the source, so its relative path is `/`.
const SELF: u32 = u32::MAX;

impl Tree {
    /// The tree of a directory source, its root directory `/` only so far.
    pub(super) fn directory() -> Tree {
        Tree {
            dirs: vec![VPath::root()],
            ..Tree::default()
        }
    }

    /// The tree of a file source of `size` bytes: one file, at `/` relative to itself.
    pub(super) fn file(size: u64) -> Tree {
        Tree {
            files: vec![FileRec {
                dir: SELF,
                start: 0,
                size,
            }],
            ..Tree::default()
        }
    }

    /// Directories relative to the source, parents first.
    pub(super) fn dirs(&self) -> &[VPath] {
        &self.dirs
    }

    /// Adds directory `rel`, a child of one added before. Returns its index.
    pub(super) fn push_dir(&mut self, rel: VPath) -> Result<u32> {
        let at = index(self.dirs.len())?;
        self.dirs.push(rel);
        Ok(at)
    }

    /// Adds file `name` of `size` bytes in directory `dir` (an index from [`Tree::push_dir`],
    /// 0 for the root).
    pub(super) fn push_file(&mut self, dir: u32, name: &str, size: u64) -> Result<()> {
        let start = index(self.names.len())?;
        self.names.push_str(name);
        index(self.names.len())?;
        self.files.push(FileRec { dir, start, size });
        Ok(())
    }

    /// Sorts files `from..` (one directory's, all added since `from`) by name and drops a name
    /// listed twice (a Redis listing may repeat one), so that a tree is scanned in one order
    /// whatever order its store lists in. It sorts indices and rebuilds the tail once, so a
    /// directory of 10^6 files costs 4 bytes a file on top, not a string each.
    pub(super) fn sort_files_from(&mut self, from: usize) {
        let mut order: Vec<u32> = (from as u32..self.files.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.name(a as usize).cmp(self.name(b as usize)));
        order.dedup_by(|a, b| self.name(*a as usize) == self.name(*b as usize));
        let Some(&first) = self.files.get(from) else {
            return;
        };
        let base = first.start as usize;
        let mut names = String::with_capacity(self.names.len() - base);
        let mut files = Vec::with_capacity(order.len());
        for &i in &order {
            let old = self.files[i as usize];
            // Within the limits checked when the names were first added.
            let start = (base + names.len()) as u32;
            names.push_str(self.name(i as usize));
            files.push(FileRec { start, ..old });
        }
        self.names.truncate(base);
        self.names.push_str(&names);
        self.files.truncate(from);
        self.files.extend(files);
    }

    /// Files of the tree: how many.
    pub(super) fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Size of file `i` at scan time.
    pub(super) fn size(&self, i: usize) -> u64 {
        self.files[i].size
    }

    /// Bytes of every file.
    pub(super) fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    fn name(&self, i: usize) -> &str {
        let start = self.files[i].start as usize;
        let end = self
            .files
            .get(i + 1)
            .map_or(self.names.len(), |next| next.start as usize);
        &self.names[start..end]
    }

    /// The path of file `i` relative to the source (`/` for a file source itself).
    pub(super) fn rel(&self, i: usize) -> Result<VPath> {
        let file = self.files[i];
        if file.dir == SELF {
            return Ok(VPath::root());
        }
        Ok(self.dirs[file.dir as usize].join(self.name(i))?)
    }
}

/// `n` as a 32-bit index. Errors: `InvalidInput` past 2^32 (4 Gi names, files or bytes of
/// names), a tree no scan here was built for.
fn index(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "cp")
            .with_detail("the tree holds more than 2^32 entries or bytes of names")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_keep_their_directory_name_and_size_sorted_per_directory() {
        let mut tree = Tree::directory();
        let sub = tree.push_dir(VPath::parse("/sub").unwrap()).unwrap();
        tree.push_file(0, "b", 2).unwrap();
        tree.push_file(0, "a", 1).unwrap();
        tree.sort_files_from(0);
        let from = tree.file_count();
        for (name, size) in [("z", 3), ("y", 4), ("z", 3)] {
            tree.push_file(sub, name, size).unwrap();
        }
        tree.sort_files_from(from);
        let files: Vec<(String, u64)> = (0..tree.file_count())
            .map(|i| (tree.rel(i).unwrap().to_string(), tree.size(i)))
            .collect();
        let want = [("/a", 1), ("/b", 2), ("/sub/y", 4), ("/sub/z", 3)];
        let want: Vec<(String, u64)> = want.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        assert_eq!(files, want);
        assert_eq!(tree.bytes(), 10);
        assert_eq!(Tree::file(5).rel(0).unwrap(), VPath::root());
    }
}
