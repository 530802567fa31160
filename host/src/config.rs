//! The operator's config file (TOML): typed sections, defaults, and
//! validation that reports every problem at once with where it is.
//!
//! Relative paths are resolved against the config file's directory, so a
//! config works the same from any working directory.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::adapters::section::AdapterSection;
use crate::archive::ArchiveConfig;
use crate::capabilities::kv::KvConfig;
use crate::capabilities::{Capability, Grants};
use crate::event::Direction;
use crate::signing::SigningConfig;

/// The networks a plugin entry may be scoped to (`networks`).
pub const KNOWN_NETWORKS: &[&str] = &["xmpp", "irc", "matrix"];

/// The whole file.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub kv: KvConfig,
    /// `[store]`, or the SQLite file `[archive] path` names.
    pub store: Option<crate::store::StoreConfig>,
    pub archive: Option<ArchiveConfig>,
    pub signing: SigningConfig,
    pub admin: Option<AdminConfig>,
    /// `[console]`: the compliance officers' web console.
    pub console: Option<ConsoleConfig>,
    pub reload: ReloadConfig,
    pub chain: ChainConfig,
    /// `[xmpp]`: the XMPP adapter, when configured.
    pub xmpp: Option<crate::adapters::xmpp::XmppConfig>,
    /// `[irc]`: the IRC adapter, when configured.
    pub irc: Option<crate::adapters::irc::IrcConfig>,
    /// `[matrix]`: the Matrix adapter, when configured.
    pub matrix: Option<crate::adapters::matrix::MatrixConfig>,
    /// `[bridge]`: the relay identities bridged copies go out through.
    pub bridge: Option<crate::adapters::relay::BridgeConfig>,
    pub plugins: Vec<PluginSpec>,
    /// Where the file was read from, for messages.
    pub source: Option<PathBuf>,
}

/// `[runtime]`: engine-wide settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Compiled components are cached here, keyed by sha256 and engine.
    /// Empty string disables the cache.
    pub cache_dir: PathBuf,
    /// The largest memory cap any plugin may be given; sizes the engine's
    /// pooled memory slots.
    pub max_plugin_memory_mib: u64,
    /// Plugin instances alive at once across all plugins.
    pub max_instances: u32,
    /// The longest body a `rewrite` may produce.
    pub max_body_bytes: usize,
    /// Tags one verdict may add, and the longest tag.
    pub max_tags: usize,
    pub max_tag_bytes: usize,
    /// The largest plugin file that will be read (a Python plugin is ~18 MiB).
    pub max_plugin_mib: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: PathBuf::from(".imgate-cache"),
            max_plugin_memory_mib: 512,
            max_instances: 1000,
            max_body_bytes: 256 << 10,
            max_tags: 32,
            max_tag_bytes: 128,
            max_plugin_mib: 64,
        }
    }
}

/// `[admin]`: the admin HTTP API, on its own listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the API can reload policy.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// A file holding the bearer token (first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Or the environment variable holding it.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Serve HTTPS with this certificate chain and key (PEM); both or
    /// neither. Worth it whenever `listen` is not loopback.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

/// `[console]`: the compliance console, on its own listener. It reads the
/// archive, so it needs `[archive]`; its accounts live in the store.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "default_console_listen")]
    pub listen: String,
    /// HTTPS (both or neither). Required beyond loopback: the session
    /// cookie is `Secure` and passwords cross the wire.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// A session ends after this long without a request.
    #[serde(default = "default_idle_minutes")]
    pub session_idle_minutes: u64,
    /// And after this long in any case.
    #[serde(default = "default_session_hours")]
    pub session_max_hours: u64,
}

fn default_console_listen() -> String {
    "127.0.0.1:9292".into()
}

fn default_idle_minutes() -> u64 {
    30
}

fn default_session_hours() -> u64 {
    12
}

fn default_admin_listen() -> String {
    "127.0.0.1:9191".into()
}

fn default_token_env() -> String {
    "IMGATE_ADMIN_TOKEN".into()
}

