/**
 * The types of a recipe, written out: {@linkcode RecipeInput} is a recipe as
 * written (what {@linkcode defineRecipe} checks in an editor) and
 * {@linkcode Recipe} is a recipe as validated (numbers parsed, data decoded,
 * `${…}` references kept as {@linkcode Template}s until their step runs).
 *
 * The schema in schema.ts is the source of truth; it checks at compile time
 * that what it infers is exactly these types, so the two cannot drift apart.
 *
 * @module
 */

import type { Template } from "./interpolate.ts";
import type { PatternByte } from "./values.ts";

// ---------------------------------------------------------------------------
// Values

/**
 * A validated value that may still hold `${…}` references: the value, or a
 * {@linkcode Template} resolved to one when its step runs.
 */
export type Templated<T> = T | Template<T>;

/**
 * A number as written in a recipe: a number, or text such as `"0x81"`,
 * `"64KiB"`, `"500ms"`, `"100MB/s"` or `"${count}"`, depending on the field.
 */
export type NumberInput = number | string;

/** The kinds of step, as in {@linkcode STEP_KINDS}. */
export type StepKind =
  | "control"
  | "bulk"
  | "interrupt"
  | "iso"
  | "stream"
  | "delay"
  | "repeat"
  | "reset"
  | "clearHalt"
  | "selectAlternate"
  | "log"
  | "waitFor"
  | "waitGone"
  | "unplug"
  | "plug"
  | "replug";

/** The field types `save` can capture, as in {@linkcode SAVE_TYPES}. */
export type SaveType =
  | "u8"
  | "u16le"
  | "u16be"
  | "u32le"
  | "u32be"
  | "hex"
  | "utf8";

/** A generated data pattern: see {@linkcode DataFields.pattern}. */
export type DataPattern = "sequence" | "zeros" | "random" | "sourcesink";

/** A pattern received data must follow: see {@linkcode PatternExpectation}. */
export type ExpectedPattern = "sourcesink" | "sequence" | "zeros";

/** The status a transfer must end with. */
export type ExpectedStatus = "ok" | "stall" | "babble";

/** What a failure of a step does: stop the run (the default) or go on. */
export type OnFail = "stop" | "continue";

// ---------------------------------------------------------------------------
// Data

/** Data given as a mapping, as validated: exactly one of hex, text, file or pattern. */
export interface DataFields {
  /** Hex bytes (`"12 01 00 02"`). */
  hex?: Templated<Uint8Array> | undefined;
  /** UTF-8 text. */
  text?: Templated<string> | undefined;
  /** A file path, relative to the recipe. */
  file?: Templated<string> | undefined;
  /**
   * A generated pattern of `length` bytes: sequence (byte i is i & 0xff),
   * zeros, random (from `seed` when given), or sourcesink (the SourceSink
   * gadget's pattern, restarting every `maxPacketSize` bytes).
   */
  pattern?: DataPattern | undefined;
  /** The length of a pattern, or how much of a file to send. */
  length?: Templated<number> | undefined;
  /** An offset in bytes into the file. */
  offset?: Templated<number> | undefined;
  /** The seed of the random pattern (a 32-bit number). */
  seed?: Templated<number> | undefined;
  /** The packet size the sourcesink pattern restarts at. */
  maxPacketSize?: Templated<number> | undefined;
}

/** Data given as a mapping, as written: see {@linkcode DataFields}. */
export interface DataFieldsInput {
  /** Hex bytes (`"12 01 00 02"`). */
  hex?: NumberInput | undefined;
  /** UTF-8 text. */
  text?: NumberInput | undefined;
  /** A file path, relative to the recipe. */
  file?: NumberInput | undefined;
  /** A generated pattern of `length` bytes. */
  pattern?: DataPattern | undefined;
  /** The length of a pattern, or how much of a file to send. */
  length?: NumberInput | undefined;
  /** An offset in bytes into the file. */
  offset?: NumberInput | undefined;
  /** The seed of the random pattern (a 32-bit number). */
  seed?: NumberInput | undefined;
  /** The packet size the sourcesink pattern restarts at. */
  maxPacketSize?: NumberInput | undefined;
}

