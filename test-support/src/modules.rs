//! The import graph of a crate's top-level modules, to check that no two of them depend on each
//! other (directly or through others).
//!
//! A source file's module is the first component of its path below the root (`job/run.rs`
//! belongs to `job`); it depends on module `m` when its code (comments and `#[cfg(test)]` parts
//! left out) names `<prefix>::m`, `use <prefix>::{m, ...}` included. Text, not a compiler: good
//! enough for a crate whose modules are named in full paths, as ours are.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Which top-level modules each module of the tree at `root` names through `prefix` (`crate` for
/// a crate root, `crate::shell` for the shell's submodules). A file directly in `root` (not in a
/// module's directory) also names its siblings through `super` when `root` is a module's
/// directory (`super_is_root`). Files named `*_tests.rs` (test modules) are left out.
pub fn import_graph(
    root: &Path,
    prefix: &str,
    super_is_root: bool,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    collect(root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(root, f)).collect();
    for file in &files {
        let module = top_module(root, file);
        // Test modules (`seam_tests.rs`, `job/control_tests.rs`) may reach anywhere.
        let is_tests = file
            .file_stem()
            .is_some_and(|stem| stem.to_string_lossy().ends_with("_tests"));
        if is_tests {
            continue;
        }
        let text = code_of(&fs::read_to_string(file).unwrap());
        let deps = graph.entry(module.clone()).or_default();
        let at_root = file.parent() == Some(root);
        let mut needles = vec![format!("{prefix}::")];
        if super_is_root && at_root {
            needles.push("super::".to_string());
        }
        for (at, needle) in needles
            .iter()
            .flat_map(|n| text.match_indices(n.as_str()).map(move |(at, _)| (at, n)))
        {
            let rest = &text[at + needle.len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or(""))
                    .collect(),
                None => vec![
                    rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or(""),
                ],
            };
            for name in names {
                if name != module && modules.contains(name) {
                    deps.insert(name.to_string());
                }
            }
        }
    }
    graph
}

/// Every cycle of `graph`, each as its modules in order, the first repeated at the end.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        let last = path.last().cloned().unwrap_or_default();
        for dep in graph.get(&last).into_iter().flatten() {
            if let Some(at) = path.iter().position(|m| m == dep) {
                let mut cycle = path[at..].to_vec();
                // One rotation per cycle: start at its smallest module.
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, m)| *m)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                cycle.push(cycle[0].clone());
                found.insert(cycle);
            } else {
                path.push(dep.clone());
                walk(graph, path, found);
                path.pop();
            }
        }
    }
    let mut found = BTreeSet::new();
    for module in graph.keys() {
        walk(graph, &mut vec![module.clone()], &mut found);
    }
    found.into_iter().collect()
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn top_module(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file: line comments dropped, and everything from its first `#[cfg(test)]` on.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}
