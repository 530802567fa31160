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
// Built with componentize-js against wit/ (world `policy`); see sdk/js/README.md.

import { isWordCodePoint } from "./word-chars.js";

const DEFAULT_REASON = 'message blocked: contains "{word}"';
const KEYS = ["words", "match", "case_insensitive", "reason"];

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
  const fold = caseInsensitive ? (s) => s.toLowerCase() : (s) => s;
  return { words: kept, patterns: kept.map(fold), mode, fold, reason };
}

// The code point before `start` in `text` (UTF-16 indices), or -1.
function codePointBefore(text, start) {
  if (start === 0) return -1;
  const low = text.charCodeAt(start - 1);
  if (low >= 0xdc00 && low <= 0xdfff && start >= 2) return text.codePointAt(start - 2);
  return low;
}

function isWholeWord(text, start, end) {
  const before = codePointBefore(text, start);
  const after = end < text.length ? text.codePointAt(end) : -1;
  return !(before >= 0 && isWordCodePoint(before)) && !(after >= 0 && isWordCodePoint(after));
}

// The configured word that matches first (earliest end), if any.
function find(s, body) {
  const text = s.fold(body);
  let best = null;
  s.patterns.forEach((pattern, index) => {
    for (let start = text.indexOf(pattern); start !== -1; start = text.indexOf(pattern, start + 1)) {
      const end = start + pattern.length;
      if (s.mode === "substring" || isWholeWord(text, start, end)) {
        if (best === null || end < best.end) best = { end, index };
        break;
      }
    }
  });
  return best === null ? null : s.words[best.index];
}

export const lifecycle = {
  init(config) {
    settings = parseSettings(JSON.parse(config));
  },
};

// Kinds with no text to judge. Kinds this plugin does not know are judged by
// their texts (`texts()`), as reactions are; these are allowed.
const KNOWN_WITHOUT_TEXT = new Set(["presence", "file-offer", "membership", "session-start", "session-end"]);

export const handler = {
  // Calling nothing on `out` allows the event.
  handle(event, out) {
    const body = event.body();
    let word = null;
    if (body !== undefined) {
      word = find(settings, body);
    } else if (!KNOWN_WITHOUT_TEXT.has(event.kind())) {
      for (const text of event.texts()) {
        word = find(settings, text.value);
        if (word !== null) break;
      }
    }
    if (word !== null) {
      out.tag("keyword:blocked");
      out.block(settings.reason.replaceAll("{word}", word));
    }
  },
};
