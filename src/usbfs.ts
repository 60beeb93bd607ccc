/**
 * The usbfs handle: the one module in src/ that calls the helper
 * (helper/, loaded by src/ffi.ts). Every helper call for an open device, the
 * process-wide completion ring and the helper-side streams go through here,
 * and a negative errno becomes a `UsbError` here, in one place (nusb's
 * platform/linux_usbfs/usbfs.rs is the model).
 *
 * @module
 */

// ---- section A: device handle, ioctls, submit/discard, mmap, probe, USB/IP (engine refactor) ----

import { cString, helper, type HelperSymbols, type Layout } from "./ffi.ts";
import {
  Errno,
  type ErrnoContext,
  errorFromErrno,
  UsbError,
  type UsbErrorCode,
} from "./errors.ts";

/** The ids and node of a device, for the hints of its errors. */
export type DeviceIds = Pick<
  ErrnoContext,
  "vendorId" | "productId" | "devnode"
>;

/**
 * The usbfs handle of one open device: the helper's device pointer and every
 * call made on it. A negative errno becomes a `UsbError` in
 * {@linkcode Usbfs.check} (ENODEV also marks the device gone); calls whose
 * errno the caller inspects first return it as it is.
 *
 * Not part of the public API: the URB engine (src/engine.ts), Device,
 * Interface, Endpoint and BufferPool use it.
 *
 * @example
 * ```ts ignore
 * // Needs a usbfs device node (and claims interface 0): open() uses it, and every
 * // test in tests/device/ runs it on the bench in the guest.
 * import { Usbfs } from "./usbfs.ts";
 * const usbfs = Usbfs.open("/dev/bus/usb/002/002", 64, {});
 * usbfs.check(usbfs.claim(0), "claiming interface 0");
 * ```
 */
export class Usbfs {
  /** The helper's device (`usbkit_open`'s result). */
  readonly pointer: Deno.PointerObject;
  /** Offsets and flags reported by the helper. */
  readonly layout: Layout;
  /** Ids for the hints of errors (the udev rule, `fuser`). */
  ids: DeviceIds;
  /** Describes the device in error messages. */
  describe: () => string = () => "the device";
  readonly #sym: HelperSymbols;
  #gone = false;
  #closed = false;

  private constructor(
    sym: HelperSymbols,
    layout: Layout,
    pointer: Deno.PointerObject,
    ids: DeviceIds,
  ) {
    this.#sym = sym;
    this.layout = layout;
    this.pointer = pointer;
    this.ids = ids;
  }

  /**
   * Opens a usbfs node with `maxUrbs` URB slots (starting the helper's
   * reaper first).
   *
   * @throws {UsbError} `not-found` when the node is gone, else from the errno
   */
  static open(devnode: string, maxUrbs: number, ids: DeviceIds): Usbfs {
    const h = helper();
    // usbkit_open needs the reaper machinery; creating it is idempotent.
    const init = h.sym.usbkit_init();
    if (init < 0) {
      throw errorFromErrno(init, "starting the usbkit reaper thread");
    }
    const err = new Int32Array(1);
    const pointer = h.sym.usbkit_open(cString(devnode), maxUrbs, err);
    if (pointer === null) {
      const e = err[0] ?? -Errno.EIO;
      if (e === -Errno.ENOENT) {
        throw new UsbError(
          "not-found",
          `${devnode} does not exist: the device is gone`,
          {
            errno: Errno.ENOENT,
            hint: "run `deno task usb list` to see what is attached",
          },
        );
      }
      throw errorFromErrno(e, `cannot open ${devnode}`, ids);
    }
    return new Usbfs(h.sym, h.layout, pointer, ids);
  }

