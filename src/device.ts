/**
 * An open USB device: configuration, interfaces, control transfers, reset
 * and close.
 *
 * @module
 */

import { capabilityNames, speedFromKernel } from "./capabilities.ts";
import type { Capture } from "./capture/capture.ts";
import {
  checkCaptureOption,
  type DeviceCapture,
  deviceCapture,
} from "./capture/process.ts";
import type {
  ConfigurationDescriptor,
  DeviceDescriptor,
  Speed,
} from "./descriptors.ts";
import { type DeviceInfo, listDevices } from "./enumeration.ts";
import { type OpenResource, trackOpen, untrackOpen } from "./cleanup.ts";
import { clearDetach, recordDetach } from "./driver_journal.ts";
import { Errno, UsbError } from "./errors.ts";
import type { Endpoint } from "./endpoint.ts";
import { Interface } from "./interface.ts";
import { type AllocBufferOptions, BufferPool, UsbBuffer } from "./buffer.ts";
import {
  checkSelector,
  type DeviceSelector,
  selectDevice,
} from "./selector.ts";
import { UrbEngine, UrbType } from "./engine.ts";
import { type BatchRequest, type BatchResult, Transfer } from "./transfer.ts";
import type { InResult, OutResult, TransferOptions } from "./urb.ts";
import { Usbfs } from "./usbfs.ts";
import {
  findAgain,
  type ReopenInfo,
  type ReopenOptions,
  type ResetResult,
  UnplugWatch,
} from "./hotplug.ts";
import {
  checkBoolean,
  checkBytes,
  type CheckedTransferOptions,
  checkInteger,
  checkOneOf,
  checkOptions,
  checkString,
  checkTransferOptions,
  describeValue,
  hex,
  invalidArgument,
  MAX_TRANSFER_BYTES,
  plainBytes,
  readTransferOptions,
} from "./validate.ts";

/** A control transfer's setup packet, WebUSB style. */
export interface SetupPacket {
  /** bmRequestType bits 6..5. */
  requestType: "standard" | "class" | "vendor";
  /** bmRequestType bits 4..0. */
  recipient: "device" | "interface" | "endpoint" | "other";
  /** bRequest. */
  request: number;
  /** wValue. */
  value: number;
  /** wIndex. */
  index: number;
}

/** Options of {@linkcode open}. Checked first: a bad value is `invalid-argument`. */
export interface OpenOptions {
  /**
   * URB slots in the device's pool: the most URBs in flight at once, an
   * integer from 1 to 65536. Default 1024.
   */
  maxUrbs?: number;
  /**
   * Cap on usbfs-mapped buffer bytes for this device, an integer from 0 to
   * 2⁵³−1. Default 64 MiB.
   */
  maxBufferBytes?: number;
  /**
   * Records every URB of this device for Wireshark (src/capture/): a file
   * name (`.pcap` or `.pcapng`; the device closes it when it closes) or a
   * {@linkcode Capture} shared with other devices. Without it, the
   * process-wide capture applies (`USBKIT_CAPTURE`, `captureAll`).
   */
  capture?: string | Capture;
}

/** The most URB slots a device may have (each takes about 1.6 KiB). */
const MAX_URBS = 65536;

/** {@linkcode OpenOptions}, checked. */
function checkOpenOptions(
  method: string,
  value: unknown,
): {
  maxUrbs: number;
  maxBufferBytes: number | undefined;
  capture: string | Capture | undefined;
} {
  const o = checkOptions(`${method}: options`, value, [
    "maxUrbs",
    "maxBufferBytes",
    "capture",
  ]);
  checkCaptureOption(method, o.capture);
  return {
    capture: o.capture as string | Capture | undefined,
    maxUrbs: o.maxUrbs === undefined
      ? 1024
      : checkInteger(`${method}: options.maxUrbs`, o.maxUrbs, 1, MAX_URBS),
    maxBufferBytes: o.maxBufferBytes === undefined ? undefined : checkInteger(
      `${method}: options.maxBufferBytes`,
      o.maxBufferBytes,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
  };
}

/** A listed device passed to open(): what opening it reads from it. */
function checkInfo(method: string, value: unknown): DeviceInfo {
  const o = checkOptions(`${method}: device`, value, [
    "devnode",
    "vendorId",
    "productId",
    "portPath",
  ]);
  checkString(`${method}: device.devnode`, o.devnode);
  checkInteger(`${method}: device.vendorId`, o.vendorId, 0, 0xffff);
  checkInteger(`${method}: device.productId`, o.productId, 0, 0xffff);
  checkString(`${method}: device.portPath`, o.portPath);
  return value as DeviceInfo;
}

const REQUEST_TYPES = { standard: 0, class: 1, vendor: 2 } as const;
const RECIPIENTS = { device: 0, interface: 1, endpoint: 2, other: 3 } as const;

/**
 * Checks a setup packet (see {@linkcode SetupPacket}) and returns a plain
 * copy of it: `requestType` and `recipient` one of their names, `request`
 * an integer from 0 to 255, `value` and `index` integers from 0 to 65535.
 *
 * @param method the method, for messages: `"controlTransferIn"`
 * @param value what was passed as the setup packet
 * @throws {UsbError} `invalid-argument` naming the field
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSetup } from "./device.ts";
 * const setup = { requestType: "vendor", recipient: "device", request: 0x5b, value: 0, index: 0 };
 * assert.deepEqual(checkSetup("controlTransferOut", setup), setup);
 * assert.throws(() => checkSetup("controlTransferOut", { ...setup, value: -1 }), /controlTransferOut: setup\.value must be an integer from 0 to 65535, got -1/);
 * ```
 */
export function checkSetup(method: string, value: unknown): SetupPacket {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument(
      `${method}: setup`,
      value,
      "a setup packet { requestType, recipient, request, value, index }",
    );
  }
  const o = checkOptions(`${method}: setup`, value, [
    "requestType",
    "recipient",
    "request",
    "value",
    "index",
  ]);
  return {
    requestType: checkOneOf(
      `${method}: setup.requestType`,
      o.requestType,
      Object.keys(REQUEST_TYPES) as (keyof typeof REQUEST_TYPES)[],
    ),
    recipient: checkOneOf(
      `${method}: setup.recipient`,
      o.recipient,
      Object.keys(RECIPIENTS) as (keyof typeof RECIPIENTS)[],
    ),
    request: checkInteger(`${method}: setup.request`, o.request, 0, 0xff),
    value: checkInteger(`${method}: setup.value`, o.value, 0, 0xffff),
    index: checkInteger(`${method}: setup.index`, o.index, 0, 0xffff),
  };
}

