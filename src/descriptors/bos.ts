/**
 * The BOS descriptor (Binary device Object Store, USB 3.2 §9.6.2) and its
 * device capabilities (§9.6.2.1-9.6.2.5): USB 2.0 Extension, SuperSpeed,
 * SuperSpeedPlus, Container ID and platform capabilities, including the
 * WebUSB and Microsoft OS 2.0 ones. The BOS is not in the sysfs
 * `descriptors` file; it is read with GET_DESCRIPTOR(BOS) (see
 * details.ts). The encoder side is src/emulated/bos.ts.
 *
 * @module
 */

import { FieldList, guid } from "./class/fields.ts";
import { hex2, invalid, LENIENT_HINT, Reader } from "./reader.ts";
import type { DecodedField, DescriptorWarning, ParseOptions } from "./types.ts";

/** `USB_DT_BOS_SIZE`, ch9.h. */
const USB_DT_BOS_SIZE = 5;
const DT_BOS = 0x0f;
const DT_DEVICE_CAPABILITY = 0x10;

/** `bDevCapabilityType` codes (ch9.h, USB 3.2 table 9-14). */
export const CapabilityType = {
  WirelessUsb: 0x01,
  Usb20Extension: 0x02,
  SuperSpeed: 0x03,
  ContainerId: 0x04,
  Platform: 0x05,
  PowerDelivery: 0x06,
  BatteryInfo: 0x07,
  PdConsumerPort: 0x08,
  PdProviderPort: 0x09,
  SuperSpeedPlus: 0x0a,
  PrecisionTimeMeasurement: 0x0b,
  WirelessUsbExt: 0x0c,
  Billboard: 0x0d,
  Authentication: 0x0e,
  BillboardEx: 0x0f,
  ConfigurationSummary: 0x10,
} as const;

/** The WebUSB platform capability UUID (WebUSB §4.3.1). */
export const WEBUSB_UUID = "3408b638-09a9-47a0-8bfd-a0768815b665";
/** The Microsoft OS 2.0 platform capability UUID (MS OS 2.0 descriptors spec, table 3). */
export const MS_OS_20_UUID = "d8dd60df-4589-4cc7-9cd2-659d9e648a9f";

/**
 * One device capability descriptor of a BOS, decoded into fields (named
 * as in USB 3.2 §9.6.2 and as `lsusb -v` names them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBos } from "../descriptors.ts";
 * const bos = parseBos(new Uint8Array([5, 0x0f, 12, 0, 1, 7, 0x10, 2, 0x02, 0, 0, 0]));
 * const cap = bos.capabilities[0]!;
 * assert.ok(cap.name === "USB 2.0 Extension Device Capability" && cap.capabilityType === 2);
 * assert.equal(cap.fields.find((f) => f.name === "bmAttributes")!.note, "Link Power Management (LPM) Supported");
 * ```
 */
export interface DeviceCapability {
  /** `bDevCapabilityType`. */
  readonly capabilityType: number;
  /** Its name as lsusb titles it ("SuperSpeed USB Device Capability", "Platform Device Capability"...). */
  readonly name: string;
  /** The fields, header included; only the header for an unknown type. */
  readonly fields: readonly DecodedField[];
  /** Platform capabilities: the UUID, lowercase, without braces. */
  readonly uuid: string | undefined;
  /** Platform capabilities: "webusb", "ms-os-2.0", or undefined for another platform. */
  readonly platform: "webusb" | "ms-os-2.0" | undefined;
  /** Where it starts in the bytes given to the parser. */
  readonly offset: number;
  /** Its bytes. */
  readonly raw: Uint8Array;
}

/**
 * A BOS descriptor and its capabilities.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBos } from "../descriptors.ts";
 * const bos = parseBos(new Uint8Array([5, 0x0f, 5, 0, 0]));
 * assert.ok(bos.capabilities.length === 0 && bos.totalLength === 5);
 * ```
 */
