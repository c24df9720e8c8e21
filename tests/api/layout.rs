//! The layout promise of `src/lib.rs`: calls only go down the list of modules, so no two modules
//! import each other, at the level of folders (`sources` and `verify`) and of files (a folder's
//! `mod.rs` and the files in it).
//!
//! The check reads `src/` as text: every `use` tree and every `crate::`, `super::` or `self::`
//! path in code (not comments, not test modules), resolved to the module (file) it names. An edge
//! to a folder's `mod.rs` counts like any other, so a file that imports through its own
//! folder's re-exports, while that `mod.rs` re-exports the file, is a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each may import. The list in `src/lib.rs`, as data.
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("shutdown", &[]),
    ("telemetry", &["config"]),
    ("store", &["config"]),
    ("http", &["config", "store", "telemetry"]),
    ("verify", &["config", "http"]),
    ("sign", &["verify"]),
    ("sources", &["config", "http", "store"]),
    (
        "receive",
        &["config", "http", "verify", "sources", "store", "telemetry"],
    ),
    ("deliver", &["config", "store", "verify", "telemetry"]),
    (
        "admin",
        &[
            "http", "store", "verify", "sources", "receive", "deliver", "config",
        ],
    ),
    (
        "startup",
        &[
            "config",
            "http",
            "receive",
            "sources",
            "store",
            "verify",
            "admin",
            "deliver",
            "telemetry",
            "shutdown",
        ],
    ),
    ("fuzz", &["config", "sources", "verify", "startup"]),
];

/// Every module of the library: its path (`crate::sources::kratos`) and its file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts == ["main"] {
            continue;
        }
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        // Test modules in files of their own.
        if parts.last().is_some_and(|p| p == "tests") {
            continue;
        }
        let mut path = vec!["crate".to_string()];
        path.extend(parts);
        modules.insert(path.join("::"), file);
    }
    modules
}

/// The code of a file: no comments, no test module (test modules close every file here).
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| next.contains("mod tests"))
        {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Expands a `use` tree (`super::{a, b::{c, d}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    fn go(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let prefix = join(prefix, head);
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&prefix, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            go(&prefix, &inner[start..], out);
        } else if !tree.is_empty() {
            let item = tree.split(" as ").next().unwrap_or(tree).trim();
            out.push(join(prefix, item));
        }
    }
    fn join(a: &str, b: &str) -> String {
        match (a.is_empty(), b.is_empty()) {
            (true, _) => b.to_string(),
            (_, true) => a.to_string(),
            _ => format!("{a}::{b}"),
        }
    }
    let mut out = Vec::new();
    go("", &tree, &mut out);
    out
}

/// Every path a file's code names: its `use` trees and every `a::b` path in its code.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` items start a line (after `pub`, `pub(crate)` and the like) and end at `;`.
    let mut rest_of_code = String::new();
    let mut pending: Option<String> = None;
    for line in code.lines() {
        if let Some(mut tree) = pending.take() {
            tree.push(' ');
            tree.push_str(line);
            match tree.find(';') {
                Some(end) => out.extend(expand(&tree[..end])),
                None => pending = Some(tree),
            }
            continue;
        }
        let t = line.trim_start();
        let t = if let Some(vis) = t.strip_prefix("pub") {
            match vis.strip_prefix('(') {
                Some(r) => r.split_once(')').map_or(vis, |(_, r)| r).trim_start(),
                None => vis.trim_start(),
            }
        } else {
            t
        };
        match t.strip_prefix("use ") {
            Some(tree) => match tree.find(';') {
                Some(end) => out.extend(expand(&tree[..end])),
                None => pending = Some(tree.to_string()),
            },
            None => {
                rest_of_code.push_str(line);
                rest_of_code.push('\n');
            }
        }
    }
    // Paths in code: every `a::b…` token (those that name no module of ours resolve to nothing).
    let is_path = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for token in rest_of_code.split(|c: char| !is_path(c)) {
        let token = token.trim_matches(':');
        if token.contains("::") && !token.starts_with(|c: char| c.is_ascii_digit()) {
            out.push(token.to_string());
        }
    }
    out
}

/// The module a path names (the longest prefix that is a module), from module `here`.
fn resolve(here: &str, path: &str, modules: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segs: Vec<&str> = here.split("::").collect();
    let mut parts = path.split("::").peekable();
    match parts.peek().copied() {
        Some("crate") => {
            parts.next();
            segs = vec!["crate"];
        }
        Some("super") => {
            while parts.peek() == Some(&"super") {
                parts.next();
                segs.pop();
            }
        }
        Some("self") => {
            parts.next();
        }
        // A path may start with a child module of this one (`pub use events::EventStore`).
        Some(first) if modules.contains_key(&format!("{here}::{first}")) => {}
        _ => return None,
    }
    let mut best = None;
    let mut current: Vec<&str> = segs;
    if modules.contains_key(&current.join("::")) {
        best = Some(current.join("::"));
    }
    for p in parts {
        current.push(p);
        let m = current.join("::");
        if modules.contains_key(&m) {
            best = Some(m);
        }
    }
    best
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code(&std::fs::read_to_string(file).unwrap());
        let entry = edges.entry(module.clone()).or_default();
        for path in paths(&code) {
            if let Some(target) = resolve(module, &path, &modules) {
                if &target != module && target != "crate" {
                    entry.insert(target);
                }
            }
        }
    }
    edges
}

