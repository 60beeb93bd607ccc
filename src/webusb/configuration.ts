/**
 * WebUSB's `USBConfiguration`: one configuration of a device and its
 * interfaces, readable before `open()`.
 *
 * @module
 */

import type { ConfigurationDescriptor } from "../../mod.ts";
import { USBInterface } from "./interface.ts";
import { deviceSlots, setDescriptor } from "./state.ts";
import type { WebUsbConfiguration } from "./types.ts";

/**
 * A configuration of a device.
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
 * assert.deepEqual(device.configurations.map((c) => [c.configurationValue, c.interfaces.length]), [[1, 1]]);
 * ```
 */
export class USBConfiguration implements WebUsbConfiguration {
  /** bConfigurationValue. */
  readonly configurationValue: number;
  /** The interfaces, in descriptor order. */
  readonly interfaces: USBInterface[];
  readonly #device: object;
  readonly #stringIndex: number;

  /**
   * The spec's constructor: configuration `configurationValue` of
   * `device` (a USBDevice of this module); a `RangeError` when it has none.
   *
   * @param device the device
   * @param configurationValue bConfigurationValue
   */
  constructor(device: object, configurationValue: number) {
    const d: ConfigurationDescriptor | undefined = deviceSlots(device)
      .configurations.find((c) => c.configurationValue === configurationValue);
    if (d === undefined) {
      throw new RangeError(
        `the device has no configuration ${configurationValue}`,
      );
    }
    setDescriptor(this, d, device);
    this.#device = device;
    this.#stringIndex = d.configurationStringIndex;
    this.configurationValue = d.configurationValue;
    this.interfaces = Object.freeze(
      d.interfaces.map((i) => new USBInterface(this, i.interfaceNumber)),
    ) as USBInterface[];
  }

  /** The configuration string (iConfiguration), when the device has one and it was read. */
  get configurationName(): string | null {
    if (this.#stringIndex === 0) return null;
    return deviceSlots(this.#device).names.get(this.#stringIndex) ?? null;
  }
}
