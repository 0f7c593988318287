//! The engine's limits and defaults, and the rules on names that both the engine and the config
//! check: one definition each, so the config refuses at load (with file, line and key) exactly
//! what the engine would refuse later.

/// Size of the chunks a store streams, and of a transfer's pipeline slots, unless configured.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;
/// Smallest chunk a config may ask for (4 KiB): smaller chunks cost more in messages than they
/// move.
pub const MIN_CHUNK_SIZE: usize = 4 << 10;
/// Largest chunk (64 MiB): a transfer's pipeline holds a window of chunks in memory, and Redis
/// keeps each chunk as one value.
pub const MAX_CHUNK_SIZE: usize = 64 << 20;

/// Files of a tree a transfer moves at once unless the config or `-j N` says otherwise.
pub const DEFAULT_JOBS: usize = 4;
/// The most files a transfer may move at once.
pub const MAX_JOBS: usize = 64;

/// Redis key prefix of a mount that names none.
pub const DEFAULT_NAMESPACE: &str = "mavfs";
/// Longest Redis namespace, in bytes: every key of the mount starts with it.
pub const MAX_NAMESPACE_BYTES: usize = 64;

/// Checks a Redis namespace: 1 to [`MAX_NAMESPACE_BYTES`] letters, digits and `_ - . :` (no
/// braces, which would break the cluster hash tags built around it). The error says what a
/// valid one looks like.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    let valid = !ns.is_empty()
        && ns.len() <= MAX_NAMESPACE_BYTES
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid namespace {ns:?} (1 to {MAX_NAMESPACE_BYTES} letters, digits and _ - . :)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert!(check_namespace("mavfs").is_ok());
        assert!(check_namespace("a.b:c-d_e9").is_ok());
        assert!(check_namespace(&"n".repeat(MAX_NAMESPACE_BYTES)).is_ok());
        for bad in ["", "a{b}", "a b", "é"] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
        let long = "n".repeat(MAX_NAMESPACE_BYTES + 1);
        assert!(check_namespace(&long).unwrap_err().contains("1 to 64"));
    }
}
