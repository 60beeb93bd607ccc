/**
 * The WebUSB interfaces, written from the WebIDL of the WICG specification
 * (https://wicg.github.io/webusb/), under names that do not clash with this
 * module's classes of the same names, so that each class can declare
 * `implements` the spec's interface and the compiler checks it.
 *
 * They are declared here rather than taken from the globals of
 * `@types/w3c-web-usb`, because a published package's types cannot rely on
 * an ambient declaration package. tests/unit/webusb_types_test.ts checks, in
 * both directions, that each interface here and its `@types/w3c-web-usb`
 * counterpart are assignable to each other, and that the classes of this
 * module are assignable to the `@types` ones, so the two cannot drift apart.
 *
 * @module
 */

/** `enum USBDirection`. */
export type WebUsbDirection = "in" | "out";
/** `enum USBEndpointType`. */
export type WebUsbEndpointType = "bulk" | "interrupt" | "isochronous";
/** `enum USBRequestType`. */
export type WebUsbRequestType = "standard" | "class" | "vendor";
/** `enum USBRecipient`. */
export type WebUsbRecipient = "device" | "interface" | "endpoint" | "other";
/** `enum USBTransferStatus`. */
export type WebUsbTransferStatus = "ok" | "stall" | "babble";

/**
 * `dictionary USBDeviceFilter`.
 *
 * @example
 * ```ts
 * import type { WebUsbDeviceFilter } from "./types.ts";
 * const f: WebUsbDeviceFilter = { vendorId: 0x0525 };
 * console.log(f.vendorId);
 * ```
 */
export interface WebUsbDeviceFilter {
  /** idVendor. */
  vendorId?: number | undefined;
  /** idProduct. */
  productId?: number | undefined;
  /** The device's or one of its interfaces' class. */
  classCode?: number | undefined;
  /** Subclass, with classCode. */
  subclassCode?: number | undefined;
  /** Protocol, with classCode and subclassCode. */
  protocolCode?: number | undefined;
  /** The serial number string. */
  serialNumber?: string | undefined;
}

/**
 * `dictionary USBDeviceRequestOptions`.
 *
 * @example
 * ```ts
 * import type { WebUsbDeviceRequestOptions } from "./types.ts";
 * const o: WebUsbDeviceRequestOptions = { filters: [{ vendorId: 0x0525 }] };
 * console.log(o.filters.length);
 * ```
 */
export interface WebUsbDeviceRequestOptions {
  /** A device must match one of them (an empty list matches any). */
  filters: WebUsbDeviceFilter[];
  /** A device matching one of them is left out. */
  exclusionFilters?: WebUsbDeviceFilter[] | undefined;
}

/**
 * `dictionary USBControlTransferParameters`.
 *
 * @example
 * ```ts
 * import type { WebUsbControlTransferParameters } from "./types.ts";
 * const s: WebUsbControlTransferParameters = { requestType: "vendor", recipient: "device", request: 0x5c, value: 0, index: 0 };
 * console.log(s.request);
 * ```
 */
export interface WebUsbControlTransferParameters {
  /** bmRequestType bits 6:5. */
  requestType: WebUsbRequestType;
  /** bmRequestType bits 4:0. */
  recipient: WebUsbRecipient;
  /** bRequest. */
  request: number;
  /** wValue. */
  value: number;
  /** wIndex. */
  index: number;
}

/** `interface USBInTransferResult`. */
export interface WebUsbInTransferResult {
  /** The bytes received; absent when none came. */
  readonly data?: DataView | undefined;
  /** How the transfer ended. */
  readonly status: WebUsbTransferStatus;
}

/** `interface USBOutTransferResult`. */
export interface WebUsbOutTransferResult {
  /** Bytes the device accepted. */
  readonly bytesWritten: number;
  /** How the transfer ended. */
  readonly status: WebUsbTransferStatus;
}

/** `interface USBIsochronousInTransferPacket`. */
export interface WebUsbIsochronousInTransferPacket {
  /** The packet's bytes; absent when none came. */
  readonly data?: DataView | undefined;
  /** How the packet ended. */
  readonly status: WebUsbTransferStatus;
}

/** `interface USBIsochronousInTransferResult`. */
export interface WebUsbIsochronousInTransferResult {
  /** Every packet's slot, back to back. */
  readonly data?: DataView | undefined;
  /** One per requested packet. */
  readonly packets: WebUsbIsochronousInTransferPacket[];
}

