/**
 * The USB/IP wire format: every message of Documentation/usb/usbip_protocol.rst,
 * encoded and decoded byte for byte, big-endian, with the validation the
 * kernel applies (drivers/usb/usbip/usbip_common.c, vhci_rx.c, stub_rx.c).
 *
 * Two phases share a TCP (or unix) stream:
 * - operations, 8-byte header `version u16, code u16, status u32`:
 *   OP_REQ_DEVLIST/OP_REP_DEVLIST lists what a server exports,
 *   OP_REQ_IMPORT/OP_REP_IMPORT attaches one device;
 * - after a successful import, URB traffic in 48-byte headers
 *   (`struct usbip_header`): CMD_SUBMIT/RET_SUBMIT and CMD_UNLINK/RET_UNLINK,
 *   each followed by the transfer data (OUT in commands, IN in returns) and,
 *   for isochronous URBs, 16 bytes per packet descriptor.
 *
 * Decoders take the bytes received so far and return either the message and
 * its size, or how many bytes they need ({@linkcode Decoded}); they never read
 * past what they were given and never allocate more than the limits in
 * {@linkcode DecodeLimits}. Malformed input throws
 * {@linkcode UsbipProtocolError}, and only that.
 *
 * @example Encode a CMD_SUBMIT and decode it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand, encodeCmdSubmit } from "./protocol.ts";
 * const bytes = encodeCmdSubmit({
 *   seqnum: 1, devid: 0x10002, direction: "in", ep: 0, transferFlags: 0x200,
 *   transferBufferLength: 18, setup: new Uint8Array([0x80, 6, 0, 1, 0, 0, 18, 0]),
 * });
 * const d = decodeCommand(bytes);
 * assert.ok("value" in d && d.value.command === "submit" && d.size === 48);
 * ```
 *
 * @module
 */

// ---- constants ----

/** Protocol version 1.1.1, as the usbip tools send it (configure.ac). */
export const USBIP_VERSION = 0x0111;
/** Operation: list exported devices (request). */
export const OP_REQ_DEVLIST = 0x8005;
/** Operation: list exported devices (reply). */
export const OP_REP_DEVLIST = 0x0005;
/** Operation: import a device (request). */
export const OP_REQ_IMPORT = 0x8003;
/** Operation: import a device (reply). */
export const OP_REP_IMPORT = 0x0003;
/** `command` of a CMD_SUBMIT header. */
export const USBIP_CMD_SUBMIT = 1;
/** `command` of a CMD_UNLINK header. */
export const USBIP_CMD_UNLINK = 2;
/** `command` of a RET_SUBMIT header. */
export const USBIP_RET_SUBMIT = 3;
/** `command` of a RET_UNLINK header. */
export const USBIP_RET_UNLINK = 4;
/** `direction` OUT. */
export const USBIP_DIR_OUT = 0;
/** `direction` IN. */
export const USBIP_DIR_IN = 1;
/** Bytes of an operation header. */
export const OP_HEADER_SIZE = 8;
/** Bytes of `struct usbip_header` (every URB-phase message). */
export const HEADER_SIZE = 48;
/** Bytes of `struct usbip_iso_packet_descriptor`. */
export const ISO_DESCRIPTOR_SIZE = 16;
/** Bytes of `struct usbip_usb_device`. */
export const USB_DEVICE_SIZE = 312;
/** Bytes of `struct usbip_usb_interface`. */
export const USB_INTERFACE_SIZE = 4;
/** Bytes of the `path` field. */
export const PATH_SIZE = 256;
/** Bytes of the `busid` field (SYSFS_BUS_ID_SIZE). */
export const BUSID_SIZE = 32;
/** USBIP_MAX_ISO_PACKETS of drivers/usb/usbip/usbip_common.h. */
export const MAX_ISO_PACKETS = 1024;
/**
 * Default cap on `transfer_buffer_length`: 16 MiB, usbfs's default
 * `usbfs_memory_mb` (no URB from a usbfs client can be larger).
 */
export const DEFAULT_MAX_TRANSFER_LENGTH = 16 << 20;
/** Most devices a device list may carry before the decoder refuses it. */
export const MAX_DEVLIST_DEVICES = 1024;
/** OP_REP status: success. */
export const ST_OK = 0;
/** OP_REP status: request failed (the only error the protocol document names). */
export const ST_NA = 1;
/** ECONNRESET: the RET_UNLINK status of a URB unlinked while pending. */
export const ECONNRESET = 104;

// ---- errors ----

/**
 * Input that breaks the protocol. The connection it came from cannot be
 * resynchronised and is closed; other connections are not affected.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand, UsbipProtocolError } from "./protocol.ts";
 * assert.throws(() => decodeCommand(new Uint8Array(48).fill(0xff)), UsbipProtocolError);
 * ```
 */
