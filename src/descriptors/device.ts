/**
 * The device descriptor (USB 2.0 §9.6.1) and the device qualifier (§9.6.2).
 *
 * @module
 */

import { hex2, invalid, LENIENT_HINT, Reader } from "./reader.ts";
import {
  DescriptorType,
  type DeviceDescriptor,
  type ParseOptions,
} from "./types.ts";

/** `USB_DT_DEVICE_SIZE`, include/uapi/linux/usb/ch9.h. */
export const USB_DT_DEVICE_SIZE = 18;
/** `sizeof(struct usb_qualifier_descriptor)`, ch9.h. */
const USB_DT_QUALIFIER_SIZE = 10;

/**
 * Reads a device descriptor at `at` (the walker's reader for it).
 *
 * @param r the reader
 * @param at where it starts
 * @returns the descriptor
 * @throws {UsbError} `"invalid-descriptor"`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reader } from "./reader.ts";
 * import { deviceAt } from "./device.ts";
 * const bytes = new Uint8Array([18, 1, 0, 2, 0, 0, 0, 64, 1, 0, 2, 0, 0, 1, 0, 0, 0, 1]);
 * assert.equal(deviceAt(new Reader(bytes, true), 0).productId, 2);
 * ```
 */
export function deviceAt(r: Reader, at: number): DeviceDescriptor {
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
  if (r.strict && length !== USB_DT_DEVICE_SIZE) {
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
 * import { parseDeviceDescriptor, formatBcd } from "../descriptors.ts";
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
  return deviceAt(new Reader(bytes, strict), 0);
}

/**
 * The device qualifier descriptor (USB 2.0 §9.6.2, `struct
 * usb_qualifier_descriptor`): how a high-speed capable device would look at
 * the other speed. Read with GET_DESCRIPTOR(DEVICE_QUALIFIER); a full-speed
 * only device stalls the request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDeviceQualifier } from "../descriptors.ts";
 * const q = parseDeviceQualifier(new Uint8Array([10, 6, 0, 2, 0, 0, 0, 64, 1, 0]));
 * assert.ok(q.usbVersion === 0x0200 && q.maxPacketSize0 === 64 && q.numConfigurations === 1);
 * ```
 */
export interface DeviceQualifier {
  /** `bcdUSB`. */
  readonly usbVersion: number;
  /** `bDeviceClass` at the other speed. */
  readonly deviceClass: number;
  /** `bDeviceSubClass`. */
  readonly deviceSubclass: number;
  /** `bDeviceProtocol`. */
  readonly deviceProtocol: number;
  /** `bMaxPacketSize0` at the other speed. */
  readonly maxPacketSize0: number;
  /** `bNumConfigurations` at the other speed. */
  readonly numConfigurations: number;
  /** The descriptor's bytes. */
  readonly raw: Uint8Array;
}

/**
 * Parses a device qualifier descriptor.
 *
 * @param bytes the GET_DESCRIPTOR(DEVICE_QUALIFIER) data
 * @param options the parse mode (strict wants exactly 10 bytes)
 * @throws {UsbError} `"invalid-descriptor"` naming the offset and the problem
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDeviceQualifier } from "../descriptors.ts";
 * assert.throws(() => parseDeviceQualifier(new Uint8Array([10, 1, 0, 2])), /device qualifier/);
 * ```
 */
export function parseDeviceQualifier(
  bytes: Uint8Array,
  options: ParseOptions = {},
): DeviceQualifier {
  const r = new Reader(bytes, (options.mode ?? "strict") === "strict");
  if (bytes.length < USB_DT_QUALIFIER_SIZE) {
    throw invalid(
      0,
      `truncated device qualifier: ${bytes.length} of ${USB_DT_QUALIFIER_SIZE} bytes`,
    );
  }
  if (r.u8(1) !== DescriptorType.DeviceQualifier) {
    throw invalid(
      1,
      `expected a device qualifier (type 0x06), found type 0x${hex2(r.u8(1))}`,
    );
  }
  r.lengthOk(0, "device qualifier", r.u8(0), [USB_DT_QUALIFIER_SIZE], "10");
  return {
    usbVersion: r.u16(2),
    deviceClass: r.u8(4),
    deviceSubclass: r.u8(5),
    deviceProtocol: r.u8(6),
    maxPacketSize0: r.u8(7),
    numConfigurations: r.u8(8),
    raw: r.slice(0, USB_DT_QUALIFIER_SIZE),
  };
}
