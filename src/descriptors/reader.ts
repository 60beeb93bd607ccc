/**
 * What every descriptor reader shares: bounds-checked reads, the one
 * `bLength` rule (strict: exact; lenient: what the kernel accepts), the
 * invalid-descriptor error, and the list of warnings a lenient parse
 * collects.
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import type {
  DecoderLookup,
  DescriptorWarning,
  RawDescriptor,
  Speed,
} from "./types.ts";

/**
 * The error every reader throws: `invalid-descriptor`, naming the byte
 * offset.
 *
 * @param offset where the problem is, in the bytes given to the parser
 * @param what the problem
 * @param hint how to get past it, if there is a way
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invalid } from "./reader.ts";
 * assert.equal(invalid(4, "bad").message, "invalid descriptor at byte 4: bad");
 * ```
 */
export function invalid(offset: number, what: string, hint?: string): UsbError {
  return new UsbError(
    "invalid-descriptor",
    `invalid descriptor at byte ${offset}: ${what}`,
    hint === undefined ? {} : { hint },
  );
}

/**
 * The hint of strict-mode errors that lenient mode accepts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LENIENT_HINT } from "./reader.ts";
 * assert.match(LENIENT_HINT, /lenient/);
 * ```
 */
export const LENIENT_HINT =
  'the Linux kernel accepts this; parse with { mode: "lenient" } to do the same';

let reads = 0;

/**
 * How many bytes every {@linkcode Reader} has read so far, in this process:
 * the parser's unit of work. The fuzz test checks that doubling an input
 * at most doubles it (the parser is linear); every other step of a parse is
 * constant work per descriptor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readOperations, Reader } from "./reader.ts";
 * const before = readOperations();
 * new Reader(new Uint8Array([1, 2]), true).u16(0);
 * assert.equal(readOperations() - before, 2);
 * ```
 */
export function readOperations(): number {
  return reads;
}

/**
 * Bounds-checked little-endian reads over untrusted bytes, plus the parse
 * mode and the warnings collected: an overrun is an invalid descriptor,
 * never a TypeError.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reader } from "./reader.ts";
 * const r = new Reader(new Uint8Array([1, 2]), true);
 * assert.equal(r.u16(0), 0x0201);
 * assert.throws(() => r.u8(2), /read past the end/);
 * ```
 */
export class Reader {
  /** Warnings of the configuration being walked; the walker swaps it per configuration. */
  warnings: DescriptorWarning[] = [];

  /**
   * @param bytes the input
   * @param strict strict mode
   * @param speed the device's speed, for the kernel's corrections
   * @param decoders the class decoders
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly strict: boolean,
    readonly speed: Speed | undefined = undefined,
    readonly decoders: DecoderLookup | undefined = undefined,
  ) {}

  /** The input's length. */
  get length(): number {
    return this.bytes.length;
  }

  /** The byte at `at`. */
  u8(at: number): number {
    reads++;
    const v = this.bytes[at];
    if (v === undefined) throw invalid(at, "read past the end of the data");
    return v;
  }

  /** The little-endian 16-bit value at `at`. */
  u16(at: number): number {
    return this.u8(at) | (this.u8(at + 1) << 8);
  }

  /** A copy of `[start, end)`. */
  slice(start: number, end: number): Uint8Array {
    return this.bytes.slice(start, end);
  }

  /** Records what the kernel would log. */
  warn(offset: number, message: string): void {
    this.warnings.push({ offset, message });
  }

  /**
   * The one `bLength` rule. Strict mode wants one of the exact sizes and
   * throws otherwise; lenient mode wants at least the smallest, as the
   * kernel does, and otherwise records a warning and answers false (the
   * caller skips the descriptor as config.c does).
   *
   * @param at where the descriptor starts
   * @param what its name, for messages ("interface")
   * @param len its `bLength`
   * @param sizes the sizes the specification allows, smallest first
   * @param names how the header names them, for messages
   */
  lengthOk(
    at: number,
    what: string,
    len: number,
    sizes: readonly number[],
    names: string,
  ): boolean {
    const min = sizes[0] ?? 0;
    if (this.strict) {
      if (!sizes.includes(len)) {
        throw invalid(
          at,
          `${what} descriptor bLength is ${len}, expected ${names}`,
          LENIENT_HINT,
        );
      }
      return true;
    }
    if (len >= min) return true;
    this.warn(
      at,
      `${what} descriptor of length ${len} (less than ${min}), skipping`,
    );
    return false;
  }

  /** The descriptor at `at` as a raw one, decoded when a class decoder knows it. */
  raw(at: number, len: number): RawDescriptor {
    return {
      descriptorType: this.u8(at + 1),
      offset: at,
      raw: this.slice(at, at + len),
      decoded: undefined,
    };
  }
}

/**
 * Two lowercase hex digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex2 } from "./reader.ts";
 * assert.equal(hex2(10), "0a");
 * ```
 */
export function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
