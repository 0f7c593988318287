//! The shell's modules import each other one way only (checked on the source text by
//! `mavfs_test_support::modules`).

use std::path::Path;

use mavfs_test_support::modules::{cycles, import_graph};

#[test]
fn shell_modules_have_no_import_cycles() {
    let shell = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/shell");
    let graph = import_graph(&shell, "crate::shell", true);
    // The check sees the real graph: background jobs start transfer commands.
    assert!(graph["jobs"].contains("commands"), "{graph:?}");
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles: {found:?}\ngraph: {graph:#?}"
    );
}
