/**
 * Runs a validated recipe against a device: opens it (waiting for it to
 * appear), claims interfaces, runs the steps in order with their timeouts,
 * checks expectations, captures variables, and returns a result that the
 * reporters (terminal, JSON, JUnit) render.
 *
 * The runner talks to the device through {@linkcode RecipeDevice}, the part
 * of usbkit's `Device` it uses, so that its logic can be exercised without
 * hardware; by default it opens real devices with `open()` from device.ts.
 *
 * @module
 */

import type { Capture } from "../capture/capture.ts";
import { describePacket, readCapture } from "../capture/read.ts";
import { UsbError } from "../errors.ts";
import {
  capture,
  type CheckedExpectation,
  checkTransfer,
  type Failure,
  PatternChecker,
} from "./expect.ts";
import {
  interpolate,
  InterpolationError,
  type Resolved,
  resolveTemplates,
  Template,
  type VarValue,
} from "./interpolate.ts";
import {
  type DataSpec,
  DEVICE_STEP_KINDS,
  type DeviceEntrySpec,
  type DeviceSelectorSpec,
  type Recipe,
  recipeDevices,
  SINGLE_DEVICE,
  type Step,
  type StepBody,
  type StepKind,
  type TaggedStep,
  tagStep,
} from "./schema.ts";
import {
  formatDuration,
  formatHex,
  formatRate,
  formatSize,
  makePattern,
  type PatternKind,
} from "./values.ts";

// ---------------------------------------------------------------------------
// The device, as the runner sees it

/** A control setup packet, as usbkit's `Device` takes it. */
export interface RecipeSetup {
  /** The request type. */
  requestType: "standard" | "class" | "vendor";
  /** Who the request is for. */
  recipient: "device" | "interface" | "endpoint" | "other";
  /** bRequest. */
  request: number;
  /** wValue. */
  value: number;
  /** wIndex. */
  index: number;
}

/** Options of a transfer. */
export interface RecipeTransferOptions {
  /** Milliseconds. */
  timeout?: number;
  /** Cancels the transfer. */
  signal?: AbortSignal;
}

/** The result of an IN transfer. */
export interface RecipeInResult {
  /** How it ended. */
  status: "ok" | "stall" | "babble";
  /** The bytes received. */
  data: Uint8Array;
}

/** The result of an OUT transfer. */
export interface RecipeOutResult {
  /** How it ended. */
  status: "ok" | "stall" | "babble";
  /** Bytes the device accepted. */
  bytesWritten: number;
}

/** The part of usbkit's `Endpoint` the runner uses. */
export interface RecipeEndpoint {
  /** bEndpointAddress. */
  readonly address: number;
  /** From bit 7 of the address. */
  readonly direction: "in" | "out";
  /** The transfer type. */
  readonly type: "bulk" | "interrupt" | "isochronous" | "control";
  /** wMaxPacketSize. */
  readonly packetSize: number;
  /** One IN transfer. */
  transferIn(
    length: number,
    options?: RecipeTransferOptions,
  ): Promise<RecipeInResult>;
  /** One OUT transfer. */
  transferOut(
    data: Uint8Array,
    options?: RecipeTransferOptions,
  ): Promise<RecipeOutResult>;
  /** CLEAR_FEATURE(ENDPOINT_HALT). */
  clearHalt(): Promise<void>;
  /** One isochronous IN transfer. */
  isochronousTransferIn(
    packetLengths: number[],
    options?: RecipeTransferOptions,
  ): Promise<
    { data: Uint8Array; packets: { status: string; data: Uint8Array }[] }
  >;
  /** One isochronous OUT transfer. */
  isochronousTransferOut(
    data: Uint8Array,
    packetLengths: number[],
    options?: RecipeTransferOptions,
  ): Promise<{ packets: { status: string; bytesWritten: number }[] }>;
  /** Streaming IN: each chunk is valid until the next one is asked for. */
  stream(
    options: { transferSize: number; inFlight: number; signal?: AbortSignal },
  ): AsyncIterable<Uint8Array>;
  /** Streaming OUT: each chunk written is one transfer, `inFlight` queued. */
  openWritable(options?: { inFlight?: number }): WritableStream<Uint8Array>;
}

/** The part of usbkit's `Interface` the runner uses. */
export interface RecipeInterface {
  /** bInterfaceNumber. */
  readonly interfaceNumber: number;
  /** SET_INTERFACE. */
  selectAlternateInterface(alternate: number): Promise<void>;
  /** An endpoint of the current alternate setting; throws for an unknown address. */
  endpoint(address: number): RecipeEndpoint;
  /** Releases the interface. */
  release(): Promise<void>;
}

/** The part of usbkit's `Device` the runner uses. */
export interface RecipeDevice {
  /** The device descriptor's ids. */
  readonly deviceDescriptor: { vendorId: number; productId: number };
  /** The active configuration, if any. */
  readonly configuration: { configurationValue: number } | null;
  /** SET_CONFIGURATION. */
  selectConfiguration(value: number): Promise<void>;
  /** Claims an interface. */
  claimInterface(
    n: number,
    options?: { detachKernelDriver?: boolean },
  ): Promise<RecipeInterface>;
  /** A control IN transfer. */
  controlTransferIn(
    setup: RecipeSetup,
    length: number,
    options?: RecipeTransferOptions,
  ): Promise<RecipeInResult>;
  /** A control OUT transfer. */
  controlTransferOut(
    setup: RecipeSetup,
    data: Uint8Array,
    options?: RecipeTransferOptions,
  ): Promise<RecipeOutResult>;
  /** USBDEVFS_RESET; resolves with whether the device re-enumerated (as `Device.reset`). */
  reset(): Promise<{ reenumerated: boolean } | void>;
  /** Releases everything and closes the device. */
  close(): Promise<void>;
}

/** A device selector, as `open()` takes it. */
export interface RecipeDeviceSelector {
  /** idVendor. */
  vendorId?: number;
  /** idProduct. */
  productId?: number;
  /** The serial number string. */
  serial?: string;
  /** A port path such as `2-1`. */
  port?: string;
  /** A device node such as `/dev/bus/usb/002/003`. */
  path?: string;
}

/** Opens a device; rejects with a `UsbError` of code `not-found` when none matches. */
export type DeviceOpener = (
  selector: RecipeDeviceSelector,
) => Promise<RecipeDevice>;

/** Options of the waits of {@linkcode RecipeHotplug}. */
export interface RecipeWaitOptions {
  /** Give up after this many milliseconds (a `UsbError` of code `timeout`). */
  timeout?: number;
  /** Stops the wait. */
  signal?: AbortSignal;
}

/**
 * The waits the runner uses for `waitFor`, `waitGone`, plug and re-enumerate
 * steps: usbkit's `waitForDevice` and `waitForDeviceGone` (src/hotplug.ts)
 * by default.
 */
export interface RecipeHotplug {
  /** Resolves when a device matching the selector is present and openable. */
  waitForDevice(
    selector: RecipeDeviceSelector,
    options?: RecipeWaitOptions,
  ): Promise<unknown>;
  /** Resolves when no device matches the selector any more. */
  waitForDeviceGone(
    selector: RecipeDeviceSelector,
    options?: RecipeWaitOptions,
  ): Promise<void>;
}

/**
 * What `unplug`, `plug` and `replug` steps drive: the virtual bench's gadgets
 * and QEMU devices (kernel/guest.ts) by default, inside a bench guest.
 */
export interface RecipeBench {
  /** The bench device a selector means (by serial, else by ids), if one. */
  find(selector: RecipeDeviceSelector): Promise<string | undefined>;
  /** Starts pulling the device out; the runner then waits for it to be gone. */
  unplug(name: string, options: { timeout: number }): Promise<void>;
  /** Plugs it in again; the runner then waits for it to be openable. */
  plug(name: string, options: { timeout: number }): Promise<void>;
}

async function realHotplug(): Promise<RecipeHotplug> {
  // Loaded on first use, as the device layer is (see openReal).
  const hotplug = await import("../hotplug.ts");
  return {
    waitForDevice: (selector, options) =>
      hotplug.waitForDevice(selector, options),
    waitForDeviceGone: (selector, options) =>
      hotplug.waitForDeviceGone(selector, options),
  };
}