  /** True once a call reported ENODEV, or {@linkcode markGone} was called. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Marks the device gone (the completion ring said so). */
  markGone(): void {
    this.#gone = true;
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

  /**
   * The one place a helper return value becomes an error: returns `r` when
   * it is not negative; ENODEV throws {@linkcode disconnectedError} (and
   * marks the device gone); any other -errno throws from `errorFromErrno`
   * with the device's ids and `holder` in the hint.
   */
  check(r: number, what: string, holder?: string): number {
    if (r >= 0) return r;
    throw this.error(r, what, holder);
  }

  /** The error for -errno `r` (see {@linkcode check}). */
  error(r: number, what: string, holder?: string): UsbError {
    if (r === -Errno.ENODEV) {
      this.#gone = true;
      return this.disconnectedError(what);
    }
    return errorFromErrno(r, what, {
      ...this.ids,
      ...(holder === undefined ? {} : { holder }),
    });
  }

  /** The id completion records carry for this device. */
  deviceId(): number {
    return this.#sym.usbkit_device_id(this.pointer);
  }

  /** The URB slots, as bytes (the helper owns the memory until close). */
  slab(): ArrayBuffer {
    const p = this.#sym.usbkit_slab(this.pointer)!;
    return Deno.UnsafePointerView.getArrayBuffer(
      p,
      this.#sym.usbkit_slab_bytes(this.pointer),
    );
  }

  /** USBDEVFS_GET_CAPABILITIES bits (0 when the kernel has none). */
  capabilities(): number {
    const caps = new Uint32Array(1);
    this.#sym.usbkit_get_capabilities(this.pointer, caps);
    return caps[0] ?? 0;
  }

  /** USBDEVFS_GET_SPEED: a USB_SPEED_* value. */
  speed(): number {
    return this.#sym.usbkit_get_speed(this.pointer);
  }

  /** USBDEVFS_CLAIMINTERFACE: 0 or -errno. */
  claim(n: number): number {
    return this.#sym.usbkit_claim_interface(this.pointer, n);
  }

  /** USBDEVFS_RELEASEINTERFACE: 0 or -errno. */
  release(n: number): number {
    return this.#sym.usbkit_release_interface(this.pointer, n);
  }

  /** USBDEVFS_DISCONNECT_CLAIM (detach the kernel driver, claim): 0 or -errno. */
  disconnectClaim(n: number): number {
    return this.#sym.usbkit_disconnect_claim(this.pointer, n);
  }

  /** The driver bound to interface `n` ("usbfs" for a usbfs claim), or undefined. */
  driver(n: number): string | undefined {
    const out = new Uint8Array(256);
    const r = this.#sym.usbkit_get_driver(this.pointer, n, out, out.length);
    if (r < 0) return undefined;
    return new TextDecoder().decode(out.subarray(0, r));
  }

  /** USBDEVFS_CONNECT (the kernel probes drivers for interface `n`): 0 or -errno. */
  connectDriver(n: number): Promise<number> {
    return this.#sym.usbkit_connect_driver(this.pointer, n);
  }

  /** {@linkcode connectDriver}, synchronous: for cleanup at exit. */
  connectDriverSync(n: number): number {
    return this.#sym.usbkit_connect_driver_sync(this.pointer, n);
  }

  /** USBDEVFS_SETINTERFACE; throws on failure. */
  async setInterface(n: number, alt: number, what: string): Promise<void> {
    this.check(
      await this.#sym.usbkit_set_interface(this.pointer, n, alt),
      what,
    );
  }

  /** USBDEVFS_SETCONFIGURATION; throws on failure. */
  async setConfiguration(value: number, what: string): Promise<void> {
    this.check(
      await this.#sym.usbkit_set_configuration(this.pointer, value),
      what,
    );
  }

  /** USBDEVFS_CLEAR_HALT; throws on failure. */
  async clearHalt(endpoint: number, what: string): Promise<void> {
    this.check(
      await this.#sym.usbkit_clear_halt(this.pointer, endpoint),
      what,
    );
  }

  /** USBDEVFS_RESET; throws on failure. */
  async reset(what: string): Promise<void> {
    this.check(await this.#sym.usbkit_reset(this.pointer), what);
  }

  /** Closes the fd and frees the device (after its URBs are reaped). Once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sym.usbkit_close(this.pointer);
  }

  /**
   * USBDEVFS_SUBMITURB in slot `slot`, the data in a JS array at `offset`
   * (the kernel copies it), or none. 0 or -errno.
   */
  submit(
    slot: number,
    type: number,
    endpoint: number,
    flags: number,
    array: Uint8Array<ArrayBuffer> | null,
    offset: number,
    length: number,
    packets: number,
  ): number {
    return this.#sym.usbkit_submit(
      this.pointer,
      slot,
      type,
      endpoint,
      flags,
      array,
      offset,
      length,
      packets,
    );
  }

  /** {@linkcode submit} with the data in a mapped region at `base + offset`. */
  submitMapped(
    slot: number,
    type: number,
    endpoint: number,
    flags: number,
    base: Deno.PointerObject,
    offset: number,
    length: number,
    packets: number,
  ): number {
    return this.#sym.usbkit_submit_mapped(
      this.pointer,
      slot,
      type,
      endpoint,
      flags,
      base,
      offset,
      length,
      packets,
    );
  }

