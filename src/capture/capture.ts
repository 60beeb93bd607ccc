/**
 * A capture file: usbmon events (src/capture/usbmon_header.ts) written as
 * pcap or pcapng with link type 220, LINKTYPE_USB_LINUX_MMAPPED, the format
 * Wireshark and tshark read for Linux USB.
 *
 * Events are laid out in one preallocated buffer that is written to the
 * file when it fills, on {@linkcode Capture.flush}, about once a second
 * while events arrive, and at {@linkcode Capture.close}: recording an event
 * allocates nothing and makes no system call, so capture changes the
 * timing of a run as little as it can.
 *
 * The format is chosen from the file name: `.pcap` for classic pcap
 * (microsecond timestamps, libpcap 2.4), anything else pcapng (one Section
 * Header Block, one Interface Description Block of link type 220, then one
 * Enhanced Packet Block per event).
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import { checkInteger, checkOptions, checkString } from "../validate.ts";
import {
  LINKTYPE_USB_LINUX_MMAPPED,
  USBMON_HEADER_BYTES,
  USBMON_ISODESC_BYTES,
  UsbmonField,
} from "./usbmon_header.ts";

/**
 * `"pcap"` or `"pcapng"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CaptureFormat } from "./capture.ts";
 * const f: CaptureFormat = "pcapng";
 * assert.equal(f, "pcapng");
 * ```
 */
export type CaptureFormat = "pcap" | "pcapng";

/**
 * Options of {@linkcode Capture.open}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CaptureOptions } from "./capture.ts";
 * const o: CaptureOptions = { snapLength: 4096, format: "pcap" };
 * assert.equal(o.snapLength, 4096);
 * ```
 */
export interface CaptureOptions {
  /**
   * Data bytes kept per event, an integer from 0 to 16777216 (16 MiB);
   * the rest is cut, as usbmon cuts it. Default 262144, tcpdump's default.
   */
  snapLength?: number;
  /** Overrides the format the file name implies. */
  format?: CaptureFormat;
}

/**
 * The most iso descriptors one event carries (ISODESC_MAX in mon_bin.c).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_EVENT_ISODESC } from "./capture.ts";
 * assert.equal(MAX_EVENT_ISODESC, 128);
 * ```
 */
export const MAX_EVENT_ISODESC = 128;

const DEFAULT_SNAP = 262144;
const MAX_SNAP = 16 << 20;
/** pcap: 16-byte record header. pcapng: EPB header 28 + trailer 4 + pad 3. */
const MAX_FRAMING = 36;

/**
 * The format a file name implies: `.pcap` is pcap, anything else pcapng.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatOf } from "./capture.ts";
 * assert.equal(formatOf("run.pcap"), "pcap");
 * assert.equal(formatOf("run.pcapng"), "pcapng");
 * ```
 */
export function formatOf(path: string): CaptureFormat {
  return path.toLowerCase().endsWith(".pcap") ? "pcap" : "pcapng";
}

/**
 * A capture file being written. Every device that captures into it adds
 * its events (src/capture/tap.ts); {@linkcode packets} counts them, and
 * packet numbers in reports are 1-based, as Wireshark numbers frames.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Capture } from "./capture.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".pcapng" });
 * const cap = Capture.open(path);
 * const at = cap.beginEvent(0, 0x53, 3, 0x81, 2, 1, 7);
 * cap.endEvent(at, 0, 0);
 * cap.close();
 * assert.equal(cap.packets, 1);
 * assert.ok(Deno.statSync(path).size > 64);
 * Deno.removeSync(path);
 * ```
 */
