/**
 * The internal slots WebUSB's objects share: a device's selected
 * configuration, claimed interfaces and selected alternate settings (the
 * spec's `[[configurationValue]]`, `[[claimedInterface]]` and
 * `[[selectedAlternateSetting]]`), and the descriptor behind each
 * configuration, interface, alternate setting and endpoint object. Kept in
 * WeakMaps so that none of it shows on the public objects.
 *
 * @module
 */

import type { ConfigurationDescriptor } from "../../mod.ts";

/**
 * A `USBDevice`'s internal slots.
 *
 * @example
 * ```ts
 * import type { DeviceSlots } from "./state.ts";
 * const s: DeviceSlots = {
 *   configurations: [], configurationValue: 0, claimed: new Set(),
 *   alternates: new Map(), names: new Map(),
 * };
 * console.log(s.configurationValue);
 * ```
 */
export interface DeviceSlots {
  /** The parsed configuration descriptors. */
  readonly configurations: readonly ConfigurationDescriptor[];
  /** `[[configurationValue]]`: the active configuration, 0 when unconfigured. */
  configurationValue: number;
  /** `[[claimedInterface]]`: the interface numbers claimed in the active configuration. */
  readonly claimed: Set<number>;
  /** `[[selectedAlternateSetting]]`: interface number to alternate setting (absent: 0). */
  readonly alternates: Map<number, number>;
  /**
   * Strings read from the device, by string descriptor index
   * (configuration and interface names).
   */
  readonly names: Map<number, string>;
}

const devices = new WeakMap<object, DeviceSlots>();
const descriptors = new WeakMap<object, unknown>();
const parents = new WeakMap<object, object>();

/**
 * Records a device's slots.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deviceSlots, setDeviceSlots } from "./state.ts";
 * const device = {};
 * setDeviceSlots(device, { configurations: [], configurationValue: 1, claimed: new Set(), alternates: new Map(), names: new Map() });
 * assert.equal(deviceSlots(device).configurationValue, 1);
 * ```
 */
export function setDeviceSlots(device: object, slots: DeviceSlots): void {
  devices.set(device, slots);
}

/**
 * A device's slots; a `TypeError` for an object that is not a USBDevice
 * made by usbkit (what WebIDL throws for a wrong `this`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deviceSlots } from "./state.ts";
 * assert.throws(() => deviceSlots({}), TypeError);
 * ```
 */
export function deviceSlots(device: object): DeviceSlots {
  const s = devices.get(device);
  if (s === undefined) {
    throw new TypeError("not a USBDevice made by usbkit's WebUSB");
  }
  return s;
}

/**
 * Records the descriptor behind a configuration, interface, alternate or
 * endpoint object, and the object it belongs to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { descriptorOf, parentOf, setDescriptor } from "./state.ts";
 * const parent = {}, child = {};
 * setDescriptor(child, { n: 1 }, parent);
 * assert.deepEqual(descriptorOf(child), { n: 1 });
 * assert.equal(parentOf(child), parent);
 * ```
 */
export function setDescriptor(
  obj: object,
  desc: unknown,
  parent: object,
): void {
  descriptors.set(obj, desc);
  parents.set(obj, parent);
}

/**
 * The descriptor recorded for `obj`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { descriptorOf } from "./state.ts";
 * assert.throws(() => descriptorOf({}), TypeError);
 * ```
 */
export function descriptorOf<T>(obj: object): T {
  if (!descriptors.has(obj)) {
    throw new TypeError("not a WebUSB descriptor object made by usbkit");
  }
  return descriptors.get(obj) as T;
}

/**
 * The object `obj` belongs to: a configuration's device, an interface's
 * configuration, an alternate's interface, an endpoint's alternate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parentOf } from "./state.ts";
 * assert.throws(() => parentOf({}), TypeError);
 * ```
 */
export function parentOf<T extends object>(obj: object): T {
  const p = parents.get(obj);
  if (p === undefined) {
    throw new TypeError("not a WebUSB descriptor object made by usbkit");
  }
  return p as T;
}
