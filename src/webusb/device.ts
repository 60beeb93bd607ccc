/**
 * WebUSB's `USBDevice` over a usbkit {@linkcode Device}: the spec's states
 * (closed, opening, open, closing), its checks in the spec's order
 * (argument conversion, then "no longer connected", then "not open" or
 * "unconfigured", then the interface or endpoint), and its errors (see
 * ./errors.ts).
 *
 * One `USBDevice` object stands for one physical device at one port: when
 * the device is unplugged and plugged again it is the same object (the
 * spec's `[SameObject]` through `connect`/`disconnect` events), found by
 * port path, IDs and serial number.
 *
 * @module
 */

import type { AlternateSetting, DeviceInfo } from "../../mod.ts";
import { checkSetup, Device } from "../device.ts";
import type { Interface } from "../interface.ts";
import type { Endpoint } from "../endpoint.ts";
import { listDevices } from "../enumeration.ts";
import {
  checkBytes,
  checkInteger,
  checkOneOf,
  MAX_TRANSFER_BYTES,
} from "../validate.ts";
import type { TransferOptions, TransferStatus } from "../urb.ts";
import { USBConfiguration } from "./configuration.ts";
import { domException, toWebUsbError, webidl } from "./errors.ts";
import {
  exactView,
  USBInTransferResult,
  USBIsochronousInTransferPacket,
  USBIsochronousInTransferResult,
  USBIsochronousOutTransferPacket,
  USBIsochronousOutTransferResult,
  USBOutTransferResult,
} from "./results.ts";
import { type DeviceSlots, setDeviceSlots } from "./state.ts";
import type { WebUsbControlTransferParameters, WebUsbDevice } from "./types.ts";

/**
 * How a {@linkcode USBDevice} behaves where a script differs from a page
 * (checked by the `USB` that makes it).
 *
 * @example
 * ```ts
 * import type { DeviceBehaviour } from "./device.ts";
 * const b: DeviceBehaviour = { transferTimeout: 0, detachKernelDriver: true, unrestricted: true };
 * console.log(b.detachKernelDriver);
 * ```
 */
export interface DeviceBehaviour {
  /** Milliseconds before a transfer fails with `TimeoutError`; 0: never (the spec). */
  readonly transferTimeout: number;
  /** Detach a kernel driver bound to an interface to claim it, and bind it again on release. */
  readonly detachKernelDriver: boolean;
  /** Allow the spec's protected interface classes (Audio, HID, ...). */
  readonly unrestricted: boolean;
}

/**
 * The key that finds a device again after a replug: port path, IDs and
 * serial number.
 *
 * @param info the device, as listed
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { deviceKey } from "./device.ts";
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const [d] = listDevicesSync({ sysfsRoot: root });
 * assert.match(deviceKey(d!), /^usb1 /);
 * ```
 */
export function deviceKey(info: DeviceInfo): string {
  return `${info.portPath} ${info.vendorId.toString(16).padStart(4, "0")}:${
    info.productId.toString(16).padStart(4, "0")
  } ${info.serialNumber ?? ""}`;
}

/** What a USB object reaches inside its devices. */
interface DeviceHooks {
  info(): DeviceInfo;
  connected(): boolean;
  connect(info: DeviceInfo): void;
  disconnect(): void;
}

const hooks = new WeakMap<USBDevice, DeviceHooks>();

function hooksOf(device: USBDevice): DeviceHooks {
  const h = hooks.get(device);
  if (h === undefined) throw new TypeError("not a USBDevice made by usbkit");
  return h;
}

/**
 * What enumeration last found for a device (for selectors and filters).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { deviceInfo, USBDevice } from "./device.ts";
 * // The bench's SourceSink as the sysfs fixture records it: descriptors, nothing to open
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const info = listDevicesSync({ sysfsRoot: root }).find((d) => d.productId === 0xa4a0)!;
 * const device = new USBDevice(info, { transferTimeout: 0, detachKernelDriver: true, unrestricted: true }, () => {});
 * assert.equal(deviceInfo(device).portPath, "2-1");
 * ```
 */
export function deviceInfo(device: USBDevice): DeviceInfo {
  return hooksOf(device).info();
}

/**
 * Tells a device it is plugged in (again), as `info` describes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { isConnected, markConnected, markDisconnected, USBDevice } from "./device.ts";
 * // The bench's SourceSink as the sysfs fixture records it: descriptors, nothing to open
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const info = listDevicesSync({ sysfsRoot: root }).find((d) => d.productId === 0xa4a0)!;
 * const device = new USBDevice(info, { transferTimeout: 0, detachKernelDriver: true, unrestricted: true }, () => {});
 * markDisconnected(device);
 * markConnected(device, info); // what USB does on a hotplug `add` event
 * assert.equal(isConnected(device), true);
 * ```
 */
