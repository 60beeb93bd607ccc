/**
 * Parsing USB descriptors: the device descriptor, configuration descriptors
 * and everything they contain.
 *
 * Descriptors come from devices, so they are untrusted input. Every function
 * here is total: for any bytes at all it returns a parse or throws a
 * {@linkcode UsbError} with code `"invalid-descriptor"` that names the byte
 * offset and what was wrong. It never throws anything else and never loops
 * forever.
 *
 * Two modes:
 * - `"strict"` (the default) checks every rule the layout depends on: exact
 *   `bLength`s, `wTotalLength` equal to the bytes given, the declared counts
 *   (`bNumInterfaces`, `bNumEndpoints`, `bNumConfigurations`). Use it to
 *   validate descriptors you wrote or read from a device.
 * - `"lenient"` accepts what the Linux kernel accepts
 *   (drivers/usb/core/config.c): it stops a configuration at the first bad
 *   `bLength`, keeps too-short known descriptors as raw ones, and ignores count
 *   mismatches. Use it for sysfs `descriptors` files, where the kernel has
 *   already validated (and trimmed) the data.
 *
 * Layouts and constants are from include/uapi/linux/usb/ch9.h. The BOS
 * descriptor is not among these bytes (neither sysfs nor usbfs puts it there;
 * it is fetched on its own with GET_DESCRIPTOR(BOS)), so it is not parsed
 * here.
 *
 * @module
 */

import { UsbError } from "./errors.ts";

/**
 * The speed a device runs at, as the kernel reports it.
 *
 * Speed changes how some descriptor fields read (`bInterval`, `bMaxPower`),
 * so it is declared here; `enumeration.ts` re-exports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Speed } from "./descriptors.ts";
 * const s: Speed = "super";
 * assert.ok(s === "super");
 * ```
 */
export type Speed = "low" | "full" | "high" | "super" | "super-plus";

/**
 * Descriptor type codes (`bDescriptorType`), from include/uapi/linux/usb/ch9.h.
 *
 * Class-specific types are `USB_TYPE_CLASS | type` (0x20 | type): for example
 * 0x21 is the HID descriptor and 0x24 a class-specific interface descriptor.
 *
 * @example Finding HID class descriptors among an interface's extras
 * ```ts
 * import assert from "node:assert/strict";
 * import { DescriptorType, type RawDescriptor } from "./descriptors.ts";
 * const extra: RawDescriptor[] = [];
 * const hid = extra.filter((d) => d.descriptorType === DescriptorType.Hid);
 * assert.ok(hid.length === 0);
 * ```
 */
export const DescriptorType = {
  Device: 0x01,
  Configuration: 0x02,
  String: 0x03,
  Interface: 0x04,
  Endpoint: 0x05,
  DeviceQualifier: 0x06,
  OtherSpeedConfiguration: 0x07,
  InterfacePower: 0x08,
  Otg: 0x09,
  Debug: 0x0a,
  InterfaceAssociation: 0x0b,
  Bos: 0x0f,
  DeviceCapability: 0x10,
  /** HID class descriptor (HID 1.11 §7.1), `USB_TYPE_CLASS | USB_DT_DEVICE`. */
  Hid: 0x21,
  /** `USB_DT_CS_INTERFACE`: class-specific interface descriptor (CDC, audio, video). */
  ClassSpecificInterface: 0x24,
  /** `USB_DT_CS_ENDPOINT`: class-specific endpoint descriptor (audio). */
  ClassSpecificEndpoint: 0x25,
  SuperSpeedEndpointCompanion: 0x30,
  SuperSpeedPlusIsochEndpointCompanion: 0x31,
} as const;

// Descriptor sizes, from include/uapi/linux/usb/ch9.h.
const USB_DT_DEVICE_SIZE = 18;
const USB_DT_CONFIG_SIZE = 9;
const USB_DT_INTERFACE_SIZE = 9;
const USB_DT_ENDPOINT_SIZE = 7;
/** Audio endpoints add bRefresh and bSynchAddress. */
const USB_DT_ENDPOINT_AUDIO_SIZE = 9;
const USB_DT_INTERFACE_ASSOCIATION_SIZE = 8;
const USB_DT_SS_EP_COMP_SIZE = 6;

/**
 * A descriptor kept as bytes: class-specific (HID, CDC functional, UAC) and
 * unknown descriptors. They stay in place, in the `extra` list of the
 * configuration, association, interface or endpoint they follow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * // A configuration with one interface followed by a HID descriptor (0x21).
 * const config = parseConfiguration(new Uint8Array([
 *   9, 2, 27, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 0, 3, 1, 1, 0,
 *   9, 0x21, 0x11, 0x01, 0, 1, 0x22, 63, 0,
 * ]));
 * const hid = config.interfaces[0]!.alternates[0]!.extra[0]!;
 * assert.ok(hid.descriptorType === 0x21 && hid.offset === 18 && hid.raw.length === 9);
 * ```
 */
export interface RawDescriptor {
  /** `bDescriptorType`. */
  readonly descriptorType: number;
  /** Where the descriptor starts in the bytes given to the parser. */
  readonly offset: number;
  /** The whole descriptor, `bLength` bytes, header included. */
  readonly raw: Uint8Array;
}

