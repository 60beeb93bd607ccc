// Issue 8: one rule for every argument of the public API, against the
// virtual bench's SourceSink gadget (0525:a4a0) and, where a quiet endpoint
// is needed, its Loopback gadget.
//
// Every hostile call must reject (or throw, for a synchronous method) a
// UsbError with code invalid-argument whose message names the argument; it
// must leave nothing in flight, tracked or allocated; and a normal transfer
// must work after it. Deadlines below only detect hangs: nothing is timed.

import assert from "node:assert/strict";
import {
  type Device,
  type Endpoint,
  type Interface,
  listDevices,
  open,
  UsbError,
} from "../../mod.ts";
import { pattern, sameBytes } from "./data.ts";
import { benchInfo } from "../../kernel/guest.ts";

const info = benchInfo();
const ss = info.gadgets.find((g) => g.function === "sourcesink")!;
const lb = info.gadgets.find((g) => g.function === "loopback");

/** How long a call may take before it counts as hung (TCG is slow). */
const HANG_MS = 20_000;

/** Settles `p`, or rejects with "hung" after HANG_MS; leaves no timer behind. */
async function deadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: hung for ${HANG_MS} ms`)),
          HANG_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function detachedView(): Uint8Array {
  const buffer = new ArrayBuffer(16);
  const view = new Uint8Array(buffer);
  buffer.transfer();
  return view;
}

// ---------------------------------------------------------------------------
// The hostile values, by what the argument is.

/** Wrong for every integer argument, required or not. */
const BAD_NUMBERS: unknown[] = [
  -0,
  NaN,
  Infinity,
  -Infinity,
  2 ** 31,
  2 ** 53,
  -1,
  1.5,
  null,
  "4",
  4n,
  true,
  {},
  [4],
  Symbol("4"),
  new Number(4),
];
/** Wrong for a required integer. */
const BAD_REQUIRED_NUMBERS: unknown[] = [...BAD_NUMBERS, undefined];
/** Wrong for an options argument. */
const BAD_OPTIONS: unknown[] = [null, 5, "x", [], true, Symbol("o"), () => {}];
/** Wrong for options.timeout (Infinity and absent mean no timeout). */
const BAD_TIMEOUTS: unknown[] = [
  -1,
  -0,
  NaN,
  -Infinity,
  2 ** 31,
  2 ** 53,
  "100",
  null,
  {},
  true,
];
/** Wrong for options.signal. */
const BAD_SIGNALS: unknown[] = [
  "yes",
  { aborted: false },
  { aborted: false, addEventListener() {}, removeEventListener() {} },
  null,
  1,
  new EventTarget(),
  Object.create(AbortSignal.prototype),
  new AbortController(),
];
/** Wrong for data to send. */
const BAD_DATA: unknown[] = [
  "hello",
  [1, 2, 3],
  { length: 4 },
  { buffer: new ArrayBuffer(4), byteOffset: 0, byteLength: 4 },
  null,
  4,
  true,
  detachedView(),
  Object.create(Uint8Array.prototype),
];
/** Wrong for a boolean option. */
const BAD_BOOLEANS: unknown[] = ["yes", 1, 0, null, {}];

const SETUP = {
  requestType: "standard",
  recipient: "device",
  request: 6,
  value: 0x0100,
  index: 0,
} as const;
const BAD_SETUPS: [unknown, RegExp][] = [
  [null, /setup/],
  [undefined, /setup/],
  ["GET_DESCRIPTOR", /setup/],
  [[0x80, 6, 0, 1, 0, 0, 18, 0], /setup/],
  [{}, /setup\.requestType/],
  [{ ...SETUP, requestType: "Standard" }, /setup\.requestType/],
  [{ ...SETUP, recipient: null }, /setup\.recipient/],
  [{ ...SETUP, request: -0 }, /setup\.request/],
  [{ ...SETUP, request: 256 }, /setup\.request/],
  [{ ...SETUP, value: 2 ** 16 }, /setup\.value/],
  [{ ...SETUP, value: NaN }, /setup\.value/],
  [{ ...SETUP, index: -1 }, /setup\.index/],
  [{ ...SETUP, index: "0" }, /setup\.index/],
];

// ---------------------------------------------------------------------------

interface Case {
  /** The call, for messages. */
  call: string;
  /** What the message must name. */
  names: RegExp;
  /** Makes the call. */
  run: () => unknown;
  /** True when the method returns a promise (it must reject, not throw). */
  async: boolean;
}

/** One case per value, each naming `names`. */
function cases(
  call: string,
  names: RegExp,
  values: readonly unknown[],
  run: (v: never) => unknown,
  async = true,
): Case[] {
  return values.map((v) => ({
    call: `${call} with ${describe(v)}`,
    names,
    run: () => run(v as never),
    async,
  }));
}

function describe(v: unknown): string {
  try {
    return typeof v === "symbol" ? v.toString() : Deno.inspect(v, {
      depth: 1,
      breakLength: Infinity,
    });
  } catch {
    return "?";
  }
}

/** The outcome of a case: the error, and whether it was thrown synchronously. */
async function attempt(
  c: Case,
): Promise<{ error: unknown; sync: boolean } | undefined> {
  let result: unknown;
  try {
    result = c.run();
  } catch (e) {
    return { error: e, sync: true };
  }
  if (!(result instanceof Promise)) {
    await dispose(result);
    return undefined;
  }
  try {
    await dispose(await deadline(result, c.call));
    return undefined;
  } catch (e) {
    return { error: e, sync: false };
  }
}

/** Closes what a call that should have failed made: a device, a stream. */
async function dispose(made: unknown): Promise<void> {
  if (typeof made !== "object" || made === null) return;
  if (made instanceof ReadableStream) await made.cancel();
  else if (made instanceof WritableStream) await made.abort();
  else if ("return" in made && typeof made.return === "function") {
    await made.return();
  } else if ("close" in made && typeof made.close === "function") {
    await made.close();
  }
}

/** A normal bulk IN read from SourceSink: its bytes are the pattern. */
async function normalRead(ep: Endpoint, what: string): Promise<void> {
  const n = 2 * ep.packetSize;
  const r = await deadline(
    ep.transferIn(n, { timeout: HANG_MS }),
    `the normal read after ${what}`,
  );
  assert.equal(r.status, "ok", `the normal read after ${what}`);
  assert.ok(
    sameBytes(r.data, pattern(n, ep.packetSize)),
    `the normal read after ${what} does not match the pattern`,
  );
}

async function normalControl(dev: Device, what: string): Promise<void> {
  const r = await deadline(
    dev.controlTransferIn(SETUP, 18, { timeout: HANG_MS }),
    `the GET_DESCRIPTOR after ${what}`,
  );
  assert.ok(sameBytes(r.data, dev.info.device.raw), `descriptor after ${what}`);
}

Deno.test("hostile values: every public method refuses them with invalid-argument naming the argument, and nothing changes", async () => {
  const dev = await open(ss.serial);
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  const ep = iface.endpoint(0x81);
  const out = iface.endpoint(0x02);
  const buf = dev.allocBuffer(4096);
  const released = dev.allocBuffer(4096);
  released.release();
  const engine = dev.engine;
  const mapped = dev.mappedBufferBytes;
  const configuration = dev.configuration?.configurationValue;
  const fakeBuffer = { size: 4096, bytes: new Uint8Array(4096) };

  const all: Case[] = [
    // open() and listDevices()
    ...cases(
      "open(selector)",
      /open: selector/,
      [
        null,
        undefined,
        5,
        true,
        [],
        {},
        Symbol("s"),
        { vendorId: -1 },
        { vendorId: "0525" },
        { productId: 0x10000 },
        { serial: 5 },
        { port: null },
      ],
      (v) => open(v),
    ),
    ...cases(
      "open(ss, options)",
      /open: options/,
      BAD_OPTIONS,
      (v) => open(ss.serial, v),
    ),
    ...cases(
      "open(ss, { maxUrbs })",
      /open: options\.maxUrbs/,
      [...BAD_NUMBERS, 0, 65537],
      (v) => open(ss.serial, { maxUrbs: v }),
    ),
    ...cases(
      "open(ss, { maxBufferBytes })",
      /open: options\.maxBufferBytes/,
      BAD_NUMBERS.filter((v) => v !== 2 ** 31), // a cap of 2 GiB is fine
      (v) => open(ss.serial, { maxBufferBytes: v }),
    ),
    ...cases(
      "listDevices(options)",
      /listDevices: options/,
      [...BAD_OPTIONS, { sysfsRoot: 5 }, { devRoot: null }],
      (v) => listDevices(v),
    ),

    // Device
    ...cases(
      "selectConfiguration(n)",
      /selectConfiguration: configuration value/,
      BAD_REQUIRED_NUMBERS,
      (v) => dev.selectConfiguration(v),
    ),
    ...cases(
      "claimInterface(n)",
      /claimInterface: interface number/,
      BAD_REQUIRED_NUMBERS,
      (v) => dev.claimInterface(v),
    ),
    ...cases(
      "claimInterface(0, options)",
      /claimInterface: options/,
      BAD_OPTIONS,
      (v) => dev.claimInterface(0, v),
    ),
    ...cases(
      "claimInterface(0, { detachKernelDriver })",
      /claimInterface: options\.detachKernelDriver/,
      BAD_BOOLEANS,
      (v) => dev.claimInterface(0, { detachKernelDriver: v }),
    ),
    ...BAD_SETUPS.flatMap(([setup, names]) => [
      ...cases(
        "controlTransferIn(setup)",
        new RegExp(`controlTransferIn: ${names.source}`),
        [setup],
        (v) => dev.controlTransferIn(v, 18),
      ),
      ...cases(
        "controlTransferOut(setup)",
        new RegExp(`controlTransferOut: ${names.source}`),
        [setup],
        (v) => dev.controlTransferOut(v, new Uint8Array(0)),
      ),
    ]),
    ...cases(
      "controlTransferIn(setup, length)",
      /controlTransferIn: length/,
      [...BAD_REQUIRED_NUMBERS, 65536],
      (v) => dev.controlTransferIn(SETUP, v),
    ),
    ...cases(
      "controlTransferOut(setup, data)",
      /controlTransferOut: data/,
      [...BAD_DATA, new Uint8Array(65536)],
      (v) => dev.controlTransferOut(SETUP, v),
    ),
    ...cases(
      "controlTransferIn(setup, 18, options)",
      /controlTransferIn: options/,
      BAD_OPTIONS,
      (v) => dev.controlTransferIn(SETUP, 18, v),
    ),
    ...cases(
      "controlTransferIn(setup, 18, { timeout })",
      /controlTransferIn: options\.timeout/,
      BAD_TIMEOUTS,
      (v) => dev.controlTransferIn(SETUP, 18, { timeout: v }),
    ),
    ...cases(
      "controlTransferOut(setup, data, { signal })",
      /controlTransferOut: options\.signal/,
      BAD_SIGNALS,
      (v) => dev.controlTransferOut(SETUP, new Uint8Array(0), { signal: v }),
    ),
    ...cases(
      "getStringDescriptor(index)",
      /getStringDescriptor: index/,
      [...BAD_REQUIRED_NUMBERS, 0, 256],
      (v) => dev.getStringDescriptor(v),
    ),
    ...cases(
      "getStringDescriptor(1, langId)",
      /getStringDescriptor: langId/,
      [...BAD_NUMBERS, 65536],
      (v) => dev.getStringDescriptor(1, v),
    ),
    ...cases(
      "getStringDescriptor(1, undefined, { timeout })",
      /getStringDescriptor: options\.timeout/,
      BAD_TIMEOUTS,
      (v) => dev.getStringDescriptor(1, undefined, { timeout: v }),
    ),
    ...cases(
      "allocBuffer(size)",
      /allocBuffer: size/,
      [...BAD_REQUIRED_NUMBERS, 0],
      (v) => dev.allocBuffer(v),
      false,
    ),
    ...cases(
      "allocBuffer(4096, options)",
      /allocBuffer: options/,
      [...BAD_OPTIONS, ...BAD_BOOLEANS.map((zeroCopy) => ({ zeroCopy }))],
      (v) => dev.allocBuffer(4096, v),
      false,
    ),

    // Interface
    ...cases(
      "endpoint(address)",
      /endpoint: address/,
      [...BAD_REQUIRED_NUMBERS, 256],
      (v) => iface.endpoint(v),
      false,
    ),
    ...cases(
      "selectAlternateInterface(n)",
      /selectAlternateInterface: alternate setting/,
      BAD_REQUIRED_NUMBERS,
      (v) => iface.selectAlternateInterface(v),
    ),
    ...cases(
      "device.selectAlternateInterface(interfaceNumber, alternateSetting)",
      /selectAlternateInterface: interface number/,
      BAD_REQUIRED_NUMBERS,
      (v) => dev.selectAlternateInterface(v, 0),
    ),
    ...cases(
      "device.selectAlternateInterface(0, alternateSetting)",
      /selectAlternateInterface: alternate setting/,
      BAD_REQUIRED_NUMBERS,
      (v) => dev.selectAlternateInterface(0, v),
    ),

    // Endpoint: transferIn
    ...cases(
      "transferIn(length)",
      /transferIn: length/,
      [...BAD_REQUIRED_NUMBERS, fakeBuffer, new Uint8Array(4)],
      (v) => ep.transferIn(v),
    ),
    ...cases("transferIn(1024, options)", /transferIn: options/, BAD_OPTIONS, (
      v,
    ) => ep.transferIn(1024, v)),
    ...cases(
      "transferIn(1024, { timeout })",
      /transferIn: options\.timeout/,
      BAD_TIMEOUTS,
      (v) => ep.transferIn(1024, { timeout: v }),
    ),
    ...cases(
      "transferIn(1024, { signal })",
      /transferIn: options\.signal/,
      BAD_SIGNALS,
      (v) => ep.transferIn(1024, { signal: v }),
    ),
    ...cases(
      "transferIn(1024, { length })",
      /transferIn: options\.length/,
      [1024, 0],
      (v) => ep.transferIn(1024, { length: v }),
    ),
    ...cases(
      "transferIn(buffer, { length })",
      /transferIn: options\.length/,
      [...BAD_NUMBERS, 4097],
      (v) => ep.transferIn(buf, { length: v }),
    ),
    ...cases(
      "transferIn(released buffer)",
      /transferIn: length must be a UsbBuffer that was not released/,
      [released],
      (v) => ep.transferIn(v),
    ),

    // Endpoint: transferOut
    ...cases(
      "transferOut(data)",
      /transferOut: data/,
      [...BAD_DATA, undefined, fakeBuffer],
      (v) => out.transferOut(v),
    ),
    ...cases(
      "transferOut(data, options)",
      /transferOut: options/,
      BAD_OPTIONS,
      (v) => out.transferOut(new Uint8Array(0), v),
    ),
    ...cases(
      "transferOut(data, { timeout })",
      /transferOut: options\.timeout/,
      BAD_TIMEOUTS,
      (v) => out.transferOut(new Uint8Array(0), { timeout: v }),
    ),
    ...cases(
      "transferOut(data, { signal })",
      /transferOut: options\.signal/,
      BAD_SIGNALS,
      (v) => out.transferOut(new Uint8Array(0), { signal: v }),
    ),
    ...cases(
      "transferOut(data, { zeroPacket })",
      /transferOut: options\.zeroPacket/,
      BAD_BOOLEANS,
      (v) => out.transferOut(new Uint8Array(0), { zeroPacket: v }),
    ),
    ...cases(
      "transferOut(buffer, { length })",
      /transferOut: options\.length/,
      [...BAD_NUMBERS, 4097],
      (v) => out.transferOut(buf, { length: v }),
    ),
    ...cases(
      "transferOut(array, { length })",
      /transferOut: options\.length/,
      [0],
      (v) => out.transferOut(new Uint8Array(4), { length: v }),
    ),

    // Device: transferBatch (every request is checked before any is submitted)
    ...cases(
      "transferBatch(requests)",
      /transferBatch: requests/,
      [
        null,
        undefined,
        5,
        "x",
        {},
        [],
        new Array(4097).fill({
          endpoint: 0x81,
          length: 8,
        }),
        { length: 1, 0: { endpoint: 0x81, length: 8 } },
      ],
      (v) => dev.transferBatch(v),
    ),
    ...cases(
      "transferBatch([request])",
      /transferBatch: requests\[0\]/,
      [null, 5, "x", [0x81, 8], {}, { endpoint: 0x81 }, {
        endpoint: 0x81,
        length: 8,
        data: new Uint8Array(8),
      }],
      (v) => dev.transferBatch([v]),
    ),
    ...cases(
      "transferBatch([{ endpoint }])",
      /transferBatch: requests\[0\]\.endpoint/,
      [...BAD_REQUIRED_NUMBERS, 256, 0x85, 0x00],
      (v) => dev.transferBatch([{ endpoint: v, length: 8 }]),
    ),
    ...cases(
      "transferBatch([{ endpoint: OUT, length }])",
      /transferBatch: requests\[0\]\.endpoint/,
      [0x02],
      (v) => dev.transferBatch([{ endpoint: v, length: 8 }]),
    ),
    ...cases(
      "transferBatch([{ endpoint: IN, data }])",
      /transferBatch: requests\[0\]\.endpoint/,
      [0x81],
      (v) => dev.transferBatch([{ endpoint: v, data: new Uint8Array(8) }]),
    ),
    ...cases(
      "transferBatch([ok, { length }])",
      /transferBatch: requests\[1\]\.length/,
      BAD_NUMBERS,
      (v) =>
        dev.transferBatch([{ endpoint: 0x81, length: 8 }, {
          endpoint: 0x81,
          length: v,
        }]),
    ),
    ...cases(
      "transferBatch([{ data }])",
      /transferBatch: requests\[0\]\.data/,
      [...BAD_DATA, fakeBuffer, released],
      (v) => dev.transferBatch([{ endpoint: 0x02, data: v }]),
    ),
    ...cases(
      "transferBatch([{ data: buf }, { data: buf }])",
      /transferBatch: requests\[1\]\.data/,
      [buf],
      (v) =>
        dev.transferBatch([{ endpoint: 0x02, data: v }, {
          endpoint: 0x02,
          data: v,
        }]),
    ),
    ...cases(
      "transferBatch(requests, options)",
      /transferBatch: options/,
      BAD_OPTIONS,
      (v) => dev.transferBatch([{ endpoint: 0x81, length: 8 }], v),
    ),
    ...cases(
      "transferBatch(requests, { timeout })",
      /transferBatch: options\.timeout/,
      BAD_TIMEOUTS,
      (v) => dev.transferBatch([{ endpoint: 0x81, length: 8 }], { timeout: v }),
    ),
    ...cases(
      "transferBatch(requests, { signal })",
      /transferBatch: options\.signal/,
      BAD_SIGNALS,
      (v) => dev.transferBatch([{ endpoint: 0x81, length: 8 }], { signal: v }),
    ),
    // Endpoint: isochronous (arguments are checked before the endpoint type)
    ...cases(
      "isochronousTransferIn(packetLengths)",
      /isochronousTransferIn: packetLengths/,
      [
        null,
        undefined,
        [],
        "1",
        { length: 1 },
        [-1],
        [-0],
        [NaN],
        [98305],
        [1.5],
        [null],
        new Array(3),
        [2 ** 31],
        new Uint32Array([1]),
      ],
      (v) => ep.isochronousTransferIn(v),
    ),
    ...cases(
      "isochronousTransferIn([8], { buffer })",
      /isochronousTransferIn: options\.buffer/,
      [fakeBuffer, new Uint8Array(8), "x", null],
      (v) => ep.isochronousTransferIn([8], { buffer: v }),
    ),
    ...cases(
      "isochronousTransferIn([8], { timeout })",
      /isochronousTransferIn: options\.timeout/,
      BAD_TIMEOUTS,
      (v) => ep.isochronousTransferIn([8], { timeout: v }),
    ),
    ...cases(
      "isochronousTransferOut(data)",
      /isochronousTransferOut: data/,
      [...BAD_DATA, undefined, new Uint8Array(4)],
      (v) => out.isochronousTransferOut(v, [8]),
    ),
    ...cases(
      "isochronousTransferOut(data, packetLengths)",
      /isochronousTransferOut: packetLengths/,
      [null, [], [-1], [NaN], [98305]],
      (v) => out.isochronousTransferOut(new Uint8Array(8), v),
    ),
    ...cases(
      "isochronousTransferOut(data, [8], { signal })",
      /isochronousTransferOut: options\.signal/,
      BAD_SIGNALS,
      (v) => out.isochronousTransferOut(new Uint8Array(8), [8], { signal: v }),
    ),

    // Endpoint: streams
    ...cases(
      "stream(options)",
      /stream: options/,
      BAD_OPTIONS,
      (v) => ep.stream(v),
      false,
    ),
    ...cases(
      "stream({ transferSize })",
      /stream: options\.transferSize/,
      [...BAD_NUMBERS, 0],
      (v) => ep.stream({ transferSize: v }),
      false,
    ),
    ...cases(
      "stream({ inFlight })",
      /stream: options\.inFlight/,
      [...BAD_NUMBERS, 0],
      (v) => ep.stream({ inFlight: v }),
      false,
    ),
    ...cases(
      "stream({ signal })",
      /stream: options\.signal/,
      BAD_SIGNALS,
      (v) => ep.stream({ signal: v }),
      false,
    ),
    ...cases(
      "stream({ zeroCopy })",
      /stream: options\.zeroCopy/,
      BAD_BOOLEANS,
      (v) => ep.stream({ zeroCopy: v }),
      false,
    ),
    // Endpoint: isochronous stream (options are checked before the type)
    ...cases(
      "isochronousStream(options)",
      /isochronousStream: options/,
      BAD_OPTIONS,
      (v) => ep.isochronousStream(v),
      false,
    ),
    ...cases(
      "isochronousStream({ packets })",
      /isochronousStream: options\.packets/,
      [0, -0, NaN, 129, 1.5, "32", null, [], [-1], [98305]],
      (v) => ep.isochronousStream({ packets: v }),
      false,
    ),
    ...cases(
      "isochronousStream({ inFlight })",
      /isochronousStream: options\.inFlight/,
      [...BAD_NUMBERS, 0],
      (v) => ep.isochronousStream({ inFlight: v }),
      false,
    ),
    ...cases(
      "isochronousStream({ signal })",
      /isochronousStream: options\.signal/,
      BAD_SIGNALS,
      (v) => ep.isochronousStream({ signal: v }),
      false,
    ),
    ...cases(
      "isochronousStream({ zeroCopy })",
      /isochronousStream: options\.zeroCopy/,
      BAD_BOOLEANS,
      (v) => ep.isochronousStream({ zeroCopy: v }),
      false,
    ),
    ...cases(
      "openReadable({ transferSize })",
      /openReadable: options\.transferSize/,
      [-0, NaN, 2 ** 31, "1024"],
      (v) => ep.openReadable({ transferSize: v }),
      false,
    ),
    ...cases(
      "openReadable({ signal })",
      /openReadable: options\.signal/,
      [{ aborted: false }, "yes"],
      (v) => ep.openReadable({ signal: v }),
      false,
    ),
    ...cases(
      "openWritable(options)",
      /openWritable: options/,
      BAD_OPTIONS,
      (v) => out.openWritable(v),
      false,
    ),
    ...cases(
      "openWritable({ inFlight })",
      /openWritable: options\.inFlight/,
      [...BAD_NUMBERS, 0],
      (v) => out.openWritable({ inFlight: v }),
      false,
    ),
  ];

  const problems: string[] = [];
  for (const c of all) {
    const outcome = await attempt(c);
    if (outcome === undefined) {
      problems.push(`${c.call}: succeeded`);
    } else {
      const { error, sync } = outcome;
      if (!(error instanceof UsbError)) {
        problems.push(`${c.call}: ${error}`);
      } else if (error.code !== "invalid-argument") {
        problems.push(`${c.call}: code ${error.code}: ${error.message}`);
      } else if (!c.names.test(error.message)) {
        problems.push(
          `${c.call}: the message does not name ${c.names}: ${error.message}`,
        );
      } else if (c.async && sync) {
        problems.push(`${c.call}: threw synchronously instead of rejecting`);
      } else if (!c.async && !sync) {
        problems.push(`${c.call}: a synchronous method returned a promise`);
      }
    }
    // Nothing changed: no transfer tracked, no URB slot taken, nothing
    // mapped, the interface still claimed, the configuration the same; and
    // the device still works.
    await normalRead(ep, c.call);
    if (engine.pendingCount !== 0) {
      problems.push(`${c.call}: ${engine.pendingCount} transfers left tracked`);
    }
    if (engine.freeSlots !== engine.slotCount) {
      problems.push(
        `${c.call}: ${
          engine.slotCount - engine.freeSlots
        } URB slots left taken`,
      );
    }
    if (dev.mappedBufferBytes !== mapped) {
      problems.push(`${c.call}: mapped bytes changed`);
    }
    if (!iface.claimed || buf.inFlight || buf.released) {
      problems.push(`${c.call}: the interface or the buffer changed`);
    }
    if (dev.configuration?.configurationValue !== configuration) {
      problems.push(`${c.call}: the configuration changed`);
    }
  }
  console.log(`${all.length} hostile calls`);
  await normalControl(dev, "the hostile calls");
  buf.release();
  await deadline(dev.close(), "close()");
  assert.deepEqual(problems, []);
  assert.ok(all.length > 300, `only ${all.length} hostile calls`);
});

Deno.test("hostile values: a transfer whose signal is already aborted does not touch a UsbBuffer another transfer owns", async () => {
  await using dev = await open(ss.serial);
  const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
    .endpoint(0x81);
  const buf = dev.allocBuffer(4096);
  // A free buffer and an aborted signal: cancelled, and the buffer is as it was.
  await assert.rejects(
    ep.transferIn(buf, { signal: AbortSignal.abort() }),
    (e: unknown) => e instanceof UsbError && e.code === "cancelled",
  );
  assert.equal(buf.inFlight, false);
  assert.equal(buf.bytes.byteLength, 4096);
  const first = ep.transferIn(buf);
  const second = ep.transferIn(buf, { signal: AbortSignal.abort() });
  // Still owned by the first transfer: the refused call gave no view back.
  assert.equal(buf.inFlight, true);
  assert.equal(buf.bytes.byteLength, 0);
  await assert.rejects(
    second,
    (e: unknown) =>
      e instanceof UsbError && e.code === "invalid-argument" &&
      /^transferIn: length must be a UsbBuffer that no transfer owns/.test(
        e.message,
      ),
  );
  // SourceSink answers at once, and a completion can be delivered while the
  // rejection is awaited: the buffer is the first transfer's until it is
  // over, and then holds what it read.
  const r = await deadline(first, "the first transfer");
  assert.equal(buf.inFlight, false);
  assert.ok(sameBytes(r.data, pattern(4096, ep.packetSize)));
  const third = ep.transferIn(buf);
  // Checked before anything is awaited: the third transfer may be over as
  // soon as the event loop runs.
  const refused = ep.transferIn(buf);
  assert.throws(
    () => buf.release(),
    (e: unknown) => e instanceof UsbError && e.code === "invalid-argument",
  );
  await assert.rejects(
    refused,
    (e: unknown) =>
      e instanceof UsbError && e.code === "invalid-argument" &&
      /transferIn: length must be a UsbBuffer that no transfer owns/.test(
        e.message,
      ),
  );
  await deadline(third, "the third transfer");
  buf.release();
});

Deno.test("hostile values: the process exits after hostile calls, with or without close(); no TimeoutOverflowWarning", async () => {
  const script = new URL("./hostile_exit.ts", import.meta.url).pathname;
  for (const mode of ["close", "no-close"]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-check",
        "--cached-only",
        script,
        ss.serial,
        mode,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<"hung">((resolve) => {
      timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve("hung");
      }, 60_000);
    });
    const result = await Promise.race([child.output(), killed]);
    clearTimeout(timer);
    if (result === "hung") {
      await child.status;
      assert.fail(`the ${mode} script did not exit within 60 s`);
    }
    const stdout = new TextDecoder().decode(result.stdout);
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, `${mode}: ${stdout}\n${stderr}`);
    assert.match(stdout, /hostile calls refused: 9\/9/, stdout);
    assert.match(stdout, /done/);
    assert.doesNotMatch(stdout, /unhandled rejection/);
    assert.doesNotMatch(stderr, /TimeoutOverflowWarning/);
  }
});

/** The Loopback gadget's bulk endpoints. */
function bulkPair(iface: Interface): { out: Endpoint; inn: Endpoint } {
  const find = (dir: "in" | "out") =>
    iface.endpoints.find((e) => e.type === "bulk" && e.direction === dir)!;
  return { out: find("out"), inn: find("in") };
}

Deno.test({
  name:
    "timeouts: -1 and NaN are invalid-argument on an idle endpoint; 2^31 too; Infinity and 2^31-1 wait for the data",
  ignore: lb === undefined,
  fn: async () => {
    await using dev = await open(lb!.serial);
    await dev.reset();
    const { out, inn } = bulkPair(await dev.claimInterface(0));
    for (const timeout of [-1, NaN, 2 ** 31, Number.MAX_VALUE]) {
      await assert.rejects(
        deadline(inn.transferIn(512, { timeout }), `timeout ${timeout}`),
        (e: unknown) => {
          assert.ok(e instanceof UsbError, String(e));
          assert.equal(e.code, "invalid-argument");
          assert.match(e.message, /transferIn: options\.timeout must be/);
          return true;
        },
      );
    }
    for (const timeout of [Infinity, 2 ** 31 - 1]) {
      const data = crypto.getRandomValues(new Uint8Array(100));
      const reading = inn.transferIn(512, { timeout });
      // A timer of 1 ms (what an overflowing timeout used to become) fires
      // before one of 50 ms: timers run in deadline order.
      await new Promise((r) => setTimeout(r, 50));
      await out.transferOut(data);
      const r = await deadline(reading, `timeout ${timeout}`);
      assert.equal(r.status, "ok");
      assert.ok(sameBytes(r.data, data), `echo with timeout ${timeout}`);
    }
  },
});

// Item 3: a stream stopped by close() or release() from another task ends
// the for-await loop with a cancelled error that says why.

async function expectStreamCancelled(
  loop: Promise<unknown>,
  why: RegExp,
): Promise<void> {
  await assert.rejects(deadline(loop, "the for-await loop"), (e: unknown) => {
    assert.ok(e instanceof UsbError, String(e));
    assert.equal(e.code, "cancelled");
    assert.match(e.message, why);
    return true;
  });
}

for (const stop of ["close", "release"] as const) {
  const why = stop === "close" ? /device was closed/ : /interface was released/;

  Deno.test(`stream: ${stop}() between iterations ends the for-await loop with cancelled`, async () => {
    const dev = await open(ss.serial);
    try {
      const iface = await dev.claimInterface(0, { detachKernelDriver: true });
      const ep = iface.endpoint(0x81);
      let chunks = 0;
      let stopping: Promise<void> | undefined;
      const loop = (async () => {
        for await (
          const chunk of ep.stream({ transferSize: 16384, inFlight: 4 })
        ) {
          assert.ok(sameBytes(chunk, pattern(16384, ep.packetSize)));
          // Another task stops it while this one holds a chunk.
          if (++chunks === 3) {
            stopping = stop === "close" ? dev.close() : iface.release();
          }
        }
      })();
      await expectStreamCancelled(loop, why);
      await deadline(stopping!, `${stop}()`);
      assert.equal(chunks, 3);
      if (stop === "release") {
        // The device still works: claim again and read.
        const again = await dev.claimInterface(0, {
          detachKernelDriver: true,
        });
        await normalRead(again.endpoint(0x81), "release()");
      }
    } finally {
      await deadline(dev.close(), "close()");
    }
  });

  Deno.test({
    name:
      `stream: ${stop}() while the loop waits for data ends it with cancelled`,
    ignore: lb === undefined,
    fn: async () => {
      const dev = await open(lb!.serial);
      try {
        await dev.reset();
        const iface = await dev.claimInterface(0);
        const { inn } = bulkPair(iface);
        let chunks = 0;
        const stream = inn.stream({ transferSize: 4096, inFlight: 4 });
        const loop = (async () => {
          for await (const _ of stream) chunks++;
        })();
        const ended = expectStreamCancelled(loop, why);
        // The Loopback gadget sends nothing unless written to: the loop is
        // waiting in next() when the other task stops the stream.
        await deadline(
          stop === "close" ? dev.close() : iface.release(),
          `${stop}()`,
        );
        await ended;
        assert.equal(chunks, 0);
      } finally {
        await deadline(dev.close(), "close()");
      }
    },
  });
}
