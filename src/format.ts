/**
 * Rendering devices for people and programs: the `usb list` table, the
 * `usb describe` descriptor tree (in the manner of `lsusb -v`), and the JSON
 * form. Pure functions of their inputs: no I/O.
 *
 * @module
 */

import {
  type AlternateSetting,
  type ConfigurationDescriptor,
  DescriptorType,
  type EndpointDescriptor,
  formatBcd,
  formatReleaseNumber,
  type InterfaceAssociation,
  intervalMicroseconds,
  maxPowerMilliamps,
  type RawDescriptor,
  type Speed,
} from "./descriptors.ts";
import type { DeviceDetails } from "./descriptors/details.ts";
import type { DecodedField } from "./descriptors/types.ts";
import type { DeviceInfo } from "./enumeration.ts";
import { UsbError } from "./errors.ts";
import { hex2 } from "./descriptors/reader.ts";

/**
 * What the usbfs side says about a device, as `readCapabilities` in
 * capabilities.ts returns it, or why it could not be read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { UsbfsView } from "./format.ts";
 * const v: UsbfsView = { bits: 0x80, names: ["MMAP"], speed: "high" };
 * assert.ok("names" in v);
 * ```
 */
export type UsbfsView =
  | {
    readonly bits: number;
    readonly names: readonly string[];
    readonly speed: string;
  }
  | { readonly error: UsbError };

// Class codes, include/uapi/linux/usb/ch9.h (USB_CLASS_*) and usb.org's list.
const CLASSES: ReadonlyMap<number, readonly [string, string]> = new Map([
  [0x00, ["(defined at interface level)", "-"]],
  [0x01, ["Audio", "audio"]],
  [0x02, ["Communications", "comm"]],
  [0x03, ["Human Interface Device", "hid"]],
  [0x05, ["Physical", "physical"]],
  [0x06, ["Image", "image"]],
  [0x07, ["Printer", "printer"]],
  [0x08, ["Mass Storage", "storage"]],
  [0x09, ["Hub", "hub"]],
  [0x0a, ["CDC Data", "cdc-data"]],
  [0x0b, ["Chip/SmartCard", "smartcard"]],
  [0x0d, ["Content Security", "security"]],
  [0x0e, ["Video", "video"]],
  [0x0f, ["Personal Healthcare", "healthcare"]],
  [0x10, ["Audio/Video", "av"]],
  [0x11, ["Billboard", "billboard"]],
  [0x12, ["Type-C Bridge", "typec-bridge"]],
  [0xdc, ["Diagnostic", "diagnostic"]],
  [0xe0, ["Wireless", "wireless"]],
  [0xef, ["Miscellaneous Device", "misc"]],
  [0xfe, ["Application Specific", "app-specific"]],
  [0xff, ["Vendor Specific", "vendor"]],
]);

/**
 * The name of a USB class code, as `lsusb` would print it.
 *
 * @param code a `bDeviceClass`, `bInterfaceClass` or `bFunctionClass`
 * @param short the one-word form used in tables
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { className } from "./format.ts";
 * assert.ok(className(0x08) === "Mass Storage");
 * assert.ok(className(0x08, true) === "storage");
 * assert.ok(className(0x42) === "0x42");
 * ```
 */
export function className(code: number, short = false): string {
  const names = CLASSES.get(code);
  return names === undefined ? `0x${hex2(code)}` : names[short ? 1 : 0];
}

/**
 * Bytes as lowercase hex, optionally separated.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hexBytes } from "./format.ts";
 * assert.ok(hexBytes(new Uint8Array([0x12, 0x01])) === "1201");
 * assert.ok(hexBytes(new Uint8Array([0x12, 0x01]), " ") === "12 01");
 * ```
 */
export function hexBytes(bytes: Uint8Array, separator = ""): string {
  return Array.from(bytes, hex2).join(separator);
}

/** Speeds in words, from the sysfs `speed` values (Mb/s). */
const SPEED_RATES: Readonly<Record<Speed | "unknown", string>> = {
  low: "1.5 Mb/s",
  full: "12 Mb/s",
  high: "480 Mb/s",
  super: "5 Gb/s",
  "super-plus": "10 Gb/s",
  unknown: "unknown rate",
};

