/**
 * Device selectors: how people and recipes say which device they mean.
 *
 * As text, a selector is one of:
 * - `VID:PID` in hex, such as `0525:a4a0` (or `0525:` for any product of a vendor);
 * - a port path, such as `2-1` or `1-1.4` (`usb2` for a root hub);
 * - a path: the usbfs node `/dev/bus/usb/002/002` or the sysfs directory;
 * - a serial number: anything else.
 *
 * A prefix forces a kind when the text is ambiguous: `serial=1-1`, `port=2-1`,
 * `id=0525:a4a0`, `path=/dev/bus/usb/002/002`. Without one, the structural
 * forms are tried first and a serial number second: `1-1` names port 1-1,
 * unless no device is there, in which case a device whose serial number is
 * "1-1" is selected.
 *
 * @module
 */

import { UsbError } from "./errors.ts";
import type { DeviceInfo } from "./enumeration.ts";
import {
  checkInteger,
  checkOptions,
  checkString,
  hex,
  invalidArgument,
} from "./validate.ts";

/**
 * A selector as data. Every property given must match; at least one must be
 * given. This is the form recipes and `open()` take.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeviceSelector } from "./selector.ts";
 * const s: DeviceSelector = { vendorId: 0x0525, productId: 0xa4a0, serial: "usbkit-ss-0001" };
 * assert.ok(s.vendorId === 0x0525);
 * ```
 */
export interface DeviceSelector {
  /** `idVendor`. */
  vendorId?: number;
  /** `idProduct`. */
  productId?: number;
  /** The serial number string, exactly. */
  serial?: string;
  /** The port path, such as "2-1" or "1-1.4", or "usb2" for a root hub. */
  port?: string;
  /** The usbfs node (`/dev/bus/usb/BBB/DDD`) or the sysfs directory. */
  path?: string;
}

/**
 * Parses selector text.
 *
 * @param text the selector, as typed on a command line
 * @returns the selector as data
 * @throws {UsbError} `"invalid-argument"` for empty text or a malformed prefixed form
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSelector } from "./selector.ts";
 * assert.ok(parseSelector("0525:a4a0").productId === 0xa4a0);
 * assert.ok(parseSelector("1-1.4").port === "1-1.4");
 * assert.ok(parseSelector("/dev/bus/usb/002/002").path === "/dev/bus/usb/002/002");
 * assert.ok(parseSelector("A1B2C3").serial === "A1B2C3");
 * assert.ok(parseSelector("serial=1-1").serial === "1-1");
 * ```
 */
export function parseSelector(text: string): DeviceSelector {
  const t = checkString("parseSelector: text", text).trim();
  if (t === "") {
    throw new UsbError("invalid-argument", "empty device selector", {
      hint: SELECTOR_HELP,
    });
  }
  const eq = /^(serial|port|id|path)=(.*)$/s.exec(t);
  if (eq !== null) {
    const [, key, value = ""] = eq;
    if (value === "") {
      throw new UsbError(
        "invalid-argument",
        `selector "${t}" has nothing after "="`,
        {
          hint: SELECTOR_HELP,
        },
      );
    }
    switch (key) {
      case "serial":
        return { serial: value };
      case "path":
        return { path: value };
      case "port": {
        if (!PORT.test(value)) {
          throw new UsbError(
            "invalid-argument",
            `"${value}" is not a port path`,
            {
              hint:
                'a port path is the bus, a dash, and the hub ports: "2-1", "1-1.4"',
            },
          );
        }
        return { port: value };
      }
      default: {
        const id = parseId(value);
        if (id === undefined) {
          throw new UsbError("invalid-argument", `"${value}" is not VID:PID`, {
            hint: 'vendor and product ids are hex: "0525:a4a0"',
          });
        }
        return id;
      }
    }
  }
  return structural(t) ?? { serial: t };
}

/**
 * Checks a selector given as text or data: a string, or an object whose
 * properties are `vendorId` and `productId` (integers from 0 to 65535) and
 * `serial`, `port` and `path` (strings), at least one of them given. Other
 * properties are ignored. Returns a plain copy of an object.
 *
 * @param name the argument, for the message: `"open: selector"`
 * @param value what was passed
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSelector } from "./selector.ts";
 * assert.equal(checkSelector("open: selector", "0525:a4a0"), "0525:a4a0");
 * assert.deepEqual(checkSelector("open: selector", { vendorId: 0x0525 }), { vendorId: 0x0525 });
 * assert.throws(() => checkSelector("open: selector", { vendorId: -1 }), /open: selector\.vendorId must be an integer from 0 to 65535, got -1/);
 * assert.throws(() => checkSelector("open: selector", null), /open: selector must be/);
 * ```
 */
