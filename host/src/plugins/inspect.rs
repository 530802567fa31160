//! What a component asks for and offers, read from its type: the contract
//! version it targets, its exports, and its imports, which are the
//! capabilities it requests. Used by `imgate plugin inspect` and by the
//! grant check at load.

use std::collections::BTreeSet;

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::capabilities::Capability;
use crate::contract::{CONTRACT_PACKAGE, CONTRACT_VERSION, v0_1};

/// A contract minor version the host carries bindings for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Line {
    #[serde(rename = "0.1")]
    V0_1,
    #[serde(rename = "0.2")]
    V0_2,
}

impl Line {
    /// The version of this line the host implements.
    pub fn implemented(self) -> &'static str {
        match self {
            Line::V0_1 => v0_1::VERSION,
            Line::V0_2 => CONTRACT_VERSION,
        }
    }

    /// The line `version` belongs to, if the host carries it: a component
    /// built against it loads (semver's rule for 0.x, the same minor, which
    /// wasmtime's linker applies when matching interface names).
    pub fn of(version: &str) -> Option<Line> {
        let mut it = version.split('.');
        let major: u64 = it.next()?.parse().ok()?;
        let minor: u64 = it.next()?.parse().ok()?;
        match (major, minor) {
            (0, 1) => Some(Line::V0_1),
            (0, 2) => Some(Line::V0_2),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "capability")]
pub enum ImportKind {
    /// A grantable host interface.
    Capability(Capability),
    /// `imgate:policy/types`: type definitions only, always available.
    Types,
    /// WASI: always linked, deny-all.
    Wasi,
    /// Something imgate does not provide; the plugin cannot load.
    Unknown,
}

#[derive(Clone, Debug, Serialize)]
pub struct Import {
    pub name: String,
    #[serde(flatten)]
    pub kind: ImportKind,
}

#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// Contract versions named by the component's imgate imports/exports.
    pub contract_versions: BTreeSet<String>,
    /// The contract exports the component offers.
    pub exports: Vec<String>,
    /// Exports outside the contract (a language runtime's build-time
    /// `init`, say). The host never calls them.
    pub ignored_exports: Vec<String>,
    pub imports: Vec<Import>,
    /// Exports `handler`: takes part in the chain.
    pub policy: bool,
    /// Exports `observer`: sees final verdicts.
    pub observer: bool,
    /// Exports `lifecycle` (init).
    pub lifecycle: bool,
    /// Exports `interest` (0.2): the kinds it wants to see.
    pub interest: bool,
}

impl Inspection {
    /// The contract line the component targets: every contract name it
    /// uses must be of one line the host carries.
    ///
    /// # Errors
    /// The versions found, when they are none, mixed, or of a line the
    /// host does not carry.
    pub fn line(&self) -> Result<Line, String> {
        let lines: BTreeSet<Option<Line>> =
            self.contract_versions.iter().map(|v| Line::of(v)).collect();
        match lines.into_iter().collect::<Vec<_>>()[..] {
            [Some(line)] => Ok(line),
            _ => Err(self
                .contract_versions
                .iter()
                .map(|v| format!("imgate:policy@{v}"))
                .collect::<Vec<_>>()
                .join(" and ")),
        }
    }

    /// Whether the component was built against a later version of its
    /// contract line than this host implements (a 0.2.3 plugin on a 0.2.0
    /// host), so it may import functions the host does not have.
    pub fn targets_newer_contract(&self) -> bool {
        let Ok(line) = self.line() else {
            return false;
        };
        let Ok(host) = semver::Version::parse(line.implemented()) else {
            return false;
        };
        self.contract_versions
            .iter()
            .filter_map(|v| semver::Version::parse(v).ok())
            .any(|v| v > host)
    }
}

/// Splits `imgate:policy/iface@1.2.3` into (`iface`, `1.2.3`).
fn contract_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

pub fn inspect(engine: &Engine, component: &Component) -> Inspection {
    let ty = component.component_type();
    let mut versions = BTreeSet::new();
    let mut imports = Vec::new();
    for (name, _) in ty.imports(engine) {
        let kind = if let Some((_, version)) = contract_name(name) {
            versions.insert(version.to_owned());
            match Capability::from_import(name) {
                None => ImportKind::Types,
                Some(Ok(cap)) => ImportKind::Capability(cap),
                Some(Err(_)) => ImportKind::Unknown,
            }
        } else if name.starts_with("wasi:") {
            ImportKind::Wasi
        } else {
            ImportKind::Unknown
        };
        imports.push(Import {
            name: name.to_owned(),
            kind,
        });
    }
    let (mut exports, mut ignored_exports) = (Vec::new(), Vec::new());
    let (mut policy, mut observer, mut lifecycle, mut interest) = (false, false, false, false);
    for (name, _) in ty.exports(engine) {
        if let Some((iface, version)) = contract_name(name) {
            versions.insert(version.to_owned());
            match iface {
                "handler" => policy = true,
                "observer" => observer = true,
                "lifecycle" => lifecycle = true,
                "interest" => interest = true,
                _ => {}
            }
            exports.push(name.to_owned());
        } else {
            ignored_exports.push(name.to_owned());
        }
    }
    Inspection {
        contract_versions: versions,
        exports,
        ignored_exports,
        imports,
        policy,
        observer,
        lifecycle,
        interest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compatibility_follows_semver() {
        let compatible = |v| Line::of(v).is_some();
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(compatible("0.2.0"));
        assert!(compatible("0.2.9"));
        assert!(!compatible("0.3.0"));
        assert!(!compatible("1.0.0"));
        assert!(!compatible(""));
        assert_eq!(Line::of("0.1.4"), Some(Line::V0_1));
        assert_eq!(Line::of("0.2.0"), Some(Line::V0_2));
    }

    #[test]
    fn contract_names_split() {
        assert_eq!(
            contract_name("imgate:policy/kv@0.1.0"),
            Some(("kv", "0.1.0"))
        );
        assert_eq!(contract_name("wasi:io/streams@0.2.0"), None);
    }
}