/**
 * The device descriptor (USB 2.0 §9.6.1, `struct usb_device_descriptor`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDeviceDescriptor } from "./descriptors.ts";
 * const d = parseDeviceDescriptor(new Uint8Array([
 *   18, 1, 0x20, 0x03, 0, 0, 0, 9, 0x25, 0x05, 0xa0, 0xa4, 0x00, 0x01, 1, 2, 3, 1,
 * ]));
 * assert.ok(d.vendorId === 0x0525 && d.productId === 0xa4a0 && d.usbVersion === 0x0320);
 * ```
 */
export interface DeviceDescriptor {
  /** `bcdUSB`, binary-coded decimal: 0x0320 is USB 3.2. See {@linkcode formatBcd}. */
  readonly usbVersion: number;
  /** `bDeviceClass` (0 means "defined per interface"). */
  readonly deviceClass: number;
  /** `bDeviceSubClass`. */
  readonly deviceSubclass: number;
  /** `bDeviceProtocol`. */
  readonly deviceProtocol: number;
  /** `bMaxPacketSize0`. For USB 3 devices it is an exponent: 9 means 512 bytes. */
  readonly maxPacketSize0: number;
  /** `idVendor`. */
  readonly vendorId: number;
  /** `idProduct`. */
  readonly productId: number;
  /** `bcdDevice`, binary-coded decimal. */
  readonly deviceVersion: number;
  /** `iManufacturer`: string descriptor index, 0 for none. */
  readonly manufacturerStringIndex: number;
  /** `iProduct`: string descriptor index, 0 for none. */
  readonly productStringIndex: number;
  /** `iSerialNumber`: string descriptor index, 0 for none. */
  readonly serialNumberStringIndex: number;
  /** `bNumConfigurations`. */
  readonly numConfigurations: number;
  /** The 18 bytes. */
  readonly raw: Uint8Array;
}

/**
 * A SuperSpeed endpoint companion descriptor (USB 3.2 §9.6.7,
 * `struct usb_ss_ep_comp_descriptor`). It follows its endpoint descriptor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 31, 0, 1, 1, 0, 0x80, 1,
 *   9, 4, 0, 0, 1, 0xff, 0, 0, 0,
 *   7, 5, 0x81, 2, 0x00, 0x04, 0,
 *   6, 0x30, 15, 4, 0, 0,
 * ]));
 * const comp = c.interfaces[0]!.alternates[0]!.endpoints[0]!.companion!;
 * assert.ok(comp.maxBurst === 15 && comp.maxStreams === 16);
 * ```
 */
export interface SsEndpointCompanion {
  /** `bMaxBurst`: packets per burst minus one (0..15). */
  readonly maxBurst: number;
  /** `bmAttributes`, undecoded. */
  readonly attributes: number;
  /** Bulk endpoints: streams supported (`1 << (bmAttributes & 0x1f)`, 0 for none). Otherwise 0. */
  readonly maxStreams: number;
  /** Isochronous endpoints: bursts per service interval (`USB_SS_MULT`, 1..3). Otherwise 1. */
  readonly mult: number;
  /** Isochronous endpoints: a SuperSpeedPlus isochronous companion follows (bit 7). */
  readonly sspIsochCompanion: boolean;
  /** `wBytesPerInterval`: periodic endpoints' bytes per service interval. */
  readonly bytesPerInterval: number;
  /** Where the descriptor starts in the bytes given to the parser. */
  readonly offset: number;
  /** The descriptor's bytes. */
  readonly raw: Uint8Array;
}

/**
 * The transfer type of an endpoint (bits 1:0 of `bmAttributes`,
 * `USB_ENDPOINT_XFERTYPE_MASK`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EndpointType } from "./descriptors.ts";
 * const periodic = (t: EndpointType) => t === "isochronous" || t === "interrupt";
 * assert.ok(periodic("interrupt") && !periodic("bulk"));
 * ```
 */
export type EndpointType = "control" | "isochronous" | "bulk" | "interrupt";

/**
 * An endpoint descriptor (USB 2.0 §9.6.6, `struct usb_endpoint_descriptor`).
 *
 * @example A high-bandwidth isochronous endpoint: 3 x 1024 bytes per microframe
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 25, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 1, 0xff, 0, 0, 0,
 *   7, 5, 0x83, 0x05, 0x00, 0x14, 1,
 * ]));
 * const ep = c.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.ok(ep.endpointNumber === 3 && ep.direction === "in" && ep.type === "isochronous");
 * assert.ok(ep.packetSize === 1024 && ep.transactionsPerMicroframe === 3);
 * assert.ok(ep.synchronization === "asynchronous");
 * ```
 */
export interface EndpointDescriptor {
  /** `bEndpointAddress`: number in bits 3:0, direction in bit 7. */
  readonly address: number;
  /** The endpoint number, 1..15. */
  readonly endpointNumber: number;
  /** `"in"` is device to host. */
  readonly direction: "in" | "out";
  /** The transfer type. */
  readonly type: EndpointType;
  /** `bmAttributes`, undecoded. */
  readonly attributes: number;
  /** Maximum packet size in bytes: bits 10:0 of `wMaxPacketSize` (`USB_ENDPOINT_MAXP_MASK`). */
  readonly packetSize: number;
  /**
   * High-speed isochronous and interrupt endpoints: packets per microframe,
   * 1 + bits 12:11 of `wMaxPacketSize` (`USB_EP_MAXP_MULT`). 1 for the others.
   */
  readonly transactionsPerMicroframe: number;
  /** `bInterval`, undecoded; {@linkcode intervalMicroseconds} decodes it for a speed. */
  readonly interval: number;
  /** Isochronous endpoints: the synchronization type (bits 3:2). */
  readonly synchronization:
    | "none"
    | "asynchronous"
    | "adaptive"
    | "synchronous"
    | undefined;
  /**
   * Isochronous endpoints: data, feedback or implicit feedback (bits 5:4).
   * Interrupt endpoints: periodic or notification (USB 3 bits 5:4).
   */
  readonly usage:
    | "data"
    | "feedback"
    | "implicit-feedback"
    | "periodic"
    | "notification"
    | "reserved"
    | undefined;
  /** Audio-class 9-byte endpoints: `bRefresh`. */
  readonly refresh: number | undefined;
  /** Audio-class 9-byte endpoints: `bSynchAddress`. */
  readonly synchAddress: number | undefined;
  /** The SuperSpeed companion that directly follows, if any. */
  readonly companion: SsEndpointCompanion | undefined;
  /** Other descriptors that follow this endpoint, in order. */
  readonly extra: readonly RawDescriptor[];
  /** Where the descriptor starts in the bytes given to the parser. */
  readonly offset: number;
  /** The descriptor's bytes. */
  readonly raw: Uint8Array;
}

