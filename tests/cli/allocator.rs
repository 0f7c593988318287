//! The binary's allocator settings (`MALLOC_CONF` in `src/main.rs`) take effect: jemalloc finds
//! them under the symbol name its build prefixes, and a rename there would otherwise leave them
//! silently unread.

use crate::harness::Mavfs;

#[test]
fn jemalloc_reads_the_binarys_slab_sizes() {
    // `confirm_conf` makes jemalloc print every setting it applies, and from where.
    let out = Mavfs::new()
        .command()
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "confirm_conf:true")
        .output()
        .expect("run mavfs");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Set conf value: slab_sizes:4096-4096:16"),
        "jemalloc did not apply the binary's slab sizes:\n{said}"
    );
}
