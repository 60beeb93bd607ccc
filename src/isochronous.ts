/**
 * Isochronous transfers: per-packet results, splitting at the kernel's 128
 * packets per URB, and the rule that stale bytes are never exposed.
 *
 * An iso IN packet lands at a fixed offset in the buffer (the sum of the
 * lengths before it). A packet shorter than its slot leaves a gap; in reused
 * (for example usbfs-mapped) memory the gap holds bytes from an earlier
 * transfer. Each packet's view covers exactly its `actual_length`, and the
 * concatenated `data` holds only received bytes.
 *
 * One URB lifecycle serves every iso transfer: {@linkcode IsoUrbs} submits
 * the URBs of one buffer, reads the per-packet records as they are reaped,
 * and hands the buffer back; {@linkcode IsoTransfer} (one transfer, a
 * promise) and `IsoInStream` (src/iso_stream.ts, N buffers resubmitted) are
 * built on it.
 *
 * @module
 */

import type { UsbBuffer } from "./buffer.ts";
import { type UrbEngine, UrbType } from "./engine.ts";
import { Errno, type UsbError, type UsbErrorOptions } from "./errors.ts";
import {
  isDisconnectStatus,
  UrbBatch,
  urbError,
  urbOutcome,
  UrbSet,
} from "./urb.ts";
import {
  type CheckedTransferOptions,
  checkInteger,
  invalidArgument,
  MAX_TRANSFER_BYTES,
} from "./validate.ts";

/**
 * The most bytes one iso packet may have: 98304 (3 × 1024 × 32, the limit
 * usbfs applies in devio.c for SuperSpeedPlus).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_ISO_PACKET } from "./isochronous.ts";
 * assert.equal(MAX_ISO_PACKET, 98304);
 * ```
 */
export const MAX_ISO_PACKET = 98304;

/** The status of one iso packet. */
export type IsoPacketStatus = "ok" | "stall" | "babble" | "error";

/** One received iso packet. */
export interface IsoInPacket {
  /** The packet's status. */
  status: IsoPacketStatus;
  /** Bytes received (`actual_length`): the length of `data`. */
  length: number;
  /** Exactly the bytes received for this packet (`actual_length`). */
  data: Uint8Array<ArrayBuffer>;
  /** The kernel's status for the packet: 0 or a negative errno. */
  errno: number;
}

/** One sent iso packet. */
export interface IsoOutPacket {
  /** The packet's status. */
  status: IsoPacketStatus;
  /** Bytes sent. */
  bytesWritten: number;
  /** The kernel's status for the packet: 0 or a negative errno. */
  errno: number;
}

/** The result of `isochronousTransferIn`. */
export interface IsoInResult {
  /** Only the bytes received, packets concatenated in order. */
  data: Uint8Array<ArrayBuffer>;
  /** Per packet. */
  packets: IsoInPacket[];
}

/** The result of `isochronousTransferOut`. */
export interface IsoOutResult {
  /** Per packet. */
  packets: IsoOutPacket[];
}

/**
 * Maps a packet status to its name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isoPacketStatus } from "./isochronous.ts";
 * assert.ok(isoPacketStatus(-32) === "stall");
 * ```
 */
export function isoPacketStatus(status: number): IsoPacketStatus {
  if (status === 0) return "ok";
  if (status === -Errno.EPIPE) return "stall";
  if (status === -Errno.EOVERFLOW) return "babble";
  return "error";
}

/**
 * Checks iso packet lengths: a non-empty array of at most `maxCount`
 * integers from 0 to {@linkcode MAX_ISO_PACKET} that add up to at most
 * 2³¹−1 bytes. Returns a copy (the caller's array may change later).
 *
 * @param name the argument, for messages: `"isochronousTransferIn: packetLengths"`
 * @param value what was passed
 * @param maxCount the most packets allowed
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkIsoPacketLengths } from "./isochronous.ts";
 * assert.deepEqual(checkIsoPacketLengths("f: packetLengths", [0, 192], 128), [0, 192]);
 * assert.throws(() => checkIsoPacketLengths("f: packetLengths", [1, -1], 128), /f: packetLengths\[1\] must be an integer from 0 to 98304, got -1/);
 * assert.throws(() => checkIsoPacketLengths("f: packetLengths", [], 128), /an array of 1 to 128 packet sizes/);
 * ```
 */
