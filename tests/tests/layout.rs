//! The codebase's shape, checked on every test run: no two modules of a crate import each other in a
//! circle (each crate reads top-down: a module builds on the ones below it), and no source file of the
//! service (`shared/`, `functions/`) is over 400 lines, its tests aside.
//!
//! The import graph is read from the source, as `cargo-modules`' acyclic check reads it, but without
//! building the rust-analyzer crates it needs (minutes of the test command's 20): a module imports
//! another when it names it through `crate::…` (directly, in a `use` group, or through a re-export
//! of the crate root) or through `super::`. A module and its own submodules are one unit (a long
//! module split into files whose parts `use super::*`): edges run between a crate's top-level
//! modules, so a submodule's import of another module is its unit's.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The crates whose modules are checked: every `src` of the workspace's members.
fn crate_sources() -> Vec<PathBuf> {
    let root = workspace();
    let mut sources = Vec::new();
    for group in ["shared", "functions", "infra", "infra/bench/baselines", "."] {
        let Ok(entries) = fs::read_dir(root.join(group)) else { continue };
        for entry in entries.flatten() {
            let src = entry.path().join("src");
            if src.is_dir() && entry.path().join("Cargo.toml").is_file() {
                sources.push(src);
            }
        }
    }
    sources.sort();
    sources.dedup();
    sources
}

/// Every `.rs` file under `dir`, but test-only files (`tests.rs`, anything under a `tests/` folder).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "tests" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The source without comments and without `#[cfg(test)]` items (a test module or function).
fn without_tests(source: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut skipping = false;
    let mut depth = 0i64;
    let mut opened = false;
    for line in source.lines() {
        let mut code = line.split("//").next().unwrap_or("").to_owned();
        if !skipping && let Some(rest) = code.trim_start().strip_prefix("#[cfg(test)]") {
            (skipping, depth, opened) = (true, 0, false);
            // The item may start on the attribute's own line (`#[cfg(test)] mod tests;`).
            code = rest.to_owned();
            if code.trim().is_empty() {
                continue;
            }
        }
        if skipping {
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            opened |= code.contains('{');
            if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                skipping = false;
            }
            continue;
        }
        if !line.trim_start().starts_with("//") {
            lines.push(code);
        }
    }
    lines
}

/// A module's path in its crate: `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` the root.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

fn idents(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|s| !s.is_empty())
}

/// The first path segments named after each `prefix` (`crate::`, `super::`) in `code`, with each
/// member of a `{…}` group taken as a path of its own (`crate::{a::X, b::{Y, Z}}` names `a` and `b`).
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = &code[..at];
        let rest = &code[at + prefix.len()..];
        if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') || before.ends_with("::") {
            continue; // `somecrate::` is not `crate::`, and `super::super::` is read once, whole
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += i32::from(c == '{') - i32::from(c == '}');
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut member = String::new();
            let mut level = 0;
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => level += 1,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        let segments: Vec<String> =
                            member.split("::").map(|s| s.trim().to_owned()).take_while(|s| !s.contains('{')).collect();
                        if segments.first().is_some_and(|s| !s.is_empty() && s != "self") {
                            paths.push(segments);
                        }
                        member.clear();
                        continue;
                    }
                    _ => {}
                }
                member.push(c);
            }
        } else {
            let mut path = Vec::new();
            for segment in rest.split("::") {
                let ident: String = segment.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let whole = !ident.is_empty() && ident.len() == segment.len();
                if ident.is_empty() {
                    break;
                }
                path.push(ident);
                if !whole {
                    break;
                }
            }
            if !path.is_empty() {
                paths.push(path);
            }
        }
    }
    paths
}

