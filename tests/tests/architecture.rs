//! The shape of the code, checked like any behaviour (DESIGN.md house style 11 and 12):
//! inside every crate, imports point one way (no module imports one that imports it back,
//! directly or around a circle), and no source file outside tests grows past 1,500 lines.
//!
//! A module is a file (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`). An edge is any path
//! a file names through `crate::` or `super::` in code (use trees expanded, comments,
//! strings and `#[cfg(test)]` items left out), resolved to the longest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1_500;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let crates = workspace_crates(workspace());
    assert!(
        crates.iter().any(|c| c.ends_with("collector"))
            && crates.iter().any(|c| c.ends_with("gateway")),
        "the check must see the product crates, saw {crates:?}"
    );
    let mut report = Vec::new();
    for krate in &crates {
        let graph = module_graph(krate);
        assert!(!graph.is_empty(), "no modules read in {}", krate.display());
        for cycle in find_cycles(&graph) {
            report.push(format!("{}: {}", krate.display(), cycle.join(" -> ")));
        }
    }
    assert!(
        report.is_empty(),
        "module cycles (each module must import only modules below it):\n{}",
        report.join("\n")
    );
}

#[test]
fn no_source_file_is_over_1500_lines() {
    let mut long = Vec::new();
    for krate in workspace_crates(workspace()) {
        for file in source_files(&krate.join("src")) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let lines = text.lines().count();
            if lines > MAX_LINES {
                long.push(format!("{} has {lines} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "source files over {MAX_LINES} lines (split them by concern):\n{}",
        long.join("\n")
    );
}

/// The checker itself must find what it exists to find.
#[test]
fn the_checker_finds_a_cycle_through_use_trees_and_super() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod c;\n").expect("write");
    std::fs::write(
        src.join("a/mod.rs"),
        "pub mod b;\nuse crate::{c::{X, Y}};\n",
    )
    .expect("write");
    std::fs::write(
        src.join("a/b.rs"),
        "// use crate::c; (a comment is not an edge)\nconst S: &str = \"crate::c\";\nuse super::Z;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("c.rs"),
        "pub fn f() { crate::a::b::g() }\n#[cfg(test)]\nmod tests { use crate::a; }\n",
    )
    .expect("write");
    let graph = module_graph(dir.path());
    let cycles = find_cycles(&graph);
    assert_eq!(cycles.len(), 1, "{cycles:?} in {graph:?}");
    let cycle = &cycles[0];
    for m in ["a", "a::b", "c"] {
        assert!(cycle.iter().any(|x| x == m), "{m} missing from {cycle:?}");
    }
    // Without the inline path in c.rs there is no cycle: a -> c, a::b -> a only.
    std::fs::write(src.join("c.rs"), "pub fn f() {}\n").expect("write");
    assert!(find_cycles(&module_graph(dir.path())).is_empty());
}

/// The product crates: every workspace folder with a `Cargo.toml` and a `src/`, less the
/// end-to-end crate (`tests/`, test code itself) and `fuzz/`.
fn workspace_crates(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        p.join("Cargo.toml").is_file()
            && p.join("src").is_dir()
            && !matches!(name, "tests" | "fuzz" | "target")
    });
    out.sort();
    out
}

fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module path of a file below `src/`; `None` for the crate roots (the façade that
/// declares and re-exports modules, left out of the graph) and `src/bin/`.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.first().is_some_and(|s| s == "bin") || segs == ["lib"] || segs == ["main"] {
        return None;
    }
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    Some(segs)
}

fn module_graph(krate: &Path) -> Graph {
    let src = krate.join("src");
    let files: Vec<(Vec<String>, PathBuf)> = source_files(&src)
        .into_iter()
        .filter_map(|f| Some((module_of(&src, &f)?, f)))
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut test_modules = BTreeSet::new();
    let mut graph = Graph::new();
    let mut edges = Vec::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let (code, test_children) = strip_test_items(&clean(&text));
        for child in test_children {
            let mut m = module.clone();
            m.push(child);
            test_modules.insert(m);
        }
        graph.entry(module.join("::")).or_default();
        for path in paths_named(&code) {
            if let Some(target) = resolve(module, &path, &modules) {
                if &target != module && !target.is_empty() {
                    edges.push((module.clone(), target));
                }
            }
        }
    }
    for (from, to) in edges {
        let inside_test = |m: &Vec<String>| test_modules.iter().any(|t| m.starts_with(t));
        if !inside_test(&from) && !inside_test(&to) {
            graph
                .entry(from.join("::"))
                .or_default()
                .insert(to.join("::"));
        }
    }
    graph.retain(|m, _| !test_modules.iter().any(|t| m.starts_with(&t.join("::"))));
    graph
}