/**
 * The `usb list` table: one row per device.
 *
 * @param devices the devices, in the order to show
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDeviceTable } from "./format.ts";
 * import { listDevicesSync } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const table = formatDeviceTable(listDevicesSync({ sysfsRoot: root }).filter((d) => !d.isRootHub));
 * assert.ok(table.split("\n")[0]!.startsWith("BUS DEV PORT"));
 * assert.ok(table.includes("0525:a4a0"));
 * ```
 */
export function formatDeviceTable(devices: readonly DeviceInfo[]): string {
  const header = [
    "BUS",
    "DEV",
    "PORT",
    "ID",
    "SPEED",
    "CLASS",
    "MANUFACTURER",
    "PRODUCT",
    "SERIAL",
  ];
  const rows = devices.map((d) => [
    pad3(d.busNumber),
    pad3(d.deviceAddress),
    d.portPath,
    `${hex4(d.vendorId)}:${hex4(d.productId)}`,
    d.speed,
    classSummary(d),
    d.manufacturerName ?? "-",
    d.productName ?? "-",
    d.serialNumber ?? "-",
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0))
  );
  return [header, ...rows]
    .map((r) =>
      r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" ").trimEnd()
    )
    .join("\n");
}

/**
 * The `usb describe` tree: the device's descriptors field by field with
 * decoded values, the driver bound to each interface, and what usbfs
 * reports.
 *
 * @param info the device
 * @param usbfs the usbfs capabilities and speed, or why they are unavailable
 * @param details what was read from the open device (strings, BOS,
 *   qualifier, hub, status, HID reports), from `readDeviceDetails`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDeviceTree } from "./format.ts";
 * import { listDevicesSync } from "./enumeration.ts";
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const gadget = listDevicesSync({ sysfsRoot: root }).find((d) => d.portPath === "2-1")!;
 * const tree = formatDeviceTree(gadget, { bits: 0x80, names: ["MMAP"], speed: "super" });
 * assert.ok(tree.includes("bEndpointAddress") && tree.includes("EP 1 IN"));
 * assert.ok(tree.includes("SuperSpeed Endpoint Companion"));
 * ```
 */
