// src/validate.ts on the host: the one rule for checking arguments, and the
// pure public functions that use it (no device needed).

import assert from "node:assert/strict";
import {
  checkBoolean,
  checkBytes,
  checkInteger,
  checkOneOf,
  checkOptions,
  checkSignal,
  checkString,
  checkTimeout,
  checkTransferOptions,
  describeValue,
  hex,
  invalidArgument,
  MAX_TIMEOUT_MS,
  MAX_TRANSFER_BYTES,
} from "../../src/validate.ts";
import { UsbError } from "../../src/errors.ts";
import { checkSetup, encodeSetup } from "../../src/device.ts";
import {
  checkSelector,
  formatSelector,
  parseSelector,
  selectDevice,
} from "../../src/selector.ts";
import { listDevices, listDevicesSync } from "../../src/enumeration.ts";
import { udevRule } from "../../src/errors.ts";
import { UsbBuffer } from "../../src/buffer.ts";
import { checkStreamOptions, checkWritableOptions } from "../../src/stream.ts";

/** Asserts an invalid-argument UsbError whose message matches `message`. */
function invalid(message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UsbError, `not a UsbError: ${e}`);
    assert.equal(e.code, "invalid-argument");
    assert.match(e.message, message);
    return true;
  };
}

function detachedView(): Uint8Array {
  const buffer = new ArrayBuffer(8);
  const view = new Uint8Array(buffer);
  buffer.transfer();
  return view;
}

