/**
 * # usbkit
 *
 * Drive Linux USB devices from TypeScript, through the kernel's usbfs, with
 * many transfers in flight, timeouts and cancellation by `AbortSignal`, and
 * errors that say what to do. A small Rust helper makes the system calls; a
 * reaper thread and a shared completion ring keep JavaScript out of the way
 * of the data.
 *
 * usbkit is for lab automation, test-bench sequencing and prototyping device
 * protocols. It is not a class driver: for a keyboard, a disk or a serial
 * port, the kernel's own driver is what you want.
 *
 * With no hardware on the desk, `deno task vm -- <command>` runs any script
 * inside a real Linux kernel whose USB devices are emulated (a SuperSpeed
 * SourceSink gadget by default).
 *
 * @example Read the SourceSink pattern from the virtual bench's gadget
 * ```ts
 * import assert from "node:assert/strict";
 * import { listDevices, open } from "./mod.ts";
 *
 * for (const d of await listDevices()) console.log(d.portPath, d.vendorId.toString(16), d.speed);
 *
 * await using dev = await open("0525:a4a0");
 * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
 * const { status, data } = await iface.endpoint(0x81).transferIn(4096, { timeout: 1000 });
 * console.log(status, data.subarray(0, 8)); // ok Uint8Array [0, 1, 2, 3, 4, 5, 6, 7]
 * assert.deepEqual([...data.subarray(0, 4)], [0, 1, 2, 3]);
 * ```
 *
 * The concepts, in the order you meet them:
 * - {@linkcode listDevices} reads sysfs and opens nothing;
 * - {@linkcode open} takes a selector (`"VID:PID"`, a port path like `"2-1"`,
 *   a serial number or a /dev/bus/usb path) and returns a {@linkcode Device};
 * - {@linkcode Device.claimInterface} returns an {@linkcode Interface}, whose
 *   {@linkcode Interface.endpoint} returns an {@linkcode Endpoint};
 * - every failure is a {@linkcode UsbError} with a stable `code` and a `hint`;
 * - {@linkcode defineDevice} writes a USB device in TypeScript, and
 *   {@linkcode attachLocal} serves it to this machine's kernel over USB/IP
 *   (vhci_hcd), where it enumerates like any other device ({@linkcode serve}
 *   offers it over TCP to `usbip attach` on another machine). The full
 *   device-model and USB/IP APIs are `src/emulated/mod.ts` and
 *   `src/usbip/mod.ts`.
 *
 * @module
 */

export {
  Device,
  encodeSetup,
  open,
  type OpenOptions,
  type SetupPacket,
} from "./src/device.ts";
export { Interface } from "./src/interface.ts";
export { Endpoint } from "./src/endpoint.ts";
export type {
  InResult,
  OutResult,
  TransferOptions,
  TransferStatus,
} from "./src/urb.ts";
export type {
  BatchInRequest,
  BatchOutRequest,
  BatchRequest,
  BatchResult,
} from "./src/transfer.ts";
export {
  assembleIsoIn,
  type IsoInPacket,
  type IsoInResult,
  type IsoOutPacket,
  type IsoOutResult,
  type IsoPacketStatus,
} from "./src/isochronous.ts";
export {
  IsoInStream,
  type IsoStreamOptions,
  type IsoStreamResult,
} from "./src/iso_stream.ts";
export {
  InStream,
  type StreamOptions,
  type WritableOptions,
} from "./src/stream.ts";
export { OutStream, type OutStreamOptions } from "./src/out_stream.ts";
export type { CancelReason } from "./src/engine.ts";
export type { AllocBufferOptions, UsbBuffer } from "./src/buffer.ts";
export {
  type BatchItemResult,
  Errno,
  type ErrnoContext,
  errnoName,
  errorFromErrno,
  udevRule,
  UsbError,
  type UsbErrorCode,
  type UsbErrorOptions,
} from "./src/errors.ts";
export {
  closeAllDevices,
  handleExitSignals,
  releaseAllNow,
} from "./src/cleanup.ts";
export {
  type DetachRecord,
  journalDir,
  readJournal,
} from "./src/driver_journal.ts";
export {
  rebindDetached,
  type RebindOptions,
  type RebindOutcome,
} from "./src/rebind.ts";
export {
  EXIT_BROKEN,
  EXIT_FAILED,
  EXIT_INVALID,
  EXIT_OK,
  EXIT_SIGNALS,
  exitCodeFor,
  type ExitSignal,
  signalExitCode,
} from "./src/exit_codes.ts";
export {
  type Capabilities,
  capabilityNames,
  readCapabilities,
} from "./src/capabilities.ts";
export {
  defineDevice,
  type DeviceDefinition,
  type EmulatedDevice,
  STALL,
} from "./src/emulated/mod.ts";
export {
  attachLocal,
  type AttachOptions,
  type LocalAttachment,
  serve,
  type ServeOptions,
  type UsbipServer,
} from "./src/usbip/mod.ts";
export {
  DeviceChangeEvent,
  type DeviceEvent,
  DeviceWatcher,
  type ReopenInfo,
  type ReopenOptions,
  type ResetResult,
  waitForDevice,
  waitForDeviceGone,
  type WaitOptions,
  watchDevices,
  type WatchOptions,
} from "./src/hotplug.ts";
export {
  Capture,
  type CaptureFormat,
  type CaptureOptions,
} from "./src/capture/capture.ts";
export {
  CAPTURE_ENV,
  captureAll,
  stopCaptureAll,
} from "./src/capture/process.ts";
export {
  captureKernel,
  type KernelCaptureOptions,
  type KernelCaptureResult,
} from "./src/capture/kernel.ts";
export {
  type CapturedPacket,
  describePacket,
  readCapture,
} from "./src/capture/read.ts";
export type {
  UsbmonEvent,
  UsbmonIsoDescriptor,
} from "./src/capture/usbmon_header.ts";
export * from "./src/descriptors.ts";
export {
  type DetailsSource,
  type DeviceDetails,
  readDeviceDetails,
} from "./src/descriptors/details.ts";
export * from "./src/enumeration.ts";
export * from "./src/selector.ts";