export function formatDeviceTree(
  info: DeviceInfo,
  usbfs?: UsbfsView,
  details?: DeviceDetails,
): string {
  const ctx: Ctx = { info, details };
  const out: string[] = [];
  const speed = info.speed === "unknown" ? undefined : info.speed;
  const name = [info.manufacturerName, info.productName].filter((s) =>
    s !== undefined
  ).join(" ");
  out.push(
    `Bus ${pad3(info.busNumber)} Device ${pad3(info.deviceAddress)}: ID ${
      hex4(info.vendorId)
    }:${hex4(info.productId)}${name === "" ? "" : ` ${name}`}`,
  );
  out.push(
    `  port ${info.portPath}${
      info.isRootHub ? " (root hub)" : ""
    }, ${info.speed} speed (${SPEED_RATES[info.speed]}), ${info.devnode}`,
  );
  out.push(`  sysfs ${info.sysfsPath}`);
  if (!info.authorized) {
    out.push(
      "  not authorized (authorized = 0): the kernel keeps it unconfigured",
    );
  }
  if (info.warnings.length > 0) {
    out.push("Kernel warnings (drivers/usb/core/config.c):");
    for (const w of info.warnings) out.push(`  ${w}`);
  }
  if (usbfs !== undefined) {
    if ("error" in usbfs) {
      out.push(`usbfs: capabilities unavailable`);
      out.push(indentLines(usbfs.error.describe(), "  "));
    } else {
      out.push(
        `usbfs: speed ${usbfs.speed}, capabilities 0x${
          usbfs.bits.toString(16)
        }`,
      );
      out.push(
        `  ${usbfs.names.length === 0 ? "(none)" : usbfs.names.join(" ")}`,
      );
    }
  }

  const d = info.device;
  out.push("Device Descriptor:");
  const dev = new Fields("  ");
  dev.add("bLength", d.raw[0] ?? 18);
  dev.add("bDescriptorType", d.raw[1] ?? 1);
  dev.add(
    "bcdUSB",
    `0x${hex4(d.usbVersion)}`,
    `USB ${formatBcd(d.usbVersion)}`,
  );
  dev.add("bDeviceClass", `0x${hex2(d.deviceClass)}`, className(d.deviceClass));
  dev.add("bDeviceSubClass", `0x${hex2(d.deviceSubclass)}`);
  dev.add("bDeviceProtocol", `0x${hex2(d.deviceProtocol)}`);
  // From USB 3.0 on, bMaxPacketSize0 is an exponent (USB 3.2 §9.6.1).
  dev.add(
    "bMaxPacketSize0",
    d.maxPacketSize0,
    `${
      d.usbVersion >= 0x0300
        ? 2 ** Math.min(d.maxPacketSize0, 15)
        : d.maxPacketSize0
    } bytes`,
  );
  dev.add("idVendor", `0x${hex4(d.vendorId)}`);
  dev.add("idProduct", `0x${hex4(d.productId)}`);
  dev.add(
    "bcdDevice",
    formatReleaseNumber(d.deviceVersion),
    `0x${hex4(d.deviceVersion)}`,
  );
  dev.add(
    "iManufacturer",
    d.manufacturerStringIndex,
    quote(info.manufacturerName),
  );
  dev.add("iProduct", d.productStringIndex, quote(info.productName));
  dev.add("iSerialNumber", d.serialNumberStringIndex, quote(info.serialNumber));
  dev.add("bNumConfigurations", d.numConfigurations);
  out.push(...dev.lines);

  for (const config of info.configurations) {
    out.push(...configLines(ctx, config, speed));
  }
  if (info.descriptorError !== undefined) {
    out.push("  configurations could not be parsed:");
    out.push(indentLines(info.descriptorError.describe(), "    "));
    out.push(...hexDump(info.descriptors.subarray(18), "    "));
  }
  if (details !== undefined) out.push(...detailLines(ctx, speed));
  return out.join("\n");
}

/** What the lines of one device need: the listing and what was read from it. */
interface Ctx {
  readonly info: DeviceInfo;
  readonly details: DeviceDetails | undefined;
}

/** A string by index: read from the device, or sysfs's for the device strings. */
function stringOf(ctx: Ctx, index: number): string | undefined {
  if (index === 0) return undefined;
  const s = ctx.details?.strings[index];
  if (s !== undefined) return s;
  const d = ctx.info.device;
  if (index === d.manufacturerStringIndex) return ctx.info.manufacturerName;
  if (index === d.productStringIndex) return ctx.info.productName;
  if (index === d.serialNumberStringIndex) return ctx.info.serialNumber;
  return undefined;
}