/// A cycle through `start`, if there is one (depth first).
fn cycle_from(start: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn dfs(
        node: &str,
        start: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(node).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if dfs(next, start, edges, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    dfs(start, start, edges, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_two_modules_import_each_other_not_even_through_a_cycle() {
    let edges = graph();
    assert!(
        edges.len() > 40,
        "the reader found only {} modules",
        edges.len()
    );
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|m| cycle_from(m, &edges))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn top_level_modules_import_only_what_lib_rs_lists_below_them() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let top = |m: &str| m.split("::").nth(1).map(str::to_string);
    let mut wrong = Vec::new();
    for (from, targets) in graph() {
        let Some(a) = top(&from) else { continue };
        for to in targets {
            let Some(b) = top(&to) else { continue };
            if a == b {
                continue;
            }
            let ok = allowed
                .get(a.as_str())
                .is_some_and(|list| list.contains(&b.as_str()));
            if !ok {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layout:\n{}",
        wrong.join("\n")
    );
    // Every top-level module is in the table.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for m in modules(&src).keys().filter_map(|m| top(m)) {
        assert!(allowed.contains_key(m.as_str()), "{m} is not in ALLOWED");
    }
}

#[test]
fn the_reader_finds_the_imports_it_must() {
    // The checks above are only as good as this reader: it must see a cycle where there is one.
    let paths = paths("use super::{a, b::{c, d as e}};\nfn f() { crate::x::y(); self::z::w; }\n");
    assert_eq!(
        paths,
        [
            "super::a",
            "super::b::c",
            "super::b::d",
            "crate::x::y",
            "self::z::w"
        ]
    );
    let mut modules = BTreeMap::new();
    for m in ["crate::s", "crate::s::k", "crate::s::j"] {
        modules.insert(m.to_string(), PathBuf::new());
    }
    assert_eq!(
        resolve("crate::s::k", "super::Kind", &modules).as_deref(),
        Some("crate::s")
    );
    assert_eq!(
        resolve("crate::s::k", "super::j::X", &modules).as_deref(),
        Some("crate::s::j")
    );
    assert_eq!(resolve("crate::s::k", "serde::Deserialize", &modules), None);
    assert_eq!(
        resolve("crate::s", "k::Kind", &modules).as_deref(),
        Some("crate::s::k")
    );
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        cycle_from("a", &edges),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    assert!(code("use x;\n#[cfg(test)]\nmod tests {\n use y;\n}\n").contains("use x"));
    assert!(!code("use x;\n#[cfg(test)]\nmod tests {\n use y;\n}\n").contains("use y"));
}