export class UsbipProtocolError extends Error {
  /**
   * Makes the error.
   *
   * @param message what is wrong, naming the field
   * @param options the underlying error, if any
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UsbipProtocolError";
  }
}

// ---- speeds ----

/**
 * `enum usb_device_speed` of include/uapi/linux/usb/ch9.h, by name.
 *
 * @example
 * ```ts
 * import type { UsbipSpeed } from "./protocol.ts";
 * const s: UsbipSpeed = "high";
 * ```
 */
export type UsbipSpeed =
  | "unknown"
  | "low"
  | "full"
  | "high"
  | "wireless"
  | "super"
  | "super-plus";

const SPEEDS: readonly UsbipSpeed[] = [
  "unknown",
  "low",
  "full",
  "high",
  "wireless",
  "super",
  "super-plus",
];

/**
 * The `enum usb_device_speed` value of a speed (what vhci_hcd's `attach`
 * file and the `speed` field of a device record take).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { speedCode } from "./protocol.ts";
 * assert.equal(speedCode("high"), 3);
 * assert.equal(speedCode("super"), 5);
 * ```
 */
export function speedCode(speed: UsbipSpeed): number {
  const i = SPEEDS.indexOf(speed);
  if (i < 0) throw new RangeError(`unknown USB speed "${speed}"`);
  return i;
}

/**
 * The speed of an `enum usb_device_speed` value; values the kernel does not
 * define are "unknown".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { speedFromCode } from "./protocol.ts";
 * assert.equal(speedFromCode(2), "full");
 * assert.equal(speedFromCode(99), "unknown");
 * ```
 */
export function speedFromCode(code: number): UsbipSpeed {
  return SPEEDS[code] ?? "unknown";
}

// ---- decoding results and limits ----

/**
 * What a decoder made of the bytes so far: the message and the bytes it
 * took, or the total it needs from the start of the message to go on (more
 * than it was given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand } from "./protocol.ts";
 * const d = decodeCommand(new Uint8Array(10));
 * assert.ok("need" in d && d.need === 48);
 * ```
 */
export type Decoded<T> = { value: T; size: number } | { need: number };

/**
 * Caps applied while decoding, so a hostile or broken peer cannot make a
 * decoder allocate without bound.
 *
 * @example
 * ```ts
 * import type { DecodeLimits } from "./protocol.ts";
 * const l: DecodeLimits = { maxTransferLength: 1 << 20 };
 * ```
 */
export interface DecodeLimits {
  /** Largest `transfer_buffer_length` / `actual_length` accepted (default 16 MiB). */
  maxTransferLength?: number;
}

function need(n: number): { need: number } {
  return { need: n };
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(n: number, digits = 8): string {
  return `0x${(n >>> 0).toString(16).padStart(digits, "0")}`;
}

function maxTransfer(limits: DecodeLimits | undefined): number {
  return limits?.maxTransferLength ?? DEFAULT_MAX_TRANSFER_LENGTH;
}

// ---- strings ----

function encodeFixedString(
  out: Uint8Array,
  offset: number,
  size: number,
  value: string,
  field: string,
): void {
  const bytes = new TextEncoder().encode(value);
  if (bytes.length >= size) {
    throw new RangeError(
      `${field} "${value}" takes ${bytes.length} bytes; at most ${
        size - 1
      } fit (NUL-terminated)`,
    );
  }
  out.set(bytes, offset);
  out.fill(0, offset + bytes.length, offset + size);
}

function decodeFixedString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return new TextDecoder("utf-8", { fatal: false }).decode(
    nul < 0 ? bytes : bytes.subarray(0, nul),
  );
}

// ---- operations ----

/**
 * One interface of a device record (`struct usbip_usb_interface`).
 *
 * @example
 * ```ts
 * import type { UsbipInterfaceInfo } from "./protocol.ts";
 * const i: UsbipInterfaceInfo = { interfaceClass: 3, interfaceSubclass: 1, interfaceProtocol: 2 };
 * ```
 */
export interface UsbipInterfaceInfo {
  /** bInterfaceClass. */
  interfaceClass: number;
  /** bInterfaceSubClass. */
  interfaceSubclass: number;
  /** bInterfaceProtocol. */
  interfaceProtocol: number;
}

/**
 * A device record (`struct usbip_usb_device`, 312 bytes), plus its
 * interfaces in a device list.
 *
 * @example
 * ```ts
 * import type { UsbipDeviceInfo } from "./protocol.ts";
 * const d: UsbipDeviceInfo = {
 *   path: "/sys/devices/usbkit/1-1", busid: "1-1", busnum: 1, devnum: 1, speed: "high",
 *   vendorId: 0x1209, productId: 1, bcdDevice: 0x100, deviceClass: 0, deviceSubclass: 0,
 *   deviceProtocol: 0, configurationValue: 1, numConfigurations: 1, numInterfaces: 0, interfaces: [],
 * };
 * ```
 */
export interface UsbipDeviceInfo {
  /** Path of the device on the exporting host (at most 255 bytes). */
  path: string;
  /** Bus id, e.g. "1-1" (at most 31 bytes). */
  busid: string;
  /** Bus number. */
  busnum: number;
  /** Device number on the bus. */
  devnum: number;
  /** Speed. */
  speed: UsbipSpeed;
  /** idVendor. */
  vendorId: number;
  /** idProduct. */
  productId: number;
  /** bcdDevice. */
  bcdDevice: number;
  /** bDeviceClass. */
  deviceClass: number;
  /** bDeviceSubClass. */
  deviceSubclass: number;
  /** bDeviceProtocol. */
  deviceProtocol: number;
  /** bConfigurationValue. */
  configurationValue: number;
  /** bNumConfigurations. */
  numConfigurations: number;
  /** bNumInterfaces. */
  numInterfaces: number;
  /** The interfaces (sent in device lists only; empty in an import reply). */
  interfaces: UsbipInterfaceInfo[];
}

/**
 * A request of the operation phase, as a server receives it.
 *
 * @example
 * ```ts
 * import type { OpRequest } from "./protocol.ts";
 * const r: OpRequest = { op: "import", version: 0x111, busid: "1-1" };
 * ```
 */
export type OpRequest =
  | { op: "devlist"; version: number }
  | { op: "import"; version: number; busid: string };

function opHeader(
  out: Uint8Array,
  code: number,
  status: number,
  version: number,
) {
  const v = view(out);
  v.setUint16(0, version);
  v.setUint16(2, code);
  v.setUint32(4, status >>> 0);
}

/**
 * OP_REQ_DEVLIST: 8 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeOpReqDevlist } from "./protocol.ts";
 * assert.deepEqual([...encodeOpReqDevlist()], [0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0]);
 * ```
 */
export function encodeOpReqDevlist(version = USBIP_VERSION): Uint8Array {
  const out = new Uint8Array(OP_HEADER_SIZE);
  opHeader(out, OP_REQ_DEVLIST, 0, version);
  return out;
}

/**
 * OP_REQ_IMPORT: 8 bytes of header and the 32-byte busid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeOpReqImport } from "./protocol.ts";
 * const b = encodeOpReqImport("1-1");
 * assert.equal(b.length, 40);
 * assert.equal(new TextDecoder().decode(b.subarray(8, 11)), "1-1");
 * ```
 */
export function encodeOpReqImport(
  busid: string,
  version = USBIP_VERSION,
): Uint8Array {
  const out = new Uint8Array(OP_HEADER_SIZE + BUSID_SIZE);
  opHeader(out, OP_REQ_IMPORT, 0, version);
  encodeFixedString(out, 8, BUSID_SIZE, busid, "busid");
  return out;
}

/**
 * Decodes an operation request (server side). Unknown codes are a protocol
 * error; the version is reported, not checked (the reply echoes it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeOpRequest, encodeOpReqImport } from "./protocol.ts";
 * const d = decodeOpRequest(encodeOpReqImport("1-2"));
 * assert.ok("value" in d && d.value.op === "import" && d.value.busid === "1-2");
 * ```
 */
export function decodeOpRequest(bytes: Uint8Array): Decoded<OpRequest> {
  if (bytes.length < OP_HEADER_SIZE) return need(OP_HEADER_SIZE);
  const v = view(bytes);
  const version = v.getUint16(0);
  const code = v.getUint16(2);
  switch (code) {
    case OP_REQ_DEVLIST:
      return { value: { op: "devlist", version }, size: OP_HEADER_SIZE };
    case OP_REQ_IMPORT: {
      const size = OP_HEADER_SIZE + BUSID_SIZE;
      if (bytes.length < size) return need(size);
      const busid = decodeFixedString(bytes.subarray(8, size));
      return { value: { op: "import", version, busid }, size };
    }
    default:
      throw new UsbipProtocolError(
        `unknown operation code ${
          hex(code, 4)
        } (expected OP_REQ_DEVLIST 0x8005 or OP_REQ_IMPORT 0x8003)`,
      );
  }
}

function checkByte(value: number, field: string, max = 0xff): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(
      `${field} must be an integer from 0 to ${max}, got ${value}`,
    );
  }
  return value;
}

