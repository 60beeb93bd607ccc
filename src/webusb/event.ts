/**
 * WebUSB's `USBConnectionEvent`: the `connect` and `disconnect` events of
 * `navigator.usb`.
 *
 * @module
 */

import type { USBDevice } from "./device.ts";

/**
 * A device came (`connect`) or went (`disconnect`). `device` is the same
 * object across both, and across replugs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { USBDevice } from "./device.ts";
 * import { USBConnectionEvent } from "./event.ts";
 * // The bench's SourceSink as the sysfs fixture records it: descriptors, nothing to open
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const info = listDevicesSync({ sysfsRoot: root }).find((d) => d.productId === 0xa4a0)!;
 * const device = new USBDevice(info, { transferTimeout: 0, detachKernelDriver: true, unrestricted: true }, () => {});
 * const seen: string[] = [];
 * const usb = new EventTarget(); // navigator.usb dispatches these on an unplug (tests/device/webusb_test.ts)
 * usb.addEventListener("disconnect", (e) => seen.push(`gone: ${(e as USBConnectionEvent).device.productName}`));
 * usb.dispatchEvent(new USBConnectionEvent("disconnect", { device }));
 * assert.deepEqual(seen, ["gone: SourceSink bench gadget"]);
 * ```
 */
export class USBConnectionEvent extends Event {
  /** The device. */
  readonly device: USBDevice;

  /**
   * The spec's constructor.
   *
   * @param type `"connect"` or `"disconnect"`
   * @param eventInitDict `{ device }` and the Event options
   */
  constructor(
    type: string,
    eventInitDict: EventInit & { device: USBDevice },
  ) {
    super(type, eventInitDict);
    this.device = eventInitDict.device;
  }
}
