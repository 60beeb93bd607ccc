/**
 * `${name}` references in recipes: variables from `vars`, from `--var` on the
 * command line, and from `save` captures of earlier steps.
 *
 * A reference may carry a format after a colon, so that a saved number can be
 * spliced into hex data: `${lba:u32be}` gives `"00 00 07 ff"`. `$${` writes a
 * literal `${`.
 *
 * @module
 */

import { parseInteger, ValueError } from "./values.ts";

/** A variable's value: numbers from integer captures, strings otherwise. */
export type VarValue = string | number;

/** Variables by name. */
export type Vars = Readonly<Record<string, VarValue>>;

/** The formats a reference can ask for, after a colon: `${name:u32be}`. */
export const VAR_FORMATS = [
  "u8",
  "u16le",
  "u16be",
  "u32le",
  "u32be",
  "hex",
  "dec",
] as const;

/** One of {@linkcode VAR_FORMATS}. */
export type VarFormat = typeof VAR_FORMATS[number];

/** The name a variable may have: a letter or `_`, then letters, digits, `_`. */
export const VAR_NAME: RegExp = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A reference that cannot be resolved: bad syntax, an unknown variable, or a
 * value that does not fit where it is used. `path` says where in the recipe,
 * when known.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { interpolate, InterpolationError } from "./interpolate.ts";
 * try {
 *   interpolate("${nope}", {});
 * } catch (e) {
 *   assert.ok(e instanceof InterpolationError);
 * }
 * ```
 */
export class InterpolationError extends Error {
  /** Where in the recipe, such as `steps[2].bulk.in`, when known. */
  path: string | undefined;
  /**
   * An error in a `${…}` reference.
   *
   * @param message what went wrong
   * @param path where in the recipe
   */
  constructor(message: string, path?: string) {
    super(message);
    this.name = "InterpolationError";
    this.path = path;
  }
}

/** A piece of a parsed template: literal text, or a reference. */
export type TemplatePart = { text: string } | {
  name: string;
  format: VarFormat | undefined;
};

/**
 * Splits text into literal pieces and `${name}` / `${name:format}` references.
 *
 * @param text the template
 * @returns its parts, in order
 * @throws {InterpolationError} on an unterminated `${`, a bad name or format
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTemplate } from "./interpolate.ts";
 * const parts = parseTemplate("28 00 ${lba:u32be} 00");
 * assert.ok(parts.length === 3);
 * ```
 */
export function parseTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$${", i)) {
      literal += "${";
      i += 3;
    } else if (text.startsWith("${", i)) {
      const end = text.indexOf("}", i + 2);
      if (end < 0) {
        throw new InterpolationError(
          `"\${" at character ${i + 1} has no closing "}"`,
        );
      }
      const inner = text.slice(i + 2, end).trim();
      const colon = inner.indexOf(":");
      const name = colon < 0 ? inner : inner.slice(0, colon).trim();
      const format = colon < 0 ? undefined : inner.slice(colon + 1).trim();
      if (!VAR_NAME.test(name)) {
        throw new InterpolationError(
          `"\${${inner}}" is not a variable reference (a name is letters, digits and _)`,
        );
      }
      if (
        format !== undefined &&
        !(VAR_FORMATS as readonly string[]).includes(format)
      ) {
        throw new InterpolationError(
          `"\${${inner}}" has an unknown format "${format}" (use one of ${
            VAR_FORMATS.join(", ")
          })`,
        );
      }
      if (literal) parts.push({ text: literal });
      literal = "";
      parts.push({ name, format: format as VarFormat | undefined });
      i = end + 1;
    } else {
      literal += text[i];
      i++;
    }
  }
  if (literal) parts.push({ text: literal });
  return parts;
}

/**
 * Whether text holds any `${…}` reference (an escaped `$${` does not count).
 *
 * @param text any text
 * @returns true when it must be interpolated before use
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasReferences } from "./interpolate.ts";
 * assert.ok(hasReferences("${lba}"));
 * assert.ok(!hasReferences("$${literal}"));
 * ```
 */
export function hasReferences(text: string): boolean {
  return text.replaceAll("$${", "").includes("${");
}

/**
 * The variable names a template refers to.
 *
 * @param text the template
 * @returns the names, in order of appearance, without repeats
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { variablesIn } from "./interpolate.ts";
 * assert.ok(variablesIn("${a} ${b:u8} ${a}").join() === "a,b");
 * ```
 */
