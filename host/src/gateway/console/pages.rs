//! The console's pages, rendered on the server with maud: every value is
//! escaped as it is written, and no archive text is ever markup. No page
//! has a script; every action is a form.

use maud::{DOCTYPE, Markup, html};

use super::form::{KINDS, NETWORKS, Search, VERDICTS};
use crate::archive::export::rfc3339;
use crate::archive::{Account, ArchiveRecord, AuditEntry, CopyState, HeldMessage, Hold, Role};
use crate::event::json::ActionDoc;

/// Who is looking, for the header and every form's CSRF token.
pub struct Viewer<'a> {
    pub account: &'a str,
    pub role: Role,
    pub csrf: &'a str,
}

fn csrf(v: &Viewer<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

/// A value as one path segment of a link.
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn when(ms: u64) -> String {
    rfc3339(ms).replace('T', " ").replace('Z', " UTC")
}

pub fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · imgate console" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header {
                    span.brand { "imgate " small { "compliance console" } }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/search" { "Search" }
                            a href="/held" { "Held messages" }
                            a href="/exports" { "Exports" }
                            a href="/chain" { "Chain" }
                            @if v.role == Role::Admin {
                                a href="/holds" { "Legal holds" }
                                a href="/users" { "Accounts" }
                            }
                        }
                        form.who method="post" action="/logout" {
                            (csrf(v))
                            span { (v.account) " · " (v.role.name()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page that only says something (an error, a refusal).
pub fn notice(title: &str, viewer: Option<&Viewer<'_>>, text: &str) -> Markup {
    layout(title, viewer, html! { p.notice { (text) } })
}

pub fn login(error: Option<&str>, token: &str, next: &str) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.error { (e) } }
            form.login method="post" action="/login" {
                input type="hidden" name="login_csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label { "Account" input type="text" name="account" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
            p.hint { "Every page you open that shows messages, every decision and every export is recorded in the archive's chain under your account." }
        },
    )
}

fn select(name: &str, current: &str, options: &[&str], any: &str) -> Markup {
    html! {
        select name=(name) {
            option value="" selected[current.is_empty()] { (any) }
            @for o in options { option value=(o) selected[current == *o] { (o) } }
        }
    }
}

fn search_form(s: &Search) -> Markup {
    html! {
        form.search method="get" action="/search" {
            label { "Participant" input type="text" name="participant" value=(s.participant) placeholder="alice@corp.example"; }
            label { "Room" input type="text" name="room" value=(s.room); }
            label { "Network" (select("network", &s.network, NETWORKS, "any")) }
            label { "Text" input type="text" name="text" value=(s.text) placeholder="words, \"a phrase\", prefix*"; }
            label { "Tag" input type="text" name="tag" value=(s.tag); }
            label { "Verdict" (select("verdict", &s.verdict, VERDICTS, "any")) }
            label { "Kind" (select("kind", &s.kind, KINDS, "any")) }
            label { "From (UTC)" input type="datetime-local" name="since" value=(s.since); }
            label { "Until (UTC)" input type="datetime-local" name="until" value=(s.until); }
            button type="submit" { "Search" }
        }
    }
}

fn verdict(r: &ArchiveRecord) -> Markup {
    match &r.verdict {
        None => html! { span.verdict { "—" } },
        Some(v) => {
            let name = v.action.name();
            html! {
                span class={ "verdict " (name) } { (name) }
                @match &v.action {
                    ActionDoc::Block { reason } | ActionDoc::Hold { reason } => { " " span.reason { (reason) } }
                    _ => {}
                }
            }
        }
    }
}

fn tags(r: &ArchiveRecord) -> Markup {
    let list = r.verdict.as_ref().map_or(&r.event.tags, |v| &v.tags);
    html! { @for t in list { span.tag { (t) } " " } }
}

fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(160).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

pub struct Page<'a> {
    pub search: &'a Search,
    pub records: &'a [ArchiveRecord],
    pub older: Option<u64>,
    pub error: Option<&'a str>,
}

