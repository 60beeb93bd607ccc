/**
 * An example device to copy: a USB HID boot keyboard written in TypeScript.
 * Linux's usbhid and hid-generic bind it and its key presses arrive as input
 * events (/dev/input/eventN), as from any keyboard:
 *
 *     deno task vm --device scripts/examples/keyboard_device.ts -- COMMAND
 *
 * - interface 0: HID, boot subclass, keyboard protocol, with the boot
 *   keyboard's report descriptor (HID 1.11 appendix B.1 and E.6): 8-byte
 *   input reports (modifiers, reserved, six key usages) on interrupt IN
 *   0x81 every 10 ms, a 1-byte LED output report by SET_REPORT;
 * - the class requests GET_REPORT, SET_REPORT, GET_IDLE, SET_IDLE,
 *   GET_PROTOCOL and SET_PROTOCOL.
 *
 * {@linkcode keyboard} returns the definition and the means to type: each
 * {@linkcode Keyboard.press} queues a report with the keys down, each
 * {@linkcode Keyboard.release} one with none; the host takes one report
 * per interrupt IN transfer (usbhid polls while the input device is open,
 * so nothing is sent before someone reads the events).
 *
 * The default export is a keyboard that types "usbkit" and Enter once the
 * host starts polling it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "../../src/emulated/mod.ts";
 * import definition from "./keyboard_device.ts";
 * const dev = defineDevice(definition);
 * assert.deepEqual(dev.summary.interfaces[0], { interfaceClass: 3, interfaceSubclass: 1, interfaceProtocol: 1 });
 * dev.close();
 * ```
 *
 * @module
 */

import {
  type DeviceDefinition,
  type EmulatedSpeed,
  hidDescriptor,
} from "../../src/emulated/mod.ts";

/**
 * The boot keyboard report descriptor (HID 1.11 appendix E.6): modifiers
 * (8 bits), a reserved byte, 5 LED bits (output) and 3 bits of padding, six
 * key usages 0..101.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BOOT_KEYBOARD_REPORT } from "./keyboard_device.ts";
 * assert.equal(BOOT_KEYBOARD_REPORT.length, 63);
 * ```
 */
// deno-fmt-ignore
export const BOOT_KEYBOARD_REPORT: Uint8Array = new Uint8Array([
  0x05, 0x01, // Usage Page (Generic Desktop)
  0x09, 0x06, // Usage (Keyboard)
  0xa1, 0x01, // Collection (Application)
  0x05, 0x07, //   Usage Page (Key Codes)
  0x19, 0xe0, //   Usage Minimum (224)
  0x29, 0xe7, //   Usage Maximum (231)
  0x15, 0x00, //   Logical Minimum (0)
  0x25, 0x01, //   Logical Maximum (1)
  0x75, 0x01, //   Report Size (1)
  0x95, 0x08, //   Report Count (8)
  0x81, 0x02, //   Input (Data, Variable, Absolute): modifiers
  0x95, 0x01, //   Report Count (1)
  0x75, 0x08, //   Report Size (8)
  0x81, 0x01, //   Input (Constant): reserved byte
  0x95, 0x05, //   Report Count (5)
  0x75, 0x01, //   Report Size (1)
  0x05, 0x08, //   Usage Page (LEDs)
  0x19, 0x01, //   Usage Minimum (1)
  0x29, 0x05, //   Usage Maximum (5)
  0x91, 0x02, //   Output (Data, Variable, Absolute): LEDs
  0x95, 0x01, //   Report Count (1)
  0x75, 0x03, //   Report Size (3)
  0x91, 0x01, //   Output (Constant): padding
  0x95, 0x06, //   Report Count (6)
  0x75, 0x08, //   Report Size (8)
  0x15, 0x00, //   Logical Minimum (0)
  0x25, 0x65, //   Logical Maximum (101)
  0x05, 0x07, //   Usage Page (Key Codes)
  0x19, 0x00, //   Usage Minimum (0)
  0x29, 0x65, //   Usage Maximum (101)
  0x81, 0x00, //   Input (Data, Array): the keys down
  0xc0, // End Collection
]);

/**
 * HID class requests (HID 1.11 §7.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HidRequest } from "./keyboard_device.ts";
 * assert.equal(HidRequest.SetReport, 0x09);
 * ```
 */
