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
  isDisconnectStatus,
  type OutResult,
  type UrbEngine,
  type UrbOwner,
  UrbType,
} from "./transfer.ts";

/** Options of `Endpoint.stream`. */
export interface StreamOptions {
  /** Bytes per transfer. Default 64 KiB. */
  transferSize?: number;
  /** Transfers kept in flight. Default 16. */
  inFlight?: number;
  /** Stops the stream; the iterator then throws a `cancelled` UsbError. */
  signal?: AbortSignal;
  /** `false` forces ordinary memory instead of usbfs-mapped buffers. */
  zeroCopy?: boolean;
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
  #waiter: (() => void) | undefined;
  #ended = false;
  #stopping: Promise<void> | undefined;
  #onAbort = () => {
    this.#waiter?.();
  };
  /** Bytes delivered so far. */
  bytes = 0;
  /** Interface number, for release(). */
  readonly tag: number;
  /** Settles when the stream is over. */
  settled: Promise<unknown> = Promise.resolve();

  /** Made by `Endpoint.stream`. */
  constructor(
    engine: UrbEngine,
    pool: BufferPool,
    ep: StreamEndpoint,
    tag: number,
    options: StreamOptions,
  ) {
    this.#engine = engine;
    this.#ep = ep;
    this.tag = tag;
    this.#size = options.transferSize ?? 65536;
    const n = options.inFlight ?? 16;
    if (!Number.isInteger(n) || n < 1) {
      throw new UsbError(
        "invalid-argument",
        `inFlight must be a positive integer, got ${n}`,
      );
    }
    if (!Number.isInteger(this.#size) || this.#size < 1) {
      throw new UsbError(
        "invalid-argument",
        `transferSize must be a positive integer, got ${this.#size}`,
      );
    }
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
    this.#signal?.addEventListener("abort", this.#onAbort);
    engine.track(this);
    for (let i = 0; i < n; i++) this.#submit(i);
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
  }

  /** The next chunk, in submission order. */
  async next(): Promise<IteratorResult<Uint8Array<ArrayBuffer>>> {
    if (this.#ended) return { done: true, value: undefined };
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
      if (this.#signal?.aborted) {
        await this.#stop();
        throw new UsbError(
          "cancelled",
          `stream on endpoint 0x${
            this.#ep.address.toString(16)
          } was cancelled after ${this.bytes} bytes`,
        );
      }
      await new Promise<void>((r) => (this.#waiter = r));
      this.#waiter = undefined;
    }
    this.#next = (i + 1) % this.#buffers.length;
    this.#state[i] = 0;
    const status = this.#status[i]!;
    if (status !== 0 && status !== -Errno.EREMOTEIO) {
      await this.#stop();
      if (this.#engine.gone || isDisconnectStatus(status)) {
        throw this.#engine.disconnectedError("stream");
      }
      if (status === -Errno.ENOENT || status === -Errno.ECONNRESET) {
        throw new UsbError("cancelled", "stream was cancelled");
      }
      const code = status === -Errno.EPIPE
        ? "stall"
        : status === -Errno.EOVERFLOW
        ? "babble"
        : "io";
      throw new UsbError(
        code,
        `stream on endpoint 0x${this.#ep.address.toString(16)} failed with ${
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

  /** close()/release() of the device or interface stop the stream. */
  cancel(): void {
    void this.#stop();
  }

  #stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#ended = true;
      this.#signal?.removeEventListener("abort", this.#onAbort);
      const done = new Promise<void>((resolve) => {
        const check = () => {
          if (!this.#state.includes(1)) return resolve();
          this.#waiter = check;
        };
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
  /** Writes kept in flight. Default 16. */
  inFlight?: number;
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