pub fn search(v: &Viewer<'_>, page: &Page<'_>) -> Markup {
    let s = page.search;
    layout(
        "Search",
        Some(v),
        html! {
            (search_form(s))
            @if let Some(e) = page.error { p.error { (e) } }
            @if page.records.is_empty() && page.error.is_none() {
                p.notice { "Nothing matches." }
            } @else if !page.records.is_empty() {
                table.results {
                    thead { tr { th { "#" } th { "Time" } th { "Network" } th { "Kind" } th { "From" } th { "To" } th { "Verdict" } th { "Tags" } th { "Text" } } }
                    tbody {
                        @for r in page.records {
                            @let c = r.columns();
                            tr {
                                td { a href={ "/conversation/" (r.seq) } { (r.seq) } }
                                td.time { (when(r.appended_ms)) }
                                td { (c.network) }
                                td { (c.kind) }
                                td { (c.sender.as_deref().unwrap_or(&c.user)) }
                                td { (c.room.as_deref().or(c.recipient.as_deref()).unwrap_or("")) }
                                td { (verdict(r)) }
                                td { (tags(r)) }
                                td.text { a href={ "/conversation/" (r.seq) } { (excerpt(c.body.as_deref().unwrap_or(""))) } }
                            }
                        }
                    }
                }
                p.paging {
                    @if s.before.is_some() { a href={ "/search?" (s.query(None)) } { "Newest" } " " }
                    @if let Some(older) = page.older { a href={ "/search?" (s.query(Some(older))) } { "Older →" } }
                }
                form.export method="post" action="/exports" {
                    (csrf(v))
                    @for (name, value) in s.pairs() { input type="hidden" name=(name) value=(value); }
                    span { "Export everything this search finds (not only this page):" }
                    button type="submit" name="format" value="jsonl" { "Export JSONL" }
                    button type="submit" name="format" value="eml" { "Export EML" }
                }
            }
        },
    )
}

/// One message of a conversation, with its bridged relations.
pub struct Line {
    pub record: ArchiveRecord,
    pub copies: Vec<CopyState>,
}

pub fn conversation(v: &Viewer<'_>, hit: u64, around: &str, lines: &[Line]) -> Markup {
    layout(
        "Conversation",
        Some(v),
        html! {
            p.hint { (around) ". Entry " (hit) " is marked." }
            @for line in lines {
                @let r = &line.record;
                @let c = r.columns();
                article.message.hit[r.seq == hit] id={ "e" (r.seq) } {
                    div.meta {
                        a href={ "/conversation/" (r.seq) } { "#" (r.seq) }
                        " " span.time { (when(r.appended_ms)) }
                        " " (c.network) " · " (c.kind) " · " (c.direction)
                        " · " strong.from { (c.sender.as_deref().unwrap_or(&c.user)) }
                        " → " (c.room.as_deref().or(c.recipient.as_deref()).unwrap_or(""))
                        " · " span.by { "archived by " (r.plugin) }
                    }
                    @if let Some(body) = c.body.as_deref() {
                        div.body { span.label { "Sent" } pre.text { (body) } }
                    }
                    @if let Some(ActionDoc::Rewrite { body }) = r.verdict.as_ref().map(|v| &v.action) {
                        div.body.delivered { span.label { "Delivered" } pre.text { (body) } }
                    }
                    @if r.event.message.as_ref().is_some_and(|m| m.markup.is_some()) {
                        p.hint { "The message also carried markup, which is kept in the archive and not shown as HTML." }
                    }
                    div.verdict-line {
                        "Verdict: " (verdict(r))
                        @if let Some(d) = r.verdict.as_ref().and_then(|v| v.decided_by.as_ref()) {
                            " · decided by " strong { (d.plugin) } " " code.sha { (d.sha256) }
                        }
                        @if let Some(v) = &r.verdict {
                            @if !v.removed_attachments.is_empty() {
                                " · attachments removed: " @for a in &v.removed_attachments { code { (a) } " " }
                            }
                        }
                        " " (tags(r))
                    }
                    @if let Some(origin) = r.event.attributes.get(crate::event::bridge::ORIGIN) {
                        p.bridge { "Bridged copy of " a href={ "/event/" (segment(origin)) } { (origin) } }
                    }
                    @for copy in &line.copies {
                        p.bridge {
                            "Copied to " (copy.copy_network) " " (copy.copy_room) " (" (copy.state)
                            @if let Some(why) = &copy.reason { ": " (why) }
                            ") " a href={ "/event/" (segment(&copy.copy_event)) } { "the copy" }
                        }
                    }
                }
            }
        },
    )
}

