//! The collector's layers, bottom first, as `lib.rs` and ARCHITECTURE.md list them: a module
//! may name (`crate::...`) only its own layer and those below. Test modules (`#[cfg(test)] mod
//! ... { }`) and comments are left out; `crate::{a, b}` groups are refused so every path is
//! seen.

use std::path::{Path, PathBuf};

const LAYERS: &[&str] = &[
    "model", "store", "parse", "ledger", "charge", "snapshot", "families", "source", "poller",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments, string contents and `#[cfg(test)] mod x { ... }`.
fn code_of(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            // A quote as a char literal (`b'"'`) opens no string.
            '\'' if chars.peek() == Some(&'"') => {
                out.push(c);
                out.push(chars.next().unwrap_or('"'));
            }
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    // Drop test modules by brace matching (their braces are balanced once strings are gone).
    let mut code = out;
    while let Some(at) = code
        .find("#[cfg(test)]\nmod ")
        .or_else(|| code.find("#[cfg(test)]\npub(crate) mod "))
    {
        let Some(open) = code[at..].find('{').map(|i| at + i) else {
            break;
        };
        let mut depth = 0usize;
        let mut end = code.len();
        for (i, b) in code.bytes().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        code.replace_range(at..end, "");
    }
    code
}

#[test]
fn every_module_names_only_its_layer_and_those_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs"))
            .unwrap_or_default();
        if top == "lib" {
            continue;
        }
        let own = LAYERS
            .iter()
            .position(|l| *l == top)
            .unwrap_or_else(|| panic!("{}: a module outside the layers", rel.display()));
        let code = code_of(&std::fs::read_to_string(f).expect("readable"));
        for (at, _) in code.match_indices("crate::") {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let rest = &code[at + "crate::".len()..];
            assert!(
                !rest.starts_with('{'),
                "{}: write one `use crate::layer::...` per layer",
                rel.display()
            );
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let Some(layer) = LAYERS.iter().position(|l| *l == name) else {
                continue;
            };
            checked += 1;
            if layer > own {
                wrong.push(format!("{} ({top}) uses crate::{name}", rel.display()));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} paths seen: the scan is broken"
    );
    assert!(
        wrong.is_empty(),
        "imports pointing up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_sees_an_upward_path_and_skips_tests_and_comments() {
    let src = "use crate::poller::x;\n// crate::poller in a comment\nlet s = \"crate::poller\";\n\
               let q = b'\"'; let r = crate::poller::z;\n\
               #[cfg(test)]\nmod tests {\n    use crate::poller::y;\n    fn f() { if a { b } }\n}\n";
    let code = code_of(src);
    assert_eq!(code.matches("crate::poller").count(), 2, "{code}");
    assert!(code.contains("use crate::poller::x;"));
}
