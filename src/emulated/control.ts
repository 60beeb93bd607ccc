/**
 * Control transfers on endpoint 0: the standard requests the model answers
 * itself (USB 2.0 chapter 9, USB 3.2 chapter 9), and the routing of every
 * other request to the definition's handlers.
 *
 * The model answers GET_DESCRIPTOR (device, configuration, string, BOS,
 * device qualifier, other-speed configuration; cut to `wLength`), SET_ADDRESS,
 * SET/GET_CONFIGURATION, SET/GET_INTERFACE, GET_STATUS, SET/CLEAR_FEATURE
 * (ENDPOINT_HALT, DEVICE_REMOTE_WAKEUP; U1/U2/LTM enable and function
 * suspend at SuperSpeed), SYNCH_FRAME, SET_SEL and SET_ISOCH_DELAY
 * (SuperSpeed). A port reset sent as a request (SET_FEATURE(PORT_RESET) to
 * recipient other, as usbip's stub driver understands it) resets the device.
 *
 * Everything else goes to a handler, the most specific first: for recipient
 * interface the interface's `requestDescriptors` (GET_DESCRIPTOR) and
 * `control`; for recipient endpoint the endpoint's `control`, then its
 * interface's; then the device's `control`. No handler, or a handler that
 * returns `"stall"` or throws: the request stalls (-EPIPE). A stall on
 * endpoint 0 is a protocol stall: the next request works again.
 *
 * @module
 */

import { describeValue } from "../validate.ts";
import type { EncodedDescriptors } from "./encode.ts";
import type {
  ControlHandler,
  ControlInfo,
  ControlRequest,
} from "./handlers.ts";
import type {
  ConfigurationModel,
  DeviceModel,
  EndpointModel,
  InterfaceModel,
} from "./model.ts";
import { Feature, parseSetup, StandardRequest } from "./setup.ts";
import { asBytes } from "./transfers.ts";
import {
  type EmulatedUrb,
  type EmulatedUrbResult,
  TransferFlags,
  UrbStatus,
} from "./urb.ts";

/** Descriptor types GET_DESCRIPTOR answers (ch9.h). */
const DT = {
  Device: 0x01,
  Configuration: 0x02,
  String: 0x03,
  DeviceQualifier: 0x06,
  OtherSpeedConfiguration: 0x07,
  Bos: 0x0f,
} as const;

/**
 * An endpoint of the current configuration and alternate settings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ActiveEndpoint } from "./control.ts";
 * const keys: (keyof ActiveEndpoint)[] = ["endpoint", "interface"];
 * assert.equal(keys.length, 2);
 * ```
 */
export interface ActiveEndpoint {
  /** The endpoint. */
  readonly endpoint: EndpointModel;
  /** The interface it belongs to. */
  readonly interface: InterfaceModel;
}

/**
 * What the control logic needs from the device: its state and the ways to
 * change it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ControlState } from "./control.ts";
 * const keys: (keyof ControlState)[] = ["model", "descriptors", "configuration"];
 * assert.equal(keys.length, 3);
 * ```
 */
export interface ControlState {
  /** The resolved device. */
  readonly model: DeviceModel;
  /** Its encoded descriptors. */
  readonly descriptors: EncodedDescriptors;
  /** The current configuration, undefined while unconfigured. */
  readonly configuration: ConfigurationModel | undefined;
  /** Device features set by the host. */
  readonly features: {
    remoteWakeup: boolean;
    u1: boolean;
    u2: boolean;
    ltm: boolean;
  };
  /** An interface's current alternate setting. */
  alternate(interfaceNumber: number): number;
  /** An endpoint of the current configuration and alternate settings. */
  activeEndpoint(address: number): ActiveEndpoint | undefined;
  /** Whether an endpoint is halted. */
  halted(address: number): boolean;
  /** Sets or clears an endpoint's halt. */
  setHalt(address: number, halted: boolean): void;
  /** SET_ADDRESS. */
  setAddress(address: number): void;
  /** SET_CONFIGURATION: false when there is no such configuration. */
  setConfiguration(value: number): boolean;
  /** SET_INTERFACE: false when there is no such interface or alternate setting. */
  setInterface(interfaceNumber: number, alternate: number): boolean;
  /** DEVICE_REMOTE_WAKEUP changed. */
  remoteWakeupChanged(enabled: boolean): void;
  /** A port reset requested through endpoint 0. */
  portReset(): void;
  /** Reports a handler's error. */
  report(error: unknown, where: string): void;
}

