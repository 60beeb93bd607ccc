/**
 * WebUSB's `USB` object (what `navigator.usb` is) over usbkit: devices
 * listed from sysfs, `requestDevice` without a chooser, and `connect` /
 * `disconnect` events from usbkit's hotplug watcher.
 *
 * @module
 */

import type { DeviceInfo, DeviceSelector } from "../../mod.ts";
import { listDevices } from "../enumeration.ts";
import { type DeviceWatcher, watchDevices } from "../hotplug.ts";
import { checkSelector, matchesSelector, parseSelector } from "../selector.ts";
import {
  checkBoolean,
  checkOptions,
  checkTimeout,
  describeValue,
} from "../validate.ts";
import {
  type DeviceBehaviour,
  deviceInfo,
  deviceKey,
  isConnected,
  markConnected,
  markDisconnected,
  USBDevice,
} from "./device.ts";
import { domException, webidl } from "./errors.ts";
import { USBConnectionEvent } from "./event.ts";
import { checkRequestOptions, matchesFilter } from "./filters.ts";
import type {
  WebUsb,
  WebUsbConnectionEvent,
  WebUsbDeviceRequestOptions,
} from "./types.ts";

/**
 * The environment variable that picks the device `requestDevice()`
 * returns among those matching its filters: a usbkit selector
 * (`"VID:PID"`, a port path such as `"2-1"`, a serial number, a
 * /dev/bus/usb path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEVICE_ENV } from "./usb.ts";
 * assert.equal(DEVICE_ENV, "USBKIT_WEBUSB_DEVICE");
 * ```
 */
export const DEVICE_ENV = "USBKIT_WEBUSB_DEVICE";

/**
 * Options of a {@linkcode USB} object: what a script needs where a browser
 * has a chooser, a permission prompt or its own policy. None is part of
 * the spec.
 *
 * @example
 * ```ts
 * import { USB } from "./usb.ts";
 * const usb = new USB({ transferTimeout: 5000, device: "0525:a4a0" });
 * console.log(usb instanceof EventTarget);
 * ```
 */
export interface USBOptions {
  /**
   * Milliseconds after which any transfer rejects with a `TimeoutError`
   * DOMException (0, absent or Infinity: never, as in the spec, which has
   * no timeouts).
   */
  transferTimeout?: number;
  /**
   * `claimInterface` detaches a kernel driver bound to the interface and
   * binds it again once no interface is claimed (at the latest at
   * `close()`). Default true. With false, claiming an interface a driver
   * holds rejects with `NetworkError` (cause: usbkit's `busy`).
   */
  detachKernelDriver?: boolean;
  /**
   * Allow the spec's protected interface classes (Audio, HID, Mass
   * Storage, Smart Card, Video, Audio/Video, Wireless Controller), as a
   * page with the `usb-unrestricted` policy may. Default true: a script is
   * trusted code. With false, claiming one rejects with `SecurityError`.
   */
  unrestricted?: boolean;
  /**
   * Which of the devices matching `requestDevice()`'s filters it returns:
   * a usbkit selector (text or object). Default: the environment variable
   * {@linkcode DEVICE_ENV} if set (and readable), else the first match.
   */
  device?: DeviceSelector | string;
}

/** What addEventListener takes: a DOM listener, or a handler of connection events. */
type AnyListener =
  | EventListenerOrEventListenerObject
  // deno-lint-ignore no-explicit-any
  | ((this: any, ev: WebUsbConnectionEvent) => unknown)
  | null;

/** How an event listener was added, for knowing when to stop watching. */
type Registered = Map<unknown, { once: boolean }>;

/**
 * `navigator.usb`: lists devices, picks one for `requestDevice()`, and
 * fires `connect` and `disconnect` events while a listener for them is
 * registered (a hotplug watcher runs meanwhile, and keeps the program
 * alive: remove the listeners, or call {@linkcode USB.close}).
 *
 * Every device of the system is allowed: there is no permission prompt,
 * so `getDevices()` lists every device except root hubs and those
 * `forget()` was called on.
 *
 * @example List the devices (runs anywhere: on a machine without USB the list is empty)
 * ```ts
 * import { USB } from "./usb.ts";
 * const usb = new USB();
 * for (const d of await usb.getDevices()) {
 *   console.log(d.vendorId.toString(16), d.productId.toString(16), d.productName);
 * }
 * ```
 */
export class USB extends EventTarget implements WebUsb {
  readonly #behaviour: DeviceBehaviour;
  readonly #selector: DeviceSelector | string | undefined;
  /** Every device object made, by deviceKey: the same object across replugs. */
  readonly #devices = new Map<string, USBDevice>();
  readonly #forgotten = new Set<string>();
  readonly #listeners = new Map<string, Registered>();
  #onconnect: ((this: this, ev: WebUsbConnectionEvent) => unknown) | null =
    null;
  #ondisconnect: ((this: this, ev: WebUsbConnectionEvent) => unknown) | null =
    null;
  #watcher: DeviceWatcher | undefined;
  #loop: Promise<void> | undefined;