async function guestBench(): Promise<RecipeBench> {
  const guest = await import("../../kernel/guest.ts");
  if (!guest.inGuest()) {
    throw new StepError(
      "unplug, plug and replug steps drive the virtual bench: run the recipe inside it (deno task vm -- deno task usb run <recipe>)",
    );
  }
  const kindOf = (name: string) => {
    const info = guest.benchInfo();
    if (info.gadgets.some((g) => g.name === name)) return "gadget";
    if (info.qemuDevices.some((d) => d.name === name)) return "qemu";
    const names = [...info.gadgets, ...info.qemuDevices].map((d) => d.name);
    throw new StepError(
      `the bench has no device "${name}" (it has ${names.join(", ")})`,
    );
  };
  return {
    find(selector) {
      const info = guest.benchInfo();
      const all = [...info.gadgets, ...info.qemuDevices];
      const matches = all.filter((d) =>
        selector.serial !== undefined
          ? d.serial === selector.serial
          : (selector.vendorId === undefined ||
            d.vendorId === selector.vendorId) &&
            (selector.productId === undefined ||
              d.productId === selector.productId) &&
            (selector.vendorId !== undefined ||
              selector.productId !== undefined)
      );
      return Promise.resolve(
        matches.length === 1 ? matches[0]!.name : undefined,
      );
    },
    async unplug(name, { timeout }) {
      if (kindOf(name) === "gadget") {
        await guest.unplugGadget(name, { wait: false, timeoutMs: timeout });
      } else {
        await guest.qemuDeviceDel(name, { wait: false, timeoutMs: timeout });
      }
    },
    async plug(name, { timeout }) {
      if (kindOf(name) === "gadget") {
        await guest.plugGadget(name, { timeoutMs: timeout });
      } else await guest.qemuDeviceAdd(name, { timeoutMs: timeout });
    },
  };
}

async function openReal(selector: RecipeDeviceSelector): Promise<RecipeDevice> {
  // Loaded on first use: the device layer needs the helper library, the
  // runner's logic (and `--dry-run`) does not. The literal specifier lets the
  // type checker hold usbkit's Device to the RecipeDevice shape.
  const { open } = await import("../device.ts");
  return await open(selector);
}

// ---------------------------------------------------------------------------
// Results

/** How a step ended. */
export type StepStatus = "passed" | "failed" | "skipped";

/** The outcome of one step. */
export interface StepResult {
  /** Its number, for people: `3`, or `4.2` inside a repeat. */
  id: string;
  /** Where it is in the recipe: `steps[3].repeat.steps[1]`. */
  path: string;
  /** The step's kind. */
  kind: StepKind;
  /** What the step does, such as `bulk IN 0x81, 512 B`. */
  title: string;
  /** The step's `name`, when it has one. */
  name?: string;
  /** The iteration (from 1) for a step inside a repeat. */
  iteration?: number;
  /** How it ended. */
  status: StepStatus;
  /** Why it was skipped. */
  skipReason?: string;
  /** When it started, in ms since the run started. */
  startMs: number;
  /** How long it took, in ms. */
  durationMs: number;
  /** A one-line summary of what happened: `13 B`, `64.0 MiB at 120 MB/s`. */
  summary?: string;
  /** The transfer, for transfer steps. */
  transfer?: {
    /** `in` or `out`. */
    direction: "in" | "out";
    /** `ok`, `stall`, `babble`. */
    status?: string;
    /** Bytes asked for (IN). */
    requested?: number;
    /** Bytes received or written. */
    length?: number;
    /** The data received (IN) or sent (OUT). */
    data?: Uint8Array;
  };
  /** For streams. */
  stream?: {
    bytes: number;
    durationMs: number;
    rate: number;
    minRate?: number;
  };
  /** Variables this step captured. */
  saved?: Record<string, VarValue>;
  /** The message of a log step. */
  message?: string;
  /** What did not match. */
  failures: Failure[];
  /** The error a transfer ended with, when it threw. */
  error?: { code: string; message: string; hint?: string };
  /** Steps run inside a repeat, every iteration. */
  children?: StepResult[];
  /** The device the step acted on: its name, in a recipe with `devices`. */
  device?: string;
  /** What the step waited for, and how long. */
  waits?: StepWait[];
  /**
   * With a capture (`usb run --capture FILE`): the packets the step
   * produced, numbered from 1 as Wireshark numbers frames (`count` 0, and
   * `first` and `last` 0, when it produced none).
   */
  packets?: { first: number; last: number; count: number };
  /** With a capture, for a failed step: its last packets, decoded (src/capture/read.ts). */
  lastPackets?: string[];
}

/** A wait of a step: for a device to appear (openable) or to disappear. */
export interface StepWait {
  /** The device's name in the recipe. */
  device: string;
  /** What was waited for. */
  for: "appear" | "disappear";
  /** How long it took, in ms (until the step failed, when it did not happen). */
  durationMs: number;
  /** Whether it happened within the step's timeout. */
  ok: boolean;
}

/** A device of a run, as it was opened. */
export interface RunDevice {
  /** Its name in the recipe (`device` for a one-device recipe). */
  name: string;
  /** The selector, described. */
  selector: string;
  /** idVendor, once opened. */
  vendorId?: number;
  /** idProduct, once opened. */
  productId?: number;
  /** How long the run waited for it to appear at the start, in ms. */
  waitedMs: number;
}

/** How a run ended. */
export type RunOutcome =
  | "passed"
  | "failed"
  | "no-device"
  | "invalid"
  | "interrupted";

/** The outcome of a whole run. */
export interface RunResult {
  /** The recipe's name, description, and file. */
  recipe: { name: string; description?: string; file?: string };
  /**
   * How it ended: `no-device` and `invalid` mean the steps never ran;
   * `interrupted` means a signal (Ctrl-C, SIGTERM, SIGHUP) or the caller's
   * AbortSignal stopped it, and the device was released before the result.
   */
  outcome: RunOutcome;
  /** The device that was opened, and how long it took to appear. */
  device?: {
    selector: string;
    vendorId?: number;
    productId?: number;
    waitedMs: number;
  };
  /** When the run started (ISO 8601). */
  startedAt: string;
  /** How long it took, in ms. */
  durationMs: number;
  /** Every device of the recipe, as opened at the start (also those that were not). */
  devices?: RunDevice[];
  /** The top-level steps. */
  steps: StepResult[];
  /** The `finally` steps, run after the steps whatever happened. */
  finally?: StepResult[];
  /** The variables at the end: from the recipe, `--var`, and captures. */
  vars: Record<string, VarValue>;
  /** What stopped the run before or outside the steps: no device, a busy interface. */
  error?: { code: string; message: string; hint?: string };
  /** Counts of steps (repeats count their inner steps once per iteration). */
  summary: { passed: number; failed: number; skipped: number; total: number };
}

/** What {@linkcode RunObserver.runStarted} is told. */
export interface RunStart {
  /** The recipe. */
  recipe: Recipe;
  /** The recipe's name, with its `${…}` references resolved. */
  name: string;
  /** The device selector, described. */
  selector: string;
  /** How long the run waits for the device, in ms. */
  waitMs: number;
}

/** What {@linkcode RunObserver.deviceReady} is told. */
export interface DeviceReady {
  /** The device's name in the recipe, in a recipe with several. */
  name?: string;
  /** The device selector, described. */
  selector: string;
  /** idVendor of the device opened. */
  vendorId: number;
  /** idProduct of the device opened. */
  productId: number;
  /** How long it took to appear, in ms. */
  waitedMs: number;
}

/** What {@linkcode RunObserver.stepStarted} is told. */
export interface StepStart {
  /** The step's number: `3`, `4.2`. */
  id: string;
  /** What the step does. */
  title: string;
  /** The step's kind. */
  kind: StepKind;
  /** 0 at top level, 1 inside a repeat, … */
  depth: number;
  /** Asks for no line unless the step fails (inside a long repeat). */
  quiet: boolean;
}

/** What {@linkcode RunObserver.streamProgress} is told. */
export interface StreamProgress {
  /** The stream step's number. */
  id: string;
  /** Bytes moved so far. */
  bytes: number;
  /** Bytes the stream is to move, when it has `bytes`. */
  targetBytes?: number;
  /** How long the stream is to run, when it has `duration`. */
  targetMs?: number;
  /** Time since the stream started, in ms. */
  elapsedMs: number;
}

/** Called as a run progresses, for live output. */
export interface RunObserver {
  /** Before the device is opened. */
  runStarted?(info: RunStart): void;
  /** Once the device is open and its interfaces are claimed. */
  deviceReady?(info: DeviceReady): void;
  /** A step starts. */
  stepStarted?(info: StepStart): void;
  /** A stream moved more data. */
  streamProgress?(info: StreamProgress): void;
  /** A step ended (also a skipped one). */
  stepFinished?(
    result: StepResult,
    info: { depth: number; quiet: boolean },
  ): void;
  /** The `finally` steps start (after the steps, whatever happened). */
  finallyStarted?(): void;
  /** The run ended. */
  runFinished?(result: RunResult): void;
}

/** Options of {@linkcode runRecipe}. */
export interface RunOptions {
  /** Variables that override the recipe's `vars` (from `--var`). */
  vars?: Record<string, VarValue>;
  /** Opens the device; the default is usbkit's `open()`. */
  openDevice?: DeviceOpener;
  /** Told about progress, for live output. */
  observer?: RunObserver;
  /** Stops the run (Ctrl-C). */
  signal?: AbortSignal;
  /** The folder `{ file }` data is read relative to. */
  baseDir?: string;
  /** The recipe file, for reports. */
  file?: string;
  /** The waits of waitFor, waitGone and plug steps (default: src/hotplug.ts). */
  hotplug?: RecipeHotplug;
  /** What unplug and plug steps drive (default: the virtual bench, in its guest). */
  bench?: RecipeBench;
  /**
   * The capture the run's devices record into (`usb run --capture`): each
   * step's result gets its packet range, a failed one its last packets.
   */
  capture?: Capture;
}

