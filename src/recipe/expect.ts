/**
 * Checking a transfer's result against a step's `expect`, capturing `save`
 * fields, and the hex dump that shows expected bytes against actual ones.
 *
 * @module
 */

import type { Resolved, VarValue } from "./interpolate.ts";
import type { Expectation, SaveSpec } from "./schema.ts";
import { formatHex, type PatternByte, sourceSinkByte } from "./values.ts";

/**
 * One way a step did not do what the recipe expected. `message` is one line;
 * `detail` (such as a hex diff) may span several.
 */
export interface Failure {
  /** One line, such as `status: expected ok, got stall`. */
  message: string;
  /** More lines: a hex diff, a hint. */
  detail?: string;
}

/**
 * Expectations as {@linkcode checkTransfer} takes them: resolved, with
 * `data` already turned into bytes (it may name a file).
 */
export type CheckedExpectation = Omit<Resolved<Expectation>, "data"> & {
  /** The exact bytes expected at `offset`. */
  data?: Uint8Array;
};

/** What a transfer produced, as the expectations see it. */
export interface TransferOutcome {
  /** `ok`, `stall` or `babble`. */
  status: string;
  /** Bytes received (IN) or written (OUT). */
  length: number;
  /** The data received, for IN transfers. */
  data?: Uint8Array;
}

const BYTES_PER_ROW = 16;

function ascii(bytes: readonly (number | null | undefined)[]): string {
  return bytes.map((
    b,
  ) => (b === null || b === undefined
    ? " "
    : b >= 0x20 && b < 0x7f
    ? String.fromCharCode(b)
    : ".")
  )
    .join("");
}

/**
 * A hex dump of expected against actual bytes, one pair of lines per row of
 * 16 bytes that differs, with `^^` under each differing byte. `??` in the
 * expected line is a wildcard; `--` marks a byte that is missing.
 *
 * @param expected the expected bytes (`null` for any byte)
 * @param actual the bytes received
 * @param options `mask` AND-ed with the actual bytes before comparing;
 * `offset` of the first byte, for the labels; `maxRows` differing rows to show
 * @returns the dump, or an empty string when nothing differs
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hexDiff } from "./expect.ts";
 * const dump = hexDiff([0x55, 0x53, null, 0x53], new Uint8Array([0x55, 0x53, 0x42, 0x43]));
 * assert.ok(dump.includes("^^"));
 * console.log(dump);
 * ```
 */
export function hexDiff(
  expected: readonly PatternByte[] | Uint8Array,
  actual: Uint8Array,
  options: { mask?: Uint8Array; offset?: number; maxRows?: number } = {},
): string {
  const offset = options.offset ?? 0;
  const maxRows = options.maxRows ?? 8;
  const mask = options.mask;
  const n = expected.length;
  const rows: string[] = [];
  let differingRows = 0;
  const label = (at: number) => `0x${at.toString(16).padStart(4, "0")}`;
  const width = label(offset + n).length;
  for (let row = 0; row < n; row += BYTES_PER_ROW) {
    const exp: string[] = [];
    const act: string[] = [];
    const marks: string[] = [];
    const expBytes: (number | null)[] = [];
    const actBytes: (number | undefined)[] = [];
    let differs = false;
    for (let i = row; i < Math.min(row + BYTES_PER_ROW, n); i++) {
      const e = expected[i] ?? null;
      const a = actual[i];
      const m = mask ? (mask[i] ?? 0xff) : 0xff;
      const bad = a === undefined || (e !== null && (a & m) !== e);
      differs ||= bad;
      exp.push(e === null ? "??" : e.toString(16).padStart(2, "0"));
      act.push(a === undefined ? "--" : a.toString(16).padStart(2, "0"));
      marks.push(bad ? "^^" : "  ");
      expBytes.push(e);
      actBytes.push(a);
    }
    if (!differs) continue;
    differingRows++;
    if (differingRows > maxRows) continue;
    const pad = " ".repeat(width);
    const hexWidth = BYTES_PER_ROW * 3 - 1;
    rows.push(
      `${label(offset + row)}  - ${exp.join(" ").padEnd(hexWidth)}  |${
        ascii(expBytes)
      }|`,
    );
    rows.push(
      `${pad}  + ${act.join(" ").padEnd(hexWidth)}  |${ascii(actBytes)}|`,
    );
    rows.push(`${pad}    ${marks.join(" ").trimEnd()}`);
  }
  if (differingRows > maxRows) {
    rows.push(`… and ${differingRows - maxRows} more rows that differ`);
  }
  return rows.length
    ? [
      `${" ".repeat(width)}  - expected, + actual${mask ? " (masked)" : ""}`,
      ...rows,
    ].join("\n")
    : "";
}