function encodeUsbDevice(out: Uint8Array, at: number, d: UsbipDeviceInfo) {
  encodeFixedString(out, at, PATH_SIZE, d.path, "path");
  encodeFixedString(out, at + PATH_SIZE, BUSID_SIZE, d.busid, "busid");
  const v = view(out);
  const o = at + PATH_SIZE + BUSID_SIZE;
  v.setUint32(o, checkByte(d.busnum, "busnum", 0xffffffff));
  v.setUint32(o + 4, checkByte(d.devnum, "devnum", 0xffffffff));
  v.setUint32(o + 8, speedCode(d.speed));
  v.setUint16(o + 12, checkByte(d.vendorId, "vendorId", 0xffff));
  v.setUint16(o + 14, checkByte(d.productId, "productId", 0xffff));
  v.setUint16(o + 16, checkByte(d.bcdDevice, "bcdDevice", 0xffff));
  out[o + 18] = checkByte(d.deviceClass, "deviceClass");
  out[o + 19] = checkByte(d.deviceSubclass, "deviceSubclass");
  out[o + 20] = checkByte(d.deviceProtocol, "deviceProtocol");
  out[o + 21] = checkByte(d.configurationValue, "configurationValue");
  out[o + 22] = checkByte(d.numConfigurations, "numConfigurations");
  out[o + 23] = checkByte(d.numInterfaces, "numInterfaces");
}

function decodeUsbDevice(bytes: Uint8Array, at: number): UsbipDeviceInfo {
  const v = view(bytes);
  const o = at + PATH_SIZE + BUSID_SIZE;
  return {
    path: decodeFixedString(bytes.subarray(at, at + PATH_SIZE)),
    busid: decodeFixedString(bytes.subarray(at + PATH_SIZE, o)),
    busnum: v.getUint32(o),
    devnum: v.getUint32(o + 4),
    speed: speedFromCode(v.getUint32(o + 8)),
    vendorId: v.getUint16(o + 12),
    productId: v.getUint16(o + 14),
    bcdDevice: v.getUint16(o + 16),
    deviceClass: bytes[o + 18]!,
    deviceSubclass: bytes[o + 19]!,
    deviceProtocol: bytes[o + 20]!,
    configurationValue: bytes[o + 21]!,
    numConfigurations: bytes[o + 22]!,
    numInterfaces: bytes[o + 23]!,
    interfaces: [],
  };
}

