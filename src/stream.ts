/**
 * Streaming with N transfers always in flight, fed by the helper: a
 * zero-copy async iterator for bulk and interrupt IN, the stream core that
 * the IN, isochronous IN and OUT streams share, and Web Streams on top.
 *
 * A stream is a helper-side stream (helper/src/stream.rs): the helper's
 * reaper resubmits its URBs itself from a pool of buffers (`inFlight` queued
 * plus spares), so the kernel's queue stays full however late JavaScript
 * is. JavaScript hands a buffer back by writing its index to a queue in
 * shared memory, and receives completed chunks in batches through the
 * completion ring. Each chunk is a fresh view of one buffer, valid until the
 * next iteration: then the view is detached and the buffer goes back to the
 * helper. Nothing else is allocated per chunk.
 *
 * @module
 */

import type { CaptureTap } from "./capture/tap.ts";
import { completions, type StreamSink } from "./completion.ts";
import {
  type Cancellable,
  type CancelReason,
  type UrbEngine,
  UrbType,
} from "./engine.ts";
import { UsbError } from "./errors.ts";
import {
  cancelledBecause,
  listenForAbort,
  urbError,
  urbOutcome,
} from "./urb.ts";
import { HelperStream, StreamCtl, type StreamSpec } from "./usbfs.ts";
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
 * Spare buffers beyond `inFlight`: as many again, within 8 MiB for the
 * whole pool (usbfs_memory_mb is 16 MiB for the whole system by default),
 * and at least 2 (the chunk the user holds, and one more).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { streamSpares } from "./stream.ts";
 * assert.equal(streamSpares(16, 65536), 16);
 * assert.equal(streamSpares(16, 512 * 1024), 2);
 * ```
 */
export function streamSpares(inFlight: number, size: number): number {
  const budget = Math.floor((8 * 1024 * 1024) / Math.max(1, size)) - inFlight;
  return Math.max(2, Math.min(inFlight, budget));
}

/** What {@linkcode StreamCore} is made with. */
export interface StreamCoreOptions {
  /** Names the stream in messages: "stream on endpoint 0x81". */
  readonly what: string;
  /** Interface number, for release(). */
  readonly tag: number;
  /** Stops the stream when aborted. */
  readonly signal: AbortSignal | undefined;
  /** What the helper streams. */
  readonly spec: StreamSpec;
  /** "bytes" or "packets", for the cancellation message. */
  readonly unit: string;
}

/**
 * The stream core the IN, isochronous IN and OUT streams share: the helper
 * stream, the FIFO of completed buffers, handing buffers back, the one view
 * per buffer JavaScript lends out, status classification (src/urb.ts), the
 * end of the stream (signal, cancel by close/release/reset, errors) and the
 * stop that discards, waits for every URB to be reaped, and only then
 * frees the memory.
 *
 * @example
 * ```ts ignore
 * // Ignored: StreamCore is internal (an engine and a spec from this package);
 * // InStream's and IsoInStream's examples run it.
 * import { StreamCore } from "./stream.ts";
 * declare const engine: import("./engine.ts").UrbEngine, spec: import("./usbfs.ts").StreamSpec;
 * const core = new StreamCore(engine, { what: "stream on endpoint 0x81", tag: 0, signal: undefined, spec, unit: "bytes" });
 * ```
 */
export class StreamCore implements Cancellable, StreamSink {
  readonly #engine: UrbEngine;
  readonly hs: HelperStream;
  readonly what: string;
  readonly tag: number;
  readonly #signal: AbortSignal | undefined;
  readonly #unit: string;
  readonly #n: number;
  /**
   * {@linkcode giveBack} submits from JavaScript only while the kernel holds
   * fewer URBs than this; otherwise the reaper resubmits the buffer on the
   * round of the next completion, on the thread that is awake anyway. Bulk
   * and interrupt: 1 (only an empty queue, which no completion would
   * restart). Iso: `inFlight`, so the queue never thins (the iso-gap rule).
   */
  readonly #refillBelow: number;
  readonly #ctl: Int32Array<ArrayBuffer>;
  /** Completed buffers, in completion order: a ring of `#n`. */
  readonly #fifo: Int32Array;
  readonly #fifoStatus: Int32Array;
  readonly #fifoActual: Int32Array;
  #fifoHead = 0;
  #fifoLen = 0;
  /** The view lent out per buffer, detached when the buffer goes back. */
  readonly #views: (Uint8Array<ArrayBuffer> | undefined)[];
  #retHead: number;
  #waiter: (() => void) | undefined;
  #endWaiter: (() => void) | undefined;
  #ended = false;
  #drained = false;
  #endError: UsbError | undefined;
  #stopping: Promise<void> | undefined;
  #unlisten: (() => void) | undefined;
  #wake = () => this.#waiter?.();
  /** Capture (src/capture/tap.ts): the device's tap when the stream started. */
  readonly #tap: CaptureTap | undefined;
  readonly #spec: StreamSpec;
  /** Status and length of the buffer {@linkcode shift} returned last. */
  status = 0;
  /** See {@linkcode status}. */
  actual = 0;
  /** Units delivered, for messages (the owner adds to it). */
  done = 0;
  /** Settles (never rejects) when the stream is over. */
  settled: Promise<unknown> = Promise.resolve();

  /**
   * Creates the helper stream; {@linkcode start} submits. Throws, with
   * nothing left allocated, on bad state or memory.
   */
  constructor(engine: UrbEngine, options: StreamCoreOptions) {
    this.#engine = engine;
    this.what = options.what;
    this.tag = options.tag;
    this.#signal = options.signal;
    this.#unit = options.unit;
    this.#n = options.spec.buffers;
    this.#refillBelow = options.spec.isoLengths.length > 0
      ? options.spec.inFlight
      : 1;
    this.#spec = options.spec;
    this.#tap = engine.capture;
    if (this.#signal) {
      this.#unlisten = listenForAbort(this.#signal, this.#wake, this.what);
    }
    try {
      this.hs = HelperStream.open(engine.usbfs, options.spec, this.what);
    } catch (e) {
      this.#unlisten?.();
      throw e;
    }
    this.#ctl = this.hs.ctl;
    this.#retHead = this.#ctl[StreamCtl.retHead]!;
    this.#fifo = new Int32Array(this.#n);
    this.#fifoStatus = new Int32Array(this.#n);
    this.#fifoActual = new Int32Array(this.#n);
    this.#views = new Array(this.#n).fill(undefined);
  }

  /**
   * Starts the stream: registers for its records and submits the first
   * URBs (IN streams start with every buffer handed back). A first submit
   * that fails frees everything and throws.
   */
  start(): void {
    completions().streamStarted(this.hs.id, this);
    const r = this.hs.refill();
    if ((r < 0 || this.#signal?.aborted) && this.queued === 0) {
      // Nothing reached the kernel: free everything and report now.
      this.hs.stop();
      this.#free();
      this.#unlisten?.();
      if (this.#signal?.aborted) throw this.#cancelled("was cancelled");
      throw this.#submitError(r);
    }
    this.#engine.track(this);
    if (r < 0) {
      // Some URBs are in flight: they are discarded, and the first call
      // reports the error.
      this.#endError = this.#submitError(r);
      void this.stop();
    }
  }

  /** True when the buffers are usbfs-mapped (zero-copy). */
  get zeroCopy(): boolean {
    return this.hs.mapped;
  }

  /** Buffers in the pool. */
  get buffers(): number {
    return this.#n;
  }

  /** URBs the kernel holds now (the helper's shared counter; 0 once freed). */
  get queued(): number {
    return this.#ctl.byteLength === 0
      ? 0
      : Atomics.load(this.#ctl, StreamCtl.queued);
  }

  /** URBs submitted in all, by the helper and by refills. */
  get submitted(): number {
    return this.#ctl.byteLength === 0
      ? this.#submitted
      : Atomics.load(this.#ctl, StreamCtl.submits);
  }

  /** {@linkcode submitted} when the stream was freed. */
  #submitted = 0;

  /** StreamSink: buffer `index` came back from the kernel. */
  chunk(index: number, status: number, actual: number): void {
    if (this.#tap !== undefined) this.#capture(index, status, actual);
    if (this.#ended) return;
    const at = (this.#fifoHead + this.#fifoLen) % this.#n;
    this.#fifo[at] = index;
    this.#fifoStatus[at] = status;
    this.#fifoActual[at] = actual;
    this.#fifoLen++;
    this.#waiter?.();
  }

  /**
   * Records buffer `index`'s URB (the helper submitted it, JavaScript sees
   * only its completion: see src/capture/tap.ts). OUT URBs asked for the
   * length JavaScript handed back with the buffer.
   */
  #capture(index: number, status: number, actual: number): void {
    const spec = this.#spec;
    const out = (spec.endpoint & 0x80) === 0 && spec.isoLengths.length === 0;
    this.#tap!.streamUrb(
      this.hs,
      index,
      spec.type,
      spec.endpoint,
      spec.flags,
      out
        ? Atomics.load(this.#ctl, StreamCtl.header + this.#n + index)
        : spec.size,
      spec.isoLengths.length,
      status,
      actual,
    );
  }

  /** StreamSink: a resubmit failed; the stream ends with that error. */
  halted(status: number): void {
    this.#endError ??= this.#submitError(status);
    this.#waiter?.();
  }

  /** StreamSink: stopped, and the kernel holds nothing more. */
  ended(): void {
    this.#drained = true;
    this.#endWaiter?.();
  }

  /** Completed buffers not yet taken. */
  get ready(): number {
    return this.#fifoLen;
  }

  /**
   * True when the stream cannot deliver: stopped, failed, or its signal
   * aborted. Then {@linkcode finish} says how it ended.
   */
  get over(): boolean {
    return this.#ended || this.#endError !== undefined ||
      this.#signal?.aborted === true;
  }

  /** Takes the oldest completed buffer; its `status` and `actual` are set. */
  shift(): number {
    const h = this.#fifoHead;
    const i = this.#fifo[h]!;
    this.status = this.#fifoStatus[h]!;
    this.actual = this.#fifoActual[h]!;
    this.#fifoHead = (h + 1) % this.#n;
    this.#fifoLen--;
    return i;
  }

  /**
   * Resolves at the next record, end or abort. Throws when nothing can
   * come: the device is gone and the kernel holds nothing of the stream.
   */
  wait(): Promise<void> {
    if (this.queued === 0 && this.#engine.gone) {
      this.#endError ??= this.#engine.disconnectedError(this.what);
      return Promise.resolve();
    }
    return new Promise<void>((r) => {
      this.#waiter = () => {
        this.#waiter = undefined;
        r();
      };
    });
  }

  /**
   * The error for the status of the buffer {@linkcode shift} returned, or
   * undefined when it is data (`ok`, or an iso URB whose packets say which
   * failed).
   */
  statusError(): UsbError | undefined {
    const outcome = urbOutcome(this.status);
    if (outcome === "ok") return undefined;
    if (this.#engine.gone || outcome === "disconnected") {
      return this.#engine.disconnectedError(this.what);
    }
    if (outcome === "cancelled") return this.#cancelled("was cancelled");
    return urbError(this.what, this.status, this.#engine.ids);
  }

  /** A fresh view of buffer `i`, lent out until {@linkcode giveBack}. */
  lend(i: number, length: number): Uint8Array<ArrayBuffer> {
    const v = this.hs.view(i, length);
    this.#views[i] = v;
    return v;
  }

  /** The view of buffer `i` lent out now, if any. */
  lent(i: number): Uint8Array<ArrayBuffer> | undefined {
    return this.#views[i];
  }

  /** The buffer the last {@linkcode nextIn} lent to the caller, or -1. */
  current = -1;

  /**
   * One step of an IN iteration, written once for InStream and IsoInStream:
   * hands back the buffer the previous step lent (its views die here),
   * waits for the next completed one and returns its index (also in
   * {@linkcode current}), or -1 when the stream is over. Throws why it
   * ended otherwise (a cancel, a URB error). When a completed buffer is
   * already waiting, the index comes back as a number, without a promise;
   * otherwise as a promise (rejected with the error).
   */
  nextIn(): number | Promise<number> {
    if (this.current >= 0) {
      const prev = this.current;
      this.current = -1;
      if (!this.over) {
        try {
          this.giveBack(prev);
        } catch (e) {
          return this.fail(e);
        }
      }
    }
    // The common case, a completed buffer already waiting: no promise.
    if (this.ready === 0 || this.over) return this.#waitNext();
    const i = this.shift();
    const error = this.statusError();
    if (error !== undefined) return this.fail(error);
    this.current = i;
    return i;
  }

  /** {@linkcode nextIn} when it must wait, or the stream is over. */
  async #waitNext(): Promise<number> {
    while (this.ready === 0) {
      if (this.over) return await this.#endOfStream();
      await this.wait();
    }
    // A URB that completed while the stream was being stopped is not data.
    if (this.over) return await this.#endOfStream();
    const i = this.shift();
    const error = this.statusError();
    if (error !== undefined) return await this.fail(error);
    this.current = i;
    return i;
  }

  async #endOfStream(): Promise<number> {
    await this.finish();
    return -1;
  }

  /**
   * Hands buffer `i` back to the helper (for OUT, to be sent with `length`
   * bytes): its view is detached first, so the kernel owns the memory
   * alone. When the kernel's queue is below the refill mark (see
   * `#refillBelow`), one sync call refills; otherwise the reaper submits it
   * at the next completion. Throws (and ends the stream) when that submit
   * fails.
   */
  giveBack(i: number, length = 0): void {
    const v = this.#views[i];
    if (v !== undefined) {
      v.buffer.transfer(0);
      this.#views[i] = undefined;
    }
    const ctl = this.#ctl;
    const h = this.#retHead;
    Atomics.store(ctl, StreamCtl.header + this.#n + i, length);
    Atomics.store(ctl, StreamCtl.header + (h >>> 0) % this.#n, i);
    this.#retHead = (h + 1) | 0;
    Atomics.store(ctl, StreamCtl.retHead, this.#retHead);
    if (Atomics.load(ctl, StreamCtl.queued) < this.#refillBelow) {
      const r = this.hs.refill();
      if (r < 0) {
        this.#endError ??= this.#submitError(r);
        throw this.#endError;
      }
    }
  }

  #submitError(r: number): UsbError {
    if (this.#engine.gone || r === -19) {
      return this.#engine.disconnectedError(this.what);
    }
    return this.#engine.usbfs.error(r, `${this.what}: submitting`);
  }

  #cancelled(why: string): UsbError {
    return new UsbError(
      "cancelled",
      `${this.what} ${why} after ${this.done} ${this.#unit}`,
      this.#signal?.aborted ? { hint: "its AbortSignal was aborted" } : {},
    );
  }

  /** Ends the stream with `e` (kept for every later call), stops it, throws. */
  async fail(e: unknown): Promise<never> {
    this.#endError ??= e instanceof UsbError
      ? e
      : new UsbError("io", `${this.what}: ${String(e)}`, { cause: e });
    await this.stop();
    throw this.#endError;
  }

  /**
   * The end of an iteration: stops the stream, then throws why it ended,
   * unless the loop itself stopped it (`break`, `return()`).
   */
  async finish(): Promise<{ done: true; value: undefined }> {
    if (
      this.#endError === undefined && !this.#ended && this.#signal?.aborted
    ) {
      this.#endError = this.#cancelled("was cancelled");
    }
    await this.stop();
    if (this.#endError !== undefined) throw this.#endError;
    return { done: true, value: undefined };
  }

  /**
   * Cancellable: close(), release() and reset() stop the stream; a waiting
   * or later call throws a `cancelled` UsbError saying which.
   */
  cancel(reason: CancelReason = "cancelled"): void {
    if (!this.#ended) {
      this.#endError ??= this.#cancelled(cancelledBecause(reason));
    }
    void this.stop();
    this.#waiter?.();
  }

  /**
   * Stops: the helper discards every URB; once the last is reaped the
   * views are detached and the memory freed. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#ended = true;
      this.#unlisten?.();
      if (this.hs.stop() > 0 && !this.#drained) {
        await new Promise<void>((r) => (this.#endWaiter = r));
        this.#endWaiter = undefined;
      }
      this.#engine.untrack(this);
      this.#free();
    })();
    this.settled = this.#stopping;
    this.#waiter?.();
    return this.#stopping;
  }

  #free(): void {
    this.#submitted = Atomics.load(this.#ctl, StreamCtl.submits);
    for (let i = 0; i < this.#views.length; i++) {
      this.#views[i]?.buffer.transfer(0);
      this.#views[i] = undefined;
    }
    completions().streamEnded(this.hs.id);
    this.hs.free();
  }
}

/**
 * A running IN stream: an async iterator of chunks, fed by the helper.
 *
 * The stream ends with an error when it is stopped by anything other than
 * the loop itself: an aborted signal, `close()` of the device, `release()`
 * of the interface or `reset()` all make the next (or the pending) `next()`
 * throw a `cancelled` UsbError that says which. A stall is a `stall`
 * UsbError, a disconnection `disconnected` (src/urb.ts `urbError`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * // The bench's SourceSink gadget: bulk IN 0x81 sends 0, 1, 2, ... (usbtest
 * // is bound to it, hence the detach).
 * await using dev = await open("0525:a4a0");
 * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
 * const ep = iface.endpoint(0x81);
 * const stream = ep.stream({ transferSize: 65536, inFlight: 16 });
 * let total = 0;
 * for await (const chunk of stream) {
 *   total += chunk.length; // chunk is valid until the next iteration
 *   if (total >= 1 << 20) break; // break cancels the URBs still queued
 * }
 * assert.ok(total >= 1 << 20);
 * ```
 */
export class InStream
  implements AsyncIterableIterator<Uint8Array<ArrayBuffer>> {
  readonly #core: StreamCore;
  /** Reused: a result is read before the next iteration. */
  readonly #result: { done: false; value: Uint8Array<ArrayBuffer> } = {
    done: false,
    value: new Uint8Array(0),
  };
  /** Bytes delivered so far. */
  bytes = 0;

  /** Made by `Endpoint.stream`, with options from {@linkcode checkStreamOptions}. */
  constructor(
    engine: UrbEngine,
    ep: StreamEndpoint,
    tag: number,
    options: CheckedStreamOptions,
  ) {
    const size = options.transferSize;
    this.#core = new StreamCore(engine, {
      what: `stream on endpoint ${hex(ep.address)}`,
      tag,
      signal: options.signal,
      unit: "bytes",
      spec: {
        type: ep.type === "interrupt" ? UrbType.interrupt : UrbType.bulk,
        endpoint: ep.address,
        flags: 0,
        size,
        inFlight: options.inFlight,
        buffers: options.inFlight + streamSpares(options.inFlight, size),
        isoLengths: [],
        zeroCopy: options.zeroCopy !== false,
      },
    });
    this.#core.start();
  }

  /** True when the buffers are usbfs-mapped (zero-copy). */
  get zeroCopy(): boolean {
    return this.#core.zeroCopy;
  }

  /** URBs the kernel holds now: the helper keeps it at `inFlight` while it has buffers. */
  get queued(): number {
    return this.#core.queued;
  }

  /** Buffers in the pool: `inFlight` plus the spares. */
  get buffers(): number {
    return this.#core.buffers;
  }

  /** URBs submitted in all, by the helper's reaper and by refills. */
  get submitted(): number {
    return this.#core.submitted;
  }

  /** Settles when the stream is over (for close()). */
  get settled(): Promise<unknown> {
    return this.#core.settled;
  }

  /**
   * The next chunk, in order. Throws a `cancelled` UsbError when the signal
   * was aborted, the device closed, the interface released or the device
   * reset; and again on every later call.
   */
  async next(): Promise<IteratorResult<Uint8Array<ArrayBuffer>>> {
    const core = this.#core;
    const step = core.nextIn();
    const i = typeof step === "number" ? step : await step;
    if (i < 0) return { done: true, value: undefined };
    const n = core.actual;
    this.bytes += n;
    core.done = this.bytes;
    this.#result.value = core.lend(i, n);
    return this.#result;
  }

  /**
   * A copy of the current chunk that stays valid after the next iteration.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * // The bench's SourceSink gadget: bulk IN 0x81 sends 0, 1, 2, ... (usbtest
   * // is bound to it, hence the detach).
   * await using dev = await open("0525:a4a0");
   * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
   * const ep = iface.endpoint(0x81);
   * const stream = ep.stream({ transferSize: 4096, inFlight: 4 });
   * const saved: Uint8Array[] = [];
   * for await (const chunk of stream) {
   *   saved.push(stream.keep()); // still valid after this iteration
   *   if (saved.length === 3) break;
   * }
   * assert.deepEqual([...saved[2]!.subarray(0, 3)], [0, 1, 2]);
   * ```
   */
  keep(): Uint8Array<ArrayBuffer> {
    const c = this.#core.current;
    const v = c < 0 ? undefined : this.#core.lent(c);
    if (v === undefined) {
      throw new UsbError(
        "invalid-argument",
        "keep(): there is no current chunk",
      );
    }
    return v.slice();
  }

  /** Stops the stream: cancels queued URBs and frees the buffers. */
  async return(): Promise<IteratorResult<Uint8Array<ArrayBuffer>>> {
    await this.#core.stop();
    return { done: true, value: undefined };
  }

  /**
   * close(), release() and reset() stop the stream: a `next()` waiting now,
   * or the next one, throws a `cancelled` UsbError saying which.
   */
  cancel(reason: CancelReason = "cancelled"): void {
    this.#core.cancel(reason);
  }

  /** `await using` support: stops the stream. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#core.stop();
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