/**
 * The byte a named pattern has at position `i`, for comparing received data
 * with it.
 */
function patternByte(
  type: "sourcesink" | "sequence" | "zeros",
  i: number,
  maxPacketSize: number,
): number {
  switch (type) {
    case "sourcesink":
      return sourceSinkByte(i, maxPacketSize);
    case "sequence":
      return i & 0xff;
    case "zeros":
      return 0;
  }
}

/** Why a transfer babbled, and what to ask for instead. */
function babbleHint(
  context: { maxPacketSize?: number; requested?: number },
): string {
  const { maxPacketSize: mps, requested } = context;
  const asked = requested === undefined
    ? "than was asked for"
    : `than the ${plural(requested, "byte")} asked for`;
  const hint = `hint: babble means the device sent more ${asked}`;
  if (mps === undefined || mps <= 0 || requested === undefined) return hint;
  if (requested % mps === 0) return hint;
  const whole = Math.max(mps, Math.ceil(requested / mps) * mps);
  return `${hint}; a device sends whole packets, so the length of a read must be a multiple of the endpoint's wMaxPacketSize (${mps} here): read ${whole} bytes (in: ${whole})`;
}

/**
 * Compares data with a named pattern, counting from the start of `data`.
 *
 * @param data the bytes received
 * @param type the pattern
 * @param maxPacketSize where the `sourcesink` pattern restarts
 * @returns how many bytes differ, and where the first one is (-1 for none)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { comparePattern } from "./expect.ts";
 * import { makePattern } from "./values.ts";
 * const data = makePattern("sourcesink", 4096, { maxPacketSize: 1024 });
 * assert.ok(comparePattern(data, "sourcesink", 1024).first === -1);
 * data[100] = 99;
 * assert.ok(comparePattern(data, "sourcesink", 1024).first === 100);
 * ```
 */
export function comparePattern(
  data: Uint8Array,
  type: "sourcesink" | "sequence" | "zeros",
  maxPacketSize: number,
): { differing: number; first: number } {
  let differing = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== patternByte(type, i, maxPacketSize)) {
      if (first < 0) first = i;
      differing++;
    }
  }
  return { differing, first };
}

/**
 * A fast checker for long streams: compares each chunk with the pattern
 * generated once, by 32-bit words where the chunk is aligned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PatternChecker } from "./expect.ts";
 * import { makePattern } from "./values.ts";
 * const check = new PatternChecker("sourcesink", 1024, 65536);
 * assert.ok(check.mismatches(makePattern("sourcesink", 65536, { maxPacketSize: 1024 })) === 0);
 * ```
 */
export class PatternChecker {
  readonly #expected: Uint8Array;
  readonly #words: Uint32Array;
  readonly #type: "sourcesink" | "sequence" | "zeros";
  readonly #maxPacketSize: number;