export function variablesIn(text: string): string[] {
  const names = new Set<string>();
  for (const p of parseTemplate(text)) if ("name" in p) names.add(p.name);
  return [...names];
}

function bytesHex(n: number, size: number, littleEndian: boolean): string {
  const out: number[] = [];
  for (let i = 0; i < size; i++) {
    const shift = littleEndian ? i : size - 1 - i;
    out.push(Math.floor(n / 2 ** (8 * shift)) % 256);
  }
  return out.map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/**
 * Renders a variable's value in a format.
 * - no format: as is (numbers in decimal);
 * - `u8`, `u16le`, `u16be`, `u32le`, `u32be`: the number as hex bytes;
 * - `hex`: the number as `0x…`; `dec`: the number in decimal.
 *
 * @param value the variable's value
 * @param format the format, if any
 * @returns the text to splice in
 * @throws {InterpolationError} when the value is not a number that fits
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatVar } from "./interpolate.ts";
 * assert.ok(formatVar(0x7ff, "u32be") === "00 00 07 ff");
 * assert.ok(formatVar(512, "u16le") === "00 02");
 * assert.ok(formatVar(255, "hex") === "0xff");
 * ```
 */
export function formatVar(
  value: VarValue,
  format: VarFormat | undefined,
): string {
  if (format === undefined) return String(value);
  let n: number;
  try {
    n = parseInteger(value, { min: 0 });
  } catch (e) {
    if (!(e instanceof ValueError)) throw e;
    throw new InterpolationError(
      `cannot format ${
        JSON.stringify(value)
      } as ${format}: it is not a whole number`,
    );
  }
  const sizes: Record<VarFormat, number> = {
    u8: 1,
    u16le: 2,
    u16be: 2,
    u32le: 4,
    u32be: 4,
    hex: 0,
    dec: 0,
  };
  const size = sizes[format];
  if (size > 0 && n >= 2 ** (8 * size)) {
    throw new InterpolationError(
      `cannot format ${n} as ${format}: it does not fit in ${size} byte(s)`,
    );
  }
  if (format === "hex") return `0x${n.toString(16)}`;
  if (format === "dec") return String(n);
  return bytesHex(n, size, format.endsWith("le") || format === "u8");
}

/** How many names a message lists before it says how many more there are. */
const NAMES_LISTED = 10;

/**
 * Names for a message, the first few only: a recipe may define thousands of
 * variables, and a message is one line.
 *
 * @param names the names
 * @returns such as `a, b, c` or `a, …, j and 5 more`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listNames } from "./interpolate.ts";
 * assert.equal(listNames(["a", "b"]), "a, b");
 * const many = Array.from({ length: 12 }, (_, i) => `v${i}`);
 * assert.equal(listNames(many), "v0, v1, v2, v3, v4, v5, v6, v7, v8, v9 and 2 more");
 * ```
 */
export function listNames(names: readonly string[]): string {
  if (names.length <= NAMES_LISTED) return names.join(", ");
  return `${names.slice(0, NAMES_LISTED).join(", ")} and ${
    names.length - NAMES_LISTED
  } more`;
}

/**
 * Replaces every `${name}` in text with the variable's value.
 *
 * @param text the template
 * @param vars the variables
 * @returns the text with references replaced
 * @throws {InterpolationError} for an unknown variable, naming the known ones
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { interpolate } from "./interpolate.ts";
 * assert.ok(interpolate("LBA ${lba}", { lba: 2047 }) === "LBA 2047");
 * assert.ok(interpolate("${n:u16be}", { n: 512 }) === "02 00");
 * ```
 */
export function interpolate(text: string, vars: Vars): string {
  let out = "";
  for (const part of parseTemplate(text)) {
    if ("text" in part) {
      out += part.text;
      continue;
    }
    const value = Object.hasOwn(vars, part.name) ? vars[part.name] : undefined;
    if (value === undefined) {
      const known = Object.keys(vars);
      throw new InterpolationError(
        `unknown variable "${part.name}"` +
          (known.length
            ? ` (known: ${listNames(known)})`
            : " (no variables are defined)"),
      );
    }
    out += formatVar(value, part.format);
  }
  return out;
}

/**
 * A recipe value that holds `${…}` references, kept as written until the step
 * runs: then it is interpolated and parsed as the field requires.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Template } from "./interpolate.ts";
 * const t = new Template("${n}", "a number", (s) => Number(s));
 * assert.ok(t.resolve({ n: 3 }) === 3);
 * ```
 */
export class Template<T> {
  /** The text as written in the recipe. */
  readonly source: string;
  /** What the field expects, for messages: `an endpoint address (…)`. */
  readonly expected: string;
  readonly #parse: (text: string) => T;

  /**
   * A template for a field's value.
   *
   * @param source the text as written
   * @param expected what the field expects, for messages
   * @param parse turns the interpolated text into the field's value; throws
   * a {@linkcode ValueError} when it does not fit
   * @throws {InterpolationError} when the source's syntax is wrong
   */
  constructor(source: string, expected: string, parse: (text: string) => T) {
    parseTemplate(source);
    this.source = source;
    this.expected = expected;
    this.#parse = parse;
  }

  /** The variables the template refers to. */
  get variables(): string[] {
    return variablesIn(this.source);
  }

  /**
   * Interpolates and parses.
   *
   * @param vars the variables
   * @returns the field's value
   * @throws {InterpolationError} on an unknown variable, or a result that
   * does not fit the field
   */
  resolve(vars: Vars): T {
    const text = interpolate(this.source, vars);
    try {
      return this.#parse(text);
    } catch (e) {
      if (!(e instanceof ValueError)) throw e;
      // Some parsers leave the reason to `expected` (a range): no ": ".
      throw new InterpolationError(
        `expected ${this.expected}, found ${
          JSON.stringify(text)
        } (from "${this.source}"${e.message ? `: ${e.message}` : ""})`,
      );
    }
  }

  /** The source text, as written. */
  toString(): string {
    return this.source;
  }
}

/** A recipe value with every {@linkcode Template} replaced by its result. */
export type Resolved<T> = T extends Template<infer V> ? V
  : T extends Uint8Array | RegExp ? T
  : T extends readonly (infer E)[] ? Resolved<E>[]
  : T extends object ? { [K in keyof T]: Resolved<T[K]> }
  : T;

function pathJoin(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/**
 * Resolves every {@linkcode Template} inside a value (objects and lists are
 * copied; other values are kept).
 *
 * @param value a parsed step, or any part of one
 * @param vars the variables
 * @param path where the value sits in the recipe, for messages
 * @returns the value with templates resolved
 * @throws {InterpolationError} with `path` set to the failing field
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTemplates, Template } from "./interpolate.ts";
 * const step = { length: new Template("${n}", "a size", Number), endpoint: 0x81 };
 * const r = resolveTemplates(step, { n: 64 });
 * assert.ok(r.length === 64 && r.endpoint === 0x81);
 * ```
 */
export function resolveTemplates<T>(
  value: T,
  vars: Vars,
  path = "",
): Resolved<T> {
  return walk(value, vars, path) as Resolved<T>;
}

function walk(value: unknown, vars: Vars, path: string): unknown {
  if (value instanceof Template) {
    try {
      return value.resolve(vars);
    } catch (e) {
      if (e instanceof InterpolationError && e.path === undefined) {
        e.path = path;
      }
      throw e;
    }
  }
  if (Array.isArray(value)) {
    return value.map((v, i) => walk(v, vars, pathJoin(path, i)));
  }
  if (
    value !== null && typeof value === "object" &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = walk(v, vars, pathJoin(path, k));
    }
    return out;
  }
  return value;
}

/**
 * Every variable name referred to anywhere inside a value, with the path of
 * the field that refers to it. Used to reject unknown variables before any
 * device is opened.
 *
 * @param value a parsed step, or any part of one
 * @param path where it sits in the recipe
 * @returns the references
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referencesIn, Template } from "./interpolate.ts";
 * const refs = referencesIn({ in: new Template("${n}", "a size", Number) }, "steps[0].bulk");
 * assert.ok(refs[0]?.name === "n" && refs[0]?.path === "steps[0].bulk.in");
 * ```
 */
export function referencesIn(
  value: unknown,
  path = "",
): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = [];
  const visit = (v: unknown, p: string) => {
    if (v instanceof Template) {
      for (const name of v.variables) out.push({ name, path: p });
    } else if (Array.isArray(v)) {
      v.forEach((e, i) => visit(e, pathJoin(p, i)));
    } else if (
      v !== null && typeof v === "object" &&
      Object.getPrototypeOf(v) === Object.prototype
    ) {
      for (const [k, e] of Object.entries(v)) visit(e, pathJoin(p, k));
    }
  };
  visit(value, path);
  return out;
}