export class Capture {
  /** The file's path. */
  readonly path: string;
  /** Its format. */
  readonly format: CaptureFormat;
  /** Data bytes kept per event. */
  readonly snapLength: number;
  /** The buffer events are laid out in (read-only outside this class). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** A view of {@linkcode bytes}. */
  readonly view: DataView<ArrayBuffer>;
  #file: Deno.FsFile | undefined;
  #used = 0;
  #packets = 0;
  #nextId = 1;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushSoon = () => {
    this.#timer = undefined;
    this.flush();
  };
  #onUnload = () => this.close();
  #start = 0;
  #error: unknown = undefined;
  #framing: number;

  private constructor(
    path: string,
    file: Deno.FsFile,
    format: CaptureFormat,
    snapLength: number,
  ) {
    this.path = path;
    this.#file = file;
    this.format = format;
    this.snapLength = snapLength;
    this.#framing = format === "pcap" ? 16 : 28;
    const event = MAX_FRAMING + USBMON_HEADER_BYTES +
      MAX_EVENT_ISODESC * USBMON_ISODESC_BYTES + snapLength;
    this.bytes = new Uint8Array(Math.max(1 << 20, 2 * event));
    this.view = new DataView(this.bytes.buffer);
    this.#writeFileHeader();
    globalThis.addEventListener("unload", this.#onUnload);
  }

  /**
   * Creates (or truncates) `path` and writes the file header.
   *
   * @throws {UsbError} `invalid-argument` on a bad path or option; the
   * file system's error (code from the errno) when it cannot be created
   */
  static open(path: string, options: CaptureOptions = {}): Capture {
    checkString("Capture.open: path", path);
    if (path === "") {
      throw new UsbError(
        "invalid-argument",
        "Capture.open: path must not be empty",
      );
    }
    const o = checkOptions("Capture.open: options", options, [
      "snapLength",
      "format",
    ]);
    const snap = o.snapLength === undefined ? DEFAULT_SNAP : checkInteger(
      "Capture.open: options.snapLength",
      o.snapLength,
      0,
      MAX_SNAP,
    );
    let format = formatOf(path);
    if (o.format !== undefined) {
      if (o.format !== "pcap" && o.format !== "pcapng") {
        throw new UsbError(
          "invalid-argument",
          `Capture.open: options.format must be "pcap" or "pcapng", got ${
            String(o.format)
          }`,
        );
      }
      format = o.format;
    }
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { write: true, create: true, truncate: true });
    } catch (e) {
      throw new UsbError(
        e instanceof Deno.errors.PermissionDenied ||
          e instanceof Deno.errors.NotCapable
          ? "access-denied"
          : "io",
        `cannot create the capture file ${path}: ${
          e instanceof Error ? e.message : String(e)
        }`,
        { cause: e, hint: "check that its directory exists and is writable" },
      );
    }
    return new Capture(path, file, format, snap);
  }

  /** Events recorded so far (written or still buffered). */
  get packets(): number {
    return this.#packets;
  }

  /** True until {@linkcode close}. */
  get open(): boolean {
    return this.#file !== undefined;
  }

  /** A new URB id, unique in this file. */
  nextId(): number {
    return this.#nextId++;
  }

  #writeFileHeader(): void {
    const v = this.view;
    const snaplen = USBMON_HEADER_BYTES +
      MAX_EVENT_ISODESC * USBMON_ISODESC_BYTES + this.snapLength;
    if (this.format === "pcap") {
      // pcap file header: magic, 2.4, thiszone, sigfigs, snaplen, linktype.
      v.setUint32(0, 0xa1b2c3d4, true);
      v.setUint16(4, 2, true);
      v.setUint16(6, 4, true);
      v.setInt32(8, 0, true);
      v.setUint32(12, 0, true);
      v.setUint32(16, snaplen, true);
      v.setUint32(20, LINKTYPE_USB_LINUX_MMAPPED, true);
      this.#used = 24;
      return;
    }
    // Section Header Block: type, length, byte-order magic, 1.0, section
    // length unknown (-1), no options, length again.
    v.setUint32(0, 0x0a0d0d0a, true);
    v.setUint32(4, 28, true);
    v.setUint32(8, 0x1a2b3c4d, true);
    v.setUint16(12, 1, true);
    v.setUint16(14, 0, true);
    v.setInt32(16, -1, true);
    v.setInt32(20, -1, true);
    v.setUint32(24, 28, true);
    // Interface Description Block: link type 220, snaplen, no options
    // (if_tsresol absent: microseconds).
    v.setUint32(28, 1, true);
    v.setUint32(32, 20, true);
    v.setUint16(36, LINKTYPE_USB_LINUX_MMAPPED, true);
    v.setUint16(38, 0, true);
    v.setUint32(40, snaplen, true);
    v.setUint32(44, 20, true);
    this.#used = 48;
  }

  /**
   * Starts an event of at most `room` bytes after its 64-byte header (iso
   * descriptors and data, already cut to {@linkcode snapLength}). Returns
   * the offset of the header in {@linkcode bytes}: the header is zeroed and
   * its identity and timestamp fields are filled; the caller fills the
   * rest and what follows, then calls {@linkcode endEvent}. Nothing is
   * allocated. Returns -1, recording nothing, once the capture is closed.
   */
  beginEvent(
    room: number,
    type: number,
    xferType: number,
    epnum: number,
    devnum: number,
    busnum: number,
    id: number,
  ): number {
    if (this.#file === undefined) return -1;
    if (
      this.#used + MAX_FRAMING + USBMON_HEADER_BYTES + room >
        this.bytes.length
    ) this.flush();
    const at = this.#used + this.#framing;
    this.#start = at;
    const b = this.bytes, v = this.view, F = UsbmonField;
    b.fill(0, at, at + USBMON_HEADER_BYTES);
    v.setUint32(at + F.id, id % 4294967296, true);
    v.setUint32(at + F.id + 4, Math.floor(id / 4294967296), true);
    b[at + F.type] = type;
    b[at + F.xferType] = xferType;
    b[at + F.epnum] = epnum;
    b[at + F.devnum] = devnum;
    v.setUint16(at + F.busnum, busnum, true);
    const ms = performance.timeOrigin + performance.now();
    const sec = Math.floor(ms / 1000);
    const usec = Math.floor((ms - sec * 1000) * 1000);
    v.setUint32(at + F.tsSec, sec, true);
    v.setInt32(at + F.tsUsec, usec, true);
    return at;
  }

  /**
   * Ends the event begun at `at`: `after` bytes follow its header
   * (written by the caller), of `wire` bytes the event had before it was
   * cut to the snap length. Writes the record framing.
   */
  endEvent(at: number, after: number, wire: number): void {
    if (at !== this.#start) {
      throw new UsbError("io", "capture: endEvent without its beginEvent");
    }
    const v = this.view;
    const caplen = USBMON_HEADER_BYTES + after;
    const origlen = USBMON_HEADER_BYTES + Math.max(after, wire);
    const sec = v.getUint32(at + UsbmonField.tsSec, true);
    const usec = v.getInt32(at + UsbmonField.tsUsec, true);
    const rec = this.#used;
    if (this.format === "pcap") {
      v.setUint32(rec, sec, true);
      v.setUint32(rec + 4, usec, true);
      v.setUint32(rec + 8, caplen, true);
      v.setUint32(rec + 12, origlen, true);
      this.#used = at + caplen;
    } else {
      const pad = (4 - (caplen & 3)) & 3;
      const total = 28 + caplen + pad + 4;
      const ts = sec * 1e6 + usec;
      const high = Math.floor(ts / 4294967296);
      v.setUint32(rec, 6, true); // Enhanced Packet Block
      v.setUint32(rec + 4, total, true);
      v.setUint32(rec + 8, 0, true); // interface 0
      v.setUint32(rec + 12, high, true);
      v.setUint32(rec + 16, ts - high * 4294967296, true);
      v.setUint32(rec + 20, caplen, true);
      v.setUint32(rec + 24, origlen, true);
      let end = at + caplen;
      for (let i = 0; i < pad; i++) this.bytes[end++] = 0;
      v.setUint32(end, total, true);
      this.#used = end + 4;
    }
    this.#start = -1;
    this.#packets++;
    if (this.#timer === undefined) {
      const timer = setTimeout(this.#flushSoon, 1000);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /**
   * Copies `length` bytes of `src` from `offset` to `to` in
   * {@linkcode bytes}; short copies by hand (no view is made).
   */
  copyIn(to: number, src: Uint8Array, offset: number, length: number): void {
    if (length <= 64) {
      const b = this.bytes;
      for (let i = 0; i < length; i++) b[to + i] = src[offset + i]!;
    } else {
      this.bytes.set(src.subarray(offset, offset + length), to);
    }
  }

  /** Copies `length` bytes at `offset` of the mapped region `base` to `to`. */
  copyFromPointer(
    to: number,
    base: Deno.PointerObject,
    offset: number,
    length: number,
  ): void {
    if (length === 0) return;
    Deno.UnsafePointerView.copyInto(
      base,
      this.bytes.subarray(to, to + length),
      offset,
    );
  }

  /** Writes what is buffered to the file. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const file = this.#file;
    if (file === undefined || this.#used === 0) return;
    try {
      let done = 0;
      while (done < this.#used) {
        done += file.writeSync(this.bytes.subarray(done, this.#used));
      }
    } catch (e) {
      // A full disk must not fail the transfers being recorded: the
      // capture stops, says so once, and keeps the error.
      this.#error = e;
      this.#file = undefined;
      try {
        file.close();
      } catch {
        // already unusable
      }
      globalThis.removeEventListener("unload", this.#onUnload);
      console.error(
        `usbkit: capture to ${this.path} stopped after ${this.#packets} packets: ${
          e instanceof Error ? e.message : String(e)
        }`,
      );
    }
    this.#used = 0;
  }

  /** Why writing the file failed, if it did (recording then stopped). */
  get error(): unknown {
    return this.#error;
  }

  /** Flushes and closes the file. Safe to call twice. */
  close(): void {
    if (this.#file === undefined) return;
    try {
      this.flush();
    } finally {
      this.#file.close();
      this.#file = undefined;
      globalThis.removeEventListener("unload", this.#onUnload);
    }
  }

  /** {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
