/**
 * Listing USB devices from sysfs, without opening any of them.
 *
 * Everything comes from `/sys/bus/usb/devices`: the attributes of
 * drivers/usb/core/sysfs.c and the raw `descriptors` file, which the kernel
 * serves from memory, so listing never talks to a device and needs no
 * permission on `/dev/bus/usb`.
 *
 * @module
 */

import { UsbError } from "./errors.ts";
import { checkOptions, checkString } from "./validate.ts";
import {
  type ConfigurationDescriptor,
  type DeviceDescriptor,
  parseDescriptors,
  parseDeviceDescriptor,
  type Speed,
} from "./descriptors.ts";

export type { Speed } from "./descriptors.ts";

/**
 * An interface of a device's active configuration, as sysfs shows it.
 *
 * @example Which driver holds interface 0?
 * ```ts
 * import assert from "node:assert/strict";
 * import type { InterfaceInfo } from "./enumeration.ts";
 * const i: InterfaceInfo = {
 *   name: "2-1:1.0", configurationValue: 1, interfaceNumber: 0, alternateSetting: 0,
 *   interfaceClass: 0xff, interfaceSubclass: 0, interfaceProtocol: 0, numEndpoints: 2,
 *   interfaceName: undefined, driver: "usbtest",
 * };
 * assert.ok(i.driver === "usbtest");
 * ```
 */
export interface InterfaceInfo {
  /** The sysfs name, `<port>:<configuration>.<interface>`, such as "2-1:1.0". */
  readonly name: string;
  /** The configuration it belongs to (the active one). */
  readonly configurationValue: number;
  /** `bInterfaceNumber`. */
  readonly interfaceNumber: number;
  /** The alternate setting currently selected. */
  readonly alternateSetting: number;
  /** `bInterfaceClass` of the current alternate setting. */
  readonly interfaceClass: number;
  /** `bInterfaceSubClass` of the current alternate setting. */
  readonly interfaceSubclass: number;
  /** `bInterfaceProtocol` of the current alternate setting. */
  readonly interfaceProtocol: number;
  /** `bNumEndpoints` of the current alternate setting. */
  readonly numEndpoints: number;
  /** The current alternate setting's string, when it has one. */
  readonly interfaceName: string | undefined;
  /** The kernel driver bound to the interface ("usbhid", "usbfs"), if any. */
  readonly driver: string | undefined;
}

/**
 * A USB device as listed from sysfs. Names follow WebUSB's `USBDevice`
 * where it has them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const gadget = listDevicesSync({ sysfsRoot: root }).find((d) => d.portPath === "2-1")!;
 * assert.ok(gadget.vendorId === 0x0525 && gadget.speed === "super");
 * assert.ok(gadget.devnode === "/dev/bus/usb/002/002");
 * ```
 */
export interface DeviceInfo {
  /** The bus (host controller) number, `busnum`. */
  readonly busNumber: number;
  /** The device address on its bus, `devnum`. */
  readonly deviceAddress: number;
  /** The sysfs name: "2-1", "1-1.4", or "usb2" for a root hub. Stable across re-plugging into the same port. */
  readonly portPath: string;
  /** True for the virtual hub of a host controller. */
  readonly isRootHub: boolean;
  /** The speed the device runs at. */
  readonly speed: Speed | "unknown";
  /** `idVendor`. */
  readonly vendorId: number;
  /** `idProduct`. */
  readonly productId: number;
  /** `bDeviceClass`. */
  readonly deviceClass: number;
  /** `bDeviceSubClass`. */
  readonly deviceSubclass: number;
  /** `bDeviceProtocol`. */
  readonly deviceProtocol: number;
  /** `bcdUSB`, binary-coded decimal (0x0320). */
  readonly usbVersion: number;
  /** `bcdDevice`, binary-coded decimal. */
  readonly deviceVersion: number;
  /** The manufacturer string, when the device has one. */
  readonly manufacturerName: string | undefined;
  /** The product string, when the device has one. */
  readonly productName: string | undefined;
  /** The serial number string, when the device has one. */
  readonly serialNumber: string | undefined;
  /** `bNumConfigurations`. */
  readonly numConfigurations: number;
  /** `bConfigurationValue` of the active configuration; undefined when unconfigured. */
  readonly activeConfiguration: number | undefined;
  /** The active configuration's string, when it has one. */
  readonly configurationName: string | undefined;
  /**
   * The sysfs `authorized` attribute: false when the device was
   * deauthorized (`echo 0 > authorized`), which unconfigures it. A device
   * that is not authorized has no active configuration for that reason,
   * not because none was chosen. True when the attribute is missing.
   */
  readonly authorized: boolean;
  /** The raw sysfs `descriptors` bytes: device descriptor, then every configuration. */
  readonly descriptors: Uint8Array;
  /** The parsed device descriptor. */
  readonly device: DeviceDescriptor;
  /** The parsed configurations (lenient parse); empty if that failed. */
  readonly configurations: readonly ConfigurationDescriptor[];
  /** Why the configurations could not be parsed, if they could not. */
  readonly descriptorError: UsbError | undefined;
  /**
   * What the kernel logs about these descriptors (drivers/usb/core/config.c):
   * descriptors it skips and values it corrects, each as
   * "configuration N, byte B: ...". Empty for a well-formed device.
   */
  readonly warnings: readonly string[];
  /** The interfaces of the active configuration, by interface number. */
  readonly interfaces: readonly InterfaceInfo[];
  /** The usbfs device node, `/dev/bus/usb/BBB/DDD`. */
  readonly devnode: string;
  /** The device's directory in sysfs, symlinks resolved. */
  readonly sysfsPath: string;
}

