/**
 * What usbfs can do for one device: the USBDEVFS_GET_CAPABILITIES bits and
 * the speed usbfs reports, read through the helper.
 *
 * @module
 */

import type { Speed } from "./enumeration.ts";
import { probe } from "./usbfs.ts";

/**
 * The USBDEVFS_CAP_* bits, from include/uapi/linux/usbdevice_fs.h.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Capability } from "./capabilities.ts";
 * assert.equal(Capability.MMAP, 0x20);
 * ```
 */
export const Capability = {
  ZERO_PACKET: 0x01,
  BULK_CONTINUATION: 0x02,
  NO_PACKET_SIZE_LIM: 0x04,
  BULK_SCATTER_GATHER: 0x08,
  REAP_AFTER_DISCONNECT: 0x10,
  MMAP: 0x20,
  DROP_PRIVILEGES: 0x40,
  CONNINFO_EX: 0x80,
  SUSPEND: 0x100,
} as const;

/** Capability bit names, from include/uapi/linux/usbdevice_fs.h (USBDEVFS_CAP_*). */
export const CAPABILITY_BITS: readonly (readonly [number, string])[] = Object
  .entries(Capability).map(([name, bit]) => [bit, name] as const);

/** The capabilities of one usbfs device node. */
export interface Capabilities {
  /** The raw bits. */
  bits: number;
  /** The names of the bits that are set, such as `"MMAP"`. */
  names: string[];
  /** The speed usbfs reports (USBDEVFS_GET_SPEED). */
  speed: Speed | "unknown";
}

/**
 * The names of the capability bits set in `bits`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { capabilityNames } from "./capabilities.ts";
 * assert.ok(capabilityNames(0x21).join() === "ZERO_PACKET,MMAP");
 * ```
 */
export function capabilityNames(bits: number): string[] {
  return CAPABILITY_BITS.filter(([bit]) => (bits & bit) !== 0).map(([, name]) =>
    name
  );
}

/**
 * Speed from a USB_SPEED_* value of include/uapi/linux/usb/ch9.h.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { speedFromKernel } from "./capabilities.ts";
 * assert.ok(speedFromKernel(5) === "super");
 * ```
 */
export function speedFromKernel(value: number): Speed | "unknown" {
  // USB_SPEED_UNKNOWN 0, LOW 1, FULL 2, HIGH 3, WIRELESS 4, SUPER 5, SUPER_PLUS 6
  switch (value) {
    case 1:
      return "low";
    case 2:
      return "full";
    case 3:
    case 4:
      return "high";
    case 5:
      return "super";
    case 6:
      return "super-plus";
    default:
      return "unknown";
  }
}

/**
 * The vendor and product ids of a usbfs node, found through its device number
 * in /sys/dev/char, so error hints can name the device.
 */
export function idsOfDevnode(
  devnode: string,
): { vendorId?: number; productId?: number } {
  try {
    const rdev = Deno.statSync(devnode).rdev ?? 0;
    // glibc's gnu_dev_major/minor encoding of dev_t.
    const major = ((rdev >>> 8) & 0xfff) | Math.floor(rdev / 2 ** 32) & ~0xfff;
    const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
    const dir = `/sys/dev/char/${major}:${minor}`;
    const read = (f: string) =>
      parseInt(Deno.readTextFileSync(`${dir}/${f}`).trim(), 16);
    return { vendorId: read("idVendor"), productId: read("idProduct") };
  } catch {
    return {};
  }
}

/**
 * Opens a usbfs node, reads its capabilities and speed, and closes it.
 *
 * @example
 * ```ts ignore
 * // Needs a usbfs device node: `usb describe` (scripts/usb.ts) calls it, which
 * // tests/device/descriptors_lsusb_test.ts runs on the bench in the guest.
 * import { readCapabilities } from "./capabilities.ts";
 * const caps = readCapabilities("/dev/bus/usb/002/002");
 * console.log(caps.names.includes("MMAP"), caps.speed);
 * ```
 */
export function readCapabilities(devnode: string): Capabilities {
  const [bits, speed] = probe(devnode, { devnode, ...idsOfDevnode(devnode) });
  return {
    bits,
    names: capabilityNames(bits),
    speed: speedFromKernel(speed),
  };
}