  /**
   * A checker for one pattern.
   *
   * @param type the pattern
   * @param maxPacketSize where the `sourcesink` pattern restarts
   * @param chunkSize the usual chunk size (longer chunks are checked too)
   */
  constructor(
    type: "sourcesink" | "sequence" | "zeros",
    maxPacketSize: number,
    chunkSize: number,
  ) {
    this.#type = type;
    this.#maxPacketSize = maxPacketSize;
    const size = Math.ceil(chunkSize / 4) * 4;
    this.#expected = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      this.#expected[i] = patternByte(type, i, maxPacketSize);
    }
    this.#words = new Uint32Array(this.#expected.buffer);
  }

  /**
   * Counts the bytes of a chunk (which starts a transfer, so the pattern
   * restarts at its first byte) that differ from the pattern.
   *
   * @param chunk the received bytes
   * @returns the number of differing bytes
   */
  mismatches(chunk: Uint8Array): number {
    if (chunk.length > this.#expected.length) {
      return comparePattern(chunk, this.#type, this.#maxPacketSize).differing;
    }
    let i = 0;
    let bad = 0;
    if (chunk.byteOffset % 4 === 0) {
      const words = new Uint32Array(
        chunk.buffer,
        chunk.byteOffset,
        chunk.length >>> 2,
      );
      const expected = this.#words;
      for (let w = 0; w < words.length; w++) {
        if (words[w] !== expected[w]) {
          for (let b = w * 4; b < w * 4 + 4; b++) {
            if (chunk[b] !== this.#expected[b]) bad++;
          }
        }
      }
      i = words.length * 4;
    }
    for (; i < chunk.length; i++) if (chunk[i] !== this.#expected[i]) bad++;
    return bad;
  }
}

/** Compares expected bytes with the data at an offset; a failure with a hex diff, or undefined. */
function compareBytes(
  label: string,
  expected: readonly PatternByte[] | Uint8Array,
  data: Uint8Array,
  offset: number,
  mask: Uint8Array | undefined,
): Failure | undefined {
  const actual = data.subarray(offset, offset + expected.length);
  const dump = hexDiff(expected, actual, mask ? { mask, offset } : { offset });
  if (!dump) return undefined;
  let differing = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] ?? null;
    const a = actual[i];
    const m = mask?.[i] ?? 0xff;
    if (a === undefined || (e !== null && (a & m) !== e)) differing++;
  }
  const where = offset ? ` at offset ${hexLabel(offset)}` : "";
  const short = actual.length < expected.length
    ? ` (only ${plural(actual.length, "byte")} received there)`
    : "";
  return {
    message: `${label}${where}: ${differing} of ${
      plural(expected.length, "byte")
    } differ${short}`,
    detail: dump,
  };
}

function hexLabel(n: number): string {
  return `0x${n.toString(16)}`;
}

