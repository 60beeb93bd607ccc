/**
 * The types of parsed USB descriptors, and the descriptor type codes.
 *
 * Layouts and constants are from include/uapi/linux/usb/ch9.h. The parser
 * lives in the sibling files; `src/descriptors.ts` is the public entry.
 *
 * @module
 */

/**
 * The speed a device runs at, as the kernel reports it.
 *
 * Speed changes how some descriptor fields read (`bInterval`, `bMaxPower`),
 * so it is declared here; `enumeration.ts` re-exports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Speed } from "../descriptors.ts";
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
 * import { DescriptorType, type RawDescriptor } from "../descriptors.ts";
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

/**
 * A descriptor kept as bytes: class-specific (HID, CDC functional, UAC) and
 * unknown descriptors. They stay in place, in the `extra` list of the
 * configuration, association, interface or endpoint they follow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "../descriptors.ts";
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
  /**
   * The fields, when a class decoder in the registry knows this descriptor
   * (see `registerClassDecoder`); undefined otherwise.
   */
  readonly decoded: DecodedDescriptor | undefined;
}

/**
 * The device descriptor (USB 2.0 §9.6.1, `struct usb_device_descriptor`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDeviceDescriptor } from "../descriptors.ts";
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
 * import { parseConfiguration } from "../descriptors.ts";
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
  /** `wBytesPerInterval`: periodic endpoints' bytes per service interval, as the device gave it. */
  readonly bytesPerInterval: number;
  /** Values the kernel replaces (config.c, usb_parse_ss_endpoint_companion); empty when none. */
  readonly corrections: readonly Correction[];
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
 * import type { EndpointType } from "../descriptors.ts";
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
 * import { parseConfiguration } from "../descriptors.ts";
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
  /** `bInterval` as the device gave it; {@linkcode intervalMicroseconds} decodes it for a speed. */
  readonly interval: number;
  /**
   * `bInterval` as the kernel uses it: out-of-range values are replaced
   * (config.c, usb_parse_endpoint). Equal to `interval` when the parse was
   * not given a speed or the value is in range.
   */
  readonly intervalInForce: number;
  /** Every value the kernel replaces in this endpoint, raw and in force; empty when none. */
  readonly corrections: readonly Correction[];
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
 * import { parseConfiguration } from "../descriptors.ts";
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
 * import { parseConfiguration } from "../descriptors.ts";
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
 * import { parseConfiguration } from "../descriptors.ts";
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
 * import { parseConfiguration } from "../descriptors.ts";
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
  /**
   * Descriptors the kernel skips (a duplicate alternate setting and what
   * follows it, a too-short interface or endpoint, an endpoint beyond
   * `bNumEndpoints`...), in order. Lenient mode only; each has a warning.
   */
  readonly skipped: readonly RawDescriptor[];
  /** What the kernel would log about this configuration (config.c), in order. */
  readonly warnings: readonly DescriptorWarning[];
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
 * import type { DeviceDescriptors } from "../descriptors.ts";
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
  /** Every configuration's warnings, in order. */
  readonly warnings: readonly DescriptorWarning[];
}

/**
 * How strictly to parse. See the module documentation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ParseOptions } from "../descriptors.ts";
 * const sysfs: ParseOptions = { mode: "lenient" };
 * assert.ok(sysfs.mode === "lenient");
 * ```
 */
export interface ParseOptions {
  /** `"strict"` (default) validates; `"lenient"` accepts what the kernel accepts. */
  mode?: "strict" | "lenient";
  /**
   * The speed the device runs at. With it, the parse applies the kernel's
   * speed-dependent corrections (`bInterval`, maximum packet sizes,
   * SuperSpeed companions) and reports them in `corrections`.
   */
  speed?: Speed;
  /** Class decoders to use instead of the default registry. */
  decoders?: DecoderLookup;
}

/**
 * Something the kernel would log while parsing (drivers/usb/core/config.c):
 * a descriptor it skips or a value it replaces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "../descriptors.ts";
 * // Interface 0 alternate setting 0 twice: the kernel keeps the first.
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 27, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 0, 0xff, 0, 0, 0,
 *   9, 4, 0, 0, 0, 0xfe, 0, 0, 0,
 * ]), { mode: "lenient" });
 * assert.equal(c.interfaces[0]!.alternates.length, 1);
 * assert.match(c.warnings[0]!.message, /duplicate/);
 * ```
 */
export interface DescriptorWarning {
  /** Where the descriptor concerned starts in the bytes given to the parser. */
  readonly offset: number;
  /** What the kernel does about it, as a sentence. */
  readonly message: string;
}

/**
 * A field whose value the kernel replaces: the raw value from the device
 * and the one in force.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "../descriptors.ts";
 * // A high-speed interrupt endpoint with bInterval 0: the kernel uses 7 (8 ms).
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 25, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 1, 3, 0, 0, 0,
 *   7, 5, 0x81, 3, 8, 0, 0,
 * ]), { mode: "lenient", speed: "high" });
 * const ep = c.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.deepEqual(ep.corrections, [{ field: "bInterval", raw: 0, inForce: 7 }]);
 * assert.equal(ep.intervalInForce, 7);
 * ```
 */
