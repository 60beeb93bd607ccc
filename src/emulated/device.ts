/**
 * {@linkcode defineDevice}: a validated definition becomes a running
 * {@linkcode EmulatedDevice} that a transport feeds with URBs.
 *
 * The device keeps the state of a USB device (address, configuration,
 * alternate settings, halted endpoints, remote wakeup) and one queue per
 * endpoint: URBs on one endpoint complete in order, URBs on different
 * endpoints run concurrently. Nothing a handler does can make
 * {@linkcode EmulatedDevice.handleUrb} reject or the device stop.
 *
 * @module
 */

import {
  type ActiveEndpoint,
  type ControlState,
  handleControl,
} from "./control.ts";
import type { DeviceDefinition } from "./definition.ts";
import { type EncodedDescriptors, encodeModel } from "./encode.ts";
import type { EmulatedDeviceEvent, TransferInfo } from "./handlers.ts";
import {
  type ConfigurationModel,
  type DeviceModel,
  type EndpointModel,
  resolveDefinition,
} from "./model.ts";
import { Pipe } from "./pipe.ts";
import { SinkWriter, SourceReader } from "./streams.ts";
import {
  handlerName,
  runBulkOrInterrupt,
  runIsochronous,
  type TransferContext,
} from "./transfers.ts";
import {
  type EmulatedDevice,
  type EmulatedDeviceSummary,
  type EmulatedUrb,
  type EmulatedUrbResult,
  UrbStatus,
} from "./urb.ts";

/**
 * Validates a definition and returns the device, ready for URBs. It starts
 * in the default state (address 0, unconfigured), as after a port reset.
 *
 * @param definition the device
 * @returns the running device
 * @throws {UsbError} `invalid-argument` for an impossible definition, the
 *   message naming the field (`configurations[0].interfaces[1].alternates[0].endpoints[2].maxPacketSize`) and the rule
 *
 * @example A loopback: bulk OUT data comes back on bulk IN
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "./device.ts";
 *
 * const queue: Uint8Array[] = [];
 * const dev = defineDevice({
 *   speed: "high",
 *   vendorId: 0x1209,
 *   productId: 0x0001,
 *   product: "Loopback",
 *   interfaces: [{
 *     endpoints: [
 *       { address: 0x01, type: "bulk", onOut: (data) => { queue.push(data); } },
 *       { address: 0x81, type: "bulk", onIn: () => queue.shift() ?? new Uint8Array(0) },
 *     ],
 *   }],
 * });
 *
 * const signal = new AbortController().signal;
 * const setConfiguration = new Uint8Array([0x00, 9, 1, 0, 0, 0, 0, 0]);
 * await dev.handleUrb({ endpoint: 0, direction: "out", setup: setConfiguration, length: 0, transferFlags: 0, signal });
 * await dev.handleUrb({ endpoint: 1, direction: "out", data: new Uint8Array([1, 2, 3]), length: 3, transferFlags: 0, signal });
 * const r = await dev.handleUrb({ endpoint: 1, direction: "in", length: 512, transferFlags: 0, signal });
 * assert.deepEqual([...r.data!], [1, 2, 3]);
 * dev.close();
 * ```
 */
export function defineDevice(definition: DeviceDefinition): EmulatedDevice {
  return new ModelDevice(resolveDefinition(definition));
}

class ModelDevice implements EmulatedDevice, ControlState {
  readonly model: DeviceModel;
  readonly descriptors: EncodedDescriptors;
  readonly features = { remoteWakeup: false, u1: false, u2: false, ltm: false };
  #configuration: ConfigurationModel | undefined;
  #alternates: number[] = [];
  #active = new Map<number, ActiveEndpoint>();
  readonly #pipes = new Map<number, Pipe>();
  readonly #sources = new Map<EndpointModel, SourceReader>();
  readonly #sinks = new Map<EndpointModel, SinkWriter>();
  #closed = false;

  constructor(model: DeviceModel) {
    this.model = model;
    this.descriptors = encodeModel(model);
  }

  get speed(): "low" | "full" | "high" | "super" {
    return this.model.speed;
  }

  get configuration(): ConfigurationModel | undefined {
    return this.#configuration;
  }

