//! The house rules: which top-level parts of the host may use which. Reads
//! every `crate::` path in `host/src` (imports and inline paths alike) and
//! fails, naming the file, when a rule is broken or two parts depend on
//! each other. `docs/architecture.md` draws the same arrows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The plugin runtime's parts: the engine and chain, its contract, and
/// the host's implementations of the contract's imports.
const RUNTIME: &[&str] = &["plugins", "contract", "capabilities"];

/// A part and the parts it must never use, with why.
struct Rule {
    part: &'static str,
    never: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        part: "event",
        never: &["*"],
        why: "the neutral core is what every part speaks; it speaks nothing else",
    },
    Rule {
        part: "store",
        never: &["*"],
        why: "the store is a connection pool and a schema version; what the tables mean \
              belongs to the archive and to kv",
    },
    Rule {
        part: "util",
        never: &["*"],
        why: "helpers know nothing of events, plugins or networks",
    },
    Rule {
        part: "adapters",
        never: &[
            "plugins",
            "contract",
            "capabilities",
            "archive",
            "gateway",
            "cli",
        ],
        why: "adapters reach policy only through event::Judge, so a network runs and is tested \
              without WebAssembly",
    },
    Rule {
        part: "archive",
        never: &[
            "plugins",
            "contract",
            "capabilities",
            "adapters",
            "gateway",
            "cli",
        ],
        why: "the archive owns its records and is read by tools that run no plugin",
    },
    Rule {
        part: "capabilities",
        never: &["adapters", "gateway", "cli"],
        why: "a capability serves plugins the same on every network",
    },
    Rule {
        part: "plugins",
        never: &["adapters", "gateway", "cli"],
        why: "the runtime judges events; which network they came from is not its business",
    },
    Rule {
        part: "contract",
        never: &[
            "plugins",
            "capabilities",
            "adapters",
            "archive",
            "gateway",
            "cli",
        ],
        why: "the contract is the WIT as Rust and the conversions to the neutral core, nothing more",
    },
    Rule {
        part: "gateway",
        never: &["cli"],
        why: "the gateway is a library part; the command line drives it, not the other way",
    },
];

/// `crate::x` paths in `source`, outside comments: the top-level part each
/// names first.
fn parts_used(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::b, c};`
                let inside = group.split('}').next().unwrap_or("");
                for item in inside.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        used.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        }
    }
    used
}

/// The part a source file belongs to: its first path component under `src`.
fn part_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let part = first.strip_suffix(".rs").unwrap_or(first);
    (part != "lib" && part != "main").then(|| part.to_owned())
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("host/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Part → the parts it uses, and for each edge one file that makes it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn graph_of(files: &[(String, String)]) -> Graph {
    let mut graph = Graph::new();
    for (relative, source) in files {
        let Some(part) = part_of(Path::new(relative)) else {
            continue;
        };
        let edges = graph.entry(part.clone()).or_default();
        for used in parts_used(source) {
            if used != part {
                edges.entry(used).or_insert_with(|| relative.clone());
            }
        }
    }
    graph
}

/// Every broken rule and every cycle, one line each.
fn violations(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for rule in RULES {
        let Some(edges) = graph.get(rule.part) else {
            continue;
        };
        for (used, file) in edges {
            if rule.never.contains(&"*") || rule.never.contains(&used.as_str()) {
                out.push(format!(
                    "{} uses {used} ({file}): {} must never use {}, because {}",
                    rule.part,
                    rule.part,
                    if rule.never.contains(&"*") {
                        "another part"
                    } else {
                        used.as_str()
                    },
                    rule.why
                ));
            }
        }
    }
    // Cycles: a part that reaches itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flat_map(|e| e.keys()) {
                if next == start {
                    let cycle = [path.clone(), vec![start.clone()]].concat().join(" -> ");
                    if !out.iter().any(|o| o.ends_with(&cycle)) && path.iter().min() == Some(start)
                    {
                        out.push(format!("import cycle: {cycle}"));
                    }
                } else if seen.insert(next.clone()) {
                    stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
                }
            }
        }
    }
    out
}

#[test]
fn the_host_keeps_its_house_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    sources(&src, &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let relative = p.strip_prefix(&src).expect("under src");
            (
                relative.display().to_string(),
                std::fs::read_to_string(p).expect("a readable source file"),
            )
        })
        .collect();
    let graph = graph_of(&files);
    for part in RUNTIME {
        assert!(
            graph.contains_key(*part),
            "no part named {part}: update the rules"
        );
    }
    for rule in RULES {
        assert!(
            graph.contains_key(rule.part),
            "a rule names {}, which no longer exists",
            rule.part
        );
    }
    let broken = violations(&graph);
    assert!(broken.is_empty(), "\n{}", broken.join("\n"));
}

#[test]
fn a_forbidden_import_or_a_cycle_is_caught() {
    let files = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(f, s)| (f.to_string(), s.to_string()))
            .collect()
    };
    // An adapter reaching into the runtime.
    let graph = graph_of(&files(&[(
        "adapters/irc/session.rs",
        "use crate::event::Action;\nuse crate::plugins::LiveChain;",
    )]));
    let broken = violations(&graph);
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].starts_with("adapters uses plugins (adapters/irc/session.rs)"));
    // The archive through a grouped import and an inline path.
    let graph = graph_of(&files(&[(
        "archive/writer.rs",
        "use crate::{event::now_ms, capabilities::Grants};\nlet x = crate::contract::CONTRACT_VERSION;",
    )]));
    assert_eq!(violations(&graph).len(), 2, "{:?}", violations(&graph));
    // Comments do not count.
    let graph = graph_of(&files(&[("adapters/mod.rs", "// see crate::plugins\n")]));
    assert!(violations(&graph).is_empty());
    // Two parts that use each other.
    let graph = graph_of(&files(&[
        ("tls.rs", "use crate::signing::x;"),
        ("signing.rs", "use crate::tls::y;"),
    ]));
    assert_eq!(
        violations(&graph),
        ["import cycle: signing -> tls -> signing"]
    );
}