/** The step timeout when neither the step nor the recipe sets one. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** A repeat shows its inner steps when it runs at most this many; otherwise only failures. */
const QUIET_ABOVE = 20;

// ---------------------------------------------------------------------------
// Describing steps

const STANDARD_REQUESTS: Record<number, string> = {
  // USB 3.2 spec, table 9-5 (standard request codes).
  0x00: "GET_STATUS",
  0x01: "CLEAR_FEATURE",
  0x03: "SET_FEATURE",
  0x05: "SET_ADDRESS",
  0x06: "GET_DESCRIPTOR",
  0x07: "SET_DESCRIPTOR",
  0x08: "GET_CONFIGURATION",
  0x09: "SET_CONFIGURATION",
  0x0a: "GET_INTERFACE",
  0x0b: "SET_INTERFACE",
  0x0c: "SYNCH_FRAME",
};

const DESCRIPTOR_TYPES: Record<number, string> = {
  // USB 3.2 spec, table 9-6 (descriptor types).
  1: "device",
  2: "configuration",
  3: "string",
  6: "device qualifier",
  15: "BOS",
};

type Maybe<T> = T | Template<T>;

function show(v: Maybe<number> | undefined, hex = false, digits = 2): string {
  if (v === undefined) return "?";
  if (typeof v !== "number") return v.source;
  return hex ? `0x${v.toString(16).padStart(digits, "0")}` : String(v);
}

function showSize(v: Maybe<number>): string {
  return typeof v === "number" ? formatSize(v) : `${v.source} B`;
}

/**
 * Describes data for people: `31 B`, `text "hello"`, `random pattern, 4 KiB`.
 *
 * @param d the data, as validated or resolved
 * @returns the text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeData } from "./runner.ts";
 * assert.equal(describeData({ text: "hi" }), 'text "hi"');
 * ```
 */
export function describeData(d: DataSpec | Resolved<DataSpec>): string {
  if ("list" in d && d.list) return `${d.list.length} B`;
  if ("hex" in d && d.hex !== undefined) {
    return d.hex instanceof Uint8Array
      ? `${d.hex.length} B`
      : `hex ${d.hex.source}`;
  }
  if ("text" in d && d.text !== undefined) {
    return `text ${JSON.stringify(String(d.text))}`;
  }
  if ("file" in d && d.file !== undefined) return `file ${String(d.file)}`;
  if ("pattern" in d && d.pattern !== undefined) {
    return `${d.pattern} pattern, ${showSize(d.length ?? 0)}`;
  }
  return "data";
}

/**
 * What a step does, in one line, for the terminal, the plan and the reports.
 * `${…}` references that are not resolved yet are shown as written.
 *
 * @param step a validated step
 * @returns such as `bulk IN 0x81, 512 B` or `control IN GET_DESCRIPTOR(device), 18 B`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecipeSchema } from "./schema.ts";
 * import { describeStep } from "./runner.ts";
 * const r = RecipeSchema.parse({
 *   name: "x", device: { serial: "1" }, interfaces: [0],
 *   steps: [{ bulk: { endpoint: 0x81, in: 512 } }],
 * });
 * assert.ok(describeStep(r.steps[0]!) === "bulk IN 0x81, 512 B");
 * ```
 */
export function describeStep(step: Step | TaggedStep): string {
  const t = "kind" in step && "body" in step
    ? step as TaggedStep
    : tagStep(step as Step);
  switch (t.kind) {
    case "control": {
      const b = t.body;
      const dir = b.in !== undefined ? "IN" : "OUT";
      let what: string;
      const name = b.requestType === "standard" && typeof b.request === "number"
        ? STANDARD_REQUESTS[b.request]
        : undefined;
      if (name === "GET_DESCRIPTOR" && typeof b.value === "number") {
        const type = DESCRIPTOR_TYPES[b.value >> 8] ?? `type ${b.value >> 8}`;
        what = `GET_DESCRIPTOR(${type}${
          b.value >> 8 === 3 ? ` ${b.value & 0xff}` : ""
        })`;
      } else if (name) {
        what = `${name} value=${show(b.value ?? 0, true, 4)} index=${
          show(b.index ?? 0, true, 4)
        }`;
      } else {
        what = `${b.requestType}/${b.recipient ?? "device"} request ${
          show(b.request, true)
        } value=${show(b.value ?? 0, true, 4)} index=${
          show(b.index ?? 0, true, 4)
        }`;
      }
      const size = b.in !== undefined
        ? showSize(b.in)
        : b.out !== undefined
        ? describeData(b.out)
        : "";
      return `control ${dir} ${what}, ${size}`;
    }
    case "bulk":
    case "interrupt": {
      const b = t.body;
      const size = b.in !== undefined
        ? showSize(b.in)
        : b.out !== undefined
        ? describeData(b.out)
        : "";
      return `${t.kind} ${b.in !== undefined ? "IN" : "OUT"} ${
        show(b.endpoint, true)
      }, ${size}`;
    }
    case "iso": {
      const b = t.body;
      if (b.in !== undefined) {
        const what = Array.isArray(b.in)
          ? `${b.in.length} packets`
          : showSize(b.in);
        return `iso IN ${show(b.endpoint, true)}, ${what}`;
      }
      return `iso OUT ${show(b.endpoint, true)}, ${
        b.out ? describeData(b.out) : ""
      }`;
    }
    case "stream": {
      const b = t.body;
      const amount = [
        b.bytes !== undefined ? showSize(b.bytes) : undefined,
        b.duration !== undefined
          ? `for ${
            typeof b.duration === "number"
              ? formatDuration(b.duration)
              : b.duration
          }`
          : undefined,
      ].filter(Boolean).join(" or ");
      const ts = b.transferSize === undefined
        ? "64 KiB"
        : showSize(b.transferSize);
      return `stream ${show(b.endpoint, true)}, ${amount} (${ts} × ${
        show(b.inFlight ?? 16)
      } in flight)`;
    }
    case "delay":
      return `delay ${
        typeof t.body === "number" ? formatDuration(t.body) : t.body.source
      }`;
    case "repeat":
      return `repeat ×${show(t.body.count)}${
        t.body.var ? ` (${String(t.body.var)})` : ""
      }`;
    case "reset":
      return t.body.reenumerate
        ? `reset ${the(t.body.device)}, and wait for it to enumerate again`
        : `reset ${the(t.body.device)}`;
    case "waitFor":
      return `wait for ${the(t.body.device)} to appear`;
    case "waitGone":
      return `wait for ${the(t.body.device)} to disappear`;
    case "unplug":
      return `unplug ${the(t.body.device)}${benchOf(t.body.bench)}`;
    case "plug":
      return `plug ${the(t.body.device)} in${benchOf(t.body.bench)}`;
    case "replug":
      return `unplug and replug ${the(t.body.device)}${benchOf(t.body.bench)}`;
    case "clearHalt":
      return `clear halt on ${show(t.body.endpoint, true)}`;
    case "selectAlternate":
      return `interface ${show(t.body.interface)}: alternate setting ${
        show(t.body.alternate)
      }`;
    case "log":
      return "log";
  }
}

/** A step's device for people: `the device`, or its name. */
function the(device: string | undefined): string {
  return device === undefined ? "the device" : device;
}

function benchOf(bench: string | undefined): string {
  return bench === undefined ? "" : ` (bench ${bench})`;
}

/**
 * Describes a device selector: `0525:a4a0`, `serial "usbkit-lb-0001"`, …
 *
 * @param s the selector, as validated
 * @returns the text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeSelector } from "./runner.ts";
 * assert.ok(describeSelector({ vendorId: 0x0525, productId: 0xa4a0 }) === "0525:a4a0");
 * ```
 */
export function describeSelector(
  s: DeviceSelectorSpec | RecipeDeviceSelector,
): string {
  const parts: string[] = [];
  const id = (
    v: unknown,
  ) => (typeof v === "number"
    ? v.toString(16).padStart(4, "0")
    : String(v ?? "*"));
  if (s.vendorId !== undefined || s.productId !== undefined) {
    parts.push(`${id(s.vendorId)}:${id(s.productId)}`);
  }
  if (s.serial !== undefined) {
    parts.push(`serial ${JSON.stringify(String(s.serial))}`);
  }
  if (s.port !== undefined) parts.push(`port ${String(s.port)}`);
  if (s.path !== undefined) parts.push(String(s.path));
  return parts.join(", ");
}

// ---------------------------------------------------------------------------
// Running

class StepError extends Error {}

