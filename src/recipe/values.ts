/**
 * The value syntaxes of recipes: numbers written as `0x81`, hex strings with
 * `??` wildcards, sizes such as `"64KiB"`, rates such as `"100MB/s"`,
 * durations such as `"500ms"`, and the generated data patterns.
 *
 * Every parser throws a {@linkcode ValueError} whose message says what was
 * wrong in words a person can act on; the schema turns that into
 * `expected …, found …`.
 *
 * @module
 */

/**
 * A value that could not be parsed. The message is the reason only (for
 * example `"g" is not a hex digit`); the caller adds what was expected.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHex, ValueError } from "./values.ts";
 * try {
 *   parseHex("12 0g");
 * } catch (e) {
 *   assert.ok(e instanceof ValueError);
 * }
 * ```
 */
export class ValueError extends Error {
  /**
   * An error for a value that does not fit.
   *
   * @param message the reason, as a phrase
   */
  constructor(message: string) {
    super(message);
    this.name = "ValueError";
  }
}

const INTEGER = /^(?:0x[0-9a-f]+|0b[01]+|0o[0-7]+|[0-9]+)$/i;

/**
 * Parses an integer written in decimal, `0x` hex, `0b` binary or `0o` octal.
 * Numbers pass through after a check that they are whole and in range.
 *
 * @param value a number, or its text
 * @param range inclusive bounds to check
 * @returns the integer
 * @throws {ValueError} when the text is not an integer or is out of range
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseInteger } from "./values.ts";
 * assert.ok(parseInteger("0x81") === 0x81);
 * assert.ok(parseInteger(" 512 ") === 512);
 * assert.ok(parseInteger(7, { min: 0, max: 255 }) === 7);
 * ```
 */
export function parseInteger(
  value: number | string,
  range: { min?: number; max?: number } = {},
): number {
  let n: number;
  if (typeof value === "number") {
    n = value;
  } else {
    const text = value.trim().replaceAll("_", "");
    if (!INTEGER.test(text)) throw new ValueError("not an integer");
    n = Number(text);
  }
  if (!Number.isSafeInteger(n)) throw new ValueError("not a whole number");
  if (range.min !== undefined && n < range.min) {
    throw new ValueError("too small");
  }
  if (range.max !== undefined && n > range.max) {
    throw new ValueError("too large");
  }
  return n;
}

// Decimal units for SI prefixes and binary ones for IEC prefixes, as the
// names say: "64KiB" is 65536 and "100MB/s" is 100,000,000 bytes a second.
const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)\s*([a-zµ/]*)$/i;

/**
 * Parses a size in bytes: a plain integer (also `0x` hex), or a number with a
 * unit: `B`, `kB`/`KB`/`k` (1000), `KiB` (1024), `MB`, `MiB`, `GB`, `GiB`.
 *
 * @param value a number of bytes, or its text
 * @returns the number of bytes, a whole number
 * @throws {ValueError} on an unknown unit or a fractional byte count
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSize } from "./values.ts";
 * assert.ok(parseSize("64KiB") === 65536);
 * assert.ok(parseSize("1.5 MB") === 1_500_000);
 * assert.ok(parseSize("0x200") === 512);
 * assert.ok(parseSize(31) === 31);
 * ```
 */
export function parseSize(value: number | string): number {
  if (typeof value === "number" || INTEGER.test(value.trim())) {
    return parseInteger(value, { min: 0 });
  }
  const m = QUANTITY.exec(value.trim());
  if (!m) throw new ValueError("not a size");
  const unit = SIZE_UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) {
    throw new ValueError(
      `unknown unit "${m[2]}"; use B, KiB, MiB, GiB, kB, MB or GB`,
    );
  }
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    throw new ValueError("not a whole number of bytes");
  }
  return bytes;
}

/**
 * Parses a data rate in bytes per second: a plain number, or a size unit
 * followed by `/s` (`"100MB/s"`, `"5 MiB/s"`), or bits (`"480Mbit/s"`).
 *
 * @param value bytes per second, or its text
 * @returns bytes per second
 * @throws {ValueError} when the text is not a rate
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRate } from "./values.ts";
 * assert.ok(parseRate("100MB/s") === 100e6);
 * assert.ok(parseRate("1 MiB/s") === 1048576);
 * assert.ok(parseRate("480Mbit/s") === 60e6);
 * ```
 */
export function parseRate(value: number | string): number {
  if (typeof value === "number") {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new ValueError("not a rate");
    }
    return value;
  }
  const text = value.trim();
  const bits = /^([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)bit\/s$/i.exec(text);
  if (bits) {
    const scale =
      { "": 1, k: 1e3, m: 1e6, g: 1e9 }[(bits[2] ?? "").toLowerCase()] ?? 1;
    return Number(bits[1]) * scale / 8;
  }
  if (!text.toLowerCase().endsWith("/s")) {
    throw new ValueError('a rate ends in "/s", as in "100MB/s"');
  }
  const m = QUANTITY.exec(text.slice(0, -2).trim());
  const unit = m ? SIZE_UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new ValueError("not a rate");
  return Number(m[1]) * unit;
}

