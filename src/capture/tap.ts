/**
 * Where usbkit's own URBs become usbmon events: one {@linkcode CaptureTap}
 * per open device, called by the URB engine (src/engine.ts) when a URB is
 * submitted and when it is reaped, and by the stream core (src/stream.ts)
 * for each URB of a helper-fed stream.
 *
 * The events follow what the kernel's usbmon records for the same URB
 * (drivers/usb/mon/mon_bin.c, `mon_bin_event`), so a capture of usbkit and
 * a capture of the bus read the same in Wireshark:
 * - a submit event `'S'` has status -EINPROGRESS and `len_urb` the bytes
 *   asked for; OUT data follows it (flag `0`), IN has none (flag `'<'`);
 * - a completion `'C'` has the URB status and `len_urb` the bytes moved;
 *   IN data follows it, OUT has none (flag `'>'`);
 * - a control submit carries its setup packet (flag_setup 0), its length
 *   is `wLength`, and its endpoint has 0x80 when the data stage is IN;
 * - an iso event carries one descriptor per packet (status, -EXDEV at
 *   submit as usb_submit_urb sets it; offset; length asked for at submit,
 *   received at completion), `error_count` and
 *   `numdesc`; an iso IN completion's data runs to the end of the last
 *   packet that received anything, gaps included, as usbmon's does.
 *
 * Per-slot records are typed arrays sized to the device's URB slots when
 * the tap is made: recording allocates nothing but a short-lived view for
 * copies of more than 64 bytes.
 *
 * Streams are resubmitted by the helper's reaper thread, which JavaScript
 * does not see: {@linkcode CaptureTap.streamUrb} records each stream URB
 * when its completion reaches JavaScript, as a submit immediately followed
 * by its completion (same id, same timestamp), rather than at the moment
 * the helper submitted it. Every URB and its data is there; only the time
 * it spent in the kernel is not.
 *
 * @module
 */

import type { Layout } from "../ffi.ts";
import type { Capture } from "./capture.ts";
import {
  KernelUrbFlag,
  STATUS_IN_PROGRESS,
  USBMON_HEADER_BYTES,
  USBMON_ISODESC_BYTES,
  UsbmonField,
} from "./usbmon_header.ts";

const S = 0x53, C = 0x43;
const ISO = 0, CONTROL = 2;
/** -EXDEV: an iso packet's status from submit until the HCD fills it. */
const ISO_NOT_DONE = -18;

/**
 * What a tap reads of the URB engine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TapEngine } from "./tap.ts";
 * const slots = (e: TapEngine) => e.slotCount;
 * assert.equal(typeof slots, "function");
 * ```
 */
export interface TapEngine {
  /** URB slots. */
  readonly slotCount: number;
  /** The URB slots as bytes. */
  readonly slab: DataView<ArrayBuffer>;
  /** Offsets reported by the helper. */
  readonly layout: Layout;
}

/**
 * The data of a stream buffer, as src/stream.ts hands it to a tap.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TapStream } from "./tap.ts";
 * const buf = new Uint8Array(8);
 * const s: TapStream = { view: (_i, n) => new Uint8Array(buf.slice(0, n).buffer), urbs: new DataView(new ArrayBuffer(0)) };
 * assert.equal(s.view(0, 4).length, 4);
 * ```
 */
export interface TapStream {
  /** A fresh view of buffer `i`'s first `length` bytes (detached by the tap). */
  view(i: number, length: number): Uint8Array<ArrayBuffer>;
  /** The stream's URB structs, `slotSize` bytes each (iso results). */
  readonly urbs: DataView<ArrayBuffer>;
}

/**
 * Records the URBs of one open device into a {@linkcode Capture}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Capture } from "./capture.ts";
 * import { readCapture } from "./read.ts";
 * import { CaptureTap, type TapEngine } from "./tap.ts";
 * import { UrbType } from "../engine.ts";
 * import { helper } from "../ffi.ts";
 * // What the URB engine passes: its slots and the helper's layout (no device needed)
 * const layout = helper().layout;
 * const engine: TapEngine = { slotCount: 4, slab: new DataView(new ArrayBuffer(4 * layout.slotSize)), layout };
 * const path = Deno.makeTempFileSync({ suffix: ".pcapng" });
 * const capture = Capture.open(path);
 * const tap = new CaptureTap(capture, 1, 2, engine);
 * const array = new Uint8Array(512);
 * tap.submitted(0, UrbType.bulk, 0x81, 0, array, null, 0, 512, 0);
 * array.fill(0x5a); // the device's answer
 * tap.completed(0, 0, 512, 0);
 * capture.close();
 * const [s, c] = readCapture(Deno.readFileSync(path));
 * assert.deepEqual([s!.event.type, c!.event.type], ["S", "C"]);
 * assert.equal(c!.event.devnum, 2);
 * Deno.removeSync(path);
 * ```
 */