export interface BosDescriptor {
  /** `wTotalLength` as declared. */
  readonly totalLength: number;
  /** `bNumDeviceCaps` as declared. */
  readonly numCapabilities: number;
  /** The capabilities, in order. */
  readonly capabilities: readonly DeviceCapability[];
  /** What lenient mode passed over (a bad length, a count mismatch). */
  readonly warnings: readonly DescriptorWarning[];
  /** The whole BOS as parsed. */
  readonly raw: Uint8Array;
}

/**
 * Parses a BOS descriptor with its capabilities.
 *
 * Strict mode wants `wTotalLength` equal to the bytes given, exact
 * capability lengths where the specification fixes them, and
 * `bNumDeviceCaps` capabilities. Lenient mode does what the kernel does
 * (drivers/usb/core/config.c, usb_get_bos_descriptor): it stops at a
 * capability whose length is below 3 or runs past the end, and keeps going
 * past count mismatches, with warnings.
 *
 * @param bytes the GET_DESCRIPTOR(BOS) data
 * @param options the parse mode
 * @throws {UsbError} `"invalid-descriptor"` naming the offset and the problem
 *
 * @example A WebUSB platform capability
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBos } from "../descriptors.ts";
 * const bos = parseBos(new Uint8Array([
 *   5, 0x0f, 29, 0, 1,
 *   24, 0x10, 5, 0, 0x38, 0xb6, 0x08, 0x34, 0xa9, 0x09, 0xa0, 0x47, 0x8b, 0xfd, 0xa0, 0x76, 0x88, 0x15, 0xb6, 0x65,
 *   0x00, 0x01, 1, 1,
 * ]));
 * const p = bos.capabilities[0]!;
 * assert.ok(p.platform === "webusb" && p.fields.find((f) => f.name === "bVendorCode")!.value === 1);
 * ```
 */
export function parseBos(
  bytes: Uint8Array,
  options: ParseOptions = {},
): BosDescriptor {
  const r = new Reader(bytes, (options.mode ?? "strict") === "strict");
  if (bytes.length < USB_DT_BOS_SIZE) {
    throw invalid(
      0,
      `truncated BOS descriptor: ${bytes.length} of ${USB_DT_BOS_SIZE} bytes`,
    );
  }
  if (r.u8(1) !== DT_BOS) {
    throw invalid(
      0,
      `expected a BOS descriptor (type 0x0f), found type 0x${hex2(r.u8(1))}`,
    );
  }
  const len = r.u8(0);
  if (len < USB_DT_BOS_SIZE) {
    throw invalid(0, `BOS descriptor bLength is ${len}, expected 5`);
  }
  r.lengthOk(0, "BOS", len, [USB_DT_BOS_SIZE], "5 (USB_DT_BOS_SIZE)");
  const totalLength = r.u16(2);
  const numCapabilities = r.u8(4);
  if (r.strict && totalLength !== bytes.length) {
    throw invalid(
      2,
      `wTotalLength is ${totalLength} but ${bytes.length} byte(s) were given`,
      LENIENT_HINT,
    );
  }
  const limit = Math.min(Math.max(totalLength, len), bytes.length);
  const capabilities: DeviceCapability[] = [];
  let pos = Math.min(len, limit);
  while (pos < limit) {
    const left = limit - pos;
    const cl = left >= 1 ? r.u8(pos) : 0;
    if (left < 3 || cl < 3 || cl > left) {
      const what = left < 3
        ? `${left} stray byte(s) at the end of the BOS`
        : `device capability bLength ${cl} (${left} byte(s) left)`;
      if (r.strict) throw invalid(pos, what, LENIENT_HINT);
      r.warn(pos, `${what}, ignoring the rest`);
      break;
    }
    const type = r.u8(pos + 1);
    if (type !== DT_DEVICE_CAPABILITY) {
      const what = `descriptor type 0x${
        hex2(type)
      } in the BOS, expected 0x10 (device capability)`;
      if (r.strict) throw invalid(pos, what, LENIENT_HINT);
      r.warn(pos, `${what}, skipping`);
      pos += cl;
      continue;
    }
    capabilities.push(capabilityAt(r, pos, cl));
    pos += cl;
  }
  if (capabilities.length !== numCapabilities) {
    const what =
      `bNumDeviceCaps is ${numCapabilities} but ${capabilities.length} capabilit(ies) follow`;
    if (r.strict) throw invalid(4, what, LENIENT_HINT);
    r.warn(4, what);
  }
  return {
    totalLength,
    numCapabilities,
    capabilities,
    warnings: r.warnings,
    raw: r.slice(0, pos),
  };
}