/**
 * The bytes an OUT transfer sends, as validated: a hex string becomes
 * `{ hex }`, a list of bytes `{ list }`, and a mapping is kept as
 * {@linkcode DataFields}.
 */
export type DataSpec =
  | { hex: Templated<Uint8Array> }
  | { list: Templated<number>[] }
  | DataFields;

/**
 * The bytes an OUT transfer sends, as written: a hex string
 * (`"12 01 00 02"`), a list of byte values, or a mapping with `hex`, `text`
 * (UTF-8), `file` (relative to the recipe) or `pattern` (with a `length`).
 */
export type DataInput = NumberInput | NumberInput[] | DataFieldsInput;

// ---------------------------------------------------------------------------
// Expectations

/** A range of lengths, as validated. */
export interface LengthRange {
  /** The least length. */
  min?: Templated<number> | undefined;
  /** The greatest length. */
  max?: Templated<number> | undefined;
}

/** A range of lengths, as written (`{min: 1, max: 64}`). */
export interface LengthRangeInput {
  /** The least length. */
  min?: NumberInput | undefined;
  /** The greatest length. */
  max?: NumberInput | undefined;
}

/** An expectation on received text, as validated: equals or regex. */
export interface TextExpectation {
  /** The exact text. */
  equals?: Templated<string> | undefined;
  /** A regular expression the text must match. */
  regex?: Templated<string> | undefined;
  /** Where the text starts, in bytes. */
  offset?: Templated<number> | undefined;
  /** How many bytes the text spans. */
  length?: Templated<number> | undefined;
}

/** An expectation on received text, as written: see {@linkcode TextExpectation}. */
export interface TextExpectationInput {
  /** The exact text. */
  equals?: NumberInput | undefined;
  /** A regular expression the text must match. */
  regex?: NumberInput | undefined;
  /** Where the text starts, in bytes. */
  offset?: NumberInput | undefined;
  /** How many bytes the text spans. */
  length?: NumberInput | undefined;
}

/** A pattern received data must follow, as validated. */
export interface PatternExpectation {
  /**
   * sourcesink (the SourceSink gadget's, restarting every maxPacketSize
   * bytes), sequence (byte i is i & 0xff) or zeros.
   */
  type: ExpectedPattern;
  /** The packet size the pattern restarts at. */
  maxPacketSize?: Templated<number> | undefined;
}

/** A pattern received data must follow, as written: see {@linkcode PatternExpectation}. */
export interface PatternExpectationInput {
  /** sourcesink, sequence or zeros. */
  type: ExpectedPattern;
  /** The packet size the pattern restarts at. */
  maxPacketSize?: NumberInput | undefined;
}

/** Expectations on a transfer's result, as validated. */
export interface Expectation {
  /** The status the transfer must end with (default ok). */
  status?: ExpectedStatus | undefined;
  /** The length received: exactly, or within a range. */
  length?: Templated<number> | LengthRange | undefined;
  /** Bytes the data must hold (`null` matches any byte), at `offset`. */
  bytes?: Templated<PatternByte[]> | undefined;
  /** Data the received data must equal, at `offset`. */
  data?: DataSpec | undefined;
  /** Where the expected bytes or data start, in bytes. */
  offset?: Templated<number> | undefined;
  /** A mask AND-ed with the data before comparing with `bytes`. */
  mask?: Templated<Uint8Array> | undefined;
  /** Text the data must hold, or match. */
  text?: Templated<string> | TextExpectation | undefined;
  /** A pattern the data must follow. */
  pattern?: PatternExpectation | undefined;
  /** The least rate, in bytes per second. */
  minRate?: Templated<number> | undefined;
}

