/**
 * The lenient parse follows drivers/usb/core/config.c (linux 6.1): what the
 * kernel keeps is kept, what it skips is reported, what it corrects is
 * shown raw and in force. One test per rule, built from bytes.
 */
import assert from "node:assert/strict";
import {
  type ConfigurationDescriptor,
  parseConfiguration,
  parseDescriptors,
} from "../../src/descriptors.ts";
import { UsbError } from "../../src/errors.ts";
import { readHexFixture } from "../fixtures/hex.ts";

const LENIENT = { mode: "lenient" } as const;
const concat = (...parts: ArrayLike<number>[]) =>
  new Uint8Array(parts.flatMap((p) => Array.from(p)));
const device = (n: number) => [
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
  0x01,
  0x06,
  0,
  0,
  0,
  n,
];
const config = (total: number, value: number, numInterfaces = 1) => [
  9,
  2,
  total & 0xff,
  total >> 8,
  numInterfaces,
  value,
  0,
  0x80,
  50,
];
const intf = (n: number, alt: number, eps: number, cls = 0xff) => [
  9,
  4,
  n,
  alt,
  eps,
  cls,
  0,
  0,
  0,
];
const ep = (
  address: number,
  attributes: number,
  maxp: number,
  interval: number,
) => [
  7,
  5,
  address,
  attributes,
  maxp & 0xff,
  maxp >> 8,
  interval,
];

function alts(c: ConfigurationDescriptor, n: number) {
  return c.interfaces.find((i) => i.interfaceNumber === n)?.alternates ?? [];
}

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) =>
      e instanceof UsbError && e.code === "invalid-descriptor" &&
      message.test(e.message),
  );
}

Deno.test("a configuration descriptor inside a configuration is skipped, not its end (one configuration)", () => {
  const body = concat(
    intf(0, 0, 1),
    config(9, 9, 0), // a stray type-2 descriptor
    ep(0x81, 2, 512, 0),
    intf(1, 0, 0),
  );
  const bytes = concat(device(1), config(9 + body.length, 1, 2), body);
  const d = parseDescriptors(bytes, LENIENT);
  const c = d.configurations[0]!;
  assert.deepEqual(c.interfaces.map((i) => i.interfaceNumber), [0, 1]);
  assert.equal(
    alts(c, 0)[0]!.endpoints.length,
    1,
    "the endpoint after it is kept",
  );
  assert.equal(
    alts(c, 0)[0]!.extra[0]!.descriptorType,
    2,
    "kept among the extras",
  );
  assert.match(
    d.warnings[0]!.message,
    /unexpected descriptor of type 0x02, skipping/,
  );
  throwsInvalid(
    () => parseDescriptors(bytes),
    /unexpected configuration descriptor/,
  );
});

Deno.test("a device or configuration descriptor inside a configuration: with two configurations, both parse", () => {
  const body1 = concat(
    intf(0, 0, 0),
    device(1),
    config(9, 7, 0),
    intf(1, 0, 0),
  );
  const body2 = concat(intf(0, 0, 0, 0x08));
  const bytes = concat(
    device(2),
    config(9 + body1.length, 1, 2),
    body1,
    config(9 + body2.length, 2, 1),
    body2,
  );
  const d = parseDescriptors(bytes, LENIENT);
  assert.deepEqual(d.configurations.map((c) => c.configurationValue), [1, 2]);
  assert.deepEqual(
    d.configurations[0]!.interfaces.map((i) => i.interfaceNumber),
    [0, 1],
  );
  assert.equal(alts(d.configurations[1]!, 0)[0]!.interfaceClass, 8);
  assert.equal(d.warnings.length, 2);
});

Deno.test("a trimmed sysfs configuration still ends at the next configuration header", () => {
  // wTotalLength says 100 (the device's), sysfs serves the 18 the kernel kept.
  const bytes = concat(
    device(2),
    config(100, 1),
    intf(0, 0, 0),
    config(18, 2),
    intf(0, 0, 0),
  );
  const d = parseDescriptors(bytes, LENIENT);
  assert.deepEqual(d.configurations.map((c) => c.offset), [18, 36]);
});

Deno.test("bInterval of high-speed interrupt endpoints: 0 -> 7 (8 ms), 255 -> 11 (128 ms), raw kept", () => {
  const bytes = concat(
    config(9 + 9 + 14, 1),
    intf(0, 0, 2, 3),
    ep(0x81, 3, 8, 0),
    ep(0x82, 3, 8, 255),
  );
  const c = parseConfiguration(bytes, { mode: "lenient", speed: "high" });
  const [a, b] = alts(c, 0)[0]!.endpoints;
  assert.deepEqual([a!.interval, a!.intervalInForce], [0, 7]);
  assert.deepEqual([b!.interval, b!.intervalInForce], [255, 11]);
  assert.deepEqual(b!.corrections, [{
    field: "bInterval",
    raw: 255,
    inForce: 11,
  }]);
  assert.equal(c.warnings.length, 2);
  // The same bytes at full speed: 0 -> 10, 255 is legal.
  const full = parseConfiguration(bytes, { mode: "lenient", speed: "full" });
  assert.deepEqual(alts(full, 0)[0]!.endpoints.map((e) => e.intervalInForce), [
    10,
    255,
  ]);
  // Without a speed there is nothing to correct.
  assert.equal(parseConfiguration(bytes, LENIENT).warnings.length, 0);
});

