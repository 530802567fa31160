// imgate-sdk for JavaScript: helpers that need no host capability (the
// contract's own modules are imported by name, `imgate:policy/...`), so a
// plugin of any world can use them. componentize-js resolves files, not
// package names: import this as "./node_modules/imgate-sdk/index.js".

// The operator's table from init's JSON, checked against `fields`: each a
// type ("string", "boolean", "number", "string[]", "object"), which makes
// it required, or [type, default]. Throws the reason (which refuses the
// plugin) for an unknown key, a missing one or a wrong type.
export function parseSettings(config, fields) {
  let raw;
  try {
    raw = JSON.parse(config);
  } catch (e) {
    throw `config is not JSON: ${e}`;
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw "config must be a table";
  const names = Object.keys(fields).sort();
  const unknown = Object.keys(raw).filter((k) => !(k in fields)).sort();
  if (unknown.length > 0) throw `unknown field \`${unknown[0]}\`, expected one of ${names.join(", ")}`;
  const out = {};
  for (const name of names) {
    const spec = fields[name];
    const [type, fallback, required] = Array.isArray(spec) ? [spec[0], spec[1], false] : [spec, undefined, true];
    if (!(name in raw)) {
      if (required) throw `missing field \`${name}\``;
      out[name] = fallback;
      continue;
    }
    if (!isA(raw[name], type)) throw `\`${name}\` must be ${type}`;
    out[name] = raw[name];
  }
  return out;
}

function isA(value, type) {
  switch (type) {
    case "string[]":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "object":
      return value !== null && typeof value === "object" && !Array.isArray(value);
    default:
      return typeof value === type;
  }
}

// Rules for the host's matcher (`Matcher.compile(rules)` from
// "imgate:policy/match@0.2.2"; capability `match`).

// Any of `words`: whole words (no Unicode letter or number right before or
// after) and ignoring case (Unicode simple case folding) unless told otherwise.
export function words(list, { wholeWord = true, ignoreCase = true } = {}) {
  return { tag: "keywords", val: { words: [...list], wholeWord, ignoreCase } };
}

// A regular expression in Rust's `regex` syntax (linear time).
export function regex(pattern, { ignoreCase = false } = {}) {
  return { tag: "regex", val: { regex: pattern, ignoreCase } };
}

// card, iban, ssn, secret, aws-key, private-key, email, url.
export function detector(name) {
  return { tag: "detector", val: name };
}

// A hit's place in `text` as string (UTF-16) indices; the host counts
// UTF-8 bytes: text.slice(start, end) === hit.text.
export function span(text, hit) {
  let bytes = 0;
  let index = 0;
  while (index < text.length && bytes < hit.start) {
    const cp = text.codePointAt(index);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    index += cp > 0xffff ? 2 : 1;
  }
  return [index, index + hit.text.length];
}
