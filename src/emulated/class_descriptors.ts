/**
 * Helpers for class-specific descriptors whose bytes depend on other data,
 * so that the two cannot disagree.
 *
 * @module
 */

import { checkBytes, checkInt } from "./check.ts";

/**
 * The HID descriptor (HID 1.11 §6.2.1, type 0x21) for one report
 * descriptor: place it in the interface's `extra`, and serve the report
 * descriptor itself with `requestDescriptors: [{ type: 0x22, data: report }]`.
 *
 * @param report the report descriptor (its length goes in `wDescriptorLength`)
 * @param options `bcdHID` (default 0x0111) and `bCountryCode` (default 0)
 * @returns the 9-byte descriptor
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hidDescriptor } from "./class_descriptors.ts";
 * const report = new Uint8Array(63);
 * assert.deepEqual([...hidDescriptor(report)], [9, 0x21, 0x11, 0x01, 0, 1, 0x22, 63, 0]);
 * ```
 */
export function hidDescriptor(
  report: Uint8Array | readonly number[],
  options: { version?: number; country?: number } = {},
): Uint8Array {
  const length = checkBytes("hidDescriptor: report", report).length;
  checkInt("hidDescriptor: report length", length, 1, 0xffff);
  const version = checkInt(
    "hidDescriptor: options.version",
    options.version ?? 0x0111,
    0,
    0xffff,
  );
  const country = checkInt(
    "hidDescriptor: options.country",
    options.country ?? 0,
    0,
    255,
  );
  return new Uint8Array([
    9,
    0x21,
    version & 0xff,
    version >> 8,
    country,
    1, // bNumDescriptors
    0x22, // report descriptor
    length & 0xff,
    length >> 8,
  ]);
}
