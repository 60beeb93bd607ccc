/**
 * An endpoint of a claimed interface: where bulk, interrupt and isochronous
 * data moves.
 *
 * @module
 */

import type { EndpointDescriptor, EndpointType } from "./descriptors.ts";
import { UsbError } from "./errors.ts";
import { type BufferPool, UsbBuffer } from "./buffer.ts";
import {
  checkIsoPacketLengths,
  type IsoInResult,
  type IsoOutResult,
  IsoTransfer,
} from "./isochronous.ts";
import {
  checkIsoStreamOptions,
  IsoInStream,
  type IsoStreamOptions,
} from "./iso_stream.ts";
import {
  checkStreamOptions,
  checkWritableOptions,
  InStream,
  readableOf,
  type StreamOptions,
  type WritableOptions,
} from "./stream.ts";
import { OutStream, type OutStreamOptions, writableOf } from "./out_stream.ts";
import { Capability } from "./capabilities.ts";
import { type UrbEngine, UrbType } from "./engine.ts";
import { Transfer } from "./transfer.ts";
import type { InResult, OutResult, TransferOptions } from "./urb.ts";
import {
  checkBoolean,
  checkBytes,
  checkInteger,
  checkTransferOptions,
  hex,
  invalidArgument,
  MAX_TRANSFER_BYTES,
  plainBytes,
  readTransferOptions,
} from "./validate.ts";

/** What an Endpoint needs from its interface. */
export interface EndpointOwner {
  /** Interface number, for messages. */
  readonly interfaceNumber: number;
  /** False once the interface was released or the device closed. */
  readonly claimed: boolean;
}

/** A Uint8Array the FFI can take: on an ArrayBuffer (a SharedArrayBuffer is copied). */
function ownBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes);
}

/** `new Uint8Array(n)`, with no-memory instead of a RangeError. */
function allocate(n: number, what: string): Uint8Array<ArrayBuffer> {
  try {
    return new Uint8Array(n);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new UsbError(
      "no-memory",
      `${what}: JavaScript could not allocate ${n} bytes`,
      {
        hint: "read less at a time, or into a UsbBuffer from allocBuffer()",
        cause: e,
      },
    );
  }
}

/**
 * An endpoint of a claimed interface, from `Interface.endpoint(address)`.
 *
 * @example Reading the SourceSink pattern
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * await using dev = await open("0525:a4a0"); // SourceSink: IN 0x81 sources data
 * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
 * const result = await iface.endpoint(0x81).transferIn(1024, { timeout: 1000 });
 * assert.equal(result.status, "ok");
 * assert.equal(result.data.length, 1024);
 * ```
 */
export class Endpoint {
  /** The endpoint address, with the direction bit (0x81 is IN 1). */
  readonly address: number;
  /** `"in"` (device to host) or `"out"`. */
  readonly direction: "in" | "out";
  /** The transfer type. */
  readonly type: EndpointType;
  /** The endpoint number, without the direction bit (0x81 is 1). */
  readonly endpointNumber: number;
  /**
   * wMaxPacketSize without the high-bandwidth bits (WebUSB's
   * `USBEndpoint.packetSize`, and {@linkcode EndpointDescriptor.packetSize}).
   */
  readonly packetSize: number;
  /** The parsed endpoint descriptor. */
  readonly descriptor: EndpointDescriptor;
  readonly #engine: UrbEngine;
  readonly #pool: BufferPool;
  readonly #owner: EndpointOwner;
  /** For messages, made once: "bulk IN on endpoint 0x81". */
  readonly #what: string;
  /** The URB type of transferIn/transferOut. */
  readonly #urbType: number;
  /** Bulk with BULK_CONTINUATION: split transfers end as one. */
  readonly #continuation: boolean;