/** Expectations on a transfer's result, as written: see {@linkcode Expectation}. */
export interface ExpectationInput {
  /** The status the transfer must end with (default ok). */
  status?: ExpectedStatus | undefined;
  /** A length, or a mapping with min and max. */
  length?: NumberInput | LengthRangeInput | undefined;
  /** Hex bytes such as `"55 53 42 53"`, with `??` for any byte. */
  bytes?: NumberInput | undefined;
  /** Data the received data must equal. */
  data?: DataInput | undefined;
  /** Where the expected bytes or data start, in bytes. */
  offset?: NumberInput | undefined;
  /** A hex mask such as `"ff 0f"`, AND-ed with the data before comparing. */
  mask?: NumberInput | undefined;
  /** Text, or a mapping with equals or regex. */
  text?: NumberInput | TextExpectationInput | undefined;
  /** A pattern name, or a mapping with type and maxPacketSize. */
  pattern?: ExpectedPattern | PatternExpectationInput | undefined;
  /** A rate such as `"100MB/s"`. */
  minRate?: NumberInput | undefined;
}

/** Expectations on a stream, as validated. */
export interface StreamExpectation {
  /** The status the stream must end with (default ok). */
  status?: ExpectedStatus | undefined;
  /** A pattern the data must follow. */
  pattern?: PatternExpectation | undefined;
  /** The least rate, in bytes per second. */
  minRate?: Templated<number> | undefined;
}

/** Expectations on a stream, as written: see {@linkcode StreamExpectation}. */
export interface StreamExpectationInput {
  /** The status the stream must end with (default ok). */
  status?: ExpectedStatus | undefined;
  /** A pattern name, or a mapping with type and maxPacketSize. */
  pattern?: ExpectedPattern | PatternExpectationInput | undefined;
  /** A rate such as `"100MB/s"`. */
  minRate?: NumberInput | undefined;
}

/** One capture into a variable, as validated. */
export interface SaveField {
  /** How to read the field. */
  type: SaveType;
  /** Where the field starts, in bytes. */
  offset?: Templated<number> | undefined;
  /** How many bytes to capture (hex and utf8 only). */
  length?: Templated<number> | undefined;
}

/** One capture into a variable, as written: see {@linkcode SaveField}. */
export interface SaveFieldInput {
  /** How to read the field. */
  type: SaveType;
  /** Where the field starts, in bytes. */
  offset?: NumberInput | undefined;
  /** How many bytes to capture (hex and utf8 only). */
  length?: NumberInput | undefined;
}

/**
 * Captures into variables, as validated: fields of the received data kept as
 * variables for later steps, by variable name.
 */
export type SaveSpec = Record<string, SaveField>;

/** Captures into variables, as written (`lba: {type: u32be, offset: 0}`). */
export type SaveInput = Record<string, SaveFieldInput>;

// ---------------------------------------------------------------------------
// Steps

/** The options every step kind shares, as validated. */
export interface StepOptions {
  /** A name for the step, for reports. */
  name?: Templated<string> | undefined;
  /** The step's timeout, in milliseconds. */
  timeout?: Templated<number> | undefined;
  /** What a failure of this step does (default stop). */
  onFail?: OnFail | undefined;
  /** The device the step acts on: a key of the recipe's devices. */
  device?: string | undefined;
}

/** The options every step kind shares, as written: see {@linkcode StepOptions}. */
export interface StepOptionsInput {
  /** A name for the step, for reports. */
  name?: NumberInput | undefined;
  /** A timeout (milliseconds, or a duration such as `"500ms"`). */
  timeout?: NumberInput | undefined;
  /** What a failure of this step does (default stop). */
  onFail?: OnFail | undefined;
  /** The device the step acts on: a key of the recipe's devices. */
  device?: NumberInput | undefined;
}

/** The type of a control request, bits 5-6 of bmRequestType. */
export type ControlRequestType = "standard" | "class" | "vendor";

/** The recipient of a control request, bits 0-4 of bmRequestType. */
export type ControlRecipient = "device" | "interface" | "endpoint" | "other";

/** A control transfer, as validated: exactly one of in and out. */
export interface ControlStepSpec extends StepOptions {
  /** A length to read. */
  in?: Templated<number> | undefined;
  /** Data to write. */
  out?: DataSpec | undefined;
  /** The request's type. */
  requestType: ControlRequestType;
  /** Who the request is for (default device). */
  recipient?: ControlRecipient | undefined;
  /** bRequest. */
  request: Templated<number>;
  /** wValue. */
  value?: Templated<number> | undefined;
  /** wIndex. */
  index?: Templated<number> | undefined;
  /** Expectations on the result. */
  expect?: Expectation | undefined;
  /** Captures from the data read. */
  save?: SaveSpec | undefined;
}