/**
 * OP_REP_DEVLIST: header, device count, then each device record followed by
 * its `numInterfaces` interface records (4 bytes each; `interfaces` must
 * have exactly that many).
 *
 * @example An empty list is 12 bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeOpRepDevlist } from "./protocol.ts";
 * assert.deepEqual([...encodeOpRepDevlist([])], [0x01, 0x11, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
 * ```
 */
export function encodeOpRepDevlist(
  devices: readonly UsbipDeviceInfo[],
  version = USBIP_VERSION,
): Uint8Array {
  let size = OP_HEADER_SIZE + 4;
  for (const d of devices) {
    if (d.interfaces.length !== d.numInterfaces) {
      throw new RangeError(
        `device ${d.busid}: numInterfaces is ${d.numInterfaces} but ${d.interfaces.length} interfaces are listed`,
      );
    }
    size += USB_DEVICE_SIZE + USB_INTERFACE_SIZE * d.interfaces.length;
  }
  const out = new Uint8Array(size);
  opHeader(out, OP_REP_DEVLIST, ST_OK, version);
  view(out).setUint32(8, devices.length);
  let at = 12;
  for (const d of devices) {
    encodeUsbDevice(out, at, d);
    at += USB_DEVICE_SIZE;
    for (const i of d.interfaces) {
      out[at] = checkByte(i.interfaceClass, "interfaceClass");
      out[at + 1] = checkByte(i.interfaceSubclass, "interfaceSubclass");
      out[at + 2] = checkByte(i.interfaceProtocol, "interfaceProtocol");
      out[at + 3] = 0; // padding
      at += USB_INTERFACE_SIZE;
    }
  }
  return out;
}

/**
 * Decodes OP_REP_DEVLIST (client side). A non-zero status ends the message
 * after the header (no count follows it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeOpRepDevlist, encodeOpRepDevlist } from "./protocol.ts";
 * const d = decodeOpRepDevlist(encodeOpRepDevlist([]));
 * assert.ok("value" in d && d.value.status === 0 && d.value.devices.length === 0);
 * ```
 */
export function decodeOpRepDevlist(
  bytes: Uint8Array,
): Decoded<{ version: number; status: number; devices: UsbipDeviceInfo[] }> {
  if (bytes.length < OP_HEADER_SIZE) return need(OP_HEADER_SIZE);
  const v = view(bytes);
  const version = v.getUint16(0);
  const code = v.getUint16(2);
  const status = v.getUint32(4);
  if (code !== OP_REP_DEVLIST) {
    throw new UsbipProtocolError(
      `expected OP_REP_DEVLIST (0x0005), got code ${hex(code, 4)}`,
    );
  }
  if (status !== ST_OK) {
    return { value: { version, status, devices: [] }, size: OP_HEADER_SIZE };
  }
  if (bytes.length < 12) return need(12);
  const n = v.getUint32(8);
  if (n > MAX_DEVLIST_DEVICES) {
    throw new UsbipProtocolError(
      `device list claims ${n} devices (at most ${MAX_DEVLIST_DEVICES} accepted)`,
    );
  }
  const devices: UsbipDeviceInfo[] = [];
  let at = 12;
  for (let i = 0; i < n; i++) {
    if (bytes.length < at + USB_DEVICE_SIZE) return need(at + USB_DEVICE_SIZE);
    const d = decodeUsbDevice(bytes, at);
    at += USB_DEVICE_SIZE;
    const end = at + d.numInterfaces * USB_INTERFACE_SIZE;
    if (bytes.length < end) return need(end);
    for (; at < end; at += USB_INTERFACE_SIZE) {
      d.interfaces.push({
        interfaceClass: bytes[at]!,
        interfaceSubclass: bytes[at + 1]!,
        interfaceProtocol: bytes[at + 2]!,
      });
    }
    devices.push(d);
  }
  return { value: { version, status, devices }, size: at };
}

/**
 * OP_REP_IMPORT: the header, and the device record when `status` is 0
 * (interfaces are not sent in this reply).
 *
 * @example A refusal is 8 bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeOpRepImport, ST_NA } from "./protocol.ts";
 * assert.deepEqual([...encodeOpRepImport(null, ST_NA)], [0x01, 0x11, 0, 3, 0, 0, 0, 1]);
 * ```
 */
export function encodeOpRepImport(
  device: UsbipDeviceInfo | null,
  status: number = device === null ? ST_NA : ST_OK,
  version = USBIP_VERSION,
): Uint8Array {
  if ((status === ST_OK) !== (device !== null)) {
    throw new RangeError(
      "OP_REP_IMPORT carries a device exactly when its status is 0",
    );
  }
  const out = new Uint8Array(
    OP_HEADER_SIZE + (device === null ? 0 : USB_DEVICE_SIZE),
  );
  opHeader(out, OP_REP_IMPORT, status, version);
  if (device !== null) encodeUsbDevice(out, OP_HEADER_SIZE, device);
  return out;
}

/**
 * Decodes OP_REP_IMPORT (client side).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeOpRepImport, encodeOpRepImport } from "./protocol.ts";
 * const d = decodeOpRepImport(encodeOpRepImport(null));
 * assert.ok("value" in d && d.value.status === 1 && d.value.device === null);
 * ```
 */