  /** USBDEVFS_DISCARDURB for slot `slot` (it then completes with -ENOENT). */
  discard(slot: number): number {
    return this.#sym.usbkit_discard(this.pointer, slot);
  }

  /** URBs of this device the kernel has not given back yet. */
  inflight(): number {
    return this.#sym.usbkit_inflight(this.pointer);
  }

  /**
   * Maps `bytes` of DMA-able memory on the usbfs fd. Returns the region, or
   * the -errno when the kernel refused.
   */
  mmap(bytes: number): Deno.PointerObject | number {
    const err = new Int32Array(1);
    const base = this.#sym.usbkit_mmap(this.pointer, bytes, err);
    return base ?? (err[0] ?? -Errno.EIO);
  }

  /** Unmaps a region from {@linkcode mmap}. */
  munmap(base: Deno.PointerObject, bytes: number): void {
    this.#sym.usbkit_munmap(base, bytes);
  }
}

/**
 * USBDEVFS_GET_CAPABILITIES and USBDEVFS_GET_SPEED of a usbfs node, opened
 * and closed for this. Returns `[bits, USB_SPEED_*]`.
 *
 * @throws {UsbError} from the errno, with `ctx` in the hint
 */
export function probe(devnode: string, ctx: ErrnoContext): [number, number] {
  const out = new Int32Array(2);
  const r = helper().sym.usbkit_probe(cString(devnode), out);
  if (r < 0) {
    throw errorFromErrno(r, `cannot read the capabilities of ${devnode}`, ctx);
  }
  return [out[0] ?? 0, out[1] ?? 0];
}

/**
 * The error for a failed USB/IP helper call (vhci_hcd's sysfs files and the
 * helper's socket): codes from the errno, and root as the hint for EACCES.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usbipError } from "./usbfs.ts";
 * assert.equal(usbipError(-16, "attaching").code, "busy");
 * ```
 */
export function usbipError(
  errno: number,
  what: string,
  hint?: string,
): UsbError {
  const n = Math.abs(errno);
  const code: UsbErrorCode = n === Errno.EPERM || n === Errno.EACCES
    ? "access-denied"
    : n === Errno.ENOENT
    ? "not-found"
    : n === Errno.EBUSY
    ? "busy"
    : n === Errno.ETIMEDOUT
    ? "timeout"
    : "io";
  return new UsbError(code, `${what} (errno ${n})`, {
    errno: n,
    ...(hint !== undefined
      ? { hint }
      : code === "access-denied"
      ? { hint: "vhci_hcd's sysfs files can only be written as root" }
      : {}),
  });
}

/**
 * Listens on a Unix socket at `path` (for vhci_hcd's end of a local USB/IP
 * attach). Returns the listening fd.
 *
 * @throws {UsbError} from {@linkcode usbipError}
 */
export function usbipListen(path: string): number {
  const fd = helper().sym.usbkit_usbip_listen(cString(path));
  if (fd < 0) {
    throw usbipError(fd, `cannot listen on the unix socket ${path}`);
  }
  return fd;
}

