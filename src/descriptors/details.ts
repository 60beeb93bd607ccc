/**
 * What `usb describe` reads from an open device beyond the sysfs
 * `descriptors` file: every string the descriptors point at (the
 * `iInterface` of every alternate setting, the strings of configurations
 * that are not active, IAD `iFunction`s, class-specific strings such as UAC
 * `iTerminal` and CDC `iMacAddress`), the BOS, the device qualifier and
 * other-speed configurations of high-speed devices, the hub descriptor and
 * port status of hubs, the device status, and HID report descriptors where
 * no driver holds the interface.
 *
 * Each read that fails is recorded in `errors` and the rest goes on: a
 * device that stalls GET_DESCRIPTOR(BOS) still gets its strings.
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import type { DeviceInfo } from "../enumeration.ts";
import { type BosDescriptor, parseBos } from "./bos.ts";
import { decodeReportDescriptor, type ReportItem } from "./class/hid.ts";
import { parseConfiguration } from "./configuration.ts";
import { type DeviceQualifier, parseDeviceQualifier } from "./device.ts";
import {
  decodeDeviceStatus,
  decodePortStatus,
  type DeviceStatus,
  type HubDescriptor,
  parseHubDescriptor,
  type PortStatus,
  USB_DT_HUB,
  USB_DT_SS_HUB,
} from "./hub.ts";
import type { ConfigurationDescriptor, RawDescriptor } from "./types.ts";

/**
 * What {@linkcode readDeviceDetails} found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeviceDetails } from "./details.ts";
 * const none: DeviceDetails = {
 *   strings: {}, bos: undefined, landingPage: undefined, qualifier: undefined, otherSpeedConfigurations: [],
 *   hub: undefined, ports: [], status: undefined, reportDescriptors: [], errors: [],
 * };
 * assert.equal(Object.keys(none.strings).length, 0);
 * ```
 */
export interface DeviceDetails {
  /** Every string the descriptors point at, by index. */
  readonly strings: Readonly<Record<number, string>>;
  /** The BOS, for devices with `bcdUSB` 2.01 or later that answered. */
  readonly bos: BosDescriptor | undefined;
  /** The WebUSB landing page URL (WebUSB §4.3.2, GET_URL), when the BOS has one. */
  readonly landingPage: string | undefined;
  /** The device qualifier of a high-speed device. */
  readonly qualifier: DeviceQualifier | undefined;
  /** The other-speed configurations of a high-speed device (type 7). */
  readonly otherSpeedConfigurations: readonly ConfigurationDescriptor[];
  /** A hub's descriptor. */
  readonly hub: HubDescriptor | undefined;
  /** A hub's ports, port 1 first. */
  readonly ports: readonly PortStatus[];
  /** GET_STATUS(device). */
  readonly status: DeviceStatus | undefined;
  /** HID report descriptors that could be read (no driver held the interface). */
  readonly reportDescriptors: readonly {
    readonly interfaceNumber: number;
    readonly raw: Uint8Array;
    readonly items: readonly ReportItem[];
  }[];
  /** What could not be read, and why, one sentence each. */
  readonly errors: readonly string[];
}

/**
 * The device methods the reads need: a `Device` from `open` has them.
 * Declared here by shape, so that this module does not import device.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DetailsSource } from "./details.ts";
 * const none: DetailsSource = {
 *   controlTransferIn: () => Promise.resolve({ status: "stall", data: new Uint8Array(0) }),
 *   getStringDescriptor: () => Promise.reject(new Error("no strings")),
 *   claimInterface: () => Promise.resolve({ release: () => Promise.resolve() }),
 * };
 * assert.ok(typeof none.controlTransferIn === "function");
 * ```
 */
export interface DetailsSource {
  /** A control IN transfer (`Device.controlTransferIn`). */
  controlTransferIn(
    setup: {
      requestType: "standard" | "class" | "vendor";
      recipient: "device" | "interface" | "endpoint" | "other";
      request: number;
      value: number;
      index: number;
    },
    length: number,
    options?: { timeout?: number },
  ): Promise<{ status: string; data: Uint8Array }>;
  /** A string descriptor (`Device.getStringDescriptor`). */
  getStringDescriptor(
    index: number,
    langId?: number,
    options?: { timeout?: number },
  ): Promise<string>;
  /** Claims an interface without detaching a driver (`Device.claimInterface`). */
  claimInterface(n: number): Promise<{ release(): Promise<void> }>;
}

