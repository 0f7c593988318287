//! The engine's modules import each other one way only: no two depend on each other, directly
//! or through others (checked on the source text by `mavfs_test_support::modules`).

use std::path::Path;

use mavfs_test_support::modules::{cycles, import_graph};

#[test]
fn engine_modules_have_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src, "crate", false);
    // The check sees the real graph: the router depends on jobs, jobs on transfers.
    assert!(graph["router"].contains("job"), "{graph:?}");
    assert!(graph["job"].contains("transfer"), "{graph:?}");
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles: {found:?}\ngraph: {graph:#?}"
    );
}