struct Crate {
    src: PathBuf,
    /// Module → the modules it imports.
    imports: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// The longest module of `modules` that `path` starts with, or `None` for the crate root's own items.
fn resolve(path: &[String], modules: &BTreeSet<String>, reexports: &BTreeMap<String, String>) -> Option<String> {
    let mut best = None;
    for len in 1..=path.len() {
        let candidate = path[..len].join("::");
        if modules.contains(&candidate) {
            best = Some(candidate);
        }
    }
    best.or_else(|| reexports.get(&path[0]).cloned())
}

fn read_crate(src: &Path) -> Crate {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).filter(|m| !m.is_empty()).collect();
    // Names the crate root re-exports from a module (`pub use module::{A, B}`), so `crate::A` is `module`.
    let mut reexports = BTreeMap::new();
    for root in ["lib.rs", "main.rs"] {
        let Ok(source) = fs::read_to_string(src.join(root)) else { continue };
        for statement in without_tests(&source).join("\n").split(';') {
            let statement = statement.trim();
            let used = ["pub use ", "pub(crate) use ", "use "].iter().find_map(|p| statement.strip_prefix(p));
            let Some(used) = used else { continue };
            let paths = paths_after(&format!("crate::{}", used.trim_start_matches("crate::")), "crate::");
            for path in paths {
                if let Some(module) = resolve(&path, &modules, &BTreeMap::new()) {
                    let names: Vec<&str> = idents(statement.rsplit("::").next().unwrap_or("")).collect();
                    for name in names.into_iter().chain(path.last().map(String::as_str)) {
                        reexports.insert(name.to_owned(), module.clone());
                    }
                }
            }
        }
    }
    let mut imports: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        if module.is_empty() {
            continue;
        }
        let code = without_tests(&fs::read_to_string(file).unwrap()).join("\n");
        let mut named: Vec<Vec<String>> = paths_after(&code, "crate::");
        for path in paths_after(&code, "super::") {
            // `super::` (and `super::super::`…) from this module, as a path from the crate root.
            let ups = 1 + path.iter().take_while(|s| *s == "super").count();
            let mut full: Vec<String> = module.split("::").map(str::to_owned).collect();
            full.truncate(full.len().saturating_sub(ups));
            full.extend(path.into_iter().skip(ups - 1));
            named.push(full);
        }
        // A module and its submodules are one unit: edges run between top-level modules.
        let unit = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
        for path in named.into_iter().filter(|p| !p.is_empty()) {
            let Some(target) = resolve(&path, &modules, &reexports) else { continue };
            let (from, to) = (unit(&module), unit(&target));
            if from != to {
                imports.entry(from).or_default().entry(to).or_default().insert(path.join("::"));
            }
        }
    }
    Crate { src: src.to_path_buf(), imports }
}

/// The circles of `imports`: each strongly connected set of more than one module (Tarjan).
fn circles(imports: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        imports: &'a BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, module: &'a str) {
            let n = self.index.len();
            self.index.insert(module, n);
            self.low.insert(module, n);
            self.stack.push(module);
            self.on_stack.insert(module);
            for target in self.imports.get(module).into_iter().flat_map(|t| t.keys()) {
                if !self.index.contains_key(target.as_str()) {
                    self.visit(target);
                    let low = self.low[target.as_str()].min(self.low[module]);
                    self.low.insert(module, low);
                } else if self.on_stack.contains(target.as_str()) {
                    let low = self.index[target.as_str()].min(self.low[module]);
                    self.low.insert(module, low);
                }
            }
            if self.low[module] == self.index[module] {
                let mut members = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    members.push(top.to_owned());
                    if top == module {
                        break;
                    }
                }
                if members.len() > 1 {
                    members.sort();
                    self.found.push(members);
                }
            }
        }
    }
    let mut walk = Walk {
        imports,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for module in imports.keys() {
        if !walk.index.contains_key(module.as_str()) {
            walk.visit(module);
        }
    }
    walk.found
}

#[test]
fn no_two_modules_of_a_crate_import_each_other_in_a_circle() {
    let mut problems = Vec::new();
    let sources = crate_sources();
    assert!(sources.len() > 20, "the workspace's crates were found: {sources:?}");
    for src in sources {
        let krate = read_crate(&src);
        for circle in circles(&krate.imports) {
            let ties: Vec<String> = circle
                .iter()
                .flat_map(|from| {
                    krate.imports[from]
                        .iter()
                        .filter(|(to, _)| circle.contains(to))
                        .map(move |(to, names)| format!("    {from} -> {to}: {names:?}"))
                })
                .collect();
            problems.push(format!("{}: {}\n{}", krate.src.display(), circle.join(", "), ties.join("\n")));
        }
    }
    assert!(problems.is_empty(), "modules that import each other in a circle:\n{}", problems.join("\n"));
}