export function checkIsoPacketLengths(
  name: string,
  value: unknown,
  maxCount: number = MAX_TRANSFER_BYTES,
): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > maxCount) {
    throw invalidArgument(
      name,
      value,
      maxCount < MAX_TRANSFER_BYTES
        ? `an array of 1 to ${maxCount} packet sizes (integers from 0 to ${MAX_ISO_PACKET})`
        : `a non-empty array of packet sizes (integers from 0 to ${MAX_ISO_PACKET})`,
    );
  }
  const lengths: number[] = [];
  let total = 0;
  for (let i = 0; i < value.length; i++) {
    const n = checkInteger(
      `${name}[${i}]`,
      value[i],
      0,
      MAX_ISO_PACKET,
      `the kernel's limit for one iso packet is ${MAX_ISO_PACKET} bytes`,
    );
    total += n;
    if (total > MAX_TRANSFER_BYTES) {
      throw invalidArgument(
        name,
        value,
        `packet sizes that add up to at most ${MAX_TRANSFER_BYTES} bytes`,
      );
    }
    lengths.push(n);
  }
  return lengths;
}

/**
 * The gap rule, in one place: sets `packets[i]` to a view of exactly the
 * `actual[i]` bytes received at packet `i`'s slot (slots are `lengths[i]`
 * bytes, back to back), never the stale bytes after them. Packet objects
 * already in `packets` are updated in place (a stream reuses them); missing
 * ones are added. Returns the bytes received.
 *
 * @example Reusing packet objects: the second call updates them
 * ```ts
 * import assert from "node:assert/strict";
 * import { type IsoInPacket, viewIsoInPackets } from "./isochronous.ts";
 * const packets: IsoInPacket[] = [];
 * const buf = new Uint8Array([1, 2, 0xee, 0xee, 3, 4, 5, 6]); // 0xee: stale bytes
 * assert.equal(viewIsoInPackets(buf, [4, 4], [2, 4], [0, 0], packets), 6);
 * const first = packets[0];
 * assert.deepEqual([...packets[0]!.data], [1, 2]);
 * viewIsoInPackets(buf, [4, 4], [0, 1], [0, -71], packets);
 * assert.equal(packets[0], first);
 * assert.deepEqual([packets[0]!.length, packets[1]!.length, packets[1]!.status], [0, 1, "error"]);
 * ```
 */
export function viewIsoInPackets(
  buffer: Uint8Array<ArrayBuffer>,
  lengths: ArrayLike<number>,
  actual: ArrayLike<number>,
  status: ArrayLike<number>,
  packets: IsoInPacket[],
): number {
  let offset = 0, received = 0;
  for (let i = 0; i < lengths.length; i++) {
    const slot = lengths[i]!;
    // The kernel never reports more than the slot, but a record is input:
    // clamp so a bad value cannot reach into the next packet's slot.
    const got = Math.max(0, Math.min(actual[i]!, slot, buffer.length - offset));
    const data = buffer.subarray(offset, offset + got);
    const errno = status[i]!;
    const p = packets[i];
    if (p === undefined) {
      packets.push({
        status: isoPacketStatus(errno),
        length: got,
        data,
        errno,
      });
    } else {
      p.status = isoPacketStatus(errno);
      p.length = got;
      p.data = data;
      p.errno = errno;
    }
    received += got;
    offset += slot;
  }
  return received;
}

