import assert from "node:assert/strict";
import {
  type ConfigurationDescriptor,
  formatBcd,
  formatReleaseNumber,
  intervalMicroseconds,
  maxPowerMilliamps,
  parseConfiguration,
  parseDescriptors,
  parseDeviceDescriptor,
  type ParseOptions,
} from "../../src/descriptors.ts";
import { UsbError } from "../../src/errors.ts";
import { readHexFixture } from "../fixtures/hex.ts";

const FIXTURES = [
  "sourcesink-ss",
  "sourcesink-ss-iso",
  "sourcesink-hs-iso",
  "composite-hs-iad",
  "hub-hs",
  "keyboard-ls",
  "roothub-usb2",
  "roothub-usb3",
];

const STRICT: ParseOptions = { mode: "strict" };
const LENIENT: ParseOptions = { mode: "lenient" };

/** Asserts `fn` throws an invalid-descriptor UsbError whose message matches. */
function assertInvalid(fn: () => unknown, message: RegExp): UsbError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UsbError, `expected a UsbError, got ${e}`);
    assert.equal(e.code, "invalid-descriptor");
    assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected an invalid-descriptor error matching ${message}`);
}

function only<T>(items: readonly T[]): T {
  assert.equal(items.length, 1);
  return items[0]!;
}

function altOf(config: ConfigurationDescriptor, intf: number, alt = 0) {
  const a = config.interfaces.find((i) => i.interfaceNumber === intf)
    ?.alternates
    .find((x) => x.alternateSetting === alt);
  assert.ok(a, `interface ${intf} alt ${alt}`);
  return a;
}

const concat = (...parts: ArrayLike<number>[]) =>
  new Uint8Array(parts.flatMap((p) => Array.from(p)));

// A minimal device descriptor with bNumConfigurations patched in.
const device = (
  numConfigs = 1,
) => [
  18,
  1,
  0,
  2,
  0,
  0,
  0,
  64,
  0x34,
  0x12,
  0x78,
  0x56,
  0,
  1,
  0,
  0,
  0,
  numConfigs,
];

Deno.test("every fixture parses strictly, and the same in lenient mode", () => {
  for (const name of FIXTURES) {
    const bytes = readHexFixture(name);
    const strict = parseDescriptors(bytes, STRICT);
    const lenient = parseDescriptors(bytes, LENIENT);
    assert.deepEqual(lenient, strict, name);
    const total = strict.configurations.reduce((n, c) => n + c.raw.length, 18);
    assert.equal(total, bytes.length, `${name}: every byte is accounted for`);
  }
});

Deno.test("SourceSink at SuperSpeed: device, configuration, bulk endpoints with companions", () => {
  const bytes = readHexFixture("sourcesink-ss");
  const { device: d, configurations } = parseDescriptors(bytes);
  assert.equal(d.vendorId, 0x0525);
  assert.equal(d.productId, 0xa4a0);
  assert.equal(d.usbVersion, 0x0320);
  assert.equal(formatBcd(d.usbVersion), "3.2");
  assert.equal(d.maxPacketSize0, 9);
  assert.equal(d.deviceVersion, 0x0100);
  assert.deepEqual(
    [
      d.manufacturerStringIndex,
      d.productStringIndex,
      d.serialNumberStringIndex,
    ],
    [1, 2, 3],
  );
  assert.deepEqual(d.raw, bytes.subarray(0, 18));

  const c = only(configurations);
  assert.equal(c.configurationValue, 1);
  assert.equal(c.totalLength, 44);
  assert.equal(c.offset, 18);
  assert.equal(c.raw.length, 44);
  assert.equal(c.selfPowered, false);
  assert.equal(maxPowerMilliamps(c, "super"), 8);
  const alt = altOf(c, 0);
  assert.equal(alt.interfaceClass, 0xff);
  assert.equal(alt.interfaceStringIndex, 5);
  const [inEp, outEp] = alt.endpoints;
  assert.ok(inEp && outEp);
  assert.equal(inEp.address, 0x81);
  assert.equal(inEp.endpointNumber, 1);
  assert.equal(inEp.direction, "in");
  assert.equal(inEp.type, "bulk");
  assert.equal(inEp.packetSize, 1024);
  assert.equal(inEp.transactionsPerMicroframe, 1);
  assert.equal(inEp.synchronization, undefined);
  assert.equal(outEp.address, 0x02);
  assert.equal(outEp.direction, "out");
  for (const ep of [inEp, outEp]) {
    assert.ok(ep.companion);
    assert.equal(ep.companion.maxBurst, 0);
    assert.equal(ep.companion.maxStreams, 0);
    assert.equal(ep.companion.bytesPerInterval, 0);
    assert.equal(ep.extra.length, 0);
  }
  assert.equal(inEp.offset, 18 + 9 + 9);
  assert.equal(inEp.companion!.offset, 18 + 9 + 9 + 7);
});

Deno.test("SuperSpeed isochronous: companion mult, burst and bytes per interval", () => {
  const c = only(
    parseDescriptors(readHexFixture("sourcesink-ss-iso")).configurations,
  );
  const intf = only(c.interfaces);
  assert.deepEqual(intf.alternates.map((a) => a.alternateSetting), [0, 1]);
  const alt1 = altOf(c, 0, 1);
  const iso = alt1.endpoints.filter((e) => e.type === "isochronous");
  assert.deepEqual(iso.map((e) => e.address), [0x82, 0x02]);
  for (const ep of iso) {
    assert.equal(ep.packetSize, 1024);
    assert.equal(ep.synchronization, "none");
    assert.equal(ep.usage, "data");
    assert.equal(ep.interval, 4);
    assert.equal(intervalMicroseconds(ep, "super"), 1000);
    assert.equal(ep.companion?.mult, 2);
    assert.equal(ep.companion?.maxBurst, 2);
    assert.equal(ep.companion?.bytesPerInterval, 6144);
    assert.equal(ep.companion?.sspIsochCompanion, false);
  }
});

Deno.test("high-bandwidth high-speed isochronous: 3 x 1024 bytes per microframe", () => {
  const c = only(
    parseDescriptors(readHexFixture("sourcesink-hs-iso")).configurations,
  );
  const ep = altOf(c, 0, 1).endpoints.find((e) => e.address === 0x82);
  assert.ok(ep);
  assert.equal(ep.packetSize, 1024);
  assert.equal(ep.transactionsPerMicroframe, 3);
  assert.equal(ep.companion, undefined);
  assert.equal(intervalMicroseconds(ep, "high"), 1000);
  const bulk = altOf(c, 0, 0).endpoints[0]!;
  assert.equal(bulk.packetSize, 512);
  assert.equal(bulk.transactionsPerMicroframe, 1);
});

Deno.test("composite with IAD: association, class-specific descriptors kept in place", () => {
  const bytes = readHexFixture("composite-hs-iad");
  const c = only(parseDescriptors(bytes).configurations);
  const iad = only(c.associations);
  assert.equal(iad.firstInterface, 0);
  assert.equal(iad.interfaceCount, 2);
  assert.equal(iad.functionClass, 0x02);
  assert.equal(iad.functionStringIndex, 6);
  assert.equal(iad.offset, 18 + 9);
  assert.deepEqual(c.interfaces.map((i) => i.interfaceNumber), [0, 1, 2]);

  const control = altOf(c, 0);
  // CDC header, call management, ACM, union: in order, after the interface.
  assert.deepEqual(control.extra.map((d) => d.raw[2]), [
    0x00,
    0x01,
    0x02,
    0x06,
  ]);
  assert.ok(control.extra.every((d) => d.descriptorType === 0x24));
  const offsets = control.extra.map((d) => d.offset);
  assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
  assert.ok(
    offsets[0]! > control.offset &&
      offsets.at(-1)! < control.endpoints[0]!.offset,
  );
  for (const d of control.extra) {
    assert.deepEqual(d.raw, bytes.subarray(d.offset, d.offset + d.raw.length));
  }
  const notify = only(control.endpoints);
  assert.equal(notify.type, "interrupt");
  assert.equal(intervalMicroseconds(notify, "high"), 32_000);
  const storageOut = altOf(c, 2).endpoints.find((e) => e.direction === "out")!;
  assert.equal(storageOut.interval, 1);
  assert.equal(
    intervalMicroseconds(storageOut, "high"),
    125,
    "high-speed bulk OUT NAK rate",
  );
});

Deno.test("HID keyboard: HID class descriptors on the interfaces", () => {
  const c = only(
    parseDescriptors(readHexFixture("keyboard-ls")).configurations,
  );
  for (const n of [0, 1]) {
    const alt = altOf(c, n);
    assert.equal(alt.interfaceClass, 3);
    assert.equal(only(alt.extra).descriptorType, 0x21);
    assert.equal(only(alt.endpoints).type, "interrupt");
  }
  assert.equal(altOf(c, 0).interfaceProtocol, 1);
  assert.equal(intervalMicroseconds(altOf(c, 0).endpoints[0]!, "low"), 10_000);
  assert.equal(c.remoteWakeup, true);
  assert.equal(maxPowerMilliamps(c, "low"), 90);
});

Deno.test("SuperSpeed root hub: companion on an interrupt endpoint", () => {
  const c = only(
    parseDescriptors(readHexFixture("roothub-usb3")).configurations,
  );
  const ep = only(altOf(c, 0).endpoints);
  assert.equal(ep.companion?.bytesPerInterval, 2);
  assert.equal(ep.companion?.mult, 1);
  assert.equal(ep.usage, "periodic");
});

Deno.test("parseConfiguration: offsets are relative to the blob; other-speed accepted", () => {
  const bytes = readHexFixture("hub-hs").subarray(18);
  const c = parseConfiguration(bytes);
  assert.equal(c.offset, 0);
  assert.equal(altOf(c, 0).offset, 9);
  assert.equal(altOf(c, 0).endpoints[0]!.offset, 18);
  const other = Uint8Array.from(bytes);
  other[1] = 0x07; // USB_DT_OTHER_SPEED_CONFIG
  assert.equal(parseConfiguration(other).descriptorType, 7);
  // ... but not inside a descriptors file, where only configurations belong.
  assertInvalid(() => parseDescriptors(concat(device(), other)), /type 0x07/);
});

Deno.test("unknown descriptors attach to what they follow, keeping order", () => {
  const c = parseConfiguration(concat(
    [9, 2, 57, 0, 1, 1, 0, 0x80, 50],
    [3, 0x09, 0x03], // OTG descriptor: config level
    [8, 0x0b, 0, 1, 0xff, 0, 0, 0], // IAD
    [4, 0x42, 1, 2], // unknown: follows the IAD
    [9, 4, 0, 0, 1, 0xff, 0, 0, 0],
    [7, 5, 0x81, 1, 0x00, 0x04, 1],
    [6, 0x30, 0, 0x80, 0, 4], // companion, SSP isoch companion follows
    [8, 0x31, 0, 0, 0, 0x10, 0, 0], // SSP isoch companion: endpoint extra
    [3, 0x25, 1], // class-specific endpoint: endpoint extra, after it
  ));
  assert.deepEqual(c.extra.map((d) => d.descriptorType), [0x09]);
  assert.deepEqual(only(c.associations).extra.map((d) => d.descriptorType), [
    0x42,
  ]);
  const ep = only(altOf(c, 0).endpoints);
  assert.equal(ep.companion?.sspIsochCompanion, true);
  assert.deepEqual(ep.extra.map((d) => d.descriptorType), [0x31, 0x25]);
});

Deno.test("a companion not right after an endpoint stays raw", () => {
  const c = parseConfiguration(concat(
    [9, 2, 31, 0, 1, 1, 0, 0x80, 50],
    [9, 4, 0, 0, 1, 0xff, 0, 0, 0],
    [6, 0x30, 0, 0, 0, 0], // after the interface: raw
    [7, 5, 0x81, 2, 0x00, 0x02, 0],
  ));
  const alt = altOf(c, 0);
  assert.equal(only(alt.extra).descriptorType, 0x30);
  assert.equal(alt.endpoints[0]!.companion, undefined);
});

Deno.test("audio-class 9-byte endpoints keep bRefresh and bSynchAddress", () => {
  const c = parseConfiguration(concat(
    [9, 2, 27, 0, 1, 1, 0, 0x80, 50],
    [9, 4, 0, 0, 1, 1, 2, 0, 0],
    [9, 5, 0x01, 0x09, 0xc0, 0x00, 1, 0, 0x82],
  ));
  const ep = only(altOf(c, 0).endpoints);
  assert.equal(ep.type, "isochronous");
  assert.equal(ep.synchronization, "adaptive");
  assert.equal(ep.refresh, 0);
  assert.equal(ep.synchAddress, 0x82);
});

Deno.test("formatBcd, intervalMicroseconds, maxPowerMilliamps", () => {
  assert.equal(formatBcd(0x0320), "3.2");
  assert.equal(formatBcd(0x0310), "3.1");
  assert.equal(formatBcd(0x0300), "3.0");
  assert.equal(formatBcd(0x0210), "2.1");
  assert.equal(formatBcd(0x0201), "2.0.1");
  assert.equal(formatBcd(0x0110), "1.1");
  assert.equal(formatBcd(0x1000), "10.0");
  const ep = (
    type: "control" | "isochronous" | "bulk" | "interrupt",
    interval: number,
  ) => ({
    type,
    interval,
    direction: "out" as const,
  });
  assert.equal(intervalMicroseconds(ep("interrupt", 10), "full"), 10_000);
  assert.equal(intervalMicroseconds(ep("interrupt", 4), "high"), 1_000);
  assert.equal(intervalMicroseconds(ep("isochronous", 1), "full"), 1_000);
  // Out-of-range values read as the kernel's replacements (config.c).
  assert.equal(
    intervalMicroseconds(ep("isochronous", 0), "high"),
    8_000,
    "0: the kernel uses 7",
  );
  assert.equal(intervalMicroseconds(ep("isochronous", 255), "high"), 8_000);
  assert.equal(intervalMicroseconds(ep("isochronous", 0), "full"), 8_000);
  assert.equal(intervalMicroseconds(ep("interrupt", 0), "high"), 8_000);
  assert.equal(intervalMicroseconds(ep("interrupt", 255), "high"), 128_000);
  assert.equal(intervalMicroseconds(ep("interrupt", 0), "full"), 10_000);
  assert.equal(formatReleaseNumber(0x0601), "6.01");
  assert.equal(formatReleaseNumber(0x0110), "1.10");
  assert.equal(intervalMicroseconds(ep("bulk", 1), "full"), 0);
  assert.equal(intervalMicroseconds(ep("control", 3), "high"), 375);
  assert.equal(maxPowerMilliamps({ maxPower: 250 }, "high"), 500);
  assert.equal(maxPowerMilliamps({ maxPower: 112 }, "super-plus"), 896);
});

Deno.test("device descriptor errors", () => {
  assertInvalid(
    () => parseDeviceDescriptor(new Uint8Array()),
    /byte 0: .*18 bytes/,
  );
  assertInvalid(
    () => parseDescriptors(new Uint8Array()),
    /truncated device descriptor: 0 of 18/,
  );
  assertInvalid(
    () => parseDescriptors(new Uint8Array(device().slice(0, 10))),
    /10 of 18/,
  );
  const wrongType = device();
  wrongType[1] = 2;
  assertInvalid(
    () => parseDeviceDescriptor(new Uint8Array(wrongType)),
    /type 0x02/,
  );
  const wrongLength = device(0);
  wrongLength[0] = 17;
  const e = assertInvalid(
    () => parseDeviceDescriptor(new Uint8Array(wrongLength)),
    /bLength/,
  );
  assert.match(e.hint ?? "", /lenient/);
  assert.equal(
    parseDeviceDescriptor(new Uint8Array(wrongLength), LENIENT).vendorId,
    0x1234,
  );
});

Deno.test("configuration framing errors name the offset", () => {
  const hub = readHexFixture("hub-hs");
  // Truncated: wTotalLength says 25, only 20 bytes follow.
  assertInvalid(
    () => parseDescriptors(hub.subarray(0, 38)),
    /byte 20: wTotalLength is 25 .*truncated/,
  );
  // ... lenient parses what is there, up to the last whole descriptor.
  const cut = parseDescriptors(hub.subarray(0, 38), LENIENT);
  assert.equal(only(cut.configurations).raw.length, 18);
  // Oversized: bytes after the configuration.
  assertInvalid(
    () => parseDescriptors(concat(hub, [0, 0])),
    /2 byte\(s\) after the last/,
  );
  assertInvalid(
    () => parseConfiguration(concat(hub.subarray(18), [1])),
    /1 byte\(s\) after/,
  );
  // wTotalLength smaller than the configuration descriptor.
  const tiny = Uint8Array.from(hub);
  tiny[18 + 2] = 4;
  assertInvalid(
    () => parseDescriptors(tiny),
    /byte 20: wTotalLength 4 is shorter/,
  );
  // The kernel reads 9 bytes anyway; sysfs then holds just the header.
  const tinyLenient = parseDescriptors(tiny.subarray(0, 27), LENIENT);
  assert.equal(only(tinyLenient.configurations).raw.length, 9);
  // Zero bLength: would never advance.
  const zero = Uint8Array.from(hub);
  zero[18 + 9] = 0;
  assertInvalid(() => parseDescriptors(zero), /byte 27: bLength 0/);
  const z = parseDescriptors(zero, LENIENT);
  assert.equal(
    only(z.configurations).interfaces.length,
    0,
    "lenient stops where the kernel does",
  );
  // bLength running past wTotalLength.
  const long = Uint8Array.from(hub);
  long[18 + 18] = 200;
  assertInvalid(
    () => parseDescriptors(long),
    /byte 36: descriptor type 0x05 with bLength 200 runs past/,
  );
  // Configuration descriptor too short.
  assertInvalid(
    () => parseConfiguration(new Uint8Array([5, 2, 5, 0, 0])),
    /truncated configuration descriptor: 5 of 9/,
  );
  assertInvalid(
    () =>
      parseConfiguration(
        new Uint8Array([7, 2, 9, 0, 0, 1, 0, 0x80, 0]),
        LENIENT,
      ),
    /bLength is 7, expected 9/,
  );
  assertInvalid(
    () =>
      parseConfiguration(
        new Uint8Array([9, 4, 9, 0, 0, 1, 0, 0x80, 0]),
        LENIENT,
      ),
    /expected a configuration descriptor/,
  );
});

Deno.test("strict structure rules, and what lenient mode does instead", () => {
  const header = (
    total: number,
    numInterfaces = 1,
  ) => [9, 2, total, 0, numInterfaces, 1, 0, 0x80, 50];
  const intf = (
    n: number,
    alt: number,
    eps: number,
  ) => [9, 4, n, alt, eps, 0xff, 0, 0, 0];
  const bulk = (address: number) => [7, 5, address, 2, 0, 2, 0];

  // Endpoint before any interface.
  const early = concat(header(25), bulk(0x81), intf(0, 0, 0));
  assertInvalid(
    () => parseConfiguration(early),
    /byte 9: endpoint descriptor before any interface/,
  );
  assert.equal(parseConfiguration(early, LENIENT).extra[0]?.descriptorType, 5);

  // bNumEndpoints disagrees.
  const fewer = concat(header(25), intf(0, 0, 2), bulk(0x81));
  assertInvalid(
    () => parseConfiguration(fewer),
    /byte 13: .*declares 2 endpoint\(s\).* but 1 follow/,
  );
  assert.equal(
    altOf(parseConfiguration(fewer, LENIENT), 0).endpoints.length,
    1,
  );

  // bNumInterfaces disagrees.
  const more = concat(header(18, 2), intf(0, 0, 0));
  assertInvalid(() => parseConfiguration(more), /bNumInterfaces is 2 but 1/);
  assert.equal(parseConfiguration(more, LENIENT).numInterfaces, 2);

  // A too-short interface descriptor.
  const short = concat(header(18, 0), [5, 4, 0, 0, 0], [4, 0x24, 0, 0]);
  assertInvalid(
    () => parseConfiguration(short),
    /interface descriptor bLength is 5/,
  );
  // config.c skips it and everything up to the next interface descriptor.
  const shortLenient = parseConfiguration(short, LENIENT);
  assert.equal(shortLenient.extra.length, 0);
  assert.deepEqual(shortLenient.skipped.map((d) => d.offset), [9, 14]);
  assert.match(
    shortLenient.warnings[0]!.message,
    /interface descriptor of length 5 .*skipping/,
  );

  // Duplicate endpoint, endpoint 0, duplicate alternate setting, reserved mult.
  const dup = concat(header(32), intf(0, 0, 2), bulk(0x81), bulk(0x81));
  assertInvalid(() => parseConfiguration(dup), /endpoint 0x81 appears twice/);
  const ep0 = concat(header(25), intf(0, 0, 1), bulk(0x80));
  assertInvalid(() => parseConfiguration(ep0), /byte 20: endpoint address 0/);
  const twice = concat(header(27), intf(0, 0, 0), intf(0, 0, 0));
  assertInvalid(
    () => parseConfiguration(twice),
    /alternate setting 0 appears twice/,
  );
  const mult = concat(header(25), intf(0, 0, 1), [7, 5, 0x81, 1, 0, 0x1c, 1]);
  assertInvalid(() => parseConfiguration(mult), /reserved/);
  assert.equal(
    altOf(parseConfiguration(mult, LENIENT), 0).endpoints[0]!
      .transactionsPerMicroframe,
    4,
  );

  // bNumConfigurations disagrees.
  const cfg = readHexFixture("hub-hs").subarray(18);
  assertInvalid(
    () => parseDescriptors(concat(device(2), cfg)),
    /bNumConfigurations is 2 but 1/,
  );
  assert.equal(
    parseDescriptors(concat(device(2), cfg), LENIENT).configurations.length,
    1,
  );
});

Deno.test("lenient: sysfs trims a configuration but keeps the device's wTotalLength", () => {
  // config.c usb_parse_configuration stops at a bad descriptor and sysfs then
  // serves only the validated bytes, while the raw wTotalLength still claims
  // the original length. The next configuration starts right after.
  const first = [9, 2, 100, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 0, 0xff, 0, 0, 0];
  const second = [
    9,
    2,
    18,
    0,
    1,
    2,
    0,
    0x80,
    50,
    9,
    4,
    0,
    0,
    0,
    0x08,
    6,
    0x50,
    0,
  ];
  const bytes = concat(device(2), first, second);
  assertInvalid(() => parseDescriptors(bytes), /wTotalLength is 100/);
  const { configurations } = parseDescriptors(bytes, LENIENT);
  assert.deepEqual(configurations.map((c) => c.configurationValue), [1, 2]);
  assert.deepEqual(configurations.map((c) => c.offset), [18, 36]);
  assert.equal(configurations[0]!.totalLength, 100);
  assert.equal(configurations[0]!.raw.length, 18);
  assert.equal(altOf(configurations[1]!, 0).interfaceClass, 8);
});

// ---------------------------------------------------------------------------
// Fuzzing: descriptors are untrusted input. Whatever the bytes, the parser
// returns or throws UsbError("invalid-descriptor"); nothing else, no hang.

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(bytes: Uint8Array, rand: () => number): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  let out = Array.from(bytes);
  const edits = 1 + int(4);
  for (let i = 0; i < edits; i++) {
    const at = int(out.length + 1);
    switch (int(7)) {
      case 0: // flip a bit
        if (out.length > 0) out[at % out.length]! ^= 1 << int(8);
        break;
      case 1: // random byte
        if (out.length > 0) out[at % out.length] = int(256);
        break;
      case 2: // truncate
        out = out.slice(0, at);
        break;
      case 3: // insert
        out.splice(
          at,
          0,
          ...Array.from({ length: 1 + int(8) }, () => int(256)),
        );
        break;
      case 4: // delete
        out.splice(at, 1 + int(8));
        break;
      case 5: // lengths: 0, 1, 2, huge
        if (out.length > 0) out[at % out.length] = [0, 1, 2, 0xff][int(4)]!;
        break;
      case 6: // duplicate a slice (repeats descriptors)
        out.splice(at, 0, ...out.slice(int(out.length), int(out.length) + 20));
        break;
    }
  }
  return new Uint8Array(out);
}

function random(rand: () => number): Uint8Array {
  const len = Math.floor(rand() * 300);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = Math.floor(rand() * 256);
  // Often start with something that looks like a device or config header,
  // so that the fuzzing gets past the first check.
  if (len >= 2 && rand() < 0.5) {
    out[0] = rand() < 0.5 ? 18 : 9;
    out[1] = out[0] === 18 ? 1 : 2;
  }
  return out;
}

function parseAll(bytes: Uint8Array): number {
  let ok = 0;
  for (const mode of ["strict", "lenient"] as const) {
    for (
      const parse of [
        parseDescriptors,
        parseConfiguration,
        parseDeviceDescriptor,
      ]
    ) {
      try {
        const result = parse(bytes, { mode });
        ok++;
        // Anything parsed points inside the input.
        JSON.stringify(result, (_k, v) => {
          if (v && typeof v === "object" && "offset" in v && "raw" in v) {
            assert.ok(v.offset >= 0 && v.offset + v.raw.length <= bytes.length);
          }
          return v instanceof Uint8Array ? v.length : v;
        });
      } catch (e) {
        if (!(e instanceof UsbError) || e.code !== "invalid-descriptor") {
          throw new Error(
            `${parse.name} (${mode}) threw ${e} for ${
              Array.from(bytes, (b) => b.toString(16))
            }`,
          );
        }
        assert.match(e.message, /^invalid descriptor at byte \d+: /);
      }
    }
  }
  return ok;
}

Deno.test("fuzz: random and mutated buffers only ever parse or throw invalid-descriptor", () => {
  const rand = prng(0x05250a40);
  const seeds = [
    ...FIXTURES.map(readHexFixture),
    ...FIXTURES.map((f) => readHexFixture(f).subarray(18)),
  ];
  let parsed = 0;
  let runs = 0;
  for (let i = 0; i < 3000; i++) {
    parsed += parseAll(random(rand));
    runs++;
  }
  for (const seed of seeds) {
    for (let i = 0; i < 400; i++) {
      parsed += parseAll(mutate(seed, rand));
      runs++;
    }
  }
  // Sanity: the mutations are not so wild that nothing ever parses.
  assert.ok(
    parsed > runs / 10,
    `${parsed} successful parses in ${runs * 6} attempts`,
  );
});
