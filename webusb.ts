/**
 * # WebUSB for Deno, over usbkit
 *
 * The WICG WebUSB API (`navigator.usb`, `USBDevice` and the rest) on
 * Linux's usbfs, so that code written for WebUSB runs under `deno run`
 * unchanged. It follows the spec's algorithms: its states, its checks in
 * order, and its errors (`DOMException`s named `NotFoundError`,
 * `InvalidStateError`, `NetworkError`, `AbortError`, ..., with usbkit's
 * `UsbError`, hint included, as the `cause`). Transfers have no timeout
 * unless the `USB` object is made with `transferTimeout`. Isochronous
 * transfers work.
 *
 * Two ways in:
 * - {@linkcode usb} is a `USB` object to use directly, without touching
 *   globals;
 * - {@linkcode install} sets `navigator.usb` (and the WebUSB classes as
 *   globals), for libraries that look there.
 *
 * Where a script differs from a browser (no chooser: `requestDevice()`
 * picks the first match, or the one `USBKIT_WEBUSB_DEVICE` selects; no
 * permission prompt; kernel drivers detached on claim), see
 * {@linkcode USBOptions} and the README's WebUSB section.
 *
 * @example List devices, WebUSB style (runs anywhere; on a machine without USB the list is empty)
 * ```ts
 * import { usb } from "./webusb.ts";
 * for (const device of await usb.getDevices()) {
 *   console.log(device.productName, device.configurations.length);
 * }
 * ```
 *
 * @module
 */

import { USB, type USBOptions } from "./src/webusb/usb.ts";
import { USBDevice } from "./src/webusb/device.ts";
import { USBConfiguration } from "./src/webusb/configuration.ts";
import { USBInterface } from "./src/webusb/interface.ts";
import { USBAlternateInterface } from "./src/webusb/alternate.ts";
import { USBEndpoint } from "./src/webusb/endpoint.ts";
import { USBConnectionEvent } from "./src/webusb/event.ts";
import {
  USBInTransferResult,
  USBIsochronousInTransferPacket,
  USBIsochronousInTransferResult,
  USBIsochronousOutTransferPacket,
  USBIsochronousOutTransferResult,
  USBOutTransferResult,
} from "./src/webusb/results.ts";

export {
  USB,
  USBAlternateInterface,
  USBConfiguration,
  USBConnectionEvent,
  USBDevice,
  USBEndpoint,
  USBInterface,
  USBInTransferResult,
  USBIsochronousInTransferPacket,
  USBIsochronousInTransferResult,
  USBIsochronousOutTransferPacket,
  USBIsochronousOutTransferResult,
  type USBOptions,
  USBOutTransferResult,
};
export { DEVICE_ENV } from "./src/webusb/usb.ts";
export type {
  WebUsb,
  WebUsbAlternateInterface,
  WebUsbConfiguration,
  WebUsbConnectionEvent,
  WebUsbControlTransferParameters,
  WebUsbDevice,
  WebUsbDeviceFilter,
  WebUsbDeviceRequestOptions,
  WebUsbDirection,
  WebUsbEndpoint,
  WebUsbEndpointType,
  WebUsbInterface,
  WebUsbInTransferResult,
  WebUsbIsochronousInTransferPacket,
  WebUsbIsochronousInTransferResult,
  WebUsbIsochronousOutTransferPacket,
  WebUsbIsochronousOutTransferResult,
  WebUsbOutTransferResult,
  WebUsbRecipient,
  WebUsbRequestType,
  WebUsbTransferStatus,
} from "./src/webusb/types.ts";
export type { TransferStatus } from "./src/urb.ts";
export type { DeviceSelector } from "./src/selector.ts";
export type { DeviceFilter } from "./src/webusb/filters.ts";

/**
 * A `USB` object with the default options: no transfer timeout, kernel
 * drivers detached on claim, protected classes allowed, the device chosen
 * by `USBKIT_WEBUSB_DEVICE` or else the first match. Making it starts
 * nothing; a `connect`/`disconnect` listener starts a hotplug watcher.
 *
 * @example
 * ```ts
 * import { usb } from "./webusb.ts";
 * console.log((await usb.getDevices()).length >= 0);
 * ```
 */
export const usb: USB = new USB();

/** The WebUSB classes install() makes global (where they are not already). */
const CLASSES = {
  USB,
  USBDevice,
  USBConfiguration,
  USBInterface,
  USBAlternateInterface,
  USBEndpoint,
  USBConnectionEvent,
  USBInTransferResult,
  USBOutTransferResult,
  USBIsochronousInTransferPacket,
  USBIsochronousInTransferResult,
  USBIsochronousOutTransferPacket,
  USBIsochronousOutTransferResult,
} as const;

/**
 * Sets `navigator.usb` to `target` (default {@linkcode usb}), and the
 * WebUSB classes (`USBDevice`, `USBInTransferResult`, ...) as globals
 * where they are not defined, for code that looks for WebUSB there.
 * Returns `target`. Calling it again replaces `navigator.usb`.
 *
 * @param target the USB object to install
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { install, usb } from "./webusb.ts";
 * install();
 * assert.equal(navigator.usb, usb);
 * ```
 */
export function install(target: USB = usb): USB {
  if (!(target instanceof USB)) {
    throw new TypeError("install: target must be a USB object from webusb.ts");
  }
  Object.defineProperty(globalThis.navigator, "usb", {
    value: target,
    configurable: true,
    enumerable: true,
    writable: false,
  });
  for (const [name, value] of Object.entries(CLASSES)) {
    if (!(name in globalThis)) {
      Object.defineProperty(globalThis, name, {
        value,
        configurable: true,
        writable: true,
        enumerable: false,
      });
    }
  }
  return target;
}
