/**
 * The contract between an emulated device and the transport that serves it
 * (USB/IP to the kernel's vhci_hcd, or a test): the transport turns what the
 * host sends into {@linkcode EmulatedUrb}s, calls
 * {@linkcode EmulatedDevice.handleUrb}, and sends back the
 * {@linkcode EmulatedUrbResult}.
 *
 * Statuses are those of `urb->status` in the Linux kernel (negative errnos,
 * Documentation/driver-api/usb/error-codes.rst); {@linkcode UrbStatus} names
 * the ones the model produces.
 *
 * @module
 */

/**
 * One URB (USB request block) as the host submitted it.
 *
 * @example A control URB asking for the device descriptor
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EmulatedUrb } from "./urb.ts";
 * const urb: EmulatedUrb = {
 *   endpoint: 0,
 *   direction: "in",
 *   setup: new Uint8Array([0x80, 6, 0, 1, 0, 0, 18, 0]),
 *   length: 18,
 *   transferFlags: 0,
 *   signal: new AbortController().signal,
 * };
 * assert.equal(urb.setup![1], 6); // GET_DESCRIPTOR
 * ```
 */
export interface EmulatedUrb {
  /** Endpoint number 0..15 (0 = control). */
  endpoint: number;
  /** `"in"` is device to host. For control URBs, the data stage's direction. */
  direction: "in" | "out";
  /** The 8-byte setup packet for control URBs. */
  setup?: Uint8Array;
  /** Bytes asked for (IN) or the size of `data` (OUT). */
  length: number;
  /** OUT data (control data stage or bulk/int/iso OUT). */
  data?: Uint8Array;
  /** Isochronous: per-packet requested {offset, length} in the transfer buffer. */
  isoPackets?: { offset: number; length: number }[];
  /** URB_ZERO_PACKET / URB_SHORT_NOT_OK etc. as given by the kernel. */
  transferFlags: number;
  /** Aborted when the kernel unlinks this URB or the device is detached. */
  signal: AbortSignal;
}

/**
 * What became of one URB.
 *
 * @example A stalled URB
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EmulatedUrbResult, UrbStatus } from "./urb.ts";
 * const r: EmulatedUrbResult = { status: UrbStatus.stall, actualLength: 0 };
 * assert.equal(r.status, -32);
 * ```
 */
export interface EmulatedUrbResult {
  /** 0 or a negative errno as the kernel expects in urb->status: -32 EPIPE stall, -104 ECONNRESET for an unlinked URB, -71 EPROTO, -75 EOVERFLOW babble. */
  status: number;
  /** IN data: for iso, the whole buffer with packet i at isoPackets[i].offset (only actualLength bytes of each meaningful). */
  data?: Uint8Array;
  /** Bytes transferred (OUT: accepted; IN: data.length for non-iso; iso: sum of packet actual lengths). */
  actualLength: number;
  /** Isochronous: per packet actual length and status. */
  isoPackets?: {
    offset: number;
    length: number;
    actualLength: number;
    status: number;
  }[];
  /** Isochronous: packets with errors. */
  errorCount?: number;
}

/**
 * The interface summary USB/IP's `OP_REP_DEVLIST` needs, one entry per
 * interface.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EmulatedInterfaceSummary } from "./urb.ts";
 * const s: EmulatedInterfaceSummary = { interfaceClass: 0xff, interfaceSubclass: 0, interfaceProtocol: 0 };
 * assert.equal(s.interfaceClass, 255);
 * ```
 */
export interface EmulatedInterfaceSummary {
  /** `bInterfaceClass` of alternate setting 0. */
  interfaceClass: number;
  /** `bInterfaceSubClass` of alternate setting 0. */
  interfaceSubclass: number;
  /** `bInterfaceProtocol` of alternate setting 0. */
  interfaceProtocol: number;
}

/**
 * The device descriptor's fields and the interface summary, as USB/IP's
 * `OP_REP_DEVLIST` and `OP_REP_IMPORT` need them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "./device.ts";
 * const dev = defineDevice({
 *   speed: "high", vendorId: 0x1209, productId: 0x0001,
 *   interfaces: [{ class: 0xff }],
 * });
 * assert.equal(dev.summary.numConfigurations, 1);
 * assert.equal(dev.summary.interfaces[0]!.interfaceClass, 0xff);
 * dev.close();
 * ```
 */
