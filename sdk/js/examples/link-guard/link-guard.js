// link-guard: blocks outbound messages that link to hosts outside an
// allow-list, tags inbound ones, and counts what it saw.
//
// The guide's worked example (sdk/js/README.md), written the same way in
// Rust (sdk/examples/link_guard.rs) and Python (sdk/python/examples/link_guard):
// links and hosts are found by the host's `match`, so the three agree on
// every text, tricky ones included (a control character after a link, the
// Kelvin sign in a host name).
//
// Config: `allowed_domains`, hosts links may point to; subdomains count.
// Grants: `match`, `metrics`.

import { Matcher, normalizeHost } from "imgate:policy/match@0.2.2";
import { counterAdd } from "imgate:policy/metrics@0.2.2";
// componentize-js resolves files, not package names: imgate-sdk by its path.
import { detector, parseSettings } from "./node_modules/imgate-sdk/index.js";

// Set by lifecycle.init; every instance is initialised before its first event.
let allowed = [];
let links = null;

const allows = (host) => allowed.some((d) => host === d || host.endsWith("." + d));

export const lifecycle = {
  init(config) {
    const settings = parseSettings(config, { allowed_domains: "string[]" });
    allowed = settings.allowed_domains.map((d) => {
      const host = normalizeHost(d);
      if (host === undefined) throw `\`allowed_domains\`: \`${d}\` is not a host name`;
      return host;
    });
    links = Matcher.compile([detector("url")]);
    // An event without a link is allowed: the host need not call us.
    links.callOnlyOnHit("texts");
  },
};

export const handler = {
  handle(event, out) {
    // Every text: the body, rich text, a subject, a file's link.
    for (const { hit } of links.findIn(event, "texts")) {
      if (hit.host !== undefined && allows(hit.host)) continue;
      counterAdd("foreign_links", 1n);
      out.tag("link:external");
      if (event.direction() === "outbound") {
        out.block(`links to ${hit.host ?? hit.text} may not be sent`);
      }
      return;
    }
  },
};