/** Fixed capability sizes (ch9.h USB_DT_*_CAP_SIZE), checked in strict mode. */
const SIZES: Readonly<Record<number, number>> = {
  [CapabilityType.Usb20Extension]: 7,
  [CapabilityType.SuperSpeed]: 10,
  [CapabilityType.ContainerId]: 20,
};

function capabilityAt(r: Reader, at: number, len: number): DeviceCapability {
  const raw = r.slice(at, at + len);
  const type = raw[2]!;
  const exact = SIZES[type];
  if (exact !== undefined && len !== exact) {
    if (r.strict) {
      throw invalid(
        at,
        `device capability type 0x${
          hex2(type)
        } has bLength ${len}, expected ${exact}`,
        LENIENT_HINT,
      );
    }
    if (len < exact) r.warn(at, `device capability of length ${len} is short`);
  }
  const f = new FieldList(raw);
  f.header();
  f.u8("bDevCapabilityType", 2);
  let name = `Device Capability 0x${hex2(type)}`;
  let uuid: string | undefined;
  let platform: DeviceCapability["platform"];
  switch (type) {
    case CapabilityType.Usb20Extension:
      name = "USB 2.0 Extension Device Capability";
      f.u32("bmAttributes", 3, (v) => {
        const notes: string[] = [];
        if (v & 0x02) notes.push("Link Power Management (LPM) Supported");
        if (v & 0x04) notes.push("BESL Link Power Management (LPM) Supported");
        if (v & 0x08) {
          notes.push(`Baseline BESL value ${BESL_US[(v >> 8) & 0xf]} us`);
        }
        if (v & 0x10) {
          notes.push(`Deep BESL value ${BESL_US[(v >> 12) & 0xf]} us`);
        }
        return notes.length === 0 ? undefined : notes.join(", ");
      });
      break;
    case CapabilityType.SuperSpeed:
      name = "SuperSpeed USB Device Capability";
      f.u8(
        "bmAttributes",
        3,
        (v) =>
          v & 0x02 ? "Latency Tolerance Messages (LTM) Supported" : undefined,
      );
      f.u16("wSpeedsSupported", 4, (v) =>
        [
          "Device can operate at Low Speed (1Mbps)",
          "Device can operate at Full Speed (12Mbps)",
          "Device can operate at High Speed (480Mbps)",
          "Device can operate at SuperSpeed (5Gbps)",
        ].filter((_, i) => (v >> i) & 1).join(", ") || undefined);
      f.u8("bFunctionalitySupport", 6, (v) =>
        [
          "Lowest fully-functional device speed is Low Speed (1Mbps)",
          "Lowest fully-functional device speed is Full Speed (12Mbps)",
          "Lowest fully-functional device speed is High Speed (480Mbps)",
          "Lowest fully-functional device speed is SuperSpeed (5Gbps)",
        ][v] ?? "Lowest fully-functional device speed is at an unknown speed!");
      f.u8("bU1DevExitLat", 7, (v) => `Less than ${v} micro seconds`);
      f.u16("bU2DevExitLat", 8, (v) => `Less than ${v} micro seconds`);
      break;
    case CapabilityType.ContainerId:
      name = "Container ID Device Capability";
      f.u8("bReserved", 3);
      if (len >= 20) {
        uuid = guid(raw.subarray(4, 20)).slice(1, -1);
        f.text("ContainerID", `{${uuid}}`);
      }
      break;
    case CapabilityType.Platform: {
      name = "Platform Device Capability";
      f.u8("bReserved", 3);
      if (len < 20) break;
      uuid = guid(raw.subarray(4, 20)).slice(1, -1);
      f.text("PlatformCapabilityUUID", `{${uuid}}`);
      if (uuid === WEBUSB_UUID) {
        platform = "webusb";
        f.bcd("bcdVersion", 20);
        f.u8("bVendorCode", 22);
        f.str("iLandingPage", 23);
      } else if (uuid === MS_OS_20_UUID) {
        platform = "ms-os-2.0";
        // One or more descriptor set information structures of 8 bytes.
        for (let i = 0, at = 20; at + 8 <= len; i++, at += 8) {
          f.u32(`dwWindowsVersion(${i})`, at, windowsVersion);
          f.u16(`wMSOSDescriptorSetTotalLength(${i})`, at + 4);
          f.u8(`bMS_VendorCode(${i})`, at + 6);
          f.u8(`bAltEnumCode(${i})`, at + 7);
        }
      } else {
        for (let at = 20; at < len; at++) {
          f.u8(`CapabilityData[${at - 20}]`, at);
        }
      }
      break;
    }
    case CapabilityType.SuperSpeedPlus: {
      name = "SuperSpeedPlus USB Device Capability";
      f.u8("bReserved", 3);
      const attrs = f.u32(
        "bmAttributes",
        4,
        (v) =>
          `Sublink Speed Attribute count ${
            (v & 0x1f) + 1
          }, Sublink Speed ID count ${((v >> 5) & 0xf) + 1}`,
      ) ?? 0;
      f.u16(
        "wFunctionalitySupport",
        8,
        (v) =>
          `Min functional Speed Attribute ID: ${
            v & 0xf
          }, Min functional RX lanes: ${
            (v >> 8) & 0xf
          }, Min functional TX lanes: ${(v >> 12) & 0xf}`,
      );
      f.u16("wReserved", 10);
      const n = (attrs & 0x1f) + 1;
      for (let i = 0; i < n && 12 + 4 * i + 4 <= len; i++) {
        f.u32(`bmSublinkSpeedAttr[${i}]`, 12 + 4 * i, sublinkSpeed);
      }
      break;
    }
    case CapabilityType.PrecisionTimeMeasurement:
      name = "Precision Time Measurement Device Capability";
      break;
    case CapabilityType.Billboard:
      name = "Billboard Capability";
      break;
    case CapabilityType.ConfigurationSummary:
      name = "Configuration Summary Device Capability";
      break;
  }
  return {
    capabilityType: type,
    name,
    fields: f.fields,
    uuid,
    platform,
    offset: at,
    raw,
  };
}

/** BESL values in microseconds (USB 2.0 LPM ECN, table X-X1). */
const BESL_US = [
  125,
  150,
  200,
  300,
  400,
  500,
  1000,
  2000,
  3000,
  4000,
  5000,
  6000,
  7000,
  8000,
  9000,
  10000,
];

/** A Windows version number (NTDDI_*) as text, for MS OS 2.0. */
function windowsVersion(v: number): string | undefined {
  return v === 0x06030000 ? "Windows 8.1 or later" : undefined;
}

/** A sublink speed attribute (USB 3.2 §9.6.2.5), as lsusb describes it. */
function sublinkSpeed(v: number): string {
  const exponent = ["bits", "Kb", "Mb", "Gb"][(v >> 4) & 3];
  const mantissa = v >>> 16;
  const type = (v >> 6) & 3;
  const symmetric = (type & 1) === 0 ? "Symmetric" : "Asymmetric";
  const dir = (type & 2) === 0 ? "RX" : "TX";
  const protocol = ((v >> 14) & 3) === 0 ? "SuperSpeed" : "SuperSpeedPlus";
  return `Speed Attribute ID: ${
    v & 0xf
  } ${mantissa}${exponent}/s ${symmetric} ${dir} ${protocol}`;
}