export interface EmulatedDeviceSummary {
  /** `idVendor`. */
  vendorId: number;
  /** `idProduct`. */
  productId: number;
  /** `bcdDevice`. */
  bcdDevice: number;
  /** `bDeviceClass`. */
  deviceClass: number;
  /** `bDeviceSubClass`. */
  deviceSubclass: number;
  /** `bDeviceProtocol`. */
  deviceProtocol: number;
  /** `bConfigurationValue` of the configuration in use (of the first one while unconfigured, the one a host will select). */
  configurationValue: number;
  /** `bNumConfigurations`. */
  numConfigurations: number;
  /** The interfaces of that configuration, alternate setting 0. */
  interfaces: EmulatedInterfaceSummary[];
}

/**
 * A device a transport can serve: what {@linkcode defineDevice} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "./device.ts";
 * const dev = defineDevice({ speed: "full", vendorId: 1, productId: 2, interfaces: [{}] });
 * const r = await dev.handleUrb({
 *   endpoint: 0, direction: "in", length: 18, transferFlags: 0,
 *   setup: new Uint8Array([0x80, 6, 0, 1, 0, 0, 18, 0]),
 *   signal: new AbortController().signal,
 * });
 * assert.equal(r.status, 0);
 * assert.equal(r.data![0], 18);
 * dev.close();
 * ```
 */
export interface EmulatedDevice {
  /** The speed the device runs at. */
  readonly speed: "low" | "full" | "high" | "super";
  /** The device descriptor's fields and the interface summary USB/IP's OP_REP_DEVLIST needs. */
  readonly summary: {
    vendorId: number;
    productId: number;
    bcdDevice: number;
    deviceClass: number;
    deviceSubclass: number;
    deviceProtocol: number;
    configurationValue: number;
    numConfigurations: number;
    interfaces: {
      interfaceClass: number;
      interfaceSubclass: number;
      interfaceProtocol: number;
    }[];
  };
  /** Handles one URB; never rejects (errors become a status). */
  handleUrb(urb: EmulatedUrb): Promise<EmulatedUrbResult>;
  /** USB reset (port reset from the host): back to the default state. */
  reset(): void;
  /** Detach: abort every pending handler. */
  close(): void;
}

/**
 * The `urb->status` values the model produces (negative errnos from
 * include/uapi/asm-generic/errno*.h).
 *
 * - `ok`: success.
 * - `stall` (-EPIPE): the endpoint stalled (halted, or a control request
 *   was refused).
 * - `unlinked` (-ECONNRESET): the URB's `signal` was aborted (the kernel
 *   unlinked it).
 * - `shutdown` (-ESHUTDOWN): the device was reset, reconfigured under the
 *   URB, or closed.
 * - `protocolError` (-EPROTO): an isochronous packet a handler failed.
 * - `babble` (-EOVERFLOW): the device sent more than the host asked for.
 * - `shortNotOk` (-EREMOTEIO): a short IN transfer with `URB_SHORT_NOT_OK`.
 * - `invalid` (-EINVAL): a URB the model cannot take (no setup packet, iso
 *   packets outside the buffer): a transport bug.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UrbStatus } from "./urb.ts";
 * assert.equal(UrbStatus.unlinked, -104);
 * ```
 */
export const UrbStatus = {
  ok: 0,
  stall: -32,
  unlinked: -104,
  shutdown: -108,
  protocolError: -71,
  babble: -75,
  shortNotOk: -121,
  invalid: -22,
} as const;

/**
 * `urb->transfer_flags` bits that matter to the model (include/linux/usb.h).
 *
 * - `shortNotOk` (`URB_SHORT_NOT_OK`): a short IN transfer is an error
 *   ({@linkcode UrbStatus}.shortNotOk).
 * - `isoAsap` (`URB_ISO_ASAP`): ignored.
 * - `zeroPacket` (`URB_ZERO_PACKET`): an OUT transfer that ends on a packet
 *   boundary is followed by a zero-length packet; handlers see it in
 *   `info.transferFlags`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TransferFlags } from "./urb.ts";
 * assert.equal(TransferFlags.zeroPacket, 0x40);
 * ```
 */
export const TransferFlags = {
  shortNotOk: 0x0001,
  isoAsap: 0x0002,
  zeroPacket: 0x0040,
} as const;
