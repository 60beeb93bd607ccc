/**
 * End-of-stream detection for the guest's stdout and stderr ports.
 *
 * A virtio-serial port has no end-of-file the host can see, and the guest
 * must not power off before QEMU has passed on everything written (see
 * kernel/init.sh). So after the command exits, the guest writes a random
 * token to each port, and the host cuts the stream there.
 *
 * @module
 */

/**
 * Streaming token finder: feed chunks, get back the bytes to pass on. Bytes
 * that might be the start of the token are held back until the next chunk
 * decides. Everything after the token is dropped (late output of background
 * processes that outlived the command).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EofScanner } from "./eof.ts";
 * const s = new EofScanner(new TextEncoder().encode("<EOF>"));
 * const dec = new TextDecoder();
 * let out = dec.decode(s.push(new TextEncoder().encode("hello<E")));
 * out += dec.decode(s.push(new TextEncoder().encode("OF>junk")));
 * assert.ok(out === "hello" && s.done);
 * ```
 */
export class EofScanner {
  #token: Uint8Array;
  #pending: Uint8Array = new Uint8Array();
  #done = false;

  /** Creates a scanner.
   * @param token the end marker; must not be empty.
   */
  constructor(token: Uint8Array) {
    if (token.length === 0) throw new Error("empty EOF token");
    this.#token = token;
  }

  /** Whether the token has been seen. */
  get done(): boolean {
    return this.#done;
  }

  /** Feeds a chunk; returns the bytes that are certainly data. */
  push(chunk: Uint8Array): Uint8Array {
    if (this.#done) return new Uint8Array();
    const buf = new Uint8Array(this.#pending.length + chunk.length);
    buf.set(this.#pending);
    buf.set(chunk, this.#pending.length);
    const at = indexOfBytes(buf, this.#token);
    if (at >= 0) {
      this.#done = true;
      this.#pending = new Uint8Array();
      return buf.subarray(0, at);
    }
    const keep = this.#heldBack(buf);
    this.#pending = buf.slice(buf.length - keep);
    return buf.subarray(0, buf.length - keep);
  }

  /** Ends the stream without a token; returns the held-back bytes. */
  flush(): Uint8Array {
    const p = this.#pending;
    this.#pending = new Uint8Array();
    return p;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of the token. */
  #heldBack(buf: Uint8Array): number {
    const t = this.#token;
    for (let n = Math.min(t.length - 1, buf.length); n > 0; n--) {
      let ok = true;
      for (let i = 0; i < n; i++) {
        if (buf[buf.length - n + i] !== t[i]) {
          ok = false;
          break;
        }
      }
      if (ok) return n;
    }
    return 0;
  }
}

/**
 * Position of `needle` in `hay`, or -1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexOfBytes } from "./eof.ts";
 * assert.ok(indexOfBytes(new Uint8Array([1, 2, 3]), new Uint8Array([2, 3])) === 1);
 * ```
 */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  if (first === undefined) return 0;
  for (let i = hay.indexOf(first); i >= 0; i = hay.indexOf(first, i + 1)) {
    if (i + needle.length > hay.length) return -1;
    let ok = true;
    for (let j = 1; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
  }
  return -1;
}
