/**
 * The BOS descriptor (Binary device Object Store, USB 3.2 §9.6.2) and its
 * device capabilities: USB 2.0 Extension, SuperSpeed USB Device, platform
 * capabilities and raw ones. Layouts from include/uapi/linux/usb/ch9.h.
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import { describeValue } from "../validate.ts";
import type {
  BosDefinition,
  EmulatedSpeed,
  SuperSpeedCapabilityDefinition,
  Usb2ExtensionDefinition,
} from "./definition.ts";
import {
  checkBytes,
  checkFields,
  checkFlag,
  checkInt,
  checkObject,
} from "./check.ts";

/** `bDevCapabilityType` codes (ch9.h). */
const CAP_USB2_EXT = 0x02; // USB_CAP_TYPE_EXT
const CAP_SUPERSPEED = 0x03; // USB_SS_CAP_TYPE
const CAP_PLATFORM = 0x05; // platform capability (USB 3.2 table 9-14)
const DT_BOS = 0x0f;
const DT_DEVICE_CAPABILITY = 0x10;

const SPEED_BITS: Record<EmulatedSpeed, number> = {
  low: 0,
  full: 1,
  high: 2,
  super: 3,
};

/**
 * Parses a UUID written as text into the 16 bytes of a platform capability,
 * in the GUID byte order those descriptors use: the first three fields
 * little-endian, the rest as written (WebUSB, Microsoft OS 2.0).
 *
 * @param path where the UUID is in the definition, for messages
 * @param uuid `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`
 * @returns 16 bytes
 * @throws {UsbError} `invalid-argument` for anything else
 *
 * @example The WebUSB platform capability UUID
 * ```ts
 * import assert from "node:assert/strict";
 * import { uuidBytes } from "./bos.ts";
 * assert.deepEqual(
 *   [...uuidBytes("uuid", "3408b638-09a9-47a0-8bfd-a0768815b665")],
 *   [0x38, 0xb6, 0x08, 0x34, 0xa9, 0x09, 0xa0, 0x47, 0x8b, 0xfd, 0xa0, 0x76, 0x88, 0x15, 0xb6, 0x65],
 * );
 * ```
 */
