/**
 * WebUSB's `USBEndpoint`: one endpoint of an alternate setting.
 *
 * @module
 */

import type { EndpointDescriptor } from "../../mod.ts";
import { descriptorOf, setDescriptor } from "./state.ts";
import type { WebUsbEndpoint } from "./types.ts";

/**
 * An endpoint, as the spec describes it: number, direction, type and
 * packet size (wMaxPacketSize bits 10..0).
 *
 * @example Read before open()
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { USBDevice } from "./device.ts";
 * // The bench's SourceSink as the sysfs fixture records it: descriptors, nothing to open
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const info = listDevicesSync({ sysfsRoot: root }).find((d) => d.productId === 0xa4a0)!;
 * const device = new USBDevice(info, { transferTimeout: 0, detachKernelDriver: true, unrestricted: true }, () => {});
 * const ep = device.configurations[0]!.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.deepEqual([ep.endpointNumber, ep.direction, ep.type, ep.packetSize], [1, "in", "bulk", 1024]);
 * ```
 */
export class USBEndpoint implements WebUsbEndpoint {
  /** bEndpointAddress bits 3..0. */
  readonly endpointNumber: number;
  /** `"in"` or `"out"` (bEndpointAddress bit 7). */
  readonly direction: "in" | "out";
  /** `"bulk"`, `"interrupt"` or `"isochronous"`. */
  readonly type: "bulk" | "interrupt" | "isochronous";
  /** The most bytes per packet. */
  readonly packetSize: number;

  /**
   * The spec's constructor: the endpoint of `alternate` with this number
   * and direction; a `RangeError` when it has none.
   *
   * @param alternate the alternate setting (a USBAlternateInterface)
   * @param endpointNumber bEndpointAddress bits 3..0
   * @param direction `"in"` or `"out"`
   */
  constructor(
    alternate: object,
    endpointNumber: number,
    direction: "in" | "out",
  ) {
    const alt = descriptorOf<{ endpoints: readonly EndpointDescriptor[] }>(
      alternate,
    );
    const d = alt.endpoints.find((e) =>
      e.endpointNumber === endpointNumber && e.direction === direction
    );
    if (d === undefined || d.type === "control") {
      throw new RangeError(
        `the alternate setting has no ${direction} endpoint ${endpointNumber}`,
      );
    }
    setDescriptor(this, d, alternate);
    this.endpointNumber = d.endpointNumber;
    this.direction = d.direction;
    this.type = d.type;
    this.packetSize = d.packetSize;
  }
}
