/**
 * A small builder the class decoders share: reads fields of a descriptor
 * by offset with bounds checks and records them in order, named as the
 * class specification (and `lsusb -v`) names them.
 *
 * @module
 */

import type { DecodedDescriptor, DecodedField } from "../types.ts";

/**
 * Collects the fields of one descriptor. Every read is bounds-checked: a
 * field past the end of the descriptor is left out and `short` is set, so
 * a decoder never throws on short input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FieldList } from "./fields.ts";
 * const f = new FieldList(new Uint8Array([5, 0x24, 0, 0x10, 0x01]));
 * f.header();
 * f.u8("bDescriptorSubtype", 2);
 * f.bcd("bcdCDC", 3);
 * assert.deepEqual(f.fields.map((x) => x.value), [5, 0x24, 0, "1.10"]);
 * ```
 */
export class FieldList {
  /** The fields so far, in order. */
  readonly fields: DecodedField[] = [];
  /** A field was past the end of the descriptor. */
  short = false;

  /** @param raw the whole descriptor */
  constructor(readonly raw: Uint8Array) {}

  /** The byte at `at`, or undefined past the end. */
  byte(at: number): number | undefined {
    return at < this.raw.length ? this.raw[at] : undefined;
  }

  /** An unsigned little-endian value of `size` bytes at `at`, or undefined. */
  le(at: number, size: number): number | undefined {
    if (at + size > this.raw.length) return undefined;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.raw[at + i] ?? 0);
    return v;
  }

  /** Adds a field; returns the value, or undefined (and marks `short`) past the end. */
  add(
    name: string,
    at: number,
    size: number,
    note?: (v: number) => string | undefined,
    stringIndex = false,
  ): number | undefined {
    const v = this.le(at, size);
    if (v === undefined) {
      this.short = true;
      return undefined;
    }
    this.fields.push({ name, value: v, note: note?.(v), stringIndex });
    return v;
  }

  /** `bLength` and `bDescriptorType`. */
  header(): void {
    this.add("bLength", 0, 1);
    this.add("bDescriptorType", 1, 1);
  }

  /** A one-byte field. */
  u8(name: string, at: number, note?: (v: number) => string | undefined) {
    return this.add(name, at, 1, note);
  }

  /** A two-byte field. */
  u16(name: string, at: number, note?: (v: number) => string | undefined) {
    return this.add(name, at, 2, note);
  }

  /** A four-byte field. */
  u32(name: string, at: number, note?: (v: number) => string | undefined) {
    return this.add(name, at, 4, note);
  }

  /** A string descriptor index (`iTerminal`, `iMACAddress`). */
  str(name: string, at: number, size = 1): number | undefined {
    return this.add(name, at, size, undefined, true);
  }

  /** A two-byte BCD version, written "1.10" as lsusb writes it. */
  bcd(name: string, at: number): void {
    const v = this.le(at, 2);
    if (v === undefined) {
      this.short = true;
      return;
    }
    this.fields.push({
      name,
      value: `${(v >> 8).toString(16)}.${
        (v & 0xff).toString(16).padStart(2, "0")
      }`,
      note: undefined,
      stringIndex: false,
    });
  }

  /** A text value computed by the decoder (a list, a GUID). */
  text(name: string, value: string, note?: string): void {
    this.fields.push({ name, value, note, stringIndex: false });
  }

  /**
   * Reads fields laid out by a table, from `at` on: each entry is a name,
   * a size in bytes, a kind (number, BCD version, string index), and for an
   * array the field that counts its elements ("bNrInPins"), `"rest"` (as
   * many as fit) or `{ leave: n }` (as many as fit before the last n bytes). Array elements are named `name(i)`, as lsusb names them.
   *
   * @returns the offset after the last field read
   */
  table(at: number, spec: readonly TableEntry[]): number {
    const values = new Map<string, number>();
    for (const [name, size, kind = "number", count] of spec) {
      let n = 1;
      if (count === "rest") {
        n = Math.max(0, Math.floor((this.raw.length - at) / size));
      } else if (typeof count === "object") {
        n = Math.max(
          0,
          Math.floor((this.raw.length - at - count.leave) / size),
        );
      } else if (typeof count === "string") n = values.get(count) ?? 0;
      else if (typeof count === "number") n = count;
      for (let i = 0; i < n; i++) {
        const label = count === undefined ? name : `${name}(${i})`;
        if (at + size > this.raw.length) {
          this.short = true;
          return at;
        }
        if (kind === "bcd") this.bcd(label, at);
        else if (kind === "guid") {
          this.text(label, guid(this.raw.subarray(at, at + size)));
        } else {
          const v = this.add(label, at, size, undefined, kind === "string");
          if (v !== undefined) values.set(name, v);
        }
        at += size;
      }
    }
    return at;
  }

  /** The decoded descriptor. */
  done(name: string, decoder: string): DecodedDescriptor {
    return { name, decoder, fields: this.fields };
  }
}

/**
 * One row of a {@linkcode FieldList.table} layout: name, size in bytes,
 * kind, and for arrays the count (a field name, a number, or `"rest"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TableEntry } from "./fields.ts";
 * const header: TableEntry[] = [["bcdADC", 2, "bcd"], ["wTotalLength", 2], ["bInCollection", 1], ["baInterfaceNr", 1, "number", "bInCollection"]];
 * assert.equal(header.length, 4);
 * ```
 */
export type TableEntry = readonly [
  name: string,
  size: number,
  kind?: "number" | "bcd" | "string" | "guid",
  count?: string | number | "rest" | { readonly leave: number },
];

/**
 * The names of the bits set in `value`, from a table indexed by bit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bitNames } from "./fields.ts";
 * assert.equal(bitNames(0b101, ["a", "b", "c"]), "a, c");
 * ```
 */
export function bitNames(
  value: number,
  names: readonly (string | undefined)[],
): string | undefined {
  const set: string[] = [];
  names.forEach((n, i) => {
    if (n !== undefined && Math.floor(value / 2 ** i) % 2 === 1) set.push(n);
  });
  return set.length === 0 ? undefined : set.join(", ");
}

/**
 * A GUID from its 16 bytes in USB's order (first three fields
 * little-endian), as `{xxxxxxxx-xxxx-...}`, the way lsusb prints it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guid } from "./fields.ts";
 * const b = new Uint8Array([0x38, 0xb6, 0x08, 0x34, 0xa9, 0x09, 0xa0, 0x47, 0x8b, 0xfd, 0xa0, 0x76, 0x88, 0x15, 0xb6, 0x65]);
 * assert.equal(guid(b), "{3408b638-09a9-47a0-8bfd-a0768815b665}");
 * ```
 */
export function guid(b: Uint8Array): string {
  const h = (i: number) => (b[i] ?? 0).toString(16).padStart(2, "0");
  const run = (idx: number[]) => idx.map(h).join("");
  return `{${run([3, 2, 1, 0])}-${run([5, 4])}-${run([7, 6])}-${run([8, 9])}-${
    run([10, 11, 12, 13, 14, 15])
  }}`;
}
