/**
 * URB submission for one open device: the pool of URB slots, splitting of
 * large transfers, completion bookkeeping, timeouts, cancellation and the
 * translation of URB status into results and errors.
 *
 * @module
 */

import { completions, type CompletionSink } from "./completion.ts";
import {
  Errno,
  errnoName,
  errorFromErrno,
  UsbError,
  type UsbErrorCode,
} from "./errors.ts";
import type { Helper } from "./ffi.ts";
import type { UsbBuffer } from "./buffer.ts";
import { type CheckedTransferOptions, hex } from "./validate.ts";

/** `USBDEVFS_URB_TYPE_*` from include/uapi/linux/usbdevice_fs.h. */
export const UrbType = { iso: 0, interrupt: 1, control: 2, bulk: 3 } as const;

/** Result status of a transfer, as in WebUSB. */
export type TransferStatus = "ok" | "stall" | "babble";

/**
 * Options of every transfer. Checked before anything starts: a bad value
 * rejects with code `invalid-argument` (see src/validate.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferOptions } from "./transfer.ts";
 * const o: TransferOptions = { timeout: 1000, signal: new AbortController().signal };
 * assert.ok(o.timeout === 1000);
 * ```
 */
export interface TransferOptions {
  /**
   * Milliseconds before the transfer is cancelled with code `"timeout"`: a
   * finite number from 0 to 2147483647 (2³¹−1, the most `setTimeout`
   * honours). 0, absent or `Infinity`: no timeout. Negative numbers, `NaN`,
   * and finite numbers above 2147483647 are `invalid-argument`.
   */
  timeout?: number;
  /**
   * Cancels the transfer with code `"cancelled"` when aborted. Must be a real
   * `AbortSignal` (an object that only looks like one is `invalid-argument`).
   */
  signal?: AbortSignal;
}

/** Where a URB's data lives: a JS array (the kernel copies) or a mapped region. */
export type UrbBuffer =
  | { kind: "array"; array: Uint8Array<ArrayBuffer>; offset: number }
  | { kind: "mapped"; base: Deno.PointerObject; offset: number };

/** One URB of a transfer, as its owner sees it when it completes. */
export interface UrbOwner {
  /** Called once per URB, in reap order. */
  urbDone(
    index: number,
    status: number,
    actualLength: number,
    errorCount: number,
    slot: number,
  ): void;
}

/**
 * What ended a transfer early on the caller's side. `closed`, `released` and
 * `reset` are reported as code `cancelled` with a message that says the
 * device was closed, the interface released or the device reset.
 */
export type CancelReason =
  | "timeout"
  | "cancelled"
  | "closed"
  | "released"
  | "reset";

/**
 * The words a cancellation message ends with: "was cancelled because the
 * device was closed".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cancelledBecause } from "./transfer.ts";
 * assert.equal(cancelledBecause("released"), "was cancelled because its interface was released");
 * ```
 */
export function cancelledBecause(reason: CancelReason): string {
  switch (reason) {
    case "timeout":
      return "timed out";
    case "closed":
      return "was cancelled because the device was closed";
    case "released":
      return "was cancelled because its interface was released";
    case "reset":
      return "was cancelled because the device was reset";
    default:
      return "was cancelled";
  }
}

/**
 * Listens for `signal`'s abort, before anything is submitted, so that a
 * signal that cannot be listened to (a hostile Proxy of one) fails the call
 * cleanly. Returns the unsubscribe function, which never throws.
 *
 * @throws {UsbError} `invalid-argument` when the signal refuses the listener
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenForAbort } from "./transfer.ts";
 * const ac = new AbortController();
 * let aborted = 0;
 * const stop = listenForAbort(ac.signal, () => aborted++, "transferIn");
 * stop();
 * ac.abort();
 * assert.equal(aborted, 0);
 * ```
 */
export function listenForAbort(
  signal: AbortSignal,
  onAbort: () => void,
  what: string,
): () => void {
  try {
    signal.addEventListener("abort", onAbort, { once: true });
  } catch (e) {
    throw new UsbError(
      "invalid-argument",
      `${what}: options.signal does not take an abort listener`,
      { cause: e },
    );
  }
  return () => {
    try {
      signal.removeEventListener("abort", onAbort);
    } catch {
      // Nothing more can be done about a signal that refuses this.
    }
  };
}

/** Statuses that mean the device went away (hcd.c / devio.c at disconnect). */
export function isDisconnectStatus(status: number): boolean {
  return status === -Errno.ENODEV || status === -Errno.ESHUTDOWN;
}

