//! The Lua scripts: every metadata read and update, each one atomic.
//!
//! Each script is a file of its own under `lua/` (`lua/commit.lua`, ...), whose header comment
//! gives its arguments and its reply; this file only names them, with their flags. A script is
//! sent as `lua/prelude.lua` (helpers shared by every script: path resolution, entries, errors),
//! then its own `main`, then `lua/epilogue.lua` (runs `main` and turns a failure into a reply).
//!
//! Every script gets `KEYS[1]` = the namespace's `meta` key (which routes it to the node serving
//! the metadata slot on a cluster) and `ARGV[1]` = `<prefix>|<epoch>`: the metadata prefix
//! `<ns>:{<ns>}:`, from which it builds every other metadata key (they all share the `{<ns>}` hash
//! tag, so they live in one slot), and the namespace's epoch as the store found it at connect,
//! which the prelude checks before anything else (module `epoch`): a namespace the server lost
//! replies `{'err', 'EPOCH', ''}` to every script, so a store never reads an empty tree as its
//! own nor writes into a namespace it did not open. The epoch rides in `ARGV[1]` so that no
//! script's own arguments move. Scripts never touch chunk keys, which live in other slots.
//!
//! A script first checks everything (resolving paths, kinds, emptiness), then writes: the checks
//! raise `{'err', code, key}` replies before any write, so a refused operation changes nothing
//! (Redis does not roll a script back). Every script carries the `allow-oom` flag, so that under
//! `maxmemory` with `noeviction` the scripts that free data (removing files) still run whole; the
//! data writes that would grow memory are chunk `SET`s, refused with OOM outside any script.
//!
//! Replies are `{'ok', ...}` or `{'err', code, key}`: `code` is an errno name (`ENOENT`,
//! `EEXIST`, `EISDIR`, `ENOTDIR`, `ENOTEMPTY`, `EBUSY`, `EINVAL`) or `EXPIRED` (staged data was
//! swept), `WRONGTYPE` or `CORRUPT` (naming the key); for `rename` the key says which path
//! (`from` or `to`) an errno is about.

use std::sync::LazyLock;

use fred::types::scripts::Script;

/// Read-only scripts may run on an out-of-memory server; writing ones too (see the module docs).
const READ: &str = "no-writes,allow-oom";
const WRITE: &str = "allow-oom";

/// Builds a script: the shebang with its flags, the prelude, its body and the epilogue.
fn script(flags: &str, body: &str) -> Script {
    const PRELUDE: &str = include_str!("lua/prelude.lua");
    const EPILOGUE: &str = include_str!("lua/epilogue.lua");
    Script::from_lua(format!("#!lua flags={flags}\n{PRELUDE}{body}{EPILOGUE}"))
}

/// Declares [`Scripts`], one field per script, each built from `lua/<field>.lua` with its flags.
macro_rules! scripts {
    ($($name:ident: $flags:ident,)*) => {
        /// Every script, built (and hashed) once per process.
        pub(crate) struct Scripts {
            $(pub $name: Script,)*
        }

        impl Scripts {
            /// Every script, to load them all at once.
            pub(crate) fn all(&self) -> Vec<&Script> {
                vec![$(&self.$name),*]
            }
        }

        pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
            $($name: script($flags, include_str!(concat!("lua/", stringify!($name), ".lua"))),)*
        });
    };
}

scripts! {
    init: WRITE,
    stat: READ,
    list: READ,
    mkdir: WRITE,
    touch: WRITE,
    open: WRITE,
    commit: WRITE,
    dirs: READ,
    stage_files: WRITE,
    commit_files: WRITE,
    copy: WRITE,
    remove_file: WRITE,
    remove_dir: WRITE,
    detach: WRITE,
    purge: WRITE,
    trash: READ,
    rename: WRITE,
    claim: WRITE,
    heartbeat: WRITE,
    usage: READ,
    scanned: WRITE,
}