/**
 * Accepts one connection on `listener` within `timeoutMs`. Returns its fd.
 *
 * @throws {UsbError} from {@linkcode usbipError}
 */
export async function usbipAccept(
  listener: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const fd = await helper().sym.usbkit_usbip_accept(listener, timeoutMs);
  if (fd < 0) throw usbipError(fd, what);
  return fd;
}

/** Closes an fd from {@linkcode usbipListen} or {@linkcode usbipAccept}. */
export function usbipClose(fd: number): void {
  helper().sym.usbkit_usbip_close(fd);
}

/** Writes `text` to a sysfs file (vhci_hcd's attach/detach): 0 or -errno. */
export function sysfsWrite(path: string, text: string): Promise<number> {
  const bytes = new TextEncoder().encode(text);
  return helper().sym.usbkit_usbip_write_file(
    cString(path),
    bytes,
    bytes.length,
  );
}

// ---- end of section A ----

// ---- section B: completion ring, wakeups and helper-side streams (data path) ----

/**
 * The process's completion ring (helper/src/ring.rs) as JavaScript reads
 * it: the shared-state handle and long-lived views of the records.
 */
export interface RingMemory {
  /** The helper's shared state, for the ring calls below. */
  readonly handle: Deno.PointerObject;
  /** The records, as 32-bit words. */
  readonly words: Int32Array<ArrayBuffer>;
  /** The same memory as f64: a record's reap time is at word 6 (index `base / 2 + 3`). */
  readonly times: Float64Array<ArrayBuffer>;
  /** Records in the ring, minus one: indexes wrap with this mask. */
  readonly mask: number;
  /** 32-bit words per record. */
  readonly stride: number;
}

/**
 * Starts the helper's reaper and ring (idempotent) and maps the records.
 *
 * @throws {UsbError} from the errno when the reaper cannot start
 */
export function ringOpen(): RingMemory {
  const { sym, layout } = helper();
  const r = sym.usbkit_init();
  if (r < 0) throw errorFromErrno(r, "starting the usbkit reaper thread");
  const handle = sym.usbkit_ring_handle();
  const records = sym.usbkit_ring_records();
  if (handle === null || records === null) {
    throw new UsbError(
      "io",
      "the usbkit completion ring is missing after init",
    );
  }
  const ab = Deno.UnsafePointerView.getArrayBuffer(
    records,
    sym.usbkit_ring_bytes(),
  );
  return {
    handle,
    words: new Int32Array(ab),
    times: new Float64Array(ab),
    mask: layout.ringCapacity - 1,
    stride: layout.recordWords,
  };
}

/** Every record before `tail` was read; returns the producer's head. */
export function ringAck(handle: Deno.PointerObject, tail: number): number {
  return helper().sym.usbkit_ring_ack(handle, tail);
}

/**
 * The parked wait (a `nonblocking` call): resolves when records are
 * published, the doorbell rings or `timeoutMs` passes (-1: never).
 */
export function ringWait(
  handle: Deno.PointerObject,
  timeoutMs: number,
): Promise<number> {
  return helper().sym.usbkit_wait(handle, timeoutMs);
}

/**
 * Spins in native code (yielding the CPU each round) until the head moves
 * past `tail` or `maxUs` microseconds pass; returns the head.
 */
export function ringSpin(
  handle: Deno.PointerObject,
  tail: number,
  maxUs: number,
): number {
  return helper().sym.usbkit_ring_spin(handle, tail, maxUs);
}

/** Wakes the parked wait. */
export function ringDoorbell(handle: Deno.PointerObject): void {
  helper().sym.usbkit_ring_doorbell(handle);
}

/**
 * Detaches the views of the ring, then stops the reaper and frees the ring
 * (refused by the helper while devices are open).
 */
export function ringShutdown(ring: RingMemory): void {
  ring.words.buffer.transfer(0);
  helper().sym.usbkit_shutdown();
}

/** CLOCK_MONOTONIC in milliseconds: the clock of a record's reap time. */
export function monotonicMs(): number {
  return helper().sym.usbkit_now_ms();
}

