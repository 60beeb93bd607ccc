/**
 * {@linkcode TestHost}: drives an emulated device the way a host would,
 * URB by URB, with no transport and no kernel. Use it to unit-test a
 * device definition: every method builds the URB, calls
 * {@linkcode EmulatedDevice.handleUrb} and returns the result as it is.
 *
 * @module
 */

import { parseDescriptors } from "../descriptors.ts";
import type { DeviceDescriptors } from "../descriptors.ts";
import type { ControlRequest } from "./handlers.ts";
import type { EmulatedDevice, EmulatedUrbResult } from "./urb.ts";

/**
 * A control request to send, WebUSB style.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ControlSetup } from "./test_host.ts";
 * const s: ControlSetup = { requestType: "vendor", recipient: "device", request: 1, value: 0, index: 0 };
 * assert.equal(s.request, 1);
 * ```
 */
export interface ControlSetup {
  /** Bits 6:5 of `bmRequestType`. */
  requestType: ControlRequest["requestType"];
  /** Bits 4:0 of `bmRequestType`. */
  recipient: ControlRequest["recipient"];
  /** `bRequest`. */
  request: number;
  /** `wValue`. */
  value: number;
  /** `wIndex`. */
  index: number;
}

/**
 * Per-URB options.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { UrbOptions } from "./test_host.ts";
 * const o: UrbOptions = { transferFlags: 1, signal: new AbortController().signal };
 * assert.equal(o.transferFlags, 1);
 * ```
 */
export interface UrbOptions {
  /** Aborting it unlinks the URB. */
  signal?: AbortSignal | undefined;
  /** `transfer_flags` (see {@linkcode TransferFlags}). */
  transferFlags?: number | undefined;
}

const TYPE_BITS = { standard: 0, class: 1, vendor: 2, reserved: 3 } as const;
const RECIPIENT_BITS = {
  device: 0,
  interface: 1,
  endpoint: 2,
  other: 3,
} as const;

/**
 * The 8-byte setup packet for a request.
 *
 * @param direction data stage direction
 * @param setup the request
 * @param length `wLength`
 * @returns the bytes
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { setupPacket } from "./test_host.ts";
 * const s = setupPacket("in", { requestType: "standard", recipient: "device", request: 6, value: 0x0100, index: 0 }, 18);
 * assert.deepEqual([...s], [0x80, 6, 0x00, 0x01, 0, 0, 18, 0]);
 * ```
 */
export function setupPacket(
  direction: "in" | "out",
  setup: ControlSetup,
  length: number,
): Uint8Array {
  const bm = (direction === "in" ? 0x80 : 0) |
    (TYPE_BITS[setup.requestType] << 5) | RECIPIENT_BITS[setup.recipient];
  return new Uint8Array([
    bm,
    setup.request,
    setup.value & 0xff,
    (setup.value >> 8) & 0xff,
    setup.index & 0xff,
    (setup.index >> 8) & 0xff,
    length & 0xff,
    (length >> 8) & 0xff,
  ]);
}

/**
 * Drives an {@linkcode EmulatedDevice} like a host.
 *
 * @example Enumerate, then read from a bulk endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "./device.ts";
 * import { TestHost } from "./test_host.ts";
 * const dev = defineDevice({
 *   speed: "high", vendorId: 0x1209, productId: 1, product: "Demo",
 *   interfaces: [{ endpoints: [{ address: 0x81, type: "bulk", onIn: () => new Uint8Array([7]) }] }],
 * });
 * const host = new TestHost(dev);
 * const { descriptors, strings } = await host.enumerate();
 * assert.equal(descriptors.device.vendorId, 0x1209);
 * assert.equal(strings.get(descriptors.device.productStringIndex), "Demo");
 * const r = await host.transferIn(0x81, 512);
 * assert.deepEqual([...r.data!], [7]);
 * dev.close();
 * ```
 */
export class TestHost {
  /**
   * A host for one device.
   *
   * @param device the device to drive
   */
  constructor(readonly device: EmulatedDevice) {}

