//! The contract's own compatibility check: `wit/` against the released
//! contracts (`wit/released/<version>/`). Inside one minor
//! version only the changes `wit/README.md` calls compatible may happen —
//! new interfaces, functions, methods, worlds and types — and everything
//! released must stay exactly as it was: every interface, every function's
//! parameters and result, every type's shape, every world's imports and
//! exports. A new minor version (0.2.0) is free to break, and old plugins
//! are then held to it by `contract_compat.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use imgate_tests::workspace;
use wit_parser::{FunctionKind, Handle, PackageId, Resolve, Type, TypeDefKind, WorldItem};

/// A released contract the self-checks below edit.
const RELEASED: &str = "0.1.0";

/// Every released contract: its folder and (major, minor).
fn released() -> Vec<(std::path::PathBuf, (u64, u64))> {
    let dir = workspace().join("wit/released");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|path| {
            let (r, p) = load(&path);
            let v = minor_version(&r, p);
            (path, v)
        })
        .collect();
    out.sort_by_key(|(_, v)| *v);
    out
}

fn load(dir: &Path) -> (Resolve, PackageId) {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
    (resolve, package)
}

/// A type written out in full, so two packages' types compare by shape.
/// Resources compare by name: their methods are functions, checked as such.
fn shape(r: &Resolve, ty: &Type) -> String {
    let id = match ty {
        Type::Id(id) => *id,
        other => return format!("{other:?}").to_lowercase(),
    };
    let def = &r.types[id];
    let list = |items: Vec<String>| items.join(", ");
    let opt = |t: &Option<Type>| t.as_ref().map_or("_".to_owned(), |t| shape(r, t));
    match &def.kind {
        TypeDefKind::Record(x) => format!(
            "record {{{}}}",
            list(
                x.fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, shape(r, &f.ty)))
                    .collect()
            )
        ),
        TypeDefKind::Resource => format!("resource {}", def.name.as_deref().unwrap_or("?")),
        TypeDefKind::Handle(Handle::Own(t)) => format!("own<{}>", shape(r, &Type::Id(*t))),
        TypeDefKind::Handle(Handle::Borrow(t)) => format!("borrow<{}>", shape(r, &Type::Id(*t))),
        TypeDefKind::Flags(x) => format!(
            "flags {{{}}}",
            list(x.flags.iter().map(|f| f.name.clone()).collect())
        ),
        TypeDefKind::Tuple(x) => format!(
            "tuple<{}>",
            list(x.types.iter().map(|t| shape(r, t)).collect())
        ),
        TypeDefKind::Variant(x) => format!(
            "variant {{{}}}",
            list(
                x.cases
                    .iter()
                    .map(|c| format!("{}({})", c.name, opt(&c.ty)))
                    .collect()
            )
        ),
        TypeDefKind::Enum(x) => format!(
            "enum {{{}}}",
            list(x.cases.iter().map(|c| c.name.clone()).collect())
        ),
        TypeDefKind::Option(t) => format!("option<{}>", shape(r, t)),
        TypeDefKind::Result(x) => format!("result<{}, {}>", opt(&x.ok), opt(&x.err)),
        TypeDefKind::List(t) => format!("list<{}>", shape(r, t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", shape(r, k), shape(r, v)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", shape(r, t)),
        TypeDefKind::Future(t) => format!("future<{}>", opt(t)),
        TypeDefKind::Stream(t) => format!("stream<{}>", opt(t)),
        TypeDefKind::Type(t) => shape(r, t),
        TypeDefKind::Unknown => "unknown".into(),
    }
}

/// Everything a plugin can depend on, by a stable name: interfaces' types
/// and functions, and worlds' imports and exports.
fn surface(r: &Resolve, package: PackageId) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let pkg = &r.packages[package];
    for (name, &id) in &pkg.interfaces {
        let iface = &r.interfaces[id];
        out.insert(format!("interface {name}"), String::new());
        for (ty, &tid) in &iface.types {
            out.insert(format!("{name}.type {ty}"), shape(r, &Type::Id(tid)));
        }
        for (f, func) in &iface.functions {
            let params: Vec<String> = func
                .params
                .iter()
                .map(|p| format!("{}: {}", p.name, shape(r, &p.ty)))
                .collect();
            let result = func.result.as_ref().map_or("()".into(), |t| shape(r, t));
            out.insert(
                format!("{name}.func {f}"),
                format!(
                    "{} ({}) -> {result}",
                    kind(r, &func.kind),
                    params.join(", ")
                ),
            );
        }
    }
    for (name, &id) in &pkg.worlds {
        let world = &r.worlds[id];
        out.insert(format!("world {name}"), String::new());
        for (side, items) in [("import", &world.imports), ("export", &world.exports)] {
            for (key, item) in items {
                let what = match item {
                    WorldItem::Interface { id, .. } => r.id_of(*id).unwrap_or_default(),
                    WorldItem::Function(f) => format!("func {}", f.name),
                    WorldItem::Type { id, .. } => shape(r, &Type::Id(*id)),
                };
                // Within a minor version the patch moves (0.2.0 -> 0.2.1):
                // an item is the same interface whatever its patch.
                let key = r.name_world_key(key);
                let key = key.split('@').next().unwrap_or_default();
                out.insert(
                    format!("{name}.{side} {key}"),
                    what.split('@').next().unwrap_or_default().to_owned(),
                );
            }
        }
    }
    out
}

