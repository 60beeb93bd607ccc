/**
 * Encoding a device model to the bytes a host reads: the device descriptor,
 * each configuration with everything under it, string descriptors, the BOS
 * descriptor, and for a high-speed device the device qualifier and the
 * other-speed (full-speed) configurations. Layouts from
 * include/uapi/linux/usb/ch9.h.
 *
 * @module
 */

import { DescriptorType } from "../descriptors.ts";
import { UsbError } from "../errors.ts";
import type { DeviceDefinition } from "./definition.ts";
import {
  type ConfigurationModel,
  type DeviceModel,
  type EndpointModel,
  resolveDefinition,
} from "./model.ts";

/**
 * Every descriptor of a device, encoded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDescriptors } from "./encode.ts";
 * const d = encodeDescriptors({ speed: "full", vendorId: 1, productId: 2, interfaces: [{}] });
 * assert.equal(d.device.length, 18);
 * assert.equal(d.configurations.length, 1);
 * assert.equal(d.deviceQualifier, undefined); // a full-speed device has none
 * ```
 */
export interface EncodedDescriptors {
  /** The 18-byte device descriptor. */
  readonly device: Uint8Array;
  /** Each configuration (`wTotalLength` bytes), in index order. */
  readonly configurations: readonly Uint8Array[];
  /** String descriptors by index; 0 is the language table. Empty when the device has no strings. */
  readonly strings: ReadonlyMap<number, Uint8Array>;
  /** Which text got which index. */
  readonly stringTable: ReadonlyMap<number, string>;
  /** The language ID of the strings. */
  readonly languageId: number;
  /** The BOS descriptor set, if any. */
  readonly bos: Uint8Array | undefined;
  /** High speed: the device qualifier (the device as it would be at full speed). */
  readonly deviceQualifier: Uint8Array | undefined;
  /** High speed: each configuration as it would be at full speed (type 7). */
  readonly otherSpeedConfigurations: readonly Uint8Array[] | undefined;
  /** The device descriptor followed by every configuration: what sysfs `descriptors` holds. */
  readonly descriptorsFile: Uint8Array;
}

/**
 * Validates a definition and encodes all its descriptors.
 *
 * @param definition the device
 * @returns the bytes
 * @throws {UsbError} `invalid-argument` for an impossible definition, naming the field
 *
 * @example Round trip through usbkit's own parser
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDescriptors } from "./encode.ts";
 * import { parseDescriptors } from "../descriptors.ts";
 * const d = encodeDescriptors({
 *   speed: "high", vendorId: 0x1209, productId: 0x0001, product: "Demo",
 *   interfaces: [{ endpoints: [{ address: 0x81, type: "bulk" }, { address: 0x01, type: "bulk" }] }],
 * });
 * const parsed = parseDescriptors(d.descriptorsFile);
 * assert.equal(parsed.device.vendorId, 0x1209);
 * assert.equal(parsed.configurations[0]!.interfaces[0]!.alternates[0]!.endpoints[1]!.packetSize, 512);
 * assert.equal(d.stringTable.get(parsed.device.productStringIndex), "Demo");
 * ```
 */
export function encodeDescriptors(
  definition: DeviceDefinition,
): EncodedDescriptors {
  return encodeModel(resolveDefinition(definition));
}

/**
 * Encodes an already resolved model (what {@linkcode encodeDescriptors}
 * does after validation).
 *
 * @param model the resolved device
 * @returns the bytes
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeModel } from "./encode.ts";
 * import { resolveDefinition } from "./model.ts";
 * const d = encodeModel(resolveDefinition({ speed: "high", vendorId: 1, productId: 2, interfaces: [{}] }));
 * assert.equal(d.deviceQualifier!.length, 10);
 * assert.equal(d.otherSpeedConfigurations![0]![1], 7);
 * ```
 */
