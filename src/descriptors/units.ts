/**
 * Reading descriptor values in their units: BCD versions, service
 * intervals, power.
 *
 * @module
 */

import { kernelInterval } from "./endpoint.ts";
import type {
  ConfigurationDescriptor,
  EndpointDescriptor,
  Speed,
} from "./types.ts";

/**
 * Formats a binary-coded decimal version the way the USB specification
 * writes it (JJ.M.N, with a zero N left out): 0x0320 is "3.2", 0x0201 is
 * "2.0.1", 0x0110 is "1.1".
 *
 * @param bcd a 16-bit BCD value such as `bcdUSB`
 * @returns the dotted version
 *
 * A device release number (`bcdDevice`) reads differently, as
 * {@linkcode formatReleaseNumber} writes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBcd } from "../descriptors.ts";
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
 * Formats a BCD release number the way USB reads it and `lsusb` prints it:
 * the high byte, a dot, the low byte as two digits. 0x0601 is "6.01", not
 * "6.0.1"; 0x0200 is "2.00".
 *
 * @param bcd a 16-bit BCD value such as `bcdDevice`, `bcdHID` or `bcdCDC`
 * @returns the version
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReleaseNumber } from "../descriptors.ts";
 * assert.equal(formatReleaseNumber(0x0601), "6.01");
 * assert.equal(formatReleaseNumber(0x0111), "1.11");
 * assert.equal(formatReleaseNumber(0x0200), "2.00");
 * ```
 */
export function formatReleaseNumber(bcd: number): string {
  return `${((bcd >> 8) & 0xff).toString(16)}.${
    (bcd & 0xff).toString(16).padStart(2, "0")
  }`;
}

/**
 * The service interval of an endpoint in microseconds, decoded from
 * `bInterval` for a speed the way the kernel does (drivers/usb/common/common.c,
 * `usb_decode_interval`): exponential for isochronous endpoints and for
 * interrupt endpoints at high speed and above, in frames (1 ms) below high
 * speed and microframes (125 us) from high speed on, after the kernel's
 * correction of out-of-range values ({@linkcode kernelInterval}). Bulk and control
 * endpoints give 0 except the high-speed NAK rate.
 *
 * @param endpoint the endpoint
 * @param speed the speed the device runs at
 * @returns microseconds, 0 when not periodic
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration, intervalMicroseconds } from "../descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 25, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 1, 3, 1, 1, 0,
 *   7, 5, 0x81, 3, 8, 0, 4,
 * ]));
 * const ep = c.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.ok(intervalMicroseconds(ep, "full") === 4000);
 * assert.ok(intervalMicroseconds(ep, "high") === 1000); // 2^(4-1) x 125 us
 * assert.ok(intervalMicroseconds({ ...ep, interval: 255 }, "high") === 128_000); // the kernel's 11
 * ```
 */
export function intervalMicroseconds(
  endpoint: Pick<EndpointDescriptor, "type" | "direction" | "interval">,
  speed: Speed,
): number {
  const fast = speed !== "low" && speed !== "full";
  // The value in force: out-of-range values are replaced as the kernel does
  // (config.c), so that garbage (0, or 255) reads as what the host uses.
  const interval = kernelInterval(endpoint.type, endpoint.interval, speed);
  const exp = Math.min(Math.max(interval, 1), 16) - 1;
  let units = 0;
  switch (endpoint.type) {
    case "control":
      if (speed === "high") units = interval;
      break;
    case "isochronous":
      units = 2 ** exp;
      break;
    case "bulk":
      if (speed === "high" && endpoint.direction === "out") {
        units = interval;
      }
      break;
    case "interrupt":
      units = fast ? 2 ** exp : interval;
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
 * import { parseConfiguration, maxPowerMilliamps } from "../descriptors.ts";
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
