/**
 * Hub class descriptors and status: the USB 2.0 hub descriptor (USB 2.0
 * §11.23.2.1, type 0x29), the SuperSpeed hub descriptor (USB 3.2
 * §10.15.2.1, type 0x2a), a port's status (§11.24.2.7, §10.16.2.6), and the
 * device status of GET_STATUS (§9.4.5). Read with class requests by
 * details.ts.
 *
 * @module
 */

import { FieldList } from "./class/fields.ts";
import { hex2, invalid } from "./reader.ts";
import type { DecodedField } from "./types.ts";

/** `USB_DT_HUB`, ch11.h. */
export const USB_DT_HUB = 0x29;
/** `USB_DT_SS_HUB`, ch11.h. */
export const USB_DT_SS_HUB = 0x2a;

/**
 * A hub descriptor, decoded into fields (as `lsusb -v` shows it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHubDescriptor } from "../descriptors.ts";
 * const hub = parseHubDescriptor(new Uint8Array([9, 0x29, 4, 0xe0, 0, 50, 100, 0, 0xff]));
 * assert.equal(hub.numPorts, 4);
 * ```
 */
export interface HubDescriptor {
  /** `bDescriptorType`: 0x29 (USB 2.0) or 0x2a (SuperSpeed). */
  readonly descriptorType: number;
  /** `bNbrPorts`. */
  readonly numPorts: number;
  /** `wHubCharacteristics`. */
  readonly characteristics: number;
  /** The fields in order, header included. */
  readonly fields: readonly DecodedField[];
  /** The descriptor's bytes. */
  readonly raw: Uint8Array;
}

/**
 * Parses a hub descriptor (GET_DESCRIPTOR(HUB) to the hub class).
 *
 * @param bytes the descriptor
 * @throws {UsbError} `"invalid-descriptor"` if it is shorter than its fixed
 *   part (7 bytes) or of another type
 *
 * @example A SuperSpeed hub's descriptor
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHubDescriptor } from "../descriptors.ts";
 * const hub = parseHubDescriptor(new Uint8Array([12, 0x2a, 2, 0x09, 0, 10, 0, 0, 0, 0, 0, 0]));
 * assert.ok(hub.numPorts === 2 && hub.fields.some((f) => f.name === "bHubDecLat"));
 * ```
 */
export function parseHubDescriptor(bytes: Uint8Array): HubDescriptor {
  const type = bytes[1];
  if (bytes.length < 7 || (type !== USB_DT_HUB && type !== USB_DT_SS_HUB)) {
    throw invalid(
      0,
      bytes.length < 7
        ? `truncated hub descriptor: ${bytes.length} bytes`
        : `expected a hub descriptor (type 0x29 or 0x2a), found type 0x${
          hex2(type ?? 0)
        }`,
    );
  }
  const len = Math.min(bytes[0]!, bytes.length);
  const raw = bytes.slice(0, len);
  const f = new FieldList(raw);
  f.header();
  const ports = f.u8("nNbrPorts", 2) ?? 0;
  const characteristics = f.u16("wHubCharacteristic", 3, (v) => {
    const power = ["Ganged power switching", "Per-port power switching"][
      (v & 3) > 1 ? 2 : v & 3
    ] ?? "No power switching (usb 1.0)";
    const oc = (v >> 3) & 3;
    return [
      power,
      v & 4 ? "Compound device" : undefined,
      [
        "Ganged overcurrent protection",
        "Per-port overcurrent protection",
      ][oc] ??
        "No overcurrent protection",
      type === USB_DT_HUB
        ? `TT think time ${8 * (((v >> 5) & 3) + 1)} FS bits`
        : undefined,
      type === USB_DT_HUB && v & 0x80 ? "Port indicators" : undefined,
    ].filter((x) => x !== undefined).join(", ");
  }) ?? 0;
  f.u8("bPwrOn2PwrGood", 5, (v) => `${v * 2} milli seconds`);
  f.u8("bHubContrCurrent", 6, (v) => `${v} milli Ampere`);
  // Port bitmaps, one bit per port and bit 0 reserved: (ports / 8) + 1
  // bytes (USB 2.0 table 11-13), written as bytes the way lsusb writes them.
  const bitmap = (at: number, n: number) =>
    Array.from(
      raw.subarray(at, at + n),
      (b) => `0x${b.toString(16).padStart(2, "0")}`,
    ).join(" ");
  const n = (ports >> 3) + 1;
  if (type === USB_DT_SS_HUB) {
    f.u8("bHubDecLat", 7, (v) => `${v / 10} micro seconds`);
    f.u16("wHubDelay", 8, (v) => `${v} nano seconds`);
    if (raw.length >= 11) f.text("DeviceRemovable", bitmap(10, Math.min(n, 2)));
  } else {
    if (raw.length >= 7 + n) f.text("DeviceRemovable", bitmap(7, n));
    if (raw.length >= 7 + 2 * n) f.text("PortPwrCtrlMask", bitmap(7 + n, n));
  }
  return {
    descriptorType: type,
    numPorts: ports,
    characteristics,
    fields: f.fields,
    raw,
  };
}