/** The outcome of a request: IN data, OUT accepted, or stall. */
type Outcome = { data: Uint8Array } | "ok" | "stall";

/**
 * Runs one control URB: decodes the setup packet, answers or routes the
 * request, and builds the result (IN data cut to `wLength` and to the URB's
 * length).
 *
 * @param state the device
 * @param urb the URB (with `setup`)
 * @param signal aborted on unlink, reset, close
 * @returns the result; never rejects
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "./device.ts";
 * // handleControl runs inside handleUrb for endpoint 0:
 * const dev = defineDevice({ speed: "full", vendorId: 1, productId: 2, interfaces: [{}] });
 * const r = await dev.handleUrb({
 *   endpoint: 0, direction: "in", length: 1, transferFlags: 0,
 *   setup: new Uint8Array([0x80, 8, 0, 0, 0, 0, 1, 0]), // GET_CONFIGURATION
 *   signal: new AbortController().signal,
 * });
 * assert.deepEqual([...r.data!], [0]);
 * dev.close();
 * ```
 */
export async function handleControl(
  state: ControlState,
  urb: EmulatedUrb,
  signal: AbortSignal,
): Promise<EmulatedUrbResult> {
  const setup = urb.setup;
  if (!(setup instanceof Uint8Array) || setup.length !== 8) {
    state.report(
      new TypeError(
        `a control URB needs an 8-byte setup packet, got ${
          describeValue(setup)
        }`,
      ),
      "endpoint 0",
    );
    return { status: UrbStatus.invalid, actualLength: 0 };
  }
  const req = parseSetup(
    setup,
    (setup[0]! & 0x80) === 0
      ? (urb.data ?? new Uint8Array(0)).slice()
      : undefined,
  );
  const info: ControlInfo = {
    signal,
    configuration: state.configuration?.value ?? 0,
    speed: state.model.speed,
  };
  let outcome = standard(state, req);
  if (outcome === undefined) outcome = await route(state, req, info);
  if (outcome === "stall") {
    return { status: UrbStatus.stall, actualLength: 0 };
  }
  if (outcome === "ok") {
    return { status: UrbStatus.ok, actualLength: req.data.length };
  }
  const limit = Math.min(req.length, urb.length);
  const data = outcome.data.length > limit
    ? outcome.data.slice(0, limit)
    : outcome.data;
  const short = data.length < urb.length &&
    (urb.transferFlags & TransferFlags.shortNotOk) !== 0;
  return {
    status: short ? UrbStatus.shortNotOk : UrbStatus.ok,
    data,
    actualLength: data.length,
  };
}

