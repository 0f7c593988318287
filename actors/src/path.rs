//! Virtual paths: the rules of DESIGN.md section 2 in one type.
//!
//! A [`VPath`] is always absolute and normalised: it starts with `/`, has no empty, `.` or `..`
//! components and no trailing slash (except `/` itself). Every name obeys [`validate_name`]. Both the
//! full paths the shell uses (`/vram/a/b`) and the store-local paths a store sees (`/a/b`, relative
//! to the store's root) are `VPath`s.
//!
//! Resolution ([`VPath::resolve`]) is lexical: `.` is dropped and `..` removes the previous
//! component, except that it never climbs above a mount root (the caller says which paths are
//! roots), so `cd ..` at `/vram` stays at `/vram`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error_kind::ErrorKind;

/// The result of a path check.
pub type Result<T> = std::result::Result<T, PathError>;

/// A path or name that breaks the rules: its kind (`InvalidInput`, `NameTooLong`, `NotFound` for
/// an empty path), the check that failed, and what was wrong. It becomes an engine
/// [`crate::Error`] of the same kind with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    kind: ErrorKind,
    op: &'static str,
    path: Option<VPath>,
    detail: Option<String>,
}

impl PathError {
    fn new(kind: ErrorKind, op: &'static str) -> Self {
        PathError {
            kind,
            op,
            path: None,
            detail: None,
        }
    }

    fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    fn with_path(mut self, path: &VPath) -> Self {
        self.path = Some(path.clone());
        self
    }

    /// What is wrong, as an errno-like kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The check that failed: `path` or `name`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The path the bad name was to be joined to, if any.
    pub fn path(&self) -> Option<&VPath> {
        self.path.as_ref()
    }

    /// What was wrong, in the user's terms, if more than the kind says.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The reason with its detail: `Invalid argument ("." is not a valid file name)`.
    pub fn reason(&self) -> String {
        self.kind.describe(self.detail.as_deref())
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.as_ref().map(VPath::as_str);
        self.kind.write_error(f, path, self.detail.as_deref())
    }
}

impl std::error::Error for PathError {}

/// Longest name of one component, in bytes (as Linux's NAME_MAX).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest whole path, in bytes (as Linux's PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

/// An absolute, normalised virtual path.
///
/// It crosses the wire as its text and is checked again when decoded: a `VPath` that came from a
/// socket keeps every rule of one parsed here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VPath(String);

impl TryFrom<String> for VPath {
    type Error = PathError;

    /// Parses `text` as an absolute path; it must already be normal (as every `VPath`'s text is),
    /// so that decoding never changes a path. Errors: as [`VPath::parse`], and `InvalidInput`
    /// for a path that is not normal.
    fn try_from(text: String) -> Result<Self> {
        let path = VPath::parse(&text)?;
        if path.0 != text {
            return Err(PathError::new(ErrorKind::InvalidInput, "path")
                .with_detail(format!("{text:?} is not a normalised path")));
        }
        Ok(path)
    }
}

impl From<VPath> for String {
    fn from(path: VPath) -> String {
        path.0
    }
}

/// Checks one path component. Rules: not empty, not `.` or `..`, no `/` or NUL, at most
/// [`MAX_NAME_BYTES`] bytes. Errors: `NameTooLong` for a long name, `InvalidInput` otherwise.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(PathError::new(ErrorKind::InvalidInput, "name")
            .with_detail(format!("{name:?} is not a valid file name")));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(PathError::new(ErrorKind::NameTooLong, "name"));
    }
    Ok(())
}

impl VPath {
    /// The root, `/`.
    pub fn root() -> Self {
        VPath("/".to_string())
    }

    /// Parses an absolute path, resolving `.` and `..` lexically (`..` at `/` stays at `/`).
    /// Errors: `InvalidInput` if not absolute or holding NUL; `NameTooLong` past the limits.
    pub fn parse(input: &str) -> Result<Self> {
        if !input.starts_with('/') {
            return Err(PathError::new(ErrorKind::InvalidInput, "path")
                .with_detail(format!("{input:?} is not an absolute path")));
        }
        Self::resolve(&VPath::root(), input, |_| false)
    }

