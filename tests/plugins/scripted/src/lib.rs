//! A configurable test plugin for chain semantics: rewrites, tags, blocks
//! and drops chosen by config, so tests can build chains that show order,
//! rewrite feeding and tag visibility. Also counts calls in `kv` when
//! `count` is set, to show the capability is shared across instances.

use imgate_sdk::{Config, Event, Plugin, Verdict, kv, log, metrics};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// `[from, to]`: rewrite messages containing `from`.
    replace: Option<(String, String)>,
    /// Tag every message with this.
    tag: Option<String>,
    block_if_tag: Option<String>,
    block_if_body_contains: Option<String>,
    drop_if_body_contains: Option<String>,
    /// Hold what the local user sends (outbound only, as a reviewer's
    /// queue for staff's messages would).
    hold_if_body_contains: Option<String>,
    /// Remove every attachment whose URL contains this.
    remove_attachments_containing: Option<String>,
    /// `[key, value]`: set this attribute on every message.
    attribute: Option<(String, String)>,
    /// Count calls in kv under this key and log/measure each.
    count: Option<String>,
    /// Block every file offer, naming the file.
    block_file_offers: bool,
    /// Block file offers larger than this many bytes.
    block_files_over: Option<u64>,
    /// Rewrite every event, whatever its kind, to this text (to try what
    /// the host refuses: encrypted content, events with no text).
    rewrite_to: Option<String>,
    /// What `interest` answers (kinds, and `each-recipient`).
    interest: Option<Vec<String>>,
}

pub struct Scripted(Settings);

impl Plugin for Scripted {
    fn init(config: Config) -> Result<Self, String> {
        Ok(Scripted(config.parse()?))
    }

    fn interest(&self) -> Option<Vec<String>> {
        self.0.interest.clone()
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        let s = &self.0;
        if let Some(key) = &s.count {
            let n = kv::increment(key, 1).unwrap_or(-1);
            log::info(&format!("call {n}"));
            metrics::counter_add("calls", 1);
        }
        if s.block_file_offers
            && let Some(offer) = event.file_offer()
        {
            return Verdict::block(format!("file transfers are not allowed: {}", offer.name));
        }
        if let (Some(limit), Some(offer)) = (s.block_files_over, event.file_offer())
            && offer.size.is_some_and(|size| size > limit)
        {
            return Verdict::block(format!(
                "{} is over the {limit}-byte file limit",
                offer.name
            ));
        }
        if let Some(text) = &s.rewrite_to {
            return Verdict::rewrite(text.clone());
        }
        let Some(body) = event.body() else {
            return Verdict::allow();
        };
        let body = body.as_str();
        let contains = |w: &Option<String>| w.as_deref().is_some_and(|w| body.contains(w));
        let mut verdict = Verdict::allow();
        if let Some(part) = &s.remove_attachments_containing {
            for a in event.attachments() {
                if a.url.contains(part.as_str()) {
                    verdict = verdict.with_attachment_removed(a.url);
                }
            }
        }
        if let Some(t) = s.block_if_tag.as_deref().filter(|t| event.has_tag(t)) {
            verdict = Verdict::block(format!("saw tag {t}"));
        }
        if contains(&s.block_if_body_contains) {
            let w = s.block_if_body_contains.as_deref().unwrap_or_default();
            verdict = Verdict::block(format!("body has {w}"));
        }
        if contains(&s.drop_if_body_contains) {
            verdict = Verdict::drop();
        }
        if event.is_outbound() && contains(&s.hold_if_body_contains) {
            verdict = Verdict::hold("held for review by scripted");
        }
        if let Some((from, to)) = &s.replace
            && verdict.is_allow()
            && body.contains(from.as_str())
        {
            verdict = Verdict::rewrite(body.replace(from.as_str(), to));
        }
        if let Some((k, v)) = &s.attribute {
            verdict = verdict.with_attribute(k.clone(), v.clone());
        }
        match &s.tag {
            Some(t) => verdict.with_tag(t.clone()),
            None => verdict,
        }
    }
}

imgate_sdk::export_plugin!(Scripted);