  /**
   * A control IN transfer.
   *
   * @param setup the request
   * @param length `wLength` (and the URB's length)
   * @param options signal, flags
   */
  controlIn(
    setup: ControlSetup,
    length: number,
    options: UrbOptions = {},
  ): Promise<EmulatedUrbResult> {
    return this.device.handleUrb({
      endpoint: 0,
      direction: "in",
      setup: setupPacket("in", setup, length),
      length,
      transferFlags: options.transferFlags ?? 0,
      signal: options.signal ?? new AbortController().signal,
    });
  }

  /**
   * A control OUT transfer.
   *
   * @param setup the request
   * @param data the data stage (`wLength` is its length)
   * @param options signal, flags
   */
  controlOut(
    setup: ControlSetup,
    data: Uint8Array = new Uint8Array(0),
    options: UrbOptions = {},
  ): Promise<EmulatedUrbResult> {
    return this.device.handleUrb({
      endpoint: 0,
      direction: "out",
      setup: setupPacket("out", setup, data.length),
      length: data.length,
      data,
      transferFlags: options.transferFlags ?? 0,
      signal: options.signal ?? new AbortController().signal,
    });
  }

  /**
   * GET_DESCRIPTOR to the device.
   *
   * @param type descriptor type
   * @param index descriptor index
   * @param length `wLength`
   * @param languageId `wIndex` (strings)
   */
  getDescriptor(
    type: number,
    index: number,
    length: number,
    languageId = 0,
  ): Promise<EmulatedUrbResult> {
    return this.controlIn({
      requestType: "standard",
      recipient: "device",
      request: 0x06,
      value: (type << 8) | index,
      index: languageId,
    }, length);
  }

  /**
   * SET_CONFIGURATION.
   *
   * @param value the configuration value (0 to unconfigure)
   */
  setConfiguration(value: number): Promise<EmulatedUrbResult> {
    return this.controlOut({
      requestType: "standard",
      recipient: "device",
      request: 0x09,
      value,
      index: 0,
    });
  }

  /**
   * SET_INTERFACE.
   *
   * @param interfaceNumber the interface
   * @param alternate the alternate setting
   */
  setInterface(
    interfaceNumber: number,
    alternate: number,
  ): Promise<EmulatedUrbResult> {
    return this.controlOut({
      requestType: "standard",
      recipient: "interface",
      request: 0x0b,
      value: alternate,
      index: interfaceNumber,
    });
  }

  /**
   * CLEAR_FEATURE(ENDPOINT_HALT), what usbfs's clear-halt sends.
   *
   * @param address the endpoint address
   */
  clearHalt(address: number): Promise<EmulatedUrbResult> {
    return this.controlOut({
      requestType: "standard",
      recipient: "endpoint",
      request: 0x01,
      value: 0,
      index: address,
    });
  }

