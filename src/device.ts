/**
 * An open USB device: configuration, interfaces, control transfers, reset
 * and close.
 *
 * @module
 */

import { capabilityNames, speedFromKernel } from "./capabilities.ts";
import type {
  ConfigurationDescriptor,
  DeviceDescriptor,
  Speed,
} from "./descriptors.ts";
import { listDevices, type UsbDeviceInfo } from "./enumeration.ts";
import { type OpenResource, trackOpen, untrackOpen } from "./cleanup.ts";
import { clearDetach, recordDetach } from "./driver_journal.ts";
import { Errno, errorFromErrno, UsbError } from "./errors.ts";
import { cString, helper } from "./ffi.ts";
import { Interface } from "./interface.ts";
import {
  type AllocBufferOptions,
  BufferPool,
  type UsbBuffer,
} from "./buffer.ts";
import {
  checkSelector,
  type DeviceSelector,
  selectDevice,
} from "./selector.ts";
import {
  type InResult,
  type OutResult,
  Transfer,
  type TransferOptions,
  UrbEngine,
  UrbType,
} from "./transfer.ts";
import {
  checkBoolean,
  checkBytes,
  type CheckedTransferOptions,
  checkInteger,
  checkOneOf,
  checkOptions,
  checkString,
  checkTransferOptions,
  hex,
  invalidArgument,
  MAX_TRANSFER_BYTES,
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
}

/** The most URB slots a device may have (each takes about 1.6 KiB). */
const MAX_URBS = 65536;