    /// Resolves `input` against `base`: an absolute input starts from `/`, a relative one from
    /// `base`. `..` never climbs above a path for which `is_mount_root` is true, nor above `/`.
    /// Errors: `InvalidInput` for NUL bytes or an empty input; `NameTooLong` for a component over
    /// 255 bytes or a result over 4096 bytes.
    ///
    /// ```
    /// use mavfs_actors::VPath;
    ///
    /// let vram = VPath::parse("/vram").unwrap();
    /// let at_mount_root = |p: &VPath| p.as_str() == "/vram";
    /// let cwd = VPath::parse("/vram/a").unwrap();
    /// assert_eq!(VPath::resolve(&cwd, "b//c/.", at_mount_root).unwrap().as_str(), "/vram/a/b/c");
    /// // `..` stops at the mount root.
    /// assert_eq!(VPath::resolve(&cwd, "../../..", at_mount_root).unwrap(), vram);
    /// ```
    pub fn resolve(
        base: &VPath,
        input: &str,
        is_mount_root: impl Fn(&VPath) -> bool,
    ) -> Result<Self> {
        if input.is_empty() {
            return Err(PathError::new(ErrorKind::NotFound, "path"));
        }
        if input.contains('\0') {
            return Err(PathError::new(ErrorKind::InvalidInput, "path")
                .with_detail("a path may not contain a NUL byte"));
        }
        if input.len() > MAX_PATH_BYTES {
            return Err(PathError::new(ErrorKind::NameTooLong, "path"));
        }
        let mut current = if input.starts_with('/') {
            VPath::root()
        } else {
            base.clone()
        };
        for part in input.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if !current.is_root() && !is_mount_root(&current) {
                        current = current.parent().unwrap_or_else(VPath::root);
                    }
                }
                name => {
                    if name.len() > MAX_NAME_BYTES {
                        return Err(PathError::new(ErrorKind::NameTooLong, "path"));
                    }
                    current.push_unchecked(name);
                }
            }
        }
        if current.0.len() > MAX_PATH_BYTES {
            return Err(PathError::new(ErrorKind::NameTooLong, "path"));
        }
        Ok(current)
    }

    fn push_unchecked(&mut self, name: &str) {
        if !self.is_root() {
            self.0.push('/');
        }
        self.0.push_str(name);
    }

    /// This path with `name` appended. Errors: as [`validate_name`], and `NameTooLong` when the
    /// result exceeds [`MAX_PATH_BYTES`].
    pub fn join(&self, name: &str) -> Result<VPath> {
        validate_name(name).map_err(|e| e.with_path(self))?;
        // Built at its final size: a transfer joins a path for every file it moves, and a clone
        // grown by a push cost a reallocation each.
        let mut out = VPath(String::with_capacity(self.0.len() + 1 + name.len()));
        out.0.push_str(&self.0);
        out.push_unchecked(name);
        if out.0.len() > MAX_PATH_BYTES {
            return Err(PathError::new(ErrorKind::NameTooLong, "path").with_path(self));
        }
        Ok(out)
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path as a string, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent, or `None` for `/`.
    pub fn parent(&self) -> Option<VPath> {
        self.parent_str().map(|parent| VPath(parent.to_string()))
    }

    /// The parent as a string, borrowed from this path (no allocation), or `None` for `/`.
    pub fn parent_str(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/').unwrap_or(0) {
            0 => "/",
            cut => &self.0[..cut],
        })
    }

    /// The last component, or `None` for `/`.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            None
        } else {
            self.0.rsplit('/').next()
        }
    }

    /// The components, without the leading root.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// Whether `self` is `prefix` or lies below it (component-wise: `/vram2` is not below `/vram`).
    pub fn starts_with(&self, prefix: &VPath) -> bool {
        if prefix.is_root() {
            return true;
        }
        self.0 == prefix.0
            || (self.0.starts_with(&prefix.0) && self.0.as_bytes()[prefix.0.len()] == b'/')
    }

    /// The part of `self` below `prefix`, as a path rooted at `/` (`/vram/a` minus `/vram` is `/a`).
    /// `None` when `self` does not start with `prefix`.
    pub fn strip_prefix(&self, prefix: &VPath) -> Option<VPath> {
        if !self.starts_with(prefix) {
            return None;
        }
        if prefix.is_root() {
            return Some(self.clone());
        }
        let rest = &self.0[prefix.0.len()..];
        Some(if rest.is_empty() {
            VPath::root()
        } else {
            VPath(rest.to_string())
        })
    }

    /// `prefix` followed by this path's components (the inverse of [`VPath::strip_prefix`]).
    pub fn rebase(&self, prefix: &VPath) -> VPath {
        if self.is_root() {
            return prefix.clone();
        }
        if prefix.is_root() {
            return self.clone();
        }
        // Not `format!`, which costs several times as much: a transfer rebases every file's path.
        let mut out = String::with_capacity(prefix.0.len() + self.0.len());
        out.push_str(&prefix.0);
        out.push_str(&self.0);
        VPath(out)
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> VPath {
        VPath::parse(s).unwrap()
    }

    #[test]
    fn every_valid_path_shows_whole_in_diagnostics() {
        assert_eq!(crate::quote::DIAGNOSTIC_MAX_BYTES, MAX_PATH_BYTES);
    }

    #[test]
    fn normalises_slashes_dots_and_trailing() {
        assert_eq!(p("/a//b/").as_str(), "/a/b");
        assert_eq!(p("/./a/./b/.").as_str(), "/a/b");
        assert_eq!(p("/a/b/../c").as_str(), "/a/c");
        assert_eq!(p("/..").as_str(), "/");
        assert_eq!(p("/").as_str(), "/");
    }

    #[test]
    fn relative_inputs_resolve_against_base() {
        let base = p("/vram/x");
        let rel = |s| VPath::resolve(&base, s, |_| false).unwrap();
        assert_eq!(rel("./a").as_str(), "/vram/x/a");
        assert_eq!(rel("a/").as_str(), "/vram/x/a");
        assert_eq!(rel("a//b").as_str(), "/vram/x/a/b");
        assert_eq!(rel("..").as_str(), "/vram");
    }

    #[test]
    fn dotdot_stops_at_mount_root() {
        let mount = p("/vram");
        let is_root = |q: &VPath| *q == mount;
        let at = |base: &str, s: &str| VPath::resolve(&p(base), s, is_root).unwrap();
        assert_eq!(at("/vram", "..").as_str(), "/vram");
        assert_eq!(at("/vram/a", "../..").as_str(), "/vram");
        assert_eq!(at("/vram/a", "../../b").as_str(), "/vram/b");
    }

    #[test]
    fn name_limits() {
        let ok = "x".repeat(255);
        let long = "x".repeat(256);
        assert!(VPath::parse(&format!("/{ok}")).is_ok());
        let e = VPath::parse(&format!("/{long}")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NameTooLong);
        let deep = format!("/{}", vec!["abcdefg"; 600].join("/"));
        assert_eq!(
            VPath::parse(&deep).unwrap_err().kind(),
            ErrorKind::NameTooLong
        );
        assert_eq!(
            VPath::parse("/a\0b").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            p("/a").join("..").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            p("/a").join(&long).unwrap_err().kind(),
            ErrorKind::NameTooLong
        );
    }

    #[test]
    fn prefixes_are_component_wise() {
        assert!(p("/vram/a").starts_with(&p("/vram")));
        assert!(!p("/vram2/a").starts_with(&p("/vram")));
        assert_eq!(
            p("/vram/a/b").strip_prefix(&p("/vram")).unwrap().as_str(),
            "/a/b"
        );
        assert_eq!(p("/vram").strip_prefix(&p("/vram")).unwrap().as_str(), "/");
        assert_eq!(p("/a/b").rebase(&p("/vram")).as_str(), "/vram/a/b");
        assert_eq!(VPath::root().rebase(&p("/vram")).as_str(), "/vram");
        assert_eq!(p("/a/b").parent().unwrap().as_str(), "/a");
        assert_eq!(p("/a").parent().unwrap().as_str(), "/");
        assert_eq!(p("/a/b").file_name(), Some("b"));
    }
}
