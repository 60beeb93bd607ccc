// The WebUSB interfaces usbkit declares (src/webusb/types.ts, written from
// the spec's WebIDL so the published package needs no ambient types) against
// the ones of the npm package @types/w3c-web-usb: each pair must be
// assignable both ways, and usbkit's classes must be assignable to the
// @types ones, so a WebUSB library typed against @types accepts usbkit's
// objects. These are compile-time checks: `deno check` (part of `deno task
// check` and of `deno test`) fails if any of them breaks; the runtime part
// checks that the classes are what webusb.ts installs.
/// <reference types="@types/w3c-web-usb" />
import assert from "node:assert/strict";
import * as webusb from "../../webusb.ts";
import type {
  WebUsb,
  WebUsbAlternateInterface,
  WebUsbConfiguration,
  WebUsbConnectionEvent,
  WebUsbControlTransferParameters,
  WebUsbDevice,
  WebUsbDeviceFilter,
  WebUsbDeviceRequestOptions,
  WebUsbEndpoint,
  WebUsbInterface,
} from "../../webusb.ts";
import type {
  WebUsbInTransferResult,
  WebUsbIsochronousInTransferResult,
  WebUsbIsochronousOutTransferResult,
  WebUsbOutTransferResult,
} from "../../src/webusb/types.ts";

/** True when A and B are assignable to each other. */
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false)
  : false;
const yes = <T extends true>(): T => true as T;

// Ours and @types', both ways.
yes<Mutual<WebUsbDevice, USBDevice>>();
yes<Mutual<WebUsbConfiguration, USBConfiguration>>();
yes<Mutual<WebUsbInterface, USBInterface>>();
yes<Mutual<WebUsbAlternateInterface, USBAlternateInterface>>();
yes<Mutual<WebUsbEndpoint, USBEndpoint>>();
yes<Mutual<WebUsbDeviceFilter, USBDeviceFilter>>();
yes<Mutual<WebUsbDeviceRequestOptions, USBDeviceRequestOptions>>();
yes<Mutual<WebUsbControlTransferParameters, USBControlTransferParameters>>();
yes<Mutual<WebUsbInTransferResult, USBInTransferResult>>();
yes<Mutual<WebUsbOutTransferResult, USBOutTransferResult>>();
yes<
  Mutual<WebUsbIsochronousInTransferResult, USBIsochronousInTransferResult>
>();
yes<
  Mutual<WebUsbIsochronousOutTransferResult, USBIsochronousOutTransferResult>
>();
yes<Mutual<WebUsbConnectionEvent["device"], USBConnectionEvent["device"]>>();
yes<Mutual<ReturnType<WebUsb["getDevices"]>, ReturnType<USB["getDevices"]>>>();

// usbkit's classes where a WebUSB library typed against @types wants them.
type Fits<A, B> = [A] extends [B] ? true : false;
yes<Fits<webusb.USBDevice, USBDevice>>();
yes<Fits<webusb.USBConfiguration, USBConfiguration>>();
yes<Fits<webusb.USBInterface, USBInterface>>();
yes<Fits<webusb.USBAlternateInterface, USBAlternateInterface>>();
yes<Fits<webusb.USBEndpoint, USBEndpoint>>();
yes<Fits<webusb.USBInTransferResult, USBInTransferResult>>();
yes<Fits<webusb.USBOutTransferResult, USBOutTransferResult>>();
yes<
  Fits<webusb.USBIsochronousInTransferResult, USBIsochronousInTransferResult>
>();
yes<
  Fits<webusb.USBIsochronousOutTransferResult, USBIsochronousOutTransferResult>
>();
yes<Fits<webusb.USBConnectionEvent, USBConnectionEvent>>();
// The USB object: its event handlers take `this`, which no class with
// private state can match outside its own `implements` clause; so usbkit's
// class is checked by `class USB ... implements WebUsb` (src/webusb/usb.ts),
// and that interface against @types' here.
yes<Mutual<WebUsb, USB>>();

Deno.test("usb is the spec's USB interface, and a USB of webusb.ts", () => {
  const nav = webusb.usb;
  assert.ok(nav instanceof webusb.USB);
  assert.equal(typeof nav.getDevices, "function");
  assert.equal(typeof nav.requestDevice, "function");
  assert.equal(nav.onconnect, null);
});