/**
 * One alternate setting of an interface: an interface descriptor (USB 2.0
 * §9.6.5) and its endpoints. WebUSB calls this `USBAlternateInterface`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 18, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 0, 0xff, 0, 0, 0,
 * ]));
 * const alt = c.interfaces[0]!.alternates[0]!;
 * assert.ok(alt.interfaceClass === 0xff && alt.endpoints.length === 0);
 * ```
 */
export interface AlternateSetting {
  /** `bInterfaceNumber`. */
  readonly interfaceNumber: number;
  /** `bAlternateSetting`. */
  readonly alternateSetting: number;
  /** `bInterfaceClass`. */
  readonly interfaceClass: number;
  /** `bInterfaceSubClass`. */
  readonly interfaceSubclass: number;
  /** `bInterfaceProtocol`. */
  readonly interfaceProtocol: number;
  /** `iInterface`: string descriptor index, 0 for none. */
  readonly interfaceStringIndex: number;
  /** `bNumEndpoints` as declared (`endpoints.length` is what was found). */
  readonly numEndpoints: number;
  /** The endpoint descriptors, in order. */
  readonly endpoints: readonly EndpointDescriptor[];
  /** Descriptors between the interface descriptor and its first endpoint, in order. */
  readonly extra: readonly RawDescriptor[];
  /** Where the interface descriptor starts in the bytes given to the parser. */
  readonly offset: number;
  /** The interface descriptor's own bytes (9, or `bLength`). */
  readonly raw: Uint8Array;
}

/**
 * An interface: all alternate settings that share a `bInterfaceNumber`, in
 * the order they appear. WebUSB calls this `USBInterface`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 27, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 0, 0xff, 0, 0, 0,
 *   9, 4, 0, 1, 0, 0xff, 0, 0, 0,
 * ]));
 * assert.ok(c.interfaces.length === 1 && c.interfaces[0]!.alternates.length === 2);
 * ```
 */
export interface InterfaceDescriptor {
  /** `bInterfaceNumber`. */
  readonly interfaceNumber: number;
  /** Its alternate settings, in descriptor order. */
  readonly alternates: readonly AlternateSetting[];
}

/**
 * An interface association descriptor (IAD, `struct
 * usb_interface_assoc_descriptor`): groups interfaces into one function,
 * such as the control and data interfaces of a CDC ACM port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 35, 0, 2, 1, 0, 0x80, 50,
 *   8, 0x0b, 0, 2, 2, 2, 1, 0,
 *   9, 4, 0, 0, 0, 2, 2, 1, 0,
 *   9, 4, 1, 0, 0, 10, 0, 0, 0,
 * ]));
 * const iad = c.associations[0]!;
 * assert.ok(iad.firstInterface === 0 && iad.interfaceCount === 2 && iad.functionClass === 2);
 * ```
 */
export interface InterfaceAssociation {
  /** `bFirstInterface`. */
  readonly firstInterface: number;
  /** `bInterfaceCount`. */
  readonly interfaceCount: number;
  /** `bFunctionClass`. */
  readonly functionClass: number;
  /** `bFunctionSubClass`. */
  readonly functionSubclass: number;
  /** `bFunctionProtocol`. */
  readonly functionProtocol: number;
  /** `iFunction`: string descriptor index, 0 for none. */
  readonly functionStringIndex: number;
  /** Descriptors that follow the IAD before the next interface, in order. */
  readonly extra: readonly RawDescriptor[];
  /** Where the descriptor starts in the bytes given to the parser. */
  readonly offset: number;
  /** The descriptor's bytes. */
  readonly raw: Uint8Array;
}

/**
 * A configuration descriptor (USB 2.0 §9.6.3) with everything under it.
 * WebUSB calls this `USBConfiguration`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([9, 2, 9, 0, 0, 1, 0, 0xc0, 50]), { mode: "lenient" });
 * assert.ok(c.configurationValue === 1 && c.selfPowered && !c.remoteWakeup);
 * ```
 */