/** {@linkcode OpenOptions}, checked. */
function checkOpenOptions(
  method: string,
  value: unknown,
): { maxUrbs: number; maxBufferBytes: number | undefined } {
  const o = checkOptions(`${method}: options`, value, [
    "maxUrbs",
    "maxBufferBytes",
  ]);
  return {
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
function checkInfo(method: string, value: unknown): UsbDeviceInfo {
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
  return value as UsbDeviceInfo;
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
 * ```ts ignore
 * import { open } from "../mod.ts";
 * await using dev = await open("0525:a4a0");
 * console.log(dev.deviceDescriptor.vendorId.toString(16), dev.speed, dev.capabilityNames);
 * ```
 */
export class Device {
  /** What enumeration found for this device. */
  readonly info: UsbDeviceInfo;
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
  /** What the exit cleanup (src/cleanup.ts) calls on a signal or at exit. */
  readonly #exitHook: OpenResource = {
    close: () => this.close(),
    emergencyRelease: () => this.#emergencyRelease(),
  };

  private constructor(
    info: UsbDeviceInfo,
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
  }

  /** Opens a listed device. Prefer {@linkcode open}. */
  static openInfo(info: UsbDeviceInfo, options: OpenOptions = {}): Device {
    checkInfo("openInfo", info);
    const opened = checkOpenOptions("openInfo", options);
    const h = helper();
    const err = new Int32Array(1);
    // usbkit_open needs the reaper machinery; creating it is idempotent.
    const init = h.sym.usbkit_init();
    if (init < 0) {
      throw errorFromErrno(init, "starting the usbkit reaper thread");
    }
    const ids = {
      vendorId: info.vendorId,
      productId: info.productId,
      devnode: info.devnode,
    };
    const handle = h.sym.usbkit_open(
      cString(info.devnode),
      opened.maxUrbs,
      err,
    );
    if (handle === null) {
      const e = err[0] ?? -Errno.EIO;
      if (e === -Errno.ENOENT) {
        throw new UsbError(
          "not-found",
          `${info.devnode} does not exist: the device is gone`,
          {
            errno: Errno.ENOENT,
            hint: "run `deno task usb list` to see what is attached",
          },
        );
      }
      throw errorFromErrno(e, `cannot open ${info.devnode}`, ids);
    }
    const caps = new Uint32Array(1);
    h.sym.usbkit_get_capabilities(handle, caps);
    const speed = h.sym.usbkit_get_speed(handle);
    const engine = new UrbEngine(h, handle, caps[0] ?? 0);
    engine.ids = ids;
    const id = `${hex(info.vendorId, 4, "")}:${hex(info.productId, 4, "")}`;
    engine.describe = () => `device ${id} at ${info.portPath}`;
    const device = new Device(info, engine, speed, opened);
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

  /** Names of the usbfs capability bits, such as `"MMAP"`. */
  get capabilityNames(): string[] {
    return capabilityNames(this.capabilities);
  }

  /** True once usbfs reported the device gone. */
  get disconnected(): boolean {
    return this.#engine.gone;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The URB engine, for buffers and streams in this package. */
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
   * ```ts ignore
   * const buf = dev.allocBuffer(65536);
   * console.log(buf.zeroCopy);
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
   * ```ts ignore
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
    const r = await this.#engine.h.sym.usbkit_set_configuration(
      this.#engine.handle,
      n,
    );
    this.#engine.check(r, `selecting configuration ${n}`);
    this.#configurationValue = n;
  }

  /**
   * Claims interface `n` (bInterfaceNumber, an integer from 0 to 255) of the
   * active configuration. With `detachKernelDriver` (a boolean), a kernel
   * driver bound to it is detached for the session
   * (USBDEVFS_DISCONNECT_CLAIM) and bound again on release or close.
   *
   * @example
   * ```ts ignore
   * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
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
    const { sym } = this.#engine.h;
    const handle = this.#engine.handle;
    const driver = this.#driverOf(n);
    let detached: string | undefined;
    if (
      detachKernelDriver && driver !== undefined && driver !== "usbfs"
    ) {
      const r = sym.usbkit_disconnect_claim(handle, n);
      this.#engine.check(
        r,
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
      const r = sym.usbkit_claim_interface(handle, n);
      if (r < 0) {
        if (r === -Errno.EBUSY) {
          const holder = this.#holder(n);
          const e = errorFromErrno(
            r,
            `cannot claim interface ${n} of ${this.#engine.describe()}`,
            {
              ...this.#engine.ids,
              holder,
            },
          );
          throw e;
        }
        this.#engine.check(r, `claiming interface ${n}`);
      }
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
    const out = new Uint8Array(256);
    const r = this.#engine.h.sym.usbkit_get_driver(
      this.#engine.handle,
      n,
      out,
      out.length,
    );
    if (r < 0) return undefined;
    return new TextDecoder().decode(out.subarray(0, r));
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

  /** Starts a control transfer; every argument was checked. */
  #control(
    dir: "in" | "out",
    setup: SetupPacket,
    buf: Uint8Array<ArrayBuffer>,
    options: CheckedTransferOptions,
  ) {
    const what = `control ${dir.toUpperCase()} request ${hex(setup.request)}`;
    const t = new Transfer(this.#engine, dir, what, buf, 8);
    return t.start(UrbType.control, 0, 0, false, options);
  }

  #controlIn(
    method: string,
    setup: SetupPacket,
    length: number,
    options: CheckedTransferOptions,
  ): Promise<InResult> {
    this.#live(method);
    const buf = new Uint8Array(8 + length);
    writeSetup(buf, "in", setup, length);
    return this.#control("in", setup, buf, options) as Promise<InResult>;
  }

  /**
   * A control transfer from the device: reads up to `length` bytes (an
   * integer from 0 to 65535). The setup packet is checked as
   * {@linkcode checkSetup} says; a bad argument rejects with
   * `invalid-argument` and nothing is sent.
   *
   * @example GET_DESCRIPTOR(DEVICE)
   * ```ts ignore
   * const r = await dev.controlTransferIn(
   *   { requestType: "standard", recipient: "device", request: 6, value: 0x0100, index: 0 },
   *   18,
   * );
   * ```
   */
  controlTransferIn(
    setup: SetupPacket,
    length: number,
    options: TransferOptions = {},
  ): Promise<InResult> {
    try {
      const s = checkSetup("controlTransferIn", setup);
      const n = checkInteger("controlTransferIn: length", length, 0, 0xffff);
      const o = checkTransferOptions("controlTransferIn", options);
      return this.#controlIn("controlTransferIn", s, n, o);
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
   * ```ts ignore
   * await dev.controlTransferOut(
   *   { requestType: "vendor", recipient: "device", request: 0x5b, value: 0, index: 0 },
   *   new Uint8Array([1, 2, 3]),
   * );
   * ```
   */
  controlTransferOut(
    setup: SetupPacket,
    data: Uint8Array = new Uint8Array(0),
    options: TransferOptions = {},
  ): Promise<OutResult> {
    try {
      const s = checkSetup("controlTransferOut", setup);
      const bytes = checkBytes("controlTransferOut: data", data, 0xffff);
      const o = checkTransferOptions("controlTransferOut", options);
      this.#live("controlTransferOut");
      const buf = new Uint8Array(8 + bytes.length);
      writeSetup(buf, "out", s, bytes.length);
      buf.set(bytes, 8);
      return this.#control("out", s, buf, o) as Promise<OutResult>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Reads string descriptor `index` (an integer from 1 to 255) in `langId`
   * (an integer from 0 to 65535; default: the device's first language),
   * decoded from UTF-16LE.
   *
   * @example
   * ```ts ignore
   * const product = await dev.getStringDescriptor(dev.deviceDescriptor.productStringIndex);
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
   *
   * @example
   * ```ts ignore
   * await dev.reset();
   * ```
   */
  async reset(): Promise<void> {
    this.#live("reset");
    await this.#engine.cancelAll("reset");
    const r = await this.#engine.h.sym.usbkit_reset(this.#engine.handle);
    this.#engine.check(r, "resetting the device");
  }

  /**
   * Closes the device: cancels pending transfers, releases interfaces (and
   * re-attaches kernel drivers usbkit detached), closes the usbfs fd. Safe to
   * call twice, and after an unplug.
   *
   * @example
   * ```ts ignore
   * await dev.close();
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
      await this.#engine.h.sym.usbkit_close(this.#engine.handle);
      this.#engine.dispose();
    } finally {
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
    const sym = this.#engine.h.sym;
    if (this.#engine.gone) return;
    // The kernel kills each interface's URBs as it releases it. Every claim
    // goes before any driver is bound (cdc_acm spans two interfaces).
    for (const iface of this.#claimed.values()) {
      sym.usbkit_release_interface(this.#engine.handle, iface.interfaceNumber);
    }
    for (const iface of this.#claimed.values()) {
      if (iface.detachedDriver === undefined) continue;
      const n = iface.interfaceNumber;
      if (sym.usbkit_connect_driver_sync(this.#engine.handle, n) >= 0) {
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
 * ```ts ignore
 * import { open } from "../mod.ts";
 * await using dev = await open("0525:a4a0");
 * ```
 */
export async function open(
  selector: DeviceSelector | string | UsbDeviceInfo,
  options: OpenOptions = {},
): Promise<Device> {
  checkOpenOptions("open", options);
  let info: UsbDeviceInfo;
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
