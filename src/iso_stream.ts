/**
 * Isochronous IN streaming with N URBs always in flight, fed by the helper:
 * a zero-copy async iterator of per-URB results.
 *
 * The stream is a helper-side stream (src/stream.ts `StreamCore`): the
 * helper's reaper resubmits its URBs itself from a pool of buffers
 * (`inFlight` queued plus spares), one URB struct each. Each result it
 * yields describes one URB: per packet its status, its length and a view of
 * exactly the bytes received (the gap rule of src/isochronous.ts: the stale
 * bytes after a short packet are never in a view), read from that buffer's
 * own URB struct. The views, and the result object, are valid until the
 * next iteration: then the views are detached and the buffer goes back to
 * the helper. The result and packet objects are reused, so the steady path
 * allocates only the buffer's fresh view and the packets' views.
 *
 * @module
 */

import { type CancelReason, type UrbEngine, UrbType } from "./engine.ts";
import {
  checkIsoPacketLengths,
  concatIsoIn,
  type IsoInPacket,
  MAX_ISO_PACKET,
  viewIsoInPackets,
} from "./isochronous.ts";
import { StreamCore, streamSpares } from "./stream.ts";
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
 * UsbError that says which; a disconnection is `disconnected`, a URB that
 * failed as a whole an error from its status (src/urb.ts `urbError`).
 * Failed packets are not errors: each packet says how it went.
 *
 * @example
 * ```ts ignore
 * // Needs a device: tests/device/iso_test.ts runs this against one.
 * declare const ep: import("../mod.ts").Endpoint, consume: (data: Uint8Array) => void;
 * const stream = ep.isochronousStream({ packets: 32, inFlight: 8 });
 * for await (const urb of stream) {
 *   for (const p of urb.packets) if (p.status === "ok") consume(p.data); // p.data: exactly the bytes received
 *   if (stream.packets >= 80_000) break; // break cancels the URBs still queued
 * }
 * ```
 */
export class IsoInStream implements AsyncIterableIterator<IsoStreamResult> {
  readonly #core: StreamCore;
  readonly #engine: UrbEngine;
  readonly #lengths: readonly number[];
  readonly #size: number;
  readonly #results: IsoStreamResult[];
  readonly #actual: Int32Array;
  readonly #packetStatus: Int32Array;
  readonly #concatenate: boolean;
  /** Packets delivered so far. */
  packets = 0;
  /** Bytes delivered so far. */
  bytes = 0;

  /** Made by `Endpoint.isochronousStream`, with options from {@linkcode checkIsoStreamOptions}. */
  constructor(
    engine: UrbEngine,
    ep: IsoStreamEndpoint,
    tag: number,
    options: CheckedIsoStreamOptions,
  ) {
    this.#engine = engine;
    this.#lengths = [...options.packetLengths];
    this.#concatenate = options.concatenate;
    const size = Math.max(1, this.#lengths.reduce((a, b) => a + b, 0));
    this.#size = size;
    const n = options.inFlight + streamSpares(options.inFlight, size);
    this.#core = new StreamCore(engine, {
      what: `isochronous stream on endpoint ${hex(ep.address)}`,
      tag,
      signal: options.signal,
      unit: "packets",
      spec: {
        type: UrbType.iso,
        endpoint: ep.address,
        flags: engine.layout.flagIsoAsap,
        size,
        inFlight: options.inFlight,
        buffers: n,
        isoLengths: this.#lengths,
        zeroCopy: options.zeroCopy !== false,
      },
    });
    this.#results = [];
    for (let i = 0; i < n; i++) {
      this.#results.push({
        packets: [],
        bytes: 0,
        startFrame: 0,
        errorCount: 0,
      });
    }
    this.#actual = new Int32Array(this.#lengths.length);
    this.#packetStatus = new Int32Array(this.#lengths.length);
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

  /** Buffers in the pool: `inFlight` plus the spares. */
  get buffers(): number {
    return this.#core.buffers;
  }

  /** Settles when the stream is over (for close()). */
  get settled(): Promise<unknown> {
    return this.#core.settled;
  }

  /**
   * The next URB's result, in order. Throws a `cancelled` UsbError when the
   * signal was aborted, the device closed, the interface released or the
   * device reset; `disconnected` when the device went away; and again on
   * every later call.
   */
  async next(): Promise<IteratorResult<IsoStreamResult>> {
    const step = this.#core.nextIn();
    const i = typeof step === "number" ? step : await step;
    if (i < 0) return { done: true, value: undefined };
    return { done: false, value: this.#deliver(i) };
  }

  /** Fills buffer `i`'s reused result from its URB struct: the gap rule, then the counters. */
  #deliver(i: number): IsoStreamResult {
    const l = this.#engine.layout;
    const urbs = this.#core.hs.urbs;
    const slot = i * l.slotSize;
    for (let k = 0; k < this.#lengths.length; k++) {
      const off = slot + l.isoDescOffset + k * l.isoDescSize;
      this.#actual[k] = urbs.getUint32(off + 4, true);
      this.#packetStatus[k] = urbs.getInt32(off + 8, true);
    }
    const r = this.#results[i]!;
    const received = viewIsoInPackets(
      this.#core.lend(i, this.#size),
      this.#lengths,
      this.#actual,
      this.#packetStatus,
      r.packets,
    );
    r.bytes = received;
    r.startFrame = urbs.getInt32(slot + l.urbStartFrame, true);
    r.errorCount = urbs.getInt32(slot + l.urbErrorCount, true);
    if (this.#concatenate) r.data = concatIsoIn(r.packets, received);
    this.packets += this.#lengths.length;
    this.bytes += received;
    this.#core.done = this.packets;
    return r;
  }

  /** Stops the stream: cancels queued URBs and frees the buffers. */
  async return(): Promise<IteratorResult<IsoStreamResult>> {
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
