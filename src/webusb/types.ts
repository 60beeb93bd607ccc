/**
 * The WebUSB interfaces of `@types/w3c-web-usb` (npm), under names that do
 * not clash with this module's classes of the same names, so that each
 * class can declare `implements` the spec's interface and the compiler
 * checks it.
 *
 * @module
 */

/// <reference types="@types/w3c-web-usb" />

/**
 * `USBDevice` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbDevice } from "./types.ts";
 * const f = (d: WebUsbDevice) => d.opened;
 * console.log(typeof f);
 * ```
 */
export type WebUsbDevice = USBDevice;
/**
 * `USB` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsb } from "./types.ts";
 * const f = (u: WebUsb) => u.getDevices();
 * console.log(typeof f);
 * ```
 */
export type WebUsb = USB;
/**
 * `USBConfiguration` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbConfiguration } from "./types.ts";
 * const f = (c: WebUsbConfiguration) => c.configurationValue;
 * console.log(typeof f);
 * ```
 */
export type WebUsbConfiguration = USBConfiguration;
/**
 * `USBInterface` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbInterface } from "./types.ts";
 * const f = (i: WebUsbInterface) => i.claimed;
 * console.log(typeof f);
 * ```
 */
export type WebUsbInterface = USBInterface;
/**
 * `USBAlternateInterface` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbAlternateInterface } from "./types.ts";
 * const f = (a: WebUsbAlternateInterface) => a.alternateSetting;
 * console.log(typeof f);
 * ```
 */
export type WebUsbAlternateInterface = USBAlternateInterface;
/**
 * `USBEndpoint` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbEndpoint } from "./types.ts";
 * const f = (e: WebUsbEndpoint) => e.packetSize;
 * console.log(typeof f);
 * ```
 */
export type WebUsbEndpoint = USBEndpoint;
/**
 * `USBDeviceFilter` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbDeviceFilter } from "./types.ts";
 * const f: WebUsbDeviceFilter = { vendorId: 0x0525 };
 * console.log(f.vendorId);
 * ```
 */
export type WebUsbDeviceFilter = USBDeviceFilter;
/**
 * `USBDeviceRequestOptions` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbDeviceRequestOptions } from "./types.ts";
 * const o: WebUsbDeviceRequestOptions = { filters: [{ vendorId: 0x0525 }] };
 * console.log(o.filters.length);
 * ```
 */
export type WebUsbDeviceRequestOptions = USBDeviceRequestOptions;
/**
 * `USBControlTransferParameters` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbControlTransferParameters } from "./types.ts";
 * const s: WebUsbControlTransferParameters = { requestType: "vendor", recipient: "device", request: 0x5c, value: 0, index: 0 };
 * console.log(s.request);
 * ```
 */
export type WebUsbControlTransferParameters = USBControlTransferParameters;
/**
 * `USBConnectionEvent` as `@types/w3c-web-usb` declares it.
 *
 * @example
 * ```ts
 * import type { WebUsbConnectionEvent } from "./types.ts";
 * const f = (e: WebUsbConnectionEvent) => e.device.productName;
 * console.log(typeof f);
 * ```
 */
export type WebUsbConnectionEvent = USBConnectionEvent;