  get summary(): EmulatedDeviceSummary {
    const m = this.model;
    const config = this.#configuration ?? m.configurations[0]!;
    return {
      vendorId: m.vendorId,
      productId: m.productId,
      bcdDevice: m.deviceVersion,
      deviceClass: m.class,
      deviceSubclass: m.subclass,
      deviceProtocol: m.protocol,
      configurationValue: config.value,
      numConfigurations: m.configurations.length,
      interfaces: config.interfaces.map((i) => {
        const alt = i.alternates[0]!;
        return {
          interfaceClass: alt.class,
          interfaceSubclass: alt.subclass,
          interfaceProtocol: alt.protocol,
        };
      }),
    };
  }

  handleUrb(urb: EmulatedUrb): Promise<EmulatedUrbResult> {
    try {
      if (this.#closed) {
        return Promise.resolve({ status: UrbStatus.shutdown, actualLength: 0 });
      }
      const problem = checkUrb(urb);
      if (problem !== undefined) {
        this.report(new TypeError(problem), "handleUrb");
        return Promise.resolve({ status: UrbStatus.invalid, actualLength: 0 });
      }
      if (urb.endpoint === 0) {
        return this.#pipe(0).submit(
          urb.signal,
          (signal) => handleControl(this, urb, signal),
        );
      }
      const address = urb.endpoint | (urb.direction === "in" ? 0x80 : 0);
      return this.#pipe(address).submit(
        urb.signal,
        (signal) => this.#transfer(address, urb, signal),
      );
    } catch (e) {
      this.report(e, "handleUrb");
      return Promise.resolve({
        status: UrbStatus.protocolError,
        actualLength: 0,
      });
    }
  }

  reset(): void {
    this.#reset(true);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const pipe of this.#pipes.values()) pipe.abortAll();
    for (const s of this.#sources.values()) s.close();
    for (const s of this.#sinks.values()) s.close();
    this.#emit({ type: "close" });
  }

  // ControlState ------------------------------------------------------------

  alternate(interfaceNumber: number): number {
    return this.#alternates[interfaceNumber] ?? 0;
  }

  activeEndpoint(address: number): ActiveEndpoint | undefined {
    return this.#active.get(address);
  }

  halted(address: number): boolean {
    return this.#pipes.get(address)?.halted ?? false;
  }

  setHalt(address: number, halted: boolean): void {
    const pipe = this.#pipe(address);
    if (pipe.halted === halted) return;
    pipe.halted = halted;
    this.#emit({ type: "halt", endpoint: address, halted });
  }

  setAddress(address: number): void {
    this.#emit({ type: "address", address });
  }

  setConfiguration(value: number): boolean {
    const config = value === 0
      ? undefined
      : this.model.configurations.find((c) => c.value === value);
    if (value !== 0 && config === undefined) return false;
    // Every endpoint but 0 starts over: queued URBs end, halts clear.
    for (const [address, pipe] of this.#pipes) {
      if (address === 0) continue;
      pipe.abortAll();
      pipe.halted = false;
    }
    this.#configuration = config;
    this.#alternates = config === undefined
      ? []
      : config.interfaces.map(() => 0);
    this.#rebuildActive();
    this.#emit({ type: "configuration", value });
    return true;
  }

  setInterface(interfaceNumber: number, alternate: number): boolean {
    const intf = this.#configuration?.interfaces[interfaceNumber];
    if (intf?.alternates[alternate] === undefined) return false;
    for (const alt of intf.alternates) {
      for (const ep of alt.endpoints) {
        const pipe = this.#pipes.get(ep.address);
        if (pipe === undefined) continue;
        pipe.abortAll();
        pipe.halted = false;
      }
    }
    this.#alternates[interfaceNumber] = alternate;
    this.#rebuildActive();
    this.#emit({ type: "interface", interfaceNumber, alternate });
    return true;
  }

  remoteWakeupChanged(enabled: boolean): void {
    this.#emit({ type: "remote-wakeup", enabled });
  }

  portReset(): void {
    this.#reset(false);
  }

  report(error: unknown, where: string): void {
    try {
      if (this.model.onError !== undefined) this.model.onError(error, where);
      else console.error(`usbkit emulated device: ${where} failed:`, error);
    } catch {
      // an onError that throws must not take the device down
    }
  }

  // Internals ----------------------------------------------------------------

  #reset(abortControl: boolean): void {
    for (const [address, pipe] of this.#pipes) {
      if (address !== 0 || abortControl) pipe.abortAll();
      pipe.halted = false;
    }
    this.#configuration = undefined;
    this.#alternates = [];
    this.#active = new Map();
    this.features.remoteWakeup = false;
    this.features.u1 = false;
    this.features.u2 = false;
    this.features.ltm = false;
    this.#emit({ type: "reset" });
  }

  #emit(event: EmulatedDeviceEvent): void {
    try {
      this.model.onEvent?.(event);
    } catch (e) {
      this.report(e, "onEvent");
    }
  }

  #pipe(address: number): Pipe {
    let pipe = this.#pipes.get(address);
    if (pipe === undefined) {
      pipe = new Pipe();
      this.#pipes.set(address, pipe);
    }
    return pipe;
  }

  #rebuildActive(): void {
    const active = new Map<number, ActiveEndpoint>();
    for (const intf of this.#configuration?.interfaces ?? []) {
      const alt = intf.alternates[this.alternate(intf.number)]!;
      for (const endpoint of alt.endpoints) {
        active.set(endpoint.address, { endpoint, interface: intf });
      }
    }
    this.#active = active;
  }

  async #transfer(
    address: number,
    urb: EmulatedUrb,
    signal: AbortSignal,
  ): Promise<EmulatedUrbResult> {
    const active = this.#active.get(address);
    const hex = address.toString(16).padStart(2, "0");
    if (active === undefined) {
      this.report(
        new Error(
          this.#configuration === undefined
            ? `a URB for endpoint 0x${hex} while the device is not configured`
            : `a URB for endpoint 0x${hex}, which the current configuration and alternate settings do not have`,
        ),
        "handleUrb",
      );
      return { status: UrbStatus.stall, actualLength: 0 };
    }
    const ep = active.endpoint;
    const info: TransferInfo = {
      signal,
      endpoint: address,
      type: ep.type,
      maxPacketSize: ep.maxPacketSize,
      transferFlags: urb.transferFlags,
      configuration: this.#configuration?.value ?? 0,
      interfaceNumber: active.interface.number,
      alternate: this.alternate(active.interface.number),
      intervalMicroseconds: ep.intervalMicroseconds,
    };
    const ctx: TransferContext = {
      info,
      halted: () => this.halted(address),
      halt: () => this.setHalt(address, true),
      report: (e, where) => this.report(e, where),
      source: () => {
        let s = this.#sources.get(ep);
        if (s === undefined) {
          s = new SourceReader(ep.source!);
          this.#sources.set(ep, s);
        }
        return s;
      },
      sink: () => {
        let s = this.#sinks.get(ep);
        if (s === undefined) {
          s = new SinkWriter(ep.sink!);
          this.#sinks.set(ep, s);
        }
        return s;
      },
    };
    try {
      return ep.type === "isochronous"
        ? await runIsochronous(ep, urb, ctx)
        : await runBulkOrInterrupt(ep, urb, ctx);
    } catch (e) {
      if (!signal.aborted) this.report(e, handlerName(ep, "transfer"));
      return { status: UrbStatus.protocolError, actualLength: 0 };
    }
  }
}

/** What is wrong with a URB's shape, if anything (a transport bug). */
function checkUrb(urb: EmulatedUrb): string | undefined {
  if (typeof urb !== "object" || urb === null) {
    return "the URB is not an object";
  }
  if (
    !Number.isInteger(urb.endpoint) || urb.endpoint < 0 || urb.endpoint > 15
  ) {
    return `URB endpoint ${urb.endpoint} is not 0..15`;
  }
  if (urb.direction !== "in" && urb.direction !== "out") {
    return `URB direction ${urb.direction} is not "in" or "out"`;
  }
  if (!Number.isInteger(urb.length) || urb.length < 0) {
    return `URB length ${urb.length} is not a non-negative integer`;
  }
  if (urb.data !== undefined && !(urb.data instanceof Uint8Array)) {
    return "URB data is not a Uint8Array";
  }
  if (!(urb.signal instanceof AbortSignal)) {
    return "URB signal is not an AbortSignal";
  }
  return undefined;
}
