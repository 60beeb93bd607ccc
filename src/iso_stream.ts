/**
 * Isochronous IN streaming with N URBs always in flight: a zero-copy async
 * iterator of per-URB results.
 *
 * The stream owns `inFlight` buffers (usbfs-mapped where possible), one URB
 * each, and keeps all of them queued. Each result it yields describes one
 * URB: per packet its status, its length and a view of exactly the bytes
 * received (the gap rule of src/isochronous.ts: the stale bytes after a
 * short packet are never in a view). The views, and the result object, are
 * valid until the next iteration: then the views are detached and the
 * buffer goes back to the kernel. The URB lifecycle is `IsoUrbs`, the one
 * `isochronousTransferIn` uses; the result and packet objects are reused, so
 * the steady path allocates only the packets' views.
 *
 * @module
 */

import type { BufferPool, UsbBuffer } from "./buffer.ts";
import { Errno, UsbError } from "./errors.ts";
import {
  checkIsoPacketLengths,
  concatIsoIn,
  type IsoInPacket,
  isoUrbError,
  isoUrbFailed,
  IsoUrbs,
  MAX_ISO_PACKET,
  viewIsoInPackets,
} from "./isochronous.ts";
import {
  type Cancellable,
  cancelledBecause,
  type CancelReason,
  isDisconnectStatus,
  listenForAbort,
  type UrbEngine,
} from "./transfer.ts";
import {
  checkBoolean,
  checkInteger,
  checkOptions,
  checkSignal,
  hex,
  invalidArgument,
} from "./validate.ts";

/**
 * Options of `Endpoint.isochronousStream`. Checked before anything is
 * allocated: a bad value is `invalid-argument`.
 *
 * @example 32 packets of 192 bytes per URB, 8 URBs queued
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IsoStreamOptions } from "./iso_stream.ts";
 * const o: IsoStreamOptions = { packets: 32, packetLength: 192, inFlight: 8 };
 * assert.equal(o.inFlight, 8);
 * ```
 */
export interface IsoStreamOptions {
  /**
   * The packets of each URB: a count from 1 to 128 (the kernel's limit per
   * URB), each `packetLength` bytes, or an array of 1 to 128 packet lengths
   * (integers from 0 to 98304). Default 32.
   */
  packets?: number | readonly number[];
  /**
   * Bytes per packet when `packets` is a count: an integer from 0 to 98304.
   * Default: what the endpoint moves per service interval
   * (`maxPacketSize` × transactions per microframe, × burst × mult at
   * SuperSpeed). Must be absent when `packets` is an array.
   */
  packetLength?: number;
  /**
   * URBs kept in flight: an integer from 1 to the device's URB slots
   * (`maxUrbs` of `open`, default 1024). Default 8.
   */
  inFlight?: number;
  /** Stops the stream; the iterator then throws a `cancelled` UsbError. An `AbortSignal`. */
  signal?: AbortSignal;
  /** `false` forces ordinary memory instead of usbfs-mapped buffers. */
  zeroCopy?: boolean;
  /** `true` adds `data` to each result: a copy of the received bytes, packets back to back. Default false. */
  concatenate?: boolean;
}

/**
 * {@linkcode IsoStreamOptions}, checked, with the defaults filled in: what
 * {@linkcode checkIsoStreamOptions} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CheckedIsoStreamOptions } from "./iso_stream.ts";
 * const o: CheckedIsoStreamOptions = {
 *   packetLengths: [1024, 1024], inFlight: 8, signal: undefined, zeroCopy: undefined, concatenate: false,
 * };
 * assert.equal(o.packetLengths.length, 2);
 * ```
 */
export interface CheckedIsoStreamOptions {
  /** The slot length of every packet of a URB. */
  readonly packetLengths: readonly number[];
  /** URBs in flight. */
  readonly inFlight: number;
  /** A real AbortSignal, or undefined. */
  readonly signal: AbortSignal | undefined;
  /** `false` forces ordinary memory. */
  readonly zeroCopy: boolean | undefined;
  /** Whether results carry a concatenated copy. */
  readonly concatenate: boolean;
}

/**
 * What {@linkcode checkIsoStreamOptions} needs to know about the endpoint
 * and device.
 *
 * @example A high-speed endpoint of 1024 bytes, 3 transactions per microframe
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IsoStreamLimits } from "./iso_stream.ts";
 * const limits: IsoStreamLimits = { maxInFlight: 1024, maxPackets: 128, packetLength: 3 * 1024 };
 * assert.equal(limits.packetLength, 3072);
 * ```
 */
