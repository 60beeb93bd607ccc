/**
 * A device written as typed data: what {@linkcode defineDevice} and
 * {@linkcode encodeDescriptors} take.
 *
 * The definition mirrors the descriptor tree (device, configurations,
 * interfaces, alternate settings, endpoints) with readable names, and puts
 * the behaviour (request and transfer handlers) next to what it belongs to.
 * Everything that has a sensible default may be left out:
 *
 * - strings are plain JavaScript strings (`product: "Pattern source"`); the
 *   model numbers them (1, 2, 3, ... in order of first use, equal strings
 *   sharing one index). A number instead of a string names an index of
 *   {@linkcode DeviceDefinition.strings}, for fixed indices;
 * - interface numbers, alternate setting numbers and configuration values
 *   default to their position (configurations from 1);
 * - an interface with one alternate setting may be written flat, without
 *   `alternates`; a device with one configuration may list `interfaces`
 *   without `configurations`;
 * - `maxPacketSize`, `interval`, `maxPacketSize0`, `usbVersion` default to
 *   what the speed allows; SuperSpeed endpoint companions and the BOS
 *   descriptor of a SuperSpeed device are filled in.
 *
 * Bytes (`extra` class-specific descriptors, data) may be a `Uint8Array` or
 * an array of numbers.
 *
 * @module
 */

import type {
  ControlHandler,
  EmulatedDeviceEvent,
  InHandler,
  IsoInHandler,
  IsoOutHandler,
  OutHandler,
} from "./handlers.ts";

/**
 * Bytes as a `Uint8Array` or as an array of numbers 0..255.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Bytes } from "./definition.ts";
 * const cdcHeader: Bytes = [5, 0x24, 0x00, 0x10, 0x01];
 * assert.equal(cdcHeader.length, 5);
 * ```
 */
export type Bytes = Uint8Array | readonly number[];

/**
 * A string descriptor: the text, or the index of an entry of
 * {@linkcode DeviceDefinition.strings} (0 for none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { StringRef } from "./definition.ts";
 * const byText: StringRef = "My device";
 * const byIndex: StringRef = 5;
 * assert.ok(typeof byText === "string" && typeof byIndex === "number");
 * ```
 */
export type StringRef = string | number;

/**
 * The speed the emulated device runs at. Descriptor rules (packet sizes,
 * intervals) depend on it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EmulatedSpeed } from "./definition.ts";
 * const s: EmulatedSpeed = "high";
 * assert.equal(s, "high");
 * ```
 */
export type EmulatedSpeed = "low" | "full" | "high" | "super";

/**
 * The SuperSpeed endpoint companion (USB 3.2 §9.6.7). Only at SuperSpeed;
 * left out, the kernel's defaults are used (no burst, no streams, mult 1,
 * `bytesPerInterval` = one packet for periodic endpoints).
 *
 * @example A bulk endpoint bursting 16 packets with 256 streams
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CompanionDefinition } from "./definition.ts";
 * const c: CompanionDefinition = { maxBurst: 15, maxStreams: 256 };
 * assert.equal(c.maxBurst, 15);
 * ```
 */
export interface CompanionDefinition {
  /** `bMaxBurst`: packets per burst minus one, 0..15. Default 0. */
  maxBurst?: number | undefined;
  /** Bulk: streams supported, 0 or a power of two up to 65536. Default 0. */
  maxStreams?: number | undefined;
  /** Isochronous: bursts per service interval, 1..3 (needs `maxBurst` > 0 for more than 1). Default 1. */
  mult?: number | undefined;
  /** Periodic endpoints: `wBytesPerInterval`. Default maxPacketSize × (maxBurst + 1) × mult. */
  bytesPerInterval?: number | undefined;
}