/**
 * The former name of {@linkcode DeviceInfo}.
 *
 * @deprecated Use {@linkcode DeviceInfo}; this alias goes in the next
 * release.
 *
 * @example
 * ```ts
 * import type { DeviceInfo, UsbDeviceInfo } from "./enumeration.ts";
 * const same = (d: UsbDeviceInfo): DeviceInfo => d;
 * void same;
 * ```
 */
export type UsbDeviceInfo = DeviceInfo;

/**
 * Where to look. Both default to the real system; tests point them at a
 * fixture tree.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ListOptions } from "./enumeration.ts";
 * const o: ListOptions = { sysfsRoot: "/sys", devRoot: "/dev" };
 * assert.ok(o.devRoot === "/dev");
 * ```
 */
export interface ListOptions {
  /** The sysfs mount point. Default "/sys". */
  sysfsRoot?: string;
  /** The devtmpfs mount point, for device node paths. Default "/dev". */
  devRoot?: string;
}

/**
 * Lists the USB devices attached, root hubs included (`isRootHub`), sorted
 * by bus and then port path. A device that disappears while being read is
 * left out. A system without USB gives an empty list.
 *
 * @param options where sysfs and /dev are
 * @returns the devices
 * @throws {UsbError} `"access-denied"` if Deno may not read sysfs
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevices } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const devices = await listDevices({ sysfsRoot: root });
 * assert.ok(devices.map((d) => d.portPath).join(" ") === "usb1 1-1 1-1.4 1-2 usb2 2-1");
 * ```
 */
export async function listDevices(
  options: ListOptions = {},
): Promise<DeviceInfo[]> {
  const scan = scanDevices(checkListOptions("listDevices", options));
  let step = scan.next();
  while (!step.done) step = scan.next(await performAsync(step.value));
  return step.value;
}

/**
 * The synchronous twin of {@linkcode listDevices}. sysfs reads are served
 * from kernel memory, so this is fast, but it blocks the event loop.
 *
 * @param options where sysfs and /dev are
 * @returns the devices
 * @throws {UsbError} `"access-denied"` if Deno may not read sysfs
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "./enumeration.ts";
 * const devices = listDevicesSync({ sysfsRoot: "/nonexistent" });
 * assert.ok(devices.length === 0);
 * ```
 */
export function listDevicesSync(options: ListOptions = {}): DeviceInfo[] {
  const scan = scanDevices(checkListOptions("listDevicesSync", options));
  let step = scan.next();
  while (!step.done) step = scan.next(performSync(step.value));
  return step.value;
}