export function decodeOpRepImport(
  bytes: Uint8Array,
): Decoded<
  { version: number; status: number; device: UsbipDeviceInfo | null }
> {
  if (bytes.length < OP_HEADER_SIZE) return need(OP_HEADER_SIZE);
  const v = view(bytes);
  const version = v.getUint16(0);
  const code = v.getUint16(2);
  const status = v.getUint32(4);
  if (code !== OP_REP_IMPORT) {
    throw new UsbipProtocolError(
      `expected OP_REP_IMPORT (0x0003), got code ${hex(code, 4)}`,
    );
  }
  if (status !== ST_OK) {
    return { value: { version, status, device: null }, size: OP_HEADER_SIZE };
  }
  const size = OP_HEADER_SIZE + USB_DEVICE_SIZE;
  if (bytes.length < size) return need(size);
  return {
    value: { version, status, device: decodeUsbDevice(bytes, OP_HEADER_SIZE) },
    size,
  };
}

// ---- URB phase ----

/**
 * One isochronous packet descriptor (`struct usbip_iso_packet_descriptor`).
 *
 * @example
 * ```ts
 * import type { IsoPacketDescriptor } from "./protocol.ts";
 * const p: IsoPacketDescriptor = { offset: 0, length: 1024, actualLength: 512, status: 0 };
 * ```
 */
export interface IsoPacketDescriptor {
  /** Where the packet sits in the URB's buffer. */
  offset: number;
  /** Expected length. */
  length: number;
  /** Bytes moved. */
  actualLength: number;
  /** 0 or a negative errno. */
  status: number;
}

/**
 * USBIP_CMD_SUBMIT.
 *
 * @example
 * ```ts
 * import type { CmdSubmit } from "./protocol.ts";
 * const c: CmdSubmit = {
 *   command: "submit", seqnum: 7, devid: 0x10002, direction: "in", ep: 1, transferFlags: 0x200,
 *   transferBufferLength: 512, startFrame: 0, numberOfPackets: 0, interval: 0, setup: new Uint8Array(8),
 * };
 * ```
 */
export interface CmdSubmit {
  /** Discriminant. */
  command: "submit";
  /** Sequence number; the RET_SUBMIT carries the same. */
  seqnum: number;
  /** Device id given at attach (`busnum << 16 | devnum` for usbip-host). */
  devid: number;
  /** Direction. */
  direction: "in" | "out";
  /** Endpoint number, 0 to 15. */
  ep: number;
  /** USBIP_URB_* flags. */
  transferFlags: number;
  /** Buffer length: bytes asked for (IN) or sent (OUT). */
  transferBufferLength: number;
  /** Start frame (isochronous). */
  startFrame: number;
  /** Packets (isochronous); 0 or -1 (0xffffffff) for other transfers. */
  numberOfPackets: number;
  /** Polling interval. */
  interval: number;
  /** The setup packet (zeros when not a control transfer). */
  setup: Uint8Array;
  /** OUT data: `transferBufferLength` bytes. */
  data?: Uint8Array;
  /** Isochronous packets (when `numberOfPackets` > 0). */
  isoPackets?: IsoPacketDescriptor[];
}

/**
 * USBIP_CMD_UNLINK.
 *
 * @example
 * ```ts
 * import type { CmdUnlink } from "./protocol.ts";
 * const c: CmdUnlink = { command: "unlink", seqnum: 8, devid: 0x10002, direction: "out", ep: 0, unlinkSeqnum: 7 };
 * ```
 */
export interface CmdUnlink {
  /** Discriminant. */
  command: "unlink";
  /** Sequence number of this request; the RET_UNLINK carries the same. */
  seqnum: number;
  /** Device id. */
  devid: number;
  /** Direction (vhci_hcd sends 0). */
  direction: "in" | "out";
  /** Endpoint (vhci_hcd sends 0). */
  ep: number;
  /** Sequence number of the CMD_SUBMIT to unlink. */
  unlinkSeqnum: number;
}

/**
 * A command from the client (the side that imported the device).
 *
 * @example
 * ```ts
 * import type { UsbipCommand } from "./protocol.ts";
 * function seq(c: UsbipCommand): number { return c.seqnum; }
 * ```
 */
export type UsbipCommand = CmdSubmit | CmdUnlink;

/**
 * USBIP_RET_SUBMIT.
 *
 * @example
 * ```ts
 * import type { RetSubmit } from "./protocol.ts";
 * const r: RetSubmit = {
 *   command: "ret-submit", seqnum: 7, status: 0, actualLength: 2, startFrame: 0,
 *   numberOfPackets: 0, errorCount: 0, data: new Uint8Array([1, 2]),
 * };
 * ```
 */
export interface RetSubmit {
  /** Discriminant. */
  command: "ret-submit";
  /** The CMD_SUBMIT's sequence number. */
  seqnum: number;
  /** 0 or a negative errno. */
  status: number;
  /** Bytes moved. For isochronous URBs, the sum of the packets' actual lengths. */
  actualLength: number;
  /** Start frame (isochronous). */
  startFrame: number;
  /** Packets (isochronous), at most the command's; else 0 or -1. */
  numberOfPackets: number;
  /** Isochronous packets in error. */
  errorCount: number;
  /**
   * IN data, `actualLength` bytes. For isochronous IN the packets' actual
   * bytes back to back, without the gaps of short packets.
   */
  data?: Uint8Array;
  /** Isochronous packets, with the command's offsets. */
  isoPackets?: IsoPacketDescriptor[];
}