fn console_problems(c: &ConsoleConfig, archive: bool) -> Vec<String> {
    let mut problems = Vec::new();
    match c.listen.parse::<std::net::SocketAddr>() {
        Err(_) => problems.push(format!("listen `{}` is not an ip:port address", c.listen)),
        Ok(addr) if !addr.ip().is_loopback() && c.tls_cert.is_none() => problems.push(format!(
            "listen `{}` is beyond loopback: set tls_cert and tls_key (passwords and the \
             session cookie must not cross the network in clear)",
            c.listen
        )),
        Ok(_) => {}
    }
    if c.tls_cert.is_some() != c.tls_key.is_some() {
        problems.push("set both tls_cert and tls_key, or neither".into());
    }
    if !archive {
        problems.push("the console reads the archive: add [archive]".into());
    }
    if c.session_idle_minutes == 0 || c.session_max_hours == 0 {
        problems.push("session_idle_minutes and session_max_hours must be at least 1".into());
    }
    problems
}

/// `[chain]`: how the chain runs (a reload applies changes).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// After a block or drop, the remaining policy plugins still run for
    /// their tags only (their actions are ignored), so the record of a
    /// blocked event carries everything the chain found. Unset: on when a
    /// plugin is granted `archive`.
    pub tags_after_block: Option<bool>,
}

/// `[reload]`: when `imgate run` reloads the chain by itself.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Watch the config file and every plugin file (and its `.sig`).
    pub watch: bool,
    /// A change must be still for this long before it is applied, so a
    /// half-copied file is not loaded.
    pub debounce_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            watch: true,
            debounce_ms: 500,
        }
    }
}

/// What a plugin's failure means for the event.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// A trap, timeout or invalid verdict blocks the event.
    #[default]
    FailClosed,
    /// The plugin is skipped and the chain carries on.
    FailOpen,
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailurePolicy::FailClosed => "fail-closed",
            FailurePolicy::FailOpen => "fail-open",
        })
    }
}

/// One `[[plugins]]` entry, in chain order.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginSpec {
    pub name: String,
    pub path: PathBuf,
    /// Hex sha256 the component must have (Istio-style pin).
    pub sha256: Option<String>,
    pub grants: Grants,
    pub failure: FailurePolicy,
    pub deadline_ms: u64,
    pub memory_mib: u64,
    /// Idle instances kept ready.
    pub pool: usize,
    /// The plugin's own settings, handed to `init` as JSON.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The plugin name its signature must carry, when it differs from
    /// `name` (two entries of one signed plugin, say).
    pub signed_name: Option<String>,
    /// The only signed release that may load.
    pub version: Option<semver::Version>,
    /// The oldest signed release that may load.
    pub min_version: Option<semver::Version>,
    /// The networks whose events it sees; empty: every network.
    pub networks: Vec<String>,
    /// The directions it sees; empty: both.
    pub directions: Vec<Direction>,
    /// Line of the entry in the config file, for messages.
    pub line: Option<usize>,
}

impl PluginSpec {
    /// A spec with defaults, for tests and programmatic use.
    pub fn new(name: &str, path: impl Into<PathBuf>) -> Self {
        PluginSpec {
            name: name.to_owned(),
            path: path.into(),
            sha256: None,
            grants: Grants::default(),
            failure: FailurePolicy::FailClosed,
            deadline_ms: 10,
            memory_mib: 64,
            pool: 8,
            settings: Default::default(),
            signed_name: None,
            version: None,
            min_version: None,
            networks: Vec::new(),
            directions: Vec::new(),
            line: None,
        }
    }

    /// Whether it sees events of `network` going `direction`.
    pub fn applies_to(&self, network: &str, direction: Direction) -> bool {
        (self.networks.is_empty() || self.networks.iter().any(|n| n == network))
            && (self.directions.is_empty() || self.directions.contains(&direction))
    }

    /// The plugin name a signature must carry to load under this entry.
    pub fn expected_signed_name(&self) -> &str {
        self.signed_name.as_deref().unwrap_or(&self.name)
    }

    /// Where this plugin is in the config, for messages.
    pub fn location(&self) -> String {
        match self.line {
            Some(line) => format!("plugin `{}` (line {line})", self.name),
            None => format!("plugin `{}`", self.name),
        }
    }
}

/// One `[[plugins]]` entry, read field by field so that every bad field
/// is reported, not only the first.
struct RawPlugin {
    name: Option<String>,
    path: PathBuf,
    sha256: Option<String>,
    grants: Vec<String>,
    failure: FailurePolicy,
    deadline_ms: u64,
    memory_mib: u64,
    pool: usize,
    config: toml::Table,
    signed_name: Option<String>,
    version: Option<String>,
    min_version: Option<String>,
    networks: Vec<String>,
    directions: Vec<String>,
}

