// The imgate:policy@0.2.2 contract as componentize-js presents it to a
// plugin, written by hand from wit/ (jco cannot read WIT files on every
// Node). Names are camelCase; option<T> is T | undefined; a result's error
// is thrown; u64/s64 are bigint. Import only what your world imports.

declare module "imgate:policy/types@0.2.2" {
  export type Direction = "outbound" | "inbound";
  export interface Session { id: string; user: string; peer: string }
  export interface Text { role: string; value: string }
  export interface NetworkId { kind: string; value: string; by?: string }
  export interface Relation { relType: string; target: string; key?: string }
  export interface Attachment { url: string; name?: string; mediaType?: string; size?: bigint }
  export interface Presence { available: boolean; show?: string; status?: string }
  export interface FileOffer { name: string; size?: bigint; mediaType?: string }
  export interface Membership { change: string; occupant: string; nick?: string; reason?: string }
  export interface Decider { plugin: string; sha256: string }
  /** The event being judged, lent for one call. */
  export class EventView {
    id(): string;
    network(): string;
    direction(): Direction;
    session(): Session;
    timestamp(): bigint;
    kind(): string;
    sender(): string;
    recipient(): string | undefined;
    room(): string | undefined;
    body(): string | undefined;
    markup(): string | undefined;
    markupFormat(): string | undefined;
    texts(): Text[];
    attachments(): Attachment[];
    encrypted(): boolean;
    emote(): boolean;
    ids(): NetworkId[];
    relations(): Relation[];
    presence(): Presence | undefined;
    fileOffer(): FileOffer | undefined;
    membership(): Membership | undefined;
    endReason(): string | undefined;
    tags(): string[];
    hasTag(tag: string): boolean;
    attribute(key: string): string | undefined;
    attributes(): [string, string][];
    toJson(): string;
  }
  /** Where a policy writes its verdict; calling nothing allows. */
  export class VerdictOut {
    block(reason: string): void;
    discard(): void;
    hold(reason: string): void;
    rewriteBody(text: string): void;
    removeAttachment(url: string): void;
    tag(tag: string): void;
    setAttribute(key: string, value: string): void;
  }
  /** The chain's final outcome, for observers. */
  export class OutcomeView {
    action(): string;
    reason(): string | undefined;
    deliveredBody(): string | undefined;
    decidedBy(): Decider | undefined;
    tags(): string[];
  }
}

declare module "imgate:policy/log@0.2.2" {
  export type Level = "trace" | "debug" | "info" | "warn" | "error";
  export function log(level: Level, message: string): void;
}

declare module "imgate:policy/clock@0.2.2" {
  export function nowMs(): bigint;
  export function monotonicNs(): bigint;
}

declare module "imgate:policy/config@0.2.2" {
  export function get(key: string): string | undefined;
  export function getString(key: string): string | undefined;
  export function all(): string;
}

declare module "imgate:policy/kv@0.2.2" {
  /** Thrown: { tag: "quota-exceeded" | "too-large" | "store", val: string }. */
  export type KvError =
    | { tag: "quota-exceeded"; val: string }
    | { tag: "too-large"; val: string }
    | { tag: "store"; val: string };
  export function get(key: string): Uint8Array | undefined;
  export function set(key: string, value: Uint8Array, ttlMs: bigint | undefined): void;
  export function delete_(key: string): boolean;
  export function increment(key: string, delta: bigint): bigint;
  export function compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): boolean;
}

declare module "imgate:policy/archive@0.2.2" {
  import type { EventView } from "imgate:policy/types@0.2.2";
  export function append(event: EventView, annotations: [string, string][]): bigint;
}

declare module "imgate:policy/metrics@0.2.2" {
  export function counterAdd(name: string, delta: bigint): void;
  export function histogramObserve(name: string, value: number): void;
}

declare module "imgate:policy/bridge@0.2.2" {
  import type { NetworkId } from "imgate:policy/types@0.2.2";
  export type Delivery =
    | { tag: "pending" }
    | { tag: "delivered"; val: NetworkId[] }
    | { tag: "refused"; val: string }
    | { tag: "failed"; val: string }
    | { tag: "unknown" };
  export class Outgoing {
    constructor(network: string, to: string);
    body(text: string): void;
    markup(format: string, text: string): void;
    relatesTo(relType: string, target: string, key: string | undefined): void;
    author(displayName: string): void;
    emote(): void;
    send(): string;
  }
  export function status(ticket: string): Delivery;
}

declare module "imgate:policy/match@0.2.2" {
  import type { EventView } from "imgate:policy/types@0.2.2";
  export interface Keywords { words: string[]; wholeWord: boolean; ignoreCase: boolean }
  export interface Pattern { regex: string; ignoreCase: boolean }
  export type Rule =
    | { tag: "keywords"; val: Keywords }
    | { tag: "regex"; val: Pattern }
    | { tag: "detector"; val: string };
  export interface Hit {
    rule: number;
    item: number;
    kind: string;
    /** UTF-8 byte offsets; see imgate-sdk's span(). */
    start: number;
    end: number;
    text: string;
    host?: string;
  }
  export type Scope = "body" | "body-else-texts" | "texts";
  export interface TextHit { role: string; hit: Hit }
  export class Matcher {
    static compile(rules: Rule[]): Matcher;
    find(text: string): Hit[];
    first(text: string): Hit | undefined;
    findIn(event: EventView, scope: Scope): TextHit[];
    firstIn(event: EventView, scope: Scope): TextHit | undefined;
    callOnlyOnHit(scope: Scope): void;
  }
  export function normalizeHost(name: string): string | undefined;
}