/** A control transfer, as written: see {@linkcode ControlStepSpec}. */
export interface ControlStepInput extends StepOptionsInput {
  /** A length to read. */
  in?: NumberInput | undefined;
  /** Data to write. */
  out?: DataInput | undefined;
  /** The request's type. */
  requestType: ControlRequestType;
  /** Who the request is for (default device). */
  recipient?: ControlRecipient | undefined;
  /** bRequest. */
  request: NumberInput;
  /** wValue. */
  value?: NumberInput | undefined;
  /** wIndex. */
  index?: NumberInput | undefined;
  /** Expectations on the result. */
  expect?: ExpectationInput | undefined;
  /** Captures from the data read. */
  save?: SaveInput | undefined;
}

/** A bulk or interrupt transfer, as validated: exactly one of in and out. */
export interface TransferStepSpec extends StepOptions {
  /** The endpoint address (0x01-0x0f for OUT, 0x81-0x8f for IN). */
  endpoint: Templated<number>;
  /** A length to read. */
  in?: Templated<number> | undefined;
  /** Data to write. */
  out?: DataSpec | undefined;
  /** Expectations on the result. */
  expect?: Expectation | undefined;
  /** Captures from the data read. */
  save?: SaveSpec | undefined;
}

/** A bulk or interrupt transfer, as written: see {@linkcode TransferStepSpec}. */
export interface TransferStepInput extends StepOptionsInput {
  /** The endpoint address (0x01-0x0f for OUT, 0x81-0x8f for IN). */
  endpoint: NumberInput;
  /** A length to read. */
  in?: NumberInput | undefined;
  /** Data to write. */
  out?: DataInput | undefined;
  /** Expectations on the result. */
  expect?: ExpectationInput | undefined;
  /** Captures from the data read. */
  save?: SaveInput | undefined;
}

/** An isochronous transfer, as validated: exactly one of in and out. */
export interface IsoStepSpec extends StepOptions {
  /** The endpoint address. */
  endpoint: Templated<number>;
  /** A length to read, or the length of each packet to read. */
  in?: Templated<number> | Templated<number>[] | undefined;
  /** Data to write. */
  out?: DataSpec | undefined;
  /** The length of each packet written (default: the endpoint's wMaxPacketSize). */
  packets?: Templated<number>[] | undefined;
  /** Expectations on the result. */
  expect?: Expectation | undefined;
  /** Captures from the data read. */
  save?: SaveSpec | undefined;
}

/** An isochronous transfer, as written: see {@linkcode IsoStepSpec}. */
export interface IsoStepInput extends StepOptionsInput {
  /** The endpoint address. */
  endpoint: NumberInput;
  /** A length to read, or a list of packet lengths. */
  in?: NumberInput | NumberInput[] | undefined;
  /** Data to write. */
  out?: DataInput | undefined;
  /** The length of each packet written. */
  packets?: NumberInput[] | undefined;
  /** Expectations on the result. */
  expect?: ExpectationInput | undefined;
  /** Captures from the data read. */
  save?: SaveInput | undefined;
}

/** A stream, as validated: bytes or duration, or both. */
export interface StreamStepSpec extends StepOptions {
  /** The endpoint address. */
  endpoint: Templated<number>;
  /** How many bytes to move. */
  bytes?: Templated<number> | undefined;
  /** How long to stream, in milliseconds. */
  duration?: Templated<number> | undefined;
  /** The size of each transfer. */
  transferSize?: Templated<number> | undefined;
  /** The number of transfers in flight (1-256). */
  inFlight?: Templated<number> | undefined;
  /** The data an OUT stream sends. */
  data?: DataSpec | undefined;
  /** Expectations on the stream. */
  expect?: StreamExpectation | undefined;
}

