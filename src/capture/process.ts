/**
 * Turning capture on: for one device (`open(selector, { capture })`), for
 * every device the process opens (the `USBKIT_CAPTURE` environment
 * variable, or {@linkcode captureAll} from a script), and for a recipe run
 * (`usb run --capture FILE`, which uses {@linkcode captureAll}).
 *
 * A device's own capture wins over the process's. Devices record into the
 * capture that was on when they were opened.
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import { Capture, type CaptureOptions } from "./capture.ts";
import { CaptureTap, type TapEngine } from "./tap.ts";

/**
 * The environment variable that turns capture on for the whole process:
 * its value is the file (`.pcap` or `.pcapng`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CAPTURE_ENV } from "./process.ts";
 * assert.equal(CAPTURE_ENV, "USBKIT_CAPTURE");
 * ```
 */
export const CAPTURE_ENV = "USBKIT_CAPTURE";

let processCapture: Capture | undefined;
let envChecked = false;

function fromEnvironment(): Capture | undefined {
  if (envChecked) return processCapture;
  envChecked = true;
  let path: string | undefined;
  try {
    path = Deno.env.get(CAPTURE_ENV);
  } catch {
    return processCapture; // no --allow-env: the variable cannot be seen
  }
  if (path !== undefined && path !== "" && processCapture === undefined) {
    processCapture = Capture.open(path);
  }
  return processCapture;
}

/**
 * Records every URB of every device opened from now on into `target` (a
 * file name, or a {@linkcode Capture} to share). Returns the capture; it
 * is flushed and closed at exit, or by {@linkcode stopCaptureAll}.
 *
 * @throws {UsbError} `invalid-argument` on a bad target; the file's error
 * when it cannot be created
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { captureAll, processCaptureNow, stopCaptureAll } from "./process.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".pcap" });
 * const cap = captureAll(path);
 * assert.equal(processCaptureNow(), cap);
 * stopCaptureAll();
 * assert.equal(processCaptureNow(), undefined);
 * Deno.removeSync(path);
 * ```
 */
export function captureAll(
  target: string | Capture,
  options: CaptureOptions = {},
): Capture {
  const cap = openTarget("captureAll", target, options);
  envChecked = true;
  processCapture = cap;
  return cap;
}

/**
 * Stops the process-wide capture: devices opened later record nothing;
 * the file is flushed and closed.
 *
 * @example
 * ```ts
 * import { stopCaptureAll } from "./process.ts";
 * stopCaptureAll(); // nothing to stop: a no-op
 * ```
 */
export function stopCaptureAll(): void {
  envChecked = true;
  const cap = processCapture;
  processCapture = undefined;
  cap?.close();
}

/**
 * The process-wide capture in effect now (reading `USBKIT_CAPTURE` the
 * first time), or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processCaptureNow, stopCaptureAll } from "./process.ts";
 * stopCaptureAll();
 * assert.equal(processCaptureNow(), undefined);
 * ```
 */
export function processCaptureNow(): Capture | undefined {
  const cap = fromEnvironment();
  return cap?.open ? cap : undefined;
}

function openTarget(
  method: string,
  target: unknown,
  options: CaptureOptions,
): Capture {
  if (target instanceof Capture) return target;
  if (typeof target === "string" && target !== "") {
    return Capture.open(target, options);
  }
  throw new UsbError(
    "invalid-argument",
    `${method}: the capture must be a file name (.pcap or .pcapng) or a Capture, got ${
      typeof target === "string" ? '""' : typeof target
    }`,
  );
}

/**
 * Bus number and address from a usbfs node name: `/dev/bus/usb/002/003`
 * is bus 2, device 3 (0, 0 for anything else).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { busAndAddress } from "./process.ts";
 * assert.deepEqual(busAndAddress("/dev/bus/usb/002/013"), [2, 13]);
 * ```
 */