/// Resolves a path named in `module` to the longest known module it names.
fn resolve(
    module: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut base: Vec<String>;
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            rest = &path[1..];
        }
        Some("self") => {
            base = module.to_vec();
            rest = &path[1..];
        }
        Some("super") => {
            base = module.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A relative path starting with a child module of this one (`use jwt::X` in a mod.rs).
            let mut child = module.to_vec();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
            base = module.to_vec();
        }
        None => return None,
    }
    let mut best = if base.is_empty() {
        None
    } else {
        Some(base.clone())
    };
    for seg in rest {
        base.push(seg.clone());
        if modules.contains(&base) {
            best = Some(base.clone());
        } else {
            break;
        }
    }
    best.or(Some(Vec::new()))
}

/// Every path the code names: use trees expanded, and inline `a::b::c` paths.
fn paths_named(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut rest = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if is_word_at(&bytes, i, "use") {
            let start = i + 3;
            let mut j = start;
            while j < bytes.len() && bytes[j] != ';' {
                j += 1;
            }
            let tree: String = bytes[start..j.min(bytes.len())].iter().collect();
            expand_use(&tree, &mut Vec::new(), &mut out);
            i = j + 1;
            rest.push(' ');
            continue;
        }
        rest.push(bytes[i]);
        i += 1;
    }
    // Inline paths: identifiers joined by `::`, where the first is lowercase.
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let boundary = i == 0
            || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if boundary && (c.is_ascii_lowercase() || c == '_') {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                segs.push(chars[s..j].iter().collect::<String>());
                let mut k = j;
                while k < chars.len() && chars[k].is_whitespace() {
                    k += 1;
                }
                if k + 1 < chars.len() && chars[k] == ':' && chars[k + 1] == ':' {
                    k += 2;
                    while k < chars.len() && chars[k].is_whitespace() {
                        k += 1;
                    }
                    if k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_') {
                        j = k;
                        continue;
                    }
                }
                break;
            }
            if segs.len() > 1 {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn is_word_at(s: &[char], i: usize, word: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    s.len() >= i + w.len()
        && s[i..i + w.len()] == w[..]
        && (i == 0 || !(s[i - 1].is_alphanumeric() || s[i - 1] == '_'))
        && s.get(i + w.len()).is_some_and(|c| c.is_whitespace())
}

/// Expands a use tree (`crate::{a::X, b::{self, Y}}`) into its full paths.
fn expand_use(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim().trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let head = &tree[..open];
        let close = tree.rfind('}').unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let n = prefix.len();
        prefix.extend(
            head.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&inner[start..k], prefix, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand_use(&inner[start..], prefix, out);
        prefix.truncate(n);
        return;
    }
    let path = tree.split(" as ").next().unwrap_or("");
    let mut full = prefix.clone();
    for seg in path
        .split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
    {
        if seg == "self" && !full.is_empty() {
            continue;
        }
        full.push(seg.to_string());
    }
    if !full.is_empty() {
        out.push(full);
    }
}

/// Source without comments, string and char literals (their text is not an import).
fn clean(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            'r' if (c.get(i + 1) == Some(&'"') || c.get(i + 1) == Some(&'#'))
                && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) != Some(&'"') {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                'raw: while j < c.len() {
                    if c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break 'raw;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            '\'' if c.get(i + 1) == Some(&'\\') => {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            '\'' if c.get(i + 2) == Some(&'\'') => {
                i += 3;
                out.push_str("' '");
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// Drops every item under `#[cfg(test)]`; returns the code and the names of out-of-line
/// test modules (`#[cfg(test)] mod tests;`).
fn strip_test_items(code: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut children = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(ATTR) {
        out.push_str(&rest[..at]);
        let item = &rest[at + ATTR.len()..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (k, ch) in item.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = k + 1;
                    break;
                }
                _ => {}
            }
        }
        let head = item[..end].trim();
        if let Some(name) = head
            .strip_prefix("mod ")
            .or_else(|| head.strip_prefix("pub mod "))
        {
            if let Some(name) = name.strip_suffix(';') {
                children.push(name.trim().to_string());
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, children)
}

/// The strongly connected components of more than one module (Tarjan), each listed with
/// the edges that close it.
fn find_cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct St<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut St<'a>, v: &'a str) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on.insert(v);
        if let Some(ws) = st.g.get(v) {
            for w in ws {
                let w = w.as_str();
                if !st.index.contains_key(w) {
                    visit(st, w);
                    let lw = st.low[w];
                    let lv = st.low[v];
                    st.low.insert(v, lv.min(lw));
                } else if st.on.contains(w) {
                    let iw = st.index[w];
                    let lv = st.low[v];
                    st.low.insert(v, lv.min(iw));
                }
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                let set: BTreeSet<&str> = comp.iter().copied().collect();
                let mut desc: Vec<String> = Vec::new();
                for m in &comp {
                    for t in st.g.get(*m).into_iter().flatten() {
                        if set.contains(t.as_str()) {
                            desc.push(format!("{m} => {t}"));
                        }
                    }
                }
                let mut names: Vec<String> = comp.iter().map(|s| s.to_string()).collect();
                names.push(format!("[{}]", desc.join(", ")));
                st.out.push(names);
            }
        }
    }
    let mut st = St {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !st.index.contains_key(v.as_str()) {
            visit(&mut st, v);
        }
    }
    st.out
}
