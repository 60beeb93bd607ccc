/**
 * WebUSB's device filters: checking them (a `TypeError` for an invalid one,
 * as the spec says) and matching devices against them.
 *
 * @module
 */

import type { DeviceInfo } from "../../mod.ts";
import { checkInteger, checkOptions, checkString } from "../validate.ts";
import { webidl } from "./errors.ts";
import type { WebUsbDeviceFilter } from "./types.ts";

/**
 * A checked filter: the spec's `USBDeviceFilter` with every member read once.
 *
 * @example
 * ```ts
 * import type { DeviceFilter } from "./filters.ts";
 * const f: DeviceFilter = { vendorId: 0x0525, productId: 0xa4a0 };
 * console.log(f.vendorId);
 * ```
 */
export interface DeviceFilter {
  /** idVendor. */
  vendorId?: number;
  /** idProduct (only with vendorId). */
  productId?: number;
  /** A device or interface class. */
  classCode?: number;
  /** A subclass (only with classCode). */
  subclassCode?: number;
  /** A protocol (only with subclassCode). */
  protocolCode?: number;
  /** The serial number string. */
  serialNumber?: string;
}

/**
 * Checks one filter: members of the right types and ranges (a `TypeError`
 * otherwise, as WebIDL gives), and valid as the spec says (productId only
 * with vendorId, subclassCode only with classCode, protocolCode only with
 * subclassCode; a `TypeError` otherwise).
 *
 * @param name the argument, for messages: `"requestDevice: options.filters[0]"`
 * @param value the filter
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFilter } from "./filters.ts";
 * assert.deepEqual(checkFilter("f", { vendorId: 0x0525 }), { vendorId: 0x0525 });
 * assert.throws(() => checkFilter("f", { productId: 1 }), TypeError);
 * ```
 */
export function checkFilter(name: string, value: unknown): DeviceFilter {
  const f = webidl(() => {
    const o = checkOptions(name, value, [
      "vendorId",
      "productId",
      "classCode",
      "subclassCode",
      "protocolCode",
      "serialNumber",
    ]);
    const f: DeviceFilter = {};
    const int = (k: keyof DeviceFilter, max: number) => {
      const v = o[k];
      if (v !== undefined) {
        (f as Record<string, number>)[k] = checkInteger(
          `${name}.${k}`,
          v,
          0,
          max,
        );
      }
    };
    int("vendorId", 0xffff);
    int("productId", 0xffff);
    int("classCode", 0xff);
    int("subclassCode", 0xff);
    int("protocolCode", 0xff);
    if (o.serialNumber !== undefined) {
      f.serialNumber = checkString(`${name}.serialNumber`, o.serialNumber);
    }
    return f;
  });
  // The spec's "is not a valid filter".
  if (f.productId !== undefined && f.vendorId === undefined) {
    throw new TypeError(`${name}: productId needs vendorId`);
  }
  if (f.subclassCode !== undefined && f.classCode === undefined) {
    throw new TypeError(`${name}: subclassCode needs classCode`);
  }
  if (f.protocolCode !== undefined && f.subclassCode === undefined) {
    throw new TypeError(`${name}: protocolCode needs subclassCode`);
  }
  return f;
}

/**
 * True when a device matches the filter, as the spec's "match a device
 * filter" says: IDs and serial number, then the class triple against any
 * interface (of every configuration and alternate setting) or else the
 * device descriptor's.
 *
 * @param device the device, as listed
 * @param filter a checked filter
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevicesSync } from "../enumeration.ts";
 * import { matchesFilter } from "./filters.ts";
 * const root = new URL("../../tests/fixtures/sysfs", import.meta.url).pathname;
 * const hub = listDevicesSync({ sysfsRoot: root }).find((d) => d.portPath === "1-1")!;
 * assert.ok(matchesFilter(hub, { classCode: 9 }));
 * assert.ok(!matchesFilter(hub, { vendorId: hub.vendorId ^ 1 }));
 * ```
 */
export function matchesFilter(
  device: DeviceInfo,
  filter: DeviceFilter,
): boolean {
  if (filter.vendorId !== undefined && device.vendorId !== filter.vendorId) {
    return false;
  }
  if (filter.productId !== undefined && device.productId !== filter.productId) {
    return false;
  }
  if (
    filter.serialNumber !== undefined &&
    device.serialNumber !== filter.serialNumber
  ) {
    return false;
  }
  const triple = (c: number, s: number, p: number) =>
    (filter.classCode === undefined || c === filter.classCode) &&
    (filter.subclassCode === undefined || s === filter.subclassCode) &&
    (filter.protocolCode === undefined || p === filter.protocolCode);
  if (filter.classCode !== undefined) {
    for (const c of device.configurations) {
      for (const i of c.interfaces) {
        for (const a of i.alternates) {
          if (
            triple(a.interfaceClass, a.interfaceSubclass, a.interfaceProtocol)
          ) {
            return true;
          }
        }
      }
    }
  }
  return triple(
    device.deviceClass,
    device.deviceSubclass,
    device.deviceProtocol,
  );
}

/**
 * Checks `requestDevice`'s options: `filters` (required, an array of
 * filters) and `exclusionFilters` (optional). A `TypeError` for a bad one.
 *
 * @param value the options
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRequestOptions } from "./filters.ts";
 * assert.deepEqual(checkRequestOptions({ filters: [] }), { filters: [], exclusionFilters: [] });
 * assert.throws(() => checkRequestOptions({}), TypeError);
 * ```
 */
export function checkRequestOptions(
  value: unknown,
): { filters: DeviceFilter[]; exclusionFilters: DeviceFilter[] } {
  const o = webidl(() =>
    checkOptions("requestDevice: options", value, [
      "filters",
      "exclusionFilters",
    ])
  );
  const list = (key: "filters" | "exclusionFilters", required: boolean) => {
    const v = o[key];
    if (v === undefined && !required) return [];
    if (!Array.isArray(v)) {
      throw new TypeError(
        `requestDevice: options.${key} must be an array of USBDeviceFilter${
          required ? " (it is required)" : ""
        }`,
      );
    }
    return (v as WebUsbDeviceFilter[]).map((f, i) =>
      checkFilter(`requestDevice: options.${key}[${i}]`, f)
    );
  };
  return {
    filters: list("filters", true),
    exclusionFilters: list("exclusionFilters", false),
  };
}