const DURATION_UNITS: Record<string, number> = {
  "": 1,
  us: 0.001,
  "µs": 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration in milliseconds: a plain number is milliseconds; text may
 * carry a unit: `us`, `ms`, `s`, `min`, `h` (`"500ms"`, `"1.5s"`).
 *
 * @param value milliseconds, or its text
 * @returns milliseconds
 * @throws {ValueError} on an unknown unit
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDuration } from "./values.ts";
 * assert.ok(parseDuration("1s") === 1000);
 * assert.ok(parseDuration("500ms") === 500);
 * assert.ok(parseDuration(250) === 250);
 * ```
 */
export function parseDuration(value: number | string): number {
  if (typeof value === "number") {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new ValueError("not a duration");
    }
    return value;
  }
  const m = QUANTITY.exec(value.trim());
  if (!m) throw new ValueError('not a duration; write it as "500ms" or "2s"');
  const unit = DURATION_UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) {
    throw new ValueError(`unknown unit "${m[2]}"; use ms, s or min`);
  }
  return Number(m[1]) * unit;
}

/** One byte of a hex pattern: its value, or `null` for a `??` wildcard. */
export type PatternByte = number | null;

// Separators people paste from dumps and specs: spaces, colons, commas, dashes.
const SEPARATORS = /[\s:,\-]+/;

function hexTokens(text: string): string[] {
  return text.trim().split(SEPARATORS).filter((t) => t !== "").map((t) =>
    t.replace(/^0x/i, "")
  );
}

/**
 * Parses a hex pattern: bytes as two hex digits, optionally separated by
 * spaces, colons, commas or dashes, each group optionally prefixed `0x`.
 * `??` stands for any byte.
 *
 * @param text such as `"55 53 42 53 ?? ?? ?? ??"`
 * @returns the bytes, with `null` for each wildcard
 * @throws {ValueError} on a non-hex digit or an odd number of digits
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHexPattern } from "./values.ts";
 * const p = parseHexPattern("12 ?? 0x34");
 * assert.ok(p.length === 3 && p[1] === null && p[2] === 0x34);
 * ```
 */
export function parseHexPattern(text: string): PatternByte[] {
  const out: PatternByte[] = [];
  for (const token of hexTokens(text)) {
    const bad = /[^0-9a-f?]/i.exec(token);
    if (bad) throw new ValueError(`"${bad[0]}" is not a hex digit`);
    if (token.length % 2 !== 0) {
      throw new ValueError(
        `"${token}" has an odd number of hex digits; write each byte as two digits`,
      );
    }
    for (let i = 0; i < token.length; i += 2) {
      const pair = token.slice(i, i + 2);
      if (pair === "??") out.push(null);
      else if (pair.includes("?")) {
        throw new ValueError(
          `"${pair}" mixes a digit with "?"; a wildcard is "??"`,
        );
      } else out.push(parseInt(pair, 16));
    }
  }
  return out;
}

/**
 * Parses a hex string into bytes, like {@linkcode parseHexPattern} but with no
 * wildcards allowed.
 *
 * @param text such as `"12 01 00 02"` or `"12010002"`
 * @returns the bytes
 * @throws {ValueError} on a wildcard, a non-hex digit or an odd digit count
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHex } from "./values.ts";
 * assert.ok(parseHex("12 01 00 02").join() === "18,1,0,2");
 * assert.ok(parseHex("").length === 0);
 * ```
 */
export function parseHex(text: string): Uint8Array {
  const pattern = parseHexPattern(text);
  if (pattern.includes(null)) {
    throw new ValueError('"??" wildcards only belong in expectations');
  }
  return Uint8Array.from(pattern as number[]);
}

/**
 * Formats bytes as lowercase hex pairs separated by spaces. When `max` is given
 * and the data is longer, only the first `max` bytes are shown, followed by `…`.
 *
 * @param bytes the data
 * @param max the most bytes to show
 * @returns such as `"12 01 00 02"`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatHex } from "./values.ts";
 * assert.ok(formatHex(new Uint8Array([0x12, 1])) === "12 01");
 * assert.ok(formatHex(new Uint8Array(10), 2) === "00 00 …");
 * ```
 */
export function formatHex(bytes: Uint8Array, max = Infinity): string {
  const shown = bytes.length > max ? bytes.subarray(0, max) : bytes;
  let s = Array.from(shown, (b) => b.toString(16).padStart(2, "0")).join(" ");
  if (shown.length < bytes.length) s += " …";
  return s;
}

/**
 * Formats a byte count for people: `512 B`, `64 KiB`, `1.5 MiB`.
 *
 * @param bytes a byte count
 * @returns the text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSize } from "./values.ts";
 * assert.ok(formatSize(65536) === "64 KiB");
 * assert.ok(formatSize(31) === "31 B");
 * ```
 */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || Number.isInteger(v) ? 0 : v < 10 ? 2 : 1;
  return `${v.toFixed(digits)} ${units[u]}`;
}