/** The standard requests the model answers; undefined to route it. */
function standard(
  state: ControlState,
  req: ControlRequest,
): Outcome | undefined {
  const bmRequestType = req.setup[0]!;
  if (
    bmRequestType === 0x23 && req.request === StandardRequest.SetFeature &&
    req.value === Feature.PortReset
  ) {
    state.portReset();
    return "ok";
  }
  if (req.requestType !== "standard") return undefined;
  const { model } = state;
  const config = state.configuration;
  const superSpeed = model.speed === "super";
  const lowByte = req.index & 0xff;

  switch (req.request) {
    case StandardRequest.GetStatus:
      return getStatus(state, req);
    case StandardRequest.ClearFeature:
    case StandardRequest.SetFeature:
      return feature(state, req);
    case StandardRequest.SetAddress:
      if (bmRequestType !== 0x00 || req.value > 127) return "stall";
      state.setAddress(req.value);
      return "ok";
    case StandardRequest.GetDescriptor:
      if (bmRequestType !== 0x80) return undefined; // to an interface: HID, ...
      return getDescriptor(state, req);
    case StandardRequest.GetConfiguration:
      if (bmRequestType !== 0x80) return "stall";
      return { data: new Uint8Array([config?.value ?? 0]) };
    case StandardRequest.SetConfiguration:
      if (bmRequestType !== 0x00) return "stall";
      return state.setConfiguration(req.value & 0xff) ? "ok" : "stall";
    case StandardRequest.GetInterface:
      if (bmRequestType !== 0x81) return "stall";
      if (config?.interfaces[lowByte] === undefined) return "stall";
      return { data: new Uint8Array([state.alternate(lowByte)]) };
    case StandardRequest.SetInterface:
      if (bmRequestType !== 0x01) return "stall";
      return state.setInterface(lowByte, req.value) ? "ok" : "stall";
    case StandardRequest.SynchFrame: {
      if (bmRequestType !== 0x82) return "stall";
      const active = state.activeEndpoint(lowByte);
      return active?.endpoint.type === "isochronous"
        ? { data: new Uint8Array(2) }
        : "stall";
    }
    case StandardRequest.SetSel:
    case StandardRequest.SetIsochDelay:
      return superSpeed && bmRequestType === 0x00 ? "ok" : "stall";
    default:
      return undefined;
  }
}

/** GET_STATUS (USB 2.0 §9.4.5, USB 3.2 §9.4.5). */
function getStatus(
  state: ControlState,
  req: ControlRequest,
): Outcome | undefined {
  const { model } = state;
  const config = state.configuration;
  const lowByte = req.index & 0xff;
  if (req.direction !== "in") return "stall";
  switch (req.recipient) {
    case "device": {
      const f = state.features;
      const selfPowered = (config ?? model.configurations[0])?.selfPowered;
      const bits = (selfPowered ? 1 : 0) | (f.remoteWakeup ? 2 : 0) |
        (f.u1 ? 4 : 0) | (f.u2 ? 8 : 0) | (f.ltm ? 16 : 0);
      return { data: new Uint8Array([bits, 0]) };
    }
    case "interface":
      return config?.interfaces[lowByte] !== undefined
        ? { data: new Uint8Array(2) }
        : "stall";
    case "endpoint":
      if ((lowByte & 0x7f) === 0) return { data: new Uint8Array(2) };
      if (state.activeEndpoint(lowByte) === undefined) return "stall";
      return {
        data: new Uint8Array([state.halted(lowByte) ? 1 : 0, 0]),
      };
    default:
      return undefined;
  }
}

/** SET_FEATURE and CLEAR_FEATURE (USB 2.0 §9.4.1, §9.4.9). */
function feature(
  state: ControlState,
  req: ControlRequest,
): Outcome | undefined {
  const { model } = state;
  const config = state.configuration;
  const superSpeed = model.speed === "super";
  const lowByte = req.index & 0xff;
  if (req.direction !== "out") return "stall";
  const on = req.request === StandardRequest.SetFeature;
  switch (req.recipient) {
    case "device":
      return deviceFeature(state, req.value, on);
    case "interface":
      // USB 3.2: FUNCTION_SUSPEND (0) on a configured interface.
      return superSpeed && req.value === 0 &&
          config?.interfaces[lowByte] !== undefined
        ? "ok"
        : "stall";
    case "endpoint": {
      if (req.value !== Feature.EndpointHalt) return "stall";
      if ((lowByte & 0x7f) === 0) return "ok"; // endpoint 0 has no halt to keep
      const active = state.activeEndpoint(lowByte);
      if (active === undefined) return "stall";
      if (active.endpoint.type === "isochronous") {
        return on ? "stall" : "ok"; // isochronous endpoints have no halt
      }
      state.setHalt(lowByte, on);
      return "ok";
    }
    default:
      return undefined;
  }
}

