// keyword-block, in JavaScript: blocks messages that contain a configured word,
// and room subjects, reactions and kinds added after it was written whose
// text does.
//
// The same behaviour and config keys as the Rust plugins/keyword-block:
// - `words`: list of words or phrases (required, non-empty);
// - `match`: "whole-word" (default) or "substring";
// - `case_insensitive`: fold case before matching (default true);
// - `reason`: text shown to the sender; `{word}` is replaced by the match.
//
// The matching is the host's (`match`, granted like any capability): the
// words are compiled once, in `init`, and each event's text is searched in
// native code where it lies, without being copied into JavaScript. The
// plugin promises to allow every event without a hit (`callOnlyOnHit`), so
// the host calls it only for events that hold one of the words. A word
// character, case folding and the search order are the host's, so this
// plugin gives the Rust one's verdicts by construction.
//
// Built with componentize-js against wit/world.wit (world `keyword-block`:
// the `policy` role and `match`); see sdk/js/README.md.

import { Matcher } from "imgate:policy/match@0.2.2";

const DEFAULT_REASON = 'message blocked: contains "{word}"';
const KEYS = ["words", "match", "case_insensitive", "reason"];

// The kinds judged by their body only (none: allowed). A reaction, and any
// kind added after this plugin was written, is judged by its texts.
const JUDGED_BY_BODY = new Set([
  "message", "subject", "presence", "file-offer", "membership", "session-start", "session-end",
]);

// Set by lifecycle.init; every instance is initialised before its first event.
let settings = null;

function parseSettings(raw) {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw "config must be a table";
  }
  const unknown = Object.keys(raw).filter((k) => !KEYS.includes(k)).sort();
  if (unknown.length > 0) {
    throw `unknown field \`${unknown[0]}\`, expected one of ${KEYS.join(", ")}`;
  }
  const words = raw.words;
  if (!Array.isArray(words) || !words.every((w) => typeof w === "string")) {
    throw "`words` must be a list of strings";
  }
  const kept = words.filter((w) => w.trim() !== "");
  if (kept.length === 0) throw "`words` must list at least one non-empty word";
  const mode = raw.match ?? "whole-word";
  if (mode !== "whole-word" && mode !== "substring") {
    throw `unknown variant \`${mode}\`, expected \`whole-word\` or \`substring\``;
  }
  const caseInsensitive = raw.case_insensitive ?? true;
  if (typeof caseInsensitive !== "boolean") throw "`case_insensitive` must be true or false";
  const reason = raw.reason ?? DEFAULT_REASON;
  if (typeof reason !== "string") throw "`reason` must be a string";
  const matcher = Matcher.compile([
    { tag: "keywords", val: { words: kept, wholeWord: mode === "whole-word", ignoreCase: caseInsensitive } },
  ]);
  // An event without any of the words is allowed: the host need not call
  // this plugin for it at all.
  matcher.callOnlyOnHit("body-else-texts");
  return { words: kept, matcher, reason };
}

export const lifecycle = {
  init(config) {
    settings = parseSettings(JSON.parse(config));
  },
};

export const handler = {
  // Calling nothing on `out` allows the event.
  handle(event, out) {
    const found = settings.matcher.firstIn(event, "body-else-texts");
    if (found === undefined) return;
    if (found.role !== "body" && JUDGED_BY_BODY.has(event.kind())) return;
    out.tag("keyword:blocked");
    out.block(settings.reason.replaceAll("{word}", settings.words[found.hit.item]));
  },
};