/// The checker itself: a circle through a `use` group and a re-export is found; a parent and its
/// submodule are one unit.
#[test]
fn the_circle_check_reads_groups_reexports_and_parents() {
    let paths = paths_after("use crate::{dynamo::{Item, s}, records::Record, Store};", "crate::");
    let expected: [Vec<String>; 3] =
        [vec!["dynamo".into()], vec!["records".into(), "Record".into()], vec!["Store".into()]];
    assert_eq!(paths, expected);
    let imports = BTreeMap::from([
        ("a".to_owned(), BTreeMap::from([("b".to_owned(), BTreeSet::new())])),
        ("b".to_owned(), BTreeMap::from([("c".to_owned(), BTreeSet::new())])),
        ("c".to_owned(), BTreeMap::from([("a".to_owned(), BTreeSet::new())])),
        ("d".to_owned(), BTreeMap::from([("a".to_owned(), BTreeSet::new())])),
    ]);
    assert_eq!(circles(&imports), [vec!["a".to_owned(), "b".into(), "c".into()]]);
    let code = without_tests("use crate::a::X;\n#[cfg(test)]\nmod tests {\n    use crate::b::Y;\n}\n// crate::c\n");
    assert_eq!(paths_after(&code.join("\n"), "crate::"), [vec!["a".to_owned(), "X".into()]]);
    let code = without_tests("#[cfg(test)] mod tests;\nuse crate::d::Z;\n");
    assert_eq!(paths_after(&code.join("\n"), "crate::"), [vec!["d".to_owned(), "Z".into()]]);
    assert_eq!(paths_after("use super::super::e::W;", "super::"), [vec!["super".to_owned(), "e".into(), "W".into()]]);
}

/// A circle through a submodule (`b/c.rs` imports `a`, `a` imports `b`) or through `super::` from a
/// top-level module is a circle of the top-level modules.
#[test]
fn the_circle_check_reads_submodules_as_their_modules() {
    let src = std::env::temp_dir().join(format!("layout-check-{}", std::process::id())).join("src");
    fs::create_dir_all(src.join("b")).unwrap();
    let files = [
        ("lib.rs", "mod a;\nmod b;\nmod d;\npub use d::Z;\n"),
        ("a.rs", "use crate::b::Y;\n"),
        ("b.rs", "mod c;\npub struct Y;\n"),
        ("b/c.rs", "use crate::a::X;\n"),
        ("d.rs", "use super::b::Y;\npub struct Z;\n"),
        ("e.rs", "use crate::Z;\n"),
    ];
    for (name, text) in files {
        fs::write(src.join(name), text).unwrap();
    }
    let krate = read_crate(&src);
    assert_eq!(circles(&krate.imports), [vec!["a".to_owned(), "b".into()]]);
    assert!(krate.imports["d"].contains_key("b"), "super:: from a top-level module is the crate root");
    assert!(krate.imports["e"].contains_key("d"), "a root re-export is its module");
    fs::remove_dir_all(src.parent().unwrap()).unwrap();
}

#[test]
fn no_source_file_of_the_service_is_over_400_lines_its_tests_aside() {
    let root = workspace();
    let mut long = Vec::new();
    for group in ["shared", "functions"] {
        for src in crate_sources().into_iter().filter(|src| src.starts_with(root.join(group))) {
            for file in rust_files(&src) {
                let lines = fs::read_to_string(&file).unwrap();
                let counted = without_tests_keeping_comments(&lines);
                if counted > MAX_LINES {
                    long.push(format!("{} ({counted} lines)", file.strip_prefix(&root).unwrap().display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines, tests aside: {long:#?}");
}

/// Lines of `source` outside `#[cfg(test)]` items, comments and docs included.
fn without_tests_keeping_comments(source: &str) -> usize {
    let mut count = 0;
    let mut skipping = false;
    let mut depth = 0i64;
    let mut opened = false;
    for line in source.lines() {
        if !skipping && line.trim_start().starts_with("#[cfg(test)]") {
            (skipping, depth, opened) = (true, 0, false);
            continue;
        }
        if skipping {
            let code = line.split("//").next().unwrap_or("");
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            opened |= code.contains('{');
            if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                skipping = false;
            }
            continue;
        }
        count += 1;
    }
    count
}