/**
 * One endpoint of an alternate setting, with its behaviour.
 *
 * Behaviour, by direction and type (at most one of each group):
 * - bulk/interrupt IN: `onIn` (a function per transfer) or `source` (an
 *   iterable of chunks the model slices into transfers); neither means the
 *   endpoint never has data (it NAKs until the URB is unlinked);
 * - bulk/interrupt OUT: `onOut` or `sink` (a `WritableStream`); neither
 *   means data is accepted and dropped;
 * - isochronous IN: `onIsoIn`; without it every packet is empty;
 * - isochronous OUT: `onIsoOut`; without it packets are accepted and dropped.
 *
 * @example An interrupt IN endpoint that reports every 10 ms
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EndpointDefinition } from "./definition.ts";
 * const ep: EndpointDefinition = {
 *   address: 0x81,
 *   type: "interrupt",
 *   maxPacketSize: 8,
 *   interval: 10,
 *   onIn: () => new Uint8Array(8),
 * };
 * assert.equal(ep.address, 0x81);
 * ```
 */
export interface EndpointDefinition {
  /** `bEndpointAddress`: number 1..15, plus 0x80 for IN. */
  address: number;
  /** The transfer type. */
  type: "bulk" | "interrupt" | "isochronous";
  /**
   * Bytes per packet (bits 10:0 of `wMaxPacketSize`). Default: the largest
   * the speed allows for bulk (64, 512, 1024) and isochronous (1023, 1024),
   * 8 (low speed) or 64 for interrupt.
   */
  maxPacketSize?: number | undefined;
  /** High-speed periodic endpoints: transactions per microframe, 1..3 (bits 12:11 of `wMaxPacketSize`). Default 1. */
  transactions?: number | undefined;
  /**
   * `bInterval`, as the speed encodes it: milliseconds (1..255) for
   * interrupt at low and full speed, an exponent (1..16) otherwise.
   * Default: 1 ms (10 at low speed). Bulk: 0, or the high-speed OUT NAK rate.
   */
  interval?: number | undefined;
  /** Isochronous: synchronization type (bits 3:2 of `bmAttributes`). Default `"none"`. */
  synchronization?:
    | "none"
    | "asynchronous"
    | "adaptive"
    | "synchronous"
    | undefined;
  /** Isochronous: `"data"`, `"feedback"`, `"implicit-feedback"`; interrupt: `"periodic"`, `"notification"` (bits 5:4). */
  usage?:
    | "data"
    | "feedback"
    | "implicit-feedback"
    | "periodic"
    | "notification"
    | undefined;
  /** Audio class 1.0 endpoints: `bRefresh`. Giving it or `synchAddress` makes the descriptor 9 bytes long. */
  refresh?: number | undefined;
  /** Audio class 1.0 endpoints: `bSynchAddress`. */
  synchAddress?: number | undefined;
  /** SuperSpeed only: the companion descriptor. */
  companion?: CompanionDefinition | undefined;
  /** Class-specific descriptors that follow the endpoint (and its companion), each a whole descriptor. */
  extra?: readonly Bytes[] | undefined;
  /** Class and vendor requests addressed to this endpoint (recipient endpoint). */
  control?: ControlHandler | undefined;
  /** Bulk/interrupt IN: called once per transfer. */
  onIn?: InHandler | undefined;
  /**
   * Bulk/interrupt IN: chunks to send. Each chunk ends with a short packet
   * (or a zero-length packet), so it is one transfer unless a transfer asks
   * for less; an empty chunk is a zero-length packet. A function is called
   * once per device to create the iterable.
   */
  source?:
    | AsyncIterable<Uint8Array>
    | Iterable<Uint8Array>
    | (() => AsyncIterable<Uint8Array> | Iterable<Uint8Array>)
    | undefined;
  /** Bulk/interrupt OUT: called once per transfer. */
  onOut?: OutHandler | undefined;
  /** Bulk/interrupt OUT: where the data goes; a write that waits holds the transfer (the endpoint NAKs). A function is called once per device. */
  sink?:
    | WritableStream<Uint8Array>
    | (() => WritableStream<Uint8Array>)
    | undefined;
  /** Isochronous IN: produces the packets of one URB. */
  onIsoIn?: IsoInHandler | undefined;
  /** Isochronous OUT: receives the packets of one URB. */
  onIsoOut?: IsoOutHandler | undefined;
}