/** Writes a checked setup packet into the first 8 bytes of `buf`. */
function writeSetup(
  buf: Uint8Array,
  dir: "in" | "out",
  setup: SetupPacket,
  length: number,
): void {
  buf[0] = (dir === "in" ? 0x80 : 0) | (REQUEST_TYPES[setup.requestType] << 5) |
    RECIPIENTS[setup.recipient];
  buf[1] = setup.request;
  buf[2] = setup.value & 0xff;
  buf[3] = setup.value >> 8;
  buf[4] = setup.index & 0xff;
  buf[5] = setup.index >> 8;
  buf[6] = length & 0xff;
  buf[7] = length >> 8;
}

/** The first 6 bytes of the setup packet being sent: see {@linkcode setupInto}. */
const SETUP = new Uint8Array(8);
const SETUP_KEYS = [
  "requestType",
  "recipient",
  "request",
  "value",
  "index",
] as const;
const setupRead: unknown[] = [
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
];

function isInt(v: unknown, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max &&
    !Object.is(v, -0);
}

/**
 * {@linkcode checkSetup} without allocating when the packet is good: reads
 * each field once, writes bmRequestType, bRequest, wValue and wIndex into
 * {@linkcode SETUP}, returns bRequest. A bad packet throws what
 * `checkSetup` throws.
 */
function setupInto(method: string, value: unknown, dir: "in" | "out"): number {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return checkSetup(method, value).request;
  }
  for (let i = 0; i < 5; i++) {
    try {
      setupRead[i] = (value as Record<string, unknown>)[SETUP_KEYS[i]!];
    } catch (e) {
      throw new UsbError(
        "invalid-argument",
        `${method}: setup.${SETUP_KEYS[i]} could not be read: ${
          describeValue(e)
        }`,
        { cause: e },
      );
    }
  }
  const requestType = setupRead[0], recipient = setupRead[1];
  const request = setupRead[2], v = setupRead[3], index = setupRead[4];
  if (
    typeof requestType === "string" &&
    Object.hasOwn(REQUEST_TYPES, requestType) &&
    typeof recipient === "string" && Object.hasOwn(RECIPIENTS, recipient) &&
    isInt(request, 0xff) && isInt(v, 0xffff) && isInt(index, 0xffff)
  ) {
    SETUP[0] = (dir === "in" ? 0x80 : 0) |
      (REQUEST_TYPES[requestType as keyof typeof REQUEST_TYPES] << 5) |
      RECIPIENTS[recipient as keyof typeof RECIPIENTS];
    SETUP[1] = request;
    SETUP[2] = v & 0xff;
    SETUP[3] = v >> 8;
    SETUP[4] = index & 0xff;
    SETUP[5] = index >> 8;
    return request;
  }
  // Report it as checkSetup does, from the values read once.
  const s = checkSetup(method, {
    requestType,
    recipient,
    request,
    value: v,
    index,
  });
  writeSetup(SETUP, dir, s, 0);
  return s.request;
}

/** "control IN request 0x06", made once per direction and bRequest. */
const CONTROL_WHAT: string[] = [];

function controlWhat(dir: "in" | "out", request: number): string {
  const i = (dir === "in" ? 256 : 0) + request;
  return CONTROL_WHAT[i] ??= `control ${dir.toUpperCase()} request ${
    hex(request)
  }`;
}

/** The most requests one `transferBatch` call takes. */
const MAX_BATCH = 4096;

/** Reads `transferBatch`'s requests into a plain array, each element once. */
function readRequests(value: unknown): unknown[] {
  const allowed =
    `an array of 1 to ${MAX_BATCH} requests ({ endpoint, data } or { endpoint, length })`;
  if (!Array.isArray(value)) {
    throw invalidArgument("transferBatch: requests", value, allowed);
  }
  let n: number;
  try {
    n = value.length;
  } catch (e) {
    throw new UsbError(
      "invalid-argument",
      `transferBatch: requests.length could not be read: ${describeValue(e)}`,
      { cause: e },
    );
  }
  if (!(n >= 1 && n <= MAX_BATCH)) {
    throw invalidArgument("transferBatch: requests", value, allowed);
  }
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    try {
      out.push(value[i]);
    } catch (e) {
      throw new UsbError(
        "invalid-argument",
        `transferBatch: requests[${i}] could not be read: ${describeValue(e)}`,
        { cause: e },
      );
    }
  }
  return out;
}