function detailLines(ctx: Ctx, speed: Speed | undefined): string[] {
  const d = ctx.details!;
  const out: string[] = [];
  if (d.bos !== undefined) {
    const f = new Fields("  ");
    f.add("bLength", d.bos.raw[0] ?? 5);
    f.add("bDescriptorType", 15);
    f.add("wTotalLength", `0x${hex4(d.bos.totalLength)}`);
    f.add("bNumDeviceCaps", d.bos.numCapabilities);
    out.push("Binary Object Store Descriptor:", ...f.lines);
    for (const cap of d.bos.capabilities) {
      out.push(
        `  ${cap.name}${
          cap.platform === undefined ? "" : ` (${cap.platform})`
        }:`,
      );
      out.push(...fieldLines(ctx, cap.fields, "    "));
      if (cap.platform === "webusb" && d.landingPage !== undefined) {
        out.push(`    landing page: ${d.landingPage}`);
      }
    }
    for (const w of d.bos.warnings) {
      out.push(`  warning, byte ${w.offset}: ${w.message}`);
    }
  }
  if (d.qualifier !== undefined) {
    const q = d.qualifier;
    const f = new Fields("  ");
    f.add("bLength", q.raw[0] ?? 10);
    f.add("bDescriptorType", 6);
    f.add("bcdUSB", formatReleaseNumber(q.usbVersion));
    f.add("bDeviceClass", q.deviceClass, className(q.deviceClass));
    f.add("bDeviceSubClass", q.deviceSubclass);
    f.add("bDeviceProtocol", q.deviceProtocol);
    f.add("bMaxPacketSize0", q.maxPacketSize0);
    f.add("bNumConfigurations", q.numConfigurations);
    out.push("Device Qualifier (for other device speed):", ...f.lines);
  }
  for (const c of d.otherSpeedConfigurations) {
    out.push("Other Speed Configuration:");
    out.push(
      ...configLines(ctx, c, speed === "high" ? "full" : speed).slice(1),
    );
  }
  if (d.hub !== undefined) {
    out.push("Hub Descriptor:", ...fieldLines(ctx, d.hub.fields, "  "));
    out.push(" Hub Port Status:");
    d.ports.forEach((p, i) => {
      out.push(
        `   Port ${i + 1}: ${hex4(p.change)}.${hex4(p.status)}${
          p.linkState === undefined ? "" : ` ${p.linkState}`
        }${p.flags.length === 0 ? "" : ` ${p.flags.join(" ")}`}`,
      );
    });
  }
  if (d.status !== undefined) {
    out.push(`Device Status:     0x${hex4(d.status.status)}`);
    out.push(
      ...(d.status.flags.length === 0
        ? ["  (Bus Powered)"]
        : d.status.flags.map((x) => `  ${x}`)),
    );
  }
  for (const r of d.reportDescriptors) {
    out.push(
      `HID Report Descriptor (interface ${r.interfaceNumber}, ${r.raw.length} bytes):`,
    );
    for (const item of r.items) {
      out.push(
        `  ${item.type.padEnd(6)} ${item.tag.padEnd(18)} ${
          String(item.value).padStart(6)
        }${item.note === undefined ? "" : `  ${item.note}`}`,
      );
    }
  }
  if (d.errors.length > 0) {
    out.push("Not read:");
    for (const e of d.errors) out.push(`  ${e}`);
  }
  return out;
}

/** Bitmaps and codes that lsusb prints in hex. */
const HEX_FIELD =
  /^(bm|wTerminalType|wChannelConfig|wFormatTag|wHubCharacteristic|wProcessType|wExtensionCode|wCountryCode|wNumberMCFilters|dwWindowsVersion)/;

/** Decoded fields, one line each, with strings resolved. */
function fieldLines(
  ctx: Ctx,
  fields: readonly DecodedField[],
  indent: string,
): string[] {
  const f = new Fields(indent);
  for (const x of fields) {
    const note = x.stringIndex && typeof x.value === "number"
      ? quote(stringOf(ctx, x.value))
      : x.note;
    f.add(
      x.name,
      typeof x.value === "number" && HEX_FIELD.test(x.name)
        ? `0x${x.value.toString(16).padStart(2, "0")}`
        : x.value,
      note,
    );
  }
  return f.lines;
}

/**
 * Converts a value for `JSON.stringify`: bytes become hex strings, a
 * {@linkcode UsbError} becomes `{code, message, hint}`, `undefined`
 * properties become `null` (so every device has the same keys), functions
 * are dropped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toJson } from "./format.ts";
 * const j = toJson({ raw: new Uint8Array([0x12, 0x01]), serial: undefined });
 * assert.ok(JSON.stringify(j) === '{"raw":"1201","serial":null}');
 * ```
 */
export function toJson(value: unknown): unknown {
  return convert(value, new WeakSet());
}

// ---------------------------------------------------------------------------