pub fn held(
    v: &Viewer<'_>,
    waiting: &[HeldMessage],
    decided: &[HeldMessage],
    notice: Option<&str>,
) -> Markup {
    layout(
        "Held messages",
        Some(v),
        html! {
            @if let Some(n) = notice { p.notice { (n) } }
            @if waiting.is_empty() { p.notice { "Nothing is waiting for review." } }
            @for h in waiting {
                article.held id={ "h-" (h.event_id) } {
                    div.meta {
                        a href={ "/conversation/" (h.seq) } { "#" (h.seq) }
                        " " span.time { (when(h.held_ms)) } " " (h.network) " · "
                        strong.from { (h.sender) } " → " (h.target)
                    }
                    pre.text { (h.body.as_deref().unwrap_or("")) }
                    p { "Held by " strong { (h.held_by.as_deref().unwrap_or("?")) } ": " (h.reason) }
                    form.decide method="post" action={ "/held/" (segment(&h.event_id)) } {
                        (csrf(v))
                        label { "Reason (recorded; a rejected message's sender is told)"
                            textarea name="reason" required maxlength="1000" rows="2" {} }
                        button type="submit" name="decision" value="release" { "Release" }
                        button.danger type="submit" name="decision" value="reject" { "Reject" }
                    }
                }
            }
            @if !decided.is_empty() {
                h2 { "Decided" }
                table.results {
                    thead { tr { th { "#" } th { "Held" } th { "From" } th { "Text" } th { "Decision" } th { "By" } th { "Reason" } th { "Outcome" } } }
                    tbody {
                        @for h in decided {
                            tr {
                                td { a href={ "/conversation/" (h.seq) } { (h.seq) } }
                                td.time { (when(h.held_ms)) }
                                td { (h.sender) }
                                td.text { (excerpt(h.body.as_deref().unwrap_or(""))) }
                                td { span class={ "status " (h.status) } { (h.status) } }
                                td { (h.reviewer.as_deref().unwrap_or("")) }
                                td { (h.note.as_deref().unwrap_or("")) }
                                td { (h.outcome.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn holds(v: &Viewer<'_>, holds: &[Hold], notice: Option<&str>) -> Markup {
    layout(
        "Legal holds",
        Some(v),
        html! {
            @if let Some(n) = notice { p.notice { (n) } }
            p.hint { "Records of a user or room under a legal hold are kept past retention until the hold is lifted." }
            @if holds.is_empty() { p.notice { "No legal holds are in force." } } @else {
                table.results {
                    thead { tr { th { "Id" } th { "On" } th { "Who or which room" } th { "Reason" } th { "Placed" } th { "By" } th {} } }
                    tbody {
                        @for h in holds {
                            tr {
                                td { (h.id) } td { (h.kind) } td { (h.value) } td { (h.reason) }
                                td.time { (when(h.created_ms)) } td { (h.created_by) }
                                td { form method="post" action={ "/holds/" (h.id) "/remove" } { (csrf(v)) button.danger type="submit" { "Lift" } } }
                            }
                        }
                    }
                }
            }
            h2 { "Place a hold" }
            form.inline method="post" action="/holds" {
                (csrf(v))
                label { "On" select name="kind" { option value="user" { "user" } option value="room" { "room" } } }
                label { "User or room" input type="text" name="value" required maxlength="512"; }
                label { "Reason" input type="text" name="reason" required maxlength="1000"; }
                button type="submit" { "Place hold" }
            }
        },
    )
}

pub fn users(v: &Viewer<'_>, accounts: &[Account], notice: Option<&str>) -> Markup {
    layout(
        "Accounts",
        Some(v),
        html! {
            @if let Some(n) = notice { p.notice { (n) } }
            table.results {
                thead { tr { th { "Account" } th { "Role" } th { "Added" } th { "By" } th {} } }
                tbody {
                    @for a in accounts {
                        tr {
                            td { (a.name) } td { (a.role.name()) } td.time { (when(a.created_ms)) } td { (a.created_by) }
                            td { @if a.name != v.account {
                                form method="post" action={ "/users/" (segment(&a.name)) "/remove" } { (csrf(v)) button.danger type="submit" { "Remove" } }
                            } }
                        }
                    }
                }
            }
            h2 { "Add an account" }
            form.inline method="post" action="/users" {
                (csrf(v))
                label { "Name" input type="text" name="name" required maxlength="64" pattern="[a-z0-9._@-]+"; }
                label { "Role" select name="role" { option value="reviewer" { "reviewer" } option value="admin" { "admin" } } }
                label { "Password" input type="password" name="password" required minlength=(crate::archive::MIN_PASSWORD_CHARS) autocomplete="new-password"; }
                button type="submit" { "Add" }
            }
        },
    )
}

pub fn exports(v: &Viewer<'_>, past: &[AuditEntry]) -> Markup {
    layout(
        "Exports",
        Some(v),
        html! {
            p { "Export from the " a href="/search" { "search page" } ": search, then " em { "Export JSONL" } " or " em { "Export EML" } ". The download is a tar holding the records, " code { "manifest.json" } " (each record's number and chain links) and " code { "CHAIN.txt" } " (how to check them)." }
            p { "A recipient checks each line of " code { "records.jsonl" } " against the manifest: sha256 of the previous hash's bytes followed by the line is the record's hash. "
                code { "imgate archive verify" } " proves those hashes belong to one unbroken chain, and the export entry below records the manifest's sha256." }
            @if past.is_empty() { p.notice { "No exports yet." } } @else {
                table.results {
                    thead { tr { th { "Entry" } th { "When" } th { "By" } th { "Format" } th { "Records" } th { "Search" } th { "manifest.json sha256" } } }
                    tbody {
                        @for e in past {
                            tr {
                                td { (e.seq) } td.time { (when(e.at_ms)) } td { (e.by) }
                                td { (e.details["format"].as_str().unwrap_or("")) }
                                td { (e.details["records"]) }
                                td { code { (e.details["search"]) } }
                                td { code.sha { (e.details["manifest_sha256"].as_str().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub struct ChainStatus {
    pub records: u64,
    pub head: String,
    pub checkpoints: usize,
    pub last_verify: Option<AuditEntry>,
}

pub fn chain(v: &Viewer<'_>, s: &ChainStatus, notice: Option<&str>) -> Markup {
    layout(
        "Chain",
        Some(v),
        html! {
            @if let Some(n) = notice { p.notice { (n) } }
            dl.status {
                dt { "Entries" } dd { (s.records) }
                dt { "Head hash" } dd { code.sha { (s.head) } }
                dt { "Signed checkpoints" } dd { (s.checkpoints) }
                dt { "Last verified" }
                dd {
                    @match &s.last_verify {
                        None => "never from the console",
                        Some(e) => {
                            (when(e.at_ms)) " by " (e.by) ": "
                            @if e.details["ok"] == true {
                                span.verdict.allow { "intact" } " (" (e.details["records"]) " entries, head " code.sha { (e.details["head"].as_str().unwrap_or("")) } ")"
                            } @else {
                                span.verdict.block { "broken" } " " (e.details["broken"].as_str().unwrap_or(""))
                            }
                        }
                    }
                }
            }
            form method="post" action="/chain/verify" {
                (csrf(v))
                button type="submit" { "Verify the whole chain now" }
            }
            p.hint { "Verifying walks every entry; the result is itself recorded in the chain. " code { "imgate archive verify --checkpoints" } " also checks the signed checkpoints." }
        },
    )
}