export function checkSelector(
  name: string,
  value: unknown,
): string | DeviceSelector {
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument(
      name,
      value,
      'a selector: text such as "0525:a4a0" or "2-1", or an object such as { vendorId: 0x0525, productId: 0xa4a0 }',
      SELECTOR_HELP,
    );
  }
  const o = checkOptions(name, value, [
    "vendorId",
    "productId",
    "serial",
    "port",
    "path",
  ]);
  const sel: DeviceSelector = {};
  if (o.vendorId !== undefined) {
    sel.vendorId = checkInteger(`${name}.vendorId`, o.vendorId, 0, 0xffff);
  }
  if (o.productId !== undefined) {
    sel.productId = checkInteger(`${name}.productId`, o.productId, 0, 0xffff);
  }
  if (o.serial !== undefined) {
    sel.serial = checkString(`${name}.serial`, o.serial);
  }
  if (o.port !== undefined) sel.port = checkString(`${name}.port`, o.port);
  if (o.path !== undefined) sel.path = checkString(`${name}.path`, o.path);
  if (Object.keys(sel).length === 0) {
    throw invalidArgument(
      name,
      value,
      "a selector object with at least one of vendorId, productId, serial, port, path",
      SELECTOR_HELP,
    );
  }
  return sel;
}

/**
 * Whether a device matches a selector (every property given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchesSelector } from "./selector.ts";
 * import { listDevicesSync } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const [hub] = listDevicesSync({ sysfsRoot: root }).filter((d) => d.portPath === "1-1");
 * assert.ok(matchesSelector(hub!, { vendorId: 0x05e3 }));
 * assert.ok(!matchesSelector(hub!, { vendorId: 0x05e3, productId: 0x0610 }));
 * ```
 */
export function matchesSelector(
  device: DeviceInfo,
  selector: DeviceSelector,
): boolean {
  if (
    selector.vendorId !== undefined && device.vendorId !== selector.vendorId
  ) return false;
  if (
    selector.productId !== undefined && device.productId !== selector.productId
  ) return false;
  if (
    selector.serial !== undefined && device.serialNumber !== selector.serial
  ) return false;
  if (selector.port !== undefined && device.portPath !== selector.port) {
    return false;
  }
  if (selector.path !== undefined && !matchesPath(device, selector.path)) {
    return false;
  }
  return true;
}

/**
 * Picks the one device a selector names.
 *
 * Text is parsed with {@linkcode parseSelector}; if a structural form (port
 * path, VID:PID, path) matches nothing, the text is tried as a serial number.
 *
 * @param devices the devices to choose from, as {@linkcode listDevices} gives them
 * @param selector text or data
 * @returns the device
 * @throws {UsbError} `"not-found"` (the hint lists what is attached),
 *   `"ambiguous"` (the hint lists the candidates and how to tell them apart),
 *   `"invalid-argument"` for an empty selector
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectDevice } from "./selector.ts";
 * import { listDevicesSync } from "./enumeration.ts";
 * import { UsbError } from "./errors.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const devices = listDevicesSync({ sysfsRoot: root });
 * assert.ok(selectDevice(devices, "0525:a4a0").portPath === "2-1");
 * assert.ok(selectDevice(devices, { serial: "0123456789" }).portPath === "1-2");
 * try {
 *   selectDevice(devices, "1d6b:");
 * } catch (e) {
 *   assert.ok(e instanceof UsbError && e.code === "ambiguous");
 * }
 * ```
 */
export function selectDevice(
  devices: readonly DeviceInfo[],
  selector: string | DeviceSelector,
): DeviceInfo {
  const checked = checkSelector("selectDevice: selector", selector);
  // Text never parses to an empty selector; checkSelector refuses an empty object.
  const sel = typeof checked === "string" ? parseSelector(checked) : checked;
  let matches = devices.filter((d) => matchesSelector(d, sel));
  // Structural first, then serial: a serial number may look like a port path.
  if (
    matches.length === 0 && typeof selector === "string" &&
    sel.serial === undefined &&
    !/^(port|id|path)=/.test(selector.trim())
  ) {
    const serial = selector.trim();
    matches = devices.filter((d) => d.serialNumber === serial);
  }
  const label = typeof selector === "string"
    ? `"${selector.trim()}"`
    : formatSelector(sel);
  const [first, second] = matches;
  if (first === undefined) {
    throw new UsbError("not-found", `no USB device matches ${label}`, {
      hint: attachedHint(devices),
    });
  }
  if (second !== undefined) {
    throw new UsbError(
      "ambiguous",
      `${matches.length} USB devices match ${label}`,
      {
        hint: ambiguousHint(matches),
      },
    );
  }
  return first;
}