/**
 * A device as {@linkcode listDevices} describes it, read from attributes
 * captured earlier instead of from sysfs (the hotplug helper reads them the
 * moment a device's uevent arrives, since a short-lived device may be gone
 * by the time JavaScript looks). The same scan as `listDevices`, answered
 * from `files`.
 *
 * @param name the sysfs name, "2-1"
 * @param sysfsPath the device's directory, symlinks resolved
 * @param files the attributes, named relative to the device's directory
 *   ("busnum", "2-1:1.0/bInterfaceNumber"); an interface's `driver` holds
 *   the link's target
 * @param devRoot where device nodes are (default "/dev")
 * @returns the device, or undefined when the attributes without which there
 *   is no device are missing (it was gone)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deviceFromFiles } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs/bus/usb/devices/2-1/", import.meta.url).pathname;
 * const files = new Map<string, Uint8Array | undefined>();
 * for (const f of ["descriptors", "busnum", "devnum", "speed", "bConfigurationValue"]) {
 *   files.set(f, Deno.readFileSync(root + f));
 * }
 * const d = deviceFromFiles("2-1", "/sys/devices/x/usb2/2-1", files)!;
 * assert.equal(d.vendorId, 0x0525);
 * assert.equal(d.devnode, "/dev/bus/usb/002/002");
 * ```
 */
export function deviceFromFiles(
  name: string,
  sysfsPath: string,
  files: ReadonlyMap<string, Uint8Array | undefined>,
  devRoot = "/dev",
): DeviceInfo | undefined {
  const dir = "/captured";
  const decoder = new TextDecoder();
  const perform = (r: Request): Answer => {
    if (r.op === "real") return r.path === dir ? sysfsPath : undefined;
    if (r.op === "dir") {
      const names = new Set<string>();
      for (const key of files.keys()) names.add(key.split("/")[0]!);
      return [...names];
    }
    const bytes = files.get(r.path.slice(dir.length + 1));
    if (bytes === undefined) return undefined;
    return r.op === "bytes" ? bytes : decoder.decode(bytes);
  };
  const scan = scanDevice(dir, name, devRoot);
  let step = scan.next();
  while (!step.done) step = scan.next(perform(step.value));
  return step.value;
}

/**
 * Compares port paths in bus order: root hub first, then ports numerically
 * ("1-2" before "1-10", "1-1" before "1-1.4").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { comparePortPaths } from "./enumeration.ts";
 * const sorted = ["1-10", "usb1", "1-1.4", "1-2", "1-1"].sort(comparePortPaths);
 * assert.ok(sorted.join(" ") === "usb1 1-1 1-1.4 1-2 1-10");
 * ```
 */
