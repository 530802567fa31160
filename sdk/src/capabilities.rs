//! Typed calls to the host capabilities. On wasm they call the component's
//! imports; on native targets they call the [`crate::testing`] host, so
//! plugin logic runs under `cargo test`.
//!
//! A plugin's component imports only the interfaces it calls, and the
//! operator must grant each one.

macro_rules! host_call {
    ($wasm:expr, $native:expr) => {{
        #[cfg(target_arch = "wasm32")]
        {
            $wasm
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            $native
        }
    }};
}

/// Log lines in the host's structured log, tagged with the plugin's name.
pub mod log {
    use crate::Level;

    pub fn log(level: Level, message: &str) {
        host_call!(
            crate::bindings::host::log::log(level, message),
            crate::testing::with_host(|h| h.logs.push((level, message.to_owned())))
        )
    }
    pub fn trace(message: &str) {
        log(Level::Trace, message)
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Wall and monotonic time.
pub mod clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        host_call!(
            crate::bindings::host::clock::now_ms(),
            crate::testing::with_host(|h| h.now_ms)
        )
    }

    /// Nanoseconds on a monotonic clock shared by all instances.
    pub fn monotonic_ns() -> u64 {
        host_call!(
            crate::bindings::host::clock::monotonic_ns(),
            crate::testing::with_host(|h| h.now_ms.saturating_mul(1_000_000))
        )
    }
}

/// Read settings after `init` (the `config` capability). Most plugins only
/// need the [`crate::Config`] given to `init`.
pub mod settings {
    /// A setting as JSON text.
    pub fn get(key: &str) -> Option<String> {
        host_call!(
            crate::bindings::host::config::get(key),
            crate::testing::with_host(|h| h.config.get(key).map(|v| v.to_string()))
        )
    }

    /// A string setting, unquoted.
    pub fn get_string(key: &str) -> Option<String> {
        host_call!(
            crate::bindings::host::config::get_string(key),
            crate::testing::with_host(|h| h
                .config
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned))
        )
    }
}

/// Key-value state private to the plugin, shared by all its instances.
pub mod kv {
    use crate::KvError;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        host_call!(
            crate::bindings::host::kv::get(key),
            crate::testing::with_host(|h| Ok(h.kv_get(key)))
        )
    }

    /// Sets `key`; with `ttl_ms` it expires after that many milliseconds.
    pub fn set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), KvError> {
        host_call!(
            crate::bindings::host::kv::set(key, value, ttl_ms),
            crate::testing::with_host(|h| {
                h.kv_set(key, value.to_vec(), ttl_ms);
                Ok(())
            })
        )
    }

    pub fn delete(key: &str) -> Result<bool, KvError> {
        host_call!(
            crate::bindings::host::kv::delete(key),
            crate::testing::with_host(|h| Ok(h.kv.remove(key).is_some()))
        )
    }

    /// Atomically adds `delta` to a decimal counter (missing counts as 0).
    pub fn increment(key: &str, delta: i64) -> Result<i64, KvError> {
        host_call!(
            crate::bindings::host::kv::increment(key, delta),
            crate::testing::with_host(|h| h.kv_increment(key, delta))
        )
    }

    /// Sets `key` to `new` only if it holds `expected` (`None`: absent).
    pub fn compare_and_swap(
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        host_call!(
            crate::bindings::host::kv::compare_and_swap(key, expected, new),
            crate::testing::with_host(|h| {
                if h.kv_get(key).as_deref() != expected {
                    return Ok(false);
                }
                h.kv_set(key, new.to_vec(), None);
                Ok(true)
            })
        )
    }
}

/// The compliance archive; `append` returns once the record is durable.
pub mod archive {
    use crate::Event;

    /// Archives the event being judged, as the host has it, with the
    /// chain's final verdict when called from `observe`. You choose what to
    /// archive and how to annotate it; the record itself is the host's.
    /// Returns the record's number.
    pub fn append(event: &Event<'_>, annotations: &[(String, String)]) -> Result<u64, String> {
        host_call!(
            match event.view() {
                Some(view) => crate::bindings::host::archive::append(view, annotations),
                None => Err("archive::append needs the event being judged".to_string()),
            },
            crate::testing::with_host(|h| {
                let record = event
                    .record()
                    .ok_or("archive::append needs the event being judged")?;
                h.archive.push(crate::testing::ArchivedRecord {
                    event: record.clone(),
                    verdict: h.observing.clone(),
                    annotations: annotations.to_vec(),
                });
                Ok(h.archive.len() as u64)
            })
        )
    }
}