/**
 * USBIP_RET_UNLINK.
 *
 * @example
 * ```ts
 * import type { RetUnlink } from "./protocol.ts";
 * const r: RetUnlink = { command: "ret-unlink", seqnum: 8, status: -104 };
 * ```
 */
export interface RetUnlink {
  /** Discriminant. */
  command: "ret-unlink";
  /** The CMD_UNLINK's sequence number. */
  seqnum: number;
  /** -ECONNRESET if the URB was unlinked, 0 if it had completed already. */
  status: number;
}

/**
 * A reply from the server (the side that exports the device).
 *
 * @example
 * ```ts
 * import type { UsbipReturn } from "./protocol.ts";
 * function seq(r: UsbipReturn): number { return r.seqnum; }
 * ```
 */
export type UsbipReturn = RetSubmit | RetUnlink;

function basicHeader(
  out: Uint8Array,
  command: number,
  seqnum: number,
  devid: number,
  direction: number,
  ep: number,
): DataView {
  const v = view(out);
  v.setUint32(0, command);
  v.setUint32(4, seqnum >>> 0);
  v.setUint32(8, devid >>> 0);
  v.setUint32(12, direction);
  v.setUint32(16, ep >>> 0);
  return v;
}

function writeIsoDescriptors(
  v: DataView,
  at: number,
  packets: readonly IsoPacketDescriptor[],
): void {
  for (const p of packets) {
    v.setUint32(at, p.offset >>> 0);
    v.setUint32(at + 4, p.length >>> 0);
    v.setUint32(at + 8, p.actualLength >>> 0);
    v.setInt32(at + 12, p.status | 0);
    at += ISO_DESCRIPTOR_SIZE;
  }
}

function readIsoDescriptors(
  v: DataView,
  at: number,
  n: number,
): IsoPacketDescriptor[] {
  const out: IsoPacketDescriptor[] = [];
  for (let i = 0; i < n; i++, at += ISO_DESCRIPTOR_SIZE) {
    out.push({
      offset: v.getUint32(at),
      length: v.getUint32(at + 4),
      actualLength: v.getUint32(at + 8),
      status: v.getInt32(at + 12),
    });
  }
  return out;
}

/**
 * Encodes a CMD_SUBMIT (client side; used by tests and tools). OUT data must
 * be `transferBufferLength` bytes; `numberOfPackets` defaults to the number
 * of iso packets, or 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCmdSubmit } from "./protocol.ts";
 * const b = encodeCmdSubmit({
 *   seqnum: 2, devid: 1, direction: "out", ep: 2, transferFlags: 0,
 *   transferBufferLength: 3, data: new Uint8Array([7, 8, 9]),
 * });
 * assert.equal(b.length, 51);
 * ```
 */
export function encodeCmdSubmit(
  c:
    & Omit<
      CmdSubmit,
      "command" | "startFrame" | "numberOfPackets" | "interval" | "setup"
    >
    & {
      startFrame?: number;
      numberOfPackets?: number;
      interval?: number;
      setup?: Uint8Array;
    },
): Uint8Array {
  const out_ = c.direction === "out" ? c.transferBufferLength : 0;
  if (c.direction === "out" && (c.data?.length ?? 0) !== out_) {
    throw new RangeError(
      `OUT data must be transferBufferLength (${out_}) bytes, got ${
        c.data?.length ?? 0
      }`,
    );
  }
  const packets = c.isoPackets ?? [];
  const out = new Uint8Array(
    HEADER_SIZE + out_ + packets.length * ISO_DESCRIPTOR_SIZE,
  );
  const v = basicHeader(
    out,
    USBIP_CMD_SUBMIT,
    c.seqnum,
    c.devid,
    c.direction === "in" ? USBIP_DIR_IN : USBIP_DIR_OUT,
    c.ep,
  );
  v.setUint32(20, c.transferFlags >>> 0);
  v.setInt32(24, c.transferBufferLength);
  v.setInt32(28, c.startFrame ?? 0);
  v.setInt32(32, c.numberOfPackets ?? packets.length);
  v.setInt32(36, c.interval ?? 0);
  if (c.setup !== undefined) out.set(c.setup.subarray(0, 8), 40);
  if (out_ > 0) out.set(c.data!, HEADER_SIZE);
  writeIsoDescriptors(v, HEADER_SIZE + out_, packets);
  return out;
}

/**
 * Encodes a CMD_UNLINK (client side).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCmdUnlink } from "./protocol.ts";
 * const b = encodeCmdUnlink({ seqnum: 9, devid: 1, unlinkSeqnum: 8 });
 * assert.deepEqual([...b.subarray(0, 8)], [0, 0, 0, 2, 0, 0, 0, 9]);
 * assert.deepEqual([...b.subarray(20, 24)], [0, 0, 0, 8]);
 * ```
 */
export function encodeCmdUnlink(
  c: { seqnum: number; devid: number; unlinkSeqnum: number },
): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  const v = basicHeader(out, USBIP_CMD_UNLINK, c.seqnum, c.devid, 0, 0);
  v.setUint32(20, c.unlinkSeqnum >>> 0);
  return out;
}

