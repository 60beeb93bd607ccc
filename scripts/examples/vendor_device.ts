/**
 * An example device to copy: a vendor-specific USB device written in
 * TypeScript, which the virtual bench plugs into its kernel:
 *
 *     deno task vm --device scripts/examples/vendor_device.ts -- deno task usb run recipes/vendor-device.yaml
 *     deno task usb serve scripts/examples/vendor_device.ts   # on a machine with vhci-hcd, as root
 *
 * - bulk IN 0x81: a pattern source, the SourceSink gadget's (f_sourcesink.c
 *   with `pattern=1`, what usbtest checks): byte i of every packet is
 *   `i % 63`, restarting at each packet (`(i % maxPacketSize) % 63` in a
 *   transfer);
 * - bulk OUT 0x02 and bulk IN 0x82: a loopback, what is written comes back,
 *   chunk by chunk (up to 64 chunks are buffered, then OUT transfers wait);
 * - interrupt IN 0x83: an event after each loopback write, the total bytes
 *   received so far (4 bytes, little-endian); it waits when there is
 *   nothing to report;
 * - vendor requests on endpoint 0: 0x01 reads the firmware version (2
 *   bytes), 0x02 sets the LED (wValue 0 or 1), 0x03 reads the LED (1 byte),
 *   0x04 reads the loopback byte counter (4 bytes); anything else stalls.
 *
 * The default export is the definition (what `deno task vm --device` and
 * `usb serve` take); {@linkcode vendorBulk} makes a fresh one (its own
 * loopback buffer and counters) for each device, at any speed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "../../src/emulated/mod.ts";
 * import definition from "./vendor_device.ts";
 * const dev = defineDevice(definition);
 * assert.equal(dev.summary.vendorId, 0x1209);
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
 * The vendor requests of {@linkcode vendorBulk} (`bRequest`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VendorRequest } from "./vendor_device.ts";
 * assert.equal(VendorRequest.GetCounter, 4);
 * ```
 */
export const VendorRequest = {
  GetVersion: 0x01,
  SetLed: 0x02,
  GetLed: 0x03,
  GetCounter: 0x04,
} as const;

/**
 * Byte `i` of a transfer from the pattern source 0x81: the SourceSink
 * gadget's pattern 1, `(i % maxPacketSize) % 63`.
 *
 * @param i the offset in the transfer
 * @param maxPacketSize the endpoint's packet size (64, 512 or 1024)
 * @returns the byte
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patternByte } from "./vendor_device.ts";
 * assert.equal(patternByte(63, 512), 0);
 * assert.equal(patternByte(512, 512), 0);
 * assert.equal(patternByte(513, 512), 1);
 * ```
 */
export function patternByte(i: number, maxPacketSize: number): number {
  return (i % maxPacketSize) % 63;
}

/**
 * A fresh vendor bulk device definition.
 *
 * @param options the speed (default `"high"`) and the serial number
 *   (default `"0001"`)
 * @returns the definition
 *
 * @example The pattern source at full speed restarts at every 64-byte packet
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "../../src/emulated/mod.ts";
 * import { vendorBulk } from "./vendor_device.ts";
 * const dev = defineDevice(vendorBulk({ speed: "full" }));
 * const signal = new AbortController().signal;
 * await dev.handleUrb({ endpoint: 0, direction: "out", setup: new Uint8Array([0, 9, 1, 0, 0, 0, 0, 0]), length: 0, transferFlags: 0, signal });
 * const r = await dev.handleUrb({ endpoint: 1, direction: "in", length: 128, transferFlags: 0, signal });
 * assert.equal(r.data![62], 62);
 * assert.equal(r.data![63], 0);
 * assert.equal(r.data![64], 0);
 * assert.equal(r.data![65], 1);
 * dev.close();
 * ```
 */
export function vendorBulk(
  options: { speed?: EmulatedSpeed; serialNumber?: string } = {},
): DeviceDefinition {
  let led = 0;
  let received = 0;
  // The loopback buffer: OUT chunks go in, IN transfers take them out.
  const loop = new TransformStream<Uint8Array, Uint8Array>(
    undefined,
    undefined,
    { highWaterMark: 64 },
  );
  // Interrupt events: a waiting IN transfer is woken by the next write.
  let wake: (() => void) | undefined;
  let pending = false;

  return {
    speed: options.speed ?? "high",
    vendorId: 0x1209, // pid.codes test VID/PID
    productId: 0x0001,
    deviceVersion: 0x0100,
    manufacturer: "usbkit",
    product: "Vendor bulk example",
    serialNumber: options.serialNumber ?? "0001",
    interfaces: [{
      class: 0xff,
      name: "Pattern, loopback, events",
      endpoints: [
        {
          address: 0x81,
          type: "bulk",
          onIn: (length, { maxPacketSize }) =>
            Uint8Array.from(
              { length },
              (_, i) => patternByte(i, maxPacketSize),
            ),
        },
        {
          address: 0x02,
          type: "bulk",
          sink: new WritableStream({
            async write(chunk) {
              received += chunk.length;
              pending = true;
              wake?.();
              const w = loop.writable.getWriter();
              try {
                await w.write(chunk);
              } finally {
                w.releaseLock();
              }
            },
          }),
        },
        { address: 0x82, type: "bulk", source: loop.readable },
        {
          address: 0x83,
          type: "interrupt",
          maxPacketSize: 8,
          onIn: async (_length, { signal }) => {
            while (!pending) {
              await new Promise<void>((resolve, reject) => {
                wake = resolve;
                signal.addEventListener("abort", () => reject(signal.reason), {
                  once: true,
                });
              });
            }
            pending = false;
            const event = new Uint8Array(4);
            new DataView(event.buffer).setUint32(0, received, true);
            return event;
          },
        },
      ],
    }],
    control: (req) => {
      if (req.requestType !== "vendor" || req.recipient !== "device") {
        return "stall";
      }
      switch (req.request) {
        case VendorRequest.GetVersion:
          return req.direction === "in" ? [0x00, 0x01] : "stall";
        case VendorRequest.SetLed:
          if (req.direction !== "out" || req.value > 1) return "stall";
          led = req.value;
          return;
        case VendorRequest.GetLed:
          return req.direction === "in" ? [led] : "stall";
        case VendorRequest.GetCounter: {
          if (req.direction !== "in") return "stall";
          const out = new Uint8Array(4);
          new DataView(out.buffer).setUint32(0, received, true);
          return out;
        }
        default:
          return "stall";
      }
    },
  };
}

/**
 * The vendor bulk example at high speed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import definition from "./vendor_device.ts";
 * assert.equal(definition.speed, "high");
 * ```
 */
const definition: DeviceDefinition = vendorBulk();
export default definition;