/** Control block words of a helper-side stream (helper/src/stream.rs CTL_*). */
export const StreamCtl = {
  /** URBs the kernel holds now. */
  queued: 0,
  /** Return queue: entries JavaScript wrote (free-running). */
  retHead: 1,
  /** 0 running, 1 halted by an error, 2 stopped. */
  state: 3,
  /** The first failed submit, as -errno. */
  errno: 4,
  /** URBs submitted in all. */
  submits: 5,
  /** 1 when the buffers are usbfs-mapped. */
  mapped: 6,
  /** Header words: the return ring (n words), then the OUT lengths (n words). */
  header: 8,
} as const;

/** What a helper-side stream moves. */
export interface StreamSpec {
  /** `USBDEVFS_URB_TYPE_*`. */
  readonly type: number;
  /** Endpoint address. */
  readonly endpoint: number;
  /** URB flags (ISO_ASAP for iso). */
  readonly flags: number;
  /** Bytes per buffer. */
  readonly size: number;
  /** URBs kept queued. */
  readonly inFlight: number;
  /** Buffers in all: `inFlight` plus the spares JavaScript may hold. */
  readonly buffers: number;
  /** Iso packet lengths per URB; empty otherwise. */
  readonly isoLengths: readonly number[];
  /** false forces ordinary memory. */
  readonly zeroCopy: boolean;
}

/**
 * A helper-side stream (helper/src/stream.rs): the helper's reaper
 * resubmits its URBs from a pool of buffers that JavaScript hands back
 * through the control block's return queue.
 *
 * @example
 * ```ts ignore
 * // Needs an open device: Endpoint.stream() uses it, and tests/device/stream_test.ts
 * // runs that on the bench in the guest.
 * import { HelperStream } from "./usbfs.ts";
 * declare const usbfs: import("./usbfs.ts").Usbfs;
 * const s = HelperStream.open(usbfs, { type: 3, endpoint: 0x81, flags: 0, size: 65536, inFlight: 16, buffers: 32, isoLengths: [], zeroCopy: true }, "stream");
 * s.refill(); // the first 16 URBs
 * ```
 */
export class HelperStream {
  /** The helper's stream. */
  readonly pointer: Deno.PointerObject;
  /** The id its ring records carry. */
  readonly id: number;
  /** The control block (see {@linkcode StreamCtl}). */
  readonly ctl: Int32Array<ArrayBuffer>;
  /** Its URB structs (`slotSize` bytes each, one per buffer): iso results. */
  readonly urbs: DataView<ArrayBuffer>;
  /** True when the buffers are usbfs-mapped (zero-copy). */
  readonly mapped: boolean;
  readonly #usbfs: Usbfs;
  readonly #buffers: Deno.PointerObject[];
  readonly #count: number;
  #freed = false;

  private constructor(usbfs: Usbfs, pointer: Deno.PointerObject, n: number) {
    const sym = helper().sym;
    this.#usbfs = usbfs;
    this.pointer = pointer;
    this.#count = n;
    this.id = sym.usbkit_stream_id(pointer);
    this.ctl = new Int32Array(
      Deno.UnsafePointerView.getArrayBuffer(
        sym.usbkit_stream_ctl(pointer)!,
        sym.usbkit_stream_ctl_bytes(pointer),
      ),
    );
    this.urbs = new DataView(
      Deno.UnsafePointerView.getArrayBuffer(
        sym.usbkit_stream_urbs(pointer)!,
        sym.usbkit_stream_urbs_bytes(pointer),
      ),
    );
    this.mapped = this.ctl[StreamCtl.mapped] === 1;
    this.#buffers = [];
    for (let i = 0; i < n; i++) {
      this.#buffers.push(sym.usbkit_stream_buffer(pointer, i)!);
    }
  }