const GET_STATUS = 0;
const GET_DESCRIPTOR = 6;
const DT_BOS = 0x0f;
const DT_DEVICE_QUALIFIER = 0x06;
const DT_OTHER_SPEED_CONFIG = 0x07;
const DT_REPORT = 0x22;
const USB_CLASS_HUB = 0x09;
const USB_CLASS_HID = 0x03;
const TIMEOUT = { timeout: 2000 };
/** WebUSB's GET_URL request index (WebUSB §4.3, table 4). */
const WEBUSB_GET_URL = 2;

/**
 * Reads everything `usb describe` shows that sysfs does not have. The
 * device must be open; nothing is changed on it (an interface claimed to
 * read a HID report descriptor is released at once; a driver is never
 * detached).
 *
 * @param device the open device
 * @param info the device as listed
 * @returns what could be read; `errors` says what could not
 *
 * @example In the guest: the bench's SourceSink gadget has strings and, at high speed, a qualifier
 * ```ts ignore
 * // Needs a device: `usb describe` calls it, which tests/device/descriptors_lsusb_test.ts
 * // runs on the bench in the guest; tests/unit/descriptor_details_test.ts runs it
 * // against devices written in TypeScript.
 * import { listDevices, open, readDeviceDetails } from "../../mod.ts";
 * const info = (await listDevices()).find((d) => d.productId === 0xa4a0)!;
 * await using dev = await open(info);
 * const details = await readDeviceDetails(dev, info);
 * console.log(details.strings, details.qualifier);
 * ```
 */
