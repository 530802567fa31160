// {{name}}: an imgate plugin. `imgate plugin new` wrote this sample; make it
// yours. The guide: {{sdk}}/js/README.md
@@if policy
//
// As written it blocks messages that hold one of the configured `words`.
@@end
@@if observer
//
// It watches every event's final outcome.
@@end

// componentize-js resolves files, not package names: imgate-sdk by its path.
import { parseSettings } from "./node_modules/imgate-sdk/index.js";
@@if match
import { words as anyOf } from "./node_modules/imgate-sdk/index.js";
@@end
@@if log
import { log } from "imgate:policy/log@{{contract}}";
@@end
@@if clock
import { nowMs } from "imgate:policy/clock@{{contract}}";
@@end
@@if config
import { getString } from "imgate:policy/config@{{contract}}";
@@end
@@if kv
import { increment } from "imgate:policy/kv@{{contract}}";
@@end
@@if archive
import { append } from "imgate:policy/archive@{{contract}}";
@@end
@@if metrics
import { counterAdd } from "imgate:policy/metrics@{{contract}}";
@@end
@@if bridge
import { Outgoing } from "imgate:policy/bridge@{{contract}}";
@@end
@@if match
import { Matcher } from "imgate:policy/match@{{contract}}";
@@end

const DEFAULT_REASON = 'message blocked: it contains "{word}"';

// Set by lifecycle.init; every instance is initialised before its first event.
let words = [];
let reason = DEFAULT_REASON;
@@if match
let matcher = null;
@@end
@@if bridge
let reportTo = null;
@@end

export const lifecycle = {
  // `config` is the plugin's table from the operator's file, as JSON.
  // Throwing refuses the plugin with that reason.
  init(config) {
@@if !policy
    parseSettings(config, {}); // no settings yet: any key is a mistake
@@if log
    log("info", "ready");
@@end
@@end
@@if policy
    const settings = parseSettings(config, {
      words: "string[]",
      reason: ["string", DEFAULT_REASON],
@@if bridge
      report_to: ["string[]", null],
@@end
    });
    words = settings.words;
    if (words.length === 0) throw "`words` must list at least one word";
    reason = settings.reason;
@@if bridge
    reportTo = settings.report_to;
@@end
@@if match
    // The host matches: whole words, Unicode case folding.
    matcher = Matcher.compile([anyOf(words)]);
    // A message without a word is allowed: the host need not call us.
    matcher.callOnlyOnHit("body");
@@end
@@if log
    log("info", `ready with ${words.length} words`);
@@end
@@end
  },
};
@@if policy

// The configured word the event's body holds, if any.
function wordIn(event) {
@@if match
  const found = matcher.firstIn(event, "body");
  return found === undefined ? null : words[found.hit.item];
@@end
@@if !match
  const body = event.body(); // undefined for kinds without one and for encrypted messages
  if (body === undefined) return null;
  const lower = body.toLowerCase();
  return words.find((w) => lower.includes(w.toLowerCase())) ?? null;
@@end
}
@@end
@@if policy

export const handler = {
  // Calling nothing on `out` allows the event.
  handle(event, out) {
    const word = wordIn(event);
    if (word === null) return;
    const sender = event.sender();
    let text = reason;
@@if config
    // Read at call time: the operator's current setting.
    text = getString("reason") ?? reason;
@@end
    out.tag("{{ns}}:blocked");
    out.block(text.replaceAll("{word}", word));
@@if kv
    try {
      // Shared by every instance (and gateway): how often each sender was stopped.
      out.setAttribute("{{ns}}.times", String(increment(`blocked:${sender}`, 1n)));
    } catch (e) {
      // The store is down: the verdict stands without the count.
    }
@@end
@@if clock
    out.setAttribute("{{ns}}.at-ms", String(nowMs()));
@@end
@@if metrics
    counterAdd("blocked", 1n);
@@end
@@if log
    log("info", `blocked a message from ${sender}`);
@@end
@@if archive
    try {
      append(event, [["{{ns}}.word", word]]);
    } catch (e) {
      // Not archived; the verdict stands.
    }
@@end
@@if bridge
    if (reportTo !== null) {
      const report = new Outgoing(reportTo[0], reportTo[1]);
      report.body(`${sender} was stopped from sending "${word}"`);
      try {
        report.send();
      } catch (e) {
        // No relay there: nothing reported.
      }
    }
@@end
  },
};
@@end
@@if observer

export const observer = {
  observe(event, outcome) {
    const action = outcome.action();
@@if log
    log("debug", `${event.kind()} ${event.id()}: ${action}`);
@@end
@@if metrics
    counterAdd(`outcome_${action}`, 1n);
@@end
@@if kv
    increment(`outcomes:${action}`, 1n);
@@end
@@if archive
    append(event, []);
@@end
  },
};
@@end