/** SET_FEATURE / CLEAR_FEATURE to the device. */
function deviceFeature(
  state: ControlState,
  feature: number,
  on: boolean,
): Outcome {
  const { model } = state;
  const superSpeed = model.speed === "super";
  switch (feature) {
    case Feature.DeviceRemoteWakeup:
      if (!model.configurations.some((c) => c.remoteWakeup)) {
        return "stall"; // no configuration declares remote wakeup
      }
      if (state.features.remoteWakeup !== on) {
        state.features.remoteWakeup = on;
        state.remoteWakeupChanged(on);
      }
      return "ok";
    case Feature.U1Enable:
    case Feature.U2Enable:
    case Feature.LtmEnable:
      if (!superSpeed) return "stall";
      if (feature === Feature.U1Enable) state.features.u1 = on;
      else if (feature === Feature.U2Enable) state.features.u2 = on;
      else state.features.ltm = on;
      return "ok";
    default:
      return "stall"; // TEST_MODE and the rest
  }
}

function getDescriptor(
  state: ControlState,
  req: ControlRequest,
): Outcome | undefined {
  const d = state.descriptors;
  const type = req.value >> 8;
  const index = req.value & 0xff;
  const found = (bytes: Uint8Array | undefined): Outcome =>
    bytes === undefined ? "stall" : { data: bytes };
  switch (type) {
    case DT.Device:
      return found(d.device);
    case DT.Configuration:
      return found(d.configurations[index]);
    case DT.String: {
      if (index !== 0 && req.index !== d.languageId) return "stall";
      return found(d.strings.get(index));
    }
    case DT.DeviceQualifier:
      return found(d.deviceQualifier);
    case DT.OtherSpeedConfiguration:
      return found(d.otherSpeedConfigurations?.[index]);
    case DT.Bos:
      return found(d.bos);
    default:
      return undefined; // the device's handler may know it
  }
}

/** Hands a request to the most specific handler there is. */
async function route(
  state: ControlState,
  req: ControlRequest,
  info: ControlInfo,
): Promise<Outcome> {
  const config = state.configuration;
  const lowByte = req.index & 0xff;
  const handlers: { handler: ControlHandler; where: string }[] = [];
  if (req.recipient === "interface" && config !== undefined) {
    const intf = config.interfaces[lowByte];
    if (intf !== undefined) {
      if (
        req.requestType === "standard" &&
        req.request === StandardRequest.GetDescriptor &&
        req.direction === "in"
      ) {
        const rd = intf.requestDescriptors.find((r) =>
          r.type === req.value >> 8 && r.index === (req.value & 0xff)
        );
        if (rd !== undefined) return { data: rd.data };
      }
      if (intf.control !== undefined) {
        handlers.push({
          handler: intf.control,
          where: `interface ${intf.number} control`,
        });
      }
    }
  } else if (req.recipient === "endpoint") {
    const active = state.activeEndpoint(lowByte);
    if (active !== undefined) {
      const hex = lowByte.toString(16).padStart(2, "0");
      if (active.endpoint.control !== undefined) {
        handlers.push({
          handler: active.endpoint.control,
          where: `endpoint 0x${hex} control`,
        });
      } else if (active.interface.control !== undefined) {
        handlers.push({
          handler: active.interface.control,
          where: `interface ${active.interface.number} control`,
        });
      }
    }
  }
  if (state.model.control !== undefined) {
    handlers.push({ handler: state.model.control, where: "device control" });
  }
  const first = handlers[0];
  if (first === undefined) return "stall";

  let result: unknown;
  try {
    result = await first.handler(req, info);
  } catch (e) {
    if (!info.signal.aborted) state.report(e, first.where);
    return "stall";
  }
  if (result === "stall") return "stall";
  if (req.direction === "in") {
    const data = asBytes(result);
    if (data !== undefined) return { data };
    state.report(
      new TypeError(
        `returned ${
          describeValue(result)
        } for an IN request; return a Uint8Array (possibly empty) or "stall"`,
      ),
      first.where,
    );
    return "stall";
  }
  if (result !== undefined) {
    state.report(
      new TypeError(
        `returned ${
          describeValue(result)
        } for an OUT request; return nothing (accepted) or "stall"`,
      ),
      first.where,
    );
  }
  return "ok";
}
