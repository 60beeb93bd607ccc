/**
 * Emulated USB devices: a device written as typed data and handlers,
 * answering URBs the way a real device would.
 *
 * {@linkcode defineDevice} validates a {@linkcode DeviceDefinition}
 * (descriptors as readable fields, strings as plain strings, behaviour as
 * functions or streams) and returns an {@linkcode EmulatedDevice}. A
 * transport (USB/IP to the kernel's vhci_hcd, or a test) gives it
 * {@linkcode EmulatedUrb}s; the device answers the standard requests itself,
 * passes class and vendor requests and endpoint transfers to the handlers,
 * and keeps the state a host expects (configuration, alternate settings,
 * halted endpoints). {@linkcode encodeDescriptors} gives the descriptor
 * bytes alone.
 *
 * A handler may be slow (return a promise), gets an `AbortSignal` that
 * fires when the host unlinks its URB, refuses by returning
 * {@linkcode STALL}, and if it throws the device reports it through
 * `onError` and stalls the endpoint: it keeps running.
 *
 * @example A vendor device: bulk IN counts, bulk OUT is checked, a vendor request reads a register
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice, type EmulatedUrb } from "./mod.ts";
 *
 * let counter = 0;
 * const received: Uint8Array[] = [];
 * const device = defineDevice({
 *   speed: "high",
 *   vendorId: 0x1209,
 *   productId: 0x0001,
 *   manufacturer: "usbkit",
 *   product: "Counter",
 *   interfaces: [{
 *     endpoints: [
 *       { address: 0x81, type: "bulk", onIn: (length) => new Uint8Array(length).map(() => counter++ & 0xff) },
 *       { address: 0x01, type: "bulk", onOut: (data) => { received.push(data); } },
 *     ],
 *   }],
 *   control: (req) =>
 *     req.requestType === "vendor" && req.request === 0x01 && req.direction === "in"
 *       ? new Uint8Array([counter & 0xff])
 *       : "stall",
 * });
 *
 * const signal = new AbortController().signal;
 * const control = (setup: number[], length = 0): EmulatedUrb => ({
 *   endpoint: 0, direction: setup[0]! & 0x80 ? "in" : "out",
 *   setup: new Uint8Array(setup), length, transferFlags: 0, signal,
 * });
 * await device.handleUrb(control([0x00, 0x09, 1, 0, 0, 0, 0, 0])); // SET_CONFIGURATION(1)
 * const bulk = await device.handleUrb({ endpoint: 1, direction: "in", length: 4, transferFlags: 0, signal });
 * assert.deepEqual([...bulk.data!], [0, 1, 2, 3]);
 * const reg = await device.handleUrb(control([0xc0, 0x01, 0, 0, 0, 0, 1, 0], 1));
 * assert.deepEqual([...reg.data!], [4]);
 * const unknown = await device.handleUrb(control([0xc0, 0x02, 0, 0, 0, 0, 1, 0], 1));
 * assert.equal(unknown.status, -32); // stall
 * device.close();
 * ```
 *
 * @module
 */

export { defineDevice } from "./device.ts";
export { type EncodedDescriptors, encodeDescriptors } from "./encode.ts";
export type {
  AlternateDefinition,
  AssociationDefinition,
  BosDefinition,
  Bytes,
  CompanionDefinition,
  ConfigurationDefinition,
  DeviceDefinition,
  EmulatedSpeed,
  EndpointDefinition,
  InterfaceDefinition,
  InterfaceRequestDescriptor,
  PlatformCapabilityDefinition,
  StringRef,
  SuperSpeedCapabilityDefinition,
  Usb2ExtensionDefinition,
} from "./definition.ts";
export {
  type ControlHandler,
  type ControlInfo,
  type ControlRequest,
  type ControlResult,
  type EmulatedDeviceEvent,
  type InHandler,
  type InHandlerResult,
  type IsoInHandler,
  type IsoInPacket,
  type IsoOutHandler,
  type OutHandler,
  type OutHandlerResult,
  STALL,
  type Stall,
  type TransferInfo,
} from "./handlers.ts";
export {
  type EmulatedDevice,
  type EmulatedDeviceSummary,
  type EmulatedInterfaceSummary,
  type EmulatedUrb,
  type EmulatedUrbResult,
  TransferFlags,
  UrbStatus,
} from "./urb.ts";
export { Feature, parseSetup, StandardRequest } from "./setup.ts";
export { hidDescriptor } from "./class_descriptors.ts";
export { encodeStringDescriptor } from "./strings.ts";
export {
  type ControlSetup,
  setupPacket,
  TestHost,
  type UrbOptions,
} from "./test_host.ts";
