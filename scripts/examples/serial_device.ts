/**
 * An example device to copy: a CDC ACM serial port (what Linux's cdc_acm
 * driver binds as /dev/ttyACM0) whose bytes written come back, as if TX
 * were wired to RX.
 *
 *     deno task vm --device scripts/examples/serial_device.ts -- deno task usb run recipes/serial-device.yaml
 *     deno task vm --device scripts/examples/serial_device.ts -- sh -c 'stty -F /dev/ttyACM0 raw -echo; ...'
 *
 * - an interface association groups the two interfaces into one function;
 * - interface 0 (Communications, ACM): the CDC functional descriptors as
 *   raw bytes (Header, Call Management, ACM, Union), the class requests
 *   SET_LINE_CODING, GET_LINE_CODING and SET_CONTROL_LINE_STATE, and an
 *   interrupt IN notification endpoint (0x83) that never has anything to say;
 * - interface 1 (CDC Data): bulk OUT 0x02 into a buffer, bulk IN 0x81 out
 *   of it.
 *
 * The default export is the definition (what `deno task vm --device` and
 * `usb serve` take); {@linkcode cdcAcm} makes a fresh one for each device,
 * with a {@linkcode SerialState} to watch what the host set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "../../src/emulated/mod.ts";
 * import definition from "./serial_device.ts";
 * const dev = defineDevice(definition);
 * assert.deepEqual(dev.summary.interfaces.map((i) => i.interfaceClass), [2, 10]);
 * dev.close();
 * ```
 *
 * @module
 */

import type {
  DeviceDefinition,
  EmulatedSpeed,
} from "../../src/emulated/mod.ts";

/**
 * CDC PSTN class requests (CDC PSTN 1.2 §6.3).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CdcRequest } from "./serial_device.ts";
 * assert.equal(CdcRequest.SetLineCoding, 0x20);
 * ```
 */
export const CdcRequest = {
  SetLineCoding: 0x20,
  GetLineCoding: 0x21,
  SetControlLineState: 0x22,
  SendBreak: 0x23,
} as const;

/**
 * The state of the port as the host set it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SerialState } from "./serial_device.ts";
 * const s: SerialState = { lineCoding: new Uint8Array(7), dtr: false, rts: false };
 * assert.equal(s.lineCoding.length, 7);
 * ```
 */
export interface SerialState {
  /** The 7-byte line coding: dwDTERate, bCharFormat, bParityType, bDataBits. */
  lineCoding: Uint8Array;
  /** Data Terminal Ready (SET_CONTROL_LINE_STATE bit 0). */
  dtr: boolean;
  /** Request To Send (bit 1). */
  rts: boolean;
  /** Bytes the host has written (bulk OUT 0x02) so far. */
  received?: number;
}

/**
 * A fresh CDC ACM loopback definition.
 *
 * @param options the speed (default `"full"`), and a state object to observe
 * @returns the definition
 *
 * @example Line coding set by the host is read back
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "../../src/emulated/mod.ts";
 * import { cdcAcm, type SerialState } from "./serial_device.ts";
 * const state: SerialState = { lineCoding: new Uint8Array(7), dtr: false, rts: false };
 * const dev = defineDevice(cdcAcm({ state }));
 * const signal = new AbortController().signal;
 * await dev.handleUrb({ endpoint: 0, direction: "out", setup: new Uint8Array([0, 9, 1, 0, 0, 0, 0, 0]), length: 0, transferFlags: 0, signal });
 * await dev.handleUrb({ endpoint: 0, direction: "out", setup: new Uint8Array([0x21, 0x22, 3, 0, 0, 0, 0, 0]), length: 0, transferFlags: 0, signal });
 * assert.ok(state.dtr && state.rts);
 * dev.close();
 * ```
 */
export function cdcAcm(
  options: { speed?: EmulatedSpeed; state?: SerialState } = {},
): DeviceDefinition {
  const speed = options.speed ?? "full";
  const state = options.state ??
    { lineCoding: new Uint8Array(7), dtr: false, rts: false };
  // 115200 baud, 1 stop bit, no parity, 8 data bits.
  state.lineCoding = new Uint8Array([0x00, 0xc2, 0x01, 0x00, 0, 0, 8]);
  const loop = new TransformStream<Uint8Array, Uint8Array>(
    undefined,
    undefined,
    { highWaterMark: 64 },
  );
  const fast = speed === "high" || speed === "super";
  state.received = 0;
  // What the host writes is counted, then looped back.
  const counted = new WritableStream<Uint8Array>({
    async write(chunk) {
      state.received = (state.received ?? 0) + chunk.length;
      const w = loop.writable.getWriter();
      try {
        await w.write(chunk);
      } finally {
        w.releaseLock();
      }
    },
  });

  return {
    speed,
    vendorId: 0x1209, // pid.codes test VID/PID
    productId: 0x0002,
    manufacturer: "usbkit",
    product: "CDC ACM loopback example",
    serialNumber: "ACM0001",
    configurations: [{
      maxPowerMilliamps: 100,
      associations: [{
        firstInterface: 0,
        interfaceCount: 2,
        name: "Loopback serial port",
      }],
      interfaces: [
        {
          class: 0x02, // Communications
          subclass: 0x02, // Abstract Control Model
          protocol: 0x01, // AT commands (V.250)
          extra: [
            [5, 0x24, 0x00, 0x10, 0x01], // Header: bcdCDC 1.10
            [5, 0x24, 0x01, 0x00, 0x01], // Call Management: data interface 1
            [4, 0x24, 0x02, 0x02], // ACM: line coding and serial state
            [5, 0x24, 0x06, 0x00, 0x01], // Union: control 0, subordinate 1
          ],
          endpoints: [{
            address: 0x83,
            type: "interrupt",
            maxPacketSize: 10, // a SERIAL_STATE notification
            interval: fast ? 9 : 32, // 32 ms
          }],
          control: (req) => {
            if (req.requestType !== "class") return "stall";
            switch (req.request) {
              case CdcRequest.SetLineCoding:
                if (req.direction !== "out" || req.data.length !== 7) {
                  return "stall";
                }
                state.lineCoding = req.data.slice();
                return;
              case CdcRequest.GetLineCoding:
                return req.direction === "in" ? state.lineCoding : "stall";
              case CdcRequest.SetControlLineState:
                state.dtr = (req.value & 1) !== 0;
                state.rts = (req.value & 2) !== 0;
                return;
              case CdcRequest.SendBreak:
                return;
              default:
                return "stall";
            }
          },
        },
        {
          class: 0x0a, // CDC Data
          endpoints: [
            { address: 0x81, type: "bulk", source: loop.readable },
            { address: 0x02, type: "bulk", sink: counted },
          ],
        },
      ],
    }],
  };
}

/**
 * The CDC ACM loopback example at full speed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import definition from "./serial_device.ts";
 * assert.equal(definition.speed, "full");
 * ```
 */
const definition: DeviceDefinition = cdcAcm();
export default definition;
