/**
 * Zero-copy transfer buffers: memory mapped on the usbfs fd
 * (USBDEVFS_CAP_MMAP, kernel commit f7d34b445abc), pooled per device, with the
 * kernel's ownership rule enforced in the language.
 *
 * A URB whose buffer lies in such memory skips the copy between kernel and
 * user space, and allocating once and reusing avoids failures when kernel
 * memory is fragmented. The kernel's rule is that outgoing data must not
 * change until the transfer completes; usbkit detaches every user-visible
 * view of a buffer when it is submitted (its `byteLength` becomes 0), and
 * hands out a fresh view when the transfer completes. A buffer whose `bytes`
 * nobody read since its last transfer has no user-visible view, so sending
 * it again detaches nothing and makes no new view (a view read while it is in
 * flight is empty all the same). Views are also detached before the memory
 * is unmapped, so a stale view cannot crash the process.
 *
 * @module
 */

import { Capability } from "./capabilities.ts";
import type { UrbBuffer, UrbEngine } from "./engine.ts";
import { Errno, errorFromErrno, UsbError } from "./errors.ts";

const PAGE = 4096;

/** Options of `Device.allocBuffer`. */
export interface AllocBufferOptions {
  /**
   * `false` forces ordinary memory (the fallback path) even when usbfs can
   * map memory. Default: map when the kernel offers it.
   */
  zeroCopy?: boolean;
}

/**
 * A transfer buffer from `Device.allocBuffer(size)`.
 *
 * @example Zero-copy OUT: fill, send, and see the view detached while in flight
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * // The bench's Loopback gadget: what bulk OUT 0x02 gets comes back on IN 0x81.
 * await using dev = await open("0525:a4ab");
 * const iface = await dev.claimInterface(0);
 * const ep = iface.endpoint(0x02);
 * const buf = dev.allocBuffer(4096);
 * buf.bytes.fill(7);
 * const pending = ep.transferOut(buf);
 * assert.equal(buf.bytes.byteLength, 0); // the kernel owns it now
 * await pending;
 * assert.equal(buf.bytes.byteLength, 4096); // yours again
 * const echo = await iface.endpoint(0x81).transferIn(4096, { timeout: 1000 });
 * assert.ok(echo.data.every((b) => b === 7));
 * buf.release();
 * ```
 */
export class UsbBuffer {
  /** Usable bytes. */
  readonly size: number;
  /** True for usbfs-mapped memory (zero-copy); false for ordinary memory. */
  readonly zeroCopy: boolean;
  /** Why this buffer is not zero-copy, when it is not. */
  readonly fallbackReason: string | undefined;
  readonly #pool: BufferPool;
  /** Mapped region (zero-copy) and its mapped length. */
  readonly #base: Deno.PointerObject | null;
  /** Bytes mapped for this buffer (0 when it is not zero-copy). */
  readonly mappedBytes: number;
  #ab: ArrayBuffer;
  #view: Uint8Array<ArrayBuffer>;
  /**
   * Mapped memory: true once `bytes` handed out the current view, so user
   * code may hold it (or a view over the same ArrayBuffer). While false, no
   * code outside this object can reach the memory, and a transfer need not
   * detach it: that saves an ArrayBuffer per transfer when the same buffer
   * is sent again and again untouched.
   */
  #exposed = false;
  /** Mapped memory: the current ArrayBuffer was detached (a fresh one is due). */
  #detached = false;
  /** Fallback memory while the kernel owns it. */
  #held: Uint8Array<ArrayBuffer> | null = null;
  #inFlight = false;
  #released = false;

  /**
   * True for a real UsbBuffer (a brand check: an object that only looks like
   * one, or a Proxy of one, is not).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { UsbBuffer } from "./buffer.ts";
   * assert.equal(UsbBuffer.is({ size: 4, bytes: new Uint8Array(4) }), false);
   * ```
   */
  static is(value: unknown): value is UsbBuffer {
    return typeof value === "object" && value !== null && #inFlight in value;
  }

  /** Made by the pool; use `Device.allocBuffer`. */
  constructor(
    pool: BufferPool,
    size: number,
    base: Deno.PointerObject | null,
    mappedBytes: number,
    fallbackReason?: string,
  ) {
    this.#pool = pool;
    this.size = size;
    this.#base = base;
    this.mappedBytes = mappedBytes;
    this.zeroCopy = base !== null;
    this.fallbackReason = fallbackReason;
    this.#ab = base !== null
      ? Deno.UnsafePointerView.getArrayBuffer(base, size)
      : new ArrayBuffer(size);
    this.#view = new Uint8Array(this.#ab);
    // `size` and `mappedBytes` decide what the kernel may touch: they must
    // not be writable from outside.
    Object.freeze(this);
  }