export interface ConfigurationDescriptor {
  /** `bDescriptorType`: 2, or 7 for an other-speed configuration. */
  readonly descriptorType: number;
  /** `bConfigurationValue`: what SET_CONFIGURATION takes. */
  readonly configurationValue: number;
  /** `iConfiguration`: string descriptor index, 0 for none. */
  readonly configurationStringIndex: number;
  /** `bmAttributes`, undecoded. */
  readonly attributes: number;
  /** Bit 6 of `bmAttributes` (`USB_CONFIG_ATT_SELFPOWER`). */
  readonly selfPowered: boolean;
  /** Bit 5 of `bmAttributes` (`USB_CONFIG_ATT_WAKEUP`). */
  readonly remoteWakeup: boolean;
  /** `bMaxPower` in its units (2 mA, or 8 mA at SuperSpeed); see {@linkcode maxPowerMilliamps}. */
  readonly maxPower: number;
  /** `wTotalLength` as declared (`raw.length` is what was parsed). */
  readonly totalLength: number;
  /** `bNumInterfaces` as declared (`interfaces.length` is what was found). */
  readonly numInterfaces: number;
  /** The interfaces, in order of first appearance. */
  readonly interfaces: readonly InterfaceDescriptor[];
  /** The interface associations, in order. */
  readonly associations: readonly InterfaceAssociation[];
  /** Descriptors between the configuration descriptor and the first interface or IAD. */
  readonly extra: readonly RawDescriptor[];
  /** Where the configuration starts in the bytes given to the parser. */
  readonly offset: number;
  /** The whole configuration: header and every descriptor parsed under it. */
  readonly raw: Uint8Array;
}

/**
 * A device descriptor and its configurations: what the sysfs `descriptors`
 * file and a usbfs device node hold.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeviceDescriptors } from "./descriptors.ts";
 * function count(d: DeviceDescriptors): number {
 *   return d.configurations.length;
 * }
 * assert.ok(typeof count === "function");
 * ```
 */
export interface DeviceDescriptors {
  /** The device descriptor. */
  readonly device: DeviceDescriptor;
  /** The configuration descriptors, in index order. */
  readonly configurations: readonly ConfigurationDescriptor[];
}

/**
 * How strictly to parse. See the module documentation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ParseOptions } from "./descriptors.ts";
 * const sysfs: ParseOptions = { mode: "lenient" };
 * assert.ok(sysfs.mode === "lenient");
 * ```
 */
export interface ParseOptions {
  /** `"strict"` (default) validates; `"lenient"` accepts what the kernel accepts. */
  mode?: "strict" | "lenient";
}

/**
 * Parses an 18-byte device descriptor.
 *
 * @param bytes the descriptor; longer input is allowed in lenient mode only
 * @param options the parse mode
 * @throws {UsbError} `"invalid-descriptor"` naming the offset and the problem
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDeviceDescriptor, formatBcd } from "./descriptors.ts";
 * const d = parseDeviceDescriptor(new Uint8Array([
 *   18, 1, 0x00, 0x02, 0xef, 0x02, 0x01, 64, 0x6b, 0x1d, 0x04, 0x01, 0x10, 0x06, 1, 2, 3, 1,
 * ]));
 * assert.ok(formatBcd(d.usbVersion) === "2.0" && d.deviceClass === 0xef);
 * ```
 */
export function parseDeviceDescriptor(
  bytes: Uint8Array,
  options: ParseOptions = {},
): DeviceDescriptor {
  const strict = (options.mode ?? "strict") === "strict";
  if (strict && bytes.length !== USB_DT_DEVICE_SIZE) {
    throw invalid(
      0,
      `a device descriptor is ${USB_DT_DEVICE_SIZE} bytes (USB_DT_DEVICE_SIZE), got ${bytes.length}`,
    );
  }
  return deviceAt(new Reader(bytes), 0, strict);
}

/**
 * Parses one configuration: the configuration descriptor followed by its
 * interface, endpoint and other descriptors, `wTotalLength` bytes in all.
 *
 * Strict mode wants `bytes.length === wTotalLength`. Lenient mode parses up
 * to `wTotalLength` or the end of the bytes, whichever comes first, and stops
 * early where the kernel would (a `bLength` below 2 or past the end).
 *
 * @param bytes the configuration blob (GET_DESCRIPTOR(CONFIGURATION) data)
 * @param options the parse mode
 * @throws {UsbError} `"invalid-descriptor"` naming the offset and the problem
 *
 * @example A SuperSpeed bulk IN endpoint with its companion, and a class-specific extra
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 35, 0, 1, 1, 0, 0x80, 1,
 *   9, 4, 0, 0, 1, 0xff, 0, 0, 0,
 *   7, 5, 0x81, 2, 0x00, 0x04, 0,
 *   6, 0x30, 0, 0, 0, 0,
 *   4, 0x25, 1, 0,
 * ]));
 * const ep = c.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.ok(ep.type === "bulk" && ep.packetSize === 1024 && ep.companion !== undefined);
 * assert.ok(ep.extra.length === 1 && ep.extra[0]!.descriptorType === 0x25);
 * ```
 */
export function parseConfiguration(
  bytes: Uint8Array,
  options: ParseOptions = {},
): ConfigurationDescriptor {
  const strict = (options.mode ?? "strict") === "strict";
  const r = new Reader(bytes);
  const { config, end } = configurationAt(r, 0, strict, false);
  if (strict && end !== bytes.length) {
    throw invalid(
      end,
      `${
        bytes.length - end
      } byte(s) after the configuration (wTotalLength ${config.totalLength})`,
    );
  }
  return config;
}

/**
 * Parses a device descriptor followed by all its configurations, as in the
 * sysfs `descriptors` file (drivers/usb/core/sysfs.c, `read_descriptors`) and
 * a usbfs device node.
 *
 * @param bytes the descriptors
 * @param options the parse mode; use `"lenient"` for sysfs data
 * @throws {UsbError} `"invalid-descriptor"` naming the offset and the problem
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDescriptors } from "./descriptors.ts";
 * const d = parseDescriptors(new Uint8Array([
 *   18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x25, 0x05, 0xa0, 0xa4, 0x00, 0x01, 0, 0, 0, 1,
 *   9, 2, 18, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 0, 0xff, 0, 0, 0,
 * ]));
 * assert.ok(d.device.productId === 0xa4a0 && d.configurations[0]!.offset === 18);
 * ```
 */