/** Anything in flight that close() or release() must be able to stop. */
export interface Cancellable {
  /** The interface number it runs on; -1 for control. */
  readonly tag: number;
  /** Gives back its URBs; it then settles. */
  cancel(reason: CancelReason): void;
  /** Settles (never rejects) when it is over. */
  readonly settled: Promise<unknown>;
}

/**
 * The URB engine of one open device. Not part of the public API: Device,
 * Interface and Endpoint use it.
 */
export class UrbEngine implements CompletionSink {
  readonly h: Helper;
  readonly handle: Deno.PointerObject;
  readonly deviceId: number;
  readonly capabilities: number;
  /** Largest URB for bulk/interrupt data before splitting. */
  readonly maxUrbBytes: number;
  /** The URB slots, viewed as bytes, for iso packet descriptors. */
  readonly slab: DataView<ArrayBuffer>;
  #free: Int32Array;
  #freeTop: number;
  /** URB slots in all: the most URBs in flight at once. */
  readonly slotCount: number;
  #owners: (UrbOwner | undefined)[];
  #ownerIndex: Int32Array;
  #gone = false;
  #pending = new Set<Cancellable>();
  /** Called with the device itself when usbfs reports it gone. */
  onGone: (() => void) | undefined;
  /** Describes the device in error messages. */
  describe: () => string = () => "the device";
  /** Ids for the udev hint. */
  ids: { vendorId?: number; productId?: number; devnode?: string } = {};

  constructor(h: Helper, handle: Deno.PointerObject, capabilities: number) {
    this.h = h;
    this.handle = handle;
    this.capabilities = capabilities;
    this.deviceId = h.sym.usbkit_device_id(handle);
    const slabPtr = h.sym.usbkit_slab(handle)!;
    const slabBytes = h.sym.usbkit_slab_bytes(handle);
    this.slab = new DataView(
      Deno.UnsafePointerView.getArrayBuffer(slabPtr, slabBytes),
    );
    const nslots = Math.floor(slabBytes / h.layout.slotSize);
    this.slotCount = nslots;
    this.#free = new Int32Array(nslots);
    for (let i = 0; i < nslots; i++) this.#free[i] = nslots - 1 - i;
    this.#freeTop = nslots;
    this.#owners = new Array(nslots).fill(undefined);
    this.#ownerIndex = new Int32Array(nslots);
    // With scatter-gather the kernel takes large URBs without one big
    // contiguous allocation (devio.c, USB_SG_SIZE pieces); without it,
    // libusb's 16 KiB is the safe size.
    this.maxUrbBytes = (capabilities & 0x08) !== 0 ? 256 * 1024 : 16 * 1024;
    completions().register(this.deviceId, this);
  }

  /** True once usbfs reported the device gone. */
  get gone(): boolean {
    return this.#gone;
  }

  /** URB slots not in use. */
  get freeSlots(): number {
    return this.#freeTop;
  }

  /** Transfers and streams tracked as pending (close() would cancel them). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** The error every call on a gone device gets. */
  disconnectedError(what: string): UsbError {
    return new UsbError(
      "disconnected",
      `${what}: ${this.describe()} was disconnected`,
      {
        errno: Errno.ENODEV,
        hint:
          "plug it back in and open it again; close() still releases what usbkit holds",
      },
    );
  }

  /** Checks a helper return value; throws an actionable error for -errno. */
  check(r: number, what: string, holder?: string): number {
    if (r >= 0) return r;
    if (r === -Errno.ENODEV) {
      this.#gone = true;
      throw this.disconnectedError(what);
    }
    throw errorFromErrno(r, what, {
      ...this.ids,
      ...(holder === undefined ? {} : { holder }),
    });
  }

  /**
   * Submits one URB. Returns the slot. Throws on a submit error (nothing is
   * then in flight for this URB).
   */
  submit(
    owner: UrbOwner,
    index: number,
    type: number,
    endpoint: number,
    flags: number,
    buffer: UrbBuffer | null,
    length: number,
    packets: number,
    isoLengths?: ArrayLike<number>,
    isoStart = 0,
  ): number {
    if (this.#gone) throw this.disconnectedError("submitting a transfer");
    if (this.#freeTop === 0) {
      throw new UsbError(
        "no-memory",
        `all ${this.#free.length} URB slots of ${this.describe()} are in flight`,
        {
          hint:
            "wait for some transfers to complete, or open the device with a larger { maxUrbs }",
        },
      );
    }
    const slot = this.#free[--this.#freeTop]!;
    if (isoLengths !== undefined) {
      // iso_frame_desc[i].length, read by the kernel at submit.
      for (let i = 0; i < packets; i++) {
        const off = this.isoDescOffset(slot, i);
        this.slab.setUint32(off, isoLengths[isoStart + i]!, true);
        this.slab.setUint32(off + 4, 0, true);
        this.slab.setUint32(off + 8, 0, true);
      }
    }
    const loop = completions();
    loop.submitted();
    let r: number;
    try {
      r = this.#submitUrb(
        slot,
        type,
        endpoint,
        flags,
        buffer,
        length,
        packets,
      );
    } catch (e) {
      // The FFI call refused an argument: nothing reached the kernel. Undo
      // the in-flight count, or a parked wait would keep the process alive.
      loop.submitFailed();
      this.#free[this.#freeTop++] = slot;
      throw e;
    }
    if (r < 0) {
      loop.submitFailed();
      this.#free[this.#freeTop++] = slot;
      this.check(r, `submitting a transfer to endpoint ${hex(endpoint)}`);
    }
    this.#owners[slot] = owner;
    this.#ownerIndex[slot] = index;
    return slot;
  }