/**
 * One alternate setting of an interface: the interface descriptor's fields,
 * its class-specific descriptors and its endpoints.
 *
 * @example A UAC-like streaming interface: no bandwidth in alternate 0
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AlternateDefinition } from "./definition.ts";
 * const alts: AlternateDefinition[] = [
 *   { class: 1, subclass: 2 },
 *   { class: 1, subclass: 2, endpoints: [{ address: 0x81, type: "isochronous", maxPacketSize: 192 }] },
 * ];
 * assert.equal(alts.length, 2);
 * ```
 */
export interface AlternateDefinition {
  /** `bAlternateSetting`. Default: the position in `alternates`. */
  alternate?: number | undefined;
  /** `bInterfaceClass`. Default 0xff (vendor specific). */
  class?: number | undefined;
  /** `bInterfaceSubClass`. Default 0. */
  subclass?: number | undefined;
  /** `bInterfaceProtocol`. Default 0. */
  protocol?: number | undefined;
  /** `iInterface`. */
  name?: StringRef | undefined;
  /** Class-specific descriptors between the interface descriptor and its first endpoint, each a whole descriptor. */
  extra?: readonly Bytes[] | undefined;
  /** The endpoints. */
  endpoints?: readonly EndpointDefinition[] | undefined;
}

/**
 * A descriptor the host fetches with GET_DESCRIPTOR addressed to an
 * interface, such as a HID report descriptor (type 0x22).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { InterfaceRequestDescriptor } from "./definition.ts";
 * const report: InterfaceRequestDescriptor = { type: 0x22, data: [0x05, 0x01, 0x09, 0x06] };
 * assert.equal(report.type, 0x22);
 * ```
 */
export interface InterfaceRequestDescriptor {
  /** The descriptor type (high byte of `wValue`). */
  type: number;
  /** The descriptor index (low byte of `wValue`). Default 0. */
  index?: number | undefined;
  /** The bytes returned (cut to `wLength`). */
  data: Bytes;
}

/**
 * An interface: one alternate setting written flat, or several in
 * `alternates`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { InterfaceDefinition } from "./definition.ts";
 * const flat: InterfaceDefinition = { class: 0xff, endpoints: [{ address: 0x81, type: "bulk" }] };
 * const withAlternates: InterfaceDefinition = { alternates: [{}, { endpoints: [{ address: 0x02, type: "bulk" }] }] };
 * assert.ok(flat.endpoints && withAlternates.alternates);
 * ```
 */
export interface InterfaceDefinition extends AlternateDefinition {
  /** `bInterfaceNumber`. Default: the position in `interfaces`. Numbers must be 0..n-1. */
  number?: number | undefined;
  /** The alternate settings; when given, the alternate-setting fields must not be given flat. */
  alternates?: readonly AlternateDefinition[] | undefined;
  /** Class and vendor requests addressed to this interface (recipient interface), and standard requests the model does not know (such as GET_DESCRIPTOR for a HID report). */
  control?: ControlHandler | undefined;
  /** Descriptors served for GET_DESCRIPTOR addressed to this interface. */
  requestDescriptors?: readonly InterfaceRequestDescriptor[] | undefined;
}

/**
 * An interface association (IAD): groups consecutive interfaces into one
 * function. It is placed before its first interface.
 *
 * @example The two interfaces of a CDC ACM port
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AssociationDefinition } from "./definition.ts";
 * const iad: AssociationDefinition = { firstInterface: 0, interfaceCount: 2, class: 2, subclass: 2, protocol: 1 };
 * assert.equal(iad.interfaceCount, 2);
 * ```
 */