export function parseDescriptors(
  bytes: Uint8Array,
  options: ParseOptions = {},
): DeviceDescriptors {
  const strict = (options.mode ?? "strict") === "strict";
  const r = new Reader(bytes);
  const device = deviceAt(r, 0, strict);
  // The kernel always writes sizeof(struct usb_device_descriptor) bytes here,
  // whatever bLength says, so the configurations start at 18.
  let pos = USB_DT_DEVICE_SIZE;
  const configurations: ConfigurationDescriptor[] = [];
  for (let i = 0; i < device.numConfigurations; i++) {
    if (pos >= bytes.length) break; // fewer than declared: strict says so below
    const { config, end } = configurationAt(r, pos, strict, true);
    configurations.push(config);
    pos = end;
  }
  if (strict && configurations.length !== device.numConfigurations) {
    throw invalid(
      pos,
      `bNumConfigurations is ${device.numConfigurations} but ${configurations.length} configuration(s) follow`,
    );
  }
  if (strict && pos !== bytes.length) {
    throw invalid(
      pos,
      `${bytes.length - pos} byte(s) after the last configuration`,
    );
  }
  return { device, configurations };
}

/**
 * Formats a binary-coded decimal version the way the USB specification
 * writes it (JJ.M.N, with a zero N left out): 0x0320 is "3.2", 0x0201 is
 * "2.0.1", 0x0110 is "1.1".
 *
 * @param bcd a 16-bit BCD value such as `bcdUSB` or `bcdDevice`
 * @returns the dotted version
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBcd } from "./descriptors.ts";
 * assert.ok(formatBcd(0x0320) === "3.2");
 * assert.ok(formatBcd(0x0200) === "2.0");
 * assert.ok(formatBcd(0x0201) === "2.0.1");
 * ```
 */
export function formatBcd(bcd: number): string {
  const major = ((bcd >> 8) & 0xff).toString(16);
  const minor = ((bcd >> 4) & 0xf).toString(16);
  const sub = (bcd & 0xf).toString(16);
  return sub === "0" ? `${major}.${minor}` : `${major}.${minor}.${sub}`;
}

/**
 * The service interval of an endpoint in microseconds, decoded from
 * `bInterval` for a speed the way the kernel does (drivers/usb/common/common.c,
 * `usb_decode_interval`): exponential for isochronous endpoints and for
 * interrupt endpoints at high speed and above, in frames (1 ms) below high
 * speed and microframes (125 us) from high speed on. Bulk and control
 * endpoints give 0 except the high-speed NAK rate.
 *
 * @param endpoint the endpoint
 * @param speed the speed the device runs at
 * @returns microseconds, 0 when not periodic
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration, intervalMicroseconds } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 25, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 1, 3, 1, 1, 0,
 *   7, 5, 0x81, 3, 8, 0, 4,
 * ]));
 * const ep = c.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.ok(intervalMicroseconds(ep, "full") === 4000);
 * assert.ok(intervalMicroseconds(ep, "high") === 1000); // 2^(4-1) x 125 us
 * ```
 */
export function intervalMicroseconds(
  endpoint: Pick<EndpointDescriptor, "type" | "direction" | "interval">,
  speed: Speed,
): number {
  const fast = speed !== "low" && speed !== "full";
  // bInterval is 1..16 for exponential encodings; clamp so that garbage
  // (0, or 255) cannot make a shift of -1 or of more than 15.
  const exp = Math.min(Math.max(endpoint.interval, 1), 16) - 1;
  let units = 0;
  switch (endpoint.type) {
    case "control":
      if (speed === "high") units = endpoint.interval;
      break;
    case "isochronous":
      units = 2 ** exp;
      break;
    case "bulk":
      if (speed === "high" && endpoint.direction === "out") {
        units = endpoint.interval;
      }
      break;
    case "interrupt":
      units = fast ? 2 ** exp : endpoint.interval;
      break;
  }
  return units * (fast ? 125 : 1000);
}

/**
 * The power a configuration draws, in milliamps: `bMaxPower` counts 2 mA
 * units below SuperSpeed and 8 mA units at SuperSpeed and above (USB 3.2
 * §9.6.3; the kernel's `usb_get_max_power`).
 *
 * @param config the configuration
 * @param speed the speed the device runs at
 * @returns milliamps
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration, maxPowerMilliamps } from "./descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([9, 2, 9, 0, 0, 1, 0, 0x80, 50]), { mode: "lenient" });
 * assert.ok(maxPowerMilliamps(c, "high") === 100 && maxPowerMilliamps(c, "super") === 400);
 * ```
 */
export function maxPowerMilliamps(
  config: Pick<ConfigurationDescriptor, "maxPower">,
  speed: Speed,
): number {
  return config.maxPower *
    (speed === "super" || speed === "super-plus" ? 8 : 2);
}

// ---------------------------------------------------------------------------
// Internals

function invalid(offset: number, what: string, hint?: string): UsbError {
  return new UsbError(
    "invalid-descriptor",
    `invalid descriptor at byte ${offset}: ${what}`,
    hint === undefined ? {} : { hint },
  );
}

