// imgate-sdk: the helpers (index.js) and, by reference, the contract's
// modules (contract.d.ts), for editors and type checkers.
/// <reference path="./contract.d.ts" />

import type { Hit, Rule } from "imgate:policy/match@0.2.2";

export type FieldType = "string" | "boolean" | "number" | "string[]" | "object";
export type FieldSpec = FieldType | [FieldType, unknown];

/** The operator's table from init's JSON, checked against `fields`; throws the reason. */
export function parseSettings(config: string, fields: Record<string, FieldSpec>): Record<string, any>;

/** Any of the words: whole words, ignoring case, unless told otherwise. */
export function words(list: Iterable<string>, options?: { wholeWord?: boolean; ignoreCase?: boolean }): Rule;
/** A regular expression in Rust's `regex` syntax. */
export function regex(pattern: string, options?: { ignoreCase?: boolean }): Rule;
/** A built-in detector. */
export function detector(
  name: "card" | "iban" | "ssn" | "secret" | "aws-key" | "private-key" | "email" | "url",
): Rule;
/** A hit's [start, end) in `text` as string indices. */
export function span(text: string, hit: Hit): [number, number];