function convert(value: unknown, seen: WeakSet<object>): unknown {
  if (value === undefined) return null;
  if (value instanceof Uint8Array) return hexBytes(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "function" || typeof value === "symbol") {
    return undefined;
  }
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[cycle]";
  seen.add(value);
  try {
    if (value instanceof UsbError) {
      return {
        code: value.code,
        message: value.message,
        hint: value.hint ?? null,
      };
    }
    if (value instanceof Error) return { message: value.message };
    if (Array.isArray(value)) return value.map((v) => convert(v, seen) ?? null);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const c = convert(v, seen);
      if (c !== undefined) out[k] = c;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** The class column: the device class, or for per-interface devices their interface classes. */
function classSummary(d: DeviceInfo): string {
  // 0x00: classes are per interface; 0xef/02/01: a composite with IADs.
  if (d.deviceClass !== 0x00 && d.deviceClass !== 0xef) {
    return className(d.deviceClass, true);
  }
  const classes = [
    ...new Set(d.interfaces.map((i) => className(i.interfaceClass, true))),
  ];
  return classes.length === 0
    ? className(d.deviceClass, true)
    : classes.join("+");
}

class Fields {
  readonly lines: string[] = [];
  constructor(readonly indent: string) {}
  add(name: string, value: string | number, note?: string): void {
    const v = String(value);
    const line = `${this.indent}${name.padEnd(20)}${v.padStart(7)}${
      note ? `  ${note}` : ""
    }`;
    this.lines.push(line);
  }
}

function configLines(
  ctx: Ctx,
  c: ConfigurationDescriptor,
  speed: Speed | undefined,
): string[] {
  const info = ctx.info;
  const active = info.activeConfiguration === c.configurationValue;
  const out = [`  Configuration Descriptor:${active ? " (active)" : ""}`];
  const f = new Fields("    ");
  f.add("bLength", c.raw[0] ?? 9);
  f.add("bDescriptorType", c.descriptorType);
  f.add("wTotalLength", `0x${hex4(c.totalLength)}`, `${c.totalLength} bytes`);
  f.add("bNumInterfaces", c.numInterfaces);
  f.add("bConfigurationValue", c.configurationValue);
  f.add(
    "iConfiguration",
    c.configurationStringIndex,
    quote(
      (active ? info.configurationName : undefined) ??
        stringOf(ctx, c.configurationStringIndex),
    ),
  );
  const power = [c.selfPowered ? "self powered" : "bus powered"];
  if (c.remoteWakeup) power.push("remote wakeup");
  f.add("bmAttributes", `0x${hex2(c.attributes)}`, power.join(", "));
  f.add(
    "bMaxPower",
    c.maxPower,
    speed === undefined ? "" : `${maxPowerMilliamps(c, speed)} mA`,
  );
  out.push(...f.lines);
  out.push(...rawLines(ctx, c.extra, "    "));

  // Associations and alternate settings in descriptor order, as on the wire.
  const items: (
    | { kind: "iad"; iad: InterfaceAssociation }
    | { kind: "alt"; alt: AlternateSetting }
  )[] = [
    ...c.associations.map((iad) => ({ kind: "iad" as const, iad })),
    ...c.interfaces.flatMap((i) =>
      i.alternates.map((alt) => ({ kind: "alt" as const, alt }))
    ),
  ];
  items.sort((a, b) =>
    (a.kind === "iad" ? a.iad.offset : a.alt.offset) -
    (b.kind === "iad" ? b.iad.offset : b.alt.offset)
  );
  for (const item of items) {
    if (item.kind === "iad") out.push(...iadLines(ctx, item.iad));
    else out.push(...altLines(ctx, item.alt, active, speed));
  }
  if (c.skipped.length > 0) {
    out.push("    Skipped by the kernel (see the warnings):");
    out.push(...rawLines(ctx, c.skipped, "      "));
  }
  return out;
}

function iadLines(ctx: Ctx, a: InterfaceAssociation): string[] {
  const f = new Fields("      ");
  f.add("bLength", a.raw.length);
  f.add("bDescriptorType", DescriptorType.InterfaceAssociation);
  f.add("bFirstInterface", a.firstInterface);
  f.add("bInterfaceCount", a.interfaceCount);
  f.add(
    "bFunctionClass",
    `0x${hex2(a.functionClass)}`,
    className(a.functionClass),
  );
  f.add("bFunctionSubClass", `0x${hex2(a.functionSubclass)}`);
  f.add("bFunctionProtocol", `0x${hex2(a.functionProtocol)}`);
  f.add(
    "iFunction",
    a.functionStringIndex,
    quote(stringOf(ctx, a.functionStringIndex)),
  );
  return [
    "    Interface Association:",
    ...f.lines,
    ...rawLines(ctx, a.extra, "      "),
  ];
}

function altLines(
  ctx: Ctx,
  alt: AlternateSetting,
  activeConfig: boolean,
  speed: Speed | undefined,
): string[] {
  // sysfs knows the driver and the string of the current alternate setting
  // of each interface of the active configuration only.
  const info = ctx.info;
  const sys = activeConfig
    ? info.interfaces.find((i) => i.interfaceNumber === alt.interfaceNumber)
    : undefined;
  const current = sys !== undefined &&
    sys.alternateSetting === alt.alternateSetting;
  const notes: string[] = [];
  if (current) {
    notes.push(
      "current",
      sys.driver === undefined ? "no driver" : `driver ${sys.driver}`,
    );
  }
  const out = [
    `    Interface Descriptor:${
      notes.length === 0 ? "" : ` (${notes.join(", ")})`
    }`,
  ];
  const f = new Fields("      ");
  f.add("bLength", alt.raw.length);
  f.add("bDescriptorType", DescriptorType.Interface);
  f.add("bInterfaceNumber", alt.interfaceNumber);
  f.add("bAlternateSetting", alt.alternateSetting);
  f.add("bNumEndpoints", alt.numEndpoints);
  f.add(
    "bInterfaceClass",
    `0x${hex2(alt.interfaceClass)}`,
    className(alt.interfaceClass),
  );
  f.add("bInterfaceSubClass", `0x${hex2(alt.interfaceSubclass)}`);
  f.add("bInterfaceProtocol", `0x${hex2(alt.interfaceProtocol)}`);
  f.add(
    "iInterface",
    alt.interfaceStringIndex,
    quote(
      (current ? sys.interfaceName : undefined) ??
        stringOf(ctx, alt.interfaceStringIndex),
    ),
  );
  out.push(...f.lines, ...rawLines(ctx, alt.extra, "      "));
  const usb3 = info.usbVersion >= 0x0300;
  for (const ep of alt.endpoints) {
    out.push(...endpointLines(ctx, ep, speed, usb3));
  }
  return out;
}

const TYPE_NAMES = {
  control: "Control",
  isochronous: "Isochronous",
  bulk: "Bulk",
  interrupt: "Interrupt",
} as const;

function endpointLines(
  ctx: Ctx,
  ep: EndpointDescriptor,
  speed: Speed | undefined,
  usb3: boolean,
): string[] {
  const f = new Fields("        ");
  f.add("bLength", ep.raw.length);
  f.add("bDescriptorType", DescriptorType.Endpoint);
  f.add(
    "bEndpointAddress",
    `0x${hex2(ep.address)}`,
    `EP ${ep.endpointNumber} ${ep.direction.toUpperCase()}`,
  );
  const attrs: string[] = [TYPE_NAMES[ep.type]];
  if (ep.synchronization !== undefined) attrs.push(ep.synchronization);
  // Interrupt usage bits exist from USB 3.0 on; before that they are reserved.
  if (ep.usage !== undefined && (ep.type === "isochronous" || usb3)) {
    attrs.push(ep.usage);
  }
  f.add("bmAttributes", `0x${hex2(ep.attributes)}`, attrs.join(", "));
  const wMax = ep.raw.length >= 6
    ? (ep.raw[4] ?? 0) | ((ep.raw[5] ?? 0) << 8)
    : ep.packetSize;
  f.add(
    "wMaxPacketSize",
    `0x${hex4(wMax)}`,
    `${ep.transactionsPerMicroframe} x ${ep.packetSize} bytes`,
  );
  const micros = speed === undefined ? 0 : intervalMicroseconds(ep, speed);
  const kernelNote = ep.intervalInForce === ep.interval
    ? ""
    : `kernel uses ${ep.intervalInForce}: `;
  f.add(
    "bInterval",
    ep.interval,
    micros === 0 && kernelNote === ""
      ? ""
      : `${kernelNote}${micros === 0 ? "" : formatMicros(micros)}`,
  );
  for (const c of ep.corrections) {
    if (c.field !== "bInterval") {
      f.add(
        `  (kernel) ${c.field}`,
        `0x${hex4(c.inForce)}`,
        `raw 0x${hex4(c.raw)}`,
      );
    }
  }
  if (ep.refresh !== undefined) f.add("bRefresh", ep.refresh);
  if (ep.synchAddress !== undefined) {
    f.add("bSynchAddress", `0x${hex2(ep.synchAddress)}`);
  }
  const out = ["      Endpoint Descriptor:", ...f.lines];
  const c = ep.companion;
  if (c !== undefined) {
    const g = new Fields("          ");
    g.add("bLength", c.raw.length);
    g.add("bDescriptorType", DescriptorType.SuperSpeedEndpointCompanion);
    g.add("bMaxBurst", c.maxBurst, `${c.maxBurst + 1} packet(s) per burst`);
    const note = ep.type === "bulk"
      ? (c.maxStreams === 0 ? "no streams" : `${c.maxStreams} streams`)
      : ep.type === "isochronous"
      ? `mult ${c.mult}${
        c.sspIsochCompanion ? ", SSP isochronous companion follows" : ""
      }`
      : "";
    g.add("bmAttributes", `0x${hex2(c.attributes)}`, note);
    g.add("wBytesPerInterval", c.bytesPerInterval);
    for (const k of c.corrections) {
      g.add(`  (kernel) ${k.field}`, k.inForce, `raw ${k.raw}`);
    }
    out.push("        SuperSpeed Endpoint Companion:", ...g.lines);
  }
  out.push(...rawLines(ctx, ep.extra, "        "));
  return out;
}

function formatMicros(us: number): string {
  return us % 1000 === 0 ? `${us / 1000} ms` : `${us} us`;
}

/** Names for descriptors kept raw. */
function rawKind(type: number): string {
  switch (type) {
    case DescriptorType.Hid:
      return "HID descriptor";
    case DescriptorType.ClassSpecificInterface:
      return "Class-specific interface descriptor";
    case DescriptorType.ClassSpecificEndpoint:
      return "Class-specific endpoint descriptor";
    case DescriptorType.SuperSpeedPlusIsochEndpointCompanion:
      return "SuperSpeedPlus isochronous endpoint companion";
    case DescriptorType.SuperSpeedEndpointCompanion:
      return "SuperSpeed endpoint companion (not after an endpoint)";
    case DescriptorType.Interface:
    case DescriptorType.Endpoint:
    case DescriptorType.InterfaceAssociation:
      return "Malformed descriptor";
    default:
      return (type & 0x60) === 0x20
        ? "Class-specific descriptor"
        : "Unknown descriptor";
  }
}

function rawLines(
  ctx: Ctx,
  extra: readonly RawDescriptor[],
  indent: string,
): string[] {
  const out: string[] = [];
  for (const d of extra) {
    if (d.decoded !== undefined) {
      out.push(`${indent}${d.decoded.name}:`);
      out.push(...fieldLines(ctx, d.decoded.fields, `${indent}  `));
      continue;
    }
    out.push(
      `${indent}${rawKind(d.descriptorType)} (type 0x${
        hex2(d.descriptorType)
      }, ${d.raw.length} bytes):`,
    );
    out.push(...hexDump(d.raw, `${indent}  `));
  }
  return out;
}

function hexDump(bytes: Uint8Array, indent: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    out.push(`${indent}${hexBytes(bytes.subarray(i, i + 16), " ")}`);
  }
  return out;
}

function indentLines(text: string, indent: string): string {
  return text.split("\n").map((l) => indent + l).join("\n");
}

function quote(s: string | undefined): string {
  return s === undefined ? "" : `"${s}"`;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

function pad3(n: number): string {
  return String(n).padStart(3, "0");
}