/**
 * The status of one hub port, decoded from GET_STATUS(port)'s four bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePortStatus } from "../descriptors.ts";
 * const s = decodePortStatus(new Uint8Array([0x03, 0x05, 0, 0]), false);
 * assert.deepEqual(s.flags, ["connect", "enable", "power", "highspeed"]);
 * ```
 */
export interface PortStatus {
  /** `wPortStatus`. */
  readonly status: number;
  /** `wPortChange`. */
  readonly change: number;
  /** The status bits set, named as lsusb names them. */
  readonly flags: readonly string[];
  /** SuperSpeed ports: the link state (U0, U3, Rx.Detect...). */
  readonly linkState: string | undefined;
}

const USB2_BITS: readonly (string | undefined)[] = [
  "connect",
  "enable",
  "suspend",
  "oc",
  "RESET",
  "L1",
  undefined,
  undefined,
  "power",
  "lowspeed",
  "highspeed",
  "test",
  "indicator",
];
const USB3_BITS: readonly (string | undefined)[] = [
  "connect",
  "enable",
  undefined,
  "oc",
  "RESET",
  undefined,
  undefined,
  undefined,
  undefined,
  "power",
];
const LINK_STATES = [
  "U0",
  "U1",
  "U2",
  "suspend",
  "SS.disabled",
  "Rx.Detect",
  "SS.Inactive",
  "Polling",
  "Recovery",
  "Hot Reset",
  "Compliance",
  "Loopback",
];

/**
 * Decodes a port's status.
 *
 * @param bytes the four bytes of GET_STATUS to the port
 * @param superSpeed the hub is a SuperSpeed hub (bit meanings differ)
 * @returns the status
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePortStatus } from "../descriptors.ts";
 * const s = decodePortStatus(new Uint8Array([0xa0, 0x02, 0, 0]), true);
 * assert.equal(s.linkState, "Rx.Detect");
 * assert.deepEqual(s.flags, ["power"]);
 * ```
 */
export function decodePortStatus(
  bytes: Uint8Array,
  superSpeed: boolean,
): PortStatus {
  const status = (bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8);
  const change = (bytes[2] ?? 0) | ((bytes[3] ?? 0) << 8);
  const bits = superSpeed ? USB3_BITS : USB2_BITS;
  const flags = bits.flatMap((n, i) =>
    n !== undefined && (status >> i) & 1 ? [n] : []
  );
  return {
    status,
    change,
    flags,
    linkState: superSpeed
      ? LINK_STATES[(status >> 5) & 0xf] ?? "unknown"
      : undefined,
  };
}

/**
 * The device status of GET_STATUS (USB 2.0 §9.4.5, USB 3.2 §9.4.5).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeDeviceStatus } from "../descriptors.ts";
 * assert.deepEqual(decodeDeviceStatus(new Uint8Array([1, 0])), { status: 1, flags: ["Self Powered"] });
 * ```
 */
export interface DeviceStatus {
  /** The 16-bit status. */
  readonly status: number;
  /** The bits set: "Self Powered", "Remote Wakeup Enabled", "U1 Enabled"... */
  readonly flags: readonly string[];
}

/**
 * Decodes GET_STATUS(device) data.
 *
 * @param bytes the two status bytes
 * @returns the status
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeDeviceStatus } from "../descriptors.ts";
 * assert.deepEqual(decodeDeviceStatus(new Uint8Array([2, 0])).flags, ["Remote Wakeup Enabled"]);
 * ```
 */
export function decodeDeviceStatus(bytes: Uint8Array): DeviceStatus {
  const status = (bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8);
  const names = [
    "Self Powered",
    "Remote Wakeup Enabled",
    "U1 Enabled",
    "U2 Enabled",
    "Latency Tolerance Messaging (LTM) Enabled",
  ];
  return { status, flags: names.filter((_, i) => (status >> i) & 1) };
}