const PLUGIN_FIELDS: &[&str] = &[
    "name",
    "path",
    "sha256",
    "grants",
    "failure",
    "deadline_ms",
    "memory_mib",
    "pool",
    "config",
    "signed_name",
    "version",
    "min_version",
    "networks",
    "directions",
];

impl RawPlugin {
    fn read(mut table: toml::Table) -> (RawPlugin, Vec<String>) {
        let mut problems = Vec::new();
        let mut field = |key: &str| -> Option<toml::Value> { table.remove(key) };
        let mut raw = RawPlugin {
            name: None,
            path: PathBuf::new(),
            sha256: None,
            grants: Vec::new(),
            failure: FailurePolicy::default(),
            deadline_ms: default_deadline(),
            memory_mib: default_memory(),
            pool: default_pool(),
            config: toml::Table::new(),
            signed_name: None,
            version: None,
            min_version: None,
            networks: Vec::new(),
            directions: Vec::new(),
        };
        fn get<T: serde::de::DeserializeOwned>(
            key: &str,
            value: Option<toml::Value>,
            problems: &mut Vec<String>,
        ) -> Option<T> {
            let value = value?;
            match value.try_into() {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(format!("{key}: {}", e.to_string().trim()));
                    None
                }
            }
        }
        let p = &mut problems;
        raw.name = get("name", field("name"), p);
        if raw.name.is_none() && !p.iter().any(|m| m.starts_with("name:")) {
            p.push("missing field `name`".into());
        }
        match get::<PathBuf>("path", field("path"), p) {
            Some(path) => raw.path = path,
            None if !p.iter().any(|m| m.starts_with("path:")) => {
                p.push("missing field `path`".into())
            }
            None => {}
        }
        raw.sha256 = get("sha256", field("sha256"), p);
        raw.grants = get("grants", field("grants"), p).unwrap_or_default();
        raw.failure = get("failure", field("failure"), p).unwrap_or_default();
        raw.deadline_ms = get("deadline_ms", field("deadline_ms"), p).unwrap_or(raw.deadline_ms);
        raw.memory_mib = get("memory_mib", field("memory_mib"), p).unwrap_or(raw.memory_mib);
        raw.pool = get("pool", field("pool"), p).unwrap_or(raw.pool);
        raw.config = get("config", field("config"), p).unwrap_or_default();
        raw.signed_name = get("signed_name", field("signed_name"), p);
        raw.version = get("version", field("version"), p);
        raw.min_version = get("min_version", field("min_version"), p);
        raw.networks = get("networks", field("networks"), p).unwrap_or_default();
        raw.directions = get("directions", field("directions"), p).unwrap_or_default();
        for key in table.keys() {
            problems.push(format!(
                "unknown field `{key}`, expected one of {}",
                PLUGIN_FIELDS
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        (raw, problems)
    }
}

fn default_deadline() -> u64 {
    10
}
fn default_memory() -> u64 {
    64
}
fn default_pool() -> usize {
    8
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    runtime: Option<Spanned<toml::Value>>,
    #[serde(default)]
    kv: Option<Spanned<toml::Value>>,
    #[serde(default)]
    store: Option<Spanned<toml::Value>>,
    #[serde(default)]
    archive: Option<Spanned<toml::Value>>,
    #[serde(default)]
    signing: Option<Spanned<toml::Value>>,
    #[serde(default)]
    admin: Option<Spanned<toml::Value>>,
    #[serde(default)]
    console: Option<Spanned<toml::Value>>,
    #[serde(default)]
    reload: Option<Spanned<toml::Value>>,
    #[serde(default)]
    chain: Option<Spanned<toml::Value>>,
    #[serde(default)]
    xmpp: Option<Spanned<toml::Value>>,
    #[serde(default)]
    irc: Option<Spanned<toml::Value>>,
    #[serde(default)]
    matrix: Option<Spanned<toml::Value>>,
    #[serde(default)]
    bridge: Option<Spanned<toml::Value>>,
    #[serde(default)]
    plugins: Vec<Spanned<toml::Value>>,
    #[serde(flatten)]
    rest: toml::Table,
}

/// One thing wrong with the config, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// `[chain] tags_after_block`, or its default: on when a plugin may
    /// archive, since the archive is where a reviewer reads the tags.
    pub fn tags_after_block(&self) -> bool {
        self.chain.tags_after_block.unwrap_or_else(|| {
            self.plugins
                .iter()
                .any(|p| p.grants.contains(Capability::Archive))
        })
    }
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// The file cannot be read, is not TOML, or has problems; a
    /// [`ConfigError`] lists them all.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (config, problems) = Config::load_all(path);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                file: path.display().to_string(),
                problems,
            })
        }
    }

    /// Like [`Config::load`], but returns what could be parsed alongside
    /// every problem.
    pub fn load_all(path: &Path) -> (Config, Vec<Problem>) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let problem = Problem {
                    location: "file".into(),
                    message: format!("cannot read: {e}"),
                };
                return (Config::default(), vec![problem]);
            }
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let (mut config, problems) = Config::parse_all(&text, base);
        config.source = Some(path.to_owned());
        (config, problems)
    }

    /// Parses config text; relative paths are resolved against `base`.
    ///
    /// # Errors
    /// Every problem found, each with its location.
    pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
        let (config, problems) = Config::parse_all(text, base);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Parses as much as it can: the config (with defaults where a section
    /// was wrong, and without plugin entries that could not be read) and
    /// every problem. `imgate check` uses this to go on and load plugins.
    pub fn parse_all(text: &str, base: &Path) -> (Config, Vec<Problem>) {
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let location = e
                    .span()
                    .map(|s| format!("line {}", line_of(text, s.start)))
                    .unwrap_or_else(|| "file".into());
                let problem = Problem {
                    location,
                    message: e.message().to_owned(),
                };
                return (Config::default(), vec![problem]);
            }
        };
        let mut problems = Vec::new();
        let mut config = Config::default();

        for key in raw.rest.keys() {
            problems.push(Problem {
                location: format!("[{key}]"),
                message:
                    "unknown section (known: runtime, kv, store, archive, signing, admin, reload, chain, xmpp, irc, matrix, bridge, plugins)"
                        .into(),
            });
        }

        fn section<T: for<'de> Deserialize<'de>>(
            text: &str,
            name: &str,
            value: Option<Spanned<toml::Value>>,
            problems: &mut Vec<Problem>,
        ) -> Option<T> {
            let value = value?;
            let line = line_of(text, value.span().start);
            match value.into_inner().try_into() {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(Problem {
                        location: format!("[{name}] (line {line})"),
                        message: e.to_string().trim().to_owned(),
                    });
                    None
                }
            }
        }

        /// A network's section, resolved against the file's folder, with
        /// its problems named by line.
        fn adapter_section<T: for<'de> Deserialize<'de> + AdapterSection>(
            text: &str,
            name: &str,
            value: Option<Spanned<toml::Value>>,
            problems: &mut Vec<Problem>,
            resolve: impl FnOnce(T) -> T,
        ) -> Option<T> {
            let line = value.as_ref().map(|v| line_of(text, v.span().start))?;
            let adapter = resolve(section::<T>(text, name, value, problems)?);
            problems.extend(adapter.problems().into_iter().map(|message| Problem {
                location: format!("[{name}] (line {line})"),
                message,
            }));
            Some(adapter)
        }

        if let Some(runtime) = section::<RuntimeConfig>(text, "runtime", raw.runtime, &mut problems)
        {
            config.runtime = runtime;
        }
        if config.runtime.cache_dir.as_os_str().is_empty() {
            config.runtime.cache_dir = PathBuf::new();
        } else {
            config.runtime.cache_dir = base.join(&config.runtime.cache_dir);
        }
        if config.runtime.max_plugin_memory_mib == 0 || config.runtime.max_plugin_memory_mib > 4096
        {
            problems.push(Problem {
                location: "[runtime]".into(),
                message: "max_plugin_memory_mib must be between 1 and 4096".into(),
            });
        }
        if config.runtime.max_instances == 0 {
            problems.push(Problem {
                location: "[runtime]".into(),
                message: "max_instances must be at least 1".into(),
            });
        }
        if let Some(kv) = section::<KvConfig>(text, "kv", raw.kv, &mut problems) {
            config.kv = kv;
        }
        let store_line = raw.store.as_ref().map(|v| line_of(text, v.span().start));
        config.store =
            section::<crate::store::StoreConfig>(text, "store", raw.store, &mut problems).map(
                |mut s| {
                    // A relative SQLite path is the config file's neighbour.
                    if let Ok(crate::store::Location::Sqlite(path)) = s.location() {
                        s.url = format!("sqlite://{}", base.join(path).display());
                    }
                    s
                },
            );
        if let (Some(store), Some(line)) = (&config.store, store_line) {
            problems.extend(store.problems().into_iter().map(|message| Problem {
                location: format!("[store] (line {line})"),
                message,
            }));
        }
        let archive_line = raw.archive.as_ref().map(|v| line_of(text, v.span().start));
        config.archive =
            section::<ArchiveConfig>(text, "archive", raw.archive, &mut problems).map(|mut a| {
                a.path = a.path.map(|p| base.join(p));
                a.checkpoint_key = a.checkpoint_key.map(|p| base.join(p));
                a.checkpoint_file = a.checkpoint_file.map(|p| base.join(p));
                a
            });
        if let (Some(archive), Some(line)) = (&config.archive, archive_line) {
            problems.extend(archive.problems().into_iter().map(|message| Problem {
                location: format!("[archive] (line {line})"),
                message,
            }));
            match (&archive.path, &config.store) {
                (Some(path), None) => config.store = Some(crate::store::StoreConfig::sqlite(path)),
                (Some(_), Some(_)) => problems.push(Problem {
                    location: format!("[archive] (line {line})"),
                    message: "path and [store] both say where the archive is: keep [store] url"
                        .into(),
                }),
                (None, None) => problems.push(Problem {
                    location: format!("[archive] (line {line})"),
                    message: "no store: set [store] url (or [archive] path for a SQLite file)"
                        .into(),
                }),
                (None, Some(_)) => {}
            }
        }

        if let Some(signing) = section::<SigningConfig>(text, "signing", raw.signing, &mut problems)
        {
            if let Err(errors) = crate::signing::SigningPolicy::from_config(&signing) {
                problems.extend(errors.into_iter().map(|message| Problem {
                    location: "[signing]".into(),
                    message,
                }));
            }
            config.signing = signing;
        }

        config.admin =
            section::<AdminConfig>(text, "admin", raw.admin, &mut problems).map(|mut a| {
                a.token_file = a.token_file.map(|f| base.join(f));
                a.tls_cert = a.tls_cert.map(|f| base.join(f));
                a.tls_key = a.tls_key.map(|f| base.join(f));
                a
            });
        if let Some(admin) = &config.admin
            && admin.listen.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(Problem {
                location: "[admin]".into(),
                message: format!("listen `{}` is not an ip:port address", admin.listen),
            });
        }
        if let Some(admin) = &config.admin
            && admin.tls_cert.is_some() != admin.tls_key.is_some()
        {
            problems.push(Problem {
                location: "[admin]".into(),
                message: "set both tls_cert and tls_key, or neither".into(),
            });
        }
        config.console =
            section::<ConsoleConfig>(text, "console", raw.console, &mut problems).map(|mut c| {
                c.tls_cert = c.tls_cert.map(|f| base.join(f));
                c.tls_key = c.tls_key.map(|f| base.join(f));
                c
            });
        if let Some(console) = &config.console {
            problems.extend(
                console_problems(console, config.archive.is_some())
                    .into_iter()
                    .map(|message| Problem {
                        location: "[console]".into(),
                        message,
                    }),
            );
        }
        if let Some(reload) = section::<ReloadConfig>(text, "reload", raw.reload, &mut problems) {
            config.reload = reload;
        }
        if let Some(chain) = section::<ChainConfig>(text, "chain", raw.chain, &mut problems) {
            config.chain = chain;
        }
        config.xmpp = adapter_section(
            text,
            "xmpp",
            raw.xmpp,
            &mut problems,
            |x: crate::adapters::xmpp::XmppConfig| x.resolve(base),
        );
        config.irc = adapter_section(
            text,
            "irc",
            raw.irc,
            &mut problems,
            |x: crate::adapters::irc::IrcConfig| x.resolve(base),
        );
        config.matrix = adapter_section(
            text,
            "matrix",
            raw.matrix,
            &mut problems,
            |x: crate::adapters::matrix::MatrixConfig| x.resolve(base),
        );
        let bridge_line = raw.bridge.as_ref().map(|v| line_of(text, v.span().start));
        config.bridge = section::<crate::adapters::relay::BridgeConfig>(
            text,
            "bridge",
            raw.bridge,
            &mut problems,
        )
        .map(|b| b.resolve(base));
        if let (Some(bridge), Some(line)) = (&config.bridge, bridge_line) {
            let problems_of = bridge.problems(
                config.xmpp.is_some(),
                config.irc.is_some(),
                config.matrix.is_some(),
            );
            problems.extend(problems_of.into_iter().map(|message| Problem {
                location: format!("[bridge] (line {line})"),
                message,
            }));
        }

        let mut names = HashSet::new();
        for (i, entry) in raw.plugins.into_iter().enumerate() {
            let line = line_of(text, entry.span().start);
            let location = format!("plugins[{i}] (line {line})");
            let table = match entry.into_inner() {
                toml::Value::Table(t) => t,
                other => {
                    problems.push(Problem {
                        location,
                        message: format!("must be a table, found a {}", other.type_str()),
                    });
                    continue;
                }
            };
            let (raw, field_problems) = RawPlugin::read(table);
            let location = match &raw.name {
                Some(name) => format!("plugin `{name}` (line {line})"),
                None => location,
            };
            let mut complain = |message: String| {
                problems.push(Problem {
                    location: location.clone(),
                    message,
                })
            };
            for message in field_problems {
                complain(message);
            }
            let name = raw.name.unwrap_or_default();
            if !valid_plugin_name(&name) {
                complain("name must be 1-64 characters of a-z, 0-9, '-' or '_'".into());
            } else if !names.insert(name.clone()) {
                complain("another plugin already has this name".into());
            }
            let mut grants = Vec::new();
            for g in &raw.grants {
                match g.parse::<Capability>() {
                    Ok(c) => grants.push(c),
                    Err(e) => complain(format!("grants: {e}")),
                }
            }
            if let Some(pin) = &raw.sha256
                && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                complain("sha256 must be 64 hex digits".into());
            }
            if let Some(signed) = &raw.signed_name
                && !valid_plugin_name(signed)
            {
                complain("signed_name must be 1-64 characters of a-z, 0-9, '-' or '_'".into());
            }
            let mut version = |key: &str, text: &Option<String>| {
                text.as_deref()
                    .and_then(|v| match semver::Version::parse(v) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            complain(format!("{key} `{v}` is not a version like 1.4.0: {e}"));
                            None
                        }
                    })
            };
            let exact = version("version", &raw.version);
            let min = version("min_version", &raw.min_version);
            if !(1..=60_000).contains(&raw.deadline_ms) {
                complain("deadline_ms must be between 1 and 60000".into());
            }
            if raw.memory_mib == 0 || raw.memory_mib > config.runtime.max_plugin_memory_mib {
                complain(format!(
                    "memory_mib must be between 1 and [runtime] max_plugin_memory_mib ({})",
                    config.runtime.max_plugin_memory_mib
                ));
            }
            if raw.pool == 0 || raw.pool > 1024 {
                complain("pool must be between 1 and 1024".into());
            }
            let mut directions = Vec::new();
            for d in &raw.directions {
                match d.as_str() {
                    "outbound" => directions.push(Direction::Outbound),
                    "inbound" => directions.push(Direction::Inbound),
                    other => complain(format!(
                        "directions: `{other}` is not `outbound` or `inbound`"
                    )),
                }
            }
            for n in &raw.networks {
                if !KNOWN_NETWORKS.contains(&n.as_str()) {
                    complain(format!(
                        "networks: unknown network `{n}` (known: {})",
                        KNOWN_NETWORKS.join(", ")
                    ));
                }
            }
            if grants.contains(&Capability::Archive) && config.archive.is_none() {
                complain("is granted `archive` but the config has no [archive] section".into());
            }
            let settings = match serde_json::to_value(&raw.config) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(_) => Default::default(),
                Err(e) => {
                    complain(format!("config: {e}"));
                    Default::default()
                }
            };
            config.plugins.push(PluginSpec {
                name,
                path: base.join(raw.path),
                sha256: raw.sha256.map(|s| s.to_ascii_lowercase()),
                grants: Grants::new(grants),
                failure: raw.failure,
                deadline_ms: raw.deadline_ms,
                memory_mib: raw.memory_mib,
                pool: raw.pool,
                settings,
                signed_name: raw.signed_name,
                version: exact,
                min_version: min,
                networks: raw.networks,
                directions,
                line: Some(line),
            });
        }
        // Idle pooled instances hold slots in the engine's instance pool;
        // leave at least as many free for instances created under load.
        let idle: usize = config.plugins.iter().map(|p| p.pool).sum();
        if idle * 2 > config.runtime.max_instances as usize {
            problems.push(Problem {
                location: "[runtime]".into(),
                message: format!(
                    "max_instances ({}) must be at least twice the plugins' pool sizes ({idle}): \
                     idle instances hold pool slots",
                    config.runtime.max_instances
                ),
            });
        }
        (config, problems)
    }
}

