/**
 * WebUSB's `USBInterface`: one interface of a configuration, its alternate
 * settings, which one is selected and whether it is claimed.
 *
 * @module
 */

import type {
  ConfigurationDescriptor,
  InterfaceDescriptor,
} from "../../mod.ts";
import { USBAlternateInterface } from "./alternate.ts";
import { descriptorOf, deviceSlots, parentOf, setDescriptor } from "./state.ts";
import type { WebUsbInterface } from "./types.ts";

/**
 * The interface classes the spec protects (Audio, HID, Mass Storage, Smart
 * Card, Video, Audio/Video, Wireless Controller): a page without the
 * `usb-unrestricted` permission policy may not claim them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROTECTED_CLASSES } from "./interface.ts";
 * assert.ok(PROTECTED_CLASSES.includes(0x03));
 * ```
 */
export const PROTECTED_CLASSES: readonly number[] = Object.freeze([
  0x01,
  0x03,
  0x08,
  0x0b,
  0x0e,
  0x10,
  0xe0,
]);

/**
 * An interface of a configuration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { USBDevice } from "./device.ts";
 * // The bench's SourceSink as the sysfs fixture records it: descriptors, nothing to open
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const info = listDevicesSync({ sysfsRoot: root }).find((d) => d.productId === 0xa4a0)!;
 * const device = new USBDevice(info, { transferTimeout: 0, detachKernelDriver: true, unrestricted: true }, () => {});
 * const iface = device.configuration!.interfaces[0]!;
 * assert.equal(iface.interfaceNumber, 0);
 * assert.equal(iface.claimed, false); // claimInterface needs open(), and so a device
 * assert.equal(iface.alternate.alternateSetting, 0);
 * ```
 */
export class USBInterface implements WebUsbInterface {
  /** bInterfaceNumber. */
  readonly interfaceNumber: number;
  /** Every alternate setting, in descriptor order. */
  readonly alternates: USBAlternateInterface[];

  /**
   * The spec's constructor: interface `interfaceNumber` of
   * `configuration`; a `RangeError` when it has none.
   *
   * @param configuration the configuration (a USBConfiguration)
   * @param interfaceNumber bInterfaceNumber
   */
  constructor(configuration: object, interfaceNumber: number) {
    const config = descriptorOf<ConfigurationDescriptor>(configuration);
    const d = config.interfaces.find((i) =>
      i.interfaceNumber === interfaceNumber
    );
    if (d === undefined) {
      throw new RangeError(
        `configuration ${config.configurationValue} has no interface ${interfaceNumber}`,
      );
    }
    setDescriptor(this, d, configuration);
    this.interfaceNumber = d.interfaceNumber;
    this.alternates = Object.freeze(
      d.alternates.map((a) =>
        new USBAlternateInterface(this, a.alternateSetting)
      ),
    ) as USBAlternateInterface[];
  }

  /** True when claimed by this program (in the active configuration). */
  get claimed(): boolean {
    const configuration = parentOf<{ configurationValue: number }>(this);
    const slots = deviceSlots(parentOf(configuration));
    return slots.configurationValue === configuration.configurationValue &&
      slots.claimed.has(this.interfaceNumber);
  }

  /** The selected alternate setting (the first one unless claimed and changed). */
  get alternate(): USBAlternateInterface {
    if (this.claimed) {
      const configuration = parentOf<{ configurationValue: number }>(this);
      const n = deviceSlots(parentOf(configuration)).alternates.get(
        this.interfaceNumber,
      ) ?? 0;
      const alt = this.alternates.find((a) => a.alternateSetting === n);
      if (alt !== undefined) return alt;
    }
    return this.alternates[0]!;
  }

  /** True when an alternate setting has a protected class (see {@linkcode PROTECTED_CLASSES}). */
  get isProtectedClass(): boolean {
    return descriptorOf<InterfaceDescriptor>(this).alternates.some((a) =>
      PROTECTED_CLASSES.includes(a.interfaceClass)
    );
  }
}