/** A stream, as written: see {@linkcode StreamStepSpec}. */
export interface StreamStepInput extends StepOptionsInput {
  /** The endpoint address. */
  endpoint: NumberInput;
  /** How many bytes to move (a size such as `"64MiB"`). */
  bytes?: NumberInput | undefined;
  /** How long to stream (a duration such as `"10s"`). */
  duration?: NumberInput | undefined;
  /** The size of each transfer (a size such as `"64KiB"`). */
  transferSize?: NumberInput | undefined;
  /** The number of transfers in flight (1-256). */
  inFlight?: NumberInput | undefined;
  /** The data an OUT stream sends. */
  data?: DataInput | undefined;
  /** Expectations on the stream. */
  expect?: StreamExpectationInput | undefined;
}

/** A repeat, as validated. */
export interface RepeatStepSpec {
  /** How many times to run the steps. */
  count: Templated<number>;
  /** A variable that holds the iteration number. */
  var?: string | undefined;
  /** A name for the step, for reports. */
  name?: Templated<string> | undefined;
  /** What a failure does. */
  onFail?: OnFail | undefined;
  /** The steps to repeat. */
  steps: Step[];
}

/** A repeat, as written: see {@linkcode RepeatStepSpec}. */
export interface RepeatStepInput {
  /** How many times to run the steps. */
  count: NumberInput;
  /** A variable that holds the iteration number. */
  var?: NumberInput | undefined;
  /** A name for the step, for reports. */
  name?: NumberInput | undefined;
  /** What a failure does. */
  onFail?: OnFail | undefined;
  /** The steps to repeat. */
  steps: StepInput[];
}

/** A reset, as validated (no value in the recipe gives `{}`). */
export interface ResetStepSpec extends StepOptions {
  /**
   * The device enumerates again after the reset: close it, wait for it to
   * come back and open it again.
   */
  reenumerate?: boolean | undefined;
}

/** A reset, as written: see {@linkcode ResetStepSpec}. */
export interface ResetStepInput extends StepOptionsInput {
  /** The device enumerates again after the reset. */
  reenumerate?: boolean | undefined;
}

/** A waitFor or waitGone step, as validated (no value gives `{}`). */
export type WaitStepSpec = StepOptions;

/** A waitFor or waitGone step, as written: no value, or its options. */
export type WaitStepInput = StepOptionsInput;

/** An unplug, plug or replug of a virtual bench device, as validated. */
export interface BenchStepSpec extends StepOptions {
  /** The bench device (a gadget or QEMU device), by name. */
  bench?: string | undefined;
}

/** An unplug, plug or replug, as written: see {@linkcode BenchStepSpec}. */
export interface BenchStepInput extends StepOptionsInput {
  /** The bench device (a gadget or QEMU device), by name. */
  bench?: NumberInput | undefined;
}

/** A clear-halt, as validated. */
export interface ClearHaltStepSpec extends StepOptions {
  /** The endpoint address. */
  endpoint: Templated<number>;
}

/** A clear-halt, as written. */
export interface ClearHaltStepInput extends StepOptionsInput {
  /** The endpoint address. */
  endpoint: NumberInput;
}

/** An alternate setting, as validated. */
export interface SelectAlternateStepSpec extends StepOptions {
  /** The interface number. */
  interface: Templated<number>;
  /** The alternate setting. */
  alternate: Templated<number>;
}

/** An alternate setting, as written. */
export interface SelectAlternateStepInput extends StepOptionsInput {
  /** The interface number. */
  interface: NumberInput;
  /** The alternate setting. */
  alternate: NumberInput;
}

/**
 * A step, as validated: a mapping with exactly one of the
 * {@linkcode StepKind}s (see {@linkcode tagStep}).
 */