  #submitUrb(
    slot: number,
    type: number,
    endpoint: number,
    flags: number,
    buffer: UrbBuffer | null,
    length: number,
    packets: number,
  ): number {
    const sym = this.h.sym;
    if (buffer === null) {
      return sym.usbkit_submit(
        this.handle,
        slot,
        type,
        endpoint,
        flags,
        null,
        0,
        length,
        packets,
      );
    }
    if (buffer.kind === "array") {
      return sym.usbkit_submit(
        this.handle,
        slot,
        type,
        endpoint,
        flags,
        buffer.array,
        buffer.offset,
        length,
        packets,
      );
    }
    return sym.usbkit_submit_mapped(
      this.handle,
      slot,
      type,
      endpoint,
      flags,
      buffer.base,
      buffer.offset,
      length,
      packets,
    );
  }

  /** Asks the kernel to give back a URB now (it completes with -ENOENT). */
  discard(slot: number): void {
    this.h.sym.usbkit_discard(this.handle, slot);
  }

  /** Byte offset of slot `slot`'s iso packet descriptor `i` in {@linkcode slab}. */
  isoDescOffset(slot: number, i: number): number {
    const l = this.h.layout;
    return slot * l.slotSize + l.isoDescOffset + i * l.isoDescSize;
  }

  /** CompletionSink: a URB was reaped. */
  urbCompleted(
    slot: number,
    status: number,
    actualLength: number,
    errorCount: number,
  ): void {
    const owner = this.#owners[slot];
    const index = this.#ownerIndex[slot]!;
    this.#owners[slot] = undefined;
    try {
      owner?.urbDone(index, status, actualLength, errorCount, slot);
    } finally {
      // The slot is reused only after its owner has read its iso descriptors.
      this.#free[this.#freeTop++] = slot;
    }
  }

  /** CompletionSink: usbfs reports the device gone. */
  deviceGone(): void {
    this.#gone = true;
    this.onGone?.();
  }

  /** Tracks a transfer so close() can cancel it. */
  track(t: Cancellable): void {
    this.#pending.add(t);
  }

  /** Stops tracking a finished transfer. */
  untrack(t: Cancellable): void {
    this.#pending.delete(t);
  }

  /** Cancels every pending transfer (of one interface, if given) and waits until all have settled. */
  async cancelAll(
    reason: CancelReason,
    interfaceNumber?: number,
  ): Promise<void> {
    const all = [...this.#pending].filter((t) =>
      interfaceNumber === undefined || t.tag === interfaceNumber
    );
    for (const t of all) t.cancel(reason);
    await Promise.allSettled(all.map((t) => t.settled));
  }

  /** Unregisters from the completion loop (after the helper closed the fd). */
  dispose(): void {
    completions().unregister(this.deviceId);
    this.slab.buffer.transfer(0);
  }
}

/** The result of an IN transfer. */
export interface InResult {
  /** `"ok"`, `"stall"` (the endpoint halted) or `"babble"` (the device sent too much). */
  status: TransferStatus;
  /** The bytes received (on a stall: those received before it). */
  data: Uint8Array<ArrayBuffer>;
}

/** The result of an OUT transfer. */
export interface OutResult {
  /** `"ok"` or `"stall"`. */
  status: TransferStatus;
  /** The bytes the device accepted. */
  bytesWritten: number;
}

/**
 * One bulk, interrupt or control transfer, split into as many URBs as it
 * needs, completing as one.
 */