export const HidRequest = {
  GetReport: 0x01,
  GetIdle: 0x02,
  GetProtocol: 0x03,
  SetReport: 0x09,
  SetIdle: 0x0a,
  SetProtocol: 0x0b,
} as const;

/**
 * The left Shift bit of the modifier byte.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LEFT_SHIFT } from "./keyboard_device.ts";
 * assert.equal(LEFT_SHIFT, 0x02);
 * ```
 */
export const LEFT_SHIFT = 0x02;

// Usages 0x27 (0) to 0x38 (/), unshifted and shifted; "" where no
// character goes (Escape, Backspace, the non-US # key).
const PLAIN_KEYS = [
  "0",
  "\n",
  "",
  "",
  "\t",
  " ",
  "-",
  "=",
  "[",
  "]",
  "\\",
  "",
  ";",
  "'",
  "`",
  ",",
  ".",
  "/",
];
const SHIFTED_KEYS = [
  ")",
  "",
  "",
  "",
  "",
  "",
  "_",
  "+",
  "{",
  "}",
  "|",
  "",
  ":",
  '"',
  "~",
  "<",
  ">",
  "?",
];

/**
 * The key usage (HID Usage Tables, keyboard page 0x07) and modifiers that
 * type a character on a US layout, or undefined for a character it does not
 * know: letters, digits, space, Enter (`"\n"`), Tab and ``-=[]\;'`,./`` with
 * their shifted forms.
 *
 * @param ch one character
 * @returns `[usage, modifiers]`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyFor, LEFT_SHIFT } from "./keyboard_device.ts";
 * assert.deepEqual(keyFor("a"), [0x04, 0]);
 * assert.deepEqual(keyFor("A"), [0x04, LEFT_SHIFT]);
 * assert.deepEqual(keyFor("\n"), [0x28, 0]);
 * assert.equal(keyFor("é"), undefined);
 * ```
 */
export function keyFor(ch: string): [number, number] | undefined {
  if (ch.length !== 1) return undefined;
  const c = ch.charCodeAt(0);
  if (c >= 0x61 && c <= 0x7a) return [0x04 + c - 0x61, 0];
  if (c >= 0x41 && c <= 0x5a) return [0x04 + c - 0x41, LEFT_SHIFT];
  if (c >= 0x31 && c <= 0x39) return [0x1e + c - 0x31, 0];
  let i = "!@#$%^&*(".indexOf(ch);
  if (i >= 0) return [0x1e + i, LEFT_SHIFT];
  i = PLAIN_KEYS.indexOf(ch);
  if (i >= 0) return [0x27 + i, 0];
  i = SHIFTED_KEYS.indexOf(ch);
  if (i >= 0) return [0x27 + i, LEFT_SHIFT];
  return undefined;
}

/**
 * A keyboard: its definition and what it types.
 *
 * @example
 * ```ts
 * import type { Keyboard } from "./keyboard_device.ts";
 * function typeHello(k: Keyboard) {
 *   k.type("hello\n");
 * }
 * ```
 */
export interface Keyboard {
  /** The device definition, for `defineDevice`. */
  readonly definition: DeviceDefinition;
  /** Queues a report with these keys (usages, at most 6) down and these modifiers. */
  press(usages: readonly number[], modifiers?: number): void;
  /** Queues a report with every key up. */
  release(): void;
  /** Queues a press and a release for each character (see {@linkcode keyFor}). */
  type(text: string): void;
  /** Reports queued and not yet taken by the host. */
  readonly pending: number;
  /** The LED output report the host last sent (bit 0 Num Lock, 1 Caps Lock, 2 Scroll Lock). */
  readonly leds: number;
  /** The protocol the host chose: 0 boot, 1 report (the default). */
  readonly protocol: number;
}

