//! The shape of src/: no two files import each other, and nothing imports upward (model, then
//! settings, store and domain, then entry). Read from the source text, no database: every
//! `crate::…` and `super::…` path, in `use` items and inline, outside the `tests` modules,
//! resolved to the module file it names (the longest prefix that is one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path below the crate root: `src/store/items.rs` is `["store", "items"]`,
/// `src/store/mod.rs` is `["store"]`, `src/lib.rs` is `[]`.
type ModulePath = Vec<String>;

/// Every library source file by its module path; `src/bin` (crates of their own) and the files
/// of `tests` modules left out.
fn library_modules() -> BTreeMap<ModulePath, PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let mut module: ModulePath = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let last = module.pop().expect("a file name");
        match last.as_str() {
            "lib.rs" | "mod.rs" => {}
            name => module.push(name.trim_end_matches(".rs").to_owned()),
        }
        if module.first().is_some_and(|m| m == "bin") || module.iter().any(|m| m == "tests") {
            continue;
        }
        modules.insert(module, file);
    }
    modules
}

/// The text of a file without comment lines and without its `#[cfg(test)] mod tests { … }`
/// block (rustfmt closes a top-level block with a `}` alone on its line).
fn code_outside_tests(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]" && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod tests {")) {
            for skipped in lines.by_ref() {
                if skipped == "}" {
                    break;
                }
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The paths one `use` tree names, groups expanded: `super::{a, b::{c, self}}` is `super::a`,
/// `super::b::c` and `super::b`.
fn expand_use_tree(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        // `a::b as c` names `a::b`.
        return tree.split_whitespace().next().map(|path| path.trim_end_matches("::").to_owned()).into_iter().collect();
    };
    let prefix = tree[..open].trim().trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').expect("a closed use group")];
    let (mut members, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(&inner[start..]);
    let mut paths = Vec::new();
    for member in members.into_iter().map(str::trim).filter(|m| !m.is_empty()) {
        for path in expand_use_tree(member) {
            paths.push(if path == "self" { prefix.to_owned() } else { format!("{prefix}::{path}") });
        }
    }
    paths
}

/// Every `crate::…` and `super::…` path of a file's code: those of its `use` items, groups
/// expanded, and those written inline.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = String::new();
    let mut statement: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        let use_start =
            ["use ", "pub use ", "pub(crate) use ", "pub(super) use "].iter().find_map(|p| trimmed.strip_prefix(p));
        match (&mut statement, use_start) {
            (Some(open), _) => {
                open.push(' ');
                open.push_str(trimmed);
            }
            (None, Some(tree)) => statement = Some(tree.to_owned()),
            (None, None) => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
        if let Some(tree) = statement.as_ref().filter(|s| s.trim_end().ends_with(';')) {
            paths.extend(expand_use_tree(tree.trim_end().trim_end_matches(';')));
            statement = None;
        }
    }
    let bytes = rest.as_bytes();
    for root in ["crate::", "super::"] {
        for (at, _) in rest.match_indices(root) {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let end = rest[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(rest.len(), |e| at + e);
            paths.push(rest[at..end].trim_end_matches(':').to_owned());
        }
    }
    paths.into_iter().filter(|p| p.starts_with("crate::") || p.starts_with("super::")).collect()
}

/// The module file a path names from module `from`: `super` is `from`'s parent, then the longest
/// prefix of the rest that is a module file.
fn resolve(path: &str, from: &ModulePath, modules: &BTreeMap<ModulePath, PathBuf>) -> ModulePath {
    let mut segments = path.split("::").peekable();
    let mut base: ModulePath = Vec::new();
    if segments.peek() == Some(&"crate") {
        segments.next();
    } else {
        base = from.clone();
        while segments.peek() == Some(&"super") {
            segments.next();
            base.pop();
        }
    }
    let mut resolved = base.clone();
    let mut candidate = base;
    for segment in segments {
        candidate.push(segment.to_owned());
        if modules.contains_key(&candidate) {
            resolved = candidate.clone();
        }
    }
    resolved
}

/// Which module files each module file imports (itself left out).
fn imports() -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let modules = library_modules();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("a readable source file");
        let targets: BTreeSet<ModulePath> = crate_paths(&code_outside_tests(&text))
            .iter()
            .map(|path| resolve(path, module, &modules))
            .filter(|target| target != module)
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

fn file_name(module: &ModulePath) -> String {
    if module.is_empty() { "lib".to_owned() } else { module.join("/") }
}

#[test]
fn the_path_reader_expands_groups_and_resolves_super_and_prefixes() {
    let modules: BTreeMap<ModulePath, PathBuf> = [vec![], vec!["a"], vec!["a", "b"], vec!["a", "c"], vec!["d"]]
        .into_iter()
        .map(|m| (m.into_iter().map(str::to_owned).collect(), PathBuf::new()))
        .collect();
    let paths = crate_paths(
        "use super::{b::{self, X}, c};\npub use crate::d::{\n    Y,\n    Z as W,\n};\nfn f() { crate::a::b::g(); }\n",
    );
    assert_eq!(paths, ["super::b", "super::b::X", "super::c", "crate::d::Y", "crate::d::Z", "crate::a::b::g"]);
    let from_b: ModulePath = vec!["a".into(), "b".into()];
    let from_a: ModulePath = vec!["a".into()];
    assert_eq!(resolve("super::c::Thing", &from_b, &modules), ["a", "c"]);
    assert_eq!(resolve("super::Thing", &from_b, &modules), ["a"]);
    assert_eq!(resolve("super::d", &from_a, &modules), ["d"], "super from a/mod.rs is a's parent");
    assert_eq!(resolve("crate::a::b::nested::f", &from_a, &modules), ["a", "b"]);
    let code = code_outside_tests("use crate::d;\n// crate::a\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n");
    assert_eq!(crate_paths(&code), ["crate::d"]);
}

#[test]
fn no_two_files_in_src_import_each_other() {
    let graph = imports();
    let imports = |from: &[&str], to: &[&str]| {
        graph
            .get(&from.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .is_some_and(|t| t.contains(&to.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
    };
    // The reader sees imports at all: two that are known to be there.
    assert!(imports(&["domain", "verify_key"], &["domain", "verify"]), "{graph:?}");
    assert!(imports(&["store", "items"], &["store", "records"]), "{graph:?}");
    let circles: Vec<String> = graph
        .iter()
        .flat_map(|(from, targets)| targets.iter().map(move |to| (from, to)))
        .filter(|(from, to)| from < to && graph.get(*to).is_some_and(|back| back.contains(*from)))
        .map(|(from, to)| format!("{} <-> {}", file_name(from), file_name(to)))
        .collect();
    assert!(circles.is_empty(), "files that import each other: {circles:#?}");
}

#[test]
fn nothing_in_src_imports_upward() {
    let forbidden = |from: &ModulePath, to: &ModulePath| -> bool {
        let (Some(from_layer), Some(to_layer)) = (from.first(), to.first()) else { return false };
        match from_layer.as_str() {
            "model" => ["domain", "store", "entry", "settings"].contains(&to_layer.as_str()),
            // Of the store, only its traits module (`store/mod.rs`), never the adapter's files.
            "domain" => to_layer == "entry" || (to_layer == "store" && to.len() > 1),
            "store" => ["domain", "entry"].contains(&to_layer.as_str()),
            "settings" => ["domain", "store", "entry"].contains(&to_layer.as_str()),
            _ => false,
        }
    };
    let upward: Vec<String> = imports()
        .iter()
        .flat_map(|(from, targets)| targets.iter().map(move |to| (from, to)))
        .filter(|(from, to)| forbidden(from, to))
        .map(|(from, to)| format!("{} -> {}", file_name(from), file_name(to)))
        .collect();
    assert!(upward.is_empty(), "imports against the layers: {upward:#?}");
}