export interface IsoStreamLimits {
  /** The most URBs in flight (the device's URB slots). */
  readonly maxInFlight: number;
  /** The most packets per URB (128). */
  readonly maxPackets: number;
  /** The default `packetLength`. */
  readonly packetLength: number;
}

/**
 * Checks isochronous stream options (see {@linkcode IsoStreamOptions}).
 *
 * @param method the method, for messages: `"isochronousStream"`
 * @param value the options argument
 * @param limits the endpoint's and device's limits and defaults
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkIsoStreamOptions } from "./iso_stream.ts";
 * const limits = { maxInFlight: 1024, maxPackets: 128, packetLength: 1024 };
 * assert.deepEqual(checkIsoStreamOptions("isochronousStream", { packets: 2 }, limits), {
 *   packetLengths: [1024, 1024], inFlight: 8, signal: undefined, zeroCopy: undefined, concatenate: false,
 * });
 * assert.deepEqual(checkIsoStreamOptions("isochronousStream", { packets: [0, 9] }, limits).packetLengths, [0, 9]);
 * assert.throws(
 *   () => checkIsoStreamOptions("isochronousStream", { packets: 129 }, limits),
 *   /isochronousStream: options\.packets must be a count from 1 to 128 or an array of packet lengths, got 129/,
 * );
 * ```
 */
export function checkIsoStreamOptions(
  method: string,
  value: unknown,
  limits: IsoStreamLimits,
): CheckedIsoStreamOptions {
  const o = checkOptions(`${method}: options`, value, [
    "packets",
    "packetLength",
    "inFlight",
    "signal",
    "zeroCopy",
    "concatenate",
  ]);
  const name = `${method}: options.packets`;
  let packetLengths: number[];
  if (Array.isArray(o.packets)) {
    packetLengths = checkIsoPacketLengths(name, o.packets, limits.maxPackets);
    if (o.packetLength !== undefined) {
      throw invalidArgument(
        `${method}: options.packetLength`,
        o.packetLength,
        "undefined when options.packets is an array",
        "the array gives every packet's length",
      );
    }
  } else {
    let count = 32;
    if (o.packets !== undefined) {
      if (
        typeof o.packets !== "number" || !Number.isInteger(o.packets) ||
        Object.is(o.packets, -0) || o.packets < 1 ||
        o.packets > limits.maxPackets
      ) {
        throw invalidArgument(
          name,
          o.packets,
          `a count from 1 to ${limits.maxPackets} or an array of packet lengths`,
          `the kernel takes at most ${limits.maxPackets} packets per URB; queue more URBs with inFlight`,
        );
      }
      count = o.packets;
    }
    const length = o.packetLength === undefined
      ? limits.packetLength
      : checkInteger(
        `${method}: options.packetLength`,
        o.packetLength,
        0,
        MAX_ISO_PACKET,
        `the kernel's limit for one iso packet is ${MAX_ISO_PACKET} bytes`,
      );
    packetLengths = new Array<number>(count).fill(length);
  }
  return {
    packetLengths,
    inFlight: o.inFlight === undefined ? 8 : checkInteger(
      `${method}: options.inFlight`,
      o.inFlight,
      1,
      limits.maxInFlight,
      "the device has that many URB slots; open it with a larger { maxUrbs } for more",
    ),
    signal: checkSignal(`${method}: options.signal`, o.signal),
    zeroCopy: checkBoolean(`${method}: options.zeroCopy`, o.zeroCopy),
    concatenate:
      checkBoolean(`${method}: options.concatenate`, o.concatenate) ??
        false,
  };
}

/**
 * One URB of an isochronous stream. It and its packets' views are valid
 * until the next iteration (the object is reused for a later URB).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IsoStreamResult } from "./iso_stream.ts";
 * const r: IsoStreamResult = {
 *   packets: [{ status: "ok", length: 2, data: new Uint8Array([1, 2]), errno: 0 }],
 *   bytes: 2, startFrame: 0, errorCount: 0,
 * };
 * assert.equal(r.packets[0]!.data.length, r.packets[0]!.length);
 * ```
 */