const LENIENT_HINT =
  'the Linux kernel accepts this; parse with { mode: "lenient" } to do the same';

/** Bounds-checked little-endian reads: an overrun is an invalid descriptor, never a TypeError. */
class Reader {
  constructor(readonly bytes: Uint8Array) {}
  get length(): number {
    return this.bytes.length;
  }
  u8(at: number): number {
    const v = this.bytes[at];
    if (v === undefined) throw invalid(at, "read past the end of the data");
    return v;
  }
  u16(at: number): number {
    return this.u8(at) | (this.u8(at + 1) << 8);
  }
  slice(start: number, end: number): Uint8Array {
    return this.bytes.slice(start, end);
  }
}

function deviceAt(r: Reader, at: number, strict: boolean): DeviceDescriptor {
  if (r.length - at < USB_DT_DEVICE_SIZE) {
    throw invalid(
      at,
      `truncated device descriptor: ${
        r.length - at
      } of ${USB_DT_DEVICE_SIZE} bytes`,
    );
  }
  const length = r.u8(at);
  const type = r.u8(at + 1);
  if (type !== DescriptorType.Device) {
    throw invalid(
      at,
      `expected a device descriptor (type 0x01), found type 0x${hex2(type)}`,
    );
  }
  if (strict && length !== USB_DT_DEVICE_SIZE) {
    throw invalid(
      at,
      `device descriptor bLength is ${length}, expected 18`,
      LENIENT_HINT,
    );
  }
  // Offsets are those of struct usb_device_descriptor (ch9.h).
  return {
    usbVersion: r.u16(at + 2),
    deviceClass: r.u8(at + 4),
    deviceSubclass: r.u8(at + 5),
    deviceProtocol: r.u8(at + 6),
    maxPacketSize0: r.u8(at + 7),
    vendorId: r.u16(at + 8),
    productId: r.u16(at + 10),
    deviceVersion: r.u16(at + 12),
    manufacturerStringIndex: r.u8(at + 14),
    productStringIndex: r.u8(at + 15),
    serialNumberStringIndex: r.u8(at + 16),
    numConfigurations: r.u8(at + 17),
    raw: r.slice(at, at + USB_DT_DEVICE_SIZE),
  };
}

// Mutable twins of the public types, filled while walking and then returned
// as the readonly ones.
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
interface EndpointDraft extends Mutable<EndpointDescriptor> {
  extra: RawDescriptor[];
}
interface AltDraft extends Mutable<AlternateSetting> {
  endpoints: EndpointDraft[];
  extra: RawDescriptor[];
}
interface InterfaceDraft {
  interfaceNumber: number;
  alternates: AltDraft[];
}
interface IadDraft extends Mutable<InterfaceAssociation> {
  extra: RawDescriptor[];
}

/**
 * Walks one configuration starting at `start`.
 *
 * @param inDescriptorsFile the configuration is followed by others (sysfs
 *   `descriptors`): in lenient mode a configuration descriptor then ends it,
 *   because the kernel trims each configuration to what it validated while the
 *   bytes keep the device's original, larger wTotalLength (config.c,
 *   usb_parse_configuration).
 */