/**
 * A copy of the packets' bytes, back to back: the received bytes only.
 *
 * @param packets packets from {@linkcode viewIsoInPackets}
 * @param received their total length (what it returned)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatIsoIn, type IsoInPacket, viewIsoInPackets } from "./isochronous.ts";
 * const packets: IsoInPacket[] = [];
 * const n = viewIsoInPackets(new Uint8Array([1, 0xee, 2, 3]), [2, 2], [1, 2], [0, 0], packets);
 * assert.deepEqual([...concatIsoIn(packets, n)], [1, 2, 3]);
 * ```
 */
export function concatIsoIn(
  packets: readonly IsoInPacket[],
  received: number,
): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(received);
  let at = 0;
  for (const p of packets) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return data;
}

/**
 * Builds an iso IN result from a buffer and per-packet completion records,
 * applying the gap rule: each packet's view covers `actual[i]` bytes at its
 * slot's offset, and `data` concatenates only those bytes.
 *
 * @example A short packet's gap is never exposed
 * ```ts
 * import assert from "node:assert/strict";
 * import { assembleIsoIn } from "./isochronous.ts";
 * const buf = new Uint8Array([1, 2, 0xee, 0xee, 3, 4, 5, 6]); // 0xee: stale bytes
 * const r = assembleIsoIn(buf, [4, 4], [2, 4], [0, 0]);
 * assert.ok(r.data.join() === "1,2,3,4,5,6");
 * assert.ok(r.packets[0]!.data.length === 2);
 * ```
 */
export function assembleIsoIn(
  buffer: Uint8Array<ArrayBuffer>,
  lengths: ArrayLike<number>,
  actual: ArrayLike<number>,
  status: ArrayLike<number>,
): IsoInResult {
  const packets: IsoInPacket[] = [];
  const received = viewIsoInPackets(buffer, lengths, actual, status, packets);
  return { data: concatIsoIn(packets, received), packets };
}

/**
 * The URBs of one iso transfer over one buffer: the iso split on the shared
 * URB lifecycle ({@linkcode UrbSet}, src/urb.ts). `submit()` hands the
 * buffer to the kernel (a UsbBuffer is acquired, its views detached) as
 * URBs of at most 128 packets; as each URB is reaped its packets'
 * `actual_length` and status are read before the slot is reused; when the
 * last one is reaped the buffer comes back (a fresh view) and `onDone`
 * runs. It can then be submitted again: a stream does, and nothing is
 * allocated for the bookkeeping.
 *
 * Not part of the public API: `Endpoint` uses it through
 * {@linkcode IsoTransfer} and `isochronousStream`.
 *
 * @example Submit, wait, read the packets, submit again
 * ```ts ignore
 * // Needs an open device's URB engine: tests/unit/isochronous_test.ts runs IsoUrbs
 * // against a fake one, tests/device/iso_test.ts on a device in the guest.
 * import { IsoUrbs, type IsoInPacket, viewIsoInPackets } from "./isochronous.ts";
 * declare const engine: import("./engine.ts").UrbEngine, buffer: Uint8Array<ArrayBuffer>;
 * const urbs = new IsoUrbs(engine, buffer, [1024, 1024], () => {
 *   const packets: IsoInPacket[] = [];
 *   viewIsoInPackets(urbs.bytes, urbs.lengths, urbs.actual, urbs.packetStatus, packets);
 *   urbs.submit(0x81, "isochronous IN on endpoint 0x81");
 * });
 * urbs.submit(0x81, "isochronous IN on endpoint 0x81");
 * ```
 */