export function uuidBytes(path: string, uuid: unknown): Uint8Array {
  if (
    typeof uuid !== "string" ||
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(
      uuid,
    )
  ) {
    throw new UsbError(
      "invalid-argument",
      `${path} must be a UUID such as "3408b638-09a9-47a0-8bfd-a0768815b665", got ${
        describeValue(uuid)
      }`,
    );
  }
  const hex = uuid.replaceAll("-", "");
  const b = Array.from(
    { length: 16 },
    (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
  );
  const swap = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  return new Uint8Array(swap.map((i) => b[i]!));
}

/**
 * Validates a BOS definition and encodes the whole BOS descriptor set:
 * the 5-byte header with `wTotalLength` and `bNumDeviceCaps`, then the
 * capabilities in order (USB 2.0 Extension, SuperSpeed, platform, raw). A
 * SuperSpeed device always gets the USB 2.0 Extension (LPM) and SuperSpeed
 * capabilities, which USB 3.2 §9.6.2 requires; with no definition and below
 * SuperSpeed there is no BOS.
 *
 * @param definition the BOS definition, if any
 * @param speed the device speed
 * @param path where the definition is, for messages
 * @returns the bytes, or undefined when the device has no BOS
 * @throws {UsbError} `invalid-argument` naming the field
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeBos } from "./bos.ts";
 * const bos = encodeBos({ usb2Extension: true }, "high", "bos")!;
 * assert.deepEqual([...bos], [5, 0x0f, 12, 0, 1, 7, 0x10, 0x02, 0x02, 0, 0, 0]);
 * assert.equal(encodeBos(undefined, "full", "bos"), undefined);
 * ```
 */
export function encodeBos(
  definition: BosDefinition | undefined,
  speed: EmulatedSpeed,
  path: string,
): Uint8Array | undefined {
  if (definition === undefined && speed !== "super") return undefined;
  const def = definition === undefined
    ? {}
    : checkObject<BosDefinition>(path, definition);
  checkFields(path, def, [
    "usb2Extension",
    "superSpeed",
    "platform",
    "capabilities",
  ]);
  const caps: Uint8Array[] = [];

  let ext = def.usb2Extension;
  if (ext === undefined && speed === "super") ext = true;
  if (ext !== undefined && ext !== false) {
    caps.push(usb2Extension(`${path}.usb2Extension`, ext));
  }

  let ss = def.superSpeed;
  if (speed === "super" && (ss === undefined || ss === false)) {
    if (ss === false) {
      throw new UsbError(
        "invalid-argument",
        `${path}.superSpeed is false, but a SuperSpeed device must have the SuperSpeed USB Device capability (USB 3.2 §9.6.2)`,
      );
    }
    ss = true;
  }
  if (ss !== undefined && ss !== false) {
    caps.push(superSpeed(`${path}.superSpeed`, ss));
  }

  const platform = def.platform ?? [];
  if (!Array.isArray(platform)) {
    throw new UsbError(
      "invalid-argument",
      `${path}.platform must be an array, got ${describeValue(platform)}`,
    );
  }
  platform.forEach((p, i) => {
    const at = `${path}.platform[${i}]`;
    const o = checkObject<{ uuid: string; data?: unknown }>(at, p);
    checkFields(at, o, ["uuid", "data"]);
    const uuid = uuidBytes(`${at}.uuid`, o.uuid);
    const data = o.data === undefined
      ? new Uint8Array(0)
      : checkBytes(`${at}.data`, o.data);
    if (data.length > 255 - 20) {
      throw new UsbError(
        "invalid-argument",
        `${at}.data is ${data.length} bytes; a platform capability holds at most 235 (bLength is one byte)`,
      );
    }
    caps.push(
      new Uint8Array([
        20 + data.length,
        DT_DEVICE_CAPABILITY,
        CAP_PLATFORM,
        0,
        ...uuid,
        ...data,
      ]),
    );
  });

  const raw = def.capabilities ?? [];
  if (!Array.isArray(raw)) {
    throw new UsbError(
      "invalid-argument",
      `${path}.capabilities must be an array, got ${describeValue(raw)}`,
    );
  }
  raw.forEach((c, i) => {
    const at = `${path}.capabilities[${i}]`;
    const o = checkObject<{ type: number; data: unknown }>(at, c);
    checkFields(at, o, ["type", "data"]);
    const type = checkInt(`${at}.type`, o.type, 0, 255);
    const data = checkBytes(`${at}.data`, o.data);
    if (data.length > 255 - 3) {
      throw new UsbError(
        "invalid-argument",
        `${at}.data is ${data.length} bytes; a capability holds at most 252 (bLength is one byte)`,
      );
    }
    caps.push(
      new Uint8Array([3 + data.length, DT_DEVICE_CAPABILITY, type, ...data]),
    );
  });

  if (caps.length > 255) {
    throw new UsbError(
      "invalid-argument",
      `${path} has ${caps.length} capabilities; bNumDeviceCaps is one byte (at most 255)`,
    );
  }
  const total = 5 + caps.reduce((n, c) => n + c.length, 0);
  if (total > 0xffff) {
    throw new UsbError(
      "invalid-argument",
      `${path} is ${total} bytes; wTotalLength is 16 bits (at most 65535)`,
    );
  }
  const out = new Uint8Array(total);
  out.set([5, DT_BOS, total & 0xff, total >> 8, caps.length]);
  let at = 5;
  for (const c of caps) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function usb2Extension(
  path: string,
  value: Usb2ExtensionDefinition | true,
): Uint8Array {
  const def = value === true
    ? {}
    : checkObject<Usb2ExtensionDefinition>(path, value);
  checkFields(path, def, ["lpm", "besl", "baselineBesl", "deepBesl"]);
  let attributes = 0;
  if (checkFlag(`${path}.lpm`, def.lpm, true)) attributes |= 1 << 1; // USB_LPM_SUPPORT
  if (checkFlag(`${path}.besl`, def.besl, false)) attributes |= 1 << 2; // USB_BESL_SUPPORT
  if (def.baselineBesl !== undefined) {
    const v = checkInt(`${path}.baselineBesl`, def.baselineBesl, 0, 15);
    attributes |= (1 << 3) | (v << 8); // USB_BESL_BASELINE_VALID, USB_SET_BESL_BASELINE
  }
  if (def.deepBesl !== undefined) {
    const v = checkInt(`${path}.deepBesl`, def.deepBesl, 0, 15);
    attributes |= (1 << 4) | (v << 12); // USB_BESL_DEEP_VALID, USB_SET_BESL_DEEP
  }
  return new Uint8Array([
    7, // USB_DT_USB_EXT_CAP_SIZE
    DT_DEVICE_CAPABILITY,
    CAP_USB2_EXT,
    attributes & 0xff,
    (attributes >> 8) & 0xff,
    0,
    0,
  ]);
}

function superSpeed(
  path: string,
  value: SuperSpeedCapabilityDefinition | true,
): Uint8Array {
  const def = value === true
    ? {}
    : checkObject<SuperSpeedCapabilityDefinition>(path, value);
  checkFields(path, def, [
    "ltm",
    "speeds",
    "functionality",
    "u1ExitLatency",
    "u2ExitLatency",
  ]);
  const ltm = checkFlag(`${path}.ltm`, def.ltm, false);
  const speeds = def.speeds ?? ["low", "full", "high", "super"];
  if (!Array.isArray(speeds)) {
    throw new UsbError(
      "invalid-argument",
      `${path}.speeds must be an array of "low", "full", "high", "super", got ${
        describeValue(speeds)
      }`,
    );
  }
  let speedBits = 0;
  speeds.forEach((s, i) => {
    const bit = SPEED_BITS[s as EmulatedSpeed];
    if (bit === undefined || !Object.hasOwn(SPEED_BITS, s)) {
      throw new UsbError(
        "invalid-argument",
        `${path}.speeds[${i}] must be "low", "full", "high" or "super", got ${
          describeValue(s)
        }`,
      );
    }
    speedBits |= 1 << bit;
  });
  const functionality = def.functionality ?? "full";
  const fBit = SPEED_BITS[functionality];
  if (fBit === undefined || !Object.hasOwn(SPEED_BITS, functionality)) {
    throw new UsbError(
      "invalid-argument",
      `${path}.functionality must be "low", "full", "high" or "super", got ${
        describeValue(functionality)
      }`,
    );
  }
  // USB 3.2 table 9-15: bU1DevExitLat at most 0x0A, wU2DevExitLat at most 0x07FF.
  const u1 = checkInt(`${path}.u1ExitLatency`, def.u1ExitLatency ?? 1, 0, 10);
  const u2 = checkInt(
    `${path}.u2ExitLatency`,
    def.u2ExitLatency ?? 500,
    0,
    2047,
  );
  return new Uint8Array([
    10, // USB_DT_USB_SS_CAP_SIZE
    DT_DEVICE_CAPABILITY,
    CAP_SUPERSPEED,
    ltm ? 1 << 1 : 0, // USB_LTM_SUPPORT
    speedBits & 0xff,
    speedBits >> 8,
    fBit,
    u1,
    u2 & 0xff,
    u2 >> 8,
  ]);
}
