//! [`RedisOptions`]: where a Redis store lives and how it talks to it, and their translation into
//! fred's client configuration.

use std::fmt;
use std::time::Duration;

use fred::prelude::{Config, ServerConfig};

use crate::error::{Error, ErrorKind, Result};
use crate::limits::{DEFAULT_CHUNK_SIZE, DEFAULT_NAMESPACE, MAX_CHUNK_SIZE, check_namespace};
use crate::redis_url::redact_url;

/// How long a command may wait for Redis by default, reconnection included.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of a [`super::RedisStore`]. Exactly one of `url` and `cluster` is set.
///
/// `Debug` leaves the password out, and shows URLs with their passwords masked.
#[derive(Clone)]
pub struct RedisOptions {
    /// One node: `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
    pub url: Option<String>,
    /// Cluster seed nodes, each a URL as above (database 0 only); the client finds the rest.
    pub cluster: Vec<String>,
    /// Prefix of every key: letters, digits and `_ - . :`. Mounts with different namespaces
    /// share one Redis without seeing each other.
    pub namespace: String,
    /// A password that overrides any in the URLs (from `password_env`).
    pub password: Option<String>,
    /// Bytes per data chunk (one Redis string each); files written by other processes keep the
    /// chunk size they were written with.
    pub chunk_size: usize,
    /// How long a command may take, waiting for a reconnection included, before it fails with
    /// `Unavailable`. Also bounds connecting.
    pub command_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            url: Some("redis://127.0.0.1:6379/0".to_string()),
            cluster: Vec::new(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            password: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cluster: Vec<String> = self
            .cluster
            .iter()
            .map(|u| redact_url(u).into_owned())
            .collect();
        f.debug_struct("RedisOptions")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("cluster", &cluster)
            .field("namespace", &self.namespace)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("chunk_size", &self.chunk_size)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl RedisOptions {
    /// Where the store lives, for messages: the URL (or the cluster's first node and a count)
    /// with any password masked.
    pub fn shown(&self) -> String {
        match (&self.url, self.cluster.as_slice()) {
            (Some(url), _) => redact_url(url).into_owned(),
            (None, [one]) => format!("cluster {}", redact_url(one)),
            (None, [first, rest @ ..]) => {
                format!("cluster {} (+{} nodes)", redact_url(first), rest.len())
            }
            (None, []) => "(no URL)".to_string(),
        }
    }

    /// Checks the options. Errors: `InvalidInput` naming what is wrong.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |detail: String| {
            Err(Error::new(ErrorKind::InvalidInput, "connect").with_detail(detail))
        };
        match (&self.url, self.cluster.is_empty()) {
            (Some(_), false) => {
                return invalid("give either a URL or cluster nodes, not both".into());
            }
            (None, true) => return invalid("a Redis URL or cluster nodes are required".into()),
            _ => {}
        }
        check_namespace(&self.namespace).or_else(invalid)?;
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return invalid(format!(
                "chunk size {} is not between 1 byte and {} MiB",
                self.chunk_size,
                MAX_CHUNK_SIZE >> 20
            ));
        }
        if self.command_timeout.is_zero() {
            return invalid("the command timeout must be above zero".into());
        }
        Ok(())
    }

    /// fred's configuration for these options: one node or a cluster, the password applied.
    pub(crate) fn fred_config(&self) -> Result<Config> {
        let parse = |url: &str| {
            Config::from_url(url).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, "connect").with_detail(format!(
                    "bad Redis URL {}: {}",
                    redact_url(url),
                    e.details()
                ))
            })
        };
        let mut config = match (&self.url, self.cluster.as_slice()) {
            (Some(url), _) => parse(url)?,
            (None, [first, ..]) => {
                let mut config = parse(first)?;
                let mut hosts = Vec::with_capacity(self.cluster.len());
                for url in &self.cluster {
                    match parse(url)?.server {
                        ServerConfig::Centralized { server } => {
                            hosts.push((server.host.to_string(), server.port))
                        }
                        _ => {
                            return Err(Error::new(ErrorKind::InvalidInput, "connect")
                                .with_detail(format!(
                                    "cluster node {} must be a single host URL",
                                    redact_url(url)
                                )));
                        }
                    }
                }
                config.server = ServerConfig::new_clustered(hosts);
                config.database = None;
                config
            }
            (None, []) => unreachable!("validated: a URL or cluster nodes"),
        };
        if let Some(password) = &self.password {
            config.password = Some(password.clone());
        }
        // Report an unreachable server at once; reconnection applies to connections that drop
        // later.
        config.fail_fast = true;
        Ok(config)
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.url.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:p@ss@h:1"),
            "rediss://user:***@h:1"
        );
        assert_eq!(redact_url("redis://user@h"), "redis://user@h");
        assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
        let options = RedisOptions {
            url: Some("redis://u:hunter2@h:1/0".into()),
            password: Some("hunter3".into()),
            ..RedisOptions::default()
        };
        let shown = format!("{options:?} {}", options.shown());
        assert!(!shown.contains("hunter"), "{shown}");
    }

    #[test]
    fn options_are_checked() {
        let ok = RedisOptions::default();
        assert!(ok.validate().is_ok());
        for bad in [
            RedisOptions {
                namespace: "a{b}".into(),
                ..RedisOptions::default()
            },
            RedisOptions {
                namespace: String::new(),
                ..RedisOptions::default()
            },
            RedisOptions {
                chunk_size: 0,
                ..RedisOptions::default()
            },
            RedisOptions {
                cluster: vec!["redis://h:1".into()],
                ..RedisOptions::default()
            },
            RedisOptions {
                url: None,
                ..RedisOptions::default()
            },
        ] {
            let err = bad.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