/**
 * Decodes a client command (server side): CMD_SUBMIT with its OUT data and
 * iso descriptors, or CMD_UNLINK. Checks what usbip-host checks before it
 * allocates (stub_rx.c): command, direction, endpoint 0-15, a buffer length
 * from 0 to the limit, 0 to 1024 packets (or -1 for "not isochronous"), and
 * every packet inside the buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand, encodeCmdUnlink } from "./protocol.ts";
 * const d = decodeCommand(encodeCmdUnlink({ seqnum: 5, devid: 1, unlinkSeqnum: 4 }));
 * assert.ok("value" in d && d.value.command === "unlink" && d.value.unlinkSeqnum === 4);
 * ```
 */
export function decodeCommand(
  bytes: Uint8Array,
  limits?: DecodeLimits,
): Decoded<UsbipCommand> {
  if (bytes.length < HEADER_SIZE) return need(HEADER_SIZE);
  const v = view(bytes);
  const command = v.getUint32(0);
  const seqnum = v.getUint32(4);
  const devid = v.getUint32(8);
  const dir = v.getUint32(12);
  const ep = v.getUint32(16);
  if (command !== USBIP_CMD_SUBMIT && command !== USBIP_CMD_UNLINK) {
    throw new UsbipProtocolError(
      `unknown command ${
        hex(command)
      } in a URB header (seqnum ${seqnum}): expected CMD_SUBMIT 1 or CMD_UNLINK 2`,
    );
  }
  if (dir !== USBIP_DIR_OUT && dir !== USBIP_DIR_IN) {
    throw new UsbipProtocolError(
      `direction ${hex(dir)} of seqnum ${seqnum} is neither OUT (0) nor IN (1)`,
    );
  }
  const direction = dir === USBIP_DIR_IN ? "in" : "out";
  if (command === USBIP_CMD_UNLINK) {
    return {
      value: {
        command: "unlink",
        seqnum,
        devid,
        direction,
        ep,
        unlinkSeqnum: v.getUint32(20),
      },
      size: HEADER_SIZE,
    };
  }
  if (ep > 15) {
    throw new UsbipProtocolError(
      `endpoint ${ep} of seqnum ${seqnum} is not 0 to 15`,
    );
  }
  const transferFlags = v.getUint32(20);
  const length = v.getInt32(24);
  const startFrame = v.getInt32(28);
  const np = v.getInt32(32);
  const interval = v.getInt32(36);
  const max = maxTransfer(limits);
  if (length < 0 || length > max) {
    throw new UsbipProtocolError(
      `transfer_buffer_length ${length} of seqnum ${seqnum} is not 0 to ${max}`,
    );
  }
  if (np < -1 || np > MAX_ISO_PACKETS) {
    throw new UsbipProtocolError(
      `number_of_packets ${np} of seqnum ${seqnum} is not -1 to ${MAX_ISO_PACKETS}`,
    );
  }
  const dataSize = direction === "out" ? length : 0;
  const packets = Math.max(np, 0);
  const size = HEADER_SIZE + dataSize + packets * ISO_DESCRIPTOR_SIZE;
  if (bytes.length < size) return need(size);
  const cmd: CmdSubmit = {
    command: "submit",
    seqnum,
    devid,
    direction,
    ep,
    transferFlags,
    transferBufferLength: length,
    startFrame,
    numberOfPackets: np,
    interval,
    setup: bytes.slice(40, 48),
  };
  if (dataSize > 0) {
    cmd.data = bytes.slice(HEADER_SIZE, HEADER_SIZE + dataSize);
  }
  if (packets > 0) {
    const iso = readIsoDescriptors(v, HEADER_SIZE + dataSize, packets);
    for (const [i, p] of iso.entries()) {
      if (p.offset + p.length > length) {
        throw new UsbipProtocolError(
          `iso packet ${i} of seqnum ${seqnum} (offset ${p.offset}, length ${p.length}) ends past the ${length}-byte buffer`,
        );
      }
    }
    cmd.isoPackets = iso;
  }
  return { value: cmd, size };
}

/**
 * Encodes a RET_SUBMIT (server side). The server's `devid`, `direction` and
 * `ep` are 0, as the protocol says. `data` is the IN data exactly as it goes
 * on the wire (`actualLength` bytes; for isochronous IN, the packets' actual
 * bytes back to back). For isochronous URBs `actualLength` must equal the sum
 * of the packets' actual lengths: vhci_hcd drops the connection otherwise
 * (usbip_recv_iso).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRetSubmit } from "./protocol.ts";
 * const b = encodeRetSubmit({
 *   seqnum: 7, status: 0, actualLength: 2, startFrame: 0, numberOfPackets: 0,
 *   errorCount: 0, data: new Uint8Array([0xaa, 0xbb]),
 * });
 * assert.equal(b.length, 50);
 * assert.deepEqual([...b.subarray(48)], [0xaa, 0xbb]);
 * ```
 */
export function encodeRetSubmit(r: Omit<RetSubmit, "command">): Uint8Array {
  const data = r.data ?? new Uint8Array(0);
  if (data.length !== 0 && data.length !== r.actualLength) {
    throw new RangeError(
      `RET_SUBMIT data is ${data.length} bytes but actualLength is ${r.actualLength}`,
    );
  }
  const packets = r.isoPackets ?? [];
  if (packets.length > 0) {
    const sum = packets.reduce((a, p) => a + p.actualLength, 0);
    if (sum !== r.actualLength) {
      throw new RangeError(
        `iso packets' actual lengths add up to ${sum}, not actualLength ${r.actualLength}`,
      );
    }
  }
  const out = new Uint8Array(
    HEADER_SIZE + data.length + packets.length * ISO_DESCRIPTOR_SIZE,
  );
  const v = basicHeader(out, USBIP_RET_SUBMIT, r.seqnum, 0, 0, 0);
  v.setInt32(20, r.status);
  v.setInt32(24, r.actualLength);
  v.setInt32(28, r.startFrame);
  v.setInt32(32, r.numberOfPackets);
  v.setInt32(36, r.errorCount);
  out.set(data, HEADER_SIZE);
  writeIsoDescriptors(v, HEADER_SIZE + data.length, packets);
  return out;
}