export interface AssociationDefinition {
  /** `bFirstInterface`. */
  firstInterface: number;
  /** `bInterfaceCount`, at least 1. */
  interfaceCount: number;
  /** `bFunctionClass`. Default: the first interface's class. */
  class?: number | undefined;
  /** `bFunctionSubClass`. Default: the first interface's subclass. */
  subclass?: number | undefined;
  /** `bFunctionProtocol`. Default: the first interface's protocol. */
  protocol?: number | undefined;
  /** `iFunction`. */
  name?: StringRef | undefined;
}

/**
 * One configuration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ConfigurationDefinition } from "./definition.ts";
 * const c: ConfigurationDefinition = { maxPowerMilliamps: 500, interfaces: [{}] };
 * assert.equal(c.maxPowerMilliamps, 500);
 * ```
 */
export interface ConfigurationDefinition {
  /** `bConfigurationValue`, 1..255. Default: the position plus 1. */
  value?: number | undefined;
  /** `iConfiguration`. */
  name?: StringRef | undefined;
  /** `bmAttributes` bit 6. Default false. */
  selfPowered?: boolean | undefined;
  /** `bmAttributes` bit 5: the device supports remote wakeup. Default false. */
  remoteWakeup?: boolean | undefined;
  /** Power drawn, in mA (at most 500, or 900 at SuperSpeed); rounded up to the speed's unit (2 or 8 mA). Default 100. */
  maxPowerMilliamps?: number | undefined;
  /** Class-specific descriptors right after the configuration descriptor. */
  extra?: readonly Bytes[] | undefined;
  /** Interface associations. */
  associations?: readonly AssociationDefinition[] | undefined;
  /** The interfaces. */
  interfaces: readonly InterfaceDefinition[];
}

/**
 * The USB 2.0 Extension capability (LPM).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Usb2ExtensionDefinition } from "./definition.ts";
 * const ext: Usb2ExtensionDefinition = { lpm: true, besl: true, baselineBesl: 4 };
 * assert.ok(ext.lpm);
 * ```
 */
export interface Usb2ExtensionDefinition {
  /** Link Power Management supported. Default true. */
  lpm?: boolean | undefined;
  /** BESL supported. Default false. */
  besl?: boolean | undefined;
  /** Recommended baseline BESL, 0..15. */
  baselineBesl?: number | undefined;
  /** Recommended deep BESL, 0..15. */
  deepBesl?: number | undefined;
}

/**
 * The SuperSpeed USB Device capability.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SuperSpeedCapabilityDefinition } from "./definition.ts";
 * const ss: SuperSpeedCapabilityDefinition = { u1ExitLatency: 1, u2ExitLatency: 500 };
 * assert.equal(ss.u2ExitLatency, 500);
 * ```
 */
export interface SuperSpeedCapabilityDefinition {
  /** Latency Tolerance Messages supported. Default false. */
  ltm?: boolean | undefined;
  /** Speeds supported. Default all four. */
  speeds?: readonly EmulatedSpeed[] | undefined;
  /** The lowest speed with all functionality. Default `"full"`. */
  functionality?: EmulatedSpeed | undefined;
  /** U1 device exit latency in µs, 0..10. Default 1. */
  u1ExitLatency?: number | undefined;
  /** U2 device exit latency in µs, 0..2047. Default 500. */
  u2ExitLatency?: number | undefined;
}

/**
 * A platform capability (WebUSB, Microsoft OS 2.0): a UUID and its data.
 *
 * @example The WebUSB platform capability
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PlatformCapabilityDefinition } from "./definition.ts";
 * const webusb: PlatformCapabilityDefinition = {
 *   uuid: "3408b638-09a9-47a0-8bfd-a0768815b665",
 *   data: [0x00, 0x01, 0x01, 0x01],
 * };
 * assert.equal(webusb.uuid.length, 36);
 * ```
 */
export interface PlatformCapabilityDefinition {
  /** The capability's UUID, as text (encoded in the GUID byte order the platform descriptors use). */
  uuid: string;
  /** `CapabilityData`. */
  data?: Bytes | undefined;
}

