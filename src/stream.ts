/**
 * Streaming with N transfers always in flight: a zero-copy async iterator for
 * bulk and interrupt IN, and Web Streams on top of it.
 *
 * The iterator owns `inFlight` buffers (usbfs-mapped where possible) and keeps
 * all of them queued. Each chunk it yields is a view of one buffer, valid
 * until the next iteration: then the view is detached and the buffer goes
 * back to the kernel. Nothing is allocated per URB; the URB bookkeeping lives
 * in typed arrays.
 *
 * @module
 */

import type { BufferPool, UsbBuffer } from "./buffer.ts";
import { Errno, errnoName, UsbError } from "./errors.ts";
import {
  cancelledBecause,
  type CancelReason,
  isDisconnectStatus,
  listenForAbort,
  type OutResult,
  type UrbEngine,
  type UrbOwner,
  UrbType,
} from "./transfer.ts";
import {
  checkBoolean,
  checkInteger,
  checkOptions,
  checkSignal,
  hex,
  MAX_TRANSFER_BYTES,
} from "./validate.ts";

/**
 * Options of `Endpoint.stream` and `Endpoint.openReadable`. Checked before
 * anything is allocated: a bad value is `invalid-argument`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { StreamOptions } from "./stream.ts";
 * const o: StreamOptions = { transferSize: 65536, inFlight: 16, zeroCopy: true };
 * assert.ok(o.inFlight === 16);
 * ```
 */
export interface StreamOptions {
  /** Bytes per transfer: an integer from 1 to 2147483647. Default 64 KiB. */
  transferSize?: number;
  /**
   * Transfers kept in flight: an integer from 1 to the device's URB slots
   * (`maxUrbs` of `open`, default 1024). Default 16.
   */
  inFlight?: number;
  /** Stops the stream; the iterator then throws a `cancelled` UsbError. An `AbortSignal`. */
  signal?: AbortSignal;
  /** `false` forces ordinary memory instead of usbfs-mapped buffers. */
  zeroCopy?: boolean;
}

/**
 * {@linkcode StreamOptions}, checked, with the defaults filled in: what
 * {@linkcode checkStreamOptions} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CheckedStreamOptions } from "./stream.ts";
 * const o: CheckedStreamOptions = { transferSize: 65536, inFlight: 16, signal: undefined, zeroCopy: undefined };
 * assert.equal(o.inFlight, 16);
 * ```
 */
export interface CheckedStreamOptions {
  /** Bytes per transfer. */
  readonly transferSize: number;
  /** Transfers in flight. */
  readonly inFlight: number;
  /** A real AbortSignal, or undefined. */
  readonly signal: AbortSignal | undefined;
  /** `false` forces ordinary memory. */
  readonly zeroCopy: boolean | undefined;
}

/**
 * Checks stream options (see {@linkcode StreamOptions}).
 *
 * @param method the method, for messages: `"stream"`
 * @param value the options argument
 * @param maxInFlight the most transfers in flight (the device's URB slots)
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkStreamOptions } from "./stream.ts";
 * assert.deepEqual(checkStreamOptions("stream", undefined, 1024), {
 *   transferSize: 65536, inFlight: 16, signal: undefined, zeroCopy: undefined,
 * });
 * assert.throws(() => checkStreamOptions("stream", { inFlight: 0 }, 1024), /stream: options\.inFlight must be an integer from 1 to 1024, got 0/);
 * ```
 */
export function checkStreamOptions(
  method: string,
  value: unknown,
  maxInFlight: number,
): CheckedStreamOptions {
  const o = checkOptions(`${method}: options`, value, [
    "transferSize",
    "inFlight",
    "signal",
    "zeroCopy",
  ]);
  return {
    transferSize: o.transferSize === undefined ? 65536 : checkInteger(
      `${method}: options.transferSize`,
      o.transferSize,
      1,
      MAX_TRANSFER_BYTES,
    ),
    inFlight: o.inFlight === undefined ? 16 : checkInteger(
      `${method}: options.inFlight`,
      o.inFlight,
      1,
      maxInFlight,
      "the device has that many URB slots; open it with a larger { maxUrbs } for more",
    ),
    signal: checkSignal(`${method}: options.signal`, o.signal),
    zeroCopy: checkBoolean(`${method}: options.zeroCopy`, o.zeroCopy),
  };
}