export function comparePortPaths(a: string, b: string): number {
  const pa = portKey(a);
  const pb = portKey(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x !== y) return x - y;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// The scan is written once, as a generator that yields file system requests;
// listDevices and listDevicesSync answer them asynchronously or synchronously.

type Request =
  | { readonly op: "text"; readonly path: string }
  | { readonly op: "bytes"; readonly path: string }
  | { readonly op: "dir"; readonly path: string }
  | { readonly op: "link"; readonly path: string }
  | { readonly op: "real"; readonly path: string };
type Answer = string | Uint8Array | string[] | undefined;
type Scan<T> = Generator<Request, T, Answer>;

function* readText(path: string): Scan<string | undefined> {
  const v = yield { op: "text", path };
  // Attributes end with "\n" (sysfs_emit "...\n"); numbers may be padded ("%2d").
  return typeof v === "string" ? v.replace(/\n$/, "") : undefined;
}
function* readBytes(path: string): Scan<Uint8Array | undefined> {
  const v = yield { op: "bytes", path };
  return v instanceof Uint8Array ? v : undefined;
}
function* readDir(path: string): Scan<string[]> {
  const v = yield { op: "dir", path };
  return Array.isArray(v) ? v : [];
}
function* readLink(path: string): Scan<string | undefined> {
  const v = yield { op: "link", path };
  return typeof v === "string" ? v : undefined;
}
function* realPath(path: string): Scan<string | undefined> {
  const v = yield { op: "real", path };
  return typeof v === "string" ? v : undefined;
}

/** A missing file means the device went away; only a Deno permission refusal is an error. */
function failed(e: unknown, path: string): undefined {
  if (e instanceof Deno.errors.NotCapable) {
    throw new UsbError("access-denied", `Deno may not read ${path}`, {
      hint:
        "run deno with -A: Deno 2 lets only --allow-all read /sys and /proc, and usbkit reads /sys/bus/usb " +
        "(--allow-read, even with --allow-ffi, is not enough)",
      cause: e,
    });
  }
  return undefined;
}

function performSync(r: Request): Answer {
  try {
    switch (r.op) {
      case "text":
        return Deno.readTextFileSync(r.path);
      case "bytes":
        return Deno.readFileSync(r.path);
      case "dir":
        return Array.from(Deno.readDirSync(r.path), (e) => e.name);
      case "link":
        return Deno.readLinkSync(r.path);
      case "real":
        return Deno.realPathSync(r.path);
    }
  } catch (e) {
    return failed(e, r.path);
  }
}

async function performAsync(r: Request): Promise<Answer> {
  try {
    switch (r.op) {
      case "text":
        return await Deno.readTextFile(r.path);
      case "bytes":
        return await Deno.readFile(r.path);
      case "dir":
        return await Array.fromAsync(Deno.readDir(r.path), (e) => e.name);
      case "link":
        return await Deno.readLink(r.path);
      case "real":
        return await Deno.realPath(r.path);
    }
  } catch (e) {
    return failed(e, r.path);
  }
}

/** Device entries in /sys/bus/usb/devices: "usb2" (root hub) or "2-1.4"; interfaces have a ":". */
const DEVICE_NAME = /^(?:usb\d+|\d+-\d+(?:\.\d+)*)$/;
/** Interface directories inside a device: "2-1:1.0", and "2-0:1.0" for a root hub. */
const INTERFACE_NAME = /^\d+-[\d.]+:(\d+)\.(\d+)$/;

/** The sysfs `speed` attribute (drivers/usb/core/sysfs.c, speed_show) in Mb/s. */
const SPEEDS: Readonly<Record<string, Speed>> = {
  "1.5": "low",
  "12": "full",
  "480": "high",
  "5000": "super",
  "10000": "super-plus", // USB_SPEED_SUPER_PLUS, gen 2x1
  "20000": "super-plus", // gen 2x2
};

/** {@linkcode ListOptions}, checked: strings or absent (src/validate.ts). */
function checkListOptions(method: string, value: unknown): ListOptions {
  const o = checkOptions(`${method}: options`, value, [
    "sysfsRoot",
    "devRoot",
  ]);
  const out: ListOptions = {};
  if (o.sysfsRoot !== undefined) {
    out.sysfsRoot = checkString(`${method}: options.sysfsRoot`, o.sysfsRoot);
  }
  if (o.devRoot !== undefined) {
    out.devRoot = checkString(`${method}: options.devRoot`, o.devRoot);
  }
  return out;
}

function* scanDevices(options: ListOptions): Scan<DeviceInfo[]> {
  const sysfsRoot = options.sysfsRoot ?? "/sys";
  const devRoot = options.devRoot ?? "/dev";
  const base = `${sysfsRoot}/bus/usb/devices`;
  const names = (yield* readDir(base)).filter((n) => DEVICE_NAME.test(n));
  const devices: DeviceInfo[] = [];
  for (const name of names) {
    const info = yield* scanDevice(`${base}/${name}`, name, devRoot);
    if (info !== undefined) devices.push(info);
  }
  return devices.sort((a, b) =>
    a.busNumber - b.busNumber || comparePortPaths(a.portPath, b.portPath)
  );
}

function* scanDevice(
  dir: string,
  name: string,
  devRoot: string,
): Scan<DeviceInfo | undefined> {
  // The attributes without which there is no device; any of them missing
  // means it was unplugged while we looked.
  const descriptors = yield* readBytes(`${dir}/descriptors`);
  const busNumber = parseDecimal(yield* readText(`${dir}/busnum`));
  const deviceAddress = parseDecimal(yield* readText(`${dir}/devnum`));
  if (
    descriptors === undefined || busNumber === undefined ||
    deviceAddress === undefined
  ) {
    return undefined;
  }
  let device: DeviceDescriptor;
  try {
    device = parseDeviceDescriptor(descriptors.subarray(0, 18), {
      mode: "lenient",
    });
  } catch {
    return undefined; // a short read: the device went away mid-read
  }
  const speedText = (yield* readText(`${dir}/speed`))?.trim() ?? "";
  const speed = SPEEDS[speedText];
  let configurations: readonly ConfigurationDescriptor[] = [];
  let descriptorError: UsbError | undefined;
  const warnings: string[] = [];
  try {
    // With the speed, the parse applies the kernel's corrections too.
    configurations = parseDescriptors(
      descriptors,
      speed === undefined ? { mode: "lenient" } : { mode: "lenient", speed },
    ).configurations;
    for (const c of configurations) {
      for (const w of c.warnings) {
        warnings.push(
          `configuration ${c.configurationValue}, byte ${w.offset}: ${w.message}`,
        );
      }
    }
  } catch (e) {
    if (!(e instanceof UsbError)) throw e;
    descriptorError = e;
  }

  const activeText = (yield* readText(`${dir}/bConfigurationValue`))?.trim();
  const activeConfiguration = parseDecimal(activeText);

  const interfaces: InterfaceInfo[] = [];
  for (const entry of yield* readDir(dir)) {
    const m = INTERFACE_NAME.exec(entry);
    if (m === null) continue;
    const intf = yield* scanInterface(`${dir}/${entry}`, entry, Number(m[1]));
    if (intf !== undefined) interfaces.push(intf);
  }
  interfaces.sort((a, b) => a.interfaceNumber - b.interfaceNumber);

  return {
    busNumber,
    deviceAddress,
    portPath: name,
    isRootHub: name.startsWith("usb"),
    speed: speed ?? "unknown",
    vendorId: device.vendorId,
    productId: device.productId,
    deviceClass: device.deviceClass,
    deviceSubclass: device.deviceSubclass,
    deviceProtocol: device.deviceProtocol,
    usbVersion: device.usbVersion,
    deviceVersion: device.deviceVersion,
    manufacturerName: nonEmpty(yield* readText(`${dir}/manufacturer`)),
    productName: nonEmpty(yield* readText(`${dir}/product`)),
    serialNumber: nonEmpty(yield* readText(`${dir}/serial`)),
    numConfigurations: device.numConfigurations,
    activeConfiguration,
    configurationName: nonEmpty(yield* readText(`${dir}/configuration`)),
    // drivers/usb/core/sysfs.c authorized_show: "%u\n", 0 or 1.
    authorized: (yield* readText(`${dir}/authorized`))?.trim() !== "0",
    descriptors,
    device,
    configurations,
    descriptorError,
    warnings,
    interfaces,
    // usbfs nodes are named by devtmpfs as bus/usb/%03d/%03d (drivers/usb/core/usb.c, usb_devnode).
    devnode: `${devRoot}/bus/usb/${pad3(busNumber)}/${pad3(deviceAddress)}`,
    sysfsPath: (yield* realPath(dir)) ?? dir,
  };
}

function* scanInterface(
  dir: string,
  name: string,
  configurationValue: number,
): Scan<InterfaceInfo | undefined> {
  // Formats from drivers/usb/core/sysfs.c usb_intf_attr(): bInterfaceNumber
  // "%02x" (hex), bAlternateSetting "%2d" (decimal), the others "%02x".
  const interfaceNumber = parseHex(yield* readText(`${dir}/bInterfaceNumber`));
  if (interfaceNumber === undefined) return undefined;
  const link = yield* readLink(`${dir}/driver`);
  return {
    name,
    configurationValue,
    interfaceNumber,
    alternateSetting:
      parseDecimal(yield* readText(`${dir}/bAlternateSetting`)) ?? 0,
    interfaceClass: parseHex(yield* readText(`${dir}/bInterfaceClass`)) ?? 0,
    interfaceSubclass: parseHex(yield* readText(`${dir}/bInterfaceSubClass`)) ??
      0,
    interfaceProtocol: parseHex(yield* readText(`${dir}/bInterfaceProtocol`)) ??
      0,
    numEndpoints: parseHex(yield* readText(`${dir}/bNumEndpoints`)) ?? 0,
    interfaceName: nonEmpty(yield* readText(`${dir}/interface`)),
    driver: link === undefined
      ? undefined
      : link.slice(link.lastIndexOf("/") + 1),
  };
}

function parseDecimal(text: string | undefined): number | undefined {
  const t = text?.trim();
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}

function parseHex(text: string | undefined): number | undefined {
  const t = text?.trim();
  return t !== undefined && /^[0-9a-fA-F]+$/.test(t)
    ? parseInt(t, 16)
    : undefined;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === "" ? undefined : text;
}

function pad3(n: number): string {
  return String(n).padStart(3, "0");
}

/** "usb2" -> [], "2-1.4" -> [1, 4]; the bus is compared separately. */
function portKey(path: string): number[] {
  const dash = path.indexOf("-");
  if (path.startsWith("usb") || dash < 0) return [];
  return path.slice(dash + 1).split(".").map(Number);
}