/// Counters and histograms the plugin defines. Names are `[a-z_][a-z0-9_]*`.
pub mod metrics {
    pub fn counter_add(name: &str, delta: u64) {
        host_call!(
            crate::bindings::host::metrics::counter_add(name, delta),
            crate::testing::with_host(|h| *h.counters.entry(name.to_owned()).or_default() += delta)
        )
    }

    pub fn histogram_observe(name: &str, value: f64) {
        host_call!(
            crate::bindings::host::metrics::histogram_observe(name, value),
            crate::testing::with_host(|h| h
                .histograms
                .entry(name.to_owned())
                .or_default()
                .push(value))
        )
    }
}

/// Send messages into other networks (since contract 0.2.1). The host
/// judges each copy on its own network, archives it, and delivers it
/// through the gateway's relay identity there; a plugin never writes to a
/// network itself. See the `bridge` interface in `wit/host.wit`.
pub mod bridge {
    use crate::NetworkId;

    /// What became of a sent message.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Delivery {
        Pending,
        /// With the ids the destination network gave the copy.
        Delivered(Vec<NetworkId>),
        /// The destination's policy stopped it.
        Refused(String),
        /// It could not be written to its network.
        Failed(String),
        /// Never issued, or purged under retention.
        Unknown,
    }

    /// A message for another network. Build it, then [`Outgoing::send`]
    /// while handling or observing the event it comes from.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Outgoing {
        pub network: String,
        pub to: String,
        pub body: Option<String>,
        pub markup: Option<(String, String)>,
        /// `(rel-type, target, key)`.
        pub relation: Option<(String, String, Option<String>)>,
        pub author: Option<String>,
        pub emote: bool,
    }

    impl Outgoing {
        /// To `to` (a room the relay is in, or a user) on `network`.
        pub fn new(network: &str, to: &str) -> Self {
            Outgoing {
                network: network.to_owned(),
                to: to.to_owned(),
                ..Outgoing::default()
            }
        }

        pub fn body(mut self, text: &str) -> Self {
            self.body = Some(text.to_owned());
            self
        }

        /// Rich text in `format` (`xhtml-im`, `irc-formatting`).
        pub fn markup(mut self, format: &str, text: &str) -> Self {
            self.markup = Some((format.to_owned(), text.to_owned()));
            self
        }

        /// Follows another message: `edit`, `retraction`, `reply`,
        /// `reaction`; `target` as the event names it (a relation's target)
        /// or an imgate event id.
        pub fn relates_to(mut self, rel_type: &str, target: &str, key: Option<&str>) -> Self {
            self.relation = Some((
                rel_type.to_owned(),
                target.to_owned(),
                key.map(str::to_owned),
            ));
            self
        }

        /// The original author's display name, for the relay's format.
        pub fn author(mut self, display_name: &str) -> Self {
            self.author = Some(display_name.to_owned());
            self
        }

        /// A /me action.
        pub fn emote(mut self) -> Self {
            self.emote = true;
            self
        }

        /// Sends it; the ticket follows it ([`status`]).
        ///
        /// # Errors
        /// Not handling an event, no body, or no relay for the network.
        pub fn send(&self) -> Result<String, String> {
            host_call!(
                {
                    use crate::bindings::host::bridge::Outgoing as Wit;
                    let out = Wit::new(&self.network, &self.to);
                    if let Some(body) = &self.body {
                        out.body(body);
                    }
                    if let Some((format, text)) = &self.markup {
                        out.markup(format, text);
                    }
                    if let Some((rel, target, key)) = &self.relation {
                        out.relates_to(rel, target, key.as_deref());
                    }
                    if let Some(author) = &self.author {
                        out.author(author);
                    }
                    if self.emote {
                        out.emote();
                    }
                    out.send()
                },
                crate::testing::with_host(|h| h.bridge_send(self))
            )
        }
    }

    /// Where a sent message is.
    pub fn status(ticket: &str) -> Delivery {
        host_call!(
            {
                use crate::bindings::host::bridge::{Delivery as Wit, status};
                match status(ticket) {
                    Wit::Pending => Delivery::Pending,
                    Wit::Delivered(ids) => Delivery::Delivered(ids),
                    Wit::Refused(r) => Delivery::Refused(r),
                    Wit::Failed(r) => Delivery::Failed(r),
                    Wit::Unknown => Delivery::Unknown,
                }
            },
            crate::testing::with_host(|h| h
                .deliveries
                .get(ticket)
                .cloned()
                .unwrap_or(Delivery::Unknown))
        )
    }
}