export interface Step {
  /** A control transfer on the default pipe. */
  control?: ControlStepSpec | undefined;
  /** A bulk transfer. */
  bulk?: TransferStepSpec | undefined;
  /** An interrupt transfer. */
  interrupt?: TransferStepSpec | undefined;
  /** An isochronous transfer. */
  iso?: IsoStepSpec | undefined;
  /** A stream of transfers. */
  stream?: StreamStepSpec | undefined;
  /** A delay, in milliseconds. */
  delay?: Templated<number> | undefined;
  /** Steps run several times. */
  repeat?: RepeatStepSpec | undefined;
  /** A port reset. */
  reset?: ResetStepSpec | undefined;
  /** A clear-halt of an endpoint. */
  clearHalt?: ClearHaltStepSpec | undefined;
  /** An alternate setting of an interface. */
  selectAlternate?: SelectAlternateStepSpec | undefined;
  /** A message to print. */
  log?: Templated<string> | undefined;
  /** A wait for a device to appear (then it is opened). */
  waitFor?: WaitStepSpec | undefined;
  /** A wait for a device to disappear. */
  waitGone?: WaitStepSpec | undefined;
  /** An unplug of a virtual bench device. */
  unplug?: BenchStepSpec | undefined;
  /** A plug of a virtual bench device. */
  plug?: BenchStepSpec | undefined;
  /** An unplug, then a plug, of a virtual bench device. */
  replug?: BenchStepSpec | undefined;
}

/** A step, as written: a mapping with exactly one kind, such as `bulk: {...}`. */
export interface StepInput {
  /** A control transfer on the default pipe. */
  control?: ControlStepInput | undefined;
  /** A bulk transfer. */
  bulk?: TransferStepInput | undefined;
  /** An interrupt transfer. */
  interrupt?: TransferStepInput | undefined;
  /** An isochronous transfer. */
  iso?: IsoStepInput | undefined;
  /** A stream of transfers. */
  stream?: StreamStepInput | undefined;
  /** A delay (milliseconds, or a duration such as `"100ms"`). */
  delay?: NumberInput | undefined;
  /** Steps run several times. */
  repeat?: RepeatStepInput | undefined;
  /** A port reset: no value, or its options. */
  reset?: ResetStepInput | null | undefined;
  /** A clear-halt of an endpoint. */
  clearHalt?: ClearHaltStepInput | undefined;
  /** An alternate setting of an interface. */
  selectAlternate?: SelectAlternateStepInput | undefined;
  /** A message to print. */
  log?: NumberInput | undefined;
  /** A wait for a device to appear: no value, or its options. */
  waitFor?: WaitStepInput | null | undefined;
  /** A wait for a device to disappear: no value, or its options. */
  waitGone?: WaitStepInput | null | undefined;
  /** An unplug of a virtual bench device: no value, or its options. */
  unplug?: BenchStepInput | null | undefined;
  /** A plug of a virtual bench device: no value, or its options. */
  plug?: BenchStepInput | null | undefined;
  /** An unplug, then a plug: no value, or its options. */
  replug?: BenchStepInput | null | undefined;
}

/** The body of a step of kind `K`, as validated. */
export type StepBody<K extends StepKind> = NonNullable<Step[K]>;

/** A step with its kind spelled out, for a `switch`. */
export type TaggedStep = {
  [K in StepKind]: { kind: K; body: StepBody<K> };
}[StepKind];

// ---------------------------------------------------------------------------
// Devices

/** An interface to claim, as validated. */
export interface InterfaceSpec {
  /** The interface number. */
  number: Templated<number>;
  /** Detach the kernel driver bound to it first. */
  detachKernelDriver?: boolean | undefined;
  /** The alternate setting to select. */
  alternate?: Templated<number> | undefined;
}

/** An interface to claim, as written: a number, or a mapping. */
export type InterfaceInput = NumberInput | {
  /** The interface number. */
  number: NumberInput;
  /** Detach the kernel driver bound to it first. */
  detachKernelDriver?: boolean | undefined;
  /** The alternate setting to select. */
  alternate?: NumberInput | undefined;
};

/**
 * A device selector, as validated: vendorId and productId, serial, port or
 * path (at least one).
 */
export interface DeviceSelectorSpec {
  /** The vendor id. */
  vendorId?: Templated<number> | undefined;
  /** The product id. */
  productId?: Templated<number> | undefined;
  /** The serial number. */
  serial?: Templated<string> | undefined;
  /** A port path such as `"2-1"`. */
  port?: Templated<string> | undefined;
  /** A device node such as `"/dev/bus/usb/002/003"`. */
  path?: Templated<string> | undefined;
  /** How long to wait for the device, in milliseconds. */
  wait?: Templated<number> | undefined;
}