export function encodeModel(model: DeviceModel): EncodedDescriptors {
  const device = encodeDeviceDescriptor(model);
  const configurations = model.configurations.map((c) =>
    encodeConfiguration(c, false)
  );
  const strings = new Map<number, Uint8Array>();
  const table = model.strings.entries;
  if (table.size > 0) {
    strings.set(0, model.strings.descriptor(0)!);
    for (const index of table.keys()) {
      strings.set(index, model.strings.descriptor(index)!);
    }
  }
  const high = model.speed === "high";
  const total = device.length +
    configurations.reduce((n, c) => n + c.length, 0);
  const descriptorsFile = new Uint8Array(total);
  descriptorsFile.set(device);
  let at = device.length;
  for (const c of configurations) {
    descriptorsFile.set(c, at);
    at += c.length;
  }
  return {
    device,
    configurations,
    strings,
    stringTable: table,
    languageId: model.strings.languageId,
    bos: model.bos,
    deviceQualifier: high ? encodeDeviceQualifier(model) : undefined,
    otherSpeedConfigurations: high
      ? model.configurations.map((c) => encodeConfiguration(c, true))
      : undefined,
    descriptorsFile,
  };
}

/**
 * The 18-byte device descriptor (`struct usb_device_descriptor`). At
 * SuperSpeed `bMaxPacketSize0` is the exponent 9 (512 bytes).
 *
 * @param model the resolved device
 * @returns the descriptor
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDeviceDescriptor } from "./encode.ts";
 * import { resolveDefinition } from "./model.ts";
 * const d = encodeDeviceDescriptor(resolveDefinition({ speed: "super", vendorId: 0x1209, productId: 2, interfaces: [{}] }));
 * assert.deepEqual([...d], [18, 1, 0x20, 0x03, 0, 0, 0, 9, 0x09, 0x12, 2, 0, 0x00, 0x01, 0, 0, 0, 1]);
 * ```
 */
export function encodeDeviceDescriptor(model: DeviceModel): Uint8Array {
  const maxp0 = model.speed === "super"
    ? Math.log2(model.maxPacketSize0)
    : model.maxPacketSize0;
  return new Uint8Array([
    18,
    DescriptorType.Device,
    ...le16(model.usbVersion),
    model.class,
    model.subclass,
    model.protocol,
    maxp0,
    ...le16(model.vendorId),
    ...le16(model.productId),
    ...le16(model.deviceVersion),
    model.manufacturerIndex,
    model.productIndex,
    model.serialNumberIndex,
    model.configurations.length,
  ]);
}

/**
 * The device qualifier of a high-speed device (USB 2.0 §9.6.2): the fields
 * that would differ at full speed.
 *
 * @param model the resolved device
 * @returns the 10-byte descriptor
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDeviceQualifier } from "./encode.ts";
 * import { resolveDefinition } from "./model.ts";
 * const q = encodeDeviceQualifier(resolveDefinition({ speed: "high", vendorId: 1, productId: 2, interfaces: [{}] }));
 * assert.deepEqual([...q], [10, 6, 0x00, 0x02, 0, 0, 0, 64, 1, 0]);
 * ```
 */
export function encodeDeviceQualifier(model: DeviceModel): Uint8Array {
  return new Uint8Array([
    10,
    DescriptorType.DeviceQualifier,
    ...le16(model.usbVersion),
    model.class,
    model.subclass,
    model.protocol,
    64, // endpoint 0 at full speed: 64 is allowed there too
    model.configurations.length,
    0,
  ]);
}

/**
 * One configuration with everything under it, in the order hosts expect:
 * the configuration descriptor, its class-specific descriptors, then per
 * interface (by number) an IAD when the interface starts a function, then
 * each alternate setting (by number): the interface descriptor, its
 * class-specific descriptors, and per endpoint the endpoint descriptor, its
 * SuperSpeed companion and its class-specific descriptors.
 *
 * `otherSpeed` writes a high-speed device's configuration as it would be at
 * full speed (type 7, OTHER_SPEED_CONFIGURATION): bulk packets of 64,
 * interrupt packets of at most 64, isochronous of at most 1023, and the
 * intervals converted from microframe exponents to frames.
 *
 * @param config a configuration of a resolved device
 * @param otherSpeed write the other-speed configuration
 * @returns `wTotalLength` bytes
 * @throws {UsbError} `invalid-argument` when the configuration exceeds 65535 bytes
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeConfiguration } from "./encode.ts";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({ speed: "high", vendorId: 1, productId: 2, interfaces: [{ endpoints: [{ address: 0x81, type: "bulk" }] }] });
 * const c = encodeConfiguration(m.configurations[0]!, false);
 * assert.deepEqual([...c], [
 *   9, 2, 25, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 1, 0xff, 0, 0, 0,
 *   7, 5, 0x81, 2, 0x00, 0x02, 0,
 * ]);
 * ```
 */
