/**
 * Streaming OUT with N transfers always in flight, fed by the helper: fill a
 * buffer, send it, fill the next while the kernel sends.
 *
 * The stream owns `inFlight` buffers plus spares (usbfs-mapped where
 * possible). `buffer()` lends out a free one as a fresh view; `send()`
 * detaches that view (so the data cannot change while the kernel owns it)
 * and hands the buffer to the helper, which submits it at once when fewer
 * than `inFlight` are queued, or on its next reap round. Completed buffers
 * come back to the free list in batches.
 *
 * @module
 */

import { type CancelReason, type UrbEngine, UrbType } from "./engine.ts";
import { UsbError } from "./errors.ts";
import {
  type CheckedStreamOptions,
  StreamCore,
  type StreamEndpoint,
  type StreamOptions,
  streamSpares,
} from "./stream.ts";
import { checkBytes, checkInteger, hex } from "./validate.ts";

/**
 * Options of `Endpoint.outStream`: the same as an IN stream's
 * (`transferSize`, the most bytes one `send()` takes; `inFlight`; `signal`;
 * `zeroCopy`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { OutStreamOptions } from "./out_stream.ts";
 * const o: OutStreamOptions = { transferSize: 65536, inFlight: 16 };
 * assert.equal(o.inFlight, 16);
 * ```
 */
export type OutStreamOptions = StreamOptions;

/**
 * A running OUT stream, from `Endpoint.outStream`.
 *
 * A stall or another failure of a sent buffer ends the stream: the next
 * `buffer()`, `send()` or `close()` throws it (a `stall` UsbError for a
 * stall, src/urb.ts `urbError`). An aborted signal, `close()` of the
 * device, `release()` or `reset()` make them throw a `cancelled` UsbError.
 *
 * @example
 * ```ts ignore
 * // Needs a device: tests/device/stream_test.ts streams to the bench's SourceSink this way.
 * declare const ep: import("../mod.ts").Endpoint;
 * await using out = ep.outStream({ transferSize: 65536, inFlight: 16 });
 * for (let i = 0; i < 1000; i++) {
 *   const buf = await out.buffer(); // a free buffer, 65536 bytes
 *   buf.fill(i & 0xff);
 *   out.send(); // buf is detached now: the kernel owns the memory
 * }
 * console.log(await out.close()); // 65536000 bytes written
 * ```
 */
export class OutStream implements AsyncDisposable {
  readonly #core: StreamCore;
  readonly #size: number;
  /** Free buffers: a stack. */
  readonly #free: Int32Array;
  #freeTop: number;
  /** The buffer lent by the last `buffer()`, not yet sent. */
  #current = -1;
  /** Sent and not yet completed. */
  #outstanding = 0;
  #closing: Promise<number> | undefined;
  /** Bytes the device accepted so far. */
  bytesWritten = 0;

