/**
 * An endpoint of a claimed interface: where bulk, interrupt and isochronous
 * data moves.
 *
 * @module
 */

import type { EndpointDescriptor, EndpointType } from "./descriptors.ts";
import { UsbError } from "./errors.ts";
import type { BufferPool, UsbBuffer } from "./buffer.ts";
import {
  type IsoInResult,
  type IsoOutResult,
  IsoTransfer,
} from "./isochronous.ts";
import {
  InStream,
  readableOf,
  type StreamOptions,
  writableOf,
  type WritableOptions,
} from "./stream.ts";
import {
  type InResult,
  type OutResult,
  Transfer,
  type TransferOptions,
  type UrbEngine,
  UrbType,
} from "./transfer.ts";

/** What an Endpoint needs from its interface. */
export interface EndpointOwner {
  /** Interface number, for messages. */
  readonly interfaceNumber: number;
  /** False once the interface was released or the device closed. */
  readonly claimed: boolean;
}

const hex2 = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

/**
 * An endpoint of a claimed interface, from `Interface.endpoint(address)`.
 *
 * @example Reading the SourceSink pattern
 * ```ts ignore
 * import { open } from "../mod.ts";
 * await using dev = await open("0525:a4a0");
 * const iface = await dev.claimInterface(0);
 * const result = await iface.endpoint(0x81).transferIn(1024, { timeout: 1000 });
 * console.log(result.status, result.data.length);
 * ```
 */