Deno.test("describeValue prints every kind of value safely", () => {
  let getterCalls = 0;
  const withGetter = {
    get timeout() {
      getterCalls++;
      return 1;
    },
  };
  const throwingProxy = new Proxy({}, {
    getPrototypeOf() {
      throw new Error("trap");
    },
    ownKeys() {
      throw new Error("trap");
    },
  });
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const cases: [unknown, string | RegExp][] = [
    [undefined, "undefined"],
    [null, "null"],
    [-0, "-0"],
    [0, "0"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    [-Infinity, "-Infinity"],
    [2 ** 31, "2147483648"],
    [2 ** 53, "9007199254740992"],
    [1.5, "1.5"],
    [-1, "-1"],
    [10n, "10n"],
    [10n ** 100n, "a 101-digit bigint"],
    [true, "true"],
    ["yes", '"yes"'],
    ["", '""'],
    ["x".repeat(1000), /^"x{40}"… \(1000 characters\)$/],
    ['a"b\n', '"a\\"b\\n"'],
    [Symbol("x"), "Symbol(x)"],
    [Symbol("s".repeat(100)), /^Symbol\(s+…$/],
    [() => 1, "a function"],
    [function named() {}, "a function named"],
    [[], "an empty array"],
    [[1, 2, 3], "an array [1, 2, 3]"],
    [[1, "a", null, {}, 5, 6], 'an array [1, "a", null, {…}, … (6)]'],
    [new Array(2), "an array [<empty>, <empty>]"],
    [{}, "an empty object"],
    [{ aborted: false }, "an object { aborted: false }"],
    [{ length: 4 }, "an object { length: 4 }"],
    [
      { a: 1, b: [1], c: {}, d: "x", e: 5 },
      'an object { a: 1, b: […], c: {…}, d: "x", … }',
    ],
    [withGetter, "an object { timeout: <getter> }"],
    [Object.create(null), "an empty object"],
    [new Date(0), "a Date"],
    [new AbortController(), "an AbortController"],
    [new Uint8Array(4), "a Uint8Array of 4 bytes"],
    [new Uint16Array(4), "a Uint16Array of 8 bytes"],
    [new DataView(new ArrayBuffer(3)), "a DataView of 3 bytes"],
    [new Uint8Array(1), "a Uint8Array of 1 byte"],
    [detachedView(), "a Uint8Array of a detached ArrayBuffer"],
    [new ArrayBuffer(5), "an ArrayBuffer of 5 bytes"],
    [throwingProxy, "a value that cannot be printed"],
    [revoked.proxy, "a value that cannot be printed"],
  ];
  for (const [value, want] of cases) {
    const got = describeValue(value);
    if (typeof want === "string") assert.equal(got, want);
    else assert.match(got, want);
  }
  assert.equal(getterCalls, 0, "describeValue called a getter");
});

Deno.test("invalidArgument: the message names the argument, the value and what is allowed", () => {
  const e = invalidArgument(
    "transferIn: length",
    -0,
    "an integer from 0 to 10",
    "pass 0",
  );
  assert.ok(e instanceof UsbError);
  assert.equal(e.code, "invalid-argument");
  assert.equal(
    e.message,
    "transferIn: length must be an integer from 0 to 10, got -0",
  );
  assert.equal(e.hint, "pass 0");
});

Deno.test("checkInteger refuses -0, NaN, ±Infinity, fractions, bigints, strings, objects and out-of-range values", () => {
  for (const ok of [0, 1, 255]) {
    assert.equal(checkInteger("endpoint: address", ok, 0, 255), ok);
  }
  const bad = [
    -0,
    NaN,
    Infinity,
    -Infinity,
    1.5,
    -1,
    256,
    2 ** 31,
    2 ** 53,
    5n,
    "5",
    null,
    undefined,
    true,
    {},
    [5],
    new Number(5),
    Symbol("five"),
  ];
  for (const value of bad) {
    assert.throws(
      () => checkInteger("endpoint: address", value, 0, 255),
      invalid(/^endpoint: address must be an integer from 0 to 255, got /),
      describeValue(value),
    );
  }
  assert.throws(() => checkInteger("x", -0, 0, 1), (e: unknown) => {
    assert.ok(e instanceof UsbError);
    assert.match(e.message, /got -0$/);
    assert.match(e.hint ?? "", /pass 0/);
    return true;
  });
});

Deno.test("checkTimeout: 0, absent and Infinity mean none; -1, NaN and values above 2^31-1 are refused", () => {
  assert.equal(checkTimeout("t", undefined), 0);
  assert.equal(checkTimeout("t", 0), 0);
  assert.equal(checkTimeout("t", Infinity), 0);
  assert.equal(checkTimeout("t", 1000), 1000);
  assert.equal(checkTimeout("t", 0.5), 0.5);
  assert.equal(checkTimeout("t", MAX_TIMEOUT_MS), 2 ** 31 - 1);
  for (
    const value of [-1, -0, NaN, -Infinity, 2 ** 31, 2 ** 53, "100", null, 1n]
  ) {
    assert.throws(
      () => checkTimeout("transferIn: options.timeout", value),
      invalid(
        /^transferIn: options\.timeout must be a number of milliseconds from 0 to 2147483647/,
      ),
      describeValue(value),
    );
  }
});

Deno.test("checkSignal accepts only a real AbortSignal", () => {
  const live = new AbortController().signal;
  assert.equal(checkSignal("s", live), live);
  const aborted = AbortSignal.abort();
  assert.equal(checkSignal("s", aborted), aborted);
  assert.equal(checkSignal("s", undefined), undefined);
  // A Proxy of a real signal passes the platform's own brand check, and
  // works as one; transfers listen to it before submitting anything.
  const proxy = new Proxy(live, {});
  assert.equal(checkSignal("s", proxy), proxy);
  const lookalikes = [
    "yes",
    null,
    0,
    { aborted: false },
    {
      aborted: false,
      addEventListener() {},
      removeEventListener() {},
    },
    Object.create(AbortSignal.prototype),
    new EventTarget(),
    new AbortController(),
  ];
  for (const value of lookalikes) {
    assert.throws(
      () => checkSignal("transferIn: options.signal", value),
      invalid(
        /^transferIn: options\.signal must be an AbortSignal or undefined, got /,
      ),
      describeValue(value),
    );
  }
});

Deno.test("checkBytes: views and ArrayBuffers over the same memory; arrays, look-alikes and detached views are refused", () => {
  const u8 = new Uint8Array([1, 2, 3, 4, 5]);
  const sub = u8.subarray(1, 3);
  const got = checkBytes("d", sub);
  assert.deepEqual([...got], [2, 3]);
  got[0] = 9;
  assert.equal(u8[1], 9, "not the same memory");
  assert.deepEqual(
    [...checkBytes("d", new DataView(u8.buffer, 2, 2))],
    [3, 4],
  );
  assert.equal(checkBytes("d", new ArrayBuffer(6)).length, 6);
  assert.equal(checkBytes("d", new Uint32Array(2)).length, 8);
  assert.equal(checkBytes("d", new Uint8Array(0)).length, 0);
  assert.equal(
    checkBytes("d", new Uint8Array(new SharedArrayBuffer(4))).length,
    4,
  );
  // A view cannot lie about its extent through own properties.
  const liar = new Uint8Array(4);
  Object.defineProperty(liar, "byteLength", { value: 1 << 30 });
  Object.defineProperty(liar, "length", { value: 1 << 30 });
  assert.equal(checkBytes("d", liar).length, 4);

  const buffer = new ArrayBuffer(4);
  buffer.transfer();
  const bad = [
    [1, 2, 3],
    { length: 4 },
    { buffer: new ArrayBuffer(4), byteLength: 4, byteOffset: 0 },
    "hello",
    null,
    undefined,
    4,
    detachedView(),
    buffer,
    Object.create(Uint8Array.prototype),
  ];
  for (const value of bad) {
    assert.throws(
      () => checkBytes("transferOut: data", value),
      invalid(/^transferOut: data must be a Uint8Array/),
      describeValue(value),
    );
  }
  assert.throws(
    () => checkBytes("controlTransferOut: data", new Uint8Array(10), 8),
    invalid(/of at most 8 bytes, got a Uint8Array of 10 bytes/),
  );
  assert.throws(
    () => checkBytes("d", detachedView()),
    (e: unknown) => e instanceof UsbError && /detached/.test(e.hint ?? ""),
  );
  assert.equal(MAX_TRANSFER_BYTES, 2 ** 31 - 1);
});

Deno.test("checkOptions: an object or undefined; each option read once; a throwing getter is invalid-argument", () => {
  let reads = 0;
  const o = checkOptions("stream: options", {
    get inFlight() {
      reads++;
      return 4;
    },
    other: 1,
  }, ["inFlight", "transferSize"]);
  assert.deepEqual(o, { inFlight: 4, transferSize: undefined });
  assert.equal(reads, 1);
  assert.deepEqual(checkOptions("x", undefined, ["a"]), { a: undefined });
  for (const value of [null, 5, "x", [], [1], () => {}, true, Symbol("s")]) {
    assert.throws(
      () => checkOptions("stream: options", value, ["inFlight"]),
      invalid(/^stream: options must be an object or undefined, got /),
      describeValue(value),
    );
  }
  assert.throws(
    () =>
      checkOptions("transferIn: options", {
        get timeout() {
          throw new Error("boom");
        },
      }, ["timeout"]),
    invalid(/^transferIn: options\.timeout could not be read/),
  );
  const proxy = new Proxy({}, {
    get() {
      throw new Error("trap");
    },
  });
  assert.throws(
    () => checkOptions("transferIn: options", proxy, ["timeout"]),
    invalid(/options\.timeout could not be read/),
  );
});

Deno.test("checkTransferOptions: timeout and signal checked, extra options passed through raw", () => {
  const signal = new AbortController().signal;
  const o = checkTransferOptions("transferOut", {
    timeout: Infinity,
    signal,
    zeroPacket: "maybe",
  }, ["zeroPacket"]);
  assert.equal(o.timeout, 0);
  assert.equal(o.signal, signal);
  assert.equal(o.extra.zeroPacket, "maybe");
  assert.throws(
    () => checkTransferOptions("transferIn", { signal: "yes" }),
    invalid(/^transferIn: options\.signal must be an AbortSignal/),
  );
  assert.throws(
    () => checkTransferOptions("transferIn", { timeout: -1 }),
    invalid(/^transferIn: options\.timeout must be/),
  );
  assert.throws(
    () => checkTransferOptions("transferIn", 1000),
    invalid(/^transferIn: options must be an object or undefined, got 1000$/),
  );
});

Deno.test("checkBoolean, checkString, checkOneOf", () => {
  assert.equal(checkBoolean("b", false), false);
  assert.equal(checkBoolean("b", undefined), undefined);
  for (const value of [0, 1, "true", null, {}]) {
    assert.throws(
      () => checkBoolean("claimInterface: options.detachKernelDriver", value),
      invalid(/detachKernelDriver must be true, false or undefined/),
    );
  }
  assert.equal(checkString("s", ""), "");
  assert.throws(
    () => checkString("s", new String("x")),
    invalid(/s must be a string/),
  );
  assert.equal(checkOneOf("d", "in", ["in", "out"]), "in");
  assert.throws(
    () => checkOneOf("encodeSetup: dir", "IN", ["in", "out"]),
    invalid(/must be "in" or "out", got "IN"/),
  );
  assert.throws(
    () => checkOneOf("r", { toString: () => "device" }, ["device"]),
    invalid(/must be "device", got an object/),
  );
});

Deno.test("hex never prints 0x-1", () => {
  assert.equal(hex(0x81), "0x81");
  assert.equal(hex(2), "0x02");
  assert.equal(hex(0x525, 4, ""), "0525");
  assert.equal(hex(-1), "-1");
  assert.equal(hex(-0), "-0");
  assert.equal(hex(NaN), "NaN");
  assert.equal(hex(1.5), "1.5");
  assert.equal(hex("x" as unknown as number), '"x"');
  assert.equal(formatSelector({ vendorId: -1 }), "-1:");
  assert.doesNotMatch(udevRule(-1, 0xa4a0), /0x-|00-1/);
});

Deno.test("the pure public functions apply the same rule: setup packets, selectors, listing options, stream options", async () => {
  const setup = {
    requestType: "vendor",
    recipient: "device",
    request: 1,
    value: 0,
    index: 0,
  };
  assert.throws(
    () => checkSetup("controlTransferIn", null),
    invalid(/^controlTransferIn: setup must be a setup packet/),
  );
  assert.throws(
    () => checkSetup("controlTransferIn", { ...setup, index: 2 ** 16 }),
    invalid(
      /^controlTransferIn: setup\.index must be an integer from 0 to 65535/,
    ),
  );
  assert.throws(
    () => checkSetup("controlTransferIn", { ...setup, recipient: "host" }),
    invalid(
      /^controlTransferIn: setup\.recipient must be "device", "interface", "endpoint" or "other", got "host"/,
    ),
  );
  assert.throws(
    () =>
      encodeSetup(
        [0, 0, 0, 0, 0, 0, 0, 0] as unknown as Uint8Array,
        "in",
        setup as never,
        0,
      ),
    invalid(/^encodeSetup: buf must be a Uint8Array/),
  );
  assert.throws(
    () => encodeSetup(new Uint8Array(4), "in", setup as never, 0),
    invalid(/^encodeSetup: buf must be at least 8 bytes/),
  );
  assert.throws(
    () => encodeSetup(new Uint8Array(8), "in", setup as never, -0),
    invalid(/^encodeSetup: length must be an integer from 0 to 65535, got -0/),
  );

  for (const value of [null, undefined, 5, [], {}, { vendorId: -1 }]) {
    assert.throws(
      () => checkSelector("open: selector", value),
      invalid(/^open: selector/),
      describeValue(value),
    );
  }
  assert.throws(
    () => checkSelector("open: selector", { vendorId: -1 }),
    invalid(
      /^open: selector\.vendorId must be an integer from 0 to 65535, got -1$/,
    ),
  );
  assert.throws(
    () => checkSelector("open: selector", { serial: 5 }),
    invalid(/^open: selector\.serial must be a string, got 5$/),
  );
  assert.throws(
    () => parseSelector(null as unknown as string),
    invalid(/^parseSelector: text must be a string, got null$/),
  );
  assert.throws(
    () => selectDevice([], { productId: 0x10000 }),
    invalid(
      /selector\.productId must be an integer from 0 to 65535, got 65536/,
    ),
  );

  assert.throws(
    () => listDevicesSync({ sysfsRoot: 5 } as unknown as { sysfsRoot: string }),
    invalid(/^listDevicesSync: options\.sysfsRoot must be a string, got 5$/),
  );
  await assert.rejects(
    listDevices(null as unknown as undefined),
    invalid(/^listDevices: options must be an object or undefined, got null$/),
  );

  assert.throws(
    () => checkStreamOptions("stream", { transferSize: 2 ** 31 }, 1024),
    invalid(
      /^stream: options\.transferSize must be an integer from 1 to 2147483647, got 2147483648$/,
    ),
  );
  assert.throws(
    () => checkStreamOptions("stream", { inFlight: 1025 }, 1024),
    invalid(
      /^stream: options\.inFlight must be an integer from 1 to 1024, got 1025$/,
    ),
  );
  assert.throws(
    () => checkStreamOptions("stream", { signal: { aborted: false } }, 1024),
    invalid(/^stream: options\.signal must be an AbortSignal/),
  );
  assert.throws(
    () => checkStreamOptions("stream", { zeroCopy: 0 }, 1024),
    invalid(/^stream: options\.zeroCopy must be true, false or undefined/),
  );
  assert.throws(
    () => checkWritableOptions("openWritable", { inFlight: -0 }, 1024),
    invalid(
      /^openWritable: options\.inFlight must be an integer from 1 to 1024, got -0$/,
    ),
  );
  assert.equal(UsbBuffer.is({ size: 4 }), false);
  assert.equal(UsbBuffer.is(null), false);
});