export interface Correction {
  /** The field's name in the USB specification ("bInterval"). */
  readonly field: string;
  /** The device's value. */
  readonly raw: number;
  /** The kernel's value. */
  readonly inForce: number;
}

/**
 * One decoded field of a class-specific descriptor, named as in its class
 * specification (and as `lsusb -v` names it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DecodedField } from "../descriptors.ts";
 * const f: DecodedField = { name: "bcdHID", value: "1.11", note: undefined, stringIndex: false };
 * assert.equal(f.name, "bcdHID");
 * ```
 */
export interface DecodedField {
  /** The field name ("bcdCDC", "wTotalLength", "iTerminal"). */
  readonly name: string;
  /** The value: a number, or text where the specification writes one (a BCD version, a bitmap). */
  readonly value: number | string;
  /** A decoded meaning ("Speaker", "self powered"), when there is one. */
  readonly note: string | undefined;
  /** The value is a string descriptor index (`iTerminal`, `iMACAddress`). */
  readonly stringIndex: boolean;
}

/**
 * A class-specific (or other) descriptor decoded into fields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeClassDescriptor } from "../descriptors.ts";
 * const d = decodeClassDescriptor(
 *   new Uint8Array([5, 0x24, 0x00, 0x10, 0x01]),
 *   { interfaceClass: 2, interfaceSubclass: 2, interfaceProtocol: 1, placement: "interface" },
 * )!;
 * assert.equal(d.name, "CDC Header");
 * assert.equal(d.fields.find((f) => f.name === "bcdCDC")!.value, "1.10");
 * ```
 */
export interface DecodedDescriptor {
  /** What it is, as lsusb titles it ("HID Device Descriptor", "CDC Union"). */
  readonly name: string;
  /** The class decoder that produced it ("hid", "cdc", "uac"...). */
  readonly decoder: string;
  /** The fields in descriptor order, header included. */
  readonly fields: readonly DecodedField[];
}

/**
 * Where a class-specific descriptor sits, which is what a class decoder
 * needs to know to read it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClassContext } from "../descriptors.ts";
 * const c: ClassContext = { interfaceClass: 1, interfaceSubclass: 1, interfaceProtocol: 0x20, placement: "interface" };
 * assert.equal(c.placement, "interface");
 * ```
 */
export interface ClassContext {
  /** `bInterfaceClass` of the interface it belongs to (or the IAD's `bFunctionClass`; the device class before any interface). */
  readonly interfaceClass: number;
  /** `bInterfaceSubClass`. */
  readonly interfaceSubclass: number;
  /** `bInterfaceProtocol`. */
  readonly interfaceProtocol: number;
  /** What the descriptor follows. */
  readonly placement:
    | "device"
    | "configuration"
    | "association"
    | "interface"
    | "endpoint";
}

/**
 * A decoder for the class-specific descriptors of one class. Register one
 * with `registerClassDecoder` to have a vendor's descriptors decoded
 * everywhere (the parse, `usb describe` and its JSON) without touching the
 * parser.
 *
 * `decode` is given untrusted bytes: read them with bounds checks and
 * return undefined for what it does not know. A decoder that throws is
 * reported as a warning, never as a failed parse.
 *
 * @example A vendor decoder
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ClassDecoder, ClassDecoderRegistry } from "../descriptors.ts";
 * const acme: ClassDecoder = {
 *   name: "acme",
 *   decode(raw, ctx) {
 *     if (ctx.interfaceClass !== 0xff || raw[1] !== 0x41 || raw.length < 3) return undefined;
 *     return {
 *       name: "ACME Widget", decoder: "acme",
 *       fields: [{ name: "bWidgets", value: raw[2]!, note: undefined, stringIndex: false }],
 *     };
 *   },
 * };
 * const registry = new ClassDecoderRegistry([acme]);
 * const d = registry.decode(new Uint8Array([3, 0x41, 7]), {
 *   interfaceClass: 0xff, interfaceSubclass: 0, interfaceProtocol: 0, placement: "interface",
 * });
 * assert.equal(d?.fields[0]?.value, 7);
 * ```
 */
export interface ClassDecoder {
  /** A short name, recorded in each decoded descriptor. */
  readonly name: string;
  /** The fields of `raw` (the whole descriptor), or undefined if it is not this decoder's. */
  decode(raw: Uint8Array, context: ClassContext): DecodedDescriptor | undefined;
}

/**
 * The registry's shape, as {@linkcode ParseOptions} takes it (the class is
 * `ClassDecoderRegistry` in class/registry.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultDecoders, type DecoderLookup } from "../descriptors.ts";
 * const r: DecoderLookup = defaultDecoders;
 * assert.ok(typeof r.decode === "function");
 * ```
 */
export interface DecoderLookup {
  /** The first registered decoder's answer, newest first. */
  decode(raw: Uint8Array, context: ClassContext): DecodedDescriptor | undefined;
}