  /** Made by Interface; not for direct use. */
  constructor(
    engine: UrbEngine,
    pool: BufferPool,
    owner: EndpointOwner,
    descriptor: EndpointDescriptor,
  ) {
    this.#engine = engine;
    this.#pool = pool;
    this.#owner = owner;
    this.descriptor = descriptor;
    this.address = descriptor.address;
    this.direction = descriptor.direction;
    this.type = descriptor.type;
    this.endpointNumber = descriptor.address & 0x0f;
    this.packetSize = descriptor.packetSize;
    this.#what = `${this.type} ${this.direction.toUpperCase()} on endpoint ${
      hex(this.address)
    }`;
    this.#urbType = this.type === "bulk" ? UrbType.bulk : UrbType.interrupt;
    this.#continuation = this.type === "bulk" &&
      (engine.capabilities & Capability.BULK_CONTINUATION) !== 0;
    // The address and type go to the helper: they must not be writable.
    Object.freeze(this);
  }
  /**
   * wMaxPacketSize without the high-bandwidth bits.
   *
   * @deprecated Use {@linkcode Endpoint.packetSize} (WebUSB's name); this
   * alias goes in the next release.
   */
  get maxPacketSize(): number {
    return this.packetSize;
  }

  /** Throws unless the endpoint can be used now (claimed, connected). */
  checkUsable(method: string): void {
    if (!this.#owner.claimed) {
      throw new UsbError(
        "invalid-argument",
        `${method} on endpoint ${
          hex(this.address)
        }: interface ${this.#owner.interfaceNumber} is not claimed ` +
          `(it was released, or the device was closed)`,
        {
          hint:
            `call claimInterface(${this.#owner.interfaceNumber}) again and take the endpoint from it`,
        },
      );
    }
    if (this.#engine.gone) throw this.#engine.disconnectedError(method);
  }

  #check(dir: "in" | "out", method: string, iso = false): void {
    this.checkUsable(method);
    if (this.direction !== dir) {
      throw new UsbError(
        "invalid-argument",
        `${method} on endpoint ${
          hex(this.address)
        }, which is an ${this.direction.toUpperCase()} endpoint`,
        {
          hint: `use ${
            this.direction === "in" ? "transferIn" : "transferOut"
          } on it, or pick an ${dir.toUpperCase()} endpoint`,
        },
      );
    }
    if (iso !== (this.type === "isochronous")) {
      throw new UsbError(
        "invalid-argument",
        `${method} on ${this.type} endpoint ${hex(this.address)}`,
        {
          hint: iso
            ? `use transfer${
              dir === "in" ? "In" : "Out"
            } on ${this.type} endpoints`
            : `use isochronousTransfer${dir === "in" ? "In" : "Out"}`,
        },
      );
    }
  }

  /**
   * Reads up to `length` bytes: a byte count (an integer from 0 to
   * 2147483647), or a UsbBuffer from `allocBuffer()` to read into (then
   * `options.length`, from 0 to its size, reads less than all of it).
   * Resolves when the device sent `length` bytes or a short packet. A
   * transfer larger than one URB is split and completes as one. Every
   * argument is checked first: a bad one rejects with `invalid-argument` and
   * nothing is submitted.
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
   * const { status, data } = await ep.transferIn(64 * 1024, { timeout: 1000 });
   * assert.equal(status, "ok");
   * assert.deepEqual([...data.subarray(0, 4)], [0, 1, 2, 3]);
   * ```
   */
  transferIn(
    length: number | UsbBuffer,
    options: TransferOptions & { length?: number } = {},
  ): Promise<InResult> {
    try {
      const o = readTransferOptions("transferIn", options, true, false);
      let mem: Uint8Array<ArrayBuffer> | UsbBuffer;
      let size: number;
      if (UsbBuffer.is(length)) {
        this.#checkBuffer("transferIn: length", length);
        size = this.#bufferLength(length, o.length, "transferIn");
        this.#check("in", "transferIn");
        mem = length;
      } else {
        size = checkInteger(
          "transferIn: length",
          length,
          0,
          MAX_TRANSFER_BYTES,
          "pass a byte count, or a UsbBuffer from device.allocBuffer()",
        );
        this.#noLengthOption("transferIn", o.length);
        this.#check("in", "transferIn");
        mem = allocate(size, "transferIn");
      }
      const t = Transfer.get(this.#engine, this.#owner.interfaceNumber);
      t.add(
        "in",
        this.#urbType,
        this.address,
        mem,
        0,
        size,
        this.#continuation,
        false,
        this.#what,
      );
      return t.start(o) as Promise<InResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes `data`: a Uint8Array (or another ArrayBuffer view, or an
   * ArrayBuffer), or a UsbBuffer (then `options.length`, from 0 to its size,
   * sends less than all of it). The kernel copies an array at submit, so it
   * may be reused as soon as this returns. `options.zeroPacket: true` ends
   * a transfer that fills its last packet with a zero-length packet. Every
   * argument is checked first: a bad one rejects with `invalid-argument` and
   * nothing is submitted.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * // The bench's Loopback gadget: what bulk OUT 0x02 gets comes back on IN 0x81.
   * await using dev = await open("0525:a4ab");
   * const iface = await dev.claimInterface(0);
   * const ep = iface.endpoint(0x02);
   * const { bytesWritten } = await ep.transferOut(new Uint8Array(512).fill(7));
   * assert.equal(bytesWritten, 512);
   * const echo = await iface.endpoint(0x81).transferIn(512, { timeout: 1000 });
   * assert.deepEqual(echo.data, new Uint8Array(512).fill(7));
   * ```
   */
  transferOut(
    data: Uint8Array | UsbBuffer,
    options: TransferOptions & { zeroPacket?: boolean; length?: number } = {},
  ): Promise<OutResult> {
    try {
      const o = readTransferOptions("transferOut", options, true, true);
      const zeroPacket = o.zeroPacket === undefined
        ? false
        : checkBoolean("transferOut: options.zeroPacket", o.zeroPacket)!;
      let mem: Uint8Array<ArrayBuffer> | UsbBuffer;
      let size: number;
      if (UsbBuffer.is(data)) {
        this.#checkBuffer("transferOut: data", data);
        size = this.#bufferLength(data, o.length, "transferOut");
        mem = data;
      } else {
        mem = ownBytes(plainBytes("transferOut: data", data));
        size = mem.length;
        this.#noLengthOption("transferOut", o.length);
      }
      this.#check("out", "transferOut");
      const t = Transfer.get(this.#engine, this.#owner.interfaceNumber);
      t.add(
        "out",
        this.#urbType,
        this.address,
        mem,
        0,
        size,
        this.#continuation,
        zeroPacket,
        this.#what,
      );
      return t.start(o) as Promise<OutResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Checks one request of `Device.transferBatch` against this endpoint and
   * adds it to `t`. `name` is the request, for messages: `"transferBatch:
   * requests[3]"`. Not for direct use.
   *
   * @internal
   */
  addToBatch(
    t: Transfer,
    name: string,
    dir: "in" | "out",
    mem: Uint8Array<ArrayBuffer> | UsbBuffer,
    length: number,
    interfaceNumber: number,
  ): void {
    this.checkUsable("transferBatch");
    if (this.direction !== dir) {
      throw new UsbError(
        "invalid-argument",
        `${name}.endpoint: ${
          hex(this.address)
        } is an ${this.direction.toUpperCase()} endpoint, ` +
          `but the request ${
            dir === "in" ? "reads ({ length })" : "writes ({ data })"
          }`,
        {
          hint: dir === "in"
            ? "an OUT request is { endpoint, data }"
            : "an IN request is { endpoint, length }",
        },
      );
    }
    if (this.type === "isochronous") {
      throw new UsbError(
        "invalid-argument",
        `${name}.endpoint: ${hex(this.address)} is an isochronous endpoint`,
        { hint: "transferBatch takes bulk and interrupt endpoints" },
      );
    }
    t.add(
      dir,
      this.#urbType,
      this.address,
      mem,
      0,
      length,
      this.#continuation,
      false,
      this.#what,
      false,
      interfaceNumber,
    );
  }

  /** `options.length` is for UsbBuffers: with an array or a count it is an error. */
  #noLengthOption(method: string, length: unknown): void {
    if (length !== undefined) {
      throw invalidArgument(
        `${method}: options.length`,
        length,
        "undefined unless the data is a UsbBuffer",
        "options.length says how much of a UsbBuffer to use",
      );
    }
  }

  /** How much of a UsbBuffer a transfer uses: `length`, or all of it. */
  #bufferLength(buf: UsbBuffer, length: unknown, method: string): number {
    if (length === undefined) return buf.size;
    return checkInteger(`${method}: options.length`, length, 0, buf.size);
  }

  /** A UsbBuffer argument must be live and free (the transfer re-checks as it takes it). */
  #checkBuffer(name: string, buf: UsbBuffer): void {
    if (buf.released) {
      throw invalidArgument(
        name,
        buf,
        "a UsbBuffer that was not released",
        "this UsbBuffer was released: allocate a new one with device.allocBuffer(size)",
      );
    }
    if (buf.inFlight) {
      throw invalidArgument(
        name,
        buf,
        "a UsbBuffer that no transfer owns",
        "this UsbBuffer is already in flight: a buffer belongs to one transfer at a time; wait for it, or allocate another",
      );
    }
  }

  /**
   * Isochronous IN: one packet per entry of `packetLengths` (a non-empty
   * array of integers from 0 to 98304, the kernel's per-packet limit). More
   * than 128 packets (the kernel's limit per URB) are split into several
   * URBs. Each packet's `data` holds exactly what arrived; `data`
   * concatenates only received bytes. `options.buffer` is a UsbBuffer to
   * receive into, at least as large as the packets together.
   *
   * @example
   * ```ts ignore
   * // Ignored: the bench gadgets have no isochronous endpoint (dummy_hcd drops
   * // them); tests/device/iso_test.ts makes these calls on an emulated device.
   * declare const ep: import("../mod.ts").Endpoint;
   * const r = await ep.isochronousTransferIn(new Array(32).fill(ep.packetSize));
   * console.log(r.packets.filter((p) => p.status === "ok").length, r.data.length);
   * ```
   */
  isochronousTransferIn(
    packetLengths: number[],
    options: TransferOptions & { buffer?: UsbBuffer } = {},
  ): Promise<IsoInResult> {
    try {
      const o = checkTransferOptions("isochronousTransferIn", options, [
        "buffer",
      ]);
      const lengths = this.#packetLengths(
        "isochronousTransferIn",
        packetLengths,
      );
      const total = lengths.reduce((a, b) => a + b, 0);
      const buffer = o.extra.buffer;
      if (buffer !== undefined) {
        if (!UsbBuffer.is(buffer)) {
          throw invalidArgument(
            "isochronousTransferIn: options.buffer",
            buffer,
            "a UsbBuffer from device.allocBuffer(), or undefined",
          );
        }
        this.#checkBuffer("isochronousTransferIn: options.buffer", buffer);
        if (buffer.size < total) {
          throw invalidArgument(
            "isochronousTransferIn: options.buffer",
            buffer,
            `a UsbBuffer of at least ${total} bytes (the packets together)`,
          );
        }
      }
      this.#check("in", "isochronousTransferIn", true);
      const t = new IsoTransfer(
        this.#engine,
        "in",
        `isochronous IN on endpoint ${hex(this.address)}`,
        buffer ?? allocate(total, "isochronousTransferIn"),
        lengths,
        this.#owner.interfaceNumber,
      );
      return t.start(this.address, o) as Promise<IsoInResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Isochronous OUT: `data` (bytes as for `transferOut`, or a UsbBuffer) is
   * cut into packets of `packetLengths` (a non-empty array of integers from
   * 0 to 98304); it must hold at least their sum.
   *
   * @example
   * ```ts ignore
   * // Ignored: the bench gadgets have no isochronous endpoint (dummy_hcd drops
   * // them); tests/device/iso_test.ts makes these calls on an emulated device.
   * declare const ep: import("../mod.ts").Endpoint;
   * const r = await ep.isochronousTransferOut(new Uint8Array(8 * 192), new Array(8).fill(192));
   * console.log(r.packets.every((p) => p.status === "ok"));
   * ```
   */
  isochronousTransferOut(
    data: Uint8Array | UsbBuffer,
    packetLengths: number[],
    options: TransferOptions = {},
  ): Promise<IsoOutResult> {
    try {
      const o = checkTransferOptions("isochronousTransferOut", options);
      const lengths = this.#packetLengths(
        "isochronousTransferOut",
        packetLengths,
      );
      const total = lengths.reduce((a, b) => a + b, 0);
      let mem: Uint8Array<ArrayBuffer> | UsbBuffer;
      if (UsbBuffer.is(data)) {
        this.#checkBuffer("isochronousTransferOut: data", data);
        if (data.size < total) {
          throw invalidArgument(
            "isochronousTransferOut: data",
            data,
            `at least ${total} bytes (the packets together)`,
          );
        }
        mem = data;
      } else {
        const bytes = checkBytes("isochronousTransferOut: data", data);
        if (bytes.length < total) {
          throw invalidArgument(
            "isochronousTransferOut: data",
            data,
            `at least ${total} bytes (the packets together)`,
          );
        }
        // A copy: the kernel reads it at submit, but only this much.
        mem = new Uint8Array(bytes.subarray(0, total));
      }
      this.#check("out", "isochronousTransferOut", true);
      const t = new IsoTransfer(
        this.#engine,
        "out",
        `isochronous OUT on endpoint ${hex(this.address)}`,
        mem,
        lengths,
        this.#owner.interfaceNumber,
      );
      return t.start(this.address, o) as Promise<IsoOutResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Checks iso packet lengths; returns a copy. */
  #packetLengths(method: string, value: unknown): number[] {
    return checkIsoPacketLengths(`${method}: packetLengths`, value);
  }

  /**
   * Streams isochronous IN with `inFlight` URBs always queued (see
   * `IsoStreamOptions`: `packets` per URB, `packetLength`, `inFlight`,
   * `signal`, `zeroCopy`, `concatenate`). Each result is one URB: per packet
   * its status, its length and a zero-copy view of exactly the bytes
   * received (never the stale bytes a short packet leaves in a reused
   * buffer), valid until the next iteration; then the buffer goes back to
   * the kernel. Breaking out of the loop cancels what is still queued;
   * closing the device or releasing the interface makes the loop throw a
   * `cancelled` UsbError. The options are checked first.
   *
   * @example
   * ```ts ignore
   * // Ignored: the bench gadgets have no isochronous endpoint (dummy_hcd drops
   * // them); tests/device/iso_test.ts makes these calls on an emulated device.
   * declare const ep: import("../mod.ts").Endpoint;
   * declare const samples: WritableStreamDefaultWriter<Uint8Array>;
   * let done = false;
   * for await (const urb of ep.isochronousStream({ packets: 32, inFlight: 8 })) {
   *   for (const p of urb.packets) if (p.status === "ok") samples.write(p.data);
   *   if (done) break;
   *   done = true;
   * }
   * ```
   */
  isochronousStream(options: IsoStreamOptions = {}): IsoInStream {
    const transactions = this.descriptor.companion === undefined
      ? this.descriptor.transactionsPerMicroframe
      : (this.descriptor.companion.maxBurst + 1) *
        this.descriptor.companion.mult;
    const o = checkIsoStreamOptions("isochronousStream", options, {
      maxInFlight: this.#engine.slotCount,
      maxPackets: this.#engine.layout.maxIsoPackets,
      packetLength: this.maxPacketSize * transactions,
    });
    this.#check("in", "isochronousStream", true);
    return new IsoInStream(
      this.#engine,
      this,
      this.#owner.interfaceNumber,
      o,
    );
  }

  /**
   * Streams IN transfers with `inFlight` always queued. Each chunk is a
   * zero-copy view, valid until the next iteration (`stream.keep()` copies
   * it). Breaking out of the loop cancels what is still queued; closing the
   * device or releasing the interface makes the loop throw a `cancelled`
   * UsbError. The options are checked first (see `StreamOptions`).
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
   * let total = 0;
   * for await (const chunk of ep.stream({ transferSize: 65536, inFlight: 16 })) {
   *   assert.equal(chunk[1], 1);
   *   total += chunk.length;
   *   if (total >= 1 << 20) break; // break cancels the URBs still queued
   * }
   * ```
   */
  stream(options: StreamOptions = {}): InStream {
    const o = checkStreamOptions("stream", options, this.#engine.slotCount);
    this.#check("in", "stream");
    return new InStream(
      this.#engine,
      this,
      this.#owner.interfaceNumber,
      o,
    );
  }

  /**
   * Streams OUT with `inFlight` transfers always queued, fed by the helper
   * (see `OutStreamOptions`: `transferSize` per send, `inFlight`, `signal`,
   * `zeroCopy`). `buffer()` lends a free buffer to fill; `send(length)`
   * detaches it and queues it; `close()` waits for everything sent and
   * resolves with the bytes written. The options are checked first.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * // The bench's Loopback gadget: what bulk OUT 0x02 gets comes back on IN 0x81.
   * await using dev = await open("0525:a4ab");
   * const iface = await dev.claimInterface(0);
   * const ep = iface.endpoint(0x02);
   * {
   *   await using out = ep.outStream({ transferSize: 4096, inFlight: 2 });
   *   const buf = await out.buffer();
   *   buf.fill(0x55);
   *   out.send(); // buf is detached: the kernel owns the memory now
   *   assert.equal(await out.close(), 4096);
   * }
   * const echo = await iface.endpoint(0x81).transferIn(4096, { timeout: 1000 });
   * assert.ok(echo.data.every((b) => b === 0x55));
   * ```
   */
  outStream(options: OutStreamOptions = {}): OutStream {
    const o = checkStreamOptions("outStream", options, this.#engine.slotCount);
    this.#check("out", "outStream");
    return new OutStream(this.#engine, this, this.#owner.interfaceNumber, o);
  }

  /**
   * A ReadableStream (byte stream) of this IN endpoint, 64 KiB × 16 in
   * flight. Chunks are copies. See {@linkcode openReadable} for options.
   */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.openReadable();
  }

  /**
   * A ReadableStream (byte stream) of this IN endpoint with stream options,
   * checked now (the transfers start at the first read).
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
   * let n = 0;
   * for await (const chunk of ep.openReadable({ transferSize: 4096, inFlight: 4 })) {
   *   n += chunk.length;
   *   if (n >= 65536) break; // cancels the stream
   * }
   * assert.ok(n >= 65536);
   * ```
   */
  openReadable(
    options: StreamOptions = {},
  ): ReadableStream<Uint8Array<ArrayBuffer>> {
    const o = checkStreamOptions(
      "openReadable",
      options,
      this.#engine.slotCount,
    );
    this.#check("in", "openReadable");
    return readableOf(() => {
      this.#check("in", "openReadable");
      return new InStream(
        this.#engine,
        this,
        this.#owner.interfaceNumber,
        o,
      );
    });
  }

  /** A WritableStream of this OUT endpoint, 16 transfers in flight. */
  get writable(): WritableStream<Uint8Array> {
    return this.openWritable();
  }

  /**
   * A WritableStream of this OUT endpoint on an {@linkcode outStream} of
   * 64 KiB buffers: each chunk is sent in `transferSize` pieces (one send
   * for a chunk up to 64 KiB), with up to `inFlight` queued. A chunk that
   * is not bytes errors the stream with `invalid-argument`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * // The bench's Loopback gadget: what bulk OUT 0x02 gets comes back on IN 0x81.
   * await using dev = await open("0525:a4ab");
   * const iface = await dev.claimInterface(0);
   * const ep = iface.endpoint(0x02);
   * const w = ep.openWritable({ inFlight: 8 }).getWriter();
   * await w.write(new Uint8Array(4096).fill(1));
   * await w.close();
   * const echo = await iface.endpoint(0x81).transferIn(4096, { timeout: 1000 });
   * assert.equal(echo.data.length, 4096);
   * ```
   */
  openWritable(options: WritableOptions = {}): WritableStream<Uint8Array> {
    const inFlight = checkWritableOptions(
      "openWritable",
      options,
      this.#engine.slotCount,
    );
    this.#check("out", "openWritable");
    return writableOf(() => {
      this.#check("out", "openWritable");
      return new OutStream(this.#engine, this, this.#owner.interfaceNumber, {
        transferSize: 65536,
        inFlight,
        signal: undefined,
        zeroCopy: undefined,
      });
    });
  }

  /**
   * Clears a halt (stall) condition, so the endpoint works again.
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
   * const r = await ep.transferIn(1024);
   * if (r.status === "stall") await ep.clearHalt();
   * assert.equal(r.status, "ok");
   * ```
   */
  async clearHalt(): Promise<void> {
    // usbfs would claim a released interface again to clear the halt.
    this.checkUsable("clearHalt");
    await this.#engine.usbfs.clearHalt(
      this.address,
      `clearing the halt on endpoint ${hex(this.address)}`,
    );
  }
}