function plural(n: number, one: string, many = one + "s"): string {
  return `${n} ${n === 1 ? one : many}`;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/**
 * Checks a transfer's outcome against expectations. The status must be `ok`
 * unless `status` says otherwise; when the status is not the expected one,
 * the data is not checked (there is none worth comparing).
 *
 * A `babble` that was not expected comes with a hint: the device sent more
 * than was asked for, which a read whose length is not a multiple of the
 * endpoint's wMaxPacketSize invites (a device sends whole packets).
 *
 * @param expect the step's expectations, resolved
 * @param outcome what the transfer produced
 * @param context the endpoint's packet size (for the `sourcesink` pattern
 * and the babble hint), and the length asked for (IN)
 * @returns the failures; empty when everything matched
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTransfer } from "./expect.ts";
 * import { parseHexPattern } from "./values.ts";
 * const data = new Uint8Array([0x55, 0x53, 0x42, 0x53, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
 * const failures = checkTransfer(
 *   { length: 13, bytes: parseHexPattern("55 53 42 53 ?? ?? ?? ?? 00 00 00 00 01") },
 *   { status: "ok", length: data.length, data },
 * );
 * assert.ok(failures.length === 1 && failures[0]!.detail!.includes("^^"));
 * ```
 */
export function checkTransfer(
  expect: CheckedExpectation | undefined,
  outcome: TransferOutcome,
  context: { maxPacketSize?: number; requested?: number } = {},
): Failure[] {
  const failures: Failure[] = [];
  const wantStatus = expect?.status ?? "ok";
  if (outcome.status !== wantStatus) {
    const hint = outcome.status === "babble" ? babbleHint(context) : "";
    failures.push({
      message: `status: expected ${wantStatus}, got ${outcome.status}`,
      ...(hint ? { detail: hint } : {}),
    });
    return failures;
  }
  if (!expect) return failures;

  const len = expect.length;
  if (typeof len === "number") {
    if (outcome.length !== len) {
      failures.push({
        message: `length: expected ${
          plural(len, "byte")
        }, got ${outcome.length}`,
      });
    }
  } else if (len !== undefined) {
    if (
      (len.min !== undefined && outcome.length < len.min) ||
      (len.max !== undefined && outcome.length > len.max)
    ) {
      const range = `${len.min ?? 0}..${len.max ?? "∞"}`;
      failures.push({
        message: `length: expected ${range} bytes, got ${outcome.length}`,
      });
    }
  }

  const data = outcome.data ?? new Uint8Array(0);
  const offset = expect.offset ?? 0;
  if (expect.bytes !== undefined) {
    const f = compareBytes("bytes", expect.bytes, data, offset, expect.mask);
    if (f) failures.push(f);
  }
  if (expect.data !== undefined) {
    const f = compareBytes("data", expect.data, data, offset, undefined);
    if (f) failures.push(f);
  }

  if (expect.text !== undefined) {
    const t = typeof expect.text === "string"
      ? { equals: expect.text }
      : expect.text;
    const offset = t.offset ?? 0;
    const end = t.length === undefined ? data.length : offset + t.length;
    const got = decoder.decode(data.subarray(offset, end));
    const where = offset ? ` at offset ${hexLabel(offset)}` : "";
    if (t.equals !== undefined && got !== t.equals) {
      failures.push({
        message: `text${where}: expected ${JSON.stringify(t.equals)}, got ${
          JSON.stringify(got)
        }`,
      });
    }
    if (t.regex !== undefined) {
      let re: RegExp | undefined;
      try {
        re = new RegExp(t.regex);
      } catch (e) {
        failures.push({
          message: `text${where}: ${
            JSON.stringify(t.regex)
          } is not a regular expression (${(e as Error).message})`,
        });
      }
      if (re && !re.test(got)) {
        failures.push({
          message: `text${where}: ${
            JSON.stringify(got)
          } does not match /${t.regex}/`,
        });
      }
    }
  }

  if (expect.pattern !== undefined) {
    const { type } = expect.pattern;
    const mps = expect.pattern.maxPacketSize ?? context.maxPacketSize;
    if (type === "sourcesink" && mps === undefined) {
      failures.push({
        message:
          "pattern sourcesink: the packet size is unknown here; give pattern.maxPacketSize",
      });
    } else {
      const size = mps ?? 512;
      const { differing, first } = comparePattern(data, type, size);
      if (differing > 0) {
        const row = Math.floor(first / BYTES_PER_ROW) * BYTES_PER_ROW;
        const expected = Array.from(
          { length: data.length - row },
          (_, i) => patternByte(type, row + i, size),
        );
        const label = type === "sourcesink"
          ? `pattern sourcesink (maxPacketSize ${size})`
          : `pattern ${type}`;
        failures.push({
          message: `${label}: ${differing} of ${
            plural(data.length, "byte")
          } differ, the first at offset ${hexLabel(first)}`,
          detail: hexDiff(expected, data.subarray(row), {
            offset: row,
            maxRows: 4,
          }),
        });
      }
    }
  }
  return failures;
}

/**
 * Captures `save` fields from received data into variables.
 *
 * @param save the step's captures, resolved
 * @param data the bytes received
 * @returns the captured variables, and a failure for each field that lies
 * beyond the data
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { capture } from "./expect.ts";
 * const data = new Uint8Array([0, 0, 0x07, 0xff, 0, 0, 2, 0]);
 * const { vars } = capture(
 *   { lastLba: { type: "u32be", offset: 0 }, blockLength: { type: "u32be", offset: 4 } },
 *   data,
 * );
 * assert.ok(vars.lastLba === 2047 && vars.blockLength === 512);
 * ```
 */
export function capture(
  save: Resolved<SaveSpec>,
  data: Uint8Array,
): { vars: Record<string, VarValue>; failures: Failure[] } {
  const vars: Record<string, VarValue> = {};
  const failures: Failure[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const sizes = { u8: 1, u16le: 2, u16be: 2, u32le: 4, u32be: 4 } as const;
  for (const [name, field] of Object.entries(save)) {
    const offset = field.offset ?? 0;
    if (field.type === "hex" || field.type === "utf8") {
      const end = field.length === undefined
        ? data.length
        : offset + field.length;
      if (offset > data.length || end > data.length) {
        failures.push({
          message:
            `save ${name}: ${field.type} at offset ${offset} needs ${
              end - offset
            } bytes, ` +
            `but only ${plural(data.length, "byte")} were received`,
        });
        continue;
      }
      const bytes = data.subarray(offset, end);
      vars[name] = field.type === "hex"
        ? formatHex(bytes)
        : decoder.decode(bytes);
      continue;
    }
    const size = sizes[field.type];
    if (offset + size > data.length) {
      failures.push({
        message:
          `save ${name}: ${field.type} at offset ${offset} needs ${size} bytes, ` +
          `but only ${plural(data.length, "byte")} were received`,
      });
      continue;
    }
    switch (field.type) {
      case "u8":
        vars[name] = view.getUint8(offset);
        break;
      case "u16le":
        vars[name] = view.getUint16(offset, true);
        break;
      case "u16be":
        vars[name] = view.getUint16(offset, false);
        break;
      case "u32le":
        vars[name] = view.getUint32(offset, true);
        break;
      case "u32be":
        vars[name] = view.getUint32(offset, false);
        break;
    }
  }
  return { vars, failures };
}
