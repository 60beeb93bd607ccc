/**
 * The URB engine of one open device: its pool of URB slots, who owns each
 * URB in flight, the completions that come back from the ring, and the list
 * of transfers and streams that close(), release() and reset() cancel.
 *
 * It is the slot level only. The life of a transfer (buffer, promise,
 * timeout, signal, cancel, status) is src/urb.ts; every helper call goes
 * through the device's {@linkcode Usbfs} handle (src/usbfs.ts).
 *
 * @module
 */

import { Capability } from "./capabilities.ts";
import { processTap } from "./capture/process.ts";
import type { CaptureTap } from "./capture/tap.ts";
import { completions, type CompletionSink } from "./completion.ts";
import { UsbError } from "./errors.ts";
import type { Layout } from "./ffi.ts";
import type { DeviceIds, Usbfs } from "./usbfs.ts";
import { hex } from "./validate.ts";

/**
 * `USBDEVFS_URB_TYPE_*` from include/uapi/linux/usbdevice_fs.h.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UrbType } from "./engine.ts";
 * assert.equal(UrbType.bulk, 3);
 * ```
 */
export const UrbType = { iso: 0, interrupt: 1, control: 2, bulk: 3 } as const;

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
 * What ended a transfer early on the caller's side: a timeout (code
 * `timeout`), the caller's signal (`cancelled`), or `close()`, an interface
 * `release()` or a device `reset()` (code `cancelled`, the message says
 * which; see `cancelledBecause` in src/urb.ts).
 */
export type CancelReason =
  | "timeout"
  | "cancelled"
  | "closed"
  | "released"
  | "reset";

/** Anything in flight that close(), release() or reset() must be able to stop. */
export interface Cancellable {
  /** The interface number it runs on; -1 for control. */
  readonly tag: number;
  /** When present: whether it runs on interface `n` (a batch may span several); else `tag === n`. */
  runsOn?(n: number): boolean;
  /** Gives back its URBs; it then settles. */
  cancel(reason: CancelReason): void;
  /** Settles (never rejects) when it is over. */
  readonly settled: Promise<unknown>;
}

/**
 * The URB engine of one open device. Not part of the public API: Device,
 * Interface and Endpoint use it.
 *
 * @example
 * ```ts ignore
 * // Needs a usbfs device node; open() makes the engine, and every test in
 * // tests/device/ runs it on the bench in the guest.
 * import { UrbEngine } from "./engine.ts";
 * import { Usbfs } from "./usbfs.ts";
 * declare const devnode: string;
 * const engine = new UrbEngine(Usbfs.open(devnode, 64, {}));
 * console.log(engine.slotCount, engine.freeSlots);
 * ```
 */
export class UrbEngine implements CompletionSink {
  /** The device's usbfs handle: every helper call goes through it. */
  readonly usbfs: Usbfs;
  /** The id completion records carry for this device. */
  readonly deviceId: number;
  /** USBDEVFS_CAP_* bits (src/capabilities.ts `Capability`). */
  readonly capabilities: number;
  /** Offsets and flags reported by the helper. */
  readonly layout: Layout;
  /** Largest URB for bulk/interrupt data before splitting. */
  readonly maxUrbBytes: number;
  /** The URB slots, viewed as bytes, for iso packet descriptors. */
  readonly slab: DataView<ArrayBuffer>;
  /** URB slots in all: the most URBs in flight at once. */
  readonly slotCount: number;
  /** Called when usbfs reports the device gone. */
  onGone: (() => void) | undefined;
  /** The idle Transfer objects of src/transfer.ts (its free list); owned there. */
  pool: unknown = undefined;
  /**
   * Capture (src/capture/): records every URB submitted and reaped when
   * set. Undefined (capture off) costs one comparison per URB.
   */
  capture: CaptureTap | undefined;
  #free: Int32Array;
  #freeTop: number;
  #owners: (UrbOwner | undefined)[];
  #ownerIndex: Int32Array;
  #pending = new Set<Cancellable>();