/**
 * A fresh keyboard.
 *
 * @param options `speed` (default `"full"`, as most keyboards), `text` to
 *   type once the host starts polling, `serialNumber` (default `"KBD0001"`)
 * @returns the keyboard
 *
 * @example A report per press and per release
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "../../src/emulated/mod.ts";
 * import { keyboard } from "./keyboard_device.ts";
 * const kbd = keyboard();
 * const dev = defineDevice(kbd.definition);
 * const signal = new AbortController().signal;
 * await dev.handleUrb({ endpoint: 0, direction: "out", setup: new Uint8Array([0, 9, 1, 0, 0, 0, 0, 0]), length: 0, transferFlags: 0, signal });
 * kbd.type("A");
 * const down = await dev.handleUrb({ endpoint: 1, direction: "in", length: 8, transferFlags: 0, signal });
 * assert.deepEqual([...down.data!], [0x02, 0, 0x04, 0, 0, 0, 0, 0]);
 * const up = await dev.handleUrb({ endpoint: 1, direction: "in", length: 8, transferFlags: 0, signal });
 * assert.deepEqual([...up.data!], [0, 0, 0, 0, 0, 0, 0, 0]);
 * dev.close();
 * ```
 */
export function keyboard(
  options: { speed?: EmulatedSpeed; text?: string; serialNumber?: string } = {},
): Keyboard {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let leds = 0;
  let protocol = 1;
  let idle = 0;
  let current: Uint8Array = new Uint8Array(8);
  let pendingText = options.text ?? "";

  const push = (report: Uint8Array) => {
    queue.push(report);
    const w = wake;
    wake = undefined;
    w?.();
  };
  const k: Keyboard = {
    definition: undefined as unknown as DeviceDefinition,
    press(usages, modifiers = 0) {
      if (usages.length > 6) throw new RangeError("at most 6 keys at once");
      const r = new Uint8Array(8);
      r[0] = modifiers & 0xff;
      r.set(usages.map((u) => u & 0xff), 2);
      push(r);
    },
    release() {
      push(new Uint8Array(8));
    },
    type(text) {
      for (const ch of text) {
        const key = keyFor(ch);
        if (key === undefined) {
          throw new RangeError(`no key types ${JSON.stringify(ch)}`);
        }
        k.press([key[0]], key[1]);
        k.release();
      }
    },
    get pending() {
      return queue.length;
    },
    get leds() {
      return leds;
    },
    get protocol() {
      return protocol;
    },
  };
  const definition: DeviceDefinition = {
    speed: options.speed ?? "full",
    vendorId: 0x1209, // pid.codes test VID/PID
    productId: 0x0003,
    manufacturer: "usbkit",
    product: "Keyboard example",
    serialNumber: options.serialNumber ?? "KBD0001",
    interfaces: [{
      class: 0x03, // HID
      subclass: 0x01, // boot interface
      protocol: 0x01, // keyboard
      extra: [hidDescriptor(BOOT_KEYBOARD_REPORT)],
      requestDescriptors: [{ type: 0x22, data: BOOT_KEYBOARD_REPORT }],
      endpoints: [{
        address: 0x81,
        type: "interrupt",
        maxPacketSize: 8,
        interval: options.speed === "high" || options.speed === "super"
          ? 7 // 2^(7-1) microframes: 8 ms
          : 10, // ms
        onIn: async (_length, { signal }) => {
          if (pendingText !== "") {
            const text = pendingText;
            pendingText = "";
            k.type(text);
          }
          while (queue.length === 0) {
            await new Promise<void>((resolve, reject) => {
              wake = resolve;
              signal.addEventListener("abort", () => reject(signal.reason), {
                once: true,
              });
            });
          }
          current = queue.shift()!;
          return current;
        },
      }],
      control: (req) => {
        if (req.requestType !== "class") return "stall";
        switch (req.request) {
          case HidRequest.GetReport: // the input report now
            return req.value >> 8 === 1 ? current : "stall";
          case HidRequest.SetReport: // output report: the LEDs
            if (req.value >> 8 !== 2 || req.data.length < 1) return "stall";
            leds = req.data[0]!;
            return;
          case HidRequest.GetIdle:
            return [idle];
          case HidRequest.SetIdle:
            idle = req.value >> 8;
            return;
          case HidRequest.GetProtocol:
            return [protocol];
          case HidRequest.SetProtocol:
            protocol = req.value & 1;
            return;
          default:
            return "stall";
        }
      },
    }],
  };
  (k as { definition: DeviceDefinition }).definition = definition;
  return k;
}

/**
 * A full-speed keyboard that types "usbkit" and Enter once the host polls it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import definition from "./keyboard_device.ts";
 * assert.equal(definition.productId, 0x0003);
 * ```
 */
const definition: DeviceDefinition = keyboard({ text: "usbkit\n" }).definition;
export default definition;
