/**
 * Setup packets: decoding the 8 bytes of a control request, and the
 * standard request codes (include/uapi/linux/usb/ch9.h).
 *
 * @module
 */

import type { ControlRequest } from "./handlers.ts";

/**
 * Standard request codes (`bRequest`, USB 2.0 table 9-4, USB 3.2 table 9-5).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StandardRequest } from "./setup.ts";
 * assert.equal(StandardRequest.GetDescriptor, 6);
 * ```
 */
export const StandardRequest = {
  GetStatus: 0x00,
  ClearFeature: 0x01,
  SetFeature: 0x03,
  SetAddress: 0x05,
  GetDescriptor: 0x06,
  SetDescriptor: 0x07,
  GetConfiguration: 0x08,
  SetConfiguration: 0x09,
  GetInterface: 0x0a,
  SetInterface: 0x0b,
  SynchFrame: 0x0c,
  SetSel: 0x30,
  SetIsochDelay: 0x31,
} as const;

/**
 * Feature selectors for SET_FEATURE and CLEAR_FEATURE (ch9.h).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Feature } from "./setup.ts";
 * assert.equal(Feature.EndpointHalt, 0);
 * ```
 */
export const Feature = {
  EndpointHalt: 0,
  DeviceRemoteWakeup: 1,
  TestMode: 2,
  U1Enable: 48,
  U2Enable: 49,
  LtmEnable: 50,
  /** Hub class, recipient other: a port reset (what usbip's stub treats as a device reset). */
  PortReset: 4,
} as const;

const TYPES = ["standard", "class", "vendor", "reserved"] as const;

/**
 * Decodes a setup packet. Recipients above 3 (reserved) read as `"other"`.
 *
 * @param setup the 8 bytes
 * @param data the OUT data stage, if any
 * @returns the request
 *
 * @example SET_CONFIGURATION(1)
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSetup } from "./setup.ts";
 * const r = parseSetup(new Uint8Array([0x00, 9, 1, 0, 0, 0, 0, 0]));
 * assert.deepEqual(
 *   [r.direction, r.requestType, r.recipient, r.request, r.value, r.index, r.length],
 *   ["out", "standard", "device", 9, 1, 0, 0],
 * );
 * ```
 */
export function parseSetup(
  setup: Uint8Array,
  data: Uint8Array = new Uint8Array(0),
): ControlRequest {
  const b = (i: number) => setup[i] ?? 0;
  const bmRequestType = b(0);
  const r = bmRequestType & 0x1f;
  return {
    direction: (bmRequestType & 0x80) !== 0 ? "in" : "out",
    requestType: TYPES[(bmRequestType >> 5) & 3]!,
    recipient: r === 0
      ? "device"
      : r === 1
      ? "interface"
      : r === 2
      ? "endpoint"
      : "other",
    request: b(1),
    value: b(2) | (b(3) << 8),
    index: b(4) | (b(5) << 8),
    length: b(6) | (b(7) << 8),
    data,
    setup,
  };
}