/** The run's error when it was interrupted; names the signal when the reason is one. */
function interruption(
  signal: AbortSignal | undefined,
): { code: string; message: string; hint?: string } {
  const reason = signal?.reason;
  const name = typeof reason === "string" && /^SIG[A-Z]+$/.test(reason)
    ? reason
    : undefined;
  return {
    code: "interrupted",
    message: `the run was interrupted${name ? ` by ${name}` : ""}`,
    hint:
      "the device was released and kernel drivers usbkit detached were bound again; the steps not run are skipped",
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

function errorInfo(
  e: unknown,
): { code: string; message: string; hint?: string } {
  if (
    e instanceof UsbError ||
    (e instanceof Error && typeof (e as { code?: unknown }).code === "string")
  ) {
    const u = e as Error & { code: string; hint?: string };
    return u.hint
      ? { code: u.code, message: u.message, hint: u.hint }
      : { code: u.code, message: u.message };
  }
  if (e instanceof InterpolationError) {
    return {
      code: "invalid-argument",
      message: `${e.path ?? ""}: ${e.message}`,
    };
  }
  if (e instanceof StepError) {
    return { code: "invalid-argument", message: e.message };
  }
  return {
    code: "internal",
    message: e instanceof Error ? e.message : String(e),
  };
}

/**
 * A busy interface held by a kernel driver: the library's hint names its own
 * option (`claimInterface(n, { detachKernelDriver: true })`); a recipe says
 * it in its `interfaces` list.
 */
function inRecipeTerms(e: unknown, n: number): unknown {
  if (
    !(e instanceof UsbError) || e.code !== "busy" ||
    !e.hint?.includes("detachKernelDriver")
  ) return e;
  return new UsbError(e.code, e.message, {
    ...(e.errno === undefined ? {} : { errno: e.errno }),
    hint:
      `write the interface as {number: ${n}, detachKernelDriver: true} in the recipe's interfaces, ` +
      `to detach the kernel driver for the run (it is bound again at the end)`,
    cause: e,
  });
}

function partialData(e: unknown): Uint8Array | undefined {
  return e instanceof UsbError ? e.data : undefined;
}

/** A device of the recipe, while the run goes. */
interface DeviceState {
  /** Its name in the recipe (`device` for a one-device recipe). */
  name: string;
  /** As validated. */
  spec: DeviceEntrySpec;
  /** The selector, resolved, without `wait`. */
  selector: RecipeDeviceSelector;
  /** The selector, described. */
  selectorText: string;
  /** How long the run waits for it at the start, in ms. */
  waitMs: number;
  /** The open device, while it is open. */
  handle: RecipeDevice | undefined;
  /** Its claimed interfaces. */
  interfaces: RecipeInterface[];
  /** Endpoints looked up, by address. */
  endpoints: Map<number, RecipeEndpoint>;
  /** The last time it was opened. */
  opened?: RunDevice;
  /** How long the run waited for it at the start, in ms. */
  waitedAtStart?: number;
  /** How it was opened at the start. */
  atStart?: RunDevice;
}

interface Context {
  recipe: Recipe;
  devices: Map<string, DeviceState>;
  vars: Record<string, VarValue>;
  observer: RunObserver;
  signal: AbortSignal | undefined;
  baseDir: string;
  t0: number;
  timeout: number;
  stopped: boolean;
  openDevice: DeviceOpener;
  hotplug: () => Promise<RecipeHotplug>;
  bench: () => Promise<RecipeBench>;
  capture: Capture | undefined;
}

/** The context of a step that acts on an open device. */
interface StepContext extends Context {
  device: RecipeDevice;
  interfaces: RecipeInterface[];
  endpoints: Map<number, RecipeEndpoint>;
}

function transferOptions(ctx: Context, timeout: number): RecipeTransferOptions {
  return ctx.signal ? { timeout, signal: ctx.signal } : { timeout };
}

function endpointFor(ctx: StepContext, address: number): RecipeEndpoint {
  const cached = ctx.endpoints.get(address);
  if (cached) return cached;
  for (const iface of ctx.interfaces) {
    let ep: RecipeEndpoint | undefined;
    try {
      ep = iface.endpoint(address);
    } catch {
      continue; // not this interface's endpoint
    }
    ctx.endpoints.set(address, ep);
    return ep;
  }
  const claimed = ctx.interfaces.map((i) => i.interfaceNumber).join(", ") ||
    "none";
  throw new StepError(
    `endpoint 0x${
      address.toString(16).padStart(2, "0")
    } is not on a claimed interface (claimed: ${claimed})`,
  );
}

/**
 * The bytes a data spec stands for.
 *
 * @param spec the data, with templates resolved
 * @param options the folder files are relative to, and the packet size for
 * the `sourcesink` pattern
 * @returns fresh bytes (the caller may hand them to a transfer, which may
 * take them over)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dataBytes } from "./runner.ts";
 * const bytes = await dataBytes({ text: "hi" }, { baseDir: "." });
 * assert.ok(bytes.length === 2);
 * ```
 */
export async function dataBytes(
  spec: Resolved<DataSpec>,
  options: { baseDir: string; maxPacketSize?: number },
): Promise<Uint8Array> {
  if ("list" in spec && spec.list) return Uint8Array.from(spec.list);
  if ("hex" in spec && spec.hex) return spec.hex.slice();
  const s = spec as {
    text?: string;
    file?: string;
    offset?: number;
    length?: number;
    pattern?: PatternKind;
    seed?: number;
    maxPacketSize?: number;
  };
  if (s.text !== undefined) return new TextEncoder().encode(s.text);
  if (s.file !== undefined) {
    const { resolve } = await import("node:path");
    const bytes = await Deno.readFile(resolve(options.baseDir, s.file));
    const start = s.offset ?? 0;
    return bytes.slice(
      start,
      s.length === undefined ? undefined : start + s.length,
    );
  }
  if (s.pattern !== undefined) {
    const mps = s.maxPacketSize ?? options.maxPacketSize;
    return makePattern(s.pattern, s.length ?? 0, {
      ...(s.seed === undefined ? {} : { seed: s.seed }),
      ...(mps === undefined ? {} : { maxPacketSize: mps }),
    });
  }
  return new Uint8Array(0);
}

function summarizeIn(data: Uint8Array): string {
  return data.length <= 16
    ? `${data.length} B: ${formatHex(data)}`
    : `${formatSize(data.length)}`;
}

function formatSaved(saved: Record<string, VarValue>): string {
  return Object.entries(saved).map(([k, v]) =>
    `${k}=${typeof v === "number" ? v : JSON.stringify(v)}`
  ).join(" ");
}

type TransferBody = {
  expect?: Resolved<StepBody<"bulk">>["expect"];
  save?: Resolved<StepBody<"bulk">>["save"];
};

/** Expectations with `data` turned into bytes (it may be a file or a pattern). */
async function checkable(
  expect: TransferBody["expect"],
  ctx: Context,
  maxPacketSize: number | undefined,
): Promise<CheckedExpectation | undefined> {
  if (!expect) return undefined;
  const { data, ...rest } = expect;
  if (data === undefined) return rest;
  return {
    ...rest,
    data: await dataBytes(
      data,
      maxPacketSize
        ? { baseDir: ctx.baseDir, maxPacketSize }
        : { baseDir: ctx.baseDir },
    ),
  };
}

/** Records an IN transfer's outcome: expectations, captures, summary. */
async function finishIn(
  result: StepResult,
  body: TransferBody,
  requested: number,
  run: () => Promise<{ status: string; data: Uint8Array }>,
  ctx: Context,
  maxPacketSize: number | undefined,
): Promise<void> {
  result.transfer = { direction: "in", requested };
  let status: string;
  let data: Uint8Array;
  try {
    ({ status, data } = await run());
  } catch (e) {
    // Keep what arrived before a timeout or an unplug: it is often the clue.
    const partial = partialData(e);
    if (partial) {
      result.transfer = {
        direction: "in",
        requested,
        length: partial.length,
        data: partial.slice(),
      };
    }
    throw e;
  }
  result.transfer = {
    direction: "in",
    requested,
    status,
    length: data.length,
    data,
  };
  result.failures.push(
    ...checkTransfer(
      await checkable(body.expect, ctx, maxPacketSize),
      { status, length: data.length, data },
      maxPacketSize ? { maxPacketSize, requested } : { requested },
    ),
  );
  if (body.save && status === "ok") {
    const { vars, failures } = capture(body.save, data);
    Object.assign(ctx.vars, vars);
    result.saved = vars;
    result.failures.push(...failures);
  }
  result.summary = status === "ok"
    ? summarizeIn(data)
    : `${status}, ${data.length} B`;
  if (result.saved && Object.keys(result.saved).length) {
    result.summary += ` → ${formatSaved(result.saved)}`;
  }
}

/** Sends an OUT transfer's data and records its outcome. */
async function finishOut(
  result: StepResult,
  body: TransferBody & { out: Resolved<DataSpec> },
  run: (data: Uint8Array) => Promise<{ status: string; written: number }>,
  ctx: Context,
  maxPacketSize: number | undefined,
): Promise<void> {
  const data = await dataBytes(
    body.out,
    maxPacketSize
      ? { baseDir: ctx.baseDir, maxPacketSize }
      : { baseDir: ctx.baseDir },
  );
  // The transfer may take the buffer over (zero-copy: the view is detached at
  // submit), so the report keeps its own copy.
  const sent = data.slice();
  result.transfer = { direction: "out", requested: sent.length, data: sent };
  const { status, written } = await run(data);
  result.transfer = {
    direction: "out",
    requested: sent.length,
    status,
    length: written,
    data: sent,
  };
  result.failures.push(
    ...checkTransfer(await checkable(body.expect, ctx, maxPacketSize), {
      status,
      length: written,
    }),
  );
  result.summary = status === "ok"
    ? `${formatSize(written)} written`
    : `${status} after ${written} B`;
}

function firstBadStatus(packets: readonly { status: string }[]): string {
  return packets.find((p) => p.status !== "ok")?.status ?? "ok";
}

function splitPackets(total: number, maxPacketSize: number): number[] {
  return Array.from(
    { length: Math.ceil(total / maxPacketSize) },
    (_, i) => Math.min(maxPacketSize, total - i * maxPacketSize),
  );
}

async function runControl(
  body: Resolved<StepBody<"control">>,
  result: StepResult,
  ctx: StepContext,
  timeout: number,
) {
  const options = transferOptions(ctx, timeout);
  const setup: RecipeSetup = {
    requestType: body.requestType,
    recipient: body.recipient ?? "device",
    request: body.request,
    value: body.value ?? 0,
    index: body.index ?? 0,
  };
  if (body.in !== undefined) {
    const length = body.in;
    await finishIn(
      result,
      body,
      length,
      async () => {
        const r = await ctx.device.controlTransferIn(setup, length, options);
        return { status: r.status, data: r.data.slice() };
      },
      ctx,
      undefined,
    );
  } else if (body.out !== undefined) {
    await finishOut(
      result,
      { ...body, out: body.out },
      async (data) => {
        const r = await ctx.device.controlTransferOut(setup, data, options);
        return { status: r.status, written: r.bytesWritten };
      },
      ctx,
      undefined,
    );
  }
}

async function runEndpointTransfer(
  body: Resolved<StepBody<"bulk">>,
  result: StepResult,
  ctx: StepContext,
  timeout: number,
) {
  const ep = endpointFor(ctx, body.endpoint);
  const options = transferOptions(ctx, timeout);
  if (body.in !== undefined) {
    const length = body.in;
    await finishIn(
      result,
      body,
      length,
      async () => {
        const r = await ep.transferIn(length, options);
        // Copied: a zero-copy view is only valid until its buffer is reused.
        return { status: r.status, data: r.data.slice() };
      },
      ctx,
      ep.packetSize,
    );
  } else if (body.out !== undefined) {
    await finishOut(
      result,
      { ...body, out: body.out },
      async (data) => {
        const r = await ep.transferOut(data, options);
        return { status: r.status, written: r.bytesWritten };
      },
      ctx,
      ep.packetSize,
    );
  }
}

async function runIso(
  body: Resolved<StepBody<"iso">>,
  result: StepResult,
  ctx: StepContext,
  timeout: number,
) {
  const ep = endpointFor(ctx, body.endpoint);
  const options = transferOptions(ctx, timeout);
  const mps = ep.packetSize;
  if (body.in !== undefined) {
    const lengths = Array.isArray(body.in)
      ? body.in
      : splitPackets(body.in, mps);
    await finishIn(
      result,
      body,
      lengths.reduce((a, b) => a + b, 0),
      async () => {
        const r = await ep.isochronousTransferIn(lengths, options);
        return { status: firstBadStatus(r.packets), data: r.data.slice() };
      },
      ctx,
      mps,
    );
  } else if (body.out !== undefined) {
    await finishOut(
      result,
      { ...body, out: body.out },
      async (data) => {
        const r = await ep.isochronousTransferOut(
          data,
          body.packets ?? splitPackets(data.length, mps),
          options,
        );
        return {
          status: firstBadStatus(r.packets),
          written: r.packets.reduce((a, p) => a + p.bytesWritten, 0),
        };
      },
      ctx,
      mps,
    );
  }
}

async function runStream(
  body: Resolved<StepBody<"stream">>,
  result: StepResult,
  ctx: StepContext,
  timeout: number,
) {
  const ep = endpointFor(ctx, body.endpoint);
  const transferSize = body.transferSize ?? 65536;
  const inFlight = body.inFlight ?? 16;
  const target = body.bytes;
  const limitMs = body.duration;
  const controller = new AbortController();
  let why: "duration" | "idle" | "outer" | undefined;
  const stop = (reason: typeof why) => {
    why ??= reason;
    controller.abort();
  };
  const outer = () => stop("outer");
  ctx.signal?.addEventListener("abort", outer, { once: true });
  // No data for a whole timeout means the device has stopped; without this a
  // stalled stream would wait for ever.
  let idle = setTimeout(() => stop("idle"), timeout);
  const bump = () => {
    clearTimeout(idle);
    idle = setTimeout(() => stop("idle"), timeout);
  };
  const limit = limitMs === undefined
    ? undefined
    : setTimeout(() => stop("duration"), limitMs);

  const pattern = body.expect?.pattern;
  const mps = pattern?.maxPacketSize ?? ep.packetSize;
  const checker = pattern
    ? new PatternChecker(pattern.type, mps, transferSize)
    : undefined;
  let mismatched = 0;
  let firstBad: number | undefined;
  let total = 0;
  const t0 = performance.now();
  let lastProgress = 0;
  const progress = (force = false) => {
    const now = performance.now();
    if (!force && now - lastProgress < 100) return;
    lastProgress = now;
    ctx.observer.streamProgress?.({
      id: result.id,
      bytes: total,
      ...(target === undefined ? {} : { targetBytes: target }),
      ...(limitMs === undefined ? {} : { targetMs: limitMs }),
      elapsedMs: now - t0,
    });
  };

  try {
    if (ep.direction === "in") {
      if (body.data !== undefined) {
        throw new StepError("data is written on OUT streams only");
      }
      for await (
        const chunk of ep.stream({
          transferSize,
          inFlight,
          signal: controller.signal,
        })
      ) {
        bump();
        const use = target === undefined
          ? chunk
          : chunk.subarray(0, Math.min(chunk.length, target - total));
        if (checker) {
          const bad = checker.mismatches(use);
          if (bad && firstBad === undefined) firstBad = total;
          mismatched += bad;
        }
        total += use.length;
        progress();
        if (target !== undefined && total >= target) break;
      }
    } else {
      const base = body.data === undefined
        ? new Uint8Array(transferSize)
        : await dataBytes(body.data, {
          baseDir: ctx.baseDir,
          maxPacketSize: ep.packetSize,
        });
      const chunk = new Uint8Array(Math.max(transferSize, base.length));
      for (let i = 0; i < chunk.length; i += Math.max(1, base.length)) {
        chunk.set(base.subarray(0, chunk.length - i), i);
      }
      const writer = ep.openWritable({ inFlight }).getWriter();
      const aborted = new Promise<void>((resolve) =>
        controller.signal.addEventListener("abort", () => resolve())
      );
      try {
        while (
          !controller.signal.aborted && (target === undefined || total < target)
        ) {
          const n = target === undefined
            ? chunk.length
            : Math.min(chunk.length, target - total);
          // Each write gets its own copy: a write may take its buffer over.
          const wrote = writer.write(chunk.slice(0, n));
          await Promise.race([wrote, aborted]);
          if (controller.signal.aborted) break;
          bump();
          total += n;
          progress();
        }
        if (!controller.signal.aborted) {
          await Promise.race([writer.close(), aborted]);
        }
      } finally {
        if (controller.signal.aborted) await writer.abort().catch(() => {});
      }
    }
  } catch (e) {
    // Our own abort ends the stream on purpose; anything else is an error.
    if (!(why && controller.signal.aborted)) throw e;
  } finally {
    clearTimeout(idle);
    if (limit !== undefined) clearTimeout(limit);
    ctx.signal?.removeEventListener("abort", outer);
  }
  const elapsed = performance.now() - t0;
  progress(true);
  if (why === "outer") {
    throw new UsbError("cancelled", "the run was interrupted");
  }
  const rate = elapsed > 0 ? total / (elapsed / 1000) : 0;
  result.stream = { bytes: total, durationMs: elapsed, rate };
  result.summary = `${formatSize(total)} in ${formatDuration(elapsed)}, ${
    formatRate(rate)
  }`;
  if (why === "idle") {
    result.failures.push({
      message: `stream: no data for ${formatDuration(timeout)} after ${
        formatSize(total)
      }`,
    });
  }
  if (target !== undefined && total < target && why !== "idle") {
    result.failures.push({
      message: `stream: expected ${formatSize(target)}, moved ${
        formatSize(total)
      }`,
    });
  }
  const minRate = body.expect?.minRate;
  if (minRate !== undefined) {
    result.stream.minRate = minRate;
    if (rate < minRate) {
      result.failures.push({
        message: `rate: expected at least ${formatRate(minRate)}, got ${
          formatRate(rate)
        }`,
      });
    }
  }
  if (pattern && mismatched > 0) {
    const label = pattern.type === "sourcesink"
      ? `pattern sourcesink (maxPacketSize ${mps})`
      : `pattern ${pattern.type}`;
    result.failures.push({
      message: `${label}: ${mismatched} of ${
        formatSize(total)
      } differ, the first in the transfer at byte ${firstBad}`,
    });
  }
}

function newResult(
  id: string,
  path: string,
  t: TaggedStep,
  iteration: number | undefined,
  ctx: Context,
): StepResult {
  // delay and log steps are a bare value, with no name.
  const name = typeof t.body === "object" && t.body !== null
    ? (t.body as { name?: unknown }).name
    : undefined;
  return {
    id,
    path,
    kind: t.kind,
    title: describeStep(t),
    ...(typeof name === "string" || name instanceof Template
      ? { name: textOf(name, ctx.vars) }
      : {}),
    ...(iteration === undefined ? {} : { iteration }),
    status: "passed",
    startMs: performance.now() - ctx.t0,
    durationMs: 0,
    failures: [],
  };
}

/**
 * A name with its `${…}` references resolved with the variables known now;
 * as written when one is not known (a name never fails a run).
 */
function textOf(
  text: string | Template<string>,
  vars: Record<string, VarValue>,
): string {
  try {
    return text instanceof Template
      ? text.resolve(vars)
      : interpolate(text, vars);
  } catch (e) {
    if (e instanceof InterpolationError) return String(text);
    throw e;
  }
}

function skipped(
  id: string,
  path: string,
  step: Step,
  reason: string,
  ctx: Context,
  iteration?: number,
): StepResult {
  const t = tagStep(step);
  return {
    ...newResult(id, path, t, iteration, ctx),
    status: "skipped",
    skipReason: reason,
  };
}

async function runSteps(
  steps: readonly Step[],
  prefix: string,
  pathPrefix: string,
  depth: number,
  quiet: boolean,
  iteration: number | undefined,
  ctx: Context,
): Promise<StepResult[]> {
  const results: StepResult[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const id = prefix ? `${prefix}.${i + 1}` : String(i + 1);
    const path = `${pathPrefix}[${i}]`;
    if (ctx.stopped) {
      const r = skipped(
        id,
        path,
        step,
        "an earlier step failed",
        ctx,
        iteration,
      );
      if (ctx.capture !== undefined) {
        r.packets = { first: 0, last: 0, count: 0 };
      }
      results.push(r);
      ctx.observer.stepFinished?.(r, { depth, quiet });
      continue;
    }
    const r = await runStep(step, id, path, depth, quiet, iteration, ctx);
    results.push(r);
  }
  return results;
}

/** The device a step acts on: the one it names, or the recipe's only one. */
function stepDevice(
  t: TaggedStep,
  ctx: Context,
): DeviceState | undefined {
  if (!DEVICE_STEP_KINDS.includes(t.kind)) return undefined;
  const named = typeof t.body === "object" && t.body !== null
    ? (t.body as { device?: string }).device
    : undefined;
  if (named !== undefined) {
    const state = ctx.devices.get(named);
    if (!state) throw new StepError(`the recipe has no device "${named}"`);
    return state;
  }
  if (ctx.devices.size !== 1) {
    // The loader refuses this; a hand-built recipe may still say it.
    throw new StepError(
      `this recipe has several devices (${
        [...ctx.devices.keys()].join(", ")
      }): the step must name one`,
    );
  }
  return ctx.devices.values().next().value;
}

/** The context for a step on an open device. */
function onDevice(state: DeviceState, ctx: Context): StepContext {
  if (!state.handle) {
    throw new StepError(
      `${
        state.name === SINGLE_DEVICE ? "the device" : `device ${state.name}`
      } is not open (it was unplugged, or has not appeared yet): a waitFor or plug step opens it`,
    );
  }
  return {
    ...ctx,
    device: state.handle,
    interfaces: state.interfaces,
    endpoints: state.endpoints,
  };
}

/**
 * Opens a device and sets it up: its configuration, then its interfaces.
 * Closes it again when the setup fails.
 */
async function openAndSetUp(
  state: DeviceState,
  ctx: Context,
  waitedMs: number,
): Promise<void> {
  const device = await ctx.openDevice(state.selector);
  state.handle = device;
  state.interfaces = [];
  state.endpoints.clear();
  try {
    const spec = state.spec;
    const where = state.name === SINGLE_DEVICE ? "" : `devices.${state.name}.`;
    if (spec.configuration !== undefined) {
      const want = resolveTemplates(
        spec.configuration,
        ctx.vars,
        `${where}configuration`,
      );
      if (device.configuration?.configurationValue !== want) {
        await device.selectConfiguration(want);
      }
    }
    for (const written of spec.interfaces ?? []) {
      const i = resolveTemplates(written, ctx.vars, `${where}interfaces`);
      const iface = await device.claimInterface(
        i.number,
        i.detachKernelDriver === undefined
          ? {}
          : { detachKernelDriver: i.detachKernelDriver },
      ).catch((e) => {
        throw inRecipeTerms(e, i.number);
      });
      state.interfaces.push(iface);
      if (i.alternate !== undefined) {
        await iface.selectAlternateInterface(i.alternate);
      }
    }
  } catch (e) {
    await closeDevice(state);
    throw e;
  }
  state.opened = {
    name: state.name,
    selector: state.selectorText,
    vendorId: device.deviceDescriptor.vendorId,
    productId: device.deviceDescriptor.productId,
    waitedMs,
  };
}

/** Releases a device's interfaces and closes it (errors are not news). */
async function closeDevice(state: DeviceState): Promise<void> {
  const device = state.handle;
  state.handle = undefined;
  for (const iface of state.interfaces) await iface.release().catch(() => {});
  state.interfaces = [];
  state.endpoints.clear();
  await device?.close().catch(() => {});
}

/** Runs a wait, and records it on the step. */
async function timedWait(
  result: StepResult,
  state: DeviceState,
  what: StepWait["for"],
  wait: () => Promise<unknown>,
): Promise<number> {
  const started = performance.now();
  const record: StepWait = {
    device: state.name,
    for: what,
    durationMs: 0,
    ok: false,
  };
  (result.waits ??= []).push(record);
  try {
    await wait();
    record.ok = true;
  } finally {
    record.durationMs = performance.now() - started;
  }
  return record.durationMs;
}

function waitOptions(ctx: Context, timeout: number): RecipeWaitOptions {
  return ctx.signal ? { timeout, signal: ctx.signal } : { timeout };
}

/** Waits for a device to be openable, then opens and sets it up. */
async function waitAndOpen(
  result: StepResult,
  state: DeviceState,
  ctx: Context,
  timeout: number,
  since = performance.now(),
): Promise<void> {
  const hotplug = await ctx.hotplug();
  try {
    await timedWait(
      result,
      state,
      "appear",
      () => hotplug.waitForDevice(state.selector, waitOptions(ctx, timeout)),
    );
  } finally {
    // Counted from `since` (a plug's or a reset's start).
    result.waits!.at(-1)!.durationMs = performance.now() - since;
  }
  const wait = result.waits!.at(-1)!;
  await openAndSetUp(state, ctx, wait.durationMs);
}

/** The bench device an unplug or plug step drives. */
async function benchTarget(
  body: { bench?: string | undefined },
  state: DeviceState,
  bench: RecipeBench,
): Promise<string> {
  if (body.bench !== undefined) return body.bench;
  const found = await bench.find(state.selector);
  if (found === undefined) {
    throw new StepError(
      `no single gadget or QEMU device of the bench matches ${state.selectorText}: name it with bench: <name>`,
    );
  }
  return found;
}

function waitSummary(waits: readonly StepWait[] | undefined): string {
  return (waits ?? []).map((w) => {
    const what = w.for === "appear"
      ? (w.ok ? "ready after" : "not ready after")
      : (w.ok ? "gone after" : "still there after");
    return `${w.device === SINGLE_DEVICE ? "device" : w.device} ${what} ${
      formatDuration(w.durationMs)
    }`;
  }).join(", ");
}

async function unplugStep(
  body: { bench?: string | undefined },
  result: StepResult,
  state: DeviceState,
  ctx: Context,
  timeout: number,
): Promise<void> {
  const bench = await ctx.bench();
  const target = await benchTarget(body, state, bench);
  const hotplug = await ctx.hotplug();
  await closeDevice(state);
  const started = performance.now();
  await bench.unplug(target, { timeout });
  try {
    await timedWait(
      result,
      state,
      "disappear",
      () =>
        hotplug.waitForDeviceGone(state.selector, waitOptions(ctx, timeout)),
    );
  } finally {
    result.waits!.at(-1)!.durationMs = performance.now() - started;
  }
}

async function plugStep(
  body: { bench?: string | undefined },
  result: StepResult,
  state: DeviceState,
  ctx: Context,
  timeout: number,
): Promise<void> {
  const bench = await ctx.bench();
  const target = await benchTarget(body, state, bench);
  const started = performance.now();
  await bench.plug(target, { timeout });
  await waitAndOpen(result, state, ctx, timeout, started);
}

async function runStep(
  step: Step,
  id: string,
  path: string,
  depth: number,
  quiet: boolean,
  iteration: number | undefined,
  ctx: Context,
): Promise<StepResult> {
  const t = tagStep(step);
  const result = newResult(id, path, t, iteration, ctx);
  ctx.observer.stepStarted?.({
    id,
    title: result.title,
    kind: t.kind,
    depth,
    quiet,
  });
  const started = performance.now();
  const packetsBefore = ctx.capture?.packets ?? 0;
  const body = t.body as {
    timeout?: Maybe<number>;
    onFail?: "stop" | "continue";
  };
  // Resolves `${…}` in the step's fields, with their paths for messages.
  const resolve = <T>(value: T, field?: string) =>
    resolveTemplates(
      value,
      ctx.vars,
      `${path}.${t.kind}${field ? `.${field}` : ""}`,
    );
  try {
    const state = stepDevice(t, ctx);
    // Named in the reports when the recipe names its devices.
    if (state && ctx.recipe.devices !== undefined) result.device = state.name;
    const timeout = body.timeout === undefined
      ? ctx.timeout
      : resolve(body.timeout, "timeout");
    switch (t.kind) {
      case "control":
        await runControl(
          resolve(t.body),
          result,
          onDevice(state!, ctx),
          timeout,
        );
        break;
      case "bulk":
      case "interrupt":
        await runEndpointTransfer(
          resolve(t.body),
          result,
          onDevice(state!, ctx),
          timeout,
        );
        break;
      case "iso":
        await runIso(resolve(t.body), result, onDevice(state!, ctx), timeout);
        break;
      case "stream":
        await runStream(
          resolve(t.body),
          result,
          onDevice(state!, ctx),
          timeout,
        );
        break;
      case "delay":
        await sleep(resolve(t.body), ctx.signal);
        break;
      case "log":
        result.message = resolve(t.body);
        result.summary = result.message;
        break;
      case "reset": {
        const device = onDevice(state!, ctx);
        const started = performance.now();
        // reset() says when the kernel re-enumerated the device (changed
        // descriptors: hub.c usb_reset_and_verify_device); `reenumerate:
        // true` says it will, whatever reset() answers.
        const outcome = await device.device.reset().catch((e) => {
          const code = (e as { code?: unknown }).code;
          if (!t.body.reenumerate) throw e;
          if (code !== "disconnected" && code !== "not-found") throw e;
          return { reenumerated: true };
        });
        if (!t.body.reenumerate && outcome?.reenumerated !== true) {
          device.endpoints.clear();
          result.summary = "same device, same address";
          break;
        }
        // The device leaves and comes back (maybe as another device): the
        // handle is of no use after the reset.
        await closeDevice(state!);
        await waitAndOpen(result, state!, ctx, timeout, started);
        result.summary = waitSummary(result.waits);
        break;
      }
      case "clearHalt": {
        const b = resolve(t.body);
        await endpointFor(onDevice(state!, ctx), b.endpoint).clearHalt();
        break;
      }
      case "selectAlternate": {
        const b = resolve(t.body);
        const device = onDevice(state!, ctx);
        const iface = device.interfaces.find((i) =>
          i.interfaceNumber === b.interface
        );
        if (!iface) {
          throw new StepError(`interface ${b.interface} is not claimed`);
        }
        await iface.selectAlternateInterface(b.alternate);
        // Endpoints belong to an alternate setting: look them up afresh.
        device.endpoints.clear();
        break;
      }
      case "waitFor":
        // A handle from before is of no use if the device came and went.
        await closeDevice(state!);
        await waitAndOpen(result, state!, ctx, timeout);
        result.summary = waitSummary(result.waits);
        break;
      case "waitGone": {
        const hotplug = await ctx.hotplug();
        await timedWait(
          result,
          state!,
          "disappear",
          () =>
            hotplug.waitForDeviceGone(
              state!.selector,
              waitOptions(ctx, timeout),
            ),
        );
        await closeDevice(state!);
        result.summary = waitSummary(result.waits);
        break;
      }
      case "unplug":
        await unplugStep(t.body, result, state!, ctx, timeout);
        result.summary = waitSummary(result.waits);
        break;
      case "plug":
        await plugStep(t.body, result, state!, ctx, timeout);
        result.summary = waitSummary(result.waits);
        break;
      case "replug":
        await unplugStep(t.body, result, state!, ctx, timeout);
        await plugStep(t.body, result, state!, ctx, timeout);
        result.summary = waitSummary(result.waits);
        break;
      case "repeat": {
        const count = resolve(t.body.count, "count");
        const inner = t.body.steps;
        const quietInner = quiet || count * inner.length > QUIET_ABOVE;
        result.children = [];
        for (let n = 0; n < count; n++) {
          if (t.body.var) ctx.vars[t.body.var] = n;
          result.children.push(
            ...await runSteps(
              inner,
              id,
              `${path}.repeat.steps`,
              depth + 1,
              quietInner,
              n + 1,
              ctx,
            ),
          );
          if (ctx.stopped) break;
        }
        const failed = result.children.filter((c) =>
          c.status === "failed"
        ).length;
        const ran = result.children.filter((c) =>
          c.status !== "skipped"
        ).length;
        result.summary = `${ran} steps run, ${failed} failed`;
        if (failed) {
          result.failures.push({
            message: `${failed} of ${ran} inner steps failed`,
          });
        }
        break;
      }
    }
  } catch (e) {
    result.error = errorInfo(e);
    if (result.waits?.length && !result.summary) {
      result.summary = waitSummary(result.waits);
    }
  }
  result.durationMs = performance.now() - started;
  if (result.failures.length || result.error) {
    result.status = "failed";
    // A failure inside a repeat stops the whole run unless the step says to
    // continue; a repeat's own failure is that of its inner steps, which
    // have already decided.
    if ((body.onFail ?? "stop") === "stop" && t.kind !== "repeat") {
      ctx.stopped = true;
    }
  }
  if (ctx.signal?.aborted) ctx.stopped = true;
  if (ctx.capture !== undefined) {
    stepPackets(result, ctx.capture, packetsBefore, t.kind !== "repeat");
  }
  ctx.observer.stepFinished?.(result, { depth, quiet });
  return result;
}

/** How many of a failed step's last packets the terminal report decodes. */
const LAST_PACKETS = 6;

/**
 * A step's packet range in the capture, and for a failed step (not a
 * repeat: its failing inner step has them) its last packets decoded.
 */
function stepPackets(
  result: StepResult,
  capture: Capture,
  before: number,
  decode: boolean,
): void {
  const after = capture.packets;
  const count = after - before;
  result.packets = count > 0
    ? { first: before + 1, last: after, count }
    : { first: 0, last: 0, count: 0 };
  if (result.status !== "failed" || !decode || count === 0) return;
  try {
    capture.flush();
    const all = readCapture(Deno.readFileSync(capture.path));
    result.lastPackets = all.slice(
      Math.max(before, after - LAST_PACKETS),
      after,
    ).map((p) => describePacket(p));
  } catch (e) {
    result.lastPackets = [
      `(cannot read ${capture.path}: ${e instanceof Error ? e.message : e})`,
    ];
  }
}

function count(results: readonly StepResult[]): RunResult["summary"] {
  const s = { passed: 0, failed: 0, skipped: 0, total: 0 };
  const visit = (rs: readonly StepResult[]) => {
    for (const r of rs) {
      if (r.children) {
        visit(r.children);
        if (r.status === "skipped") {
          s.skipped++;
          s.total++;
        }
        continue;
      }
      s[r.status]++;
      s.total++;
    }
  };
  visit(results);
  return s;
}

/**
 * Runs a validated recipe.
 *
 * Opens its devices (each retried until its `wait` has passed when it is not
 * there yet; a device with `open: false` waits for a waitFor or plug step),
 * selects their configurations, claims their interfaces, and runs the steps.
 * A failed step stops the run unless it has `onFail: continue`; the steps
 * after are reported as skipped. Then the `finally` steps run, whatever
 * happened: after a failure, after `recipeTimeout`, and after the caller's
 * signal (Ctrl-C), each one even when one before it failed. The devices are
 * always closed.
 *
 * @param recipe the recipe, as validated by `loadRecipe`/`parseRecipe`
 * @param options `--var` overrides, the observer for live output, the
 * device opener (the default is usbkit's `open()`), the waits (default
 * src/hotplug.ts) and the bench that unplug and plug steps drive
 * @returns the result; `outcome` is `passed`, `failed`, `no-device`,
 * `interrupted` or `invalid` (a `--var` value that does not fit where it is
 * used)
 *
 * @example Running against an in-memory stand-in for a device
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRecipe } from "./load.ts";
 * import { runRecipe, type RecipeDevice } from "./runner.ts";
 * const recipe = parseRecipe(
 *   "name: status\ndevice: {vendorId: 0x1234, productId: 0x5678}\nsteps:\n" +
 *     "  - control: {in: 2, requestType: standard, request: 0, expect: {bytes: '01 00'}, save: {status: {type: u16le}}}\n",
 *   { file: "status.yaml" },
 * );
 * const device: RecipeDevice = {
 *   deviceDescriptor: { vendorId: 0x1234, productId: 0x5678 },
 *   configuration: { configurationValue: 1 },
 *   selectConfiguration: async () => {},
 *   claimInterface: () => Promise.reject(new Error("no interfaces")),
 *   controlTransferIn: async () => ({ status: "ok", data: new Uint8Array([1, 0]) }),
 *   controlTransferOut: async () => ({ status: "ok", bytesWritten: 0 }),
 *   reset: async () => {},
 *   close: async () => {},
 * };
 * const result = await runRecipe(recipe, { openDevice: async () => device });
 * assert.ok(result.outcome === "passed" && result.vars.status === 1);
 * ```
 */
export async function runRecipe(
  recipe: Recipe,
  options: RunOptions = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const observer = options.observer ?? {};
  const vars: Record<string, VarValue> = { ...recipe.vars, ...options.vars };
  const base = {
    recipe: {
      name: textOf(recipe.name, vars),
      ...(recipe.description === undefined
        ? {}
        : { description: recipe.description }),
      ...(options.file === undefined ? {} : { file: options.file }),
    },
    startedAt,
  };
  const finish = (
    rest: Omit<
      RunResult,
      "recipe" | "startedAt" | "durationMs" | "summary" | "vars"
    >,
  ): RunResult => {
    const result: RunResult = {
      ...base,
      ...rest,
      durationMs: performance.now() - t0,
      summary: count([...rest.steps, ...rest.finally ?? []]),
      vars: { ...vars },
    };
    observer.runFinished?.(result);
    return result;
  };

  // Everything the run needs from the recipe before it starts.
  const devices = new Map<string, DeviceState>();
  let timeout: number;
  let recipeTimeout: number | undefined;
  try {
    for (const [name, spec] of recipeDevices(recipe)) {
      const { wait, vendorId, productId, serial, port, path } =
        resolveTemplates(
          spec,
          vars,
          name === SINGLE_DEVICE && recipe.device
            ? "device"
            : `devices.${name}`,
        );
      // Only the keys that are set: open() takes a selector without undefined keys.
      const selector = Object.fromEntries(
        Object.entries({ vendorId, productId, serial, port, path }).filter((
          [, v],
        ) => v !== undefined),
      ) as RecipeDeviceSelector;
      devices.set(name, {
        name,
        spec,
        selector,
        selectorText: describeSelector(selector),
        waitMs: wait ?? 0,
        handle: undefined,
        interfaces: [],
        endpoints: new Map(),
      });
    }
    timeout = recipe.timeout === undefined
      ? DEFAULT_TIMEOUT_MS
      : resolveTemplates(recipe.timeout, vars, "timeout");
    recipeTimeout = recipe.recipeTimeout === undefined
      ? undefined
      : resolveTemplates(recipe.recipeTimeout, vars, "recipeTimeout");
  } catch (e) {
    return finish({ outcome: "invalid", steps: [], error: errorInfo(e) });
  }
  const first = devices.values().next().value!;
  observer.runStarted?.({
    recipe,
    name: base.recipe.name,
    selector: [...devices.values()].map((d) =>
      devices.size === 1 ? d.selectorText : `${d.name} (${d.selectorText})`
    ).join(", "),
    waitMs: Math.max(0, ...[...devices.values()].map((d) => d.waitMs)),
  });

  // The steps stop at the caller's signal or at the recipe's timeout.
  const run = new AbortController();
  let timedOut = false;
  const onAbort = () => run.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) run.abort(options.signal.reason);
  const deadline = recipeTimeout === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    run.abort("recipeTimeout");
  }, recipeTimeout);

  const ctx: Context = {
    recipe,
    devices,
    vars,
    observer,
    signal: run.signal,
    baseDir: options.baseDir ?? ".",
    t0,
    timeout,
    stopped: false,
    openDevice: options.openDevice ?? openReal,
    hotplug: once(() =>
      options.hotplug ? Promise.resolve(options.hotplug) : realHotplug()
    ),
    bench: once(() =>
      options.bench ? Promise.resolve(options.bench) : guestBench()
    ),
    capture: options.capture,
  };
  const skipAll = (reason: string) =>
    recipe.steps.map((s, i) =>
      skipped(String(i + 1), `steps[${i}]`, s, reason, ctx)
    );
  const stopError = () =>
    timedOut
      ? {
        code: "timeout",
        message: `the recipe did not finish within ${
          formatDuration(recipeTimeout!)
        } (recipeTimeout)`,
        hint:
          "the step running was stopped and the steps after it skipped; the finally steps ran",
      }
      : interruption(options.signal);

  let outcome: RunOutcome = "passed";
  let error: RunResult["error"];
  let steps: StepResult[] = [];
  const runDevices = () =>
    [...devices.values()].map((d): RunDevice =>
      d.atStart ?? {
        name: d.name,
        selector: d.selectorText,
        waitedMs: d.waitedAtStart ?? 0,
      }
    );
  try {
    // Open the devices, each within its wait.
    let setUp = true;
    for (const state of devices.values()) {
      if (state.spec.open === false) continue;
      const opened = await openAtStart(state, ctx);
      if (opened === "ok") {
        observer.deviceReady?.({
          ...(devices.size > 1 ? { name: state.name } : {}),
          selector: state.selectorText,
          vendorId: state.atStart!.vendorId!,
          productId: state.atStart!.productId!,
          waitedMs: state.atStart!.waitedMs,
        });
        continue;
      }
      setUp = false;
      if (run.signal.aborted) {
        outcome = timedOut ? "failed" : "interrupted";
        error = stopError();
        steps = skipAll(
          timedOut ? "the recipe timed out" : "the run was interrupted",
        );
      } else {
        outcome = opened.notFound ? "no-device" : "failed";
        error = opened.error;
        steps = skipAll(
          opened.notFound
            ? "the device could not be opened"
            : "the device could not be set up",
        );
      }
      break;
    }
    if (setUp) {
      steps = await runSteps(
        recipe.steps,
        "",
        "steps",
        0,
        false,
        undefined,
        ctx,
      );
      if (run.signal.aborted) {
        outcome = timedOut ? "failed" : "interrupted";
        error = stopError();
      } else if (steps.some((s) => s.status === "failed")) outcome = "failed";
    }
    clearTimeout(deadline);

    // The finally steps: each one runs, with its own timeout, whatever
    // happened before; a first Ctrl-C does not stop them.
    const finallySteps = recipe.finally ?? [];
    const cleanup: StepResult[] = [];
    if (finallySteps.length > 0) {
      observer.finallyStarted?.();
      ctx.signal = undefined;
      for (let i = 0; i < finallySteps.length; i++) {
        ctx.stopped = false;
        cleanup.push(
          await runStep(
            finallySteps[i]!,
            `F${i + 1}`,
            `finally[${i}]`,
            0,
            false,
            undefined,
            ctx,
          ),
        );
      }
      if (outcome === "passed" && cleanup.some((s) => s.status === "failed")) {
        outcome = "failed";
      }
    }
    return finish({
      outcome,
      device: runDeviceOf(first),
      ...(devices.size > 1 ? { devices: runDevices() } : {}),
      steps,
      ...(finallySteps.length > 0 ? { finally: cleanup } : {}),
      ...(error ? { error } : {}),
    });
  } finally {
    clearTimeout(deadline);
    options.signal?.removeEventListener("abort", onAbort);
    for (const state of devices.values()) await closeDevice(state);
  }
}