/**
 * Encodes a setup packet into the first 8 bytes of `buf` (USB 2.0, 9.3).
 * Every argument is checked ({@linkcode checkSetup}; `length` from 0 to
 * 65535; `buf` a Uint8Array of at least 8 bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSetup } from "./device.ts";
 * const buf = new Uint8Array(8);
 * encodeSetup(buf, "in", { requestType: "standard", recipient: "device", request: 6, value: 0x0100, index: 0 }, 18);
 * assert.ok(buf.join() === "128,6,0,1,0,0,18,0");
 * ```
 */
export function encodeSetup(
  buf: Uint8Array,
  dir: "in" | "out",
  setup: SetupPacket,
  length: number,
): void {
  const bytes = checkBytes("encodeSetup: buf", buf);
  if (bytes.length < 8) {
    throw invalidArgument("encodeSetup: buf", buf, "at least 8 bytes");
  }
  writeSetup(
    bytes,
    checkOneOf("encodeSetup: dir", dir, ["in", "out"]),
    checkSetup("encodeSetup", setup),
    checkInteger("encodeSetup: length", length, 0, 0xffff),
  );
}

/** Who holds a usbfs node open, other than this process: "process 123 (name)". */
function usbfsHolders(devnode: string): string[] {
  const found: string[] = [];
  try {
    for (const p of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(p.name) || Number(p.name) === Deno.pid) continue;
      try {
        for (const fd of Deno.readDirSync(`/proc/${p.name}/fd`)) {
          if (Deno.readLinkSync(`/proc/${p.name}/fd/${fd.name}`) === devnode) {
            const comm = Deno.readTextFileSync(`/proc/${p.name}/comm`).trim();
            found.push(`process ${p.name} (${comm})`);
            break;
          }
        }
      } catch {
        // Not ours to read, or gone.
      }
    }
  } catch {
    // No /proc.
  }
  return found;
}

/**
 * An open USB device. Get one with {@linkcode open}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
 * console.log(dev.deviceDescriptor.vendorId.toString(16), dev.speed, dev.capabilityNames);
 * assert.equal(dev.deviceDescriptor.vendorId, 0x0525);
 * ```
 */