/**
 * Encodes a RET_UNLINK (server side).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRetUnlink } from "./protocol.ts";
 * const b = encodeRetUnlink({ seqnum: 8, status: -104 });
 * assert.deepEqual([...b.subarray(0, 8)], [0, 0, 0, 4, 0, 0, 0, 8]);
 * assert.deepEqual([...b.subarray(20, 24)], [0xff, 0xff, 0xff, 0x98]);
 * ```
 */
export function encodeRetUnlink(
  r: { seqnum: number; status: number },
): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  const v = basicHeader(out, USBIP_RET_UNLINK, r.seqnum, 0, 0, 0);
  v.setInt32(20, r.status);
  return out;
}

/**
 * What a client knows of a URB it submitted, to decode the reply: the
 * RET_SUBMIT header does not say the direction or whether it is
 * isochronous.
 *
 * @example
 * ```ts
 * import type { SubmittedUrb } from "./protocol.ts";
 * const s: SubmittedUrb = { direction: "in", transferBufferLength: 512, numberOfPackets: 0 };
 * ```
 */
export interface SubmittedUrb {
  /** Direction of the CMD_SUBMIT. */
  direction: "in" | "out";
  /** Its transfer_buffer_length. */
  transferBufferLength: number;
  /** Its number of iso packets (0 when not isochronous). */
  numberOfPackets: number;
}

/**
 * Decodes a server reply (client side) exactly as vhci_hcd reads it
 * (vhci_rx.c, usbip_common.c): a RET_SUBMIT for an unknown seqnum, IN data
 * longer than the buffer, or iso packets whose actual lengths do not add up
 * to `actual_length` are protocol errors (vhci_hcd drops the connection for
 * each); a packet count outside 0 to the submitted count is taken as 0 (the
 * kernel's clamp), and then no descriptors are read. The returned `data` of
 * an isochronous IN is as on the wire (packed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReturn, encodeRetUnlink } from "./protocol.ts";
 * const d = decodeReturn(encodeRetUnlink({ seqnum: 3, status: 0 }), () => undefined);
 * assert.ok("value" in d && d.value.command === "ret-unlink");
 * ```
 */
export function decodeReturn(
  bytes: Uint8Array,
  lookup: (seqnum: number) => SubmittedUrb | undefined,
): Decoded<UsbipReturn> {
  if (bytes.length < HEADER_SIZE) return need(HEADER_SIZE);
  const v = view(bytes);
  const command = v.getUint32(0);
  const seqnum = v.getUint32(4);
  if (command === USBIP_RET_UNLINK) {
    return {
      value: { command: "ret-unlink", seqnum, status: v.getInt32(20) },
      size: HEADER_SIZE,
    };
  }
  if (command !== USBIP_RET_SUBMIT) {
    throw new UsbipProtocolError(
      `unknown command ${hex(command)} in a reply header (seqnum ${seqnum})`,
    );
  }
  const urb = lookup(seqnum);
  if (urb === undefined) {
    throw new UsbipProtocolError(
      `RET_SUBMIT for seqnum ${seqnum}, which is not pending`,
    );
  }
  const status = v.getInt32(20);
  const actualLength = v.getInt32(24);
  const startFrame = v.getInt32(28);
  let np = v.getInt32(32);
  const errorCount = v.getInt32(36);
  const iso = urb.numberOfPackets > 0;
  if (np < 0 || np > Math.max(urb.numberOfPackets, 0)) np = 0;
  const dataSize = urb.direction === "in" ? actualLength : 0;
  if (dataSize < 0 || dataSize > urb.transferBufferLength) {
    throw new UsbipProtocolError(
      `RET_SUBMIT seqnum ${seqnum}: actual_length ${actualLength} does not fit the ${urb.transferBufferLength}-byte buffer`,
    );
  }
  const packets = iso ? np : 0;
  const size = HEADER_SIZE + dataSize + packets * ISO_DESCRIPTOR_SIZE;
  if (bytes.length < size) return need(size);
  const ret: RetSubmit = {
    command: "ret-submit",
    seqnum,
    status,
    actualLength,
    startFrame,
    numberOfPackets: np,
    errorCount,
  };
  if (dataSize > 0) ret.data = bytes.slice(HEADER_SIZE, HEADER_SIZE + dataSize);
  if (packets > 0) {
    ret.isoPackets = readIsoDescriptors(v, HEADER_SIZE + dataSize, packets);
    const sum = ret.isoPackets.reduce((a, p) => a + p.actualLength, 0);
    if (sum !== actualLength) {
      throw new UsbipProtocolError(
        `RET_SUBMIT seqnum ${seqnum}: iso packets' actual lengths add up to ${sum}, not actual_length ${actualLength}`,
      );
    }
  }
  return { value: ret, size };
}