export class Transfer implements UrbOwner {
  readonly #engine: UrbEngine;
  readonly #dir: "in" | "out";
  readonly #what: string;
  readonly #mem: Uint8Array<ArrayBuffer> | UsbBuffer;
  /** Bytes used from the start of #mem, setup packet included. */
  readonly #length: number;
  /** Bytes of the buffer before the data (8 for a control setup packet). */
  readonly #dataOffset: number;
  #slots: number[] = [];
  #lengths: number[] = [];
  #actual: number[] = [];
  #status: number[] = [];
  #remaining = 0;
  #cancel: CancelReason | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #unlisten: (() => void) | undefined;
  #onAbort = () => this.cancel("cancelled");
  #resolve!: (v: InResult | OutResult) => void;
  #reject!: (e: unknown) => void;
  /** The interface number whose endpoint this runs on; -1 for control. */
  readonly tag: number;
  /** Settles (never rejects) when the transfer is over. */
  readonly settled: Promise<unknown>;
  /** The promise the caller awaits. */
  readonly promise: Promise<InResult | OutResult>;

  constructor(
    engine: UrbEngine,
    dir: "in" | "out",
    what: string,
    mem: Uint8Array<ArrayBuffer> | UsbBuffer,
    dataOffset: number,
    tag = -1,
    length = mem instanceof Uint8Array ? mem.length : mem.size,
  ) {
    this.tag = tag;
    this.#engine = engine;
    this.#dir = dir;
    this.#what = what;
    this.#mem = mem;
    this.#length = length;
    this.#dataOffset = dataOffset;
    this.promise = new Promise((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    this.settled = this.promise.catch(() => {});
  }

  /**
   * Submits the transfer as URBs of at most `maxUrb` bytes. `continuation`
   * marks URBs after the first with BULK_CONTINUATION, so the kernel cancels
   * the rest of the transfer after a short or failed URB. The options must
   * have been checked (src/validate.ts `checkTransferOptions`): nothing here
   * may fail on them after a URB is in flight.
   */
  start(
    type: number,
    endpoint: number,
    maxUrb: number,
    continuation: boolean,
    options: CheckedTransferOptions,
    zeroPacket = false,
  ): Promise<InResult | OutResult> {
    const { signal, timeout } = options;
    if (signal?.aborted) {
      // Nothing was acquired or submitted: reject without #finish, which
      // would hand back a UsbBuffer another transfer may own.
      this.#reject(
        new UsbError(
          "cancelled",
          `${this.#what} was cancelled before it started (the signal was already aborted)`,
          this.#dir === "in"
            ? { data: new Uint8Array(0), bytesTransferred: 0 }
            : { bytesTransferred: 0 },
        ),
      );
      return this.promise;
    }
    const l = this.#engine.h.layout;
    const total = this.#length - this.#dataOffset;
    const mem = this.#mem;
    try {
      if (signal) {
        this.#unlisten = listenForAbort(signal, this.#onAbort, this.#what);
      }
      if (!(mem instanceof Uint8Array)) mem.acquire(this.#what);
    } catch (e) {
      this.#unlisten?.();
      this.#reject(e);
      return this.promise;
    }
    const isControl = type === UrbType.control;
    const count = isControl || total === 0 ? 1 : Math.ceil(total / maxUrb);
    try {
      for (let i = 0; i < count; i++) {
        const off = isControl ? 0 : i * maxUrb;
        const len = isControl ? this.#length : Math.min(maxUrb, total - off);
        let flags = 0;
        if (i > 0 && continuation) flags |= l.flagBulkContinuation;
        if (continuation && this.#dir === "in" && i < count - 1) {
          flags |= l.flagShortNotOk;
        }
        if (zeroPacket && i === count - 1) flags |= l.flagZeroPacket;
        this.#lengths.push(isControl ? len - 8 : len);
        this.#actual.push(0);
        this.#status.push(0);
        const slot = this.#engine.submit(
          this,
          i,
          type,
          endpoint,
          flags,
          mem instanceof Uint8Array
            ? {
              kind: "array",
              array: mem,
              offset: off + (isControl ? 0 : this.#dataOffset),
            }
            : mem.urbBuffer(off),
          len,
          0,
        );
        this.#slots.push(slot);
        this.#remaining++;
      }
    } catch (e) {
      if (this.#remaining === 0) {
        // Nothing in flight: the buffer goes back to its owner at once.
        if (!(mem instanceof Uint8Array)) mem.complete();
        this.#unlisten?.();
        this.#reject(e);
        return this.promise;
      }
      // Part of the transfer is in flight: give it back, then report.
      this.#submitError = e;
      this.cancel("cancelled");
      return this.promise;
    }
    this.#engine.track(this);
    if (timeout > 0) {
      this.#timer = setTimeout(() => this.cancel("timeout"), timeout);
    }
    return this.promise;
  }

  #submitError: unknown;

  /** Gives back every URB still in flight; the transfer then rejects with `reason`. */
  cancel(reason: CancelReason): void {
    if (this.#cancel !== undefined) return;
    this.#cancel = reason;
    for (let i = 0; i < this.#slots.length; i++) {
      if (this.#actualDone[i] !== 1) this.#engine.discard(this.#slots[i]!);
    }
    if (this.#remaining === 0) this.#finish();
  }

  #actualDone: number[] = [];

  /** UrbOwner: one URB of this transfer completed. */
  urbDone(index: number, status: number, actualLength: number): void {
    this.#actual[index] = actualLength;
    this.#status[index] = status;
    this.#actualDone[index] = 1;
    this.#remaining--;
    const short = this.#dir === "in" && actualLength < this.#lengths[index]!;
    if (
      (status !== 0 || short) && this.#remaining > 0 &&
      this.#cancel === undefined
    ) {
      // The transfer ended here; URBs after it must not eat the next
      // transfer's data. With BULK_CONTINUATION the kernel cancels them too.
      for (let i = index + 1; i < this.#slots.length; i++) {
        if (this.#actualDone[i] !== 1) this.#engine.discard(this.#slots[i]!);
      }
    }
    if (this.#remaining === 0) this.#finish();
  }

  #finish(): void {
    this.#engine.untrack(this);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#unlisten?.();
    // Bytes moved: contiguous from the start, up to the first short or
    // failed URB.
    let moved = 0;
    let firstError = 0;
    for (let i = 0; i < this.#actual.length; i++) {
      moved += this.#actual[i]!;
      const s = this.#status[i]!;
      if (s !== 0 && s !== -Errno.EREMOTEIO) {
        firstError = s;
        break;
      }
      if (this.#actual[i]! < this.#lengths[i]!) break;
    }
    let data: Uint8Array<ArrayBuffer>;
    if (this.#mem instanceof Uint8Array) {
      data = this.#mem.subarray(this.#dataOffset, this.#dataOffset + moved);
    } else {
      this.#mem.complete();
      data = this.#mem.bytes.subarray(0, moved);
    }
    const partial = this.#dir === "in"
      ? { data, bytesTransferred: moved }
      : { bytesTransferred: moved };
    if (this.#submitError !== undefined) {
      this.#reject(this.#submitError);
      return;
    }
    if (this.#engine.gone || this.#status.some(isDisconnectStatus)) {
      const e = this.#engine.disconnectedError(this.#what);
      this.#reject(
        new UsbError("disconnected", e.message, {
          ...partial,
          errno: Errno.ENODEV,
          hint: e.hint ?? "",
        }),
      );
      return;
    }
    if (this.#cancel !== undefined) {
      const code: UsbErrorCode = this.#cancel === "timeout"
        ? "timeout"
        : "cancelled";
      const why = cancelledBecause(this.#cancel);
      this.#reject(
        new UsbError(
          code,
          `${this.#what} ${why} after ${moved} bytes`,
          partial,
        ),
      );
      return;
    }
    if (
      firstError === 0 || firstError === -Errno.ENOENT ||
      firstError === -Errno.ECONNRESET
    ) {
      this.#resolveWith("ok", data, moved);
    } else if (firstError === -Errno.EPIPE) {
      this.#resolveWith("stall", data, moved);
    } else if (firstError === -Errno.EOVERFLOW) {
      this.#resolveWith("babble", data, moved);
    } else {
      const err = errorFromErrno(firstError, this.#what, this.#engine.ids);
      this.#reject(
        new UsbError(
          err.code,
          `${this.#what} failed with ${errnoName(-firstError)}`,
          {
            ...partial,
            errno: -firstError,
            hint: err.hint ?? transferErrorHint(firstError),
          },
        ),
      );
    }
  }

  #resolveWith(
    status: TransferStatus,
    data: Uint8Array<ArrayBuffer>,
    moved: number,
  ): void {
    if (this.#dir === "in") this.#resolve({ status, data });
    else this.#resolve({ status, bytesWritten: moved });
  }
}

function transferErrorHint(status: number): string {
  switch (-status) {
    case Errno.EPROTO:
    case Errno.EILSEQ:
    case Errno.ETIME:
      return "a USB protocol error (bad CRC, bit stuffing or no response): check the cable and the device";
    case Errno.ENOSR:
    case Errno.ECOMM:
      return "the host controller could not keep up (buffer under/overrun)";
    default:
      return "see the errno; usbfs status values are listed in Documentation/driver-api/usb/error-codes.rst";
  }
}