/** `interface USBIsochronousOutTransferPacket`. */
export interface WebUsbIsochronousOutTransferPacket {
  /** Bytes the device accepted. */
  readonly bytesWritten: number;
  /** How the packet ended. */
  readonly status: WebUsbTransferStatus;
}

/** `interface USBIsochronousOutTransferResult`. */
export interface WebUsbIsochronousOutTransferResult {
  /** One per packet sent. */
  readonly packets: WebUsbIsochronousOutTransferPacket[];
}

/**
 * `interface USBEndpoint`.
 *
 * @example
 * ```ts
 * import type { WebUsbEndpoint } from "./types.ts";
 * const f = (e: WebUsbEndpoint) => e.packetSize;
 * console.log(typeof f);
 * ```
 */
export interface WebUsbEndpoint {
  /** The endpoint number (bits 3:0 of the address). */
  readonly endpointNumber: number;
  /** From bit 7 of the address. */
  readonly direction: WebUsbDirection;
  /** The transfer type. */
  readonly type: WebUsbEndpointType;
  /** wMaxPacketSize. */
  readonly packetSize: number;
}

/**
 * `interface USBAlternateInterface`.
 *
 * @example
 * ```ts
 * import type { WebUsbAlternateInterface } from "./types.ts";
 * const f = (a: WebUsbAlternateInterface) => a.alternateSetting;
 * console.log(typeof f);
 * ```
 */
export interface WebUsbAlternateInterface {
  /** bAlternateSetting. */
  readonly alternateSetting: number;
  /** bInterfaceClass. */
  readonly interfaceClass: number;
  /** bInterfaceSubClass. */
  readonly interfaceSubclass: number;
  /** bInterfaceProtocol. */
  readonly interfaceProtocol: number;
  /** The iInterface string, if any. */
  readonly interfaceName: string | null;
  /** The setting's endpoints. */
  readonly endpoints: WebUsbEndpoint[];
}

/**
 * `interface USBInterface`.
 *
 * @example
 * ```ts
 * import type { WebUsbInterface } from "./types.ts";
 * const f = (i: WebUsbInterface) => i.claimed;
 * console.log(typeof f);
 * ```
 */
export interface WebUsbInterface {
  /** bInterfaceNumber. */
  readonly interfaceNumber: number;
  /** The current alternate setting. */
  readonly alternate: WebUsbAlternateInterface;
  /** Every alternate setting. */
  readonly alternates: WebUsbAlternateInterface[];
  /** True while claimed. */
  readonly claimed: boolean;
}

/**
 * `interface USBConfiguration`.
 *
 * @example
 * ```ts
 * import type { WebUsbConfiguration } from "./types.ts";
 * const f = (c: WebUsbConfiguration) => c.configurationValue;
 * console.log(typeof f);
 * ```
 */
export interface WebUsbConfiguration {
  /** bConfigurationValue. */
  readonly configurationValue: number;
  /** The iConfiguration string, if any. */
  readonly configurationName: string | null;
  /** The configuration's interfaces. */
  readonly interfaces: WebUsbInterface[];
}

/**
 * `interface USBDevice`.
 *
 * @example
 * ```ts
 * import type { WebUsbDevice } from "./types.ts";
 * const f = (d: WebUsbDevice) => d.opened;
 * console.log(typeof f);
 * ```
 */
