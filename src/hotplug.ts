/**
 * Hotplug: USB devices coming and going, from the kernel's own uevents.
 *
 * The helper listens on a NETLINK_KOBJECT_UEVENT socket, on the kernel's
 * multicast group (not udevd's re-broadcast), so it works with or without
 * udevd. A helper thread drains the socket into a queue as fast as the
 * kernel sends, so a slow JavaScript consumer loses nothing; if the kernel
 * or the queue still overflows, the watcher re-reads sysfs and reports the
 * adds and removes that make up the difference (`overruns` counts these).
 *
 * Device events are the `usb_device` uevents of subsystem `usb`; interfaces
 * binding and unbinding are not device events. An `add` is reported once
 * the kernel has configured the device (its `bind` uevent: the interfaces
 * are in sysfs), with the same {@linkcode DeviceInfo} that
 * `listDevices()` gives; a `remove` carries the information the
 * device had, since its sysfs directory is gone by then. The helper's
 * thread reads the device's sysfs attributes the moment its add or bind
 * arrives, so a device is reported as it was even when JavaScript gets to
 * the event after it has gone again (`DeviceWatcher.missed` counts the
 * devices gone even before the helper could read them).
 *
 * @module
 */

import {
  deviceFromFiles,
  type DeviceInfo,
  listDevicesSync,
} from "./enumeration.ts";
import { Errno, errorFromErrno, UsbError } from "./errors.ts";
import {
  checkSelector,
  type DeviceSelector,
  formatSelector,
  matchesSelector,
  parseSelector,
} from "./selector.ts";
import { HotplugListener, probe } from "./usbfs.ts";
import {
  checkBoolean,
  checkOptions,
  checkSignal,
  checkTimeout,
} from "./validate.ts";

/**
 * A device came or went. `device` is what `listDevices()` gives
 * for it; for a `remove`, what it gave while the device was there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeviceEvent } from "./hotplug.ts";
 * import { listDevicesSync } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const [device] = listDevicesSync({ sysfsRoot: root });
 * const e: DeviceEvent = { type: "add", device: device! };
 * assert.equal(e.device.portPath, "usb1");
 * ```
 */
export interface DeviceEvent {
  /** `"add"`: the device is there and configured; `"remove"`: it is gone. */
  readonly type: "add" | "remove";
  /** The device, as `listDevices()` gives it. */
  readonly device: DeviceInfo;
}

/**
 * The DOM event a {@linkcode DeviceWatcher} dispatches, of type `"add"` or
 * `"remove"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeviceChangeEvent } from "./hotplug.ts";
 * import { listDevicesSync } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const e = new DeviceChangeEvent("remove", listDevicesSync({ sysfsRoot: root })[1]!);
 * assert.equal(e.type, "remove");
 * assert.equal(e.device.portPath, "1-1");
 * ```
 */
export class DeviceChangeEvent extends Event {
  /** The device that came or went. */
  readonly device: DeviceInfo;

  /**
   * Makes an event.
   *
   * @param type `"add"` or `"remove"`
   * @param device the device
   */
  constructor(type: "add" | "remove", device: DeviceInfo) {
    super(type);
    this.device = device;
  }
}

/**
 * Options of {@linkcode watchDevices}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WatchOptions } from "./hotplug.ts";
 * const o: WatchOptions = { filter: "0525:a4a0", snapshot: true };
 * assert.equal(o.snapshot, true);
 * ```
 */