export async function readDeviceDetails(
  device: DetailsSource,
  info: DeviceInfo,
): Promise<DeviceDetails> {
  const errors: string[] = [];
  const why = (e: unknown) =>
    e instanceof UsbError ? `${e.code}: ${e.message}` : String(e);
  const getDescriptor = async (
    what: string,
    value: number,
    length: number,
    recipient: "device" | "interface" = "device",
    index = 0,
    requestType: "standard" | "class" = "standard",
    stallIsAnswer = false,
  ): Promise<Uint8Array | undefined> => {
    try {
      const r = await device.controlTransferIn(
        {
          requestType,
          recipient,
          request: GET_DESCRIPTOR,
          value,
          index,
        },
        length,
        TIMEOUT,
      );
      if (r.status !== "ok") {
        if (!(stallIsAnswer && r.status === "stall")) {
          errors.push(`${what}: the device answered ${r.status}`);
        }
        return undefined;
      }
      return r.data;
    } catch (e) {
      errors.push(`${what}: ${why(e)}`);
      return undefined;
    }
  };
  /** A descriptor with a 16-bit total length at offset 2: header first, then all of it. */
  const getTotal = async (
    what: string,
    value: number,
    headerLength: number,
  ) => {
    const head = await getDescriptor(what, value, headerLength);
    if (head === undefined || head.length < 4) return undefined;
    const total = head[2]! | (head[3]! << 8);
    return total <= head.length
      ? head
      : await getDescriptor(what, value, total);
  };

  // GET_STATUS(device).
  let status: DeviceStatus | undefined;
  try {
    const r = await device.controlTransferIn(
      {
        requestType: "standard",
        recipient: "device",
        request: GET_STATUS,
        value: 0,
        index: 0,
      },
      2,
      TIMEOUT,
    );
    if (r.status === "ok") status = decodeDeviceStatus(r.data);
    else errors.push(`device status: the device answered ${r.status}`);
  } catch (e) {
    errors.push(`device status: ${why(e)}`);
  }

  // BOS: USB 2.01 (LPM) and later devices have one (USB 3.2 §9.6.2).
  let bos: BosDescriptor | undefined;
  if (info.usbVersion >= 0x0201) {
    const bytes = await getTotal("BOS descriptor", DT_BOS << 8, 5);
    if (bytes !== undefined) {
      try {
        bos = parseBos(bytes, { mode: "lenient" });
      } catch (e) {
        errors.push(`BOS descriptor: ${why(e)}`);
      }
    }
  }

  // The WebUSB landing page: GET_URL, a vendor request with the platform
  // capability's bVendorCode, wValue iLandingPage, wIndex 2 (WebUSB §4.3).
  let landingPage: string | undefined;
  for (const cap of bos?.capabilities ?? []) {
    if (cap.platform !== "webusb") continue;
    const field = (n: string) => cap.fields.find((f) => f.name === n)?.value;
    const code = field("bVendorCode");
    const index = field("iLandingPage");
    if (typeof code !== "number" || typeof index !== "number" || index === 0) {
      continue;
    }
    try {
      const r = await device.controlTransferIn(
        {
          requestType: "vendor",
          recipient: "device",
          request: code,
          value: index,
          index: WEBUSB_GET_URL,
        },
        255,
        TIMEOUT,
      );
      const d = r.data;
      // The URL descriptor: bLength, bDescriptorType 3, bScheme, URL (UTF-8).
      if (r.status === "ok" && d.length >= 3 && d[1] === 3) {
        const scheme = ({ 0: "http://", 1: "https://", 255: "" } as Record<
          number,
          string
        >)[d[2]!] ?? "";
        landingPage = scheme +
          new TextDecoder().decode(d.subarray(3, Math.min(d[0]!, d.length)));
      } else {
        errors.push(`WebUSB landing page: the device answered ${r.status}`);
      }
    } catch (e) {
      errors.push(`WebUSB landing page: ${why(e)}`);
    }
  }

  // Device qualifier and other-speed configurations (USB 2.0 §9.6.2, §9.6.4).
  let qualifier: DeviceQualifier | undefined;
  const otherSpeedConfigurations: ConfigurationDescriptor[] = [];
  if (info.speed === "high") {
    // A device that runs at high speed only stalls it (USB 2.0 §9.6.2):
    // that is an answer, not an error.
    const bytes = await getDescriptor(
      "device qualifier",
      DT_DEVICE_QUALIFIER << 8,
      10,
      "device",
      0,
      "standard",
      true,
    );
    if (bytes !== undefined) {
      try {
        qualifier = parseDeviceQualifier(bytes, { mode: "lenient" });
      } catch (e) {
        errors.push(`device qualifier: ${why(e)}`);
      }
    }
    for (let i = 0; i < (qualifier?.numConfigurations ?? 0); i++) {
      const c = await getTotal(
        `other-speed configuration ${i}`,
        (DT_OTHER_SPEED_CONFIG << 8) | i,
        9,
      );
      if (c === undefined) continue;
      try {
        otherSpeedConfigurations.push(
          parseConfiguration(c, {
            mode: "lenient",
            speed: "full",
          }),
        );
      } catch (e) {
        errors.push(`other-speed configuration ${i}: ${why(e)}`);
      }
    }
  }

  // Hub descriptor and port status (USB 2.0 §11.24.2, USB 3.2 §10.16.2).
  let hub: HubDescriptor | undefined;
  const ports: PortStatus[] = [];
  if (info.deviceClass === USB_CLASS_HUB) {
    const superSpeed = info.usbVersion >= 0x0300;
    const type = superSpeed ? USB_DT_SS_HUB : USB_DT_HUB;
    const bytes = await getDescriptor(
      "hub descriptor",
      type << 8,
      superSpeed ? 12 : 71,
      "device",
      0,
      "class",
    );
    if (bytes !== undefined) {
      try {
        hub = parseHubDescriptor(bytes);
      } catch (e) {
        errors.push(`hub descriptor: ${why(e)}`);
      }
    }
    for (let port = 1; port <= (hub?.numPorts ?? 0); port++) {
      try {
        const r = await device.controlTransferIn(
          {
            requestType: "class",
            recipient: "other",
            request: GET_STATUS,
            value: 0,
            index: port,
          },
          4,
          TIMEOUT,
        );
        if (r.status === "ok") ports.push(decodePortStatus(r.data, superSpeed));
        else errors.push(`port ${port} status: the hub answered ${r.status}`);
      } catch (e) {
        errors.push(`port ${port} status: ${why(e)}`);
      }
    }
  }

  // Every string index the descriptors mention.
  const indexes = new Set<number>();
  const d = info.device;
  for (
    const i of [
      d.manufacturerStringIndex,
      d.productStringIndex,
      d.serialNumberStringIndex,
    ]
  ) indexes.add(i);
  const fromRaw = (list: readonly RawDescriptor[]) => {
    for (const r of list) {
      for (const f of r.decoded?.fields ?? []) {
        if (f.stringIndex && typeof f.value === "number") indexes.add(f.value);
      }
    }
  };
  for (const c of [...info.configurations, ...otherSpeedConfigurations]) {
    indexes.add(c.configurationStringIndex);
    fromRaw(c.extra);
    for (const a of c.associations) {
      indexes.add(a.functionStringIndex);
      fromRaw(a.extra);
    }
    for (const intf of c.interfaces) {
      for (const alt of intf.alternates) {
        indexes.add(alt.interfaceStringIndex);
        fromRaw(alt.extra);
        for (const ep of alt.endpoints) fromRaw(ep.extra);
      }
    }
  }
  for (const cap of bos?.capabilities ?? []) {
    for (const f of cap.fields) {
      if (f.stringIndex && typeof f.value === "number") indexes.add(f.value);
    }
  }
  indexes.delete(0);
  const strings: Record<number, string> = {};
  for (const i of [...indexes].sort((a, b) => a - b)) {
    try {
      strings[i] = await device.getStringDescriptor(i, undefined, TIMEOUT);
    } catch (e) {
      errors.push(`string ${i}: ${why(e)}`);
      if (e instanceof UsbError && e.code === "not-supported") break;
    }
  }

  // HID report descriptors, where usbkit can claim the interface (no driver).
  const reportDescriptors: DeviceDetails["reportDescriptors"][number][] = [];
  const active = info.configurations.find((c) =>
    c.configurationValue === info.activeConfiguration
  );
  for (const intf of active?.interfaces ?? []) {
    const alt = intf.alternates[0];
    if (alt === undefined || alt.interfaceClass !== USB_CLASS_HID) continue;
    const hid = alt.extra.find((x) => x.descriptorType === 0x21);
    const lengths = hid?.decoded?.fields ?? [];
    let length = 0;
    for (let k = 0; k + 1 < lengths.length; k++) {
      if (
        lengths[k]!.name === "bDescriptorType" &&
        lengths[k]!.value === DT_REPORT &&
        lengths[k + 1]!.name === "wDescriptorLength"
      ) length = Number(lengths[k + 1]!.value);
    }
    if (length === 0) continue;
    const sys = info.interfaces.find((i) =>
      i.interfaceNumber === intf.interfaceNumber
    );
    if (sys?.driver !== undefined && sys.driver !== "usbfs") {
      errors.push(
        `HID report descriptor of interface ${intf.interfaceNumber}: driver ${sys.driver} holds it (detach it to read it)`,
      );
      continue;
    }
    let claimed:
      | Awaited<ReturnType<DetailsSource["claimInterface"]>>
      | undefined;
    try {
      claimed = await device.claimInterface(intf.interfaceNumber);
      const raw = await getDescriptor(
        `HID report descriptor of interface ${intf.interfaceNumber}`,
        DT_REPORT << 8,
        length,
        "interface",
        intf.interfaceNumber,
      );
      if (raw !== undefined) {
        reportDescriptors.push({
          interfaceNumber: intf.interfaceNumber,
          raw,
          items: decodeReportDescriptor(raw),
        });
      }
    } catch (e) {
      errors.push(
        `HID report descriptor of interface ${intf.interfaceNumber}: ${why(e)}`,
      );
    } finally {
      await claimed?.release().catch(() => {});
    }
  }

  return {
    strings,
    bos,
    landingPage,
    qualifier,
    otherSpeedConfigurations,
    hub,
    ports,
    status,
    reportDescriptors,
    errors,
  };
}
