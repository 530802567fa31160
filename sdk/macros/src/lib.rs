//! `export_plugin!`, the one macro a plugin author calls.
//!
//! It expands, in the plugin crate, to a wit-bindgen `generate!` of the
//! chosen world with the contract's text inlined. The world's description
//! (the custom section wit-component reads) is therefore emitted in the
//! plugin crate only, so the component exports exactly that world. Types
//! and imports are mapped with `with` onto `imgate_sdk::bindings`, so they
//! are the SDK's own types.

use proc_macro::TokenStream;

/// The contract, one package split over three files; inlined as one text
/// with the later `package` lines removed.
const WIT_FILES: [&str; 3] = [
    include_str!("../contract/types.wit"),
    include_str!("../contract/host.wit"),
    include_str!("../contract/plugin.wit"),
];

/// The world every Rust plugin is built as: its role's exports, plus
/// `interest`, which the SDK always answers (`Plugin::interest`).
fn sdk_world(policy: bool, observer: bool) -> String {
    let mut world =
        String::from("world imgate-sdk-plugin {\n    export lifecycle;\n    export interest;\n");
    if policy {
        world.push_str("    export handler;\n");
    }
    if observer {
        world.push_str("    export observer;\n");
    }
    world.push_str("}\n");
    world
}

/// The contract's version, from its `package` line.
fn contract_version() -> &'static str {
    WIT_FILES[0]
        .lines()
        .find_map(|l| l.trim().strip_prefix("package imgate:policy@"))
        .map_or("", |v| v.trim_end_matches(';'))
}

fn contract_text() -> String {
    let mut text = String::new();
    for (i, file) in WIT_FILES.iter().enumerate() {
        for line in file.lines() {
            if i > 0 && line.trim_start().starts_with("package ") {
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

fn error(msg: &str) -> TokenStream {
    format!("::core::compile_error!({msg:?});")
        .parse()
        .unwrap_or_default()
}

/// `export_plugin!(MyPlugin)`, `export_plugin!(MyPlugin, observer)` or
/// `export_plugin!(MyPlugin, policy, observer)`. See `imgate_sdk::Plugin`.
#[proc_macro]
pub fn export_plugin(input: TokenStream) -> TokenStream {
    let text = input.to_string();
    let mut parts = text.split(',').map(str::trim).filter(|s| !s.is_empty());
    let Some(ty) = parts.next() else {
        return error("export_plugin! needs the plugin type: export_plugin!(MyPlugin)");
    };
    let roles: Vec<&str> = parts.collect();
    let (policy, observer) = match roles.as_slice() {
        [] | ["policy"] => (true, false),
        ["observer"] => (false, true),
        ["policy", "observer"] | ["observer", "policy"] => (true, true),
        _ => {
            return error(
                "export_plugin!(Type[, policy][, observer]): roles are `policy` and `observer`",
            );
        }
    };
    let sdk = "::imgate_sdk";
    // The role worlds import nothing; the imports a plugin calls come from
    // the SDK's `capabilities` bindings, and the Rust linker keeps only those.
    let with = format!(
        "\"imgate:policy/types@{}\": imgate_sdk::bindings::imgate::policy::types,",
        contract_version()
    );
    let mut roles_impl = String::new();
    if policy {
        roles_impl.push_str(&format!(
            r#"
        impl exports::imgate::policy::handler::Guest for Export {{
            fn handle(event: &{sdk}::EventView, out: &{sdk}::VerdictOut) {{
                let verdict = STATE.with(|s| match s.borrow_mut().as_mut() {{
                    ::core::option::Option::Some(p) => <{ty} as {sdk}::Plugin>::handle(p, &{sdk}::Event::from_view(event)),
                    ::core::option::Option::None => {sdk}::Verdict::block("plugin was not initialised"),
                }});
                verdict.write_to(out);
            }}
        }}"#
        ));
    }
    if observer {
        roles_impl.push_str(&format!(
            r#"
        impl exports::imgate::policy::observer::Guest for Export {{
            fn observe(
                event: &{sdk}::EventView,
                outcome: &{sdk}::OutcomeView,
            ) -> ::core::result::Result<(), ::std::string::String> {{
                STATE.with(|s| match s.borrow_mut().as_mut() {{
                    ::core::option::Option::Some(p) => <{ty} as {sdk}::Plugin>::observe(p, &{sdk}::Event::from_view(event), &{sdk}::Outcome::from_view(outcome)),
                    ::core::option::Option::None => ::core::result::Result::Err("plugin was not initialised".into()),
                }})
            }}
        }}"#
        ));
    }
    let code = format!(
        r#"
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(clippy::all)]
mod __imgate_plugin_export {{
    use super::*;

    {sdk}::__wit_bindgen::generate!({{
        inline: {wit:?},
        world: "imgate:policy/imgate-sdk-plugin",
        runtime_path: "imgate_sdk::__wit_bindgen_rt",
        with: {{ {with} }},
    }});

    ::std::thread_local! {{
        static STATE: ::core::cell::RefCell<::core::option::Option<{ty}>> =
            const {{ ::core::cell::RefCell::new(::core::option::Option::None) }};
    }}

    struct Export;

    impl exports::imgate::policy::lifecycle::Guest for Export {{
        fn init(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {{
            let config = {sdk}::Config::from_json(&config)?;
            let plugin = <{ty} as {sdk}::Plugin>::init(config)?;
            STATE.with(|s| *s.borrow_mut() = ::core::option::Option::Some(plugin));
            ::core::result::Result::Ok(())
        }}
    }}

    impl exports::imgate::policy::interest::Guest for Export {{
        fn kinds() -> ::core::option::Option<::std::vec::Vec<::std::string::String>> {{
            STATE.with(|s| s.borrow().as_ref().and_then(<{ty} as {sdk}::Plugin>::interest))
        }}
    }}
    {roles_impl}

    export!(Export);
}}
"#,
        wit = contract_text() + &sdk_world(policy, observer),
    );
    code.parse()
        .unwrap_or_else(|e| error(&format!("imgate-sdk-macros generated invalid code: {e}")))
}