/**
 * The BOS descriptor (USB 3.2 §9.6.2) and its device capabilities. The
 * kernel reads it only when `bcdUSB` is 0x0201 or more (hub.c), so a BOS
 * raises the default `usbVersion` to 0x0201.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BosDefinition } from "./definition.ts";
 * const bos: BosDefinition = { usb2Extension: { lpm: true }, capabilities: [{ type: 0x0b, data: [0] }] };
 * assert.ok(bos.usb2Extension);
 * ```
 */
export interface BosDefinition {
  /** The USB 2.0 Extension capability; `true` for the defaults. */
  usb2Extension?: Usb2ExtensionDefinition | boolean | undefined;
  /** The SuperSpeed USB Device capability; `true` for the defaults. Always present at SuperSpeed. */
  superSpeed?: SuperSpeedCapabilityDefinition | boolean | undefined;
  /** Platform capabilities, in order. */
  platform?: readonly PlatformCapabilityDefinition[] | undefined;
  /** Other capabilities as raw bytes: `bDevCapabilityType` and what follows it. */
  capabilities?: readonly { type: number; data: Bytes }[] | undefined;
}

/**
 * A whole device.
 *
 * @example A vendor device in a few lines
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeviceDefinition } from "./definition.ts";
 * const def: DeviceDefinition = {
 *   speed: "high",
 *   vendorId: 0x1209,
 *   productId: 0x0001,
 *   product: "Counter",
 *   interfaces: [{
 *     endpoints: [{ address: 0x81, type: "bulk", onIn: (n) => new Uint8Array(n) }],
 *   }],
 * };
 * assert.equal(def.product, "Counter");
 * ```
 */
export interface DeviceDefinition {
  /** The speed the device runs at. */
  speed: EmulatedSpeed;
  /** `idVendor`. */
  vendorId: number;
  /** `idProduct`. */
  productId: number;
  /** `bcdDevice`. Default 0x0100. */
  deviceVersion?: number | undefined;
  /** `bcdUSB`. Default 0x0320 at SuperSpeed, 0x0201 with a BOS, else 0x0200. */
  usbVersion?: number | undefined;
  /** `bDeviceClass`. Default 0 (per interface), or 0xef with interface associations. */
  class?: number | undefined;
  /** `bDeviceSubClass`. Default 0, or 2 with interface associations. */
  subclass?: number | undefined;
  /** `bDeviceProtocol`. Default 0, or 1 with interface associations. */
  protocol?: number | undefined;
  /** Endpoint 0's packet size in bytes. Default 8 (low), 64 (full, high), 512 (super). */
  maxPacketSize0?: number | undefined;
  /** `iManufacturer`. */
  manufacturer?: StringRef | undefined;
  /** `iProduct`. */
  product?: StringRef | undefined;
  /** `iSerialNumber`. */
  serialNumber?: StringRef | undefined;
  /** Strings at fixed indices (1..255), referred to by number. */
  strings?: Readonly<Record<number, string>> | undefined;
  /** The language of the strings (LANGID). Default 0x0409, English (United States). */
  languageId?: number | undefined;
  /** The configurations (1..8). */
  configurations?: readonly ConfigurationDefinition[] | undefined;
  /** Shorthand for one configuration with these interfaces and defaults. */
  interfaces?: readonly InterfaceDefinition[] | undefined;
  /** The BOS descriptor. */
  bos?: BosDefinition | undefined;
  /** Class and vendor requests addressed to the device, and those no interface or endpoint handler took. */
  control?: ControlHandler | undefined;
  /** A handler threw or returned something impossible. Default: `console.error`. */
  onError?: ((error: unknown, where: string) => void) | undefined;
  /** State changes: configuration, alternate setting, halt, reset, close. */
  onEvent?: ((event: EmulatedDeviceEvent) => void) | undefined;
}