export interface IsoStreamResult {
  /**
   * Per packet: its status, its length (`actual_length`) and `data`, a
   * zero-copy view of exactly the bytes received.
   */
  packets: IsoInPacket[];
  /** Bytes received in this URB: the packets' lengths added up. */
  bytes: number;
  /** The URB's `start_frame` as the host controller reported it. */
  startFrame: number;
  /** Packets that failed (`error_count`): their status is not `"ok"`. */
  errorCount: number;
  /**
   * With `concatenate: true`: a copy of the received bytes, packets back to
   * back. It stays valid after the iteration.
   */
  data?: Uint8Array<ArrayBuffer>;
}

/**
 * What an iso stream needs from its endpoint (an `Endpoint` is one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IsoStreamEndpoint } from "./iso_stream.ts";
 * const ep: IsoStreamEndpoint = { address: 0x81 };
 * assert.equal(ep.address & 0x80, 0x80);
 * ```
 */
export interface IsoStreamEndpoint {
  /** Endpoint address. */
  readonly address: number;
}

/**
 * A running isochronous IN stream: an async iterator of per-URB results,
 * from `Endpoint.isochronousStream`.
 *
 * Breaking out of the loop cancels what is still queued. The stream ends
 * with an error when it is stopped by anything other than the loop itself:
 * an aborted signal, `close()` of the device, `release()` of the interface
 * or `reset()` make the next (or the pending) `next()` throw a `cancelled`
 * UsbError that says which.
 *
 * @example
 * ```ts ignore
 * // Needs a device: tests/device/iso_test.ts runs this against one.
 * const stream = ep.isochronousStream({ packets: 32, inFlight: 8 });
 * for await (const urb of stream) {
 *   for (const p of urb.packets) if (p.status === "ok") consume(p.data); // p.data: exactly the bytes received
 *   if (stream.packets >= 80_000) break; // break cancels the URBs still queued
 * }
 * ```
 */
