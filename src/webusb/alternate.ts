/**
 * WebUSB's `USBAlternateInterface`: one alternate setting of an interface.
 *
 * @module
 */

import type { AlternateSetting } from "../../mod.ts";
import { USBEndpoint } from "./endpoint.ts";
import { descriptorOf, deviceSlots, parentOf, setDescriptor } from "./state.ts";
import type { WebUsbAlternateInterface } from "./types.ts";

/**
 * An alternate setting: its class codes, its name and its endpoints.
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
 * const alt = device.configuration!.interfaces[0]!.alternate;
 * assert.equal(alt.alternateSetting, 0);
 * assert.equal(alt.interfaceClass, 0xff); // vendor-specific
 * assert.equal(alt.endpoints.length, 2);
 * ```
 */
export class USBAlternateInterface implements WebUsbAlternateInterface {
  /** bAlternateSetting. */
  readonly alternateSetting: number;
  /** bInterfaceClass. */
  readonly interfaceClass: number;
  /** bInterfaceSubClass. */
  readonly interfaceSubclass: number;
  /** bInterfaceProtocol. */
  readonly interfaceProtocol: number;
  /** The endpoints (the control endpoint is not listed). */
  readonly endpoints: USBEndpoint[];

  /**
   * The spec's constructor: alternate setting `alternateSetting` of
   * `deviceInterface`; a `RangeError` when it has none.
   *
   * @param deviceInterface the interface (a USBInterface)
   * @param alternateSetting bAlternateSetting
   */
  constructor(deviceInterface: object, alternateSetting: number) {
    const iface = descriptorOf<{ alternates: readonly AlternateSetting[] }>(
      deviceInterface,
    );
    const d = iface.alternates.find((a) =>
      a.alternateSetting === alternateSetting
    );
    if (d === undefined) {
      throw new RangeError(
        `the interface has no alternate setting ${alternateSetting}`,
      );
    }
    setDescriptor(this, d, deviceInterface);
    this.alternateSetting = d.alternateSetting;
    this.interfaceClass = d.interfaceClass;
    this.interfaceSubclass = d.interfaceSubclass;
    this.interfaceProtocol = d.interfaceProtocol;
    this.endpoints = Object.freeze(
      d.endpoints.filter((e) => e.type !== "control").map((e) =>
        new USBEndpoint(this, e.endpointNumber, e.direction)
      ),
    ) as USBEndpoint[];
  }

  /** The interface string (iInterface), when the device has one and it was read. */
  get interfaceName(): string | null {
    const index = descriptorOf<AlternateSetting>(this).interfaceStringIndex;
    if (index === 0) return null;
    const config = parentOf(parentOf(this));
    return deviceSlots(parentOf(config)).names.get(index) ?? null;
  }
}