  /**
   * Creates the stream and its buffers; nothing is submitted yet.
   *
   * @throws {UsbError} `no-memory` naming usbfs_memory_mb when the kernel
   * refuses the mapped memory, `disconnected` on a gone device
   */
  static open(usbfs: Usbfs, spec: StreamSpec, what: string): HelperStream {
    if (usbfs.gone) throw usbfs.disconnectedError(what);
    const err = new Int32Array(1);
    const lengths = new Uint32Array(spec.isoLengths);
    const p = helper().sym.usbkit_stream_open(
      usbfs.pointer,
      spec.type,
      spec.endpoint,
      spec.flags,
      spec.size,
      spec.inFlight,
      spec.buffers,
      lengths,
      lengths.length,
      spec.zeroCopy ? 1 : 0,
      err,
    );
    if (p === null) {
      const e = err[0] ?? -Errno.EIO;
      if (e === -Errno.ENOMEM) {
        throw new UsbError(
          "no-memory",
          `${what}: ${spec.buffers} buffers of ${spec.size} bytes exceed usbfs memory`,
          {
            errno: Errno.ENOMEM,
            hint:
              "the kernel's usbfs_memory_mb limit is reached: use fewer or smaller buffers, " +
              "or raise /sys/module/usbcore/parameters/usbfs_memory_mb",
          },
        );
      }
      throw usbfs.error(e, what);
    }
    return new HelperStream(usbfs, p, spec.buffers);
  }

  /**
   * A fresh view of buffer `i`'s first `length` bytes: the view the
   * ownership rule needs (detach it before the buffer goes back).
   */
  view(i: number, length: number): Uint8Array<ArrayBuffer> {
    return new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(this.#buffers[i]!, length),
    );
  }

  /** Submits returned buffers up to `inFlight` queued: the count, or -errno. */
  refill(): number {
    return helper().sym.usbkit_stream_refill(this.#usbfs.pointer, this.pointer);
  }

  /**
   * Stops feeding the kernel and discards what it holds. Returns how many
   * URBs were queued: when more than 0, an end record follows the last.
   */
  stop(): number {
    return helper().sym.usbkit_stream_stop(this.#usbfs.pointer, this.pointer);
  }

  /**
   * Frees the stream once stopped and drained. Every view of its buffers
   * must be detached by now; the control block's and URBs' views are
   * detached here.
   */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.ctl.buffer.transfer(0);
    this.urbs.buffer.transfer(0);
    this.#buffers.length = 0;
    const r = helper().sym.usbkit_stream_free(
      this.#usbfs.pointer,
      this.pointer,
    );
    if (r < 0) {
      // Stopped but not drained: a bug in the caller. The helper keeps the
      // memory (the device's close frees it); say so instead of crashing.
      reportError(
        new UsbError(
          "io",
          `freeing a stream of ${this.#count} buffers: errno ${-r}`,
        ),
      );
    }
  }
}
// ---- end of section B ----

// ---- section C: hotplug (netlink uevents) ----

/** One queued event of a {@linkcode HotplugListener}. */
export interface HotplugEntry {
  /** The uevent as the kernel sent it. */
  readonly message: Uint8Array;
  /** sysfs attributes read by the helper at the event (add and bind only). */
  readonly files: ReadonlyMap<string, Uint8Array | undefined>;
}

/** Decodes a queue entry (helper/src/netlink.rs `entry`). */
function parseEntry(bytes: Uint8Array): HotplugEntry {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const mlen = view.getUint32(0, true);
  const message = bytes.slice(4, 4 + mlen);
  const files = new Map<string, Uint8Array | undefined>();
  let at = 4 + mlen;
  const count = at + 4 <= bytes.length ? view.getUint32(at, true) : 0;
  at += 4;
  const text = new TextDecoder();
  for (let i = 0; i < count && at + 8 <= bytes.length; i++) {
    const nlen = view.getUint32(at, true);
    const name = text.decode(bytes.subarray(at + 4, at + 4 + nlen));
    at += 4 + nlen;
    const dlen = view.getInt32(at, true);
    at += 4;
    if (dlen < 0) {
      files.set(name, undefined);
    } else {
      files.set(name, bytes.slice(at, at + dlen));
      at += dlen;
    }
  }
  return { message, files };
}

/**
 * A kernel uevent listener of the helper (helper/src/netlink.rs): a
 * NETLINK_KOBJECT_UEVENT socket on the kernel's group and the thread that
 * drains it into a queue of USB device events.
 *
 * Not part of the public API: src/hotplug.ts uses it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HotplugListener } from "./usbfs.ts";
 * const l = HotplugListener.open(0, 0);
 * assert.ok(l.rcvbuf > 0);
 * if ((await l.wait(100)) > 0) console.log(l.read().events.length); // a device came or went
 * await l.close();
 * assert.ok((await l.wait(100)) < 0); // stopped
 * ```
 */
export class HotplugListener {
  /** The socket buffer the kernel granted, in bytes. */
  readonly rcvbuf: number;
  readonly #pointer: Deno.PointerObject;
  readonly #buf = new Uint8Array(64 * 1024);
  readonly #info = new Int32Array(3);
  #waiting: Promise<number> | undefined;
  #stopped = false;