export interface WatchOptions {
  /** Only devices this selector matches (text as `usb` takes it, or data). */
  filter?: DeviceSelector | string;
  /** Report the devices present now first, as `add` events. */
  snapshot?: boolean;
  /** Closes the watcher when aborted. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode waitForDevice} and {@linkcode waitForDeviceGone}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WaitOptions } from "./hotplug.ts";
 * const o: WaitOptions = { timeout: 10_000 };
 * assert.equal(o.timeout, 10_000);
 * ```
 */
export interface WaitOptions {
  /** Milliseconds before failing with code `timeout`; 0 or absent: none. */
  timeout?: number;
  /** Stops waiting (code `cancelled`). */
  signal?: AbortSignal;
}

/**
 * One kernel uevent, parsed: the `ACTION@DEVPATH` header and the
 * `KEY=VALUE` environment that follows it (lib/kobject_uevent.c).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Uevent } from "./hotplug.ts";
 * const u: Uevent = { action: "add", devpath: "/devices/x/usb2/2-1", env: { SUBSYSTEM: "usb" } };
 * assert.equal(u.env.SUBSYSTEM, "usb");
 * ```
 */
export interface Uevent {
  /** `add`, `remove`, `bind`, `unbind`, `change`, `move`, ... */
  readonly action: string;
  /** The device's path under /sys, such as `/devices/platform/dummy_hcd.0/usb2/2-1`. */
  readonly devpath: string;
  /** Every `KEY=VALUE` of the message. */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Parses a raw uevent message as the kernel sends it on the netlink socket:
 * `ACTION@DEVPATH\0KEY=VALUE\0...`. Returns undefined for anything else
 * (such as udevd's `libudev` re-broadcast).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseUevent } from "./hotplug.ts";
 * const raw = new TextEncoder().encode(
 *   "remove@/devices/platform/dummy_hcd.0/usb2/2-1\0ACTION=remove\0DEVPATH=/devices/platform/dummy_hcd.0/usb2/2-1\0" +
 *     "SUBSYSTEM=usb\0DEVTYPE=usb_device\0BUSNUM=002\0DEVNUM=003\0",
 * );
 * const u = parseUevent(raw)!;
 * assert.equal(u.action, "remove");
 * assert.equal(u.env.DEVNUM, "003");
 * assert.equal(parseUevent(new TextEncoder().encode("libudev\0xyz")), undefined);
 * ```
 */
export function parseUevent(raw: Uint8Array): Uevent | undefined {
  const text = new TextDecoder().decode(raw);
  const fields = text.split("\0");
  const head = fields[0] ?? "";
  const at = head.indexOf("@");
  if (at <= 0 || !head.slice(at + 1).startsWith("/")) return undefined;
  const env: Record<string, string> = {};
  for (const f of fields.slice(1)) {
    const eq = f.indexOf("=");
    if (eq > 0) env[f.slice(0, eq)] = f.slice(eq + 1);
  }
  const action = env.ACTION ?? head.slice(0, at);
  const devpath = env.DEVPATH ?? head.slice(at + 1);
  return { action, devpath, env };
}

/**
 * True for the uevents of a USB device (subsystem `usb`, devtype
 * `usb_device`): not its interfaces, not its endpoints.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUsbDeviceEvent } from "./hotplug.ts";
 * assert.ok(isUsbDeviceEvent({ action: "add", devpath: "/d/usb1/1-1", env: { SUBSYSTEM: "usb", DEVTYPE: "usb_device" } }));
 * assert.ok(!isUsbDeviceEvent({ action: "bind", devpath: "/d/usb1/1-1/1-1:1.0", env: { SUBSYSTEM: "usb", DEVTYPE: "usb_interface" } }));
 * ```
 */
export function isUsbDeviceEvent(u: Uevent): boolean {
  return u.env.SUBSYSTEM === "usb" && u.env.DEVTYPE === "usb_device";
}

/** Bus and device number of a uevent, when it has them (BUSNUM, DEVNUM). */
function idsOf(u: Uevent): { bus?: number; dev?: number } {
  const bus = Number(u.env.BUSNUM);
  const dev = Number(u.env.DEVNUM);
  return {
    ...(Number.isInteger(bus) && bus > 0 ? { bus } : {}),
    ...(Number.isInteger(dev) && dev > 0 ? { dev } : {}),
  };
}

/** Whether `d` is the incarnation a uevent names (same bus and address). */
function sameIncarnation(
  d: DeviceInfo,
  ids: { bus?: number; dev?: number },
): boolean {
  return (ids.bus === undefined || ids.bus === d.busNumber) &&
    (ids.dev === undefined || ids.dev === d.deviceAddress);
}

/**
 * How long an `add` waits for the kernel to configure the device (its
 * `bind` uevent) before it is reported anyway.
 */
const BIND_GRACE_MS = 3000;

function envNumber(name: string): number {
  try {
    const v = Number(Deno.env.get(name) ?? 0);
    return Number.isInteger(v) && v > 0 && v < 2 ** 31 ? v : 0;
  } catch {
    return 0; // no --allow-env
  }
}

/** A selector checked and turned into a test on devices. */
function matcher(
  name: string,
  value: unknown,
): { test: (d: DeviceInfo) => boolean; label: string } {
  const checked = checkSelector(name, value);
  if (typeof checked !== "string") {
    return {
      test: (d) => matchesSelector(d, checked),
      label: formatSelector(checked),
    };
  }
  const sel = parseSelector(checked);
  const text = checked.trim();
  // As selectDevice reads text: the structural form, or else a serial number.
  const serialToo = sel.serial === undefined &&
    !/^(port|id|path)=/.test(text);
  return {
    test: (d) =>
      matchesSelector(d, sel) || (serialToo && d.serialNumber === text),
    label: `"${text}"`,
  };
}

/**
 * A device as `listDevices()` describes it, built from its sysfs attributes
 * as the helper captured them at its uevent: src/enumeration.ts
 * {@linkcode deviceFromFiles}, the same scan as `listDevices`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deviceFromAttributes } from "./hotplug.ts";
 * assert.equal(deviceFromAttributes("2-1", "/sys/x/2-1", new Map()), undefined);
 * ```
 */
export const deviceFromAttributes = deviceFromFiles;

interface Pending {
  readonly ids: { bus?: number; dev?: number };
  /** What sysfs said at the `add` uevent, in case the device goes before `bind`. */
  readonly early: DeviceInfo | undefined;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * Devices coming and going: an async iterator of {@linkcode DeviceEvent}
 * and an `EventTarget` dispatching {@linkcode DeviceChangeEvent}s (`"add"`,
 * `"remove"`). Make one with {@linkcode watchDevices}; close it (or
 * `await using` it, or abort its signal) to stop the helper's listener.
 *
 * @example
 * ```ts ignore
 * // Runs until interrupted and needs devices that come and go: tests/device/hotplug_test.ts
 * // watches the bench's gadgets being unbound and bound in the guest.
 * import { watchDevices } from "../mod.ts";
 * await using watcher = watchDevices({ filter: "0525:", snapshot: true });
 * for await (const { type, device } of watcher) console.log(type, device.portPath);
 * ```
 */
export class DeviceWatcher extends EventTarget
  implements AsyncIterableIterator<DeviceEvent> {
  readonly #listener: HotplugListener;
  readonly #test: (d: DeviceInfo) => boolean;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => void this.close();
  /** Every device present, by sysfs path (unfiltered: a remove needs it). */
  #known = new Map<string, DeviceInfo>();
  #pending = new Map<string, Pending>();
  #queue: DeviceEvent[] = [];
  #takers: {
    resolve: (r: IteratorResult<DeviceEvent>) => void;
    reject: (e: unknown) => void;
  }[] = [];
  #failed: { error: unknown } | undefined;
  #closed = false;
  #overruns = 0;
  #missed = 0;
  readonly #loop: Promise<void>;

  /** @internal Use {@linkcode watchDevices}. */
  constructor(
    test: (d: DeviceInfo) => boolean,
    snapshot: boolean,
    signal: AbortSignal | undefined,
  ) {
    super();
    this.#test = test;
    this.#signal = signal;
    // The socket first, then the listing: whatever changes after the
    // listing is in the socket's queue.
    this.#listener = HotplugListener.open(
      envNumber("USBKIT_HOTPLUG_RCVBUF"),
      envNumber("USBKIT_HOTPLUG_QUEUE"),
    );
    try {
      for (const d of listDevicesSync()) this.#known.set(d.sysfsPath, d);
    } catch (e) {
      void this.#listener.close();
      throw e;
    }
    const initial = snapshot ? [...this.#known.values()] : [];
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#loop = this.#run(initial);
  }

  /** The devices present now that the filter matches, as last seen. */
  get devices(): DeviceInfo[] {
    return [...this.#known.values()].filter(this.#test);
  }

  /**
   * How many times events were lost (the kernel's socket buffer or the
   * helper's queue overflowed) and sysfs was re-read instead.
   */
  get overruns(): number {
    return this.#overruns;
  }

  /**
   * Devices that came and went before their sysfs attributes could be read
   * (gone again before the helper's thread read them at their add): their
   * add and remove are not reported, since there is no device information
   * to report.
   */
  get missed(): number {
    return this.#missed;
  }

  /** The socket buffer the kernel granted the listener, in bytes. */
  get receiveBufferBytes(): number {
    return this.#listener.rcvbuf;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The next event; `done` once the watcher is closed. */
  next(): Promise<IteratorResult<DeviceEvent>> {
    const e = this.#queue.shift();
    if (e !== undefined) return Promise.resolve({ value: e, done: false });
    if (this.#failed !== undefined) {
      const { error } = this.#failed;
      this.#failed = undefined;
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) =>
      this.#takers.push({ resolve, reject })
    );
  }

  /** Closes the watcher (`break` in a `for await` calls this). */
  async return(): Promise<IteratorResult<DeviceEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** The watcher itself. */
  [Symbol.asyncIterator](): DeviceWatcher {
    return this;
  }

  /**
   * Stops listening: the helper's thread and socket are gone when this
   * resolves, and a pending `next()` ends with `done`. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) {
      await this.#loop;
      return;
    }
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    await this.#listener.close();
    await this.#loop;
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    for (const t of this.#takers.splice(0)) {
      t.resolve({ value: undefined, done: true });
    }
  }

  /** `await using` closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #emit(type: "add" | "remove", device: DeviceInfo): void {
    if (this.#closed || !this.#test(device)) return;
    const event = { type, device };
    const taker = this.#takers.shift();
    if (taker !== undefined) taker.resolve({ value: event, done: false });
    else this.#queue.push(event);
    try {
      this.dispatchEvent(new DeviceChangeEvent(type, device));
    } catch (e) {
      reportError(e);
    }
  }

  #fail(error: unknown): void {
    if (this.#closed) return;
    const taker = this.#takers.shift();
    if (taker !== undefined) taker.reject(error);
    else this.#failed = { error };
    void this.close();
  }

  /** sysfs now, by path: after an overrun, or when a bind never came. */
  #scan(): Map<string, DeviceInfo> {
    const now = new Map<string, DeviceInfo>();
    for (const d of listDevicesSync()) now.set(d.sysfsPath, d);
    return now;
  }

  async #run(initial: DeviceInfo[]): Promise<void> {
    await null; // listeners added right after watchDevices() see the snapshot
    for (const d of initial) this.#emit("add", d);
    try {
      while (!this.#closed) {
        const n = await this.#listener.wait(-1);
        if (n < 0 || this.#closed) break;
        const { events, overrun } = this.#listener.read();
        for (const { message, files } of events) {
          if (this.#closed) return;
          const u = parseUevent(message);
          if (u === undefined || !isUsbDeviceEvent(u)) continue;
          const captured = files.size === 0 ? undefined : deviceFromAttributes(
            u.devpath.slice(u.devpath.lastIndexOf("/") + 1),
            `/sys${u.devpath}`,
            files,
          );
          this.#apply(u, captured);
        }
        if (overrun && !this.#closed) {
          this.#overruns++;
          this.#resync(this.#scan());
        }
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  /**
   * One device uevent. `captured` is the device as the helper read it from
   * sysfs when an add or bind arrived.
   */
  #apply(u: Uevent, captured: DeviceInfo | undefined): void {
    const path = `/sys${u.devpath}`;
    const ids = idsOf(u);
    const known = this.#known.get(path);
    const pending = this.#pending.get(path);
    const now = captured !== undefined && sameIncarnation(captured, ids)
      ? captured
      : undefined;
    switch (u.action) {
      case "add": {
        if (known !== undefined && sameIncarnation(known, ids)) return;
        if (known !== undefined) {
          // Another device at this path: its remove was lost.
          this.#known.delete(path);
          this.#emit("remove", known);
        }
        if (pending !== undefined) clearTimeout(pending.timer);
        const timer = setTimeout(() => {
          try {
            this.#settle(path, this.#scan().get(path));
          } catch (e) {
            this.#fail(e);
          }
        }, BIND_GRACE_MS);
        this.#pending.set(path, { ids, early: now, timer });
        return;
      }
      case "bind": {
        if (pending !== undefined && sameIds(pending.ids, ids)) {
          this.#settle(path, now);
        } else if (
          known !== undefined && sameIncarnation(known, ids) &&
          now !== undefined
        ) {
          // Configured again: keep the fresher view for its remove.
          this.#known.set(path, now);
        }
        return;
      }
      case "remove": {
        if (pending !== undefined && sameIds(pending.ids, ids)) {
          // Gone before it was configured: report both, if it was seen.
          clearTimeout(pending.timer);
          this.#pending.delete(path);
          if (pending.early !== undefined) {
            this.#emit("add", pending.early);
            this.#emit("remove", pending.early);
          } else {
            this.#missed++;
          }
        } else if (known !== undefined && sameIncarnation(known, ids)) {
          this.#known.delete(path);
          this.#emit("remove", known);
        }
        return;
      }
    }
  }

  /** Reports a pending add: the device is configured, or waited long enough. */
  #settle(path: string, fresh: DeviceInfo | undefined): void {
    const p = this.#pending.get(path);
    if (p === undefined || this.#closed) return;
    clearTimeout(p.timer);
    this.#pending.delete(path);
    const info = fresh !== undefined && sameIncarnation(fresh, p.ids)
      ? fresh
      : p.early;
    if (info === undefined) {
      this.#missed++;
      return;
    }
    this.#known.set(path, info);
    this.#emit("add", info);
  }

  /** Events were lost: report the difference between what we knew and sysfs. */
  #resync(now: Map<string, DeviceInfo>): void {
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    const before = this.#known;
    this.#known = new Map(now);
    for (const [path, d] of before) {
      const n = now.get(path);
      if (n === undefined || !sameDevice(n, d)) this.#emit("remove", d);
    }
    for (const [path, d] of now) {
      const b = before.get(path);
      if (b === undefined || !sameDevice(b, d)) this.#emit("add", d);
    }
  }
}

function sameIds(
  a: { bus?: number; dev?: number },
  b: { bus?: number; dev?: number },
): boolean {
  return (a.bus === undefined || b.bus === undefined || a.bus === b.bus) &&
    (a.dev === undefined || b.dev === undefined || a.dev === b.dev);
}

function sameDevice(a: DeviceInfo, b: DeviceInfo): boolean {
  return a.busNumber === b.busNumber && a.deviceAddress === b.deviceAddress;
}

/**
 * Watches USB devices come and go. The kernel's events are read from the
 * moment this returns; `snapshot: true` first reports the devices present
 * now as `add` events. Root hubs are devices too (`isRootHub`).
 *
 * @param options `filter` (a selector), `snapshot`, `signal`
 * @returns the watcher: iterate it, or listen for `"add"` and `"remove"`
 * @throws {UsbError} `invalid-argument` for a bad option; from the errno
 *   when the kernel refuses the uevent socket
 *
 * @example
 * ```ts ignore
 * // Needs a device to unplug, and waits 10 s: tests/device/hotplug_test.ts sees the
 * // bench's gadgets go and come back in the guest.
 * import { type DeviceChangeEvent, watchDevices } from "../mod.ts";
 * const watcher = watchDevices({ filter: { vendorId: 0x0525 } });
 * watcher.addEventListener("remove", (e) => console.log("unplugged", (e as DeviceChangeEvent).device.portPath));
 * await new Promise((r) => setTimeout(r, 10_000));
 * await watcher.close();
 * ```
 */
export function watchDevices(options: WatchOptions = {}): DeviceWatcher {
  const o = checkOptions("watchDevices: options", options, [
    "filter",
    "snapshot",
    "signal",
  ]);
  const test = o.filter === undefined
    ? () => true
    : matcher("watchDevices: options.filter", o.filter).test;
  const snapshot = checkBoolean("watchDevices: options.snapshot", o.snapshot) ??
    false;
  const signal = checkSignal("watchDevices: options.signal", o.signal);
  if (signal?.aborted) {
    throw new UsbError("cancelled", "watchDevices: the signal was aborted", {
      cause: signal.reason,
    });
  }
  return new DeviceWatcher(test, snapshot, signal);
}

/** How long an EACCES on a present device is retried: udev may be late. */
const ACCESS_RETRY_MS = 3000;
/** Pause between open attempts. */
const RETRY_MS = 50;

function checkWait(
  method: string,
  options: unknown,
): { timeout: number; signal: AbortSignal | undefined } {
  const o = checkOptions(`${method}: options`, options, ["timeout", "signal"]);
  return {
    timeout: checkTimeout(`${method}: options.timeout`, o.timeout),
    signal: checkSignal(`${method}: options.signal`, o.signal),
  };
}

/**
 * Runs `body` with a watcher, until it settles, the timeout passes or the
 * signal aborts; the watcher and the timer are gone when this settles.
 */
async function withWatcher<T>(
  method: string,
  label: string,
  what: string,
  test: (d: DeviceInfo) => boolean,
  opts: { timeout: number; signal: AbortSignal | undefined },
  body: (w: DeviceWatcher, stop: { stopped: boolean }) => Promise<T>,
): Promise<T> {
  const { timeout, signal } = opts;
  if (signal?.aborted) {
    throw new UsbError("cancelled", `${method}(${label}) was cancelled`, {
      cause: signal.reason,
    });
  }
  const watcher = new DeviceWatcher(test, false, undefined);
  const stop = { stopped: false };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const ended = new Promise<never>((_, reject) => {
    if (timeout > 0) {
      timer = setTimeout(() => {
        reject(
          new UsbError(
            "timeout",
            `${method}: ${what} ${label} within ${timeout} ms`,
            {
              hint:
                "`deno task usb list` shows what is attached; `usb watch` shows devices as they come and go",
            },
          ),
        );
      }, timeout);
    }
    if (signal !== undefined) {
      onAbort = () =>
        reject(
          new UsbError("cancelled", `${method}(${label}) was cancelled`, {
            cause: signal.reason,
          }),
        );
      signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  ended.catch(() => {});
  try {
    return await Promise.race([body(watcher, stop), ended]);
  } finally {
    stop.stopped = true;
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    await watcher.close();
  }
}

/** Sleeps `ms` unless stopped first (checked before and after). */
function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Tries to open `d`'s usbfs node: "ok", "gone", or an error to report.
 * EACCES is retried for {@linkcode ACCESS_RETRY_MS} (udev may not have set
 * the permissions yet), ENOENT while the device is still listed.
 */
async function openable(
  w: DeviceWatcher,
  d: DeviceInfo,
  stop: { stopped: boolean },
): Promise<"ok" | "gone" | UsbError> {
  const t0 = Date.now();
  for (;;) {
    let errno = 0;
    try {
      probe(d.devnode, {
        vendorId: d.vendorId,
        productId: d.productId,
        devnode: d.devnode,
      });
      return "ok";
    } catch (e) {
      if (!(e instanceof UsbError)) throw e;
      errno = e.errno ?? 0;
      if (
        e.code !== "access-denied" && errno !== Errno.ENOENT &&
        errno !== Errno.ENODEV
      ) {
        return e;
      }
      if (e.code === "access-denied" && Date.now() - t0 >= ACCESS_RETRY_MS) {
        return errorFromErrno(
          -Errno.EACCES,
          `cannot open ${d.devnode} (still refused ${ACCESS_RETRY_MS} ms after it appeared)`,
          { vendorId: d.vendorId, productId: d.productId, devnode: d.devnode },
        );
      }
    }
    await pause(RETRY_MS);
    if (stop.stopped) return "gone";
    const still = w.devices.some((x) => sameDevice(x, d));
    if (!still) return "gone";
  }
}

/**
 * Waits for a device `where` accepts among those `test` matches, present
 * and openable. For {@linkcode waitForDevice} and `Device.reopen()`.
 *
 * @internal
 */
export function waitForMatching(
  method: string,
  label: string,
  test: (d: DeviceInfo) => boolean,
  opts: { timeout: number; signal: AbortSignal | undefined },
): Promise<DeviceInfo> {
  return withWatcher(
    method,
    label,
    "no device appeared that matches",
    test,
    opts,
    async (w, stop) => {
      const candidates = [...w.devices];
      for (;;) {
        for (const d of candidates.splice(0)) {
          const r = await openable(w, d, stop);
          if (r === "ok") return d;
          if (r !== "gone") throw r;
        }
        const e = await w.next();
        if (e.done) throw new UsbError("cancelled", `${method}: stopped`);
        if (e.value.type === "add") candidates.push(e.value.device);
      }
    },
  );
}

/**
 * Waits until a device the selector matches is present and can be opened,
 * and resolves with it (as `listDevices()` gives it). A device
 * already there resolves at once. Covers the race where the node exists
 * before udev gives it its permissions: EACCES is retried for 3 s, then it
 * fails with `access-denied` and the udev rule to add. With several
 * matching devices, the first that opens.
 *
 * @param selector which device: text (`"0525:a4a0"`, `"2-1"`, a serial) or a selector object
 * @param options `timeout` in ms (0 or absent: none), `signal`
 * @throws {UsbError} `timeout` naming the selector, `cancelled` on abort,
 *   `access-denied` with the udev hint, `invalid-argument`
 *
 * @example
 * ```ts ignore
 * // Needs the device to appear: tests/device/hotplug_test.ts waits for the bench's
 * // SourceSink after a delayed bind in the guest.
 * import { open, waitForDevice } from "../mod.ts";
 * const info = await waitForDevice("0525:a4a0", { timeout: 30_000 });
 * await using dev = await open(info);
 * ```
 */
export async function waitForDevice(
  selector: DeviceSelector | string,
  options: WaitOptions = {},
): Promise<DeviceInfo> {
  const { test, label } = matcher("waitForDevice: selector", selector);
  const opts = checkWait("waitForDevice", options);
  return await waitForMatching("waitForDevice", label, test, opts);
}

/**
 * Waits until no device the selector matches is present (resolves at once
 * when none is).
 *
 * @param selector which device: text or a selector object
 * @param options `timeout` in ms (0 or absent: none), `signal`
 * @throws {UsbError} `timeout` naming the selector, `cancelled`, `invalid-argument`
 *
 * @example
 * ```ts ignore
 * // Needs a device to unplug: tests/device/hotplug_test.ts waits for the bench's
 * // SourceSink to go after an unbind in the guest.
 * import { waitForDeviceGone } from "../mod.ts";
 * console.log("unplug the device now");
 * await waitForDeviceGone("0525:a4a0", { timeout: 60_000 });
 * ```
 */
export async function waitForDeviceGone(
  selector: DeviceSelector | string,
  options: WaitOptions = {},
): Promise<void> {
  const { test, label } = matcher("waitForDeviceGone: selector", selector);
  const opts = checkWait("waitForDeviceGone", options);
  await withWatcher(
    "waitForDeviceGone",
    label,
    "a device is still there that matches",
    test,
    opts,
    async (w) => {
      while (w.devices.length > 0) {
        const e = await w.next();
        if (e.done) {
          throw new UsbError("cancelled", "waitForDeviceGone: stopped");
        }
      }
    },
  );
}

/**
 * What `Device.disconnected` waits on: the engine saying the device is gone
 * (a transfer saw it), or, once someone asked, the kernel's `remove` of this
 * device. Not part of the public API.
 *
 * @example
 * ```ts ignore
 * // Needs an open device to unplug: Device.disconnected is this, and
 * // tests/device/hotplug_test.ts unbinds a gadget under it in the guest.
 * import { UnplugWatch } from "./hotplug.ts";
 * declare const info: import("./enumeration.ts").DeviceInfo;
 * const unplug = new UnplugWatch(info);
 * await unplug.promise(); // starts the listener
 * ```
 */
export class UnplugWatch {
  readonly #info: DeviceInfo;
  readonly #promise: Promise<void>;
  #resolve!: () => void;
  #watcher: DeviceWatcher | undefined;
  #done = false;
  #stopped = false;
  #closing: Promise<void> | undefined;

  /** @param info the open device, as listed */
  constructor(info: DeviceInfo) {
    this.#info = info;
    this.#promise = new Promise((r) => this.#resolve = r);
  }

  /** True once the device is known to be gone. */
  get gone(): boolean {
    return this.#done;
  }

  /** Resolves when the device is gone; the first call starts listening. */
  promise(): Promise<void> {
    if (!this.#done && !this.#stopped && this.#watcher === undefined) {
      const info = this.#info;
      try {
        const w = new DeviceWatcher(
          (d) => d.sysfsPath === info.sysfsPath,
          false,
          undefined,
        );
        this.#watcher = w;
        w.addEventListener("remove", (e) => {
          if (sameDevice((e as DeviceChangeEvent).device, info)) {
            this.markGone();
          }
        });
        if (!w.devices.some((d) => sameDevice(d, info))) this.markGone();
      } catch (e) {
        // No uevent socket: only the engine can tell (a transfer in flight).
        reportError(e);
      }
    }
    return this.#promise;
  }

  /** The device is gone: resolve, stop listening. */
  markGone(): void {
    if (this.#done) return;
    this.#done = true;
    this.#resolve();
    void this.stop();
  }

  /** Stops listening (the device closes); the promise stays as it is. */
  stop(): Promise<void> {
    this.#stopped = true;
    const w = this.#watcher;
    this.#watcher = undefined;
    // A second caller waits for the same close (markGone starts it first).
    if (w !== undefined) this.#closing = w.close();
    return this.#closing ?? Promise.resolve();
  }
}

/**
 * What `Device.reset()` found: whether the device re-enumerated.
 *
 * The kernel's reset (drivers/usb/core/hub.c, usb_reset_and_verify_device)
 * resets the port and re-reads the descriptors. When they are the same,
 * the device stays what it was (same address, same usbfs node, claims
 * kept): `reenumerated` is false. When they changed (new firmware), or the
 * device did not come back from the reset, the kernel logically
 * disconnects it, and it enumerates again as a new device with a new
 * address: `reenumerated` is true, this `Device` is disconnected, and
 * `reopen()` opens the new one (an unplug during the reset reads the same).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ResetResult } from "./hotplug.ts";
 * const r: ResetResult = { reenumerated: false };
 * assert.equal(r.reenumerated, false);
 * ```
 */
export interface ResetResult {
  /** True when the device was logically disconnected and enumerates again. */
  readonly reenumerated: boolean;
}

/**
 * Options of `Device.reopen()`: the wait, and the new device's
 * `open()` options.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReopenOptions } from "./hotplug.ts";
 * const o: ReopenOptions = { timeout: 20_000, maxUrbs: 64 };
 * assert.equal(o.maxUrbs, 64);
 * ```
 */
export interface ReopenOptions extends WaitOptions {
  /** As `open()`'s `maxUrbs`. */
  maxUrbs?: number;
  /** As `open()`'s `maxBufferBytes`. */
  maxBufferBytes?: number;
}

/**
 * How a reopened device differs from the one before (`Device.reopened`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReopenInfo } from "./hotplug.ts";
 * import { listDevicesSync } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const d = listDevicesSync({ sysfsRoot: root })[1]!;
 * const r: ReopenInfo = { previous: d, addressChanged: false, descriptorsChanged: false };
 * assert.ok(!r.addressChanged);
 * ```
 */
export interface ReopenInfo {
  /** The device as it was listed before. */
  readonly previous: DeviceInfo;
  /** The bus or the address differs: it enumerated again. */
  readonly addressChanged: boolean;
  /** The raw descriptors differ (new firmware, another product id...). */
  readonly descriptorsChanged: boolean;
}

/** Default wait of `reopen()`: re-enumeration takes well under this. */
const REOPEN_TIMEOUT_MS = 10_000;

/**
 * For `Device.reopen()`: checks the options, and returns the open options
 * and the wait for the same physical device (the same port path), present
 * and openable, a new incarnation of it when `mustBeNew` (the old one was
 * disconnected), with how it differs.
 *
 * @internal
 */
export function findAgain(
  previous: DeviceInfo,
  options: unknown,
): {
  open: { maxUrbs: unknown; maxBufferBytes: unknown };
  wait: (mustBeNew: boolean) => Promise<{
    info: DeviceInfo;
    report: ReopenInfo;
  }>;
} {
  const o = checkOptions("reopen: options", options, [
    "timeout",
    "signal",
    "maxUrbs",
    "maxBufferBytes",
  ]);
  const timeout = o.timeout === undefined
    ? REOPEN_TIMEOUT_MS
    : checkTimeout("reopen: options.timeout", o.timeout);
  const signal = checkSignal("reopen: options.signal", o.signal);
  const port = previous.portPath;
  return {
    open: { maxUrbs: o.maxUrbs, maxBufferBytes: o.maxBufferBytes },
    wait: async (mustBeNew) => {
      const info = await waitForMatching(
        "reopen",
        `port ${port}`,
        (d) => d.portPath === port && (!mustBeNew || !sameDevice(d, previous)),
        { timeout, signal },
      );
      const a = info.descriptors;
      const b = previous.descriptors;
      return {
        info,
        report: {
          previous,
          addressChanged: !sameDevice(info, previous),
          descriptorsChanged: a.length !== b.length ||
            a.some((x, i) => x !== b[i]),
        },
      };
    },
  };
}