  constructor(usbfs: Usbfs) {
    this.usbfs = usbfs;
    this.layout = usbfs.layout;
    this.capabilities = usbfs.capabilities();
    this.deviceId = usbfs.deviceId();
    this.slab = new DataView(usbfs.slab());
    const nslots = Math.floor(this.slab.byteLength / this.layout.slotSize);
    this.slotCount = nslots;
    this.#free = new Int32Array(nslots);
    for (let i = 0; i < nslots; i++) this.#free[i] = nslots - 1 - i;
    this.#freeTop = nslots;
    this.#owners = new Array(nslots).fill(undefined);
    this.#ownerIndex = new Int32Array(nslots);
    // With scatter-gather the kernel takes large URBs without one big
    // contiguous allocation (devio.c, USB_SG_SIZE pieces); without it,
    // libusb's 16 KiB is the safe size.
    this.maxUrbBytes = (this.capabilities & Capability.BULK_SCATTER_GATHER) !==
        0
      ? 256 * 1024
      : 16 * 1024;
    completions().register(this.deviceId, this);
    // The process-wide capture (USBKIT_CAPTURE, captureAll), if on; a
    // device's own `capture` open option replaces it.
    this.capture = processTap(usbfs.ids.devnode ?? "", this);
  }

  /** Describes the device in error messages. */
  get describe(): () => string {
    return this.usbfs.describe;
  }
  set describe(f: () => string) {
    this.usbfs.describe = f;
  }

  /** Ids for the udev hint. */
  get ids(): DeviceIds {
    return this.usbfs.ids;
  }
  set ids(ids: DeviceIds) {
    this.usbfs.ids = ids;
  }

  /** True once usbfs reported the device gone. */
  get gone(): boolean {
    return this.usbfs.gone;
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
    return this.usbfs.disconnectedError(what);
  }

  /**
   * Submits one URB with its data in `buffer` (or none). Returns the slot.
   * Throws on a submit error (nothing is then in flight for this URB).
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
    return this.submitAt(
      owner,
      index,
      type,
      endpoint,
      flags,
      buffer?.kind === "array" ? buffer.array : null,
      buffer?.kind === "mapped" ? buffer.base : null,
      buffer?.offset ?? 0,
      length,
      packets,
      isoLengths,
      isoStart,
    );
  }

  /**
   * {@linkcode submit} without the `UrbBuffer` object: the data is at
   * `offset` in `array` (the kernel copies) or in the mapped region `base`,
   * or nowhere when both are null. Nothing is allocated.
   */
  submitAt(
    owner: UrbOwner,
    index: number,
    type: number,
    endpoint: number,
    flags: number,
    array: Uint8Array<ArrayBuffer> | null,
    base: Deno.PointerObject | null,
    offset: number,
    length: number,
    packets: number,
    isoLengths?: ArrayLike<number>,
    isoStart = 0,
  ): number {
    if (this.gone) throw this.disconnectedError("submitting a transfer");
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
      r = base !== null
        ? this.usbfs.submitMapped(
          slot,
          type,
          endpoint,
          flags,
          base,
          offset,
          length,
          packets,
        )
        : this.usbfs.submit(
          slot,
          type,
          endpoint,
          flags,
          array,
          array === null ? 0 : offset,
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
      throw this.usbfs.error(
        r,
        `submitting a transfer to endpoint ${hex(endpoint)}`,
      );
    }
    this.#owners[slot] = owner;
    this.#ownerIndex[slot] = index;
    if (this.capture !== undefined) {
      this.capture.submitted(
        slot,
        type,
        endpoint,
        flags,
        array,
        base,
        offset,
        length,
        packets,
      );
    }
    return slot;
  }

  /** Asks the kernel to give back a URB now (it completes with -ENOENT). */
  discard(slot: number): void {
    this.usbfs.discard(slot);
  }

  /** Byte offset of slot `slot`'s iso packet descriptor `i` in {@linkcode slab}. */
  isoDescOffset(slot: number, i: number): number {
    const l = this.layout;
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
    if (this.capture !== undefined) {
      // Before the owner: it may resubmit, and the slot's iso results must
      // be read before the slot is reused.
      this.capture.completed(slot, status, actualLength, errorCount);
    }
    try {
      owner?.urbDone(index, status, actualLength, errorCount, slot);
    } finally {
      // The slot is reused only after its owner has read its iso descriptors.
      this.#free[this.#freeTop++] = slot;
    }
  }

  /** CompletionSink: usbfs reports the device gone. */
  deviceGone(): void {
    this.usbfs.markGone();
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
      interfaceNumber === undefined ||
      (t.runsOn ? t.runsOn(interfaceNumber) : t.tag === interfaceNumber)
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