/** The first call's promise, for every call. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => p ??= fn();
}

function runDeviceOf(d: DeviceState): NonNullable<RunResult["device"]> {
  return d.atStart
    ? {
      selector: d.atStart.selector,
      vendorId: d.atStart.vendorId!,
      productId: d.atStart.productId!,
      waitedMs: d.atStart.waitedMs,
    }
    : { selector: d.selectorText, waitedMs: d.waitedAtStart ?? 0 };
}

/**
 * Opens a device when the run starts: retries `not-found` until its `wait`
 * has passed, then sets it up.
 */
async function openAtStart(
  state: DeviceState,
  ctx: Context,
): Promise<
  "ok" | {
    notFound: boolean;
    error: { code: string; message: string; hint?: string };
  }
> {
  const start = performance.now();
  const deadline = start + state.waitMs;
  for (;;) {
    try {
      await openAndSetUp(state, ctx, performance.now() - start);
      state.waitedAtStart = state.opened!.waitedMs;
      state.atStart = state.opened!;
      return "ok";
    } catch (e) {
      state.waitedAtStart = performance.now() - start;
      const notFound = (e as { code?: unknown }).code === "not-found" &&
        state.handle === undefined && !(e instanceof StepError);
      if (
        !notFound || performance.now() >= deadline || ctx.signal?.aborted
      ) {
        const what = state.selectorText;
        return {
          notFound,
          error: notFound
            ? {
              code: "not-found",
              message: state.waitMs > 0
                ? `no device matching ${what} appeared within ${
                  formatDuration(state.waitMs)
                }`
                : `no device matching ${what} is connected`,
              hint:
                "check that it is plugged in and that its ids are right; `usb list` shows what is connected" +
                (state.waitMs > 0
                  ? ""
                  : ", and device.wait gives it time to appear"),
            }
            : errorInfo(e),
        };
      }
      await sleep(
        Math.min(100, Math.max(0, deadline - performance.now())),
        ctx.signal,
      );
    }
  }
}