  /**
   * What Linux does when a device appears (hub.c, message.c): the device
   * descriptor (first 64 bytes asked, then 18), SET_ADDRESS, the BOS when
   * `bcdUSB` is 0x0201 or more, each configuration (9 bytes, then
   * `wTotalLength`), the language table and the device's strings, then
   * SET_CONFIGURATION with the first configuration. Any failure throws.
   *
   * @param configuration the configuration value to select, 0 for none (default: the first)
   * @returns the parsed descriptors, the BOS bytes, and the strings by index
   */
  async enumerate(configuration?: number): Promise<{
    descriptors: DeviceDescriptors;
    bos: Uint8Array | undefined;
    strings: Map<number, string>;
  }> {
    const ok = (r: EmulatedUrbResult, what: string) => {
      if (r.status !== 0) throw new Error(`${what}: status ${r.status}`);
      return r.data ?? new Uint8Array(0);
    };
    const first = ok(await this.getDescriptor(1, 0, 64), "device/64");
    if (first.length !== 18) {
      throw new Error("device descriptor is not 18 bytes");
    }
    ok(
      await this.controlOut({
        requestType: "standard",
        recipient: "device",
        request: 0x05,
        value: 2,
        index: 0,
      }),
      "SET_ADDRESS",
    );
    const device = ok(await this.getDescriptor(1, 0, 18), "device/18");
    const bcdUSB = device[2]! | (device[3]! << 8);
    let bos: Uint8Array | undefined;
    if (bcdUSB >= 0x0201) {
      const head = await this.getDescriptor(0x0f, 0, 5);
      if (head.status === 0) {
        const total = head.data![2]! | (head.data![3]! << 8);
        bos = ok(await this.getDescriptor(0x0f, 0, total), "BOS");
      }
    }
    const parts = [device];
    for (let i = 0; i < device[17]!; i++) {
      const head = ok(await this.getDescriptor(2, i, 9), `config ${i}/9`);
      const total = head[2]! | (head[3]! << 8);
      parts.push(ok(await this.getDescriptor(2, i, total), `config ${i}`));
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    const descriptors = parseDescriptors(all);
    const strings = new Map<number, string>();
    const langs = await this.getDescriptor(3, 0, 255);
    if (langs.status === 0 && langs.data!.length >= 4) {
      const langId = langs.data![2]! | (langs.data![3]! << 8);
      const d = descriptors.device;
      for (
        const index of [
          d.manufacturerStringIndex,
          d.productStringIndex,
          d.serialNumberStringIndex,
        ]
      ) {
        if (index === 0) continue;
        const s = ok(
          await this.getDescriptor(3, index, 255, langId),
          `string ${index}`,
        );
        let text = "";
        for (let i = 2; i + 1 < s.length; i += 2) {
          text += String.fromCharCode(s[i]! | (s[i + 1]! << 8));
        }
        strings.set(index, text);
      }
    }
    const value = configuration ??
      descriptors.configurations[0]!.configurationValue;
    if (value !== 0) {
      ok(await this.setConfiguration(value), "SET_CONFIGURATION");
    }
    return { descriptors, bos, strings };
  }

  /**
   * A bulk or interrupt IN URB.
   *
   * @param address the endpoint address (0x81)
   * @param length bytes to ask for
   * @param options signal, flags
   */
  transferIn(
    address: number,
    length: number,
    options: UrbOptions = {},
  ): Promise<EmulatedUrbResult> {
    return this.device.handleUrb({
      endpoint: address & 0x0f,
      direction: "in",
      length,
      transferFlags: options.transferFlags ?? 0,
      signal: options.signal ?? new AbortController().signal,
    });
  }

  /**
   * A bulk or interrupt OUT URB.
   *
   * @param address the endpoint address (0x01)
   * @param data the data
   * @param options signal, flags
   */
  transferOut(
    address: number,
    data: Uint8Array,
    options: UrbOptions = {},
  ): Promise<EmulatedUrbResult> {
    return this.device.handleUrb({
      endpoint: address & 0x0f,
      direction: "out",
      length: data.length,
      data,
      transferFlags: options.transferFlags ?? 0,
      signal: options.signal ?? new AbortController().signal,
    });
  }

  /**
   * An isochronous IN URB: packets laid out back to back.
   *
   * @param address the endpoint address
   * @param packetLengths the requested length of each packet
   * @param options signal, flags
   */
  isochronousIn(
    address: number,
    packetLengths: readonly number[],
    options: UrbOptions = {},
  ): Promise<EmulatedUrbResult> {
    let offset = 0;
    const isoPackets = packetLengths.map((length) => {
      const p = { offset, length };
      offset += length;
      return p;
    });
    return this.device.handleUrb({
      endpoint: address & 0x0f,
      direction: "in",
      length: offset,
      isoPackets,
      transferFlags: options.transferFlags ?? 0,
      signal: options.signal ?? new AbortController().signal,
    });
  }

  /**
   * An isochronous OUT URB: the packets concatenated.
   *
   * @param address the endpoint address
   * @param packets each packet's data
   * @param options signal, flags
   */
  isochronousOut(
    address: number,
    packets: readonly Uint8Array[],
    options: UrbOptions = {},
  ): Promise<EmulatedUrbResult> {
    const total = packets.reduce((n, p) => n + p.length, 0);
    const data = new Uint8Array(total);
    let offset = 0;
    const isoPackets = packets.map((p) => {
      data.set(p, offset);
      const d = { offset, length: p.length };
      offset += p.length;
      return d;
    });
    return this.device.handleUrb({
      endpoint: address & 0x0f,
      direction: "out",
      length: total,
      data,
      isoPackets,
      transferFlags: options.transferFlags ?? 0,
      signal: options.signal ?? new AbortController().signal,
    });
  }
}