  /**
   * The buffer's bytes. While a transfer owns the buffer this view, and every
   * view taken earlier, has byteLength 0: writes go nowhere.
   */
  get bytes(): Uint8Array<ArrayBuffer> {
    if (this.#inFlight) {
      // Not detached at acquire because nobody held a view: detach now, so
      // the view handed out is empty while the kernel owns the memory.
      if (!this.#detached && this.#base !== null) this.#detachMapped();
    } else this.#exposed = true;
    return this.#view;
  }

  /** True while the kernel owns the buffer. */
  get inFlight(): boolean {
    return this.#inFlight;
  }

  /** True once released or unmapped. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Hands the buffer to a transfer: detaches every user view, and returns
   * where the URBs' data is. Used by Endpoint; not for direct use.
   */
  acquire(what: string): void {
    if (this.#released) {
      throw new UsbError(
        "invalid-argument",
        `${what}: the UsbBuffer was released`,
        {
          hint: "allocate a new buffer with device.allocBuffer(size)",
        },
      );
    }
    if (this.#inFlight) {
      throw new UsbError(
        "invalid-argument",
        `${what}: the UsbBuffer is already in flight`,
        {
          hint:
            "a buffer belongs to one transfer at a time; wait for it, or allocate another",
        },
      );
    }
    this.#pool.checkOwner(this, what);
    this.#inFlight = true;
    if (this.#base !== null) {
      // Views handed out lose the memory; if none was, there is none to
      // detach (see `#exposed`).
      if (this.#exposed) this.#detachMapped();
    } else {
      // Move the memory out from under the user's views, without a copy.
      this.#held = new Uint8Array(this.#ab.transfer());
    }
  }

  /**
   * Where byte `offset` of this buffer is, for a URB (the transfer code of
   * this package).
   *
   * @internal
   */
  urbBuffer(offset: number): UrbBuffer {
    if (this.#base !== null) {
      return { kind: "mapped", base: this.#base, offset };
    }
    return { kind: "array", array: this.#held!, offset };
  }

  /**
   * While in flight, the ordinary memory the kernel copies to and from
   * (null for mapped memory, whose region is {@linkcode base}).
   */
  get kernelArray(): Uint8Array<ArrayBuffer> | null {
    return this.#held;
  }

  /** The transfer is over: a fresh view comes back. Used by Endpoint. */
  complete(): void {
    if (!this.#inFlight) return;
    this.#inFlight = false;
    if (this.#released) return;
    if (this.#base !== null) {
      // Never handed out since the last fresh view: it is still ours.
      if (!this.#detached) return;
      this.#ab = Deno.UnsafePointerView.getArrayBuffer(this.#base, this.size);
      this.#detached = false;
      this.#exposed = false;
    } else {
      this.#ab = this.#held!.buffer;
      this.#held = null;
    }
    this.#view = new Uint8Array(this.#ab);
  }

  #detachMapped(): void {
    this.#ab.transfer(0);
    this.#detached = true;
  }

  /**
   * Gives the buffer back to its device's pool for reuse. Its views are
   * detached. A buffer in flight is released when its transfer completes.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * const buf = dev.allocBuffer(4096);
   * buf.release();
   * ```
   */
  release(): void {
    if (this.#released) return;
    if (this.#inFlight) {
      throw new UsbError(
        "invalid-argument",
        "release(): the UsbBuffer is still in flight",
        {
          hint: "await the transfer first",
        },
      );
    }
    this.#detach();
    this.#pool.giveBack(this);
  }

  /** Detaches views and marks released; the pool unmaps or reuses the memory. */
  #detach(): void {
    this.#released = true;
    if (!this.#ab.detached) this.#ab.transfer(0);
    this.#held = null;
  }

  /** Used by the pool before it unmaps: no view may outlive the mapping. */
  invalidate(): void {
    if (!this.#released) this.#detach();
  }

  /** The mapped region, for the pool. */
  get base(): Deno.PointerObject | null {
    return this.#base;
  }
}

/** Options for a device's buffer pool. */
export interface BufferPoolOptions {
  /** Cap on mapped bytes for this device, pooled or in use. Default 64 MiB. */
  maxBufferBytes?: number;
}

/**
 * The buffers of one device: mapped regions are allocated once and reused.
 * Not part of the public API; Device owns one.
 */
export class BufferPool {
  readonly #engine: UrbEngine;
  readonly maxBytes: number;
  #mapped = 0;
  #free = new Map<number, Deno.PointerObject[]>();
  #live = new Set<UsbBuffer>();
  #closed = false;

  constructor(engine: UrbEngine, options: BufferPoolOptions = {}) {
    this.#engine = engine;
    this.maxBytes = options.maxBufferBytes ?? 64 * 1024 * 1024;
  }

  /** Mapped bytes, in use or pooled. */
  get mappedBytes(): number {
    return this.#mapped;
  }

  /**
   * Allocates a buffer; see `Device.allocBuffer`, which checks the
   * arguments (`size` an integer from 1 to 2³¹−1).
   */
  alloc(size: number, options: AllocBufferOptions = {}): UsbBuffer {
    if (this.#closed) {
      throw new UsbError(
        "invalid-argument",
        "allocBuffer: the device was closed",
      );
    }
    const capMmap = (this.#engine.capabilities & Capability.MMAP) !== 0;
    if (options.zeroCopy === false || !capMmap) {
      const why = options.zeroCopy === false
        ? "zeroCopy: false was requested"
        : "this kernel has no USBDEVFS_CAP_MMAP";
      return this.#track(this.#ordinary(size, why));
    }
    const bytes = Math.ceil(size / PAGE) * PAGE;
    const reuse = this.#free.get(bytes)?.pop();
    if (reuse) return this.#track(new UsbBuffer(this, size, reuse, bytes));
    if (this.#mapped + bytes > this.maxBytes) {
      this.#trim();
      if (this.#mapped + bytes > this.maxBytes) {
        throw new UsbError(
          "no-memory",
          `allocBuffer(${size}): the device's buffer pool cap of ${this.maxBytes} bytes is reached ` +
            `(${this.#mapped} bytes mapped)`,
          {
            hint:
              "release buffers you no longer need, or open the device with a larger { maxBufferBytes }",
          },
        );
      }
    }
    const base = this.#engine.usbfs.mmap(bytes);
    if (typeof base === "number") {
      const errno = base;
      if (errno === -Errno.ENOMEM) {
        this.#trim();
        const e = errorFromErrno(errno, `allocBuffer(${size})`);
        throw new UsbError(
          "no-memory",
          `allocBuffer(${size}): the kernel's usbfs memory limit (usbfs_memory_mb) is reached`,
          { errno: Errno.ENOMEM, hint: e.hint ?? "" },
        );
      }
      if (errno === -Errno.ENODEV) {
        throw this.#engine.disconnectedError("allocBuffer");
      }
      // Any other failure: ordinary memory, same API, visible in zeroCopy.
      return this.#track(
        this.#ordinary(
          size,
          `mmap on usbfs failed: ${errorFromErrno(errno, "mmap").message}`,
        ),
      );
    }
    this.#mapped += bytes;
    return this.#track(new UsbBuffer(this, size, base, bytes));
  }

  /** A buffer of ordinary memory; no-memory when JavaScript has none. */
  #ordinary(size: number, why: string): UsbBuffer {
    try {
      return new UsbBuffer(this, size, null, 0, why);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new UsbError(
        "no-memory",
        `allocBuffer(${size}): JavaScript could not allocate ${size} bytes`,
        { hint: "use smaller buffers or fewer of them", cause: e },
      );
    }
  }

  #track(b: UsbBuffer): UsbBuffer {
    this.#live.add(b);
    return b;
  }

  /** Throws when a buffer from another device is used here. */
  checkOwner(b: UsbBuffer, what: string): void {
    if (!this.#live.has(b)) {
      throw new UsbError(
        "invalid-argument",
        `${what}: the UsbBuffer belongs to another device`,
        {
          hint: "allocate buffers with the device they are used on",
        },
      );
    }
  }

  /** A released buffer's region goes back to the free list. */
  giveBack(b: UsbBuffer): void {
    this.#live.delete(b);
    if (b.base !== null) {
      if (this.#closed) this.#unmap(b.base, b.mappedBytes);
      else {
        const list = this.#free.get(b.mappedBytes) ?? [];
        list.push(b.base);
        this.#free.set(b.mappedBytes, list);
      }
    }
  }

  #unmap(base: Deno.PointerObject, bytes: number): void {
    this.#engine.usbfs.munmap(base, bytes);
    this.#mapped -= bytes;
  }

  /** Unmaps every pooled (free) region. */
  #trim(): void {
    for (const [bytes, list] of this.#free) {
      for (const base of list) this.#unmap(base, bytes);
    }
    this.#free.clear();
  }

  /** Detaches every view and unmaps everything: the device is closing. */
  close(): void {
    this.#closed = true;
    for (const b of this.#live) {
      b.invalidate();
      if (b.base !== null) this.#unmap(b.base, b.mappedBytes);
    }
    this.#live.clear();
    this.#trim();
  }
}
