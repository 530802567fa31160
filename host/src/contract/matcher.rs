//! The value behind a `matcher` handle (`match` interface): compiled
//! rules, shared by the instances of a plugin that compiled the same ones.

use std::sync::Arc;

pub struct MatcherRef(pub Arc<imgate_match::Matcher>);
