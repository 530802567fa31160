//! The `imgate` command line. The binary only parses arguments and calls
//! [`run`]; each command is one module.
//!
//! Owns: the process's edge — arguments, exit codes, signals, `anyhow`.
//! It may use every part; no part uses it.

mod archive;
mod cert;
mod check;
mod console;
mod inspect;
mod new_plugin;
pub mod replay;
mod review;
mod run;
mod sign;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "imgate",
    version,
    about = "A WebAssembly policy-plugin host for enterprise instant messaging"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run each event of a JSONL transcript through the configured chain and
    /// print one JSON verdict per line.
    Replay {
        /// The operator's config file.
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON event per line (see docs/replay.md); `-` reads stdin.
        events: PathBuf,
    },
    /// Run the gateway: the chain, reloads (SIGHUP, file watch, admin API)
    /// and the admin API, until SIGTERM.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the config and load every plugin, reporting every problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// The compliance archive: verify its hash chain, search it.
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
    /// The compliance console's accounts (kept in the store).
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// Make a self-signed TLS certificate and key (PEM) for development:
    /// what clients see when they connect to imgate, and what a test
    /// server can use.
    Cert {
        /// DNS names or IP addresses the certificate is for.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Where to write the certificate.
        #[arg(long)]
        cert: PathBuf,
        /// Where to write the private key (mode 0600).
        #[arg(long)]
        key: PathBuf,
    },
    /// Make an ed25519 key pair for signing plugins: BASE.key (secret,
    /// mode 0600) and BASE.pub.
    Keygen {
        /// Path of the key pair without extension.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Walk the hash chain; name the first broken record and exit 1 if any.
    Verify {
        /// The config whose [archive] to check.
        #[arg(long, short)]
        config: PathBuf,
        /// Check this store instead: a SQLite file or a postgres:// URL.
        #[arg(long)]
        db: Option<String>,
        /// Also check the chain against these signed checkpoints (the
        /// copy kept off the machine): finds a cut-off end or a re-hashed chain.
        #[arg(long, requires = "public")]
        checkpoints: Option<PathBuf>,
        /// The archive key's public half (`imgate keygen` wrote it as .pub).
        #[arg(long = "pub", requires = "checkpoints")]
        public: Option<PathBuf>,
    },
    /// Find records; every option narrows the result.
    Search {
        #[arg(long, short)]
        config: PathBuf,
        /// A SQLite file or a postgres:// URL instead of the config's store.
        #[arg(long)]
        db: Option<String>,
        #[command(flatten)]
        filter: RecordFilter,
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON record per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove the contents of records past their retention ([archive]
    /// retention_days and retention.<network>), except under legal hold;
    /// the purge is itself an entry in the chain.
    Purge {
        #[arg(long, short)]
        config: PathBuf,
        /// A SQLite file or a postgres:// URL instead of the config's store.
        #[arg(long)]
        db: Option<String>,
        /// Who runs it, for the chain entry (default: the login name).
        #[arg(long)]
        by: Option<String>,
        /// Purge as of this time (ms since the epoch) instead of now.
        #[arg(long)]
        now: Option<u64>,
    },
    /// Messages a plugin held for review, awaiting a ruling (`--all`:
    /// every one ever held, with its ruling).
    Held {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        all: bool,
        /// One JSON object per line instead of a list.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a held message, through the running gateway's admin API
    /// ([admin] in the same config). Fails if the sender's session has
    /// ended; the ruling is recorded in the chain either way.
    Release {
        #[arg(long, short)]
        config: PathBuf,
        /// The event id `held` lists.
        event: String,
        #[arg(long)]
        note: Option<String>,
        /// Who rules, for the chain entry (default: the login name).
        #[arg(long)]
        by: Option<String>,
    },
    /// Do not deliver a held message; its sender is told `--note`.
    Reject {
        #[arg(long, short)]
        config: PathBuf,
        event: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Legal holds: records of a user or a room that no purge removes.
    Hold {
        #[command(subcommand)]
        command: HoldCommand,
    },
    /// Write records out — all, or those the filters select (the same as
    /// search's) — as JSONL or EML, with manifest.json listing every
    /// record's hash.
    Export {
        #[arg(long, short)]
        config: PathBuf,
        /// A SQLite file or a postgres:// URL instead of the config's store.
        #[arg(long)]
        db: Option<String>,
        /// jsonl (the canonical records) or eml (one file per message).
        #[arg(long, default_value = "jsonl")]
        format: crate::archive::export::Format,
        /// The directory to write into (created).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        filter: RecordFilter,
    },
}

/// Which records `archive search` and `archive export` select; every
/// option narrows.
#[derive(Debug, Args)]
pub struct RecordFilter {
    /// The session user, sender or recipient.
    #[arg(long)]
    participant: Option<String>,
    #[arg(long)]
    room: Option<String>,
    /// xmpp, irc or matrix.
    #[arg(long)]
    network: Option<String>,
    /// Full-text query (words, "a phrase", prefix*).
    #[arg(long)]
    text: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    /// allow, block, drop or rewrite.
    #[arg(long)]
    verdict: Option<String>,
    /// message, file_offer, presence, session_start, session_end, room_join, room_leave.
    #[arg(long)]
    kind: Option<String>,
    /// Milliseconds since the epoch (inclusive).
    #[arg(long)]
    since: Option<u64>,
    /// Milliseconds since the epoch (exclusive).
    #[arg(long)]
    until: Option<u64>,
}

impl RecordFilter {
    fn into_filter(self, limit: Option<usize>) -> crate::archive::Filter {
        crate::archive::Filter {
            participant: self.participant,
            room: self.room,
            since_ms: self.since,
            until_ms: self.until,
            text: self.text,
            tag: self.tag,
            action: self.verdict,
            kind: self.kind,
            network: self.network,
            limit,
            ..Default::default()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Accounts: add (the password from the terminal, or stdin's first
    /// line), remove, list.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account; the password is read from the terminal (twice, not
    /// echoed) or from stdin's first line.
    Add {
        #[arg(long, short)]
        config: PathBuf,
        name: String,
        /// reviewer (search, read, decide held messages, export) or admin
        /// (also legal holds and accounts).
        #[arg(long, default_value = "reviewer")]
        role: String,
        /// Who adds it, for the chain (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Remove an account; its sessions end at their next request.
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        name: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// The accounts, with their roles.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a hold on a user (`--user alice@corp.example`) or a room.
    Add {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, conflicts_with = "room", required_unless_present = "room")]
        user: Option<String>,
        #[arg(long)]
        room: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Lift hold ID.
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        id: i64,
        #[arg(long)]
        by: Option<String>,
    },
    /// The holds in force.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Start a plugin project that builds as it stands: the contract
    /// vendored at this host's version, the SDK wired to this checkout, a
    /// sample config and transcript (its test), a Makefile and a README
    /// that ends in shipping it.
    New {
        /// The plugin's name: lower-case words joined by `-` (link-guard).
        name: String,
        #[arg(long, value_enum)]
        lang: new_plugin::Lang,
        #[arg(long, value_enum, default_value = "policy")]
        role: new_plugin::Role,
        /// The capabilities it imports, comma-separated (log, clock,
        /// config, kv, archive, metrics, bridge, match), or `none`.
        /// Default: `match` for a policy, none for an observer.
        #[arg(long, value_delimiter = ',')]
        capabilities: Option<Vec<String>>,
        /// Where to write it (default: ./NAME); must not hold files.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The sdk/ directory of an imgate checkout (default: the one this
        /// binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Print a component's sha256, contract version, exports and the
    /// capabilities it asks for.
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign a component: writes FILE.wasm.sig over its sha256, name and
    /// version.
    Sign {
        /// The secret key from `imgate keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The plugin's name as released.
        #[arg(long)]
        name: String,
        /// The plugin's version as released.
        #[arg(long)]
        version: String,
        file: PathBuf,
    },
    /// Check a component's signature against a public key or the trusted
    /// keys of a config.
    Verify {
        /// A public key file (BASE.pub) to trust.
        #[arg(long = "pub", conflicts_with = "config")]
        public: Option<PathBuf>,
        /// Trust the keys under `[signing]` in this config.
        #[arg(long, short)]
        config: Option<PathBuf>,
        file: PathBuf,
    },
}

/// Runs one command. Problems the user can fix are printed and give a
/// non-zero exit; only unexpected failures return `Err`.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay { config, events } => replay::run(&config, &events),
        Command::Check { config } => check::run(&config),
        Command::Run { config } => run::run(&config),
        Command::Plugin { command } => match command {
            PluginCommand::Inspect { file, json } => inspect::run(&file, json),
            PluginCommand::New {
                name,
                lang,
                role,
                capabilities,
                dir,
                sdk,
            } => {
                let capabilities = match capabilities.as_deref().map(new_plugin::capabilities) {
                    None => None,
                    Some(Ok(caps)) => Some(caps),
                    Some(Err(e)) => {
                        eprintln!("error: --capabilities: {e}");
                        return Ok(ExitCode::from(2));
                    }
                };
                new_plugin::run(&new_plugin::Request {
                    name,
                    lang,
                    role,
                    capabilities,
                    dir,
                    sdk,
                })
            }
            PluginCommand::Sign {
                key,
                name,
                version,
                file,
            } => sign::sign(&key, &name, &version, &file),
            PluginCommand::Verify {
                public,
                config,
                file,
            } => sign::verify(public.as_deref(), config.as_deref(), &file),
        },
        Command::Console {
            command: ConsoleCommand::User { command },
        } => match command {
            UserCommand::Add {
                config,
                name,
                role,
                by,
            } => console::user_add(&config, &name, &role, by),
            UserCommand::Remove { config, name, by } => console::user_remove(&config, &name, by),
            UserCommand::List { config } => console::user_list(&config),
        },
        Command::Keygen { out } => sign::keygen(&out),
        Command::Cert { names, cert, key } => cert::run(&names, &cert, &key),
        Command::Archive { command } => match command {
            ArchiveCommand::Verify {
                config,
                db,
                checkpoints,
                public,
            } => archive::verify(&config, db, checkpoints.zip(public)),
            ArchiveCommand::Search {
                config,
                db,
                filter,
                limit,
                json,
            } => archive::search_cmd(&config, db, filter.into_filter(limit), json),
            ArchiveCommand::Purge {
                config,
                db,
                by,
                now,
            } => archive::purge(&config, db, by, now),
            ArchiveCommand::Held { config, all, json } => review::held(&config, all, json),
            ArchiveCommand::Release {
                config,
                event,
                note,
                by,
            } => review::rule(
                &config,
                &event,
                "release",
                by,
                note.as_deref().unwrap_or(""),
            ),
            ArchiveCommand::Reject {
                config,
                event,
                note,
                by,
            } => review::rule(&config, &event, "reject", by, note.as_deref().unwrap_or("")),
            ArchiveCommand::Hold { command } => match command {
                HoldCommand::Add {
                    config,
                    user,
                    room,
                    reason,
                    by,
                } => archive::hold_add(&config, user, room, &reason, by),
                HoldCommand::Remove { config, id, by } => archive::hold_remove(&config, id, by),
                HoldCommand::List { config } => archive::hold_list(&config),
            },
            ArchiveCommand::Export {
                config,
                db,
                format,
                out,
                filter,
            } => archive::export(&config, db, format, &out, filter.into_filter(None)),
        },
    }
}
