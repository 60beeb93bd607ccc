/**
 * Checks on definition fields. Each one names the field by its path in the
 * definition (`configurations[0].interfaces[1].endpoints[2].maxPacketSize`)
 * and throws a {@linkcode UsbError} with code `invalid-argument`.
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import {
  checkInteger as checkInt,
  invalidArgument as invalidField,
} from "../validate.ts";
import type { Bytes } from "./definition.ts";

// The field checks are the library's own argument checks (src/validate.ts):
// one message format, one treatment of -0, NaN and the rest.
export { checkInt, invalidField };

/**
 * Checks an optional boolean field.
 *
 * @param path the field
 * @param value its value
 * @param fallback the default
 * @returns the value or the default
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFlag } from "./check.ts";
 * assert.equal(checkFlag("selfPowered", undefined, false), false);
 * assert.throws(() => checkFlag("selfPowered", 1, false), /must be true or false/);
 * ```
 */
export function checkFlag(
  path: string,
  value: unknown,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw invalidField(path, value, "true or false");
  }
  return value;
}

/**
 * Checks that a value is an object (not null, not an array).
 *
 * @param path the field
 * @param value its value
 * @returns the value, typed
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkObject } from "./check.ts";
 * assert.deepEqual(checkObject("companion", {}), {});
 * assert.throws(() => checkObject("companion", null), /companion must be an object/);
 * ```
 */
export function checkObject<T>(path: string, value: unknown): T {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidField(path, value, "an object");
  }
  return value as T;
}

/**
 * Refuses fields the definition does not know, suggesting the closest known
 * name (a typo such as `maxPacketsize` would otherwise be ignored).
 *
 * @param path the object
 * @param value the object
 * @param known the field names it may have
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFields } from "./check.ts";
 * assert.throws(
 *   () => checkFields("endpoints[0]", { maxPacketsize: 64 }, ["address", "maxPacketSize"]),
 *   /endpoints\[0\] has an unknown field "maxPacketsize" \(did you mean maxPacketSize\?\)/,
 * );
 * ```
 */
export function checkFields(
  path: string,
  value: object,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const guess = closest(key, known);
    throw new UsbError(
      "invalid-argument",
      `${path} has an unknown field ${JSON.stringify(key)}${
        guess === undefined ? "" : ` (did you mean ${guess}?)`
      }`,
      { hint: `known fields: ${known.join(", ")}` },
    );
  }
}

/**
 * Checks bytes given as a `Uint8Array` or an array of numbers, and returns
 * a copy as a `Uint8Array`.
 *
 * @param path the field
 * @param value its value
 * @returns a copy
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBytes } from "./check.ts";
 * assert.deepEqual([...checkBytes("data", [1, 2])], [1, 2]);
 * assert.throws(() => checkBytes("data", [1, 300]), /data\[1\] must be an integer from 0 to 255/);
 * ```
 */
export function checkBytes(path: string, value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value.slice();
  if (!Array.isArray(value)) {
    throw invalidField(path, value, "a Uint8Array or an array of bytes");
  }
  return new Uint8Array(
    value.map((b: unknown, i) => checkInt(`${path}[${i}]`, b, 0, 255)),
  );
}

/**
 * Descriptor types a definition may not give as raw bytes: the model writes
 * them itself, and a stray one would change how the host parses the rest.
 */
const STRUCTURAL: Record<number, string> = {
  0x01: "device",
  0x02: "configuration",
  0x03: "string",
  0x04: "interface",
  0x05: "endpoint",
  0x06: "device qualifier",
  0x07: "other-speed configuration",
  0x0b: "interface association",
  0x0f: "BOS",
  0x30: "SuperSpeed endpoint companion",
};

/**
 * Checks a list of raw class-specific descriptors: each entry is one or
 * more whole descriptors (`bLength` bytes each, at least 2, exactly
 * filling the entry), none of a type the model writes itself.
 *
 * @param path the field
 * @param value the list
 * @returns the entries as `Uint8Array`s
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDescriptors } from "./check.ts";
 * assert.equal(checkDescriptors("extra", [[5, 0x24, 0, 0x10, 1]]).length, 1);
 * assert.throws(() => checkDescriptors("extra", [[5, 0x24, 0]]), /extra\[0\]: bLength 5 runs past the end/);
 * assert.throws(() => checkDescriptors("extra", [[7, 5, 0x81, 2, 64, 0, 0]]), /endpoint descriptor/);
 * ```
 */
export function checkDescriptors(
  path: string,
  value: unknown,
): Uint8Array[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw invalidField(
      path,
      value,
      "an array of descriptors (each a Uint8Array or an array of bytes)",
    );
  }
  return value.map((entry: Bytes, i) => {
    const at = `${path}[${i}]`;
    const bytes = checkBytes(at, entry);
    if (bytes.length === 0) {
      throw new UsbError("invalid-argument", `${at} is empty`);
    }
    for (let pos = 0; pos < bytes.length;) {
      const len = bytes[pos]!;
      const type = bytes[pos + 1];
      if (len < 2 || type === undefined) {
        throw new UsbError(
          "invalid-argument",
          `${at}: the descriptor at byte ${pos} has bLength ${len}; every descriptor has at least bLength and bDescriptorType`,
        );
      }
      if (pos + len > bytes.length) {
        throw new UsbError(
          "invalid-argument",
          `${at}: bLength ${len} runs past the end (the descriptor at byte ${pos} has ${
            bytes.length - pos
          } bytes)`,
        );
      }
      const name = STRUCTURAL[type];
      if (name !== undefined) {
        throw new UsbError(
          "invalid-argument",
          `${at}: the descriptor at byte ${pos} is ${
            /^[aeiou]/i.test(name) ? "an" : "a"
          } ${name} descriptor (type 0x${
            type.toString(16).padStart(2, "0")
          }); the model writes those itself from the definition`,
        );
      }
      pos += len;
    }
    return bytes;
  });
}

/**
 * Checks an optional function field.
 *
 * @param path the field
 * @param value its value
 * @returns the function, or undefined
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFunction } from "./check.ts";
 * assert.equal(checkFunction("onIn", undefined), undefined);
 * assert.throws(() => checkFunction("onIn", 3), /onIn must be a function/);
 * ```
 */
export function checkFunction<F>(path: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw invalidField(path, value, "a function");
  }
  return value as F;
}

/** The closest name by edit distance, if close enough to be a typo. */
function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of names) {
    const d = distance(word.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3))
    ? best
    : undefined;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length]!;
}
