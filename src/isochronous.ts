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
 * @module
 */

import type { UsbBuffer } from "./buffer.ts";
import { Errno, errnoName, UsbError, type UsbErrorCode } from "./errors.ts";
import {
  cancelledBecause,
  type CancelReason,
  isDisconnectStatus,
  listenForAbort,
  type UrbEngine,
  type UrbOwner,
  UrbType,
} from "./transfer.ts";
import type { CheckedTransferOptions } from "./validate.ts";

/** The status of one iso packet. */
export type IsoPacketStatus = "ok" | "stall" | "babble" | "error";

/** One received iso packet. */
export interface IsoInPacket {
  /** The packet's status. */
  status: IsoPacketStatus;
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
  let offset = 0, received = 0;
  for (let i = 0; i < lengths.length; i++) {
    const slot = lengths[i]!;
    // The kernel never reports more than the slot, but a record is input:
    // clamp so a bad value cannot reach into the next packet's slot.
    const got = Math.max(0, Math.min(actual[i]!, slot, buffer.length - offset));
    packets.push({
      status: isoPacketStatus(status[i]!),
      data: buffer.subarray(offset, offset + got),
      errno: status[i]!,
    });
    received += got;
    offset += slot;
  }
  const data = new Uint8Array(received);
  let at = 0;
  for (const p of packets) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { data, packets };
}

/** One iso transfer, split into URBs of at most 128 packets. */
export class IsoTransfer implements UrbOwner {
  readonly #engine: UrbEngine;
  readonly #dir: "in" | "out";
  readonly #what: string;
  readonly #mem: Uint8Array<ArrayBuffer> | UsbBuffer;
  readonly #lengths: number[];
  readonly #actual: Int32Array;
  readonly #pstatus: Int32Array;
  #slots: number[] = [];
  #urbStatus: number[] = [];
  #urbDone: boolean[] = [];
  #remaining = 0;
  #cancel: CancelReason | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #unlisten: (() => void) | undefined;
  #onAbort = () => this.cancel("cancelled");
  #resolve!: (v: IsoInResult | IsoOutResult) => void;
  #reject!: (e: unknown) => void;
  /** The interface this runs on. */
  readonly tag: number;
  /** Settles when over. */
  readonly settled: Promise<unknown>;
  /** What the caller awaits. */
  readonly promise: Promise<IsoInResult | IsoOutResult>;

