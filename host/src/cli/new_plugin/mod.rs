//! `imgate plugin new`: a plugin project that builds as it stands, in Rust,
//! Python or JavaScript, for the contract this binary implements.
//!
//! The templates are files beside this one, compiled in. Two markers make
//! them fit the request: `{{key}}` is replaced (the name, the paths to this
//! checkout, the grants…), and lines between `@@if COND` and `@@end` are
//! kept only when COND holds (a capability, a role, a language; `!COND`
//! negates).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::capabilities::Capability;
use crate::contract::CONTRACT_VERSION;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Takes part in the chain (`handle`).
    #[default]
    Policy,
    /// Sees each event's final outcome (`observe`).
    Observer,
    /// Both.
    Both,
}

impl Role {
    fn world(self) -> &'static str {
        match self {
            Role::Policy => "policy",
            Role::Observer => "observer-plugin",
            Role::Both => "policy-observer",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Role::Policy => "a policy",
            Role::Observer => "an observer",
            Role::Both => "a policy and an observer",
        }
    }
}

/// What `imgate plugin new` was asked for.
pub struct Request {
    pub name: String,
    pub lang: Lang,
    pub role: Role,
    /// `None`: the default (`match` for a policy, nothing for an observer).
    pub capabilities: Option<Vec<Capability>>,
    pub dir: Option<PathBuf>,
    pub sdk: Option<PathBuf>,
}

/// `--capabilities`: names, each once, in the contract's order; `none`
/// is the empty list.
pub fn capabilities(names: &[String]) -> Result<Vec<Capability>, String> {
    let mut caps = Vec::new();
    for name in names.iter().map(|n| n.trim()) {
        if name.is_empty() || name == "none" {
            continue;
        }
        let cap: Capability = name.parse()?;
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    caps.sort();
    Ok(caps)
}

/// The contract's files, vendored into Python and JavaScript projects.
const CONTRACT: [(&str, &str); 3] = [
    ("types.wit", include_str!("../../../../wit/types.wit")),
    ("host.wit", include_str!("../../../../wit/host.wit")),
    ("plugin.wit", include_str!("../../../../wit/plugin.wit")),
];

/// Which checkout's SDK and docs a project points at: `--sdk`, else the
/// one this binary was built from, if it is still there.
fn checkout_sdk(given: Option<&Path>) -> Option<PathBuf> {
    let candidate = match given {
        Some(p) => p.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
    };
    candidate
        .join("Cargo.toml")
        .exists()
        .then(|| std::fs::canonicalize(&candidate).unwrap_or(candidate))
}

/// A name usable as a crate, a WIT package and world, and a file name:
/// kebab-case words, each starting with a letter.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.split('-').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a plugin name: use lower-case words of letters and digits joined by `-`, each starting with a letter (link-guard, dlp2)"
        ))
    }
}