/// What `current` broke of `released`: each released name must still be
/// there with the same shape. Additions are allowed.
fn breaks(released: &BTreeMap<String, String>, current: &BTreeMap<String, String>) -> Vec<String> {
    released
        .iter()
        .filter_map(|(name, was)| match current.get(name) {
            None => Some(format!("{name} was removed")),
            Some(now) if now != was => Some(format!("{name} changed: `{was}` became `{now}`")),
            Some(_) => None,
        })
        .collect()
}

/// The package's (major, minor) version.
fn minor_version(r: &Resolve, p: PackageId) -> (u64, u64) {
    let v = r.packages[p]
        .name
        .version
        .as_ref()
        .expect("a versioned package");
    (v.major, v.minor)
}

/// What kind of function, with the resource a method belongs to.
fn kind(r: &Resolve, kind: &FunctionKind) -> String {
    let of = |t: &wit_parser::TypeId| r.types[*t].name.clone().unwrap_or_default();
    match kind {
        FunctionKind::Freestanding => "func".into(),
        FunctionKind::AsyncFreestanding => "async func".into(),
        FunctionKind::Method(t) => format!("method of {}", of(t)),
        FunctionKind::AsyncMethod(t) => format!("async method of {}", of(t)),
        FunctionKind::Static(t) => format!("static of {}", of(t)),
        FunctionKind::AsyncStatic(t) => format!("async static of {}", of(t)),
        FunctionKind::Constructor(t) => format!("constructor of {}", of(t)),
    }
}

#[test]
fn wit_keeps_every_promise_of_the_released_contract_within_its_minor_version() {
    let (new, new_pkg) = load(&workspace().join("wit"));
    let current = minor_version(&new, new_pkg);
    let released = released();
    assert!(
        !released.is_empty(),
        "no released contract in wit/released/"
    );
    let same_minor: Vec<_> = released.iter().filter(|(_, v)| *v == current).collect();
    if same_minor.is_empty() {
        // A new minor version may break; it must be newer than every
        // released one, and old plugins are held to it by the golden
        // components in contract_compat.rs.
        let newest = released.last().map(|(_, v)| *v).unwrap_or_default();
        assert!(
            current > newest,
            "wit/ is {current:?}, older than the released {newest:?} but not released itself"
        );
        return;
    }
    // Every patch release of the minor version (0.2.0 and 0.2.1): what one
    // promised, wit/ still keeps.
    for (dir, _) in same_minor {
        let (old, old_pkg) = load(dir);
        let broken = breaks(&surface(&old, old_pkg), &surface(&new, new_pkg));
        assert!(
            broken.is_empty(),
            "wit/ breaks {} inside its minor version (see wit/README.md):\n{}",
            dir.display(),
            broken.join("\n")
        );
    }
}

/// The released WIT with `edit` applied, loaded as text.
fn edited(edit: impl Fn(String) -> String) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let released = workspace().join(format!("wit/released/{RELEASED}"));
    for file in ["types.wit", "host.wit", "plugin.wit"] {
        let text = std::fs::read_to_string(released.join(file)).unwrap();
        let text = if file == "types.wit" || file == "host.wit" {
            edit(text)
        } else {
            text
        };
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let (r, p) = load(dir.path());
    surface(&r, p)
}

#[test]
fn the_check_refuses_breaking_changes_and_allows_additions() {
    let released = edited(|t| t);
    assert!(released.contains_key("types.type message"), "{released:?}");
    // A field added to a record: breaking.
    let with_field = edited(|t| {
        t.replace(
            "    record message {\n",
            "    record message {\n        priority: u8,\n",
        )
    });
    let broken = breaks(&released, &with_field);
    assert!(
        broken
            .iter()
            .any(|b| b.starts_with("types.type message changed")),
        "{broken:?}"
    );
    // An action case added: breaking (plugins' handle results change shape).
    let with_case =
        edited(|t| t.replace("        drop,\n", "        drop,\n        hold(string),\n"));
    let broken = breaks(&released, &with_case);
    assert!(
        broken
            .iter()
            .any(|b| b.starts_with("types.type action changed")),
        "{broken:?}"
    );
    assert!(
        broken
            .iter()
            .any(|b| b.starts_with("handler.func handle changed")),
        "{broken:?}"
    );
    // A function added to a host interface: compatible.
    let with_func = edited(|t| {
        t.replacen(
            "interface kv {\n",
            "interface kv {\n    keys: func() -> list<string>;\n",
            1,
        )
    });
    assert!(with_func.contains_key("kv.func keys"), "the edit applied");
    assert_eq!(breaks(&released, &with_func), Vec::<String>::new());
}

/// The Rust SDK carries the contract inside its crates (so they can be
/// published): `sdk/contract/` for the bindings, `sdk/macros/contract/` for the
/// export macro. Both must be `wit/` exactly; copy the three files when
/// the contract changes.
#[test]
fn the_sdk_carries_the_contract_as_it_is() {
    for file in ["types.wit", "host.wit", "plugin.wit"] {
        let contract = std::fs::read_to_string(workspace().join("wit").join(file)).unwrap();
        for copy in ["sdk/contract", "sdk/macros/contract"] {
            let path = workspace().join(copy).join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                text == contract,
                "{} differs from wit/{file}: cp wit/*.wit {copy}/",
                path.display()
            );
        }
    }
}