export function markConnected(device: USBDevice, info: DeviceInfo): void {
  hooksOf(device).connect(info);
}

/**
 * Tells a device it was unplugged: its pending transfers fail with
 * `NetworkError`, and it is no longer open.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { isConnected, markDisconnected, USBDevice } from "./device.ts";
 * // The bench's SourceSink as the sysfs fixture records it: descriptors, nothing to open
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const info = listDevicesSync({ sysfsRoot: root }).find((d) => d.productId === 0xa4a0)!;
 * const device = new USBDevice(info, { transferTimeout: 0, detachKernelDriver: true, unrestricted: true }, () => {});
 * markDisconnected(device); // what USB does on a hotplug `remove` event
 * assert.equal(isConnected(device), false);
 * assert.equal(device.opened, false);
 * ```
 */
export function markDisconnected(device: USBDevice): void {
  hooksOf(device).disconnect();
}

/**
 * True while the device is known to be plugged in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { isConnected, USBDevice } from "./device.ts";
 * // The bench's SourceSink as the sysfs fixture records it: descriptors, nothing to open
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const info = listDevicesSync({ sysfsRoot: root }).find((d) => d.productId === 0xa4a0)!;
 * const device = new USBDevice(info, { transferTimeout: 0, detachKernelDriver: true, unrestricted: true }, () => {});
 * assert.equal(isConnected(device), true); // until a hotplug `remove` event
 * ```
 */
export function isConnected(device: USBDevice): boolean {
  return hooksOf(device).connected();
}

type Phase = "closed" | "opening" | "open" | "closing";

/** 0xJJMN binary-coded decimal: [JJ, M, N]. */
function bcd(v: number): [number, number, number] {
  return [v >> 8, (v >> 4) & 0xf, v & 0xf];
}

/** A copy of a BufferSource (what the spec's "get a copy of the buffer source" makes). */
function copyBytes(method: string, value: unknown): Uint8Array<ArrayBuffer> {
  return webidl(() => checkBytes(`${method}: data`, value)).slice();
}

/** The WebIDL `octet` conversion, strict: an integer from 0 to 255, else TypeError. */
function octet(name: string, value: unknown): number {
  return webidl(() => checkInteger(name, value, 0, 0xff));
}

/**
 * A USB device, as WebUSB describes it. Its descriptors (`configurations`
 * and every attribute) are readable before `open()`.
 *
 * @example Read a gadget's vendor buffer, on the virtual bench
 * ```ts ignore
 * // Needs a device: tests/device/webusb_test.ts runs this against the bench's SourceSink.
 * import { usb } from "../../webusb.ts";
 * const device = await usb.requestDevice({ filters: [{ vendorId: 0x0525, productId: 0xa4a0 }] });
 * await device.open();
 * await device.claimInterface(0);
 * const r = await device.controlTransferIn({ requestType: "vendor", recipient: "device", request: 0x5c, value: 0, index: 0 }, 8);
 * console.log(r.status, r.data?.byteLength);
 * await device.close();
 * ```
 */
export class USBDevice implements WebUsbDevice {
  #info: DeviceInfo;
  #slots: DeviceSlots;
  #configurations: USBConfiguration[];
  #phase: Phase = "closed";
  #device: Device | undefined;
  /** Claimed interfaces (usbkit's), by number. */
  #claims = new Map<number, Interface>();
  /**
   * Released interfaces whose kernel driver usbkit detached and has not
   * bound again: drivers bind once no interface is claimed (cdc_acm spans
   * two interfaces, and fails to bind while usbkit holds the second).
   */
  #toRebind = new Map<number, Interface>();
  #connected = true;
  /** Transfers in flight on each interface, to abort them (selectAlternateInterface). */
  readonly #inFlight = new Map<number, Set<Promise<unknown>>>();
  readonly #aborters = new Map<number, AbortController>();
  /** The interface number of each usbkit endpoint handed out. */
  readonly #owners = new WeakMap<Endpoint, number>();
  readonly #behaviour: DeviceBehaviour;
  readonly #onForget: () => void;