export class Device {
  /** What enumeration found for this device. */
  readonly info: DeviceInfo;
  /** The usbfs capability bits (USBDEVFS_CAP_*). */
  readonly capabilities: number;
  /** The speed usbfs reports. */
  readonly speed: Speed | "unknown";
  readonly #engine: UrbEngine;
  readonly #pool: BufferPool;
  #configurationValue: number;
  #claimed = new Map<number, Interface>();
  #closed = false;
  #langId: number | undefined;
  /** Hotplug (src/hotplug.ts): `disconnected`, `reset()`'s outcome, `reopen()`. */
  readonly #unplug: UnplugWatch;
  #reenumerated = false;
  #reopened: ReopenInfo | undefined;
  /** The `capture` open option's file, closed (or flushed) with the device. */
  #capture: DeviceCapture | undefined;
  /** What the exit cleanup (src/cleanup.ts) calls on a signal or at exit. */
  readonly #exitHook: OpenResource = {
    close: () => this.close(),
    emergencyRelease: () => this.#emergencyRelease(),
  };

  private constructor(
    info: DeviceInfo,
    engine: UrbEngine,
    speed: number,
    options: { maxBufferBytes: number | undefined },
  ) {
    this.info = info;
    this.#engine = engine;
    this.#pool = new BufferPool(
      engine,
      options.maxBufferBytes === undefined
        ? {}
        : { maxBufferBytes: options.maxBufferBytes },
    );
    this.capabilities = engine.capabilities;
    this.speed = speedFromKernel(speed);
    this.#configurationValue = info.activeConfiguration ?? 0;
    this.#unplug = new UnplugWatch(info);
    const onGone = engine.onGone;
    engine.onGone = () => {
      onGone?.();
      this.#unplug.markGone();
    };
  }

  /** Opens a listed device. Prefer {@linkcode open}. */
  static openInfo(info: DeviceInfo, options: OpenOptions = {}): Device {
    checkInfo("openInfo", info);
    const opened = checkOpenOptions("openInfo", options);
    const ids = {
      vendorId: info.vendorId,
      productId: info.productId,
      devnode: info.devnode,
    };
    const capture = opened.capture === undefined
      ? undefined
      : deviceCapture("openInfo", opened.capture, info.devnode);
    let usbfs: Usbfs;
    try {
      usbfs = Usbfs.open(info.devnode, opened.maxUrbs, ids);
    } catch (e) {
      capture?.close();
      throw e;
    }
    const speed = usbfs.speed();
    const engine = new UrbEngine(usbfs);
    if (capture !== undefined) engine.capture = capture.tap(engine);
    const id = `${hex(info.vendorId, 4, "")}:${hex(info.productId, 4, "")}`;
    engine.describe = () => `device ${id} at ${info.portPath}`;
    const device = new Device(info, engine, speed, opened);
    device.#capture = capture;
    trackOpen(device.#exitHook);
    return device;
  }

  /** The device descriptor. */
  get deviceDescriptor(): DeviceDescriptor {
    return this.info.device;
  }

  /** Every configuration. */
  get configurations(): readonly ConfigurationDescriptor[] {
    return this.info.configurations;
  }

  /** The active configuration, or null when the device is unconfigured. */
  get configuration(): ConfigurationDescriptor | null {
    return this.configurations.find((c) =>
      c.configurationValue === this.#configurationValue
    ) ?? null;
  }

  /**
   * The capture this device records into (its `capture` open option, or
   * the process-wide one when it was opened), or undefined.
   *
   * @example
   * ```ts ignore
   * // Ignored: needs a USB device (tests/device/capture_test.ts opens one).
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0", { capture: "run.pcapng" });
   * console.log(dev.capture?.packets);
   * ```
   */
  get capture(): Capture | undefined {
    return this.#engine.capture?.capture;
  }

  /** Names of the usbfs capability bits, such as `"MMAP"`. */
  get capabilityNames(): string[] {
    return capabilityNames(this.capabilities);
  }

  /**
   * Resolves when the device is unplugged (or re-enumerates), with or
   * without a transfer in flight: usbfs reporting it gone, or the kernel's
   * `remove` uevent for it. Reading it the first time starts a uevent
   * listener (src/hotplug.ts) that runs until the device goes or closes;
   * after close() it no longer settles.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * dev.disconnected.then(() => console.log("unplugged"));
   * ```
   */
  get disconnected(): Promise<void> {
    if (this.#engine.gone) this.#unplug.markGone();
    return this.#closed && !this.#unplug.gone
      ? new Promise<void>(() => {})
      : this.#unplug.promise();
  }

  /** True once the device is known to be gone (usbfs or the kernel's uevent said so). */
  get gone(): boolean {
    return this.#engine.gone || this.#unplug.gone;
  }

  /**
   * For a device that {@linkcode reopen} opened: the device before, and
   * whether the address and the descriptors changed. Undefined otherwise.
   */
  get reopened(): ReopenInfo | undefined {
    return this.#reopened;
  }

  /**
   * True until closed (WebUSB's `USBDevice.opened`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * const dev = await open("0525:a4ab"); // the bench's Loopback gadget
   * assert.ok(dev.opened && !dev.closed);
   * await dev.close();
   * assert.ok(!dev.opened && dev.closed);
   * ```
   */
  get opened(): boolean {
    return !this.#closed;
  }

  /**
   * True once closed.
   *
   * @deprecated Use `!device.opened` (WebUSB's name); this alias goes in
   * the next release.
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The URB engine, for the buffers, streams and transfers of this package
   * and its device tests; not part of the public API.
   *
   * @internal
   */
  get engine(): UrbEngine {
    return this.#engine;
  }

  #live(what: string): void {
    if (this.#closed) {
      throw new UsbError("invalid-argument", `${what}: the device was closed`, {
        hint: "open it again",
      });
    }
    if (this.#engine.gone) throw this.#engine.disconnectedError(what);
  }

  /**
   * Allocates a transfer buffer from memory mapped on the usbfs fd
   * (zero-copy), or ordinary memory where usbfs cannot map (`zeroCopy` tells
   * which). Buffers come from a pool and are reused after `release()`.
   * Exceeding the pool's cap (`maxBufferBytes`) or the kernel's
   * usbfs_memory_mb gives a `no-memory` error naming the limit. `size` is an
   * integer from 1 to 2147483647; `options.zeroCopy` a boolean.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * const buf = dev.allocBuffer(65536);
   * console.log(buf.zeroCopy); // true where usbfs maps memory (capability MMAP)
   * assert.equal(buf.size, 65536);
   * buf.release();
   * ```
   */
  allocBuffer(size: number, options: AllocBufferOptions = {}): UsbBuffer {
    const n = checkInteger("allocBuffer: size", size, 1, MAX_TRANSFER_BYTES);
    const o = checkOptions("allocBuffer: options", options, ["zeroCopy"]);
    const zeroCopy = checkBoolean("allocBuffer: options.zeroCopy", o.zeroCopy);
    this.#live("allocBuffer");
    return this.#pool.alloc(n, zeroCopy === false ? { zeroCopy } : {});
  }

  /** Bytes of usbfs-mapped memory this device holds, in use or pooled. */
  get mappedBufferBytes(): number {
    return this.#pool.mappedBytes;
  }

  /**
   * Selects configuration `n` (bConfigurationValue, an integer from 0 to 255
   * that the device has; 0 unconfigures it). Fails with `busy` while
   * interfaces are claimed.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4ab"); // the bench's Loopback gadget
   * await dev.selectConfiguration(1);
   * ```
   */
  async selectConfiguration(n: number): Promise<void> {
    checkInteger("selectConfiguration: configuration value", n, 0, 0xff);
    this.#live("selectConfiguration");
    if (
      !this.configurations.some((c) => c.configurationValue === n) && n !== 0
    ) {
      throw new UsbError(
        "invalid-argument",
        `the device has no configuration ${n}; it has: ${
          this.configurations.map((c) => c.configurationValue).join(", ")
        }`,
      );
    }
    if (this.#claimed.size > 0) {
      throw new UsbError(
        "busy",
        `cannot change configuration while interfaces ${
          [...this.#claimed.keys()].join(", ")
        } are claimed`,
        {
          hint: "release them first",
        },
      );
    }
    await this.#engine.usbfs.setConfiguration(
      n,
      `selecting configuration ${n}`,
    );
    this.#configurationValue = n;
  }

  /**
   * Selects alternate setting `alternateSetting` of claimed interface
   * `interfaceNumber` (SET_INTERFACE), as WebUSB's
   * `USBDevice.selectAlternateInterface`; the same as
   * {@linkcode Interface.selectAlternateInterface} on the claimed interface.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4ab"); // the bench's Loopback gadget
   * await dev.claimInterface(0);
   * // The bench gadgets have one alternate setting; an iso device has more.
   * await dev.selectAlternateInterface(0, 0);
   * ```
   */
  async selectAlternateInterface(
    interfaceNumber: number,
    alternateSetting: number,
  ): Promise<void> {
    checkInteger(
      "selectAlternateInterface: interface number",
      interfaceNumber,
      0,
      0xff,
    );
    checkInteger(
      "selectAlternateInterface: alternate setting",
      alternateSetting,
      0,
      0xff,
    );
    this.#live("selectAlternateInterface");
    const iface = this.#claimed.get(interfaceNumber);
    if (iface === undefined) {
      throw new UsbError(
        "invalid-argument",
        `selectAlternateInterface: interface ${interfaceNumber} is not claimed`,
        { hint: `claim it first with claimInterface(${interfaceNumber})` },
      );
    }
    await iface.selectAlternateInterface(alternateSetting);
  }

  /**
   * Claims interface `n` (bInterfaceNumber, an integer from 0 to 255) of the
   * active configuration. With `detachKernelDriver` (a boolean), a kernel
   * driver bound to it is detached for the session
   * (USBDEVFS_DISCONNECT_CLAIM) and bound again on release or close.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * // usbtest is bound to SourceSink: detach it (rebound at close).
   * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
   * assert.ok(iface.endpoints.length > 0);
   * ```
   */
  // deno-lint-ignore require-await
  async claimInterface(
    n: number,
    options: { detachKernelDriver?: boolean } = {},
  ): Promise<Interface> {
    checkInteger("claimInterface: interface number", n, 0, 0xff);
    const o = checkOptions("claimInterface: options", options, [
      "detachKernelDriver",
    ]);
    const detachKernelDriver = checkBoolean(
      "claimInterface: options.detachKernelDriver",
      o.detachKernelDriver,
    );
    this.#live("claimInterface");
    const existing = this.#claimed.get(n);
    if (existing) return existing;
    const config = this.configuration;
    const desc = config?.interfaces.find((i) => i.interfaceNumber === n);
    if (!config || !desc) {
      throw new UsbError(
        "invalid-argument",
        config
          ? `configuration ${config.configurationValue} has no interface ${n}; it has: ${
            config.interfaces.map((i) => i.interfaceNumber).join(", ")
          }`
          : "the device is unconfigured",
        {
          hint: config
            ? "interface numbers are bInterfaceNumber values"
            : "call selectConfiguration(1) first",
        },
      );
    }
    const usbfs = this.#engine.usbfs;
    const driver = this.#driverOf(n);
    let detached: string | undefined;
    if (
      detachKernelDriver && driver !== undefined && driver !== "usbfs"
    ) {
      usbfs.check(
        usbfs.disconnectClaim(n),
        `detaching ${driver} from interface ${n}`,
        this.#holder(n),
      );
      detached = driver;
      // Written before anything can go wrong, so that even SIGKILL leaves a
      // trace for `usb rebind`.
      recordDetach({
        portPath: this.info.portPath,
        devnode: this.info.devnode,
        vendorId: this.info.vendorId,
        productId: this.info.productId,
        interfaceNumber: n,
        driver,
      });
    } else {
      const r = usbfs.claim(n);
      if (r === -Errno.EBUSY) {
        usbfs.check(
          r,
          `cannot claim interface ${n} of ${this.#engine.describe()}`,
          this.#holder(n),
        );
      }
      usbfs.check(r, `claiming interface ${n}`);
    }
    const iface = new Interface(
      this.#engine,
      this.#pool,
      desc,
      detached,
      (i) => {
        this.#claimed.delete(i.interfaceNumber);
        if (i.detachedDriver !== undefined) {
          clearDetach(this.info.portPath, i.interfaceNumber);
        }
      },
    );
    this.#claimed.set(n, iface);
    return iface;
  }

  #driverOf(n: number): string | undefined {
    return this.#engine.usbfs.driver(n);
  }

  #holder(n: number): string {
    const driver = this.#driverOf(n);
    if (driver === undefined) return "something unknown";
    if (driver !== "usbfs") return `kernel driver ${driver}`;
    const who = usbfsHolders(this.info.devnode);
    return who.length > 0
      ? `another usbfs user: ${who.join(", ")}`
      : "another usbfs user";
  }

  /**
   * Starts a control transfer on a pooled Transfer, its setup packet and
   * data stage in the transfer's scratch buffer. The setup packet was
   * checked into {@linkcode SETUP} by {@linkcode setupInto} just before
   * (nothing ran in between), `request` is its bRequest; `data` was checked.
   */
  #control(
    method: string,
    dir: "in" | "out",
    request: number,
    length: number,
    data: Uint8Array | null,
    options: CheckedTransferOptions,
  ): Promise<unknown> {
    this.#live(method);
    const t = Transfer.get(this.#engine, -1);
    const buf = t.scratch(8 + length);
    for (let i = 0; i < 6; i++) buf[i] = SETUP[i]!;
    buf[6] = length & 0xff;
    buf[7] = length >> 8;
    if (data !== null) buf.set(data, 8);
    t.add(
      dir,
      UrbType.control,
      0,
      buf,
      8,
      8 + length,
      false,
      false,
      controlWhat(dir, request),
      true,
    );
    return t.start(options);
  }

  #controlIn(
    method: string,
    setup: SetupPacket,
    length: number,
    options: CheckedTransferOptions,
  ): Promise<InResult> {
    const request = setupInto(method, setup, "in");
    return this.#control(
      method,
      "in",
      request,
      length,
      null,
      options,
    ) as Promise<
      InResult
    >;
  }

  /**
   * A control transfer from the device: reads up to `length` bytes (an
   * integer from 0 to 65535). The setup packet is checked as
   * {@linkcode checkSetup} says; a bad argument rejects with
   * `invalid-argument` and nothing is sent.
   *
   * @example GET_DESCRIPTOR(DEVICE)
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * const r = await dev.controlTransferIn(
   *   { requestType: "standard", recipient: "device", request: 6, value: 0x0100, index: 0 },
   *   18,
   * );
   * assert.deepEqual([...r.data.subarray(0, 2)], [18, 1]); // bLength, DEVICE
   * ```
   */
  controlTransferIn(
    setup: SetupPacket,
    length: number,
    options: TransferOptions = {},
  ): Promise<InResult> {
    try {
      const request = setupInto("controlTransferIn", setup, "in");
      const n = checkInteger("controlTransferIn: length", length, 0, 0xffff);
      const o = readTransferOptions("controlTransferIn", options, false, false);
      return this.#control(
        "controlTransferIn",
        "in",
        request,
        n,
        null,
        o,
      ) as Promise<
        InResult
      >;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A control transfer to the device, with `data` (a Uint8Array, another
   * ArrayBuffer view or an ArrayBuffer, at most 65535 bytes; absent: none)
   * as the data stage. A bad argument rejects with `invalid-argument` and
   * nothing is sent.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * // SourceSink's vendor requests 0x5b and 0x5c write and read back a buffer.
   * await dev.controlTransferOut(
   *   { requestType: "vendor", recipient: "device", request: 0x5b, value: 0, index: 0 },
   *   new Uint8Array([1, 2, 3]),
   * );
   * const r = await dev.controlTransferIn(
   *   { requestType: "vendor", recipient: "device", request: 0x5c, value: 0, index: 0 },
   *   3,
   * );
   * assert.deepEqual([...r.data], [1, 2, 3]);
   * ```
   */
  controlTransferOut(
    setup: SetupPacket,
    data: Uint8Array = new Uint8Array(0),
    options: TransferOptions = {},
  ): Promise<OutResult> {
    try {
      const request = setupInto("controlTransferOut", setup, "out");
      const bytes = plainBytes("controlTransferOut: data", data, 0xffff);
      const o = readTransferOptions(
        "controlTransferOut",
        options,
        false,
        false,
      );
      return this.#control(
        "controlTransferOut",
        "out",
        request,
        bytes.length,
        bytes,
        o,
      ) as Promise<OutResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Submits many bulk or interrupt transfers at once and resolves when all
   * are over, with their results in order: for a request/response protocol,
   * one promise for 16 OUT/IN pairs instead of 32. Each request is
   * `{ endpoint, data }` (OUT: a Uint8Array or a UsbBuffer) or
   * `{ endpoint, length }` (IN: a byte count); its endpoint must belong to
   * a claimed interface. Every request is checked before anything is
   * submitted: a bad one rejects with `invalid-argument` naming it
   * (`transferBatch: requests[3].endpoint`). `timeout` and `signal` apply
   * to the whole batch. A stall or babble is a request's `status`; any
   * other failure rejects with a UsbError whose `requestIndex` says which
   * request failed, whose `data`/`bytesTransferred` are that request's
   * partial data, and whose `results` are the results of the requests
   * before it. The kernel runs requests on different endpoints
   * concurrently, and those on one endpoint in order.
   *
   * @example 16 request/response pairs on a loopback function
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4ab"); // the bench's Loopback gadget
   * await dev.claimInterface(0);
   * // Loopback: each OUT on 0x02 comes back on IN 0x81.
   * const requests = [];
   * for (let i = 0; i < 16; i++) {
   *   requests.push({ endpoint: 0x02, data: new Uint8Array(64).fill(i) });
   *   requests.push({ endpoint: 0x81, length: 64 });
   * }
   * const results = await dev.transferBatch(requests, { timeout: 1000 });
   * console.log(results[1]); // { status: "ok", data: Uint8Array(64) [0, 0, ...] }
   * assert.equal(results.length, 32);
   * ```
   */
  transferBatch(
    requests: readonly BatchRequest[],
    options: TransferOptions = {},
  ): Promise<BatchResult[]> {
    try {
      const o = checkTransferOptions("transferBatch", options);
      this.#live("transferBatch");
      const list = readRequests(requests);
      const t = Transfer.get(this.#engine, -1);
      try {
        const seen = new Set<UsbBuffer>();
        for (let i = 0; i < list.length; i++) {
          this.#batchRequest(t, requestName(i), list[i], seen);
        }
        const urbs = t.urbCount();
        if (urbs > this.#engine.freeSlots) {
          throw new UsbError(
            "no-memory",
            `transferBatch: the ${list.length} requests need ${urbs} URBs, ` +
              `and ${this.#engine.freeSlots} of the ${this.#engine.slotCount} URB slots of ${this.#engine.describe()} are free`,
            {
              hint:
                "send fewer requests at once, or open the device with a larger { maxUrbs }",
            },
          );
        }
      } catch (e) {
        t.discardRequests();
        throw e;
      }
      return t.start(o, true) as Promise<BatchResult[]>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #batchRequest(
    t: Transfer,
    name: string,
    request: unknown,
    seen: Set<UsbBuffer>,
  ): void {
    const r = checkOptions(name, request, ["endpoint", "data", "length"]);
    const address = checkInteger(`${name}.endpoint`, r.endpoint, 0, 0xff);
    let ep: Endpoint | undefined;
    for (const iface of this.#claimed.values()) {
      ep = iface.findEndpoint(address);
      if (ep !== undefined) break;
    }
    if (ep === undefined) {
      throw invalidArgument(
        `${name}.endpoint`,
        address,
        "the address of an endpoint of a claimed interface",
        this.#claimed.size === 0
          ? "claim the interface first: no interface is claimed"
          : `the claimed interfaces have: ${
            [...this.#claimed.values()].flatMap((i) =>
              i.endpoints.map((e) => hex(e.address))
            ).join(", ")
          }`,
      );
    }
    if (r.data !== undefined && r.length !== undefined) {
      throw invalidArgument(
        name,
        request,
        "an OUT request { endpoint, data } or an IN request { endpoint, length }, not both",
      );
    }
    if (r.data !== undefined) {
      let mem: Uint8Array<ArrayBuffer> | UsbBuffer;
      if (UsbBuffer.is(r.data)) {
        const b = r.data;
        if (b.released || b.inFlight || seen.has(b)) {
          throw invalidArgument(
            `${name}.data`,
            b,
            "a UsbBuffer that was not released and that no other transfer or request owns",
          );
        }
        this.#pool.checkOwner(b, `${name}.data`);
        seen.add(b);
        mem = b;
      } else {
        const bytes = checkBytes(`${name}.data`, r.data);
        mem = bytes.buffer instanceof ArrayBuffer
          ? bytes as Uint8Array<ArrayBuffer>
          : new Uint8Array(bytes);
      }
      ep.addToBatch(
        t,
        name,
        "out",
        mem,
        mem instanceof Uint8Array ? mem.length : mem.size,
        this.#interfaceOf(ep.address),
      );
      return;
    }
    if (r.length === undefined) {
      throw invalidArgument(
        name,
        request,
        "an OUT request { endpoint, data } or an IN request { endpoint, length }",
      );
    }
    const n = checkInteger(`${name}.length`, r.length, 0, MAX_TRANSFER_BYTES);
    let mem: Uint8Array<ArrayBuffer>;
    try {
      mem = new Uint8Array(n);
    } catch (e) {
      throw new UsbError(
        "no-memory",
        `${name}.length: JavaScript could not allocate ${n} bytes`,
        { cause: e },
      );
    }
    ep.addToBatch(t, name, "in", mem, n, this.#interfaceOf(ep.address));
  }

  #interfaceOf(address: number): number {
    for (const iface of this.#claimed.values()) {
      if (iface.findEndpoint(address) !== undefined) {
        return iface.interfaceNumber;
      }
    }
    return -1;
  }

  /**
   * Reads string descriptor `index` (an integer from 1 to 255) in `langId`
   * (an integer from 0 to 65535; default: the device's first language),
   * decoded from UTF-16LE.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * const product = await dev.getStringDescriptor(dev.deviceDescriptor.productStringIndex);
   * assert.match(product, /SourceSink/);
   * ```
   */
  async getStringDescriptor(
    index: number,
    langId?: number,
    options: TransferOptions = {},
  ): Promise<string> {
    checkInteger("getStringDescriptor: index", index, 0, 0xff);
    if (index === 0) {
      throw new UsbError(
        "invalid-argument",
        "getStringDescriptor: index 0 is the language table, not a string",
        {
          hint:
            "a descriptor's string index is 0 when it has no such string: check it first",
        },
      );
    }
    if (langId !== undefined) {
      checkInteger("getStringDescriptor: langId", langId, 0, 0xffff);
    }
    const o = checkTransferOptions("getStringDescriptor", options);
    const get = (i: number, lang: number) =>
      this.#controlIn(
        "getStringDescriptor",
        {
          requestType: "standard",
          recipient: "device",
          request: 6,
          value: 0x0300 | i,
          index: lang,
        },
        255,
        o,
      );
    if (langId === undefined) {
      if (this.#langId === undefined) {
        const langs = await get(0, 0);
        if (langs.status !== "ok" || langs.data.length < 4) {
          throw new UsbError(
            "not-supported",
            "the device has no string descriptors (no language table)",
          );
        }
        this.#langId = langs.data[2]! | (langs.data[3]! << 8);
      }
      langId = this.#langId;
    }
    const r = await get(index, langId);
    if (r.status !== "ok") {
      throw new UsbError(
        "io",
        `reading string descriptor ${index} ended with ${r.status}`,
      );
    }
    const len = Math.min(r.data[0] ?? 0, r.data.length);
    if (len < 2 || r.data[1] !== 3) {
      throw new UsbError(
        "invalid-descriptor",
        `string descriptor ${index} is malformed (${len} bytes)`,
      );
    }
    return new TextDecoder("utf-16le").decode(
      r.data.subarray(2, len - ((len - 2) % 2)),
    );
  }

  /**
   * Resets the device (USBDEVFS_RESET). Claimed interfaces stay claimed.
   * Resolves with whether the device re-enumerated (see `ResetResult` in
   * src/hotplug.ts): then this `Device` is disconnected and
   * {@linkcode reopen} opens the new one.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * let dev = await open("0525:a4ab"); // the bench's Loopback gadget
   * const { reenumerated } = await dev.reset();
   * if (reenumerated) dev = await dev.reopen();
   * await dev.close();
   * ```
   */
  async reset(): Promise<ResetResult> {
    this.#live("reset");
    await this.#engine.cancelAll("reset");
    try {
      await this.#engine.usbfs.reset("resetting the device");
    } catch (e) {
      // hub.c usb_reset_and_verify_device: changed descriptors (or a device
      // that did not come back) end in a logical disconnect and -ENODEV.
      if (!(e instanceof UsbError) || e.code !== "disconnected") throw e;
      this.#reenumerated = true;
      this.#unplug.markGone();
      return { reenumerated: true };
    }
    return { reenumerated: false };
  }

  /**
   * Opens the same physical device again (the device at the same port
   * path), after {@linkcode reset} or a replug: closes this one if it is
   * open, waits until the device is there and openable (a new incarnation
   * if this one is gone or re-enumerated), and returns it as a new
   * `Device`, whose {@linkcode reopened} says whether the address and the
   * descriptors changed. `options.timeout` defaults to 10000 ms.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * await using dev = await open("0525:a4ab"); // the bench's Loopback gadget
   * const { reenumerated } = await dev.reset();
   * await using again = await dev.reopen();
   * console.log(reenumerated, again.reopened?.addressChanged, again.reopened?.descriptorsChanged);
   * ```
   */
  async reopen(options: ReopenOptions = {}): Promise<Device> {
    const again = findAgain(this.info, options);
    const opened = checkOpenOptions("reopen", again.open);
    const mustBeNew = this.#reenumerated || this.gone;
    if (!this.#closed) await this.close();
    const found = await again.wait(mustBeNew);
    const device = Device.openInfo(found.info, {
      maxUrbs: opened.maxUrbs,
      ...(opened.maxBufferBytes === undefined
        ? {}
        : { maxBufferBytes: opened.maxBufferBytes }),
    });
    device.#reopened = found.report;
    return device;
  }

  /**
   * Closes the device: cancels pending transfers, releases interfaces (and
   * re-attaches kernel drivers usbkit detached), closes the usbfs fd. Safe to
   * call twice, and after an unplug.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * const dev = await open("0525:a4a0"); // the bench's SourceSink gadget
   * await dev.close();
   * assert.ok(dev.closed);
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#engine.cancelAll("closed");
      // Every claim first, then every driver: a driver that spans several
      // interfaces (cdc_acm) binds only once usbkit holds none of them.
      const released: Interface[] = [];
      for (const iface of [...this.#claimed.values()]) {
        if (await iface.releaseClaim()) released.push(iface);
      }
      for (const iface of released) await iface.bindDetachedDriver();
      for (const iface of released) iface.finishRelease();
      this.#pool.close();
      await this.#unplug.stop();
      await this.#engine.usbfs.close();
      this.#engine.dispose();
    } finally {
      this.#capture?.close();
      untrackOpen(this.#exitHook);
    }
  }

  /**
   * Cleanup at exit (a signal, `Deno.exit()`, the end of the script, an
   * uncaught error), where nothing can be awaited: release the claimed
   * interfaces and bind again the kernel drivers usbkit detached,
   * synchronously. The fd closes with the process.
   */
  #emergencyRelease(): void {
    if (this.#closed && this.#claimed.size === 0) return;
    const usbfs = this.#engine.usbfs;
    if (this.#engine.gone) return;
    // The kernel kills each interface's URBs as it releases it. Every claim
    // goes before any driver is bound (cdc_acm spans two interfaces).
    for (const iface of this.#claimed.values()) {
      usbfs.release(iface.interfaceNumber);
    }
    for (const iface of this.#claimed.values()) {
      if (iface.detachedDriver === undefined) continue;
      const n = iface.interfaceNumber;
      if (usbfs.connectDriverSync(n) >= 0) {
        clearDetach(this.info.portPath, n);
      }
    }
  }

  /** `await using dev = await open(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens a device by selector: `"VID:PID"`, a port path like `"2-1"`, a serial
 * number, a /dev/bus/usb path, a selector object, or a listed device. The
 * selector and the options are checked before anything is read or opened:
 * a bad one rejects with `invalid-argument`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * await using dev = await open("0525:a4a0"); // the bench's SourceSink gadget
 * assert.equal(dev.deviceDescriptor.productId, 0xa4a0);
 * ```
 */
export async function open(
  selector: DeviceSelector | string | DeviceInfo,
  options: OpenOptions = {},
): Promise<Device> {
  checkOpenOptions("open", options);
  let info: DeviceInfo;
  if (isListedDevice(selector)) {
    info = checkInfo("open", selector);
  } else {
    const sel = checkSelector("open: selector", selector);
    info = selectDevice(await listDevices(), sel);
  }
  return Device.openInfo(info, options);
}

/** True for what listDevices() returns (rather than a selector object). */
function isListedDevice(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  try {
    return "devnode" in value && "descriptors" in value;
  } catch {
    return false; // a Proxy: checkSelector reports it
  }
}

/** `transferBatch: requests[i]`, built once per index, not once per call. */
const requestNames: string[] = [];
function requestName(i: number): string {
  while (requestNames.length <= i) {
    requestNames.push(`transferBatch: requests[${requestNames.length}]`);
  }
  return requestNames[i]!;
}