export class CaptureTap {
  /** The file. */
  readonly capture: Capture;
  /** Bus number of the device. */
  readonly busnum: number;
  /** Its address. */
  readonly devnum: number;
  readonly #engine: TapEngine;
  readonly #id: Float64Array;
  readonly #type: Uint8Array;
  readonly #epnum: Uint8Array;
  readonly #flags: Uint32Array;
  readonly #offset: Int32Array;
  readonly #length: Int32Array;
  readonly #packets: Int32Array;
  readonly #array: (Uint8Array | null)[];
  readonly #base: (Deno.PointerObject | null)[];

  /**
   * @param capture the file
   * @param busnum the device's bus
   * @param devnum its address
   * @param engine its URB engine
   */
  constructor(
    capture: Capture,
    busnum: number,
    devnum: number,
    engine: TapEngine,
  ) {
    this.capture = capture;
    this.busnum = busnum;
    this.devnum = devnum;
    this.#engine = engine;
    const n = engine.slotCount;
    this.#id = new Float64Array(n);
    this.#type = new Uint8Array(n);
    this.#epnum = new Uint8Array(n);
    this.#flags = new Uint32Array(n);
    this.#offset = new Int32Array(n);
    this.#length = new Int32Array(n);
    this.#packets = new Int32Array(n);
    this.#array = new Array(n).fill(null);
    this.#base = new Array(n).fill(null);
  }