  private constructor(pointer: Deno.PointerObject, rcvbuf: number) {
    this.#pointer = pointer;
    this.rcvbuf = rcvbuf;
  }

  /**
   * Opens the socket and starts the thread. `rcvbuf` bytes of socket
   * buffer and `queueLimit` queued events, 0 for the defaults (8 MiB,
   * 65536).
   *
   * @throws {UsbError} from the errno when the socket cannot be made
   */
  static open(rcvbuf: number, queueLimit: number): HotplugListener {
    const out = new Int32Array(2);
    const p = helper().sym.usbkit_hotplug_open(rcvbuf, queueLimit, out);
    if (p === null) {
      throw errorFromErrno(
        out[0] ?? -Errno.EIO,
        "opening the kernel's uevent socket (NETLINK_KOBJECT_UEVENT)",
      );
    }
    return new HotplugListener(p, out[1] ?? 0);
  }

  /**
   * Waits (off the JS thread) until events are queued or lost: resolves
   * with their count (plus one for an overrun), 0 after `timeoutMs` (-1:
   * never), or a negative number once stopped. One wait at a time.
   */
  wait(timeoutMs: number): Promise<number> {
    if (this.#stopped) return Promise.resolve(-Errno.ESHUTDOWN);
    const w = helper().sym.usbkit_hotplug_wait(this.#pointer, timeoutMs);
    this.#waiting = w;
    return w;
  }

  /**
   * Takes the queued events (oldest first): each raw uevent message and,
   * for an add or a bind, the device's sysfs attributes the helper read
   * when the event arrived (by path relative to the device's directory;
   * undefined: missing). Also whether some were lost since the last read.
   */
  read(): { events: HotplugEntry[]; overrun: boolean; overruns: number } {
    const events: HotplugEntry[] = [];
    let overrun = false;
    let overruns = 0;
    if (this.#stopped) return { events, overrun, overruns };
    const sym = helper().sym;
    for (;;) {
      const n = sym.usbkit_hotplug_read(
        this.#pointer,
        this.#buf,
        this.#buf.length,
        this.#info,
      );
      overrun ||= this.#info[0] === 1;
      overruns = this.#info[2] ?? 0;
      const view = new DataView(this.#buf.buffer, 0, n);
      for (let at = 0; at + 4 <= n;) {
        const len = view.getUint32(at, true);
        events.push(parseEntry(this.#buf.subarray(at + 4, at + 4 + len)));
        at += 4 + len;
      }
      if (n === 0 || (this.#info[1] ?? 0) === 0) break;
    }
    return { events, overrun, overruns };
  }

  /**
   * Stops the thread, closes the socket, waits for a parked
   * {@linkcode wait} to return and frees the listener. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const sym = helper().sym;
    sym.usbkit_hotplug_stop(this.#pointer);
    await this.#waiting;
    this.#waiting = undefined;
    sym.usbkit_hotplug_free(this.#pointer);
  }
}

// ---- end of section C ----

// ---- section D: kernel capture (usbmon's binary interface, helper/src/usbmon.rs) ----

/**
 * An open `/dev/usbmonN`: events of bus N (0: every bus) as the kernel's
 * usbmon records them. src/capture/kernel.ts writes them to a file.
 *
 * @example
 * ```ts ignore
 * // Ignored: needs root and the usbmon module; captureKernel uses it, and
 * // tests/device/capture_test.ts runs that in the guest.
 * import { UsbmonReader } from "./usbfs.ts";
 * const mon = UsbmonReader.open(0, 4 << 20);
 * const buf = new Uint8Array(1 << 20);
 * const n = await mon.read(buf, 200); // events: 64-byte header + len_cap bytes each
 * mon.close();
 * ```
 */
export class UsbmonReader {
  /** The bus read (0: all). */
  readonly bus: number;
  #fd: number;
  #reading: Promise<number> | undefined;
  readonly #stats = new Uint32Array(2);

  private constructor(bus: number, fd: number) {
    this.bus = bus;
    this.#fd = fd;
  }

  /**
   * Opens bus `bus`'s usbmon node and asks for a ring of `ringBytes`.
   *
   * @throws {UsbError} `access-denied` when not root, `not-found` when
   * usbmon is not loaded or the bus does not exist (the hint says what to
   * do)
   */
  static open(bus: number, ringBytes: number): UsbmonReader {
    const r = helper().sym.usbkit_usbmon_open(bus, ringBytes);
    if (r >= 0) return new UsbmonReader(bus, r);
    const node = `/dev/usbmon${bus}`;
    if (r === -Errno.EACCES || r === -Errno.EPERM) {
      throw new UsbError(
        "access-denied",
        `cannot open ${node}: permission denied`,
        {
          errno: -r,
          hint: "usbmon's nodes are root's: run the capture as root (sudo)",
        },
      );
    }
    if (r === -Errno.ENOENT || r === -Errno.ENODEV || r === -Errno.ENXIO) {
      let loaded = false;
      try {
        loaded = Deno.statSync("/sys/module/usbmon").isDirectory;
      } catch {
        // not loaded
      }
      throw new UsbError(
        "not-found",
        loaded
          ? `${node} does not exist: there is no USB bus ${bus}`
          : `${node} does not exist: the usbmon module is not loaded`,
        {
          errno: -r,
          hint: loaded
            ? "list the buses with `usb list`; bus 0 captures them all"
            : "load it with `sudo modprobe usbmon` (and create the nodes with udev or mknod if /dev has no usbmon*)",
        },
      );
    }
    throw errorFromErrno(r, `opening ${node}`);
  }

  /**
   * Waits up to `timeoutMs` for events and copies whole events into `buf`:
   * the bytes written (0 when none came). Parked off the event loop.
   */
  async read(buf: Uint8Array<ArrayBuffer>, timeoutMs: number): Promise<number> {
    if (this.#fd < 0) return 0;
    this.#reading = helper().sym.usbkit_usbmon_read(
      this.#fd,
      buf,
      buf.length,
      timeoutMs,
    );
    const r = await this.#reading;
    this.#reading = undefined;
    if (r < 0) throw errorFromErrno(r, `reading /dev/usbmon${this.bus}`);
    return r;
  }

  /** Events queued now, and dropped since the last call (the kernel resets that count). */
  stats(): { queued: number; dropped: number } {
    if (this.#fd < 0) return { queued: 0, dropped: 0 };
    const r = helper().sym.usbkit_usbmon_stats(this.#fd, this.#stats);
    if (r < 0) throw errorFromErrno(r, `usbmon statistics of bus ${this.bus}`);
    return { queued: this.#stats[0]!, dropped: this.#stats[1]! };
  }

  /** Waits for a read in progress, then closes the node. Idempotent. */
  async close(): Promise<void> {
    if (this.#fd < 0) return;
    await this.#reading?.catch(() => 0);
    helper().sym.usbkit_usbmon_close(this.#fd);
    this.#fd = -1;
  }
}

// ---- end of section D ----
