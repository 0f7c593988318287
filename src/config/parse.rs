//! From TOML text to a validated [`Config`].
//!
//! The document is parsed into toml's spanned tree ([`DeTable`]: every key and value carries its
//! byte range) and walked by hand rather than through `#[derive(Deserialize)]`: serde's errors know
//! neither which `[[mount]]` they concern nor which keys are allowed for which backend, and every
//! error here must name the file, the line and the full key (`mount[2].root`). The first problem
//! found is reported; keys are visited in file order so that it is the first one in the file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use mavfs_actors::{BackendKind as Kind, check_namespace};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    BackendConfig, Config, ConfigError, DEFAULT_NAMESPACE, MAX_CHUNK_SIZE, MAX_JOBS,
    MIN_CHUNK_SIZE, MountConfig, RedisConfig, Tier, TransferConfig, VPath, io_reason, parse_size,
    redis_url,
};

type Key<'i> = Spanned<Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Every key a `[[mount]]` table may hold; which backend each belongs to is [`owner_of`].
const MOUNT_KEYS: &[&str] = &[
    "path",
    "backend",
    "tier",
    "capacity",
    "root",
    "fsync",
    "url",
    "cluster",
    "namespace",
    "password_env",
];

/// Every key the `[transfer]` table may hold.
const TRANSFER_KEYS: &[&str] = &["jobs", "chunk_size", "bwlimit"];

/// The backend a mount key belongs to; `None` for keys every mount takes.
fn owner_of(key: &str) -> Option<Kind> {
    match key {
        "capacity" => Some(Kind::Memory),
        "root" | "fsync" => Some(Kind::Disk),
        "url" | "cluster" | "namespace" | "password_env" => Some(Kind::Redis),
        _ => None,
    }
}

/// The 1-based line holding byte `offset` of `text` (an offset past the end counts as the end).
pub(super) fn line_of(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Parses and validates a whole document.
pub(super) fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let doc = Doc { text, file };
    let root = DeTable::parse(text).map_err(|e| doc.syntax_error(&e))?;
    let root = root.get_ref();

    for (key, _) in in_file_order(root) {
        if !matches!(key.get_ref().as_ref(), "mount" | "transfer") {
            return Err(doc.error(
                key.span(),
                key.get_ref(),
                "unknown key (the file holds [[mount]] tables and an optional [transfer] table)",
            ));
        }
    }

    let mounts = doc.mounts(root.get("mount"))?;
    let transfer = match root.get("transfer") {
        Some(value) => doc.transfer(value)?,
        None => TransferConfig::default(),
    };
    Ok(Config {
        mounts,
        transfer,
        source: Some(file.to_path_buf()),
    })
}