  constructor(
    engine: UrbEngine,
    dir: "in" | "out",
    what: string,
    mem: Uint8Array<ArrayBuffer> | UsbBuffer,
    lengths: number[],
    tag: number,
  ) {
    this.#engine = engine;
    this.#dir = dir;
    this.#what = what;
    this.#mem = mem;
    // A copy: the caller's array may change while the transfer runs.
    this.#lengths = [...lengths];
    this.#actual = new Int32Array(lengths.length);
    this.#pstatus = new Int32Array(lengths.length);
    this.tag = tag;
    this.promise = new Promise((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    this.settled = this.promise.catch(() => {});
  }

  /**
   * Submits every URB. The options and packet lengths must have been
   * checked (src/validate.ts): nothing here may fail on them once a URB is
   * in flight.
   */
  start(
    endpoint: number,
    options: CheckedTransferOptions,
  ): Promise<IsoInResult | IsoOutResult> {
    if (options.signal?.aborted) {
      this.#reject(
        new UsbError(
          "cancelled",
          `${this.#what} was cancelled before it started`,
        ),
      );
      return this.promise;
    }
    const mem = this.#mem;
    try {
      if (options.signal) {
        this.#unlisten = listenForAbort(
          options.signal,
          this.#onAbort,
          this.#what,
        );
      }
      if (!(mem instanceof Uint8Array)) mem.acquire(this.#what);
    } catch (e) {
      this.#unlisten?.();
      this.#reject(e);
      return this.promise;
    }
    const per = this.#engine.h.layout.maxIsoPackets;
    const flags = this.#engine.h.layout.flagIsoAsap;
    let offset = 0;
    try {
      for (
        let first = 0, index = 0;
        first < this.#lengths.length;
        first += per, index++
      ) {
        const count = Math.min(per, this.#lengths.length - first);
        let bytes = 0;
        for (let i = first; i < first + count; i++) bytes += this.#lengths[i]!;
        this.#urbStatus.push(0);
        this.#urbDone.push(false);
        const slot = this.#engine.submit(
          this,
          index,
          UrbType.iso,
          endpoint,
          flags,
          mem instanceof Uint8Array
            ? { kind: "array", array: mem, offset }
            : mem.urbBuffer(offset),
          bytes,
          count,
          this.#lengths,
          first,
        );
        this.#slots.push(slot);
        this.#remaining++;
        offset += bytes;
      }
    } catch (e) {
      if (this.#remaining === 0) {
        if (!(mem instanceof Uint8Array)) mem.complete();
        this.#unlisten?.();
        this.#reject(e);
        return this.promise;
      }
      this.#submitError = e;
      this.cancel("cancelled");
      return this.promise;
    }
    this.#engine.track(this);
    if (options.timeout > 0) {
      this.#timer = setTimeout(() => this.cancel("timeout"), options.timeout);
    }
    return this.promise;
  }

  #submitError: unknown;

  /** Gives back every URB in flight. */
  cancel(reason: CancelReason): void {
    if (this.#cancel !== undefined) return;
    this.#cancel = reason;
    for (let i = 0; i < this.#slots.length; i++) {
      if (!this.#urbDone[i]) this.#engine.discard(this.#slots[i]!);
    }
    if (this.#remaining === 0) this.#finish();
  }

  /** UrbOwner: read the per-packet records before the slot is reused. */
  urbDone(
    index: number,
    status: number,
    _actual: number,
    _errors: number,
    slot: number,
  ): void {
    const per = this.#engine.h.layout.maxIsoPackets;
    const first = index * per;
    const count = Math.min(per, this.#lengths.length - first);
    for (let i = 0; i < count; i++) {
      const off = this.#engine.isoDescOffset(slot, i);
      this.#actual[first + i] = this.#engine.slab.getUint32(off + 4, true);
      this.#pstatus[first + i] = this.#engine.slab.getInt32(off + 8, true);
    }
    this.#urbStatus[index] = status;
    this.#urbDone[index] = true;
    if (--this.#remaining === 0) this.#finish();
  }

  #finish(): void {
    this.#engine.untrack(this);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#unlisten?.();
    let view: Uint8Array<ArrayBuffer>;
    if (this.#mem instanceof Uint8Array) view = this.#mem;
    else {
      this.#mem.complete();
      view = this.#mem.bytes;
    }
    if (this.#submitError !== undefined) return this.#reject(this.#submitError);
    const result = this.#dir === "in"
      ? assembleIsoIn(view, this.#lengths, this.#actual, this.#pstatus)
      : {
        packets: this.#lengths.map((_, i) => ({
          status: isoPacketStatus(this.#pstatus[i]!),
          bytesWritten: this.#actual[i]!,
          errno: this.#pstatus[i]!,
        })),
      };
    if (this.#engine.gone || this.#urbStatus.some(isDisconnectStatus)) {
      const e = this.#engine.disconnectedError(this.#what);
      return this.#reject(
        new UsbError("disconnected", e.message, {
          errno: Errno.ENODEV,
          hint: e.hint ?? "",
        }),
      );
    }
    if (this.#cancel !== undefined) {
      const code: UsbErrorCode = this.#cancel === "timeout"
        ? "timeout"
        : "cancelled";
      const data = "data" in result ? result.data : undefined;
      return this.#reject(
        new UsbError(
          code,
          `${this.#what} ${cancelledBecause(this.#cancel)}`,
          {
            ...(data ? { data } : {}),
          },
        ),
      );
    }
    const bad = this.#urbStatus.find((s) => s !== 0 && s !== -Errno.EXDEV);
    if (
      bad !== undefined && bad !== -Errno.ENOENT && bad !== -Errno.ECONNRESET
    ) {
      // EXDEV means some packets failed: that is in the per-packet statuses.
      return this.#reject(
        new UsbError("io", `${this.#what} failed with ${errnoName(-bad)}`, {
          errno: -bad,
        }),
      );
    }
    this.#resolve(result);
  }
}