export function busAndAddress(devnode: string): [number, number] {
  const m = /(\d+)\/(\d+)$/.exec(devnode);
  return m === null ? [0, 0] : [Number(m[1]), Number(m[2])];
}

/**
 * The tap of a device being opened when the process-wide capture is on,
 * else undefined. The URB engine (src/engine.ts) calls it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { captureAll, processTap, stopCaptureAll } from "./process.ts";
 * import type { TapEngine } from "./tap.ts";
 * import { helper } from "../ffi.ts";
 * // What the URB engine passes: its slots and the helper's layout (no device needed)
 * const layout = helper().layout;
 * const engine: TapEngine = { slotCount: 4, slab: new DataView(new ArrayBuffer(4 * layout.slotSize)), layout };
 * stopCaptureAll();
 * assert.equal(processTap("/dev/bus/usb/001/004", engine), undefined); // no capture on
 * const path = Deno.makeTempFileSync({ suffix: ".pcapng" });
 * const cap = captureAll(path);
 * const tap = processTap("/dev/bus/usb/001/004", engine); // what the engine does on open
 * assert.equal(tap?.capture, cap);
 * assert.deepEqual([tap?.busnum, tap?.devnum], [1, 4]);
 * stopCaptureAll();
 * Deno.removeSync(path);
 * ```
 */
export function processTap(
  devnode: string,
  engine: TapEngine,
): CaptureTap | undefined {
  const cap = processCaptureNow();
  if (cap === undefined) return undefined;
  const [bus, dev] = busAndAddress(devnode);
  return new CaptureTap(cap, bus, dev, engine);
}

/**
 * The capture a device was opened with, and whether the device owns the file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deviceCapture, type DeviceCapture } from "./process.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".pcap" });
 * const c: DeviceCapture = deviceCapture("open", path, "/dev/bus/usb/001/002");
 * c.close();
 * assert.equal(c.capture.open, false);
 * Deno.removeSync(path);
 * ```
 */
export interface DeviceCapture {
  /** The file. */
  readonly capture: Capture;
  /** The tap for the device's URB engine. */
  tap(engine: TapEngine): CaptureTap;
  /** Closes the file if the device opened it, else flushes it. */
  close(): void;
}

/**
 * The capture of a device opened with the `capture` open option (a file
 * name, which the device then owns and closes with itself, or a Capture
 * to share, which it only flushes). Call it before opening the device, so
 * that a file that cannot be created fails the open with nothing open.
 *
 * @throws {UsbError} `invalid-argument` on a bad option; the file's error
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deviceCapture } from "./process.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".pcapng" });
 * const c = deviceCapture("open", path, "/dev/bus/usb/001/002");
 * assert.equal(c.capture.format, "pcapng");
 * c.close();
 * assert.equal(c.capture.open, false);
 * Deno.removeSync(path);
 * ```
 */
export function deviceCapture(
  method: string,
  option: unknown,
  devnode: string,
): DeviceCapture {
  const [bus, dev] = busAndAddress(devnode);
  const owned = !(option instanceof Capture);
  const cap = openTarget(`${method}: options.capture`, option, {});
  return {
    capture: cap,
    tap: (engine) => new CaptureTap(cap, bus, dev, engine),
    close: owned ? () => cap.close() : () => cap.flush(),
  };
}

/**
 * Checks the `capture` open option without opening anything.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCaptureOption } from "./process.ts";
 * checkCaptureOption("open", "run.pcapng");
 * assert.throws(() => checkCaptureOption("open", 3), /options\.capture/);
 * ```
 */
export function checkCaptureOption(method: string, option: unknown): void {
  if (
    option === undefined || option instanceof Capture ||
    (typeof option === "string" && option !== "")
  ) return;
  throw new UsbError(
    "invalid-argument",
    `${method}: options.capture must be a file name (.pcap or .pcapng) or a Capture, got ${
      typeof option === "string" ? '""' : typeof option
    }`,
  );
}