  /** Made by `Endpoint.outStream`, with options from `checkStreamOptions`. */
  constructor(
    engine: UrbEngine,
    ep: StreamEndpoint,
    tag: number,
    options: CheckedStreamOptions,
  ) {
    const size = options.transferSize;
    this.#size = size;
    const n = options.inFlight + streamSpares(options.inFlight, size);
    this.#core = new StreamCore(engine, {
      what: `OUT stream on endpoint ${hex(ep.address)}`,
      tag,
      signal: options.signal,
      unit: "bytes",
      spec: {
        type: ep.type === "interrupt" ? UrbType.interrupt : UrbType.bulk,
        endpoint: ep.address,
        flags: 0,
        size,
        inFlight: options.inFlight,
        buffers: n,
        isoLengths: [],
        zeroCopy: options.zeroCopy !== false,
      },
    });
    this.#free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.#free[i] = n - 1 - i;
    this.#freeTop = n;
    this.#core.start();
  }

  /** True when the buffers are usbfs-mapped (zero-copy). */
  get zeroCopy(): boolean {
    return this.#core.zeroCopy;
  }

  /** URBs the kernel holds now. */
  get queued(): number {
    return this.#core.queued;
  }

  /** Settles when the stream is over (for close()). */
  get settled(): Promise<unknown> {
    return this.#core.settled;
  }

  /** Takes completed buffers back; the first failure ends the stream. */
  #collect(): UsbError | undefined {
    const core = this.#core;
    while (core.ready > 0) {
      const i = core.shift();
      this.#outstanding--;
      const error = core.statusError();
      if (error !== undefined) return error;
      this.bytesWritten += core.actual;
      core.done = this.bytesWritten;
      this.#free[this.#freeTop++] = i;
    }
    return undefined;
  }

  /**
   * A free buffer to fill, `transferSize` bytes: waits while every buffer
   * is queued or in flight. Calling it again before `send()` returns the
   * same buffer.
   */
  async buffer(): Promise<Uint8Array<ArrayBuffer>> {
    const core = this.#core;
    if (this.#closing !== undefined) {
      throw new UsbError(
        "invalid-argument",
        `buffer(): the ${core.what} is closing`,
      );
    }
    for (;;) {
      const error = this.#collect();
      if (error !== undefined) return await core.fail(error);
      if (core.over) {
        await core.finish();
        throw new UsbError("cancelled", `${core.what} was stopped`);
      }
      if (this.#current >= 0) return core.lent(this.#current)!;
      if (this.#freeTop > 0) {
        const i = this.#free[--this.#freeTop]!;
        this.#current = i;
        return core.lend(i, this.#size);
      }
      await core.wait();
    }
  }

  /**
   * Sends the buffer of the last `buffer()` call: its first `length` bytes
   * (default all). Its view is detached now: the data cannot change while
   * the kernel owns it.
   *
   * @throws {UsbError} `invalid-argument` without a `buffer()` first or for
   * a bad length; the stream's error once it failed or stopped
   */
  send(length: number = this.#size): void {
    const core = this.#core;
    if (this.#current < 0) {
      throw new UsbError(
        "invalid-argument",
        `send(): no buffer to send on the ${core.what}`,
        { hint: "get one with await stream.buffer() first" },
      );
    }
    checkInteger("send: length", length, 0, this.#size);
    const error = this.#collect();
    if (error !== undefined) {
      void core.fail(error).catch(() => {});
      throw error;
    }
    if (core.over) {
      void core.finish().catch(() => {});
      throw new UsbError("cancelled", `${core.what} was stopped`);
    }
    const i = this.#current;
    this.#current = -1;
    this.#outstanding++;
    core.giveBack(i, length);
  }

  /**
   * Waits until everything sent has completed, then stops the stream and
   * frees its buffers. Resolves with the bytes written in all. A buffer
   * taken with `buffer()` and not sent is dropped.
   */
  close(): Promise<number> {
    this.#closing ??= (async () => {
      const core = this.#core;
      this.#current = -1;
      for (;;) {
        const error = this.#collect();
        if (error !== undefined) return await core.fail(error);
        if (this.#outstanding === 0) break;
        if (core.over) {
          await core.finish();
          throw new UsbError("cancelled", `${core.what} was stopped`);
        }
        await core.wait();
      }
      await core.stop();
      return this.bytesWritten;
    })();
    return this.#closing;
  }

  /** Stops at once: what is queued is discarded. */
  async return(): Promise<void> {
    await this.#core.stop();
  }

  /**
   * close(), release() and reset() stop the stream: a waiting or later call
   * throws a `cancelled` UsbError saying which.
   */
  cancel(reason: CancelReason = "cancelled"): void {
    this.#core.cancel(reason);
  }

  /** `await using` support: stops the stream (see {@linkcode close} to wait for the data). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#core.stop();
  }
}

/**
 * A WritableStream of an OUT endpoint on an {@linkcode OutStream}: each
 * chunk is copied into stream buffers (one send per `transferSize` bytes;
 * an empty chunk is a zero-length transfer). A chunk that is not bytes
 * errors the stream with `invalid-argument`.
 *
 * @example
 * ```ts ignore
 * // Needs a device: Endpoint.openWritable is this, and tests/device/buffers_test.ts
 * // writes through it on the bench in the guest.
 * import { writableOf } from "./out_stream.ts";
 * declare const ep: import("../mod.ts").Endpoint;
 * const w = writableOf(() => ep.outStream({ inFlight: 8 })).getWriter();
 * await w.write(new Uint8Array(4096));
 * await w.close();
 * ```
 */
export function writableOf(
  open: () => OutStream,
): WritableStream<Uint8Array> {
  let out: OutStream | undefined;
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      const bytes = checkBytes("openWritable: chunk", chunk);
      out ??= open();
      let off = 0;
      do {
        const b = await out.buffer();
        const n = Math.min(b.length, bytes.length - off);
        b.set(bytes.subarray(off, off + n));
        out.send(n);
        off += n;
      } while (off < bytes.length);
    },
    async close() {
      await out?.close();
    },
    async abort() {
      await out?.return();
    },
  });
}