export class Endpoint {
  /** The endpoint address, with the direction bit (0x81 is IN 1). */
  readonly address: number;
  /** `"in"` (device to host) or `"out"`. */
  readonly direction: "in" | "out";
  /** The transfer type. */
  readonly type: EndpointType;
  /** wMaxPacketSize without the high-bandwidth bits. */
  readonly maxPacketSize: number;
  /** The parsed endpoint descriptor. */
  readonly descriptor: EndpointDescriptor;
  readonly #engine: UrbEngine;
  readonly #pool: BufferPool;
  readonly #owner: EndpointOwner;

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
    this.maxPacketSize = descriptor.packetSize;
  }

  /** Throws unless the endpoint can be used now (claimed, connected). */
  checkUsable(method: string): void {
    if (!this.#owner.claimed) {
      throw new UsbError(
        "invalid-argument",
        `${method} on endpoint ${
          hex2(this.address)
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
    if (!this.#owner.claimed) {
      throw new UsbError(
        "invalid-argument",
        `${method} on endpoint ${
          hex2(this.address)
        }: interface ${this.#owner.interfaceNumber} is not claimed ` +
          `(it was released, or the device was closed)`,
        {
          hint:
            `call claimInterface(${this.#owner.interfaceNumber}) again and take the endpoint from it`,
        },
      );
    }
    if (this.#engine.gone) throw this.#engine.disconnectedError(method);
    if (this.direction !== dir) {
      throw new UsbError(
        "invalid-argument",
        `${method} on endpoint ${
          hex2(this.address)
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
        `${method} on ${this.type} endpoint ${hex2(this.address)}`,
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

  #what(dir: "in" | "out"): string {
    return `${this.type} ${dir.toUpperCase()} on endpoint ${
      hex2(this.address)
    }`;
  }

  /**
   * Reads up to `length` bytes. Resolves when the device sent `length` bytes
   * or a short packet. A transfer larger than one URB is split and completes
   * as one.
   *
   * @example
   * ```ts ignore
   * const { status, data } = await ep.transferIn(64 * 1024, { timeout: 1000 });
   * ```
   */
  transferIn(
    length: number | UsbBuffer,
    options: TransferOptions & { length?: number } = {},
  ): Promise<InResult> {
    try {
      this.#check("in", "transferIn");
      let mem: Uint8Array<ArrayBuffer> | UsbBuffer;
      let size: number;
      if (typeof length === "number") {
        if (!Number.isInteger(length) || length < 0) {
          throw new UsbError(
            "invalid-argument",
            `transferIn length must be a non-negative integer, got ${length}`,
          );
        }
        mem = new Uint8Array(length);
        size = length;
      } else {
        mem = length;
        size = this.#bufferLength(length, options.length, "transferIn");
      }
      const t = new Transfer(
        this.#engine,
        "in",
        this.#what("in"),
        mem,
        0,
        this.#owner.interfaceNumber,
        size,
      );
      return t.start(
        this.type === "bulk" ? UrbType.bulk : UrbType.interrupt,
        this.address,
        this.#engine.maxUrbBytes,
        this.type === "bulk" && (this.#engine.capabilities & 0x02) !== 0,
        options,
      ) as Promise<InResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes `data`. The kernel copies it at submit, so the array may be reused
   * as soon as this returns.
   *
   * @example
   * ```ts ignore
   * const { bytesWritten } = await ep.transferOut(new Uint8Array(512));
   * ```
   */
  transferOut(
    data: Uint8Array | UsbBuffer,
    options: TransferOptions & { zeroPacket?: boolean; length?: number } = {},
  ): Promise<OutResult> {
    try {
      this.#check("out", "transferOut");
      let t: Transfer;
      if (data instanceof Uint8Array) {
        const buf = data.buffer instanceof ArrayBuffer
          ? (data as Uint8Array<ArrayBuffer>)
          : new Uint8Array(data);
        t = new Transfer(
          this.#engine,
          "out",
          this.#what("out"),
          buf,
          0,
          this.#owner.interfaceNumber,
        );
      } else {
        const size = this.#bufferLength(data, options.length, "transferOut");
        t = new Transfer(
          this.#engine,
          "out",
          this.#what("out"),
          data,
          0,
          this.#owner.interfaceNumber,
          size,
        );
      }
      return t.start(
        this.type === "bulk" ? UrbType.bulk : UrbType.interrupt,
        this.address,
        this.#engine.maxUrbBytes,
        this.type === "bulk" && (this.#engine.capabilities & 0x02) !== 0,
        options,
        options.zeroPacket === true,
      ) as Promise<OutResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #bufferLength(
    buf: UsbBuffer,
    length: number | undefined,
    method: string,
  ): number {
    const size = length ?? buf.size;
    if (!Number.isInteger(size) || size < 0 || size > buf.size) {
      throw new UsbError(
        "invalid-argument",
        `${method}: length ${size} does not fit the ${buf.size}-byte UsbBuffer`,
      );
    }
    return size;
  }

  /**
   * Isochronous IN: one packet per entry of `packetLengths`. More than 128
   * packets (the kernel's limit per URB) are split into several URBs. Each
   * packet's `data` holds exactly what arrived; `data` concatenates only
   * received bytes.
   *
   * @example
   * ```ts ignore
   * const r = await ep.isochronousTransferIn(new Array(32).fill(ep.maxPacketSize));
   * console.log(r.packets.filter((p) => p.status === "ok").length, r.data.length);
   * ```
   */
  isochronousTransferIn(
    packetLengths: number[],
    options: TransferOptions & { buffer?: UsbBuffer } = {},
  ): Promise<IsoInResult> {
    try {
      this.#check("in", "isochronousTransferIn", true);
      const total = this.#packetTotal(packetLengths);
      const mem = options.buffer ?? new Uint8Array(total);
      if (options.buffer) {
        this.#bufferLength(options.buffer, total, "isochronousTransferIn");
      }
      const t = new IsoTransfer(
        this.#engine,
        "in",
        `isochronous IN on endpoint ${hex2(this.address)}`,
        mem,
        packetLengths,
        this.#owner.interfaceNumber,
      );
      return t.start(this.address, options) as Promise<IsoInResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Isochronous OUT: `data` is cut into packets of `packetLengths`.
   *
   * @example
   * ```ts ignore
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
      this.#check("out", "isochronousTransferOut", true);
      const total = this.#packetTotal(packetLengths);
      let mem: Uint8Array<ArrayBuffer> | UsbBuffer;
      if (data instanceof Uint8Array) {
        if (data.length < total) {
          throw new UsbError(
            "invalid-argument",
            `isochronousTransferOut: ${data.length} bytes of data for packets totalling ${total}`,
          );
        }
        mem = new Uint8Array(data.subarray(0, total));
      } else {
        this.#bufferLength(data, total, "isochronousTransferOut");
        mem = data;
      }
      const t = new IsoTransfer(
        this.#engine,
        "out",
        `isochronous OUT on endpoint ${hex2(this.address)}`,
        mem,
        packetLengths,
        this.#owner.interfaceNumber,
      );
      return t.start(this.address, options) as Promise<IsoOutResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #packetTotal(lengths: number[]): number {
    if (!Array.isArray(lengths) || lengths.length === 0) {
      throw new UsbError(
        "invalid-argument",
        "packetLengths must be a non-empty array of packet sizes",
      );
    }
    let total = 0;
    for (const n of lengths) {
      // 98304 = 3 x 1024 x 32... the kernel caps one iso packet at 98304 bytes (devio.c).
      if (!Number.isInteger(n) || n < 0 || n > 98304) {
        throw new UsbError(
          "invalid-argument",
          `iso packet length ${n} is outside 0..98304 (the kernel's per-packet limit)`,
        );
      }
      total += n;
    }
    return total;
  }

  /**
   * Streams IN transfers with `inFlight` always queued. Each chunk is a
   * zero-copy view, valid until the next iteration (`stream.keep()` copies
   * it). Breaking out of the loop cancels what is still queued.
   *
   * @example
   * ```ts ignore
   * for await (const chunk of ep.stream({ transferSize: 65536, inFlight: 16 })) {
   *   if (chunk[0] !== 0) break;
   * }
   * ```
   */
  stream(options: StreamOptions = {}): InStream {
    this.#check("in", "stream");
    return new InStream(
      this.#engine,
      this.#pool,
      this,
      this.#owner.interfaceNumber,
      options,
    );
  }

  /**
   * A ReadableStream (byte stream) of this IN endpoint, 64 KiB × 16 in
   * flight. Chunks are copies. See {@linkcode openReadable} for options.
   */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.openReadable();
  }

  /**
   * A ReadableStream (byte stream) of this IN endpoint with stream options.
   *
   * @example
   * ```ts ignore
   * for await (const chunk of ep.openReadable({ transferSize: 4096, inFlight: 4 })) console.log(chunk.length);
   * ```
   */
  openReadable(
    options: StreamOptions = {},
  ): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#check("in", "readable");
    return readableOf(() => this.stream(options));
  }

  /** A WritableStream of this OUT endpoint, 16 transfers in flight. */
  get writable(): WritableStream<Uint8Array> {
    return this.openWritable();
  }

  /**
   * A WritableStream of this OUT endpoint: each chunk is one transfer, with
   * up to `inFlight` queued.
   *
   * @example
   * ```ts ignore
   * const w = ep.openWritable({ inFlight: 8 }).getWriter();
   * await w.write(new Uint8Array(4096));
   * await w.close();
   * ```
   */
  openWritable(options: WritableOptions = {}): WritableStream<Uint8Array> {
    this.#check("out", "writable");
    return writableOf((chunk) => this.transferOut(chunk), options);
  }

  /**
   * Clears a halt (stall) condition, so the endpoint works again.
   *
   * @example
   * ```ts ignore
   * if ((await ep.transferIn(64)).status === "stall") await ep.clearHalt();
   * ```
   */
  async clearHalt(): Promise<void> {
    if (this.#engine.gone) throw this.#engine.disconnectedError("clearHalt");
    const r = await this.#engine.h.sym.usbkit_clear_halt(
      this.#engine.handle,
      this.address,
    );
    this.#engine.check(
      r,
      `clearing the halt on endpoint ${hex2(this.address)}`,
    );
  }
}
