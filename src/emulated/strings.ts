/**
 * String descriptors: numbering the strings of a definition and encoding
 * them (USB 2.0 §9.6.7: UTF-16LE, at most 126 code units since `bLength`
 * is one byte; index 0 is the table of language IDs).
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import { describeValue } from "../validate.ts";
import type { StringRef } from "./definition.ts";

/** The most UTF-16 code units a string descriptor holds: (255 - 2) / 2. */
const MAX_CODE_UNITS = 126;

/**
 * Encodes one string descriptor: `bLength`, type 3, then the text as
 * UTF-16LE.
 *
 * @param text the string (at most 126 UTF-16 code units)
 * @returns the descriptor
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeStringDescriptor } from "./strings.ts";
 * assert.deepEqual([...encodeStringDescriptor("Hi")], [6, 3, 0x48, 0, 0x69, 0]);
 * ```
 */
export function encodeStringDescriptor(text: string): Uint8Array {
  const out = new Uint8Array(2 + text.length * 2);
  out[0] = out.length;
  out[1] = 0x03;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out[2 + 2 * i] = unit & 0xff;
    out[3 + 2 * i] = unit >> 8;
  }
  return out;
}

/**
 * The strings of one device: explicit ones at fixed indices, and the
 * definition's plain strings numbered from 1 up, skipping fixed indices,
 * equal strings sharing one index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StringTable } from "./strings.ts";
 * const t = new StringTable({ 1: "Fixed" }, 0x0409, "strings");
 * assert.equal(t.ref("product", "Widget"), 2);
 * assert.equal(t.ref("serialNumber", "Widget"), 2);
 * assert.equal(t.ref("manufacturer", 1), 1);
 * assert.equal(t.ref("iConfiguration", undefined), 0);
 * assert.deepEqual([...t.descriptor(0)!], [4, 3, 0x09, 0x04]);
 * ```
 */
export class StringTable {
  readonly #texts = new Map<number, string>();
  readonly #byText = new Map<string, number>();
  readonly #explicit = new Set<number>();
  #next = 1;

  /**
   * @param explicit strings at fixed indices (1..255)
   * @param languageId the LANGID of every string
   * @param path where `explicit` is in the definition, for messages
   */
  constructor(
    explicit: Readonly<Record<number, string>> | undefined,
    readonly languageId: number,
    path: string,
  ) {
    if (explicit === undefined) return;
    if (typeof explicit !== "object" || explicit === null) {
      throw invalid(
        path,
        explicit,
        "an object mapping indices 1..255 to strings",
      );
    }
    for (const [key, text] of Object.entries(explicit)) {
      const index = Number(key);
      if (!/^[0-9]+$/.test(key) || index < 1 || index > 255) {
        throw new UsbError(
          "invalid-argument",
          `${path} has the key ${
            JSON.stringify(key)
          }: string indices are 1..255 (0 is the language table)`,
        );
      }
      checkText(`${path}[${index}]`, text);
      this.#texts.set(index, text);
      this.#explicit.add(index);
      if (!this.#byText.has(text)) this.#byText.set(text, index);
    }
  }

  /**
   * The index for a string field: 0 when absent, a new or shared index for
   * text, the number itself for an explicit index (which must exist).
   *
   * @param path the field, for messages
   * @param value the field's value
   * @returns the index
   * @throws {UsbError} `invalid-argument` for an empty or too long string,
   *   an index with no string, or more than 255 strings
   */
  ref(path: string, value: StringRef | undefined): number {
    if (value === undefined) return 0;
    if (typeof value === "number") {
      if (!Number.isInteger(value) || value < 0 || value > 255) {
        throw invalid(path, value, "a string, or a string index from 0 to 255");
      }
      if (value !== 0 && !this.#texts.has(value)) {
        throw new UsbError(
          "invalid-argument",
          `${path} is string index ${value}, but strings has no entry ${value}`,
          {
            hint:
              `add strings: { ${value}: "..." } to the device, or give the text here`,
          },
        );
      }
      return value;
    }
    checkText(path, value);
    const known = this.#byText.get(value);
    if (known !== undefined) return known;
    while (this.#explicit.has(this.#next)) this.#next++;
    if (this.#next > 255) {
      throw new UsbError(
        "invalid-argument",
        `${path}: more than 255 different strings (string indices are one byte)`,
      );
    }
    const index = this.#next++;
    this.#texts.set(index, value);
    this.#byText.set(value, index);
    return index;
  }

  /** Every string by index, in index order. */
  get entries(): ReadonlyMap<number, string> {
    return new Map([...this.#texts].sort((a, b) => a[0] - b[0]));
  }

  /**
   * The descriptor for an index: the language table for 0 (only when the
   * device has strings), undefined for an unknown index.
   *
   * @param index the string index
   */
  descriptor(index: number): Uint8Array | undefined {
    if (this.#texts.size === 0) return undefined;
    if (index === 0) {
      return new Uint8Array([
        4,
        0x03,
        this.languageId & 0xff,
        this.languageId >> 8,
      ]);
    }
    const text = this.#texts.get(index);
    return text === undefined ? undefined : encodeStringDescriptor(text);
  }
}

function checkText(path: string, text: unknown): asserts text is string {
  if (typeof text !== "string") {
    throw invalid(path, text, "a string, or a string index from 0 to 255");
  }
  if (text.length === 0) {
    throw new UsbError(
      "invalid-argument",
      `${path} is an empty string: leave the field out for no string`,
    );
  }
  if (text.length > MAX_CODE_UNITS) {
    throw new UsbError(
      "invalid-argument",
      `${path} is ${text.length} UTF-16 code units long; a string descriptor holds at most ${MAX_CODE_UNITS} (bLength is one byte)`,
    );
  }
  if (!text.isWellFormed()) {
    throw new UsbError(
      "invalid-argument",
      `${path} has a lone surrogate: it cannot be encoded as UTF-16`,
    );
  }
}

function invalid(path: string, value: unknown, allowed: string): UsbError {
  return new UsbError(
    "invalid-argument",
    `${path} must be ${allowed}, got ${describeValue(value)}`,
  );
}