  /**
   * The spec's constructor.
   *
   * @param options see {@linkcode USBOptions}; a bad one throws
   *   `invalid-argument` (usbkit's rule for its own options)
   */
  constructor(options: USBOptions = {}) {
    super();
    const o = checkOptions("USB: options", options, [
      "transferTimeout",
      "detachKernelDriver",
      "unrestricted",
      "device",
    ]);
    this.#behaviour = Object.freeze({
      transferTimeout: checkTimeout(
        "USB: options.transferTimeout",
        o.transferTimeout,
      ),
      detachKernelDriver: checkBoolean(
        "USB: options.detachKernelDriver",
        o.detachKernelDriver,
      ) ?? true,
      unrestricted: checkBoolean("USB: options.unrestricted", o.unrestricted) ??
        true,
    });
    this.#selector = o.device === undefined
      ? undefined
      : checkSelector("USB: options.device", o.device);
    if (typeof this.#selector === "string") parseSelector(this.#selector);
  }

  /** The device object for a listed device: the one made before, or a new one. */
  #deviceFor(info: DeviceInfo): USBDevice {
    const key = deviceKey(info);
    let d = this.#devices.get(key);
    if (d === undefined) {
      d = new USBDevice(info, this.#behaviour, () => this.#forgotten.add(key));
      this.#devices.set(key, d);
    } else if (!isConnected(d) || deviceInfo(d).devnode !== info.devnode) {
      markConnected(d, info);
    }
    return d;
  }

  /** The devices present now (root hubs left out), marking the others gone. */
  async #enumerate(): Promise<USBDevice[]> {
    const listed = (await listDevices()).filter((d) => !d.isRootHub);
    const present = new Set(listed.map(deviceKey));
    for (const [key, d] of this.#devices) {
      if (!present.has(key) && isConnected(d)) markDisconnected(d);
    }
    return listed.map((info) => this.#deviceFor(info));
  }

  /**
   * The devices plugged in now, except root hubs and forgotten devices.
   * The same objects every time.
   */
  async getDevices(): Promise<USBDevice[]> {
    return (await this.#enumerate()).filter((d) =>
      !this.#forgotten.has(deviceKey(deviceInfo(d)))
    );
  }

  /**
   * Returns a device matching `options.filters` (and none of
   * `options.exclusionFilters`), with no chooser: the one the `device`
   * option or the {@linkcode DEVICE_ENV} environment variable selects, else
   * the first match (in sysfs order: by bus, then port). Rejects with
   * `NotFoundError` when none matches, and with `TypeError` for an invalid
   * filter (as the spec says).
   */
  async requestDevice(
    options?: WebUsbDeviceRequestOptions,
  ): Promise<USBDevice> {
    const { filters, exclusionFilters } = checkRequestOptions(options);
    const selector = this.#chosenSelector();
    const candidates = (await this.#enumerate()).filter((d) => {
      const info = deviceInfo(d);
      return (filters.length === 0 ||
        filters.some((f) => matchesFilter(info, f))) &&
        !exclusionFilters.some((f) => matchesFilter(info, f));
    });
    const chosen = selector === undefined
      ? candidates[0]
      : candidates.find((d) => matchesSelector(deviceInfo(d), selector.value));
    if (chosen === undefined) {
      throw domException(
        "NotFoundError",
        `requestDevice: no device matches the filters${
          selector === undefined ? "" : ` and ${selector.from}`
        } (${candidates.length} matched the filters)`,
      );
    }
    this.#forgotten.delete(deviceKey(deviceInfo(chosen)));
    return chosen;
  }

  /** The selector requestDevice applies: the option, else the environment variable. */
  #chosenSelector():
    | { value: DeviceSelector; from: string }
    | undefined {
    if (this.#selector !== undefined) {
      const value = typeof this.#selector === "string"
        ? parseSelector(this.#selector)
        : this.#selector;
      return {
        value,
        from: `the device option ${describeValue(this.#selector)}`,
      };
    }
    let text: string | undefined;
    try {
      text = Deno.env.get(DEVICE_ENV);
    } catch {
      // No --allow-env: the variable cannot be read, so it does not apply.
      return undefined;
    }
    if (text === undefined || text === "") return undefined;
    return {
      value: webidl(() => parseSelector(text)),
      from: `${DEVICE_ENV}=${text}`,
    };
  }

  /** Handler of `connect` events. */
  get onconnect(): ((this: this, ev: WebUsbConnectionEvent) => unknown) | null {
    return this.#onconnect;
  }
  set onconnect(
    handler: ((this: this, ev: WebUsbConnectionEvent) => unknown) | null,
  ) {
    this.#setHandler("connect", this.#onconnect, handler);
    this.#onconnect = typeof handler === "function" ? handler : null;
  }

  /** Handler of `disconnect` events. */
  get ondisconnect():
    | ((this: this, ev: WebUsbConnectionEvent) => unknown)
    | null {
    return this.#ondisconnect;
  }
  set ondisconnect(
    handler: ((this: this, ev: WebUsbConnectionEvent) => unknown) | null,
  ) {
    this.#setHandler("disconnect", this.#ondisconnect, handler);
    this.#ondisconnect = typeof handler === "function" ? handler : null;
  }

  #setHandler(
    type: string,
    old: unknown,
    handler: unknown,
  ): void {
    if (typeof old === "function") {
      this.removeEventListener(type, old as EventListener);
    }
    if (typeof handler === "function") {
      this.addEventListener(type, handler as EventListener);
    }
  }

  /**
   * `EventTarget.addEventListener`; a `connect` or `disconnect` listener
   * starts the hotplug watcher.
   */
  /** Listens for `connect` or `disconnect` events (starts the hotplug watcher). */
  override addEventListener(
    type: "connect" | "disconnect",
    listener: (this: this, ev: WebUsbConnectionEvent) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Listens for any event, as `EventTarget` does. */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: AnyListener,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(
      type,
      listener as EventListenerOrEventListenerObject | null,
      options,
    );
    if ((type !== "connect" && type !== "disconnect") || listener === null) {
      return;
    }
    const o = typeof options === "object" ? options : {};
    if (o.signal?.aborted) return;
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, set = new Map());
    set.set(listener, { once: o.once === true });
    o.signal?.addEventListener(
      "abort",
      () => this.#forget(type, listener),
      { once: true },
    );
    this.#startWatching();
  }

  /** `EventTarget.removeEventListener`; the watcher stops with the last listener. */
  /** Stops listening for `connect` or `disconnect` events. */
  override removeEventListener(
    type: "connect" | "disconnect",
    listener: (this: this, ev: WebUsbConnectionEvent) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Stops listening, as `EventTarget` does. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: AnyListener,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(
      type,
      listener as EventListenerOrEventListenerObject | null,
      options,
    );
    this.#forget(type, listener);
  }

  #forget(type: string, listener: unknown): void {
    this.#listeners.get(type)?.delete(listener);
    if (this.#listenerCount() === 0) void this.#stopWatching();
  }

  #listenerCount(): number {
    let n = 0;
    for (const m of this.#listeners.values()) n += m.size;
    return n;
  }

  #startWatching(): void {
    if (this.#watcher !== undefined) return;
    const watcher = watchDevices();
    this.#watcher = watcher;
    this.#loop = (async () => {
      try {
        for await (const e of watcher) {
          if (e.device.isRootHub) continue;
          if (e.type === "add") this.#added(e.device);
          else this.#removed(e.device);
        }
      } catch (e) {
        // The watcher failed (its socket): say so where events go.
        this.dispatchEvent(new ErrorEvent("error", { error: e }));
      }
    })();
  }

  async #stopWatching(): Promise<void> {
    const watcher = this.#watcher;
    const loop = this.#loop;
    this.#watcher = undefined;
    this.#loop = undefined;
    await watcher?.close();
    await loop;
  }

  #added(info: DeviceInfo): void {
    const key = deviceKey(info);
    const device = this.#deviceFor(info);
    markConnected(device, info);
    if (!this.#forgotten.has(key)) this.#fire("connect", device);
  }

  #removed(info: DeviceInfo): void {
    const key = deviceKey(info);
    const device = this.#devices.get(key);
    if (device === undefined) return;
    markDisconnected(device);
    if (!this.#forgotten.has(key)) this.#fire("disconnect", device);
  }

  #fire(type: "connect" | "disconnect", device: USBDevice): void {
    this.dispatchEvent(new USBConnectionEvent(type, { device }));
    const set = this.#listeners.get(type);
    if (set === undefined) return;
    for (const [l, { once }] of set) if (once) set.delete(l);
    if (this.#listenerCount() === 0) void this.#stopWatching();
  }

  /**
   * Stops the hotplug watcher (no more events until a listener is added
   * again). Open devices stay open. Not in the spec: a page never has to
   * let its event loop end.
   *
   * @example
   * ```ts
   * import { USB } from "./usb.ts";
   * const usb = new USB();
   * await usb.close();
   * ```
   */
  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#stopWatching();
  }

  /** `await using usb = new USB()` stops the watcher at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