/**
 * Formats a rate in bytes per second with SI units, as rates are usually
 * quoted: `12.3 MB/s`.
 *
 * @param bytesPerSecond the rate
 * @returns the text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatRate } from "./values.ts";
 * assert.ok(formatRate(5e6) === "5.00 MB/s");
 * ```
 */
export function formatRate(bytesPerSecond: number): string {
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let v = bytesPerSecond;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

/**
 * Formats milliseconds for people: `0.42 ms`, `12 ms`, `1.50 s`.
 *
 * @param ms milliseconds
 * @returns the text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./values.ts";
 * assert.ok(formatDuration(1500) === "1.50 s");
 * assert.ok(formatDuration(12.3) === "12.3 ms");
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms >= 60_000) {
    return `${Math.floor(ms / 60_000)} min ${
      ((ms % 60_000) / 1000).toFixed(0)
    } s`;
  }
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** The generated data patterns a recipe can write or expect. */
export type PatternKind = "sequence" | "zeros" | "random" | "sourcesink";

/**
 * The byte the SourceSink gadget sends at position `i` of a transfer, and
 * checks on OUT: `(i % maxPacketSize) % 63`. See reinit_write_data() and
 * check_read_data() in drivers/usb/gadget/function/f_sourcesink.c (pattern=1,
 * the default): the count restarts with every packet, so host and gadget stay
 * in step however the data is split into transfers.
 *
 * @param i the byte's position, counted from a packet boundary
 * @param maxPacketSize the endpoint's wMaxPacketSize
 * @returns the byte
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sourceSinkByte } from "./values.ts";
 * assert.ok(sourceSinkByte(63, 1024) === 0);
 * assert.ok(sourceSinkByte(1025, 1024) === 1);
 * ```
 */
export function sourceSinkByte(i: number, maxPacketSize: number): number {
  return (i % maxPacketSize) % 63;
}

/**
 * Generates pattern data.
 * - `sequence`: byte i is `i & 0xff`;
 * - `zeros`: all zero;
 * - `random`: from a seeded xorshift generator when `seed` is given (so a run
 *   can be repeated), otherwise from the system's random source;
 * - `sourcesink`: the SourceSink gadget's pattern (needs `maxPacketSize`).
 *
 * @param kind the pattern
 * @param length bytes to generate
 * @param options the seed for `random`, the packet size for `sourcesink`
 * @returns fresh bytes
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makePattern } from "./values.ts";
 * assert.ok(makePattern("sequence", 300)[257] === 1);
 * const a = makePattern("random", 8, { seed: 42 });
 * const b = makePattern("random", 8, { seed: 42 });
 * assert.ok(a.join() === b.join());
 * ```
 */
export function makePattern(
  kind: PatternKind,
  length: number,
  options: { seed?: number; maxPacketSize?: number } = {},
): Uint8Array {
  const out = new Uint8Array(length);
  switch (kind) {
    case "zeros":
      break;
    case "sequence":
      for (let i = 0; i < length; i++) out[i] = i & 0xff;
      break;
    case "sourcesink": {
      const mps = options.maxPacketSize ?? 512;
      for (let i = 0; i < length; i++) out[i] = sourceSinkByte(i, mps);
      break;
    }
    case "random":
      if (options.seed === undefined) {
        // getRandomValues refuses more than 64 KiB at a time.
        for (let i = 0; i < length; i += 65536) {
          crypto.getRandomValues(out.subarray(i, i + 65536));
        }
      } else {
        // xorshift32: small, fast, and the same on every machine.
        let x = (options.seed >>> 0) || 0x9e3779b9;
        for (let i = 0; i < length; i++) {
          x ^= x << 13;
          x >>>= 0;
          x ^= x >>> 17;
          x ^= x << 5;
          x >>>= 0;
          out[i] = x & 0xff;
        }
      }
      break;
  }
  return out;
}

/**
 * Describes a value as found in a recipe, for error messages: strings quoted,
 * numbers as written in decimal (and hex when that helps), containers by kind.
 *
 * @param value anything parsed from YAML, JSON or a module
 * @returns such as `"0x8g"`, `300 (0x12c)`, `a mapping`, `a list`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeFound } from "./values.ts";
 * assert.ok(describeFound("0x8g") === '"0x8g"');
 * assert.ok(describeFound(300) === "300 (0x12c)");
 * assert.ok(describeFound([1]) === "a list");
 * ```
 */
export function describeFound(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value (null)";
  if (typeof value === "string") {
    const shown = value.length > 60 ? value.slice(0, 57) + "..." : value;
    return value === "" ? "an empty string" : JSON.stringify(shown);
  }
  if (typeof value === "number") {
    return Number.isInteger(value) && Math.abs(value) > 9
      ? `${value} (0x${value.toString(16)})`
      : `${value}`;
  }
  if (typeof value === "boolean") return `${value}`;
  if (Array.isArray(value)) {
    return value.length === 0 ? "an empty list" : "a list";
  }
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === "object") return "a mapping";
  return typeof value;
}