export interface WebUsbDevice {
  /** bcdUSB, major part. */
  readonly usbVersionMajor: number;
  /** bcdUSB, minor digit. */
  readonly usbVersionMinor: number;
  /** bcdUSB, subminor digit. */
  readonly usbVersionSubminor: number;
  /** bDeviceClass. */
  readonly deviceClass: number;
  /** bDeviceSubClass. */
  readonly deviceSubclass: number;
  /** bDeviceProtocol. */
  readonly deviceProtocol: number;
  /** idVendor. */
  readonly vendorId: number;
  /** idProduct. */
  readonly productId: number;
  /** bcdDevice, major part. */
  readonly deviceVersionMajor: number;
  /** bcdDevice, minor digit. */
  readonly deviceVersionMinor: number;
  /** bcdDevice, subminor digit. */
  readonly deviceVersionSubminor: number;
  /** The iManufacturer string, if any. */
  readonly manufacturerName: string | null;
  /** The iProduct string, if any. */
  readonly productName: string | null;
  /** The iSerialNumber string, if any. */
  readonly serialNumber: string | null;
  /** The active configuration, if configured. */
  readonly configuration: WebUsbConfiguration | null;
  /** Every configuration. */
  readonly configurations: WebUsbConfiguration[];
  /** True while open. */
  readonly opened: boolean;
  /** Opens the device. */
  open(): Promise<void>;
  /** Closes the device. */
  close(): Promise<void>;
  /** Closes the device and gives up access to it. */
  forget(): Promise<void>;
  /** SET_CONFIGURATION. */
  selectConfiguration(configurationValue: number): Promise<void>;
  /** Claims an interface. */
  claimInterface(interfaceNumber: number): Promise<void>;
  /** Releases an interface. */
  releaseInterface(interfaceNumber: number): Promise<void>;
  /** SET_INTERFACE. */
  selectAlternateInterface(
    interfaceNumber: number,
    alternateSetting: number,
  ): Promise<void>;
  /** A control transfer from the device. */
  controlTransferIn(
    setup: WebUsbControlTransferParameters,
    length: number,
  ): Promise<WebUsbInTransferResult>;
  /** A control transfer to the device. */
  controlTransferOut(
    setup: WebUsbControlTransferParameters,
    data?: BufferSource,
  ): Promise<WebUsbOutTransferResult>;
  /** CLEAR_FEATURE(ENDPOINT_HALT). */
  clearHalt(direction: WebUsbDirection, endpointNumber: number): Promise<void>;
  /** A bulk or interrupt transfer from the device. */
  transferIn(
    endpointNumber: number,
    length: number,
  ): Promise<WebUsbInTransferResult>;
  /** A bulk or interrupt transfer to the device. */
  transferOut(
    endpointNumber: number,
    data: BufferSource,
  ): Promise<WebUsbOutTransferResult>;
  /** An isochronous transfer from the device. */
  isochronousTransferIn(
    endpointNumber: number,
    packetLengths: number[],
  ): Promise<WebUsbIsochronousInTransferResult>;
  /** An isochronous transfer to the device. */
  isochronousTransferOut(
    endpointNumber: number,
    data: BufferSource,
    packetLengths: number[],
  ): Promise<WebUsbIsochronousOutTransferResult>;
  /** Resets the device. */
  reset(): Promise<void>;
}

/**
 * `interface USBConnectionEvent`.
 *
 * @example
 * ```ts
 * import type { WebUsbConnectionEvent } from "./types.ts";
 * const f = (e: WebUsbConnectionEvent) => e.device.productName;
 * console.log(typeof f);
 * ```
 */
export interface WebUsbConnectionEvent extends Event {
  /** The device that came or went. */
  readonly device: WebUsbDevice;
}

/**
 * `interface USB`.
 *
 * @example
 * ```ts
 * import type { WebUsb } from "./types.ts";
 * const f = (u: WebUsb) => u.getDevices();
 * console.log(typeof f);
 * ```
 */
export interface WebUsb extends EventTarget {
  /** The `connect` event handler. */
  onconnect: ((this: this, ev: WebUsbConnectionEvent) => unknown) | null;
  /** The `disconnect` event handler. */
  ondisconnect: ((this: this, ev: WebUsbConnectionEvent) => unknown) | null;
  /** The devices this object has access to. */
  getDevices(): Promise<WebUsbDevice[]>;
  /** A device matching the filters. */
  requestDevice(options?: WebUsbDeviceRequestOptions): Promise<WebUsbDevice>;
  /** Listens for `connect` or `disconnect` events. */
  addEventListener(
    type: "connect" | "disconnect",
    listener: (this: this, ev: WebUsbConnectionEvent) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Listens for any event, as `EventTarget` does. */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Stops listening for `connect` or `disconnect` events. */
  removeEventListener(
    type: "connect" | "disconnect",
    callback: (this: this, ev: WebUsbConnectionEvent) => unknown,
    options?: EventListenerOptions | boolean,
  ): void;
  /** Stops listening for any event, as `EventTarget` does. */
  removeEventListener(
    type: string,
    callback: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void;
}