/// Keeps the lines whose `@@if` conditions hold, then fills in `{{key}}`s.
fn render(template: &str, conditions: &[&str], values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut stack: Vec<bool> = Vec::new();
    for line in template.lines() {
        let trimmed = line.trim_start();
        if let Some(cond) = trimmed.strip_prefix("@@if ") {
            let cond = cond.trim();
            let holds = match cond.strip_prefix('!') {
                Some(c) => !conditions.contains(&c),
                None => conditions.contains(&cond),
            };
            stack.push(holds);
            continue;
        }
        if trimmed == "@@end" {
            stack.pop();
            continue;
        }
        if stack.iter().all(|&b| b) {
            out.push_str(line);
            out.push('\n');
        }
    }
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The project's files: path (relative) and contents.
fn files(request: &Request, sdk: &Path, imgate: &Path) -> Vec<(PathBuf, String)> {
    let name = request.name.as_str();
    let caps: Vec<Capability> = match &request.capabilities {
        Some(c) => c.clone(),
        None if request.role == Role::Observer => Vec::new(),
        None => vec![Capability::Match],
    };
    let mut conditions: Vec<&str> = caps.iter().map(|c| c.name()).collect();
    conditions.push(match request.lang {
        Lang::Rust => "rust",
        Lang::Python => "python",
        Lang::Js => "js",
    });
    if request.role != Role::Observer {
        conditions.push("policy");
    }
    if request.role != Role::Policy {
        conditions.push("observer");
    }
    let krate = name.replace('-', "_");
    let wasm = match request.lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{krate}.wasm"),
        Lang::Python | Lang::Js => format!("{name}.wasm"),
    };
    let grants: Vec<String> = caps.iter().map(|c| format!("\"{}\"", c.name())).collect();
    let caps_words = if caps.is_empty() {
        "none".to_owned()
    } else {
        caps.iter()
            .map(|c| format!("`{}`", c.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let docs = sdk.join("../docs");
    let docs = std::fs::canonicalize(&docs).unwrap_or(docs);
    let values: BTreeMap<&str, String> = [
        ("name", name.to_owned()),
        ("Type", camel(name)),
        ("crate", krate),
        ("ns", name.to_owned()),
        ("sdk", sdk.display().to_string()),
        ("docs", docs.display().to_string()),
        ("imgate", imgate.display().to_string()),
        ("contract", CONTRACT_VERSION.to_owned()),
        ("role_world", request.role.world().to_owned()),
        ("role_words", request.role.words().to_owned()),
        ("wasm", wasm),
        ("grants", format!("[{}]", grants.join(", "))),
        ("caps_words", caps_words),
        (
            "export",
            match request.role {
                Role::Policy => camel(name),
                Role::Observer => format!("{}, observer", camel(name)),
                Role::Both => format!("{}, policy, observer", camel(name)),
            },
        ),
    ]
    .into_iter()
    .collect();
    let r = |template: &str| render(template, &conditions, &values);
    let mut out = vec![
        (
            PathBuf::from("imgate.toml"),
            r(include_str!("common/imgate.toml")),
        ),
        (
            PathBuf::from("transcript.jsonl"),
            r(include_str!("common/transcript.jsonl")),
        ),
        (
            PathBuf::from("README.md"),
            r(include_str!("common/README.md")),
        ),
        (
            PathBuf::from(".gitignore"),
            r(include_str!("common/gitignore")),
        ),
    ];
    match request.lang {
        Lang::Rust => {
            out.push((
                PathBuf::from("Cargo.toml"),
                r(include_str!("rust/Cargo.toml")),
            ));
            out.push((PathBuf::from("src/lib.rs"), r(include_str!("rust/lib.rs"))));
            out.push((PathBuf::from("Makefile"), r(include_str!("rust/Makefile"))));
        }
        Lang::Python | Lang::Js => {
            out.push((
                PathBuf::from("wit/world.wit"),
                r(include_str!("common/world.wit")),
            ));
            for (file, text) in CONTRACT {
                out.push((
                    Path::new("wit/deps/imgate-policy").join(file),
                    text.to_owned(),
                ));
            }
            if request.lang == Lang::Python {
                out.push((PathBuf::from("app.py"), r(include_str!("python/app.py"))));
                out.push((
                    PathBuf::from("Makefile"),
                    r(include_str!("python/Makefile")),
                ));
            } else {
                out.push((
                    PathBuf::from(format!("{name}.js")),
                    r(include_str!("js/plugin.js")),
                ));
                out.push((
                    PathBuf::from("package.json"),
                    r(include_str!("js/package.json")),
                ));
                out.push((PathBuf::from(".npmrc"), r(include_str!("js/npmrc"))));
                out.push((PathBuf::from("Makefile"), r(include_str!("js/Makefile"))));
            }
        }
    }
    out
}

pub fn run(request: &Request) -> anyhow::Result<ExitCode> {
    if let Err(e) = check_name(&request.name) {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(2));
    }
    let Some(sdk) = checkout_sdk(request.sdk.as_deref()) else {
        eprintln!(
            "error: no imgate SDK at {}: pass --sdk with the sdk/ directory of an imgate checkout",
            request
                .sdk
                .clone()
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"))
                .display()
        );
        return Ok(ExitCode::from(2));
    };
    let dir = request
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&request.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        eprintln!(
            "error: {} exists and is not empty; choose another --dir",
            dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    let imgate = std::env::current_exe().context("cannot find this imgate binary")?;
    for (path, text) in files(request, &sdk, &imgate) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote {} ({:?}, {}, imgate:policy@{CONTRACT_VERSION})\nnext: cd {} && make test   (README.md has the rest, down to shipping it)",
        dir.display(),
        request.lang,
        request.role.words(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        [("name", "x".to_owned())].into_iter().collect()
    }

    #[test]
    fn conditions_keep_and_drop_lines() {
        let t =
            "a {{name}}\n@@if kv\nkv\n@@if !log\nno log\n@@end\n@@end\n@@if log\nlog\n@@end\nz\n";
        assert_eq!(render(t, &["kv"], &values()), "a x\nkv\nno log\nz\n");
        assert_eq!(render(t, &["log"], &values()), "a x\nlog\nz\n");
    }

    #[test]
    fn capabilities_are_named_once_in_order() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            capabilities(&names(&["match", "kv", "match", " log"])),
            Ok(vec![Capability::Log, Capability::Kv, Capability::Match])
        );
        assert_eq!(capabilities(&names(&["none"])), Ok(vec![]));
        assert!(
            capabilities(&names(&["files"]))
                .unwrap_err()
                .contains("files")
        );
    }

    #[test]
    fn names_are_kebab_case_words() {
        assert!(check_name("link-guard").is_ok());
        assert!(check_name("dlp2").is_ok());
        for bad in ["", "Link", "link_guard", "-x", "x-", "2x", "x--y", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(camel("link-guard"), "LinkGuard");
    }

    #[test]
    fn every_language_gets_its_files_with_the_grants_asked_for() {
        let sdk = Path::new("/sdk");
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let request = Request {
                name: "link-guard".into(),
                lang,
                role: Role::Both,
                capabilities: Some(vec![Capability::Kv, Capability::Match]),
                dir: None,
                sdk: None,
            };
            let files = files(&request, sdk, Path::new("/bin/imgate"));
            let get = |p: &str| {
                files
                    .iter()
                    .find(|(path, _)| path == Path::new(p))
                    .map(|(_, t)| t.as_str())
                    .unwrap_or_else(|| panic!("{lang:?}: no {p}"))
            };
            assert!(get("imgate.toml").contains("grants = [\"kv\", \"match\"]"));
            assert!(!get("transcript.jsonl").contains("@@"));
            if lang != Lang::Rust {
                let world = get("wit/world.wit");
                assert!(world.contains("include imgate:policy/policy-observer@"));
                assert!(world.contains("import imgate:policy/kv@") && world.contains("/match@"));
                assert!(!world.contains("/log@"), "{world}");
                assert!(get("wit/deps/imgate-policy/host.wit").contains("interface match"));
            }
            for (path, text) in &files {
                assert!(
                    !text.contains("{{") && !text.contains("@@"),
                    "{lang:?} {}",
                    path.display()
                );
            }
        }
    }
}