export function encodeConfiguration(
  config: ConfigurationModel,
  otherSpeed: boolean,
): Uint8Array {
  const parts: Uint8Array[] = [];
  parts.push(...config.extra);
  for (const intf of config.interfaces) {
    const iad = config.associations.find((a) =>
      a.firstInterface === intf.number
    );
    if (iad !== undefined) {
      parts.push(
        new Uint8Array([
          8,
          DescriptorType.InterfaceAssociation,
          iad.firstInterface,
          iad.interfaceCount,
          iad.class,
          iad.subclass,
          iad.protocol,
          iad.nameIndex,
        ]),
      );
    }
    for (const alt of intf.alternates) {
      parts.push(
        new Uint8Array([
          9,
          DescriptorType.Interface,
          alt.interfaceNumber,
          alt.alternate,
          alt.endpoints.length,
          alt.class,
          alt.subclass,
          alt.protocol,
          alt.nameIndex,
        ]),
      );
      parts.push(...alt.extra);
      for (const ep of alt.endpoints) {
        parts.push(encodeEndpoint(otherSpeed ? toFullSpeed(ep) : ep));
        if (ep.companion !== undefined) {
          parts.push(
            new Uint8Array([
              6,
              DescriptorType.SuperSpeedEndpointCompanion,
              ep.companion.maxBurst,
              ep.companion.attributes,
              ...le16(ep.companion.bytesPerInterval),
            ]),
          );
        }
        parts.push(...ep.extra);
      }
    }
  }
  const total = 9 + parts.reduce((n, p) => n + p.length, 0);
  if (total > 0xffff) {
    throw new UsbError(
      "invalid-argument",
      `${
        config.path || "the configuration"
      } encodes to ${total} bytes; wTotalLength is 16 bits (at most 65535)`,
    );
  }
  const attributes = 0x80 | (config.selfPowered ? 0x40 : 0) |
    (config.remoteWakeup ? 0x20 : 0);
  const out = new Uint8Array(total);
  out.set([
    9,
    otherSpeed
      ? DescriptorType.OtherSpeedConfiguration
      : DescriptorType.Configuration,
    ...le16(total),
    config.interfaces.length,
    config.value,
    config.nameIndex,
    attributes,
    config.maxPower,
  ]);
  let at = 9;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function encodeEndpoint(ep: EndpointModel): Uint8Array {
  const wMaxPacketSize = ep.maxPacketSize | ((ep.transactions - 1) << 11);
  const base = [
    ep.refresh === undefined ? 7 : 9,
    DescriptorType.Endpoint,
    ep.address,
    ep.attributes,
    ...le16(wMaxPacketSize),
    ep.interval,
  ];
  if (ep.refresh !== undefined) base.push(ep.refresh, ep.synchAddress ?? 0);
  return new Uint8Array(base);
}

/** A high-speed endpoint as it would be at full speed. */
function toFullSpeed(ep: EndpointModel): EndpointModel {
  switch (ep.type) {
    case "bulk":
      return { ...ep, maxPacketSize: 64, interval: 0 };
    case "interrupt": {
      // 2^(b-1) microframes -> milliseconds, at least 1, at most 255.
      const ms = Math.floor(2 ** (ep.interval - 1) / 8);
      return {
        ...ep,
        maxPacketSize: Math.min(ep.maxPacketSize, 64),
        transactions: 1,
        interval: Math.min(Math.max(ms, 1), 255),
      };
    }
    case "isochronous":
      // 2^(b-1) microframes -> 2^(b-4) frames, at least 1 frame.
      return {
        ...ep,
        maxPacketSize: Math.min(ep.maxPacketSize * ep.transactions, 1023),
        transactions: 1,
        interval: Math.max(ep.interval - 3, 1),
      };
  }
}

function le16(n: number): [number, number] {
  return [n & 0xff, (n >> 8) & 0xff];
}
