//! What a component asks for and offers, read from its type: the contract
//! version it targets, its exports, and its imports, which are the
//! capabilities it requests. Used by `imgate plugin inspect` and by the
//! grant check at load.

use std::collections::BTreeSet;

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::capabilities::Capability;
use crate::contract::{CONTRACT_PACKAGE, CONTRACT_VERSION};

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
}

impl Inspection {
    /// Whether the component was built against a later version of this
    /// host's contract (a 0.1.3 plugin on a 0.1.0 host), so it may import
    /// functions the host does not have.
    pub fn targets_newer_contract(&self) -> bool {
        let Ok(host) = semver::Version::parse(CONTRACT_VERSION) else {
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

/// Whether a component built against `version` loads in this host: the
/// same major version, and for 0.x the same minor (semver's rule, which
/// wasmtime's linker applies when matching interface names).
pub fn compatible(version: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parse(version), parse(CONTRACT_VERSION)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
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
    let (mut policy, mut observer, mut lifecycle) = (false, false, false);
    for (name, _) in ty.exports(engine) {
        if let Some((iface, version)) = contract_name(name) {
            versions.insert(version.to_owned());
            match iface {
                "handler" => policy = true,
                "observer" => observer = true,
                "lifecycle" => lifecycle = true,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compatibility_follows_semver() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.0.0"));
        assert!(!compatible(""));
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