export class IsoUrbs extends UrbSet {
  /** The buffer: an array (the kernel copies) or a UsbBuffer (mapped, or fallback memory). */
  readonly mem: Uint8Array<ArrayBuffer> | UsbBuffer;
  /** Each packet's slot length, as submitted. */
  readonly lengths: readonly number[];
  /** Per packet: `actual_length`, once reaped. */
  readonly actual: Int32Array;
  /** Per packet: 0 or a negative errno, once reaped. */
  readonly packetStatus: Int32Array;
  /** The first URB's `start_frame`. */
  startFrame = 0;
  /** Packets that failed, over every URB (`error_count`). */
  errorCount = 0;
  /**
   * 0 when every URB ended with 0 or -EXDEV (some packets failed: that is
   * in `packetStatus`); else the first other status, a disconnection first.
   */
  status = 0;
  readonly #perUrb: number;

  /**
   * @param engine the device's URB engine
   * @param mem where the packets are, at least the sum of `lengths` long
   * @param lengths each packet's slot (checked by {@linkcode checkIsoPacketLengths}; copied)
   * @param onDone called when every URB of a submit has been reaped
   */
  constructor(
    engine: UrbEngine,
    mem: Uint8Array<ArrayBuffer> | UsbBuffer,
    lengths: readonly number[],
    onDone: () => void,
  ) {
    const perUrb = engine.layout.maxIsoPackets;
    super(engine, Math.ceil(lengths.length / perUrb));
    this.#perUrb = perUrb;
    this.mem = mem;
    this.lengths = [...lengths];
    this.onDone = onDone;
    this.actual = new Int32Array(lengths.length);
    this.packetStatus = new Int32Array(lengths.length);
  }

  /** The buffer's bytes (a UsbBuffer's current view). */
  get bytes(): Uint8Array<ArrayBuffer> {
    return this.mem instanceof Uint8Array ? this.mem : this.mem.bytes;
  }

  /**
   * Submits every URB. Throws when nothing could be submitted (the buffer
   * is then back with its owner). When a later URB fails to submit, the
   * ones in flight are discarded and `submitError` says why; `onDone` runs
   * once they are reaped.
   */
  submit(endpoint: number, what: string): void {
    this.begin();
    this.status = 0;
    this.errorCount = 0;
    this.startFrame = 0;
    this.actual.fill(0);
    this.packetStatus.fill(0);
    const mem = this.mem;
    if (!(mem instanceof Uint8Array)) this.acquire(mem, what);
    const array = mem instanceof Uint8Array ? mem : mem.kernelArray;
    const base = mem instanceof Uint8Array ? null : mem.base;
    const per = this.#perUrb;
    const flags = this.engine.layout.flagIsoAsap;
    const count = this.lengths.length;
    for (let first = 0, offset = 0; first < count;) {
      const packets = Math.min(per, count - first);
      let bytes = 0;
      for (let i = first; i < first + packets; i++) bytes += this.lengths[i]!;
      const ok = this.push(
        UrbType.iso,
        endpoint,
        flags,
        array,
        base,
        offset,
        bytes,
        bytes,
        0,
        false,
        packets,
        this.lengths,
        first,
      );
      if (!ok) return;
      first += packets;
      offset += bytes;
    }
  }

  /** UrbSet hook: reads the per-packet records before the slot is reused. */
  override reaped(
    index: number,
    slot: number,
    status: number,
    errors: number,
  ): void {
    const engine = this.engine;
    const l = engine.layout;
    const slab = engine.slab;
    const first = index * this.#perUrb;
    const count = Math.min(this.#perUrb, this.lengths.length - first);
    for (let i = 0; i < count; i++) {
      const off = engine.isoDescOffset(slot, i);
      this.actual[first + i] = slab.getUint32(off + 4, true);
      this.packetStatus[first + i] = slab.getInt32(off + 8, true);
    }
    if (index === 0) {
      this.startFrame = slab.getInt32(
        slot * l.slotSize + l.urbStartFrame,
        true,
      );
    }
    this.errorCount += errors;
    if (
      status !== 0 && status !== -Errno.EXDEV &&
      (this.status === 0 || isDisconnectStatus(status))
    ) {
      this.status = status;
    }
  }
}

/**
 * One iso transfer, split into URBs of at most 128 packets: the iso split
 * ({@linkcode IsoUrbs}) and assembly on the shared lifecycle
 * ({@linkcode UrbBatch}, src/urb.ts). A URB that fails as a whole rejects
 * with {@linkcode urbError}'s classification (a stall is code `stall`):
 * an iso result has no status of its own to carry it.
 */
export class IsoTransfer extends UrbBatch<IsoInResult | IsoOutResult> {
  readonly #dir: "in" | "out";
  #endpoint = 0;
  declare readonly urbs: IsoUrbs;