fn valid_plugin_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[runtime]
cache_dir = "cache"

[archive]
path = "archive.db"

[[plugins]]
name = "kw"
path = "kw.wasm"
grants = ["log", "config"]
failure = "fail-open"
deadline_ms = 5

[plugins.config]
words = ["secret"]
case_insensitive = true
"#;

    #[test]
    fn a_good_config_parses_with_paths_resolved() {
        let c = Config::parse(GOOD, Path::new("/etc/imgate")).unwrap();
        assert_eq!(c.runtime.cache_dir, PathBuf::from("/etc/imgate/cache"));
        assert_eq!(
            c.archive.unwrap().path,
            Some(PathBuf::from("/etc/imgate/archive.db"))
        );
        assert_eq!(c.store.unwrap().url, "sqlite:///etc/imgate/archive.db");
        let p = &c.plugins[0];
        assert_eq!(p.path, PathBuf::from("/etc/imgate/kw.wasm"));
        assert_eq!(p.failure, FailurePolicy::FailOpen);
        assert_eq!(p.deadline_ms, 5);
        assert_eq!(p.memory_mib, 64);
        assert!(p.grants.contains(Capability::Config));
        assert_eq!(p.settings["words"], serde_json::json!(["secret"]));
        assert_eq!(p.line, Some(8));
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let bad = r#"
[runtim]
x = 1

[[plugins]]
name = "a"
path = "a.wasm"
grants = ["files", "archive"]
deadline_ms = 0

[[plugins]]
name = "a"
path = "b.wasm"
sha256 = "xyz"

[[plugins]]
name = "c"
pth = "c.wasm"

[[plugins]]
name = "d"
path = "d.wasm"
deadline_ms = "soon"
memory_mib = "big"
pool = 0
min_version = "one"
"#;
        let problems = Config::parse(bad, Path::new(".")).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let all = text.join("\n");
        for expected in [
            "[runtim]: unknown section",
            "plugin `a` (line 5): grants: unknown capability `files`",
            "plugin `a` (line 5): deadline_ms must be between 1 and 60000",
            "plugin `a` (line 5): is granted `archive` but the config has no [archive]",
            "plugin `a` (line 11): another plugin already has this name",
            "plugin `a` (line 11): sha256 must be 64 hex digits",
            "plugin `c` (line 16): unknown field `pth`",
            "plugin `c` (line 16): missing field `path`",
            // One bad field does not hide the entry's others.
            "plugin `d` (line 20): deadline_ms: ",
            "plugin `d` (line 20): memory_mib: ",
            "plugin `d` (line 20): pool must be between 1 and 1024",
            "plugin `d` (line 20): min_version `one` is not a version",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn pools_must_leave_room_in_the_instance_limit() {
        let text = "[runtime]\nmax_instances = 10\n[[plugins]]\nname = \"a\"\npath = \"a.wasm\"\npool = 6\n";
        let problems = Config::parse(text, Path::new(".")).unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("twice the plugins' pool sizes (6)"),
            "{problems:?}"
        );
    }

    #[test]
    fn toml_syntax_errors_name_the_line() {
        let problems = Config::parse("[[plugins]]\nname = \n", Path::new(".")).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].location.starts_with("line 2"),
            "{:?}",
            problems[0]
        );
    }
}