  /**
   * Made by `USB` (`getDevices`, `requestDevice`, events); not for direct use.
   *
   * @param info the device, as listed
   * @param behaviour the USB object's options
   * @param onForget what `forget()` tells the USB object
   */
  constructor(
    info: DeviceInfo,
    behaviour: DeviceBehaviour,
    onForget: () => void,
  ) {
    this.#info = info;
    this.#behaviour = behaviour;
    this.#onForget = onForget;
    this.#slots = this.#makeSlots(info);
    this.#configurations = this.#makeConfigurations();
    hooks.set(this, {
      info: () => this.#info,
      connected: () => this.#connected,
      connect: (i) => this.#connect(i),
      disconnect: () => this.#disconnect(),
    });
  }

  #makeSlots(info: DeviceInfo): DeviceSlots {
    const slots: DeviceSlots = {
      configurations: info.configurations,
      configurationValue: info.activeConfiguration ?? 0,
      claimed: new Set(),
      alternates: new Map(),
      names: new Map(),
    };
    this.#seedNames(info, slots);
    setDeviceSlots(this, slots);
    return slots;
  }

  #makeConfigurations(): USBConfiguration[] {
    return Object.freeze(
      this.#slots.configurations.map((c) =>
        new USBConfiguration(this, c.configurationValue)
      ),
    ) as USBConfiguration[];
  }

  /** The strings sysfs already has: the active configuration's and its interfaces'. */
  #seedNames(info: DeviceInfo, slots: DeviceSlots): void {
    const active = info.configurations.find((c) =>
      c.configurationValue === info.activeConfiguration
    );
    if (active === undefined) return;
    if (
      active.configurationStringIndex !== 0 &&
      info.configurationName !== undefined
    ) {
      slots.names.set(active.configurationStringIndex, info.configurationName);
    }
    for (const i of info.interfaces) {
      if (i.interfaceName === undefined) continue;
      const alt = active.interfaces.find((d) =>
        d.interfaceNumber === i.interfaceNumber
      )?.alternates.find((a) => a.alternateSetting === i.alternateSetting);
      if (alt !== undefined && alt.interfaceStringIndex !== 0) {
        slots.names.set(alt.interfaceStringIndex, i.interfaceName);
      }
    }
  }

  /** Plugged in (again): new descriptors if they changed. */
  #connect(info: DeviceInfo): void {
    this.#connected = true;
    const same = sameBytes(info.descriptors, this.#info.descriptors);
    this.#info = info;
    if (this.#phase !== "closed") return;
    if (!same) {
      this.#slots = this.#makeSlots(info);
      this.#configurations = this.#makeConfigurations();
    } else {
      this.#slots.configurationValue = info.activeConfiguration ?? 0;
      this.#seedNames(info, this.#slots);
    }
  }

  /** Unplugged: pending transfers fail (NetworkError), the session ends. */
  #disconnect(): void {
    this.#connected = false;
    const device = this.#device;
    this.#device = undefined;
    this.#phase = "closed";
    this.#claims.clear();
    this.#toRebind.clear();
    this.#slots.claimed.clear();
    this.#slots.alternates.clear();
    // Closing a gone device only cancels and frees; it cannot fail usefully.
    device?.close().catch(() => {});
  }

  /** bcdUSB 0xJJMN: JJ. */
  get usbVersionMajor(): number {
    return bcd(this.#info.usbVersion)[0];
  }
  /** bcdUSB 0xJJMN: M. */
  get usbVersionMinor(): number {
    return bcd(this.#info.usbVersion)[1];
  }
  /** bcdUSB 0xJJMN: N. */
  get usbVersionSubminor(): number {
    return bcd(this.#info.usbVersion)[2];
  }
  /** bDeviceClass. */
  get deviceClass(): number {
    return this.#info.deviceClass;
  }
  /** bDeviceSubClass. */
  get deviceSubclass(): number {
    return this.#info.deviceSubclass;
  }
  /** bDeviceProtocol. */
  get deviceProtocol(): number {
    return this.#info.deviceProtocol;
  }
  /** idVendor. */
  get vendorId(): number {
    return this.#info.vendorId;
  }
  /** idProduct. */
  get productId(): number {
    return this.#info.productId;
  }
  /** bcdDevice 0xJJMN: JJ. */
  get deviceVersionMajor(): number {
    return bcd(this.#info.deviceVersion)[0];
  }
  /** bcdDevice 0xJJMN: M. */
  get deviceVersionMinor(): number {
    return bcd(this.#info.deviceVersion)[1];
  }
  /** bcdDevice 0xJJMN: N. */
  get deviceVersionSubminor(): number {
    return bcd(this.#info.deviceVersion)[2];
  }
  /** The iManufacturer string, or null. */
  get manufacturerName(): string | null {
    return this.#info.manufacturerName ?? null;
  }
  /** The iProduct string, or null. */
  get productName(): string | null {
    return this.#info.productName ?? null;
  }
  /** The iSerialNumber string, or null. */
  get serialNumber(): string | null {
    return this.#info.serialNumber ?? null;
  }
  /** The active configuration, or null when unconfigured. */
  get configuration(): USBConfiguration | null {
    return this.#configurations.find((c) =>
      c.configurationValue === this.#slots.configurationValue
    ) ?? null;
  }
  /** Every configuration (frozen). */
  get configurations(): USBConfiguration[] {
    return this.#configurations;
  }
  /** True while this program has the device open. */
  get opened(): boolean {
    return this.#phase === "open";
  }

  /** usbkit's device, if it is open and still there. */
  #usable(): Device | undefined {
    const d = this.#device;
    if (d !== undefined && d.gone) {
      this.#disconnect();
      return undefined;
    }
    return d;
  }

  /** The spec's "check if the device is configured", as a throw. */
  #configured(method: string): Device {
    const d = this.#usable();
    if (!this.#connected) {
      throw domException(
        "NotFoundError",
        `${method}: the device is no longer connected`,
      );
    }
    if (this.#phase !== "open" || d === undefined) {
      throw domException(
        "InvalidStateError",
        `${method}: the device is not open${
          this.#phase === "opening" || this.#phase === "closing"
            ? ` (it is ${this.#phase})`
            : ": call open() first"
        }`,
      );
    }
    if (this.#slots.configurationValue === 0) {
      throw domException(
        "InvalidStateError",
        `${method}: the device is unconfigured: call selectConfiguration(1) first`,
      );
    }
    return d;
  }

  /** The options every transfer takes: only the timeout, when one was asked for. */
  #options(): TransferOptions {
    const t = this.#behaviour.transferTimeout;
    return t > 0 ? { timeout: t } : {};
  }

  /**
   * The options of a transfer on interface `n`: the timeout, and the signal
   * that {@linkcode #abortTransfers} aborts.
   */
  #interfaceOptions(n: number): TransferOptions {
    let ac = this.#aborters.get(n);
    if (ac === undefined) this.#aborters.set(n, ac = new AbortController());
    return { ...this.#options(), signal: ac.signal };
  }

  /** Runs a transfer on interface `n`, tracked so that it can be aborted. */
  async #track<T>(n: number, transfer: Promise<T>): Promise<T> {
    let set = this.#inFlight.get(n);
    if (set === undefined) this.#inFlight.set(n, set = new Set());
    set.add(transfer);
    try {
      return await transfer;
    } finally {
      set.delete(transfer);
    }
  }

  /** The spec's "abort transfers currently scheduled on an interface". */
  async #abortTransfers(n: number): Promise<void> {
    const ac = this.#aborters.get(n);
    this.#aborters.delete(n);
    const pending = [...(this.#inFlight.get(n) ?? [])];
    ac?.abort();
    await Promise.allSettled(pending);
  }

  /** Runs a usbkit call; its failure becomes the WebUSB error. */
  async #run<T>(method: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      const d = this.#device;
      if (d !== undefined && d.gone) this.#disconnect();
      throw toWebUsbError(e, method, !this.#connected);
    }
  }

  /** The interface `n` of the active configuration, or NotFoundError. */
  #interface(method: string, n: number) {
    const iface = this.configuration?.interfaces.find((i) =>
      i.interfaceNumber === n
    );
    if (iface === undefined) {
      throw domException(
        "NotFoundError",
        `${method}: configuration ${this.#slots.configurationValue} has no interface ${n}`,
      );
    }
    return iface;
  }

  /** The spec's "find the endpoint": in a claimed interface's current alternate. */
  #endpoint(method: string, address: number): Endpoint {
    for (const [n, iface] of this.#claims) {
      const alt = this.#interface(method, n).alternate;
      const ep = alt.endpoints.find((e) =>
        (e.endpointNumber | (e.direction === "in" ? 0x80 : 0)) === address
      );
      if (ep !== undefined) {
        const found = iface.endpoint(address);
        this.#owners.set(found, n);
        return found;
      }
    }
    const dir = (address & 0x80) !== 0 ? "in" : "out";
    throw domException(
      "NotFoundError",
      `${method}: no claimed interface has ${dir} endpoint ${address & 0x7f}`,
    );
  }

  /** An endpoint for a bulk/interrupt (or isochronous) transfer, or the spec's error. */
  #transferEndpoint(
    method: string,
    address: number,
    iso: boolean,
  ): Endpoint {
    const ep = this.#endpoint(method, address);
    if ((ep.type === "isochronous") !== iso) {
      throw domException(
        "InvalidAccessError",
        `${method}: endpoint ${address & 0x7f} is ${ep.type}`,
      );
    }
    return ep;
  }

  /**
   * Opens the device: a session through usbfs. Rejects with
   * `NotFoundError` when the device is gone, `InvalidStateError` while it
   * is opening or closing, `NetworkError` when the kernel refuses (the
   * usbkit error, with its hint such as the udev rule to add, is the
   * `cause`).
   */
  async open(): Promise<void> {
    if (this.#phase === "open" && this.#usable() !== undefined) return;
    if (this.#phase === "opening" || this.#phase === "closing") {
      throw domException(
        "InvalidStateError",
        `open: the device is ${this.#phase}`,
      );
    }
    this.#phase = "opening";
    let device: Device;
    try {
      const key = deviceKey(this.#info);
      const now = (await listDevices()).find((d) => deviceKey(d) === key);
      if (now === undefined) {
        this.#phase = "closed";
        this.#connected = false;
        throw domException(
          "NotFoundError",
          "open: the device is no longer connected",
        );
      }
      this.#phase = "closed";
      this.#connect(now);
      this.#phase = "opening";
      device = Device.openInfo(now);
    } catch (e) {
      this.#phase = "closed";
      throw toWebUsbError(e, "open", false);
    }
    this.#device = device;
    this.#slots.configurationValue = device.configuration?.configurationValue ??
      0;
    this.#slots.claimed.clear();
    this.#slots.alternates.clear();
    await this.#readNames(device);
    this.#phase = "open";
  }

  /**
   * Reads the configuration and interface strings sysfs does not have
   * (other configurations, other alternate settings), once: a device that
   * does not answer simply has no names.
   */
  async #readNames(device: Device): Promise<void> {
    const wanted = new Set<number>();
    for (const c of this.#slots.configurations) {
      wanted.add(c.configurationStringIndex);
      for (const i of c.interfaces) {
        for (const a of i.alternates as readonly AlternateSetting[]) {
          wanted.add(a.interfaceStringIndex);
        }
      }
    }
    for (const index of wanted) {
      if (index === 0 || this.#slots.names.has(index)) continue;
      try {
        // A bounded wait: a device that never answers must not hang open().
        const s = await device.getStringDescriptor(index, undefined, {
          timeout: 1000,
        });
        this.#slots.names.set(index, s);
      } catch {
        // No such string: the name stays null, as in a browser.
      }
    }
  }

  /**
   * Ends the session: pending transfers reject with `AbortError`, claimed
   * interfaces are released, and kernel drivers usbkit detached are bound
   * again. Rejects with `NotFoundError` when the device is gone (as the
   * spec says; the session is over anyway).
   */
  async close(): Promise<void> {
    this.#usable();
    if (!this.#connected) {
      throw domException(
        "NotFoundError",
        "close: the device is no longer connected",
      );
    }
    if (this.#phase === "closed") return;
    if (this.#phase !== "open" || this.#device === undefined) {
      throw domException(
        "InvalidStateError",
        `close: the device is ${this.#phase}`,
      );
    }
    this.#phase = "closing";
    const device = this.#device;
    try {
      const claims = [...this.#claims.values()];
      this.#claims.clear();
      this.#slots.claimed.clear();
      this.#slots.alternates.clear();
      for (const iface of claims) await this.#release(iface);
      await this.#rebindDrivers();
      // Cancels what is still pending (control transfers): AbortError.
      await device.close();
    } catch (e) {
      throw toWebUsbError(e, "close", !this.#connected);
    } finally {
      if (this.#device === device) this.#device = undefined;
      if (this.#phase === "closing") this.#phase = "closed";
    }
  }

  /** Gives up a claim (cancelling its transfers: AbortError); the driver binds later. */
  async #release(iface: Interface): Promise<void> {
    await iface.releaseClaim();
    iface.finishRelease();
    if (iface.detachedDriver !== undefined) {
      this.#toRebind.set(iface.interfaceNumber, iface);
    }
  }

  /** Binds the detached kernel drivers again, once nothing is claimed. */
  async #rebindDrivers(): Promise<void> {
    if (this.#claims.size > 0) return;
    const all = [...this.#toRebind.values()];
    this.#toRebind.clear();
    for (const iface of all) {
      try {
        await iface.bindDetachedDriver();
      } catch {
        // The driver may refuse (or the device be gone): `usb list` shows
        // what is bound; nothing here depends on it.
      }
    }
  }

  /**
   * Closes the device if open and forgets it: `getDevices()` and the
   * events leave it out until `requestDevice()` picks it again.
   */
  async forget(): Promise<void> {
    if (this.#phase === "open" && this.#connected) {
      try {
        await this.close();
      } catch {
        // Forgetting does not depend on a clean close.
      }
    }
    this.#onForget();
  }

  /**
   * Selects configuration `configurationValue`: claimed interfaces are
   * released first (their transfers reject with `AbortError`). When it is
   * already the active one, no SET_CONFIGURATION is sent (the kernel
   * refuses one while a kernel driver holds an interface).
   */
  async selectConfiguration(configurationValue: number): Promise<void> {
    const value = octet(
      "selectConfiguration: configurationValue",
      configurationValue,
    );
    this.#usable();
    if (!this.#connected) {
      throw domException(
        "NotFoundError",
        "selectConfiguration: the device is no longer connected",
      );
    }
    if (!this.#configurations.some((c) => c.configurationValue === value)) {
      throw domException(
        "NotFoundError",
        `selectConfiguration: the device has no configuration ${value}; it has ${
          this.#configurations.map((c) => c.configurationValue).join(", ")
        }`,
      );
    }
    const device = this.#device;
    if (this.#phase !== "open" || device === undefined) {
      throw domException(
        "InvalidStateError",
        "selectConfiguration: the device is not open",
      );
    }
    await this.#run("selectConfiguration", async () => {
      const claims = [...this.#claims.values()];
      this.#claims.clear();
      this.#slots.claimed.clear();
      this.#slots.alternates.clear();
      for (const iface of claims) await this.#release(iface);
      await this.#rebindDrivers();
      if (this.#slots.configurationValue !== value) {
        await device.selectConfiguration(value);
      }
      this.#slots.configurationValue = value;
    });
  }

  /**
   * Claims interface `interfaceNumber` of the active configuration. A
   * kernel driver bound to it is detached (unless the USB object was made
   * with `detachKernelDriver: false`) and bound again once no interface
   * is claimed, or at close().
   */
  async claimInterface(interfaceNumber: number): Promise<void> {
    const n = octet("claimInterface: interfaceNumber", interfaceNumber);
    const device = this.#configured("claimInterface");
    const iface = this.#interface("claimInterface", n);
    if (this.#slots.claimed.has(n)) return;
    if (iface.isProtectedClass && !this.#behaviour.unrestricted) {
      throw domException(
        "SecurityError",
        `claimInterface: interface ${n} has a protected class (the USB object was made with unrestricted: false)`,
      );
    }
    await this.#run("claimInterface", async () => {
      const claimed = await device.claimInterface(n, {
        detachKernelDriver: this.#behaviour.detachKernelDriver,
      });
      if (this.#device !== device) return;
      this.#claims.set(n, claimed);
      this.#slots.claimed.add(n);
      this.#slots.alternates.delete(n);
    });
  }

  /**
   * Releases interface `interfaceNumber`: its pending transfers reject
   * with `AbortError`.
   */
  async releaseInterface(interfaceNumber: number): Promise<void> {
    const n = octet("releaseInterface: interfaceNumber", interfaceNumber);
    this.#configured("releaseInterface");
    this.#interface("releaseInterface", n);
    const iface = this.#claims.get(n);
    if (iface === undefined) return;
    this.#claims.delete(n);
    this.#slots.claimed.delete(n);
    this.#slots.alternates.delete(n);
    await this.#run("releaseInterface", async () => {
      await this.#release(iface);
      await this.#rebindDrivers();
    });
  }

  /**
   * Selects alternate setting `alternateSetting` of a claimed interface;
   * the interface's pending transfers reject with `AbortError` first.
   */
  async selectAlternateInterface(
    interfaceNumber: number,
    alternateSetting: number,
  ): Promise<void> {
    const m = "selectAlternateInterface";
    const n = octet(`${m}: interfaceNumber`, interfaceNumber);
    const alt = octet(`${m}: alternateSetting`, alternateSetting);
    this.#configured(m);
    const iface = this.#interface(m, n);
    const claimed = this.#claims.get(n);
    if (claimed === undefined) {
      throw domException(
        "InvalidStateError",
        `${m}: interface ${n} is not claimed: call claimInterface(${n}) first`,
      );
    }
    if (!iface.alternates.some((a) => a.alternateSetting === alt)) {
      throw domException(
        "NotFoundError",
        `${m}: interface ${n} has no alternate setting ${alt}`,
      );
    }
    await this.#run(m, async () => {
      await this.#abortTransfers(n);
      await claimed.selectAlternateInterface(alt);
      this.#slots.alternates.set(n, alt);
    });
  }

  /** The spec's "check the validity of the control transfer parameters". */
  #checkControl(method: string, setup: WebUsbControlTransferParameters): void {
    if (setup.recipient === "interface") {
      const n = setup.index & 0xff;
      this.#interface(method, n);
      if (!this.#slots.claimed.has(n)) {
        throw domException(
          "InvalidStateError",
          `${method}: interface ${n} (the setup's index) is not claimed`,
        );
      }
    } else if (setup.recipient === "endpoint") {
      this.#endpoint(method, setup.index & 0xff);
    }
  }

  /** A control transfer from the device, of up to `length` bytes. */
  async controlTransferIn(
    setup: WebUsbControlTransferParameters,
    length: number,
  ): Promise<USBInTransferResult> {
    const m = "controlTransferIn";
    const s = webidl(() => checkSetup(m, setup));
    const n = webidl(() => checkInteger(`${m}: length`, length, 0, 0xffff));
    const device = this.#configured(m);
    this.#checkControl(m, s);
    return await this.#run(m, async () => {
      const r = await device.controlTransferIn(s, n, this.#options());
      return inResult(r.status, r.data);
    });
  }

  /** A control transfer to the device, with `data` (copied at the call) as its data stage. */
  async controlTransferOut(
    setup: WebUsbControlTransferParameters,
    data?: ArrayBufferView | ArrayBuffer,
  ): Promise<USBOutTransferResult> {
    const m = "controlTransferOut";
    const s = webidl(() => checkSetup(m, setup));
    const bytes = data === undefined ? new Uint8Array(0) : copyBytes(m, data);
    if (bytes.length > 0xffff) {
      throw new TypeError(
        `${m}: data has ${bytes.length} bytes; the most is 65535`,
      );
    }
    const device = this.#configured(m);
    this.#checkControl(m, s);
    return await this.#run(m, async () => {
      const r = await device.controlTransferOut(s, bytes, this.#options());
      return new USBOutTransferResult(
        r.status,
        r.status === "ok" ? bytes.length : r.bytesWritten,
      );
    });
  }

  /** Clears a halt (stall) on endpoint `endpointNumber` of direction `direction`. */
  async clearHalt(
    direction: "in" | "out",
    endpointNumber: number,
  ): Promise<void> {
    const m = "clearHalt";
    const dir = webidl(() =>
      checkOneOf(`${m}: direction`, direction, ["in", "out"] as const)
    );
    const n = octet(`${m}: endpointNumber`, endpointNumber);
    this.#configured(m);
    const ep = this.#endpoint(m, dir === "in" ? n | 0x80 : n);
    await this.#run(m, () => ep.clearHalt());
  }

  /** A bulk or interrupt IN transfer of up to `length` bytes. */
  async transferIn(
    endpointNumber: number,
    length: number,
  ): Promise<USBInTransferResult> {
    const m = "transferIn";
    const n = octet(`${m}: endpointNumber`, endpointNumber);
    const len = webidl(() =>
      checkInteger(`${m}: length`, length, 0, MAX_TRANSFER_BYTES)
    );
    this.#configured(m);
    const ep = this.#transferEndpoint(m, n | 0x80, false);
    return await this.#run(m, async () => {
      const i = this.#owners.get(ep)!;
      const r = await this.#track(
        i,
        ep.transferIn(len, this.#interfaceOptions(i)),
      );
      return inResult(r.status, r.data);
    });
  }

  /** A bulk or interrupt OUT transfer of `data` (copied at the call). */
  async transferOut(
    endpointNumber: number,
    data: ArrayBufferView | ArrayBuffer,
  ): Promise<USBOutTransferResult> {
    const m = "transferOut";
    const n = octet(`${m}: endpointNumber`, endpointNumber);
    const bytes = copyBytes(m, data);
    this.#configured(m);
    const ep = this.#transferEndpoint(m, n, false);
    return await this.#run(m, async () => {
      const i = this.#owners.get(ep)!;
      const r = await this.#track(
        i,
        ep.transferOut(bytes, this.#interfaceOptions(i)),
      );
      return new USBOutTransferResult(r.status, r.bytesWritten);
    });
  }

  /**
   * An isochronous IN transfer of `packetLengths.length` packets. The
   * result's `data` is the whole buffer (each packet's slot at the offset
   * the lengths before it give); each packet's `data` is the bytes it
   * received. A packet that failed otherwise than by a stall or a babble
   * rejects the transfer with `NetworkError`, as the spec says.
   */
  async isochronousTransferIn(
    endpointNumber: number,
    packetLengths: number[],
  ): Promise<USBIsochronousInTransferResult> {
    const m = "isochronousTransferIn";
    const n = octet(`${m}: endpointNumber`, endpointNumber);
    const lengths = packetLengthList(m, packetLengths);
    this.#configured(m);
    const ep = this.#transferEndpoint(m, n | 0x80, true);
    return await this.#run(m, async () => {
      const i = this.#owners.get(ep)!;
      const r = await this.#track(
        i,
        ep.isochronousTransferIn(lengths, this.#interfaceOptions(i)),
      );
      const total = lengths.reduce((a, b) => a + b, 0);
      const buffer = new ArrayBuffer(total);
      const whole = new Uint8Array(buffer);
      const packets: USBIsochronousInTransferPacket[] = [];
      let offset = 0;
      r.packets.forEach((p, i) => {
        if (p.status === "error") {
          throw domException(
            "NetworkError",
            `${m}: packet ${i} failed (errno ${-p.errno})`,
          );
        }
        whole.set(p.data, offset);
        packets.push(
          new USBIsochronousInTransferPacket(
            p.status,
            new DataView(buffer, offset, p.length),
          ),
        );
        offset += lengths[i]!;
      });
      return new USBIsochronousInTransferResult(packets, new DataView(buffer));
    });
  }

  /**
   * An isochronous OUT transfer: `data` (copied at the call) cut into
   * packets of `packetLengths`. A packet that failed otherwise than by a
   * stall rejects the transfer with `NetworkError`.
   */
  async isochronousTransferOut(
    endpointNumber: number,
    data: ArrayBufferView | ArrayBuffer,
    packetLengths: number[],
  ): Promise<USBIsochronousOutTransferResult> {
    const m = "isochronousTransferOut";
    const n = octet(`${m}: endpointNumber`, endpointNumber);
    const bytes = copyBytes(m, data);
    const lengths = packetLengthList(m, packetLengths);
    this.#configured(m);
    const ep = this.#transferEndpoint(m, n, true);
    return await this.#run(m, async () => {
      const i = this.#owners.get(ep)!;
      const r = await this.#track(
        i,
        ep.isochronousTransferOut(bytes, lengths, this.#interfaceOptions(i)),
      );
      return new USBIsochronousOutTransferResult(
        r.packets.map((p, i) => {
          if (p.status === "error") {
            throw domException(
              "NetworkError",
              `${m}: packet ${i} failed (errno ${-p.errno})`,
            );
          }
          return new USBIsochronousOutTransferPacket(p.status, p.bytesWritten);
        }),
      );
    });
  }

  /**
   * Resets the device: pending transfers reject with `AbortError`. When
   * the reset makes the device enumerate again (its descriptors changed),
   * the session is over: this rejects with `NetworkError`, and the same
   * object comes back with a `connect` event.
   */
  async reset(): Promise<void> {
    const device = this.#configured("reset");
    await this.#run("reset", async () => {
      const { reenumerated } = await device.reset();
      if (reenumerated) {
        this.#disconnect();
        throw domException(
          "NetworkError",
          "reset: the device enumerated again; open it again once it is back",
        );
      }
    });
  }
}

/**
 * The spec's IN result: `data` only "if data was received" (a program such
 * as web-serial-polyfill enqueues `data.buffer` into a byte stream, which
 * refuses an empty one).
 */
function inResult(
  status: TransferStatus,
  data: Uint8Array,
): USBInTransferResult {
  return new USBInTransferResult(
    status,
    data.length > 0 ? exactView(data) : undefined,
  );
}

/**
 * WebIDL `sequence<unsigned long>`, as a copy: any iterable object (an
 * array, a `Uint32Array`, ...), as WebIDL converts one; usbkit checks the
 * limits.
 */
function packetLengthList(method: string, value: unknown): number[] {
  const iterable = (typeof value === "object" && value !== null) ||
    typeof value === "function";
  if (
    !iterable ||
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !==
      "function"
  ) {
    throw new TypeError(
      `${method}: packetLengths must be an array (or another iterable) of integers`,
    );
  }
  return Array.from(value as Iterable<unknown>).map((v, i) =>
    webidl(() =>
      checkInteger(`${method}: packetLengths[${i}]`, v, 0, 0xffffffff)
    )
  );
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