  constructor(
    engine: UrbEngine,
    dir: "in" | "out",
    what: string,
    mem: Uint8Array<ArrayBuffer> | UsbBuffer,
    lengths: number[],
    tag: number,
  ) {
    super(new IsoUrbs(engine, mem, lengths, () => {}));
    this.#dir = dir;
    this.what = what;
    this.tag = tag;
  }

  /**
   * Submits every URB to `endpoint`. The options and packet lengths must
   * have been checked (src/validate.ts): nothing here may fail on them once
   * a URB is in flight.
   */
  start(
    endpoint: number,
    options: CheckedTransferOptions,
  ): Promise<IsoInResult | IsoOutResult> {
    this.#endpoint = endpoint;
    return this.run(options);
  }

  /** UrbBatch: the iso split. */
  protected plan(): void {
    this.urbs.submit(this.#endpoint, this.what);
  }

  #result(): IsoInResult | IsoOutResult {
    const u = this.urbs;
    return this.#dir === "in"
      ? assembleIsoIn(u.bytes, u.lengths, u.actual, u.packetStatus)
      : {
        packets: u.lengths.map((_, i) => ({
          status: isoPacketStatus(u.packetStatus[i]!),
          bytesWritten: u.actual[i]!,
          errno: u.packetStatus[i]!,
        })),
      };
  }

  /** UrbBatch: what an error carries. */
  protected partial(): UsbErrorOptions {
    const u = this.urbs;
    let moved = 0;
    for (let i = 0; i < u.lengths.length; i++) moved += u.actual[i]!;
    if (this.#dir === "out") return { bytesTransferred: moved };
    const r = this.#result() as IsoInResult;
    return { data: r.data, bytesTransferred: r.data.length };
  }

  /** UrbBatch: every URB reaped. */
  protected settle(
    resolve: (v: IsoInResult | IsoOutResult) => void,
    reject: (e: unknown) => void,
  ): void {
    const status = this.urbs.status;
    if (isoUrbFailed(status)) {
      reject(urbError(this.what, status, this.urbs.engine.ids, this.partial()));
      return;
    }
    resolve(this.#result());
  }
}

/**
 * True when a URB status (`IsoUrbs.status`) is a failure of the transfer:
 * not 0, and not a kill (-ENOENT, -ECONNRESET), which the owner reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isoUrbFailed } from "./isochronous.ts";
 * assert.equal(isoUrbFailed(0), false);
 * assert.equal(isoUrbFailed(-2), false); // ENOENT: discarded
 * assert.equal(isoUrbFailed(-71), true); // EPROTO
 * ```
 */
export function isoUrbFailed(status: number): boolean {
  const o = urbOutcome(status);
  return o !== "ok" && o !== "cancelled";
}

/**
 * The error for an iso URB that failed as a whole (per-packet failures are
 * in the packets' statuses, and are not errors): {@linkcode urbError}, the
 * classification every path uses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isoUrbError } from "./isochronous.ts";
 * const e = isoUrbError("isochronous IN on endpoint 0x81", -71);
 * assert.equal(e.code, "io");
 * assert.equal(e.message, "isochronous IN on endpoint 0x81 failed with EPROTO");
 * assert.equal(isoUrbError("isochronous IN on endpoint 0x81", -32).code, "stall");
 * ```
 */
export function isoUrbError(what: string, status: number): UsbError {
  return urbError(what, status);
}