/** What a stream needs from its endpoint. */
export interface StreamEndpoint {
  /** Endpoint address. */
  readonly address: number;
  /** Transfer type. */
  readonly type: "bulk" | "interrupt" | "isochronous" | "control";
  /** Throws unless the endpoint can be used now. */
  checkUsable(method: string): void;
}

/**
 * A running IN stream: an async iterator of chunks.
 *
 * The stream ends with an error when it is stopped by anything other than
 * the loop itself: an aborted signal, `close()` of the device, `release()`
 * of the interface or `reset()` all make the next (or the pending) `next()`
 * throw a `cancelled` UsbError that says which.
 *
 * @example
 * ```ts ignore
 * const stream = ep.stream({ transferSize: 65536, inFlight: 16 });
 * let total = 0;
 * for await (const chunk of stream) {
 *   total += chunk.length; // chunk is valid until the next iteration
 *   if (total >= 256 << 20) break; // break cancels the URBs still queued
 * }
 * ```
 */
export class InStream
  implements AsyncIterableIterator<Uint8Array<ArrayBuffer>>, UrbOwner {
  readonly #engine: UrbEngine;
  readonly #ep: StreamEndpoint;
  readonly #buffers: UsbBuffer[];
  readonly #slots: Int32Array;
  readonly #status: Int32Array;
  readonly #actual: Int32Array;
  /** 0 idle, 1 in flight, 2 completed and not yet read. */
  readonly #state: Uint8Array;
  readonly #size: number;
  readonly #signal: AbortSignal | undefined;
  #next = 0;
  #current = -1;
  /** Wakes a `next()` waiting for its chunk. */
  #waiter: (() => void) | undefined;
  /** Wakes `#stop` waiting for the URBs to come back. */
  #stopWaiter: (() => void) | undefined;
  #ended = false;
  /** Why the stream ended, when something other than the loop ended it. */
  #endError: UsbError | undefined;
  #stopping: Promise<void> | undefined;
  #onAbort = () => {
    this.#waiter?.();
  };
  #unlisten: (() => void) | undefined;
  /** Bytes delivered so far. */
  bytes = 0;
  /** Interface number, for release(). */
  readonly tag: number;
  /** Settles when the stream is over. */
  settled: Promise<unknown> = Promise.resolve();

  /** Made by `Endpoint.stream`, with options from {@linkcode checkStreamOptions}. */
  constructor(
    engine: UrbEngine,
    pool: BufferPool,
    ep: StreamEndpoint,
    tag: number,
    options: CheckedStreamOptions,
  ) {
    this.#engine = engine;
    this.#ep = ep;
    this.tag = tag;
    this.#size = options.transferSize;
    const n = options.inFlight;
    this.#buffers = [];
    try {
      for (let i = 0; i < n; i++) {
        this.#buffers.push(
          pool.alloc(
            this.#size,
            options.zeroCopy === false ? { zeroCopy: false } : {},
          ),
        );
      }
    } catch (e) {
      for (const b of this.#buffers) b.release();
      throw e;
    }
    this.#slots = new Int32Array(n).fill(-1);
    this.#status = new Int32Array(n);
    this.#actual = new Int32Array(n);
    this.#state = new Uint8Array(n);
    this.#signal = options.signal;
    try {
      if (this.#signal) {
        this.#unlisten = listenForAbort(this.#signal, this.#onAbort, "stream");
      }
      this.#submit(0);
    } catch (e) {
      // Nothing is in flight: give everything back and report now.
      this.#unlisten?.();
      for (const b of this.#buffers) b.release();
      throw e;
    }
    engine.track(this);
    for (let i = 1; i < n; i++) {
      try {
        this.#submit(i);
      } catch (e) {
        // Some URBs are in flight: they are given back, and the first
        // next() reports the error.
        this.#endError = e instanceof UsbError
          ? e
          : new UsbError("io", `stream: ${String(e)}`, { cause: e });
        void this.#stop();
        break;
      }
    }
  }

  /** True when the buffers are usbfs-mapped (zero-copy). */
  get zeroCopy(): boolean {
    return this.#buffers[0]?.zeroCopy ?? false;
  }

  #submit(i: number): void {
    const b = this.#buffers[i]!;
    b.acquire("stream");
    this.#state[i] = 1;
    try {
      this.#slots[i] = this.#engine.submit(
        this,
        i,
        this.#ep.type === "interrupt" ? UrbType.interrupt : UrbType.bulk,
        this.#ep.address,
        0,
        b.urbBuffer(0),
        this.#size,
        0,
      );
    } catch (e) {
      this.#state[i] = 0;
      b.complete();
      throw e;
    }
  }

  /** UrbOwner. */
  urbDone(index: number, status: number, actualLength: number): void {
    this.#status[index] = status;
    this.#actual[index] = actualLength;
    this.#state[index] = 2;
    this.#buffers[index]!.complete();
    if (index === this.#next || this.#ended) this.#waiter?.();
    this.#stopWaiter?.();
  }

  #cancelled(why: string): UsbError {
    return new UsbError(
      "cancelled",
      `stream on endpoint ${
        hex(this.#ep.address)
      } ${why} after ${this.bytes} bytes`,
      this.#signal?.aborted ? { hint: "its AbortSignal was aborted" } : {},
    );
  }

  /** True when next() must not deliver: stopped, or the signal aborted. */
  get #over(): boolean {
    return this.#ended || this.#signal?.aborted === true;
  }

  /**
   * The end of the iteration: throws why the stream was stopped, unless the
   * loop itself stopped it (`break`, `return()`).
   */
  async #finished(): Promise<IteratorResult<Uint8Array<ArrayBuffer>>> {
    if (
      this.#endError === undefined && !this.#ended && this.#signal?.aborted
    ) {
      this.#endError = this.#cancelled("was cancelled");
    }
    await this.#stop();
    if (this.#endError !== undefined) throw this.#endError;
    return { done: true, value: undefined };
  }

  /**
   * The next chunk, in submission order. Throws a `cancelled` UsbError when
   * the signal was aborted, the device closed, the interface released or
   * the device reset; and again on every later call.
   */
  async next(): Promise<IteratorResult<Uint8Array<ArrayBuffer>>> {
    if (this.#over) return await this.#finished();
    if (this.#current >= 0) {
      // The previous chunk's view dies here; its buffer goes back in flight.
      const prev = this.#current;
      this.#current = -1;
      try {
        this.#submit(prev);
      } catch (e) {
        await this.#stop();
        throw e;
      }
    }
    const i = this.#next;
    while (this.#state[i] !== 2) {
      if (this.#over) return await this.#finished();
      await new Promise<void>((r) => (this.#waiter = r));
      this.#waiter = undefined;
    }
    // A chunk that completed while the stream was being stopped is not data.
    if (this.#over) return await this.#finished();
    this.#next = (i + 1) % this.#buffers.length;
    this.#state[i] = 0;
    const status = this.#status[i]!;
    if (status !== 0 && status !== -Errno.EREMOTEIO) {
      await this.#stop();
      if (this.#engine.gone || isDisconnectStatus(status)) {
        throw this.#engine.disconnectedError("stream");
      }
      if (status === -Errno.ENOENT || status === -Errno.ECONNRESET) {
        throw this.#cancelled("was cancelled");
      }
      const code = status === -Errno.EPIPE
        ? "stall"
        : status === -Errno.EOVERFLOW
        ? "babble"
        : "io";
      throw new UsbError(
        code,
        `stream on endpoint ${hex(this.#ep.address)} failed with ${
          errnoName(-status)
        }`,
        {
          errno: -status,
          ...(status === -Errno.EPIPE
            ? {
              hint:
                "the endpoint halted: clearHalt() it, then start a new stream",
            }
            : {}),
        },
      );
    }
    this.#current = i;
    const n = this.#actual[i]!;
    this.bytes += n;
    return { done: false, value: this.#buffers[i]!.bytes.subarray(0, n) };
  }

  /**
   * A copy of the current chunk that stays valid after the next iteration.
   *
   * @example
   * ```ts ignore
   * for await (const chunk of stream) if (chunk[0] === 0x55) saved.push(stream.keep());
   * ```
   */
  keep(): Uint8Array<ArrayBuffer> {
    if (this.#current < 0) {
      throw new UsbError(
        "invalid-argument",
        "keep(): there is no current chunk",
      );
    }
    return this.#buffers[this.#current]!.bytes.slice(
      0,
      this.#actual[this.#current]!,
    );
  }

  /** Stops the stream: cancels queued URBs and returns the buffers. */
  async return(): Promise<IteratorResult<Uint8Array<ArrayBuffer>>> {
    await this.#stop();
    return { done: true, value: undefined };
  }

  /**
   * close(), release() and reset() stop the stream: a `next()` waiting now,
   * or the next one, throws a `cancelled` UsbError saying which.
   */
  cancel(reason: CancelReason = "cancelled"): void {
    if (!this.#ended) {
      this.#endError ??= this.#cancelled(cancelledBecause(reason));
    }
    void this.#stop();
    // Wake a next() that is waiting for its chunk: it reports #endError.
    this.#waiter?.();
  }

  #stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#ended = true;
      this.#unlisten?.();
      const done = new Promise<void>((resolve) => {
        const check = () => {
          if (this.#state.includes(1)) return;
          this.#stopWaiter = undefined;
          resolve();
        };
        this.#stopWaiter = check;
        check();
      });
      for (let i = 0; i < this.#buffers.length; i++) {
        if (this.#state[i] === 1) this.#engine.discard(this.#slots[i]!);
      }
      await done;
      this.#engine.untrack(this);
      for (const b of this.#buffers) if (!b.released) b.release();
    })();
    this.settled = this.#stopping;
    return this.#stopping;
  }

  /** `for await` support. */
  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * A ReadableStream (byte stream) of an IN endpoint. Chunks are copies, since
 * a ReadableStream hands ownership of each chunk to its reader.
 */
export function readableOf(
  open: () => InStream,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  let it: InStream | undefined;
  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      it ??= open();
      const r = await it.next();
      if (r.done) controller.close();
      else controller.enqueue(r.value.slice());
    },
    async cancel() {
      await it?.return();
    },
  });
}

/** Options of `Endpoint.openWritable`. */
export interface WritableOptions {
  /**
   * Writes kept in flight: an integer from 1 to the device's URB slots
   * (`maxUrbs` of `open`, default 1024). Default 16.
   */
  inFlight?: number;
}

/**
 * Checks {@linkcode WritableOptions} and returns the number of writes in
 * flight.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkWritableOptions } from "./stream.ts";
 * assert.equal(checkWritableOptions("openWritable", { inFlight: 8 }, 1024), 8);
 * assert.throws(() => checkWritableOptions("openWritable", { inFlight: NaN }, 1024), /options\.inFlight/);
 * ```
 */
export function checkWritableOptions(
  method: string,
  value: unknown,
  maxInFlight: number,
): number {
  const o = checkOptions(`${method}: options`, value, ["inFlight"]);
  return o.inFlight === undefined ? 16 : checkInteger(
    `${method}: options.inFlight`,
    o.inFlight,
    1,
    maxInFlight,
  );
}

/**
 * A WritableStream of an OUT endpoint with up to `inFlight` transfers queued.
 * Each chunk written is one transfer.
 */
export function writableOf(
  send: (chunk: Uint8Array) => Promise<OutResult>,
  options: WritableOptions = {},
): WritableStream<Uint8Array> {
  const max = options.inFlight ?? 16;
  const pending: Promise<OutResult>[] = [];
  const settle = async (p: Promise<OutResult> | undefined) => {
    const r = await p;
    if (r && r.status !== "ok") {
      throw new UsbError("stall", "the OUT endpoint stalled", {
        hint: "clearHalt() it",
      });
    }
  };
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      pending.push(send(chunk));
      while (pending.length >= max) await settle(pending.shift());
    },
    async close() {
      while (pending.length > 0) await settle(pending.shift());
    },
    async abort() {
      await Promise.allSettled(pending);
    },
  });
}
