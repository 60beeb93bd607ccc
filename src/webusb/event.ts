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
 * ```ts ignore
 * // Needs a device that is plugged in: tests/device/webusb_test.ts unplugs and replugs a gadget.
 * usb.addEventListener("disconnect", (e) => console.log("gone:", e.device.productName));
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