  /** The kernel's transfer_flags for usbfs flags (devio.c, proc_do_submiturb). */
  #kernelFlags(flags: number, dirIn: boolean): number {
    const l = this.#engine.layout;
    let k = dirIn ? KernelUrbFlag.dirIn : 0;
    if (flags & l.flagShortNotOk) k |= KernelUrbFlag.shortNotOk;
    if (flags & l.flagIsoAsap) k |= KernelUrbFlag.isoAsap;
    if (flags & l.flagZeroPacket) k |= KernelUrbFlag.zeroPacket;
    if (flags & l.flagNoInterrupt) k |= KernelUrbFlag.noInterrupt;
    return k;
  }

  /** Copies URB bytes (at `offset` of the array or the mapped region) to `to`. */
  #copy(
    to: number,
    array: Uint8Array | null,
    base: Deno.PointerObject | null,
    offset: number,
    length: number,
  ): void {
    if (length <= 0) return;
    if (base !== null) {
      this.capture.copyFromPointer(to, base, offset, length);
    } else if (array !== null) {
      this.capture.copyIn(to, array, offset, length);
    }
  }

  /**
   * The engine submitted URB `slot`: `length` bytes at `offset` of `array`
   * or of the mapped region `base` (a control URB's first 8 bytes are its
   * setup packet), with `packets` iso packets whose lengths are in the
   * slot's descriptors.
   */
  submitted(
    slot: number,
    type: number,
    endpoint: number,
    flags: number,
    array: Uint8Array | null,
    base: Deno.PointerObject | null,
    offset: number,
    length: number,
    packets: number,
  ): void {
    const cap = this.capture;
    let epnum = endpoint & 0x8f;
    let setupType = 0;
    if (type === CONTROL) {
      setupType = this.#byte(array, base, offset);
      epnum = (endpoint & 0x0f) | (setupType & 0x80);
    }
    const dirIn = (epnum & 0x80) !== 0;
    const id = cap.nextId();
    this.#id[slot] = id;
    this.#type[slot] = type;
    this.#epnum[slot] = epnum;
    this.#flags[slot] = this.#kernelFlags(flags, dirIn);
    this.#offset[slot] = offset;
    this.#length[slot] = length;
    this.#packets[slot] = packets;
    this.#array[slot] = array;
    this.#base[slot] = base;
    const dataOffset = type === CONTROL ? offset + 8 : offset;
    const urbLen = type === CONTROL ? length - 8 : length;
    const ndesc = type === ISO ? Math.min(packets, 128) : 0;
    const wire = dirIn ? 0 : urbLen;
    const kept = Math.min(wire, cap.snapLength);
    const descBytes = ndesc * USBMON_ISODESC_BYTES;
    const at = cap.beginEvent(
      descBytes + kept,
      S,
      type,
      epnum,
      this.devnum,
      this.busnum,
      id,
    );
    if (at < 0) return;
    const v = cap.view, F = UsbmonField;
    v.setInt32(at + F.status, STATUS_IN_PROGRESS, true);
    v.setUint32(at + F.lenUrb, urbLen, true);
    v.setUint32(at + F.lenCap, descBytes + kept, true);
    v.setUint32(at + F.xferFlags, this.#flags[slot]!, true);
    if (type === CONTROL) {
      this.#copy(at + F.setup, array, base, offset, 8);
    } else {
      cap.bytes[at + F.flagSetup] = 0x2d; // '-'
    }
    if (type === ISO) {
      v.setInt32(at + F.setup + 4, packets, true);
      v.setUint32(at + F.ndesc, ndesc, true);
      this.#isoDescriptors(at + USBMON_HEADER_BYTES, slot, ndesc, true, null);
    }
    if (dirIn) cap.bytes[at + F.flagData] = 0x3c; // '<'
    else if (kept === 0 && urbLen === 0) cap.bytes[at + F.flagData] = 0;
    this.#copy(
      at + USBMON_HEADER_BYTES + descBytes,
      array,
      base,
      dataOffset,
      kept,
    );
    cap.endEvent(at, descBytes + kept, descBytes + wire);
  }

  #byte(
    array: Uint8Array | null,
    base: Deno.PointerObject | null,
    offset: number,
  ): number {
    if (base !== null) return new Deno.UnsafePointerView(base).getUint8(offset);
    return array?.[offset] ?? 0;
  }

  /**
   * Writes `ndesc` iso descriptors at `to` from the URB's descriptors in
   * `urbs` (the engine's slab, or a stream's URB structs): offsets are the
   * running sum of the lengths asked for. Returns the end of the last
   * packet that received data (for an IN completion).
   */
  #isoDescriptors(
    to: number,
    slot: number,
    ndesc: number,
    submit: boolean,
    urbs: DataView | null,
  ): number {
    const l = this.#engine.layout;
    const src = urbs ?? this.#engine.slab;
    const v = this.capture.view;
    const first = slot * l.slotSize + l.isoDescOffset;
    let offset = 0, end = 0;
    for (let i = 0; i < ndesc; i++, to += USBMON_ISODESC_BYTES) {
      const d = first + i * l.isoDescSize;
      const length = src.getUint32(d, true);
      const actual = src.getUint32(d + 4, true);
      // usb_submit_urb (urb.c) sets every packet's status to -EXDEV before
      // the HCD (and usbmon) sees the URB.
      v.setInt32(to, submit ? ISO_NOT_DONE : src.getInt32(d + 8, true), true);
      v.setUint32(to + 4, offset, true);
      v.setUint32(to + 8, submit ? length : actual, true);
      v.setUint32(to + 12, 0, true);
      if (actual !== 0 && offset + actual > end) end = offset + actual;
      offset += length;
    }
    return end;
  }

  /**
   * The engine reaped URB `slot` (before its owner sees it, while its
   * descriptors are still in the slot).
   */
  completed(
    slot: number,
    status: number,
    actualLength: number,
    errorCount: number,
  ): void {
    const type = this.#type[slot]!;
    const epnum = this.#epnum[slot]!;
    const array = this.#array[slot]!;
    const base = this.#base[slot]!;
    this.#array[slot] = null;
    this.#base[slot] = null;
    const offset = this.#offset[slot]!;
    const dataOffset = type === CONTROL ? offset + 8 : offset;
    const urbLen = type === CONTROL
      ? this.#length[slot]! - 8
      : this.#length[slot]!;
    this.#complete(
      this.#id[slot]!,
      type,
      epnum,
      this.#flags[slot]!,
      status,
      actualLength,
      errorCount,
      slot,
      this.#packets[slot]!,
      null,
      array,
      base,
      dataOffset,
      urbLen,
    );
  }

  #complete(
    id: number,
    type: number,
    epnum: number,
    flags: number,
    status: number,
    actualLength: number,
    errorCount: number,
    slot: number,
    packets: number,
    urbs: DataView | null,
    array: Uint8Array | null,
    base: Deno.PointerObject | null,
    dataOffset: number,
    urbLen: number,
  ): void {
    const cap = this.capture;
    const dirIn = (epnum & 0x80) !== 0;
    const ndesc = type === ISO ? Math.min(packets, 128) : 0;
    const descBytes = ndesc * USBMON_ISODESC_BYTES;
    // The room needed is known only after the descriptors are read: ask
    // for the most it can be.
    let wire = dirIn ? Math.min(actualLength, urbLen) : 0;
    if (dirIn && type === ISO) wire = urbLen;
    const at = cap.beginEvent(
      descBytes + Math.min(wire, cap.snapLength),
      C,
      type,
      epnum,
      this.devnum,
      this.busnum,
      id,
    );
    if (at < 0) return;
    const v = cap.view, F = UsbmonField;
    v.setInt32(at + F.status, status, true);
    v.setUint32(at + F.lenUrb, actualLength, true);
    v.setUint32(at + F.xferFlags, flags, true);
    cap.bytes[at + F.flagSetup] = 0x2d; // '-'
    if (type === ISO) {
      v.setInt32(at + F.setup, errorCount, true);
      v.setInt32(at + F.setup + 4, packets, true);
      v.setUint32(at + F.ndesc, ndesc, true);
      const l = this.#engine.layout;
      const start = slot * l.slotSize + l.urbStartFrame;
      v.setInt32(
        at + F.startFrame,
        (urbs ?? this.#engine.slab).getInt32(start, true),
        true,
      );
      const end = this.#isoDescriptors(
        at + USBMON_HEADER_BYTES,
        slot,
        ndesc,
        false,
        urbs,
      );
      if (dirIn) wire = Math.min(end, urbLen);
    }
    const kept = Math.min(wire, cap.snapLength);
    v.setUint32(at + F.lenCap, descBytes + kept, true);
    if (!dirIn) cap.bytes[at + F.flagData] = 0x3e; // '>'
    this.#copy(
      at + USBMON_HEADER_BYTES + descBytes,
      array,
      base,
      dataOffset,
      kept,
    );
    cap.endEvent(at, descBytes + kept, descBytes + wire);
  }

  /**
   * A URB of a helper-fed stream completed and JavaScript got it: records
   * its submit and its completion (see the module docs). `submitLength`
   * is the bytes the URB asked for (OUT: the length handed back), `packets`
   * the iso packets per URB (0 otherwise).
   */
  streamUrb(
    stream: TapStream,
    index: number,
    type: number,
    endpoint: number,
    flags: number,
    submitLength: number,
    packets: number,
    status: number,
    actualLength: number,
  ): void {
    const cap = this.capture;
    const dirIn = (endpoint & 0x80) !== 0;
    const l = this.#engine.layout;
    const view = stream.view(index, submitLength);
    try {
      const id = cap.nextId();
      const kflags = this.#kernelFlags(flags, dirIn);
      const ndesc = type === ISO ? Math.min(packets, 128) : 0;
      const descBytes = ndesc * USBMON_ISODESC_BYTES;
      const wire = dirIn ? 0 : submitLength;
      const kept = Math.min(wire, cap.snapLength);
      const at = cap.beginEvent(
        descBytes + kept,
        S,
        type,
        endpoint,
        this.devnum,
        this.busnum,
        id,
      );
      if (at < 0) return;
      const v = cap.view, F = UsbmonField;
      v.setInt32(at + F.status, STATUS_IN_PROGRESS, true);
      v.setUint32(at + F.lenUrb, submitLength, true);
      v.setUint32(at + F.lenCap, descBytes + kept, true);
      v.setUint32(at + F.xferFlags, kflags, true);
      cap.bytes[at + F.flagSetup] = 0x2d;
      if (type === ISO) {
        v.setInt32(at + F.setup + 4, packets, true);
        v.setUint32(at + F.ndesc, ndesc, true);
        this.#isoDescriptors(
          at + USBMON_HEADER_BYTES,
          index,
          ndesc,
          true,
          stream.urbs,
        );
      }
      if (dirIn) cap.bytes[at + F.flagData] = 0x3c;
      cap.copyIn(at + USBMON_HEADER_BYTES + descBytes, view, 0, kept);
      cap.endEvent(at, descBytes + kept, descBytes + wire);
      this.#complete(
        id,
        type,
        endpoint,
        kflags,
        status,
        actualLength,
        type === ISO
          ? stream.urbs.getInt32(
            index * l.slotSize + l.urbErrorCount,
            true,
          )
          : 0,
        index,
        packets,
        stream.urbs,
        view,
        null,
        0,
        submitLength,
      );
    } finally {
      view.buffer.transfer(0);
    }
  }
}
