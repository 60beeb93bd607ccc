/**
 * USB/IP for usbkit: serve devices written in TypeScript to a Linux kernel,
 * so that they enumerate like real ones (lsusb, class drivers, usbfs).
 *
 * - {@linkcode attachLocal} plugs a device into this machine's vhci_hcd
 *   (root, `modprobe vhci-hcd`);
 * - {@linkcode serve} exports devices over TCP to any USB/IP client
 *   (`usbip attach -r HOST -b 1-1`);
 * - {@linkcode serveConnection} serves one device on any stream already in
 *   the URB phase (on the calling thread; the two above use a worker for the
 *   stream so that a usbfs client in the same process can cancel transfers);
 * - protocol.ts and decoder.ts are the wire format, usable on their own.
 *
 * The devices are `EmulatedDevice`s (src/emulated/urb.ts; `defineDevice` of
 * src/emulated/ makes them).
 *
 * @example Plug a device in, read from it with usbkit, unplug it
 * ```ts ignore
 * // Needs root and vhci_hcd: tests/device/usbip_test.ts attaches and reads devices
 * // this way in the guest; by hand, `deno task vm --module vhci-hcd -- deno run -A this.ts`.
 * import { attachLocal } from "./mod.ts";
 * import { open } from "../../mod.ts";
 * declare const device: import("../emulated/urb.ts").EmulatedDevice;
 * await using attached = await attachLocal(device);
 * await using dev = await open(attached.devnode);
 * const iface = await dev.claimInterface(0);
 * console.log(await iface.endpoint(0x81).transferIn(512));
 * ```
 *
 * @module
 */

export * from "./protocol.ts";
export * from "./decoder.ts";
export * from "./transport.ts";
export * from "./connection.ts";
export * from "./attach.ts";
export * from "./server.ts";