function configurationAt(
  r: Reader,
  start: number,
  strict: boolean,
  inDescriptorsFile: boolean,
): { config: ConfigurationDescriptor; end: number } {
  const available = r.length - start;
  if (available < USB_DT_CONFIG_SIZE) {
    throw invalid(
      start,
      `truncated configuration descriptor: ${available} of ${USB_DT_CONFIG_SIZE} bytes`,
    );
  }
  const bLength = r.u8(start);
  const type = r.u8(start + 1);
  const acceptsOtherSpeed = !inDescriptorsFile;
  if (
    type !== DescriptorType.Configuration &&
    !(acceptsOtherSpeed && type === DescriptorType.OtherSpeedConfiguration)
  ) {
    throw invalid(
      start,
      `expected a configuration descriptor (type 0x02), found type 0x${
        hex2(type)
      }`,
    );
  }
  // The kernel rejects a configuration with bLength < 9 or past the data.
  if (
    bLength < USB_DT_CONFIG_SIZE || (strict && bLength !== USB_DT_CONFIG_SIZE)
  ) {
    throw invalid(
      start,
      `configuration descriptor bLength is ${bLength}, expected 9`,
    );
  }
  const totalLength = r.u16(start + 2);
  if (strict && totalLength < bLength) {
    throw invalid(
      start + 2,
      `wTotalLength ${totalLength} is shorter than the configuration descriptor (${bLength})`,
      LENIENT_HINT,
    );
  }
  if (bLength > available) {
    throw invalid(
      start,
      `configuration descriptor bLength ${bLength} runs past the data`,
    );
  }
  if (strict && totalLength > available) {
    throw invalid(
      start + 2,
      `wTotalLength is ${totalLength} but only ${available} byte(s) remain (truncated)`,
      LENIENT_HINT,
    );
  }
  // The kernel reads at least USB_DT_CONFIG_SIZE bytes whatever wTotalLength
  // says (config.c, usb_get_configuration), so lenient mode does too.
  const limit = start + Math.min(Math.max(totalLength, bLength), available);

  const numInterfaces = r.u8(start + 4);
  const attributes = r.u8(start + 7);
  const extra: RawDescriptor[] = [];
  const interfaces: InterfaceDraft[] = [];
  const associations: IadDraft[] = [];

  // Unknown descriptors attach to the last thing parsed, keeping their place.
  let ownerExtra: RawDescriptor[] = extra;
  let alt: AltDraft | undefined;
  let lastEndpoint: EndpointDraft | undefined; // set only right after an endpoint

  let pos = start + bLength;
  while (pos < limit) {
    const left = limit - pos;
    if (left < 2) {
      if (strict) {
        throw invalid(
          pos,
          `${left} stray byte at the end of the configuration`,
        );
      }
      break; // config.c: "descriptor has N excess bytes, ignoring"
    }
    const len = r.u8(pos);
    const dtype = r.u8(pos + 1);
    if (len < 2) {
      // A zero bLength would never advance; the kernel drops the remainder.
      if (strict) {
        throw invalid(
          pos,
          `bLength ${len} (every descriptor has at least bLength and bDescriptorType)`,
          LENIENT_HINT,
        );
      }
      break;
    }
    if (len > left) {
      if (strict) {
        throw invalid(
          pos,
          `descriptor type 0x${
            hex2(dtype)
          } with bLength ${len} runs past the end of the configuration (${left} byte(s) left)`,
          LENIENT_HINT,
        );
      }
      break;
    }
    if (
      !strict && inDescriptorsFile &&
      (dtype === DescriptorType.Configuration ||
        dtype === DescriptorType.Device)
    ) {
      break; // the next configuration in a trimmed sysfs descriptors file
    }

    const raw: RawDescriptor = {
      descriptorType: dtype,
      offset: pos,
      raw: r.slice(pos, pos + len),
    };
    const follows = lastEndpoint;
    lastEndpoint = undefined;

    switch (dtype) {
      case DescriptorType.Interface: {
        if (
          len < USB_DT_INTERFACE_SIZE ||
          (strict && len !== USB_DT_INTERFACE_SIZE)
        ) {
          if (strict) {
            throw wrongLength(
              pos,
              "interface",
              len,
              "9 (USB_DT_INTERFACE_SIZE)",
            );
          }
          ownerExtra.push(raw); // config.c skips it
          break;
        }
        const number = r.u8(pos + 2);
        const setting: AltDraft = {
          interfaceNumber: number,
          alternateSetting: r.u8(pos + 3),
          numEndpoints: r.u8(pos + 4),
          interfaceClass: r.u8(pos + 5),
          interfaceSubclass: r.u8(pos + 6),
          interfaceProtocol: r.u8(pos + 7),
          interfaceStringIndex: r.u8(pos + 8),
          endpoints: [],
          extra: [],
          offset: pos,
          raw: raw.raw,
        };
        let intf = interfaces.find((i) => i.interfaceNumber === number);
        if (intf === undefined) {
          intf = { interfaceNumber: number, alternates: [] };
          interfaces.push(intf);
        } else if (
          strict &&
          intf.alternates.some((a) =>
            a.alternateSetting === setting.alternateSetting
          )
        ) {
          throw invalid(
            pos,
            `interface ${number} alternate setting ${setting.alternateSetting} appears twice`,
          );
        }
        intf.alternates.push(setting);
        alt = setting;
        ownerExtra = setting.extra;
        break;
      }
      case DescriptorType.Endpoint: {
        if (
          len < USB_DT_ENDPOINT_SIZE ||
          (strict && len !== USB_DT_ENDPOINT_SIZE &&
            len !== USB_DT_ENDPOINT_AUDIO_SIZE)
        ) {
          if (strict) {
            throw wrongLength(
              pos,
              "endpoint",
              len,
              "7 (USB_DT_ENDPOINT_SIZE) or 9 (audio)",
            );
          }
          ownerExtra.push(raw);
          break;
        }
        if (alt === undefined) {
          if (strict) {
            throw invalid(
              pos,
              "endpoint descriptor before any interface descriptor",
            );
          }
          ownerExtra.push(raw);
          break;
        }
        const ep = endpointAt(r, pos, len, strict);
        if (strict && alt.endpoints.some((e) => e.address === ep.address)) {
          throw invalid(
            pos,
            `endpoint 0x${
              hex2(ep.address)
            } appears twice in interface ${alt.interfaceNumber} alternate setting ${alt.alternateSetting}`,
          );
        }
        alt.endpoints.push(ep);
        ownerExtra = ep.extra;
        lastEndpoint = ep;
        break;
      }
      case DescriptorType.InterfaceAssociation: {
        if (
          len < USB_DT_INTERFACE_ASSOCIATION_SIZE ||
          (strict && len !== USB_DT_INTERFACE_ASSOCIATION_SIZE)
        ) {
          if (strict) {
            throw wrongLength(
              pos,
              "interface association",
              len,
              "8 (USB_DT_INTERFACE_ASSOCIATION_SIZE)",
            );
          }
          ownerExtra.push(raw);
          break;
        }
        const iad: IadDraft = {
          firstInterface: r.u8(pos + 2),
          interfaceCount: r.u8(pos + 3),
          functionClass: r.u8(pos + 4),
          functionSubclass: r.u8(pos + 5),
          functionProtocol: r.u8(pos + 6),
          functionStringIndex: r.u8(pos + 7),
          extra: [],
          offset: pos,
          raw: raw.raw,
        };
        associations.push(iad);
        ownerExtra = iad.extra;
        break;
      }
      case DescriptorType.SuperSpeedEndpointCompanion: {
        // Only meaningful directly after its endpoint (USB 3.2 §9.6.7); the
        // kernel ignores one anywhere else, so it stays a raw descriptor.
        if (follows !== undefined && follows.companion === undefined) {
          if (
            len < USB_DT_SS_EP_COMP_SIZE ||
            (strict && len !== USB_DT_SS_EP_COMP_SIZE)
          ) {
            if (strict) {
              throw wrongLength(
                pos,
                "SuperSpeed endpoint companion",
                len,
                "6 (USB_DT_SS_EP_COMP_SIZE)",
              );
            }
            ownerExtra.push(raw);
            break;
          }
          follows.companion = companionAt(r, pos, follows.type, raw.raw);
          lastEndpoint = follows; // an SSP isoch companion may follow
          break;
        }
        ownerExtra.push(raw);
        break;
      }
      default:
        ownerExtra.push(raw);
    }
    pos += len;
  }

  if (strict) {
    if (interfaces.length !== numInterfaces) {
      throw invalid(
        start + 4,
        `bNumInterfaces is ${numInterfaces} but ${interfaces.length} interface(s) follow`,
        LENIENT_HINT,
      );
    }
    for (const intf of interfaces) {
      for (const a of intf.alternates) {
        if (a.endpoints.length !== a.numEndpoints) {
          throw invalid(
            a.offset + 4,
            `interface ${a.interfaceNumber} alternate setting ${a.alternateSetting} declares ${a.numEndpoints} endpoint(s) (bNumEndpoints) but ${a.endpoints.length} follow`,
            LENIENT_HINT,
          );
        }
      }
    }
  }

  const config: ConfigurationDescriptor = {
    descriptorType: type,
    configurationValue: r.u8(start + 5),
    configurationStringIndex: r.u8(start + 6),
    attributes,
    selfPowered: (attributes & 0x40) !== 0, // USB_CONFIG_ATT_SELFPOWER
    remoteWakeup: (attributes & 0x20) !== 0, // USB_CONFIG_ATT_WAKEUP
    maxPower: r.u8(start + 8),
    totalLength,
    numInterfaces,
    interfaces,
    associations,
    extra,
    offset: start,
    raw: r.slice(start, pos),
  };
  return { config, end: pos };
}

