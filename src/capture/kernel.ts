/**
 * The kernel's capture: every URB of a bus as the usbmon module records it,
 * kernel drivers' included, read from `/dev/usbmonN` through the helper
 * (src/usbfs.ts section D, helper/src/usbmon.rs) and written as pcap or
 * pcapng like usbkit's own capture. `usb capture` runs it.
 *
 * Needs root and the usbmon module (`modprobe usbmon`); the errors say so.
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import { UsbmonReader } from "../usbfs.ts";
import {
  checkInteger,
  checkOptions,
  checkSignal,
  checkString,
} from "../validate.ts";
import { Capture } from "./capture.ts";
import {
  USBMON_HEADER_BYTES,
  USBMON_ISODESC_BYTES,
  UsbmonField,
} from "./usbmon_header.ts";

/**
 * Options of {@linkcode captureKernel}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KernelCaptureOptions } from "./kernel.ts";
 * const o: KernelCaptureOptions = { out: "bus1.pcapng", bus: 1 };
 * assert.equal(o.bus, 1);
 * ```
 */
export interface KernelCaptureOptions {
  /** The file to write (`.pcap` or `.pcapng`). */
  out: string;
  /** The bus, an integer from 0 to 65535; 0 (default) captures every bus. */
  bus?: number;
  /** Keeps only this device address's events (on `bus`). */
  deviceAddress?: number;
  /** Stops the capture (it then flushes and closes the file). Default: never. */
  signal?: AbortSignal;
  /** Data bytes kept per event. Default 262144. */
  snapLength?: number;
  /** Called after each batch of events with the totals so far. */
  onProgress?: (packets: number, dropped: number) => void;
}

/**
 * What {@linkcode captureKernel} recorded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KernelCaptureResult } from "./kernel.ts";
 * const r: KernelCaptureResult = { packets: 10, dropped: 0, out: "bus1.pcapng" };
 * assert.equal(r.dropped, 0);
 * ```
 */
export interface KernelCaptureResult {
  /** Events written. */
  packets: number;
  /** Events usbmon dropped because its ring was full (MON_IOCG_STATS). */
  dropped: number;
  /** The file. */
  out: string;
}

/** usbmon's ring asked for: 8 MiB (the kernel allows 8 KiB to 64 MiB). */
const RING_BYTES = 8 << 20;
/** Bytes fetched per read: enough for the largest event of that ring. */
const READ_BYTES = 4 << 20;
/** How long a read waits before the signal is looked at again. */
const POLL_MS = 100;

/**
 * Captures usbmon's events until `signal` aborts, into `out`.
 *
 * @throws {UsbError} `invalid-argument` on a bad option, `access-denied`
 * when not root, `not-found` when usbmon is missing (hint: modprobe)
 *
 * @example
 * ```ts ignore
 * // Ignored: needs root and usbmon (tests/device/capture_test.ts runs it in the guest).
 * import { captureKernel } from "./kernel.ts";
 * const ac = new AbortController();
 * const done = captureKernel({ out: "bus.pcapng", bus: 1, signal: ac.signal });
 * // ... traffic ...
 * ac.abort();
 * console.log(await done); // { packets, dropped, out }
 * ```
 */
export async function captureKernel(
  options: KernelCaptureOptions,
): Promise<KernelCaptureResult> {
  const o = checkOptions("captureKernel: options", options, [
    "out",
    "bus",
    "deviceAddress",
    "signal",
    "snapLength",
    "onProgress",
  ]);
  const out = checkString("captureKernel: options.out", o.out);
  const bus = o.bus === undefined
    ? 0
    : checkInteger("captureKernel: options.bus", o.bus, 0, 65535);
  const address = o.deviceAddress === undefined ? -1 : checkInteger(
    "captureKernel: options.deviceAddress",
    o.deviceAddress,
    0,
    127,
  );
  const signal = checkSignal("captureKernel: options.signal", o.signal);
  const onProgress = o.onProgress;
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new UsbError(
      "invalid-argument",
      "captureKernel: options.onProgress must be a function",
    );
  }
  const reader = UsbmonReader.open(bus, RING_BYTES);
  let cap: Capture;
  try {
    cap = Capture.open(
      out,
      o.snapLength === undefined ? {} : { snapLength: o.snapLength as number },
    );
  } catch (e) {
    await reader.close();
    throw e;
  }
  const buf = new Uint8Array(READ_BYTES);
  const view = new DataView(buf.buffer);
  let dropped = 0;
  try {
    while (signal?.aborted !== true) {
      const n = await reader.read(buf, POLL_MS);
      for (let at = 0; at + USBMON_HEADER_BYTES <= n;) {
        const captured = view.getUint32(at + UsbmonField.lenCap, true);
        if (address < 0 || buf[at + UsbmonField.devnum] === address) {
          writeEvent(cap, buf, view, at, captured);
        }
        at += USBMON_HEADER_BYTES + captured;
      }
      dropped += reader.stats().dropped;
      onProgress?.(cap.packets, dropped);
    }
    // What was queued before the stop still belongs to the capture.
    for (;;) {
      const n = await reader.read(buf, 0);
      if (n === 0) break;
      for (let at = 0; at + USBMON_HEADER_BYTES <= n;) {
        const captured = view.getUint32(at + UsbmonField.lenCap, true);
        if (address < 0 || buf[at + UsbmonField.devnum] === address) {
          writeEvent(cap, buf, view, at, captured);
        }
        at += USBMON_HEADER_BYTES + captured;
      }
    }
    dropped += reader.stats().dropped;
  } finally {
    await reader.close();
    cap.close();
  }
  return { packets: cap.packets, dropped, out };
}

/** Copies one kernel event (header and what follows) into the capture. */
function writeEvent(
  cap: Capture,
  buf: Uint8Array,
  view: DataView,
  at: number,
  captured: number,
): void {
  const F = UsbmonField;
  const ndesc = view.getUint32(at + F.ndesc, true);
  const descBytes = Math.min(captured, ndesc * USBMON_ISODESC_BYTES);
  const kept = descBytes + Math.min(captured - descBytes, cap.snapLength);
  const h = cap.beginEvent(kept, 0, 0, 0, 0, 0, 0);
  if (h < 0) return;
  cap.bytes.set(buf.subarray(at, at + USBMON_HEADER_BYTES + kept), h);
  cap.view.setUint32(h + F.lenCap, kept, true);
  // The length on the wire: everything the URB had when data was taken
  // (data flag 0), else what is there (libpcap's rule).
  const wire = buf[at + F.flagData] === 0
    ? descBytes + view.getUint32(at + F.lenUrb, true)
    : captured;
  cap.endEvent(h, kept, wire);
}
