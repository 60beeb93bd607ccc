/**
 * Parsing USB descriptors: the device descriptor, configuration descriptors
 * and everything they contain, the BOS and its capabilities, the device
 * qualifier, hub descriptors, and class-specific descriptors through a
 * registry of class decoders.
 *
 * Descriptors come from devices, so they are untrusted input. Every parser
 * here is total: for any bytes at all it returns a parse or throws a
 * `UsbError` with code `"invalid-descriptor"` that names the byte
 * offset and what was wrong. It never throws anything else, never loops
 * forever, and its work is linear in the input.
 *
 * Two modes:
 * - `"strict"` (the default) checks every rule the layout depends on: exact
 *   `bLength`s, `wTotalLength` equal to the bytes given, the declared counts
 *   (`bNumInterfaces`, `bNumEndpoints`, `bNumConfigurations`), no duplicate
 *   alternate settings or endpoints. Use it to validate descriptors you
 *   wrote or read from a device.
 * - `"lenient"` follows the Linux kernel (drivers/usb/core/config.c): what
 *   the kernel keeps is kept; what it skips (a duplicate alternate setting,
 *   a too-short interface or endpoint, an endpoint beyond `bNumEndpoints`,
 *   a device or configuration descriptor inside a configuration) goes to the
 *   configuration's `skipped` list or stays among the extras, with a
 *   warning in `warnings`; given the device's `speed`, values the kernel
 *   corrects (`bInterval`, `wMaxPacketSize`, SuperSpeed companions) are
 *   shown raw and in force. Use it for sysfs `descriptors` files.
 *
 * The implementation is in src/descriptors/: the types in types.ts, one
 * reader per descriptor, the configuration walker in configuration.ts, and
 * the class decoders one class per file behind class/registry.ts.
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
 * assert.equal(d.configurations[0]!.interfaces.length, 1);
 * ```
 *
 * @module
 */

export * from "./descriptors/types.ts";
export {
  parseDeviceDescriptor,
  parseDeviceQualifier,
} from "./descriptors/device.ts";
export type { DeviceQualifier } from "./descriptors/device.ts";
export {
  parseConfiguration,
  parseDescriptors,
} from "./descriptors/configuration.ts";
export { kernelInterval } from "./descriptors/endpoint.ts";
export {
  formatBcd,
  formatReleaseNumber,
  intervalMicroseconds,
  maxPowerMilliamps,
} from "./descriptors/units.ts";
export {
  ClassDecoderRegistry,
  decodeClassDescriptor,
  defaultDecoders,
  registerClassDecoder,
} from "./descriptors/class/registry.ts";
export { decodeReportDescriptor } from "./descriptors/class/hid.ts";
export type { ReportItem } from "./descriptors/class/hid.ts";
export {
  CapabilityType,
  MS_OS_20_UUID,
  parseBos,
  WEBUSB_UUID,
} from "./descriptors/bos.ts";
export type { BosDescriptor, DeviceCapability } from "./descriptors/bos.ts";
export {
  decodeDeviceStatus,
  decodePortStatus,
  parseHubDescriptor,
} from "./descriptors/hub.ts";
export type {
  DeviceStatus,
  HubDescriptor,
  PortStatus,
} from "./descriptors/hub.ts";
// readDeviceDetails (descriptors/details.ts) is exported by mod.ts: it
// reads through an open device and uses enumeration's types, which import
// this module.