/** A device selector, as written: see {@linkcode DeviceSelectorSpec}. */
export interface DeviceSelectorInput {
  /** The vendor id (`0x0525`). */
  vendorId?: NumberInput | undefined;
  /** The product id (`0xa4a0`). */
  productId?: NumberInput | undefined;
  /** The serial number. */
  serial?: NumberInput | undefined;
  /** A port path such as `"2-1"`. */
  port?: NumberInput | undefined;
  /** A device node such as `"/dev/bus/usb/002/003"`. */
  path?: NumberInput | undefined;
  /** How long to wait for the device (a duration such as `"5s"`). */
  wait?: NumberInput | undefined;
}

/** A named device of a recipe (`devices: {dut: ...}`), as validated. */
export interface DeviceEntrySpec extends DeviceSelectorSpec {
  /** The configuration to set. */
  configuration?: Templated<number> | undefined;
  /** The interfaces to claim. */
  interfaces?: InterfaceSpec[] | undefined;
  /**
   * Open the device when the run starts (default true). With false it is
   * opened by a waitFor or plug step.
   */
  open?: boolean | undefined;
}

/** A named device of a recipe, as written: see {@linkcode DeviceEntrySpec}. */
export interface DeviceEntryInput extends DeviceSelectorInput {
  /** The configuration to set. */
  configuration?: NumberInput | undefined;
  /** The interfaces to claim. */
  interfaces?: InterfaceInput[] | undefined;
  /** Open the device when the run starts (default true). */
  open?: boolean | undefined;
}

// ---------------------------------------------------------------------------
// Recipes

/** A validated recipe: numbers parsed, data decoded, `${…}` kept as templates. */
export interface Recipe {
  /** The URL or path of the recipe JSON Schema. */
  $schema?: string | undefined;
  /** The recipe's name (`${…}` from vars and `--var` resolved when it runs). */
  name: string;
  /** A description. */
  description?: string | undefined;
  /** The one device (or {@linkcode Recipe.devices}). */
  device?: DeviceSelectorSpec | undefined;
  /** Several devices, by name (or {@linkcode Recipe.device}). */
  devices?: Record<string, DeviceEntrySpec> | undefined;
  /** The configuration of the one device. */
  configuration?: Templated<number> | undefined;
  /** The interfaces of the one device to claim. */
  interfaces?: InterfaceSpec[] | undefined;
  /** The default step timeout, in milliseconds. */
  timeout?: Templated<number> | undefined;
  /** The longest the steps may run together, in milliseconds. */
  recipeTimeout?: Templated<number> | undefined;
  /** Variables, by name. */
  vars?: Record<string, string | number> | undefined;
  /** The steps. */
  steps: Step[];
  /** Steps that always run after the steps, also after a failure. */
  finally?: Step[] | undefined;
}

/** A recipe as written (numbers may be `"0x81"` text, sizes `"64KiB"`, …). */
export interface RecipeInput {
  /** The URL or path of the recipe JSON Schema. */
  $schema?: string | undefined;
  /** A name for the recipe. */
  name: NumberInput;
  /** A description. */
  description?: NumberInput | undefined;
  /** The one device (or {@linkcode RecipeInput.devices}). */
  device?: DeviceSelectorInput | undefined;
  /** Several devices, by name (or {@linkcode RecipeInput.device}). */
  devices?: Record<string, DeviceEntryInput> | undefined;
  /** The configuration of the one device (1-255). */
  configuration?: NumberInput | undefined;
  /** The interfaces of the one device to claim. */
  interfaces?: InterfaceInput[] | undefined;
  /** The default step timeout (a duration such as `"1s"`). */
  timeout?: NumberInput | undefined;
  /** The longest the steps may run together (a duration such as `"5m"`). */
  recipeTimeout?: NumberInput | undefined;
  /** Variables, by name. */
  vars?: Record<string, string | number> | undefined;
  /** The steps. */
  steps: StepInput[];
  /** Steps that always run after the steps, also after a failure. */
  finally?: StepInput[] | undefined;
}