Deno.test("isochronous bInterval out of 1..16 and oversized packets are corrected", () => {
  const bytes = concat(
    config(9 + 9 + 7, 1),
    intf(0, 0, 1),
    ep(0x81, 1, 1100, 0),
  );
  const c = parseConfiguration(bytes, { mode: "lenient", speed: "full" });
  const e = alts(c, 0)[0]!.endpoints[0]!;
  assert.equal(e.intervalInForce, 4);
  assert.deepEqual(e.corrections.map((x) => [x.field, x.inForce]), [[
    "bInterval",
    4,
  ], ["wMaxPacketSize", 1023]]);
  assert.equal(e.packetSize, 1023);
});

Deno.test("SuperSpeed companion: wBytesPerInterval 0 on interrupt IN, bMaxBurst > 15, missing companion", () => {
  const bytes = concat(
    config(9 + 9 + 13 + 13 + 7, 1),
    intf(0, 0, 3),
    ep(0x81, 3, 64, 1),
    [6, 0x30, 0, 0, 0, 0],
    ep(0x02, 2, 1024, 0),
    [6, 0x30, 20, 0, 0, 0],
    ep(0x83, 2, 1024, 0),
  );
  const c = parseConfiguration(bytes, { mode: "lenient", speed: "super" });
  const [i, b, m] = alts(c, 0)[0]!.endpoints;
  assert.deepEqual(i!.companion!.corrections, [{
    field: "wBytesPerInterval",
    raw: 0,
    inForce: 64,
  }]);
  assert.equal(i!.companion!.bytesPerInterval, 0, "raw value kept");
  assert.deepEqual(b!.companion!.corrections, [{
    field: "bMaxBurst",
    raw: 20,
    inForce: 15,
  }]);
  assert.equal(m!.companion, undefined);
  assert.ok(
    c.warnings.some((w) =>
      /no SuperSpeed endpoint companion for endpoint 0x83/.test(w.message)
    ),
  );
});

Deno.test("two alternate settings numbered 0: the kernel keeps the first, skips the second and its endpoints", () => {
  const bytes = concat(
    config(9 + 9 + 7 + 9 + 7, 1),
    intf(0, 0, 1),
    ep(0x81, 2, 512, 0),
    intf(0, 0, 1, 0xfe),
    ep(0x82, 2, 512, 0),
  );
  const c = parseConfiguration(bytes, LENIENT);
  assert.equal(alts(c, 0).length, 1);
  assert.equal(alts(c, 0)[0]!.interfaceClass, 0xff);
  assert.deepEqual(c.skipped.map((d) => d.offset), [25, 34]);
  assert.match(
    c.warnings[0]!.message,
    /alternate setting 0 appears twice: duplicate, skipping/,
  );
  throwsInvalid(
    () => parseConfiguration(bytes),
    /alternate setting 0 appears twice/,
  );
});

Deno.test("endpoints: beyond bNumEndpoints, duplicate across interfaces, reserved address bits: skipped", () => {
  const bytes = concat(
    config(9 + 9 + 14 + 9 + 14, 1, 2),
    intf(0, 0, 1),
    ep(0x81, 2, 512, 0),
    ep(0x82, 2, 512, 0), // beyond bNumEndpoints 1
    intf(1, 0, 2),
    ep(0x81, 2, 512, 0), // 0x81 already in interface 0
    ep(0x90, 2, 512, 0), // reserved bit 4
  );
  const c = parseConfiguration(bytes, LENIENT);
  assert.deepEqual(alts(c, 0)[0]!.endpoints.map((e) => e.address), [0x81]);
  assert.deepEqual(alts(c, 1)[0]!.endpoints.map((e) => e.address), []);
  assert.equal(c.skipped.length, 3);
  const messages = c.warnings.map((w) => w.message).join("\n");
  assert.match(messages, /beyond bNumEndpoints/);
  assert.match(messages, /duplicate endpoint with address 0x81/);
  assert.match(messages, /invalid endpoint address 0x90/);
  // The same address in another alternate setting of the same interface is fine.
  const altOk = concat(
    config(9 + 9 + 7 + 9 + 7, 1),
    intf(0, 0, 1),
    ep(0x81, 2, 512, 0),
    intf(0, 1, 1),
    ep(0x81, 2, 512, 0),
  );
  assert.equal(parseConfiguration(altOk).warnings.length, 0);
});

Deno.test("low-speed bulk endpoints become interrupt endpoints", () => {
  const bytes = concat(config(25, 1), intf(0, 0, 1), ep(0x81, 2, 64, 0));
  const e = alts(
    parseConfiguration(bytes, { mode: "lenient", speed: "low" }),
    0,
  )[0]!.endpoints[0]!;
  assert.equal(e.type, "interrupt");
  assert.equal(e.intervalInForce, 1);
  assert.equal(e.packetSize, 8);
  assert.equal(e.attributes, 2, "raw bmAttributes kept");
});

Deno.test("real fixtures: no warnings at their own speed", () => {
  const speeds = {
    "sourcesink-ss": "super",
    "sourcesink-ss-iso": "super",
    "sourcesink-hs-iso": "high",
    "composite-hs-iad": "high",
    "hub-hs": "high",
    "keyboard-ls": "low",
    "roothub-usb2": "high",
    "roothub-usb3": "super",
  } as const;
  for (const [name, speed] of Object.entries(speeds)) {
    const d = parseDescriptors(readHexFixture(name), {
      mode: "lenient",
      speed,
    });
    assert.deepEqual(d.warnings, [], name);
  }
});