function wrongLength(
  at: number,
  what: string,
  len: number,
  expected: string,
): UsbError {
  return invalid(
    at,
    `${what} descriptor bLength is ${len}, expected ${expected}`,
    LENIENT_HINT,
  );
}

const ENDPOINT_TYPES: readonly EndpointType[] = [
  "control",
  "isochronous",
  "bulk",
  "interrupt",
];
const SYNC_TYPES = ["none", "asynchronous", "adaptive", "synchronous"] as const;
const ISO_USAGES = [
  "data",
  "feedback",
  "implicit-feedback",
  "reserved",
] as const;
const INT_USAGES = [
  "periodic",
  "notification",
  "reserved",
  "reserved",
] as const;

function endpointAt(
  r: Reader,
  at: number,
  len: number,
  strict: boolean,
): EndpointDraft {
  const address = r.u8(at + 2);
  const attributes = r.u8(at + 3);
  const wMaxPacketSize = r.u16(at + 4);
  const type = ENDPOINT_TYPES[attributes & 0x03] ?? "control"; // USB_ENDPOINT_XFERTYPE_MASK
  const periodic = type === "isochronous" || type === "interrupt";
  const mult = (wMaxPacketSize >> 11) & 0x3; // USB_EP_MAXP_MULT
  if (strict && (address & 0x0f) === 0) {
    throw invalid(
      at + 2,
      "endpoint address 0 is the default control pipe, not a descriptor",
    );
  }
  if (strict && periodic && mult === 3) {
    throw invalid(at + 4, "wMaxPacketSize bits 12:11 are 3 (reserved)");
  }
  return {
    address,
    endpointNumber: address & 0x0f, // USB_ENDPOINT_NUMBER_MASK
    direction: (address & 0x80) !== 0 ? "in" : "out", // USB_ENDPOINT_DIR_MASK
    type,
    attributes,
    packetSize: wMaxPacketSize & 0x07ff, // USB_ENDPOINT_MAXP_MASK
    transactionsPerMicroframe: periodic ? mult + 1 : 1,
    interval: r.u8(at + 6),
    synchronization: type === "isochronous"
      ? SYNC_TYPES[(attributes >> 2) & 0x3]
      : undefined,
    usage: type === "isochronous"
      ? ISO_USAGES[(attributes >> 4) & 0x3]
      : type === "interrupt"
      ? INT_USAGES[(attributes >> 4) & 0x3]
      : undefined,
    refresh: len >= USB_DT_ENDPOINT_AUDIO_SIZE ? r.u8(at + 7) : undefined,
    synchAddress: len >= USB_DT_ENDPOINT_AUDIO_SIZE ? r.u8(at + 8) : undefined,
    companion: undefined,
    extra: [],
    offset: at,
    raw: r.slice(at, at + len),
  };
}

function companionAt(
  r: Reader,
  at: number,
  type: EndpointType,
  raw: Uint8Array,
): SsEndpointCompanion {
  const attributes = r.u8(at + 3);
  const streamsExp = attributes & 0x1f; // usb_ss_max_streams
  return {
    maxBurst: r.u8(at + 2),
    attributes,
    maxStreams: type === "bulk" && streamsExp !== 0 ? 2 ** streamsExp : 0,
    mult: type === "isochronous" ? (attributes & 0x3) + 1 : 1, // USB_SS_MULT
    sspIsochCompanion: type === "isochronous" && (attributes & 0x80) !== 0, // USB_SS_SSP_ISOC_COMP
    bytesPerInterval: r.u16(at + 4),
    offset: at,
    raw,
  };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