export class IsoInStream
  implements AsyncIterableIterator<IsoStreamResult>, Cancellable {
  readonly #engine: UrbEngine;
  readonly #address: number;
  readonly #what: string;
  readonly #buffers: UsbBuffer[];
  readonly #urbs: IsoUrbs[];
  readonly #results: IsoStreamResult[];
  /** Per URB: 1 when it completed and was not yet delivered. */
  readonly #ready: Uint8Array;
  readonly #concatenate: boolean;
  readonly #signal: AbortSignal | undefined;
  #next = 0;
  #current = -1;
  /** Wakes a `next()` waiting for its URB. */
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
  /** Packets delivered so far. */
  packets = 0;
  /** Bytes delivered so far. */
  bytes = 0;
  /** Interface number, for release(). */
  readonly tag: number;
  /** Settles when the stream is over. */
  settled: Promise<unknown> = Promise.resolve();

  /** Made by `Endpoint.isochronousStream`, with options from {@linkcode checkIsoStreamOptions}. */
  constructor(
    engine: UrbEngine,
    pool: BufferPool,
    ep: IsoStreamEndpoint,
    tag: number,
    options: CheckedIsoStreamOptions,
  ) {
    this.#engine = engine;
    this.#address = ep.address;
    this.#what = `isochronous stream on endpoint ${hex(ep.address)}`;
    this.tag = tag;
    this.#concatenate = options.concatenate;
    this.#signal = options.signal;
    const n = options.inFlight;
    const lengths = options.packetLengths;
    const size = Math.max(1, lengths.reduce((a, b) => a + b, 0));
    this.#buffers = [];
    try {
      for (let i = 0; i < n; i++) {
        this.#buffers.push(
          pool.alloc(
            size,
            options.zeroCopy === false ? { zeroCopy: false } : {},
          ),
        );
      }
    } catch (e) {
      for (const b of this.#buffers) b.release();
      throw e;
    }
    this.#urbs = this.#buffers.map((b, i) =>
      new IsoUrbs(engine, b, lengths, () => this.#completed(i))
    );
    this.#results = this.#buffers.map(() => ({
      packets: [],
      bytes: 0,
      startFrame: 0,
      errorCount: 0,
    }));
    this.#ready = new Uint8Array(n);
    try {
      if (this.#signal) {
        this.#unlisten = listenForAbort(
          this.#signal,
          this.#onAbort,
          this.#what,
        );
      }
      this.#urbs[0]!.submit(this.#address, this.#what);
    } catch (e) {
      // Nothing is in flight: give everything back and report now.
      this.#unlisten?.();
      for (const b of this.#buffers) b.release();
      throw e;
    }
    engine.track(this);
    for (let i = 1; i < n; i++) {
      try {
        this.#urbs[i]!.submit(this.#address, this.#what);
      } catch (e) {
        // Some URBs are in flight: they are given back, and the first
        // next() reports the error.
        this.#endError = this.#asUsbError(e);
        void this.#stop();
        break;
      }
    }
  }

  /** True when the buffers are usbfs-mapped (zero-copy). */
  get zeroCopy(): boolean {
    return this.#buffers[0]?.zeroCopy ?? false;
  }

  /** IsoUrbs callback: URB `i` is back. */
  #completed(i: number): void {
    this.#ready[i] = 1;
    if (i === this.#next || this.#ended) this.#waiter?.();
    this.#stopWaiter?.();
  }

  #cancelled(why: string): UsbError {
    return new UsbError(
      "cancelled",
      `${this.#what} ${why} after ${this.packets} packets`,
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
  async #finished(): Promise<IteratorResult<IsoStreamResult>> {
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
   * The next URB's result, in submission order. Throws a `cancelled`
   * UsbError when the signal was aborted, the device closed, the interface
   * released or the device reset; `disconnected` when the device went away;
   * and again on every later call.
   */
  async next(): Promise<IteratorResult<IsoStreamResult>> {
    if (this.#over) return await this.#finished();
    if (this.#current >= 0) {
      // The previous result's views die here; its buffer goes back in flight.
      const prev = this.#current;
      this.#current = -1;
      try {
        this.#urbs[prev]!.submit(this.#address, this.#what);
      } catch (e) {
        return await this.#fail(e);
      }
    }
    const i = this.#next;
    while (this.#ready[i] !== 1) {
      if (this.#over) return await this.#finished();
      await new Promise<void>((r) => (this.#waiter = r));
      this.#waiter = undefined;
    }
    // A URB that completed while the stream was being stopped is not data.
    if (this.#over) return await this.#finished();
    this.#next = (i + 1) % this.#urbs.length;
    this.#ready[i] = 0;
    const failure = this.#failure(this.#urbs[i]!);
    if (failure !== undefined) return await this.#fail(failure);
    this.#current = i;
    return { done: false, value: this.#deliver(i) };
  }

  /** Ends the stream with `error`, which every later `next()` throws too. */
  async #fail(error: unknown): Promise<never> {
    this.#endError ??= this.#asUsbError(error);
    await this.#stop();
    throw this.#endError;
  }

  #asUsbError(e: unknown): UsbError {
    return e instanceof UsbError
      ? e
      : new UsbError("io", `${this.#what}: ${String(e)}`, { cause: e });
  }

  /** Why URB set `u` ended the stream, if it did (failed packets do not). */
  #failure(u: IsoUrbs): unknown {
    if (u.submitError !== undefined) return u.submitError;
    if (this.#engine.gone || isDisconnectStatus(u.status)) {
      return this.#engine.disconnectedError(this.#what);
    }
    if (u.status === -Errno.ENOENT || u.status === -Errno.ECONNRESET) {
      return this.#cancelled("was cancelled");
    }
    return isoUrbFailed(u.status)
      ? isoUrbError(this.#what, u.status)
      : undefined;
  }

  /** Fills URB `i`'s reused result object: the gap rule, then the counters. */
  #deliver(i: number): IsoStreamResult {
    const u = this.#urbs[i]!;
    const r = this.#results[i]!;
    const received = viewIsoInPackets(
      u.bytes,
      u.lengths,
      u.actual,
      u.packetStatus,
      r.packets,
    );
    r.bytes = received;
    r.startFrame = u.startFrame;
    r.errorCount = u.errorCount;
    if (this.#concatenate) r.data = concatIsoIn(r.packets, received);
    this.packets += u.lengths.length;
    this.bytes += received;
    return r;
  }

  /** Stops the stream: cancels queued URBs and returns the buffers. */
  async return(): Promise<IteratorResult<IsoStreamResult>> {
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
    // Wake a next() that is waiting for its URB: it reports #endError.
    this.#waiter?.();
  }

  #stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#ended = true;
      this.#unlisten?.();
      const done = new Promise<void>((resolve) => {
        const check = () => {
          if (this.#urbs.some((u) => u.inFlight)) return;
          this.#stopWaiter = undefined;
          resolve();
        };
        this.#stopWaiter = check;
        check();
      });
      for (const u of this.#urbs) if (u.inFlight) u.discard();
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