/// A table's entries sorted by where their keys appear (toml's map is sorted by name).
fn in_file_order<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// The document being read: its text (for line numbers) and its file (for messages and for
/// resolving relative disk roots).
struct Doc<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Doc<'_> {
    /// An error about `key`, at the line where `span` starts.
    fn error(&self, span: Range<usize>, key: &str, message: impl AsRef<str>) -> ConfigError {
        let line = line_of(self.text.as_bytes(), span.start);
        ConfigError::new(self.file, Some(line), Some(key.to_string()), message)
    }

    /// A value of the wrong TOML type.
    fn type_error(&self, key: &str, value: &Value<'_>, expected: &str) -> ConfigError {
        let found = value.get_ref().type_str();
        self.error(
            value.span(),
            key,
            format!("expected {expected}, found {found}"),
        )
    }

    /// A TOML syntax error: toml's message with our line, and the column. toml's own `Display`
    /// is not used because it quotes the source line, which may hold a password.
    fn syntax_error(&self, err: &toml::de::Error) -> ConfigError {
        let Some(span) = err.span() else {
            let message = format!("TOML syntax error: {}", err.message());
            return ConfigError::new(self.file, None, None, message);
        };
        let bytes = self.text.as_bytes();
        let start = span.start.min(bytes.len());
        let line_start = bytes[..start]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1);
        let column = String::from_utf8_lossy(&bytes[line_start..start])
            .chars()
            .count()
            + 1;
        // A duplicate key's span is the key itself: name it, as every other error does.
        let key = self
            .text
            .get(span.clone())
            .filter(|k| err.message() == "duplicate key" && !k.is_empty() && !k.contains('\n'))
            .map(str::to_string);
        let message = format!("TOML syntax error at column {column}: {}", err.message());
        ConfigError::new(self.file, Some(line_of(bytes, start)), key, message)
    }

    fn string<'v>(&self, key: &str, value: &'v Value<'_>) -> Result<&'v str, ConfigError> {
        value
            .get_ref()
            .as_str()
            .ok_or_else(|| self.type_error(key, value, "a string"))
    }

    fn boolean(&self, key: &str, value: &Value<'_>) -> Result<bool, ConfigError> {
        value
            .get_ref()
            .as_bool()
            .ok_or_else(|| self.type_error(key, value, "a boolean (true or false)"))
    }

    /// A size: a string for [`parse_size`] or a non-negative integer of bytes.
    fn size(&self, key: &str, value: &Value<'_>) -> Result<u64, ConfigError> {
        match value.get_ref() {
            DeValue::String(text) => parse_size(text).ok_or_else(|| {
                self.error(
                    value.span(),
                    key,
                    format!(
                        "invalid size {text:?} (expected a number with an optional unit, \
                         such as \"8GiB\", \"512 MiB\" or \"100kB\")"
                    ),
                )
            }),
            DeValue::Integer(int) => {
                if int.as_str().starts_with('-') {
                    return Err(self.error(value.span(), key, "a size cannot be negative"));
                }
                u64::from_str_radix(int.as_str(), int.radix())
                    .map_err(|_| self.error(value.span(), key, "size too large"))
            }
            _ => Err(self.type_error(key, value, "a size such as \"8GiB\" or an integer of bytes")),
        }
    }

    /// A required key of a table whose header (or inline braces) is at `table_span`.
    fn required<'t, 'i>(
        &self,
        table: &'t DeTable<'i>,
        table_span: &Range<usize>,
        prefix: &str,
        key: &str,
        why: &str,
    ) -> Result<&'t Value<'i>, ConfigError> {
        table.get(key).ok_or_else(|| {
            self.error(
                table_span.clone(),
                &format!("{prefix}.{key}"),
                format!("missing required key ({why})"),
            )
        })
    }

    /// The `mount` array: at least one table, paths distinct.
    fn mounts(&self, value: Option<&Value<'_>>) -> Result<Vec<MountConfig>, ConfigError> {
        const NONE: &str = "no mounts: declare at least one [[mount]] table";
        let Some(value) = value else {
            return Err(ConfigError::new(
                self.file,
                Some(1),
                Some("mount".into()),
                NONE,
            ));
        };
        let Some(array) = value.get_ref().as_array() else {
            return Err(self.type_error("mount", value, "an array of [[mount]] tables"));
        };
        if array.is_empty() {
            return Err(self.error(value.span(), "mount", NONE));
        }

        let mut mounts = Vec::with_capacity(array.len());
        // Normalised path -> (1-based index, line) of the mount that took it.
        let mut seen: HashMap<VPath, (usize, usize)> = HashMap::new();
        for (i, item) in array.iter().enumerate() {
            let number = i + 1;
            let prefix = format!("mount[{number}]");
            let Some(table) = item.get_ref().as_table() else {
                return Err(self.type_error(&prefix, item, "a table"));
            };
            let mount = self.mount(&prefix, table, &item.span())?;
            let path_span = table.get("path").map_or(item.span(), Spanned::span);
            let line = line_of(self.text.as_bytes(), path_span.start);
            if let Some((other, other_line)) = seen.insert(mount.path.clone(), (number, line)) {
                return Err(self.error(
                    path_span,
                    &format!("{prefix}.path"),
                    format!(
                        "{} is already mounted by mount[{other}] (line {other_line})",
                        mount.path
                    ),
                ));
            }
            mounts.push(mount);
        }
        Ok(mounts)
    }

    /// One `[[mount]]` table; `prefix` is `mount[N]`.
    fn mount(
        &self,
        prefix: &str,
        table: &DeTable<'_>,
        span: &Range<usize>,
    ) -> Result<MountConfig, ConfigError> {
        let name = |key: &str| format!("{prefix}.{key}");
        let entries = in_file_order(table);
        for (key, _) in &entries {
            if !MOUNT_KEYS.contains(&key.get_ref().as_ref()) {
                return Err(self.error(
                    key.span(),
                    &name(key.get_ref()),
                    format!("unknown key (a mount takes {})", MOUNT_KEYS.join(", ")),
                ));
            }
        }

        let path_value = self.required(
            table,
            span,
            prefix,
            "path",
            "where the mount appears, such as /vram",
        )?;
        let path = self.mount_path(&name("path"), path_value)?;

        let backend_value =
            self.required(table, span, prefix, "backend", "memory, disk or redis")?;
        let kind = match self.string(&name("backend"), backend_value)? {
            "memory" => Kind::Memory,
            "disk" => Kind::Disk,
            "redis" => Kind::Redis,
            other => {
                return Err(self.error(
                    backend_value.span(),
                    &name("backend"),
                    format!("unknown backend {other:?} (expected memory, disk or redis)"),
                ));
            }
        };
        for (key, _) in &entries {
            if let Some(owner) = owner_of(key.get_ref())
                && owner != kind
            {
                return Err(self.error(
                    key.span(),
                    &name(key.get_ref()),
                    format!("not valid for a {kind} mount (it applies to {owner} mounts only)"),
                ));
            }
        }

        let tier = match table.get("tier") {
            None if kind == Kind::Disk => Tier::Cold,
            None => Tier::Hot,
            Some(value) => match self.string(&name("tier"), value)? {
                "hot" => Tier::Hot,
                "cold" => Tier::Cold,
                other => {
                    return Err(self.error(
                        value.span(),
                        &name("tier"),
                        format!("unknown tier {other:?} (expected hot or cold)"),
                    ));
                }
            },
        };

        let backend = match kind {
            Kind::Memory => self.memory(prefix, table)?,
            Kind::Disk => self.disk(prefix, table, span)?,
            Kind::Redis => self.redis(prefix, table, span)?,
        };
        Ok(MountConfig {
            path,
            tier,
            backend,
        })
    }

    /// A mount path: absolute, normalised, exactly one component below `/`.
    fn mount_path(&self, key: &str, value: &Value<'_>) -> Result<VPath, ConfigError> {
        let text = self.string(key, value)?;
        let fail = |message: String| Err(self.error(value.span(), key, message));
        if !text.starts_with('/') {
            return fail(format!(
                "{text:?} is not an absolute path (mount paths look like /vram)"
            ));
        }
        let path = match VPath::parse(text) {
            Ok(path) => path,
            Err(e) => return fail(format!("{text:?} is not a valid path: {}", e.reason())),
        };
        if path.is_root() {
            return fail(format!(
                "{text:?} is / itself, which lists the mounts and cannot be one"
            ));
        }
        if path.components().count() != 1 {
            return fail(format!(
                "{text:?}: mount paths are one level below / (such as /vram)"
            ));
        }
        Ok(path)
    }

    fn memory(&self, prefix: &str, table: &DeTable<'_>) -> Result<BackendConfig, ConfigError> {
        let capacity = match table.get("capacity") {
            None => None,
            Some(value) => {
                let key = format!("{prefix}.capacity");
                let bytes = self.size(&key, value)?;
                if bytes == 0 {
                    // Almost certainly a mistake ("0GiB"); no limit is spelled by leaving it out.
                    return Err(self.error(
                        value.span(),
                        &key,
                        "capacity must be more than 0 bytes (leave it out for no limit)",
                    ));
                }
                Some(bytes)
            }
        };
        Ok(BackendConfig::Memory { capacity })
    }

    fn disk(
        &self,
        prefix: &str,
        table: &DeTable<'_>,
        span: &Range<usize>,
    ) -> Result<BackendConfig, ConfigError> {
        let key = format!("{prefix}.root");
        let value = self.required(
            table,
            span,
            prefix,
            "root",
            "the host directory that holds the files",
        )?;
        let written = self.string(&key, value)?;
        if written.is_empty() {
            return Err(self.error(value.span(), &key, "root is empty"));
        }
        let root = self.resolve(written);
        let shown = if root == Path::new(written) {
            written.to_string()
        } else {
            format!("{written} (resolved to {})", root.display())
        };
        let problem = match std::fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => super::unsuitable_disk_root(&root),
            Ok(_) => Some(format!("{shown} is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The shell expands ~, TOML does not; say so rather than leave the user puzzled.
                let hint = if written.starts_with('~') {
                    " (~ is not expanded here; write the full path)"
                } else {
                    ""
                };
                Some(format!("{shown} does not exist{hint}"))
            }
            Err(e) => Some(format!("{shown}: {}", io_reason(&e))),
        };
        if let Some(problem) = problem {
            return Err(self.error(value.span(), &key, problem));
        }

        let fsync = match table.get("fsync") {
            Some(value) => self.boolean(&format!("{prefix}.fsync"), value)?,
            None => false,
        };
        Ok(BackendConfig::Disk {
            root,
            fsync,
            create: false,
        })
    }

    /// A disk root as written, resolved against the config file's directory when relative.
    /// `./` components are dropped so `./data` next to `./mavfs.toml` reads `./data`, not `././data`.
    fn resolve(&self, written: &str) -> PathBuf {
        let path = Path::new(written);
        let base = self.file.parent().unwrap_or(Path::new(""));
        if path.is_absolute() || base.as_os_str().is_empty() {
            return path.to_path_buf();
        }
        let relative: PathBuf = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        base.join(relative)
    }

    fn redis(
        &self,
        prefix: &str,
        table: &DeTable<'_>,
        span: &Range<usize>,
    ) -> Result<BackendConfig, ConfigError> {
        let name = |key: &str| format!("{prefix}.{key}");

        let url = match table.get("url") {
            None => None,
            Some(value) => {
                let url = self.string(&name("url"), value)?;
                redis_url::check(url, false)
                    .map_err(|m| self.error(value.span(), &name("url"), m))?;
                Some(url.to_string())
            }
        };

        let mut cluster = Vec::new();
        if let Some(value) = table.get("cluster") {
            let key = name("cluster");
            let Some(nodes) = value.get_ref().as_array() else {
                return Err(self.type_error(&key, value, "an array of node URLs"));
            };
            if nodes.is_empty() {
                return Err(self.error(value.span(), &key, "cluster needs at least one node URL"));
            }
            for (j, node) in nodes.iter().enumerate() {
                let node_key = format!("{key}[{}]", j + 1);
                let url = self.string(&node_key, node)?;
                redis_url::check(url, true).map_err(|m| self.error(node.span(), &node_key, m))?;
                cluster.push(url.to_string());
            }
        }

        match (table.get_key_value("url"), table.get_key_value("cluster")) {
            (None, None) => {
                return Err(self.error(
                    span.clone(),
                    &name("url"),
                    "missing required key (a redis mount needs url for one node or cluster for a cluster)",
                ));
            }
            (Some((url_key, _)), Some((cluster_key, _))) => {
                let later = if url_key.span().start > cluster_key.span().start {
                    url_key
                } else {
                    cluster_key
                };
                return Err(self.error(
                    later.span(),
                    &name(later.get_ref()),
                    "give either url (one node) or cluster (a cluster), not both",
                ));
            }
            _ => {}
        }

        let namespace = match table.get("namespace") {
            None => DEFAULT_NAMESPACE.to_string(),
            Some(value) => {
                let namespace = self.string(&name("namespace"), value)?;
                // The engine's rule, checked here so that the error names the file and line.
                check_namespace(namespace)
                    .map_err(|m| self.error(value.span(), &name("namespace"), m))?;
                namespace.to_string()
            }
        };

        let password_env = match table.get("password_env") {
            None => None,
            Some(value) => {
                let key = name("password_env");
                let var = self.string(&key, value)?;
                let mut chars = var.chars();
                let valid = chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(self.error(
                        value.span(),
                        &key,
                        format!(
                            "{var:?} is not an environment variable name (letters, digits and _)"
                        ),
                    ));
                }
                // Two sources for one password would leave the reader guessing which one wins.
                if url
                    .iter()
                    .chain(&cluster)
                    .any(|u| redis_url::has_password(u))
                {
                    return Err(self.error(
                        value.span(),
                        &key,
                        "a URL of this mount already holds a password; give it in one place only",
                    ));
                }
                Some(var.to_string())
            }
        };

        Ok(BackendConfig::Redis(RedisConfig {
            url,
            cluster,
            namespace,
            password_env,
        }))
    }

    /// The `[transfer]` table.
    fn transfer(&self, value: &Value<'_>) -> Result<TransferConfig, ConfigError> {
        let Some(table) = value.get_ref().as_table() else {
            return Err(self.type_error("transfer", value, "a table"));
        };
        for (key, _) in in_file_order(table) {
            if !TRANSFER_KEYS.contains(&key.get_ref().as_ref()) {
                return Err(self.error(
                    key.span(),
                    &format!("transfer.{}", key.get_ref()),
                    format!(
                        "unknown key ([transfer] takes {})",
                        TRANSFER_KEYS.join(", ")
                    ),
                ));
            }
        }

        let mut transfer = TransferConfig::default();
        if let Some(value) = table.get("jobs") {
            let key = "transfer.jobs";
            let Some(int) = value.get_ref().as_integer() else {
                return Err(self.type_error(key, value, "an integer"));
            };
            transfer.jobs = i64::from_str_radix(int.as_str(), int.radix())
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=MAX_JOBS).contains(n))
                .ok_or_else(|| {
                    self.error(
                        value.span(),
                        key,
                        format!("jobs must be from 1 to {MAX_JOBS}"),
                    )
                })?;
        }
        if let Some(value) = table.get("chunk_size") {
            let key = "transfer.chunk_size";
            let bytes = self.size(key, value)?;
            transfer.chunk_size = usize::try_from(bytes)
                .ok()
                .filter(|n| (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(n))
                .ok_or_else(|| {
                    self.error(value.span(), key, "chunk_size must be from 4KiB to 64MiB")
                })?;
        }
        if let Some(value) = table.get("bwlimit") {
            let key = "transfer.bwlimit";
            let bytes = match value.get_ref() {
                // A rate reads as a size per second: "50MiB/s", or "50MiB".
                DeValue::String(text) => {
                    parse_size(text.strip_suffix("/s").unwrap_or(text)).ok_or_else(|| {
                        self.error(
                            value.span(),
                            key,
                            format!("invalid rate {text:?} (expected a size per second, such as \"50MiB/s\")"),
                        )
                    })?
                }
                _ => self.size(key, value)?,
            };
            if bytes == 0 {
                return Err(self.error(
                    value.span(),
                    key,
                    "bwlimit must be above 0 (leave it out for no limit)",
                ));
            }
            transfer.bwlimit = Some(bytes);
        }
        Ok(transfer)
    }
}