/**
 * Renders a selector as text that {@linkcode parseSelector} reads back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSelector } from "./selector.ts";
 * assert.ok(formatSelector({ vendorId: 0x525, productId: 0xa4a0 }) === "0525:a4a0");
 * assert.ok(formatSelector({ port: "2-1", serial: "X" }) === "port=2-1 serial=X");
 * ```
 */
export function formatSelector(selector: DeviceSelector): string {
  const parts: string[] = [];
  if (selector.vendorId !== undefined || selector.productId !== undefined) {
    const v = selector.vendorId === undefined ? "" : hex4(selector.vendorId);
    const p = selector.productId === undefined ? "" : hex4(selector.productId);
    parts.push(`${v}:${p}`);
  }
  if (selector.port !== undefined) parts.push(`port=${selector.port}`);
  if (selector.path !== undefined) parts.push(`path=${selector.path}`);
  if (selector.serial !== undefined) parts.push(`serial=${selector.serial}`);
  return parts.length === 1 && selector.port !== undefined
    ? selector.port
    : parts.length === 1 && selector.path !== undefined
    ? selector.path
    : parts.join(" ");
}

// ---------------------------------------------------------------------------

const SELECTOR_HELP =
  'a selector is VID:PID ("0525:a4a0"), a port path ("2-1", "1-1.4"), ' +
  'a device node ("/dev/bus/usb/002/002") or a serial number ("serial=ABC123")';

/** A port path: bus, dash, hub ports joined by dots (the sysfs device name), or a root hub. */
const PORT = /^(?:\d+-\d+(?:\.\d+)*|usb\d+)$/;

function parseId(text: string): DeviceSelector | undefined {
  const m = /^([0-9a-fA-F]{1,4})?:([0-9a-fA-F]{1,4})?$/.exec(text);
  if (m === null || (m[1] === undefined && m[2] === undefined)) {
    return undefined;
  }
  const sel: DeviceSelector = {};
  if (m[1] !== undefined) sel.vendorId = parseInt(m[1], 16);
  if (m[2] !== undefined) sel.productId = parseInt(m[2], 16);
  return sel;
}

function structural(t: string): DeviceSelector | undefined {
  if (t.startsWith("/")) return { path: t };
  if (PORT.test(t)) return { port: t };
  return parseId(t);
}

/** A usbfs path matches by bus and device number, wherever /dev is mounted. */
function matchesPath(device: DeviceInfo, path: string): boolean {
  const p = path.replace(/\/+$/, "");
  if (p === device.devnode || p === device.sysfsPath) return true;
  if (p.endsWith(`/bus/usb/devices/${device.portPath}`)) return true;
  const m = /\/bus\/usb\/(\d{3})\/(\d{3})$/.exec(p);
  return m !== null && Number(m[1]) === device.busNumber &&
    Number(m[2]) === device.deviceAddress;
}

/** How many devices a hint lists before saying "and N more". */
const HINT_ROWS = 8;

function describeShort(d: DeviceInfo): string {
  const name = [d.manufacturerName, d.productName].filter((s) =>
    s !== undefined
  ).join(" ");
  const serial = d.serialNumber === undefined
    ? ""
    : ` serial "${d.serialNumber}"`;
  return `${d.portPath.padEnd(8)} ${hex4(d.vendorId)}:${
    hex4(d.productId)
  } ${name}${serial}`
    .trimEnd();
}

function attachedHint(devices: readonly DeviceInfo[]): string {
  const attached = devices.filter((d) => !d.isRootHub);
  if (devices.length === 0) {
    return "no USB devices are present on this system " +
      "(without USB hardware, the virtual bench has some: `deno task demo`)";
  }
  if (attached.length === 0) {
    return `nothing is attached: only ${devices.length} root hub(s) (see \`usb list --all\`)`;
  }
  const rows = attached.slice(0, HINT_ROWS).map(describeShort);
  if (attached.length > HINT_ROWS) {
    rows.push(`... and ${attached.length - HINT_ROWS} more`);
  }
  return `attached devices:\n${rows.join("\n")}`;
}

function ambiguousHint(matches: readonly DeviceInfo[]): string {
  const rows = matches.slice(0, HINT_ROWS).map(describeShort);
  if (matches.length > HINT_ROWS) {
    rows.push(`... and ${matches.length - HINT_ROWS} more`);
  }
  const serials = matches.map((d) => d.serialNumber);
  const uniqueSerials = serials.every((s) => s !== undefined) &&
    new Set(serials).size === serials.length;
  const [first] = matches;
  const suggestion = uniqueSerials && first?.serialNumber !== undefined
    ? `by serial number ("serial=${first.serialNumber}") or by port path ("${first.portPath}")`
    : `by port path ("${first?.portPath ?? "2-1"}")`;
  return `candidates:\n${rows.join("\n")}\nselect one ${suggestion}`;
}

function hex4(n: number): string {
  return hex(n, 4, "");
}
