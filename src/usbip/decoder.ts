/**
 * Incremental decoding of a USB/IP byte stream: reads arrive in pieces of
 * any size (a header split in two, many messages in one read), and a
 * {@linkcode StreamDecoder} turns them into whole messages with the decoders
 * of protocol.ts.
 *
 * It holds at most one message plus one read: the decoders refuse lengths
 * above their limits before any data is awaited, and `push` refuses input
 * beyond `maxBuffered`.
 *
 * @example Two messages arriving in three pieces
 * ```ts
 * import assert from "node:assert/strict";
 * import { StreamDecoder } from "./decoder.ts";
 * import { decodeCommand, encodeCmdUnlink } from "./protocol.ts";
 * const bytes = new Uint8Array([
 *   ...encodeCmdUnlink({ seqnum: 1, devid: 0, unlinkSeqnum: 0 }),
 *   ...encodeCmdUnlink({ seqnum: 2, devid: 0, unlinkSeqnum: 1 }),
 * ]);
 * const d = new StreamDecoder();
 * const seen: number[] = [];
 * for (const piece of [bytes.subarray(0, 30), bytes.subarray(30, 50), bytes.subarray(50)]) {
 *   d.push(piece);
 *   for (let c; (c = d.next(decodeCommand)) !== undefined;) seen.push(c.seqnum);
 * }
 * assert.deepEqual(seen, [1, 2]);
 * ```
 *
 * @module
 */

import {
  type Decoded,
  DEFAULT_MAX_TRANSFER_LENGTH,
  HEADER_SIZE,
  ISO_DESCRIPTOR_SIZE,
  MAX_ISO_PACKETS,
  UsbipProtocolError,
} from "./protocol.ts";

/**
 * The largest message with the default limits (a CMD_SUBMIT carrying 16 MiB
 * of OUT data and 1024 iso descriptors), plus room for one read of 1 MiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_BUFFERED } from "./decoder.ts";
 * assert.ok(DEFAULT_MAX_BUFFERED > 16 << 20);
 * ```
 */
export const DEFAULT_MAX_BUFFERED: number = HEADER_SIZE +
  DEFAULT_MAX_TRANSFER_LENGTH +
  MAX_ISO_PACKETS * ISO_DESCRIPTOR_SIZE + (1 << 20);

/**
 * Accumulates bytes and hands out whole messages.
 *
 * @example See the module example.
 * ```ts
 * import { StreamDecoder } from "./decoder.ts";
 * const d = new StreamDecoder({ maxBuffered: 1 << 20 });
 * d.push(new Uint8Array(3));
 * console.log(d.buffered); // 3
 * ```
 */
export class StreamDecoder {
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #need = 0;
  readonly #max: number;

  /**
   * Makes a decoder.
   *
   * @param options `maxBuffered`: most bytes ever held (default
   *   {@linkcode DEFAULT_MAX_BUFFERED}); more is a protocol error.
   */
  constructor(options: { maxBuffered?: number } = {}) {
    this.#max = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.#buf = new Uint8Array(Math.min(64 * 1024, this.#max));
  }

  /** Bytes received and not yet taken by a message. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Appends bytes (they are copied).
   *
   * @param chunk bytes as they arrived
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const held = this.#end - this.#start;
    if (held + chunk.length > this.#max) {
      throw new UsbipProtocolError(
        `more than ${this.#max} bytes arrived without forming a message`,
      );
    }
    if (this.#end + chunk.length > this.#buf.length) {
      if (held + chunk.length <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let size = this.#buf.length;
        while (size < held + chunk.length) size *= 2;
        const grown = new Uint8Array(Math.min(size, this.#max));
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * The next whole message, or undefined until more bytes arrive.
   *
   * @param decode a decoder of protocol.ts (wrap it to pass limits)
   * @returns the message, its bytes consumed
   */
  next<T>(decode: (bytes: Uint8Array) => Decoded<T>): T | undefined {
    const held = this.#end - this.#start;
    if (held === 0 || held < this.#need) return undefined;
    const r = decode(this.#buf.subarray(this.#start, this.#end));
    if ("need" in r) {
      if (r.need > this.#max) {
        throw new UsbipProtocolError(
          `a message of ${r.need} bytes exceeds the ${this.#max}-byte limit`,
        );
      }
      this.#need = r.need;
      return undefined;
    }
    this.#need = 0;
    this.#start += r.size;
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
      // Give back a buffer that grew for one large message.
      if (this.#buf.length > 1 << 20) this.#buf = new Uint8Array(64 * 1024);
    }
    return r.value;
  }

  /**
   * Takes every byte not yet decoded (a copy), leaving the decoder empty:
   * for handing a stream over from one phase to the next.
   *
   * @returns the bytes
   */
  takeRest(): Uint8Array {
    const rest = this.#buf.slice(this.#start, this.#end);
    this.#start = 0;
    this.#end = 0;
    this.#need = 0;
    return rest;
  }
}
