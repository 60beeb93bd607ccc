/**
 * Impossible device definitions are refused before anything runs, with a
 * UsbError "invalid-argument" whose message names the field's path and the
 * rule.
 */

import assert from "node:assert/strict";
import { UsbError } from "../../src/errors.ts";
import {
  defineDevice,
  type DeviceDefinition,
  type EmulatedSpeed,
  encodeDescriptors,
  type EndpointDefinition,
  type InterfaceDefinition,
} from "../../src/emulated/mod.ts";

/** Asserts that the definition is refused, by defineDevice and encodeDescriptors alike. */
function refused(def: unknown, message: RegExp): UsbError {
  let error: UsbError | undefined;
  for (const f of [defineDevice, encodeDescriptors]) {
    try {
      const dev = f(def as DeviceDefinition);
      if ("close" in dev) dev.close();
    } catch (e) {
      assert.ok(e instanceof UsbError, `expected a UsbError, got ${e}`);
      assert.equal(e.code, "invalid-argument");
      assert.match(e.message, message);
      error = e;
      continue;
    }
    assert.fail(
      `${f.name} accepted a definition it should refuse (${message})`,
    );
  }
  return error!;
}

const device = (
  speed: EmulatedSpeed,
  interfaces: InterfaceDefinition[],
  extra: Partial<DeviceDefinition> = {},
): DeviceDefinition => ({
  speed,
  vendorId: 0x1209,
  productId: 0x0001,
  interfaces,
  ...extra,
});

const withEndpoints = (
  speed: EmulatedSpeed,
  ...endpoints: EndpointDefinition[]
): DeviceDefinition => device(speed, [{ endpoints }]);

Deno.test("the message names the full path: configurations[0].interfaces[1].alternates[0].endpoints[2].maxPacketSize", () => {
  const e = refused(
    {
      speed: "full",
      vendorId: 1,
      productId: 2,
      configurations: [{
        interfaces: [
          {},
          {
            alternates: [{
              endpoints: [
                { address: 0x81, type: "bulk" },
                { address: 0x01, type: "bulk" },
                { address: 0x82, type: "bulk", maxPacketSize: 512 },
              ],
            }],
          },
        ],
      }],
    },
    /^configurations\[0\]\.interfaces\[1\]\.alternates\[0\]\.endpoints\[2\]\.maxPacketSize must be 8, 16, 32 or 64 for a bulk endpoint at full speed \(USB 2\.0 §5\.8\.3\), got 512$/,
  );
  assert.equal(e.code, "invalid-argument");
});

// ---------------------------------------------------------------------------
// Packet sizes per speed and type

const packetSizeCases: [
  EmulatedSpeed,
  EndpointDefinition,
  RegExp,
][] = [
  [
    "full",
    { address: 0x81, type: "bulk", maxPacketSize: 48 },
    /8, 16, 32 or 64 for a bulk endpoint at full speed/,
  ],
  [
    "full",
    { address: 0x81, type: "bulk", maxPacketSize: 0 },
    /8, 16, 32 or 64/,
  ],
  [
    "high",
    { address: 0x81, type: "bulk", maxPacketSize: 64 },
    /maxPacketSize must be 512 for a bulk endpoint at high speed/,
  ],
  [
    "high",
    { address: 0x81, type: "bulk", maxPacketSize: 1024 },
    /must be 512 for a bulk endpoint at high speed/,
  ],
  [
    "super",
    { address: 0x81, type: "bulk", maxPacketSize: 512 },
    /must be 1024 for a bulk endpoint at SuperSpeed/,
  ],
  [
    "low",
    { address: 0x81, type: "interrupt", maxPacketSize: 9 },
    /from 1 to 8 for an interrupt endpoint at low speed/,
  ],
  [
    "full",
    { address: 0x81, type: "interrupt", maxPacketSize: 65 },
    /from 1 to 64 for an interrupt endpoint at full speed/,
  ],
  [
    "full",
    { address: 0x81, type: "interrupt", maxPacketSize: 0 },
    /from 1 to 64/,
  ],
  [
    "full",
    { address: 0x81, type: "isochronous", maxPacketSize: 1024 },
    /from 0 to 1023 for an isochronous endpoint at full speed/,
  ],
  [
    "high",
    { address: 0x81, type: "interrupt", maxPacketSize: 1025 },
    /from 1 to 1024/,
  ],
  [
    "high",
    {
      address: 0x81,
      type: "isochronous",
      maxPacketSize: 512,
      transactions: 2,
    },
    /from 513 to 1024 .*2 transactions per microframe/,
  ],
  [
    "high",
    {
      address: 0x81,
      type: "interrupt",
      maxPacketSize: 600,
      transactions: 3,
    },
    /from 683 to 1024 .*3 transactions per microframe/,
  ],
  [
    "super",
    {
      address: 0x81,
      type: "interrupt",
      maxPacketSize: 64,
      companion: { maxBurst: 1 },
    },
    /must be 1024 .*with bMaxBurst > 0/,
  ],
  [
    "super",
    { address: 0x81, type: "isochronous", maxPacketSize: 1025 },
    /from 0 to 1024/,
  ],
];

for (const [speed, ep, message] of packetSizeCases) {
  Deno.test(
    `maxPacketSize: ${ep.type} ${ep.maxPacketSize} at ${speed} speed${
      ep.transactions ? ` x${ep.transactions}` : ""
    } is refused`,
    () => {
      refused(withEndpoints(speed, ep), message);
    },
  );
}

Deno.test("maxPacketSize 0: isochronous endpoints in alternate setting 0 only", () => {
  defineDevice(device("full", [{
    alternates: [{
      endpoints: [{ address: 0x81, type: "isochronous", maxPacketSize: 0 }],
    }, {
      endpoints: [{ address: 0x81, type: "isochronous", maxPacketSize: 192 }],
    }],
  }])).close();
  refused(
    device("full", [{
      alternates: [{}, {
        endpoints: [{ address: 0x81, type: "isochronous", maxPacketSize: 0 }],
      }],
    }]),
    /interfaces\[0\]\.alternates\[1\]\.endpoints\[0\]\.maxPacketSize is 0 in alternate setting 1/,
  );
});

Deno.test("low speed has no bulk or isochronous endpoints", () => {
  refused(
    withEndpoints("low", { address: 0x81, type: "bulk" }),
    /interfaces\[0\]\.endpoints\[0\]\.type is "bulk", but a low-speed device has only control and interrupt endpoints/,
  );
  refused(
    withEndpoints("low", { address: 0x81, type: "isochronous" }),
    /low-speed device/,
  );
});

Deno.test("endpoint 0's packet size per speed", () => {
  refused(
    device("high", [{}], { maxPacketSize0: 32 }),
    /^maxPacketSize0 must be 64 at high speed/,
  );
  refused(
    device("full", [{}], { maxPacketSize0: 512 }),
    /maxPacketSize0 must be one of 8, 16, 32, 64 at full speed/,
  );
  refused(device("low", [{}], { maxPacketSize0: 16 }), /must be 8 at low/);
  refused(device("super", [{}], { maxPacketSize0: 64 }), /must be 512/);
});

Deno.test("transactions per microframe: high-speed periodic endpoints only, 1..3", () => {
  refused(
    withEndpoints("high", {
      address: 0x81,
      type: "isochronous",
      transactions: 4,
    }),
    /endpoints\[0\]\.transactions must be an integer from 1 to 3/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "isochronous",
      transactions: 2,
    }),
    /transactions must be 1 \(more transactions per microframe are for high-speed/,
  );
  refused(
    withEndpoints("high", { address: 0x81, type: "bulk", transactions: 2 }),
    /transactions must be 1/,
  );
  const e = refused(
    withEndpoints("super", {
      address: 0x81,
      type: "isochronous",
      transactions: 2,
    }),
    /transactions must be 1/,
  );
  assert.match(e.hint!, /companion\.maxBurst and companion\.mult/);
});

// ---------------------------------------------------------------------------
// Intervals

const intervalCases: [EmulatedSpeed, EndpointDefinition, RegExp][] = [
  [
    "high",
    { address: 0x81, type: "interrupt", interval: 0 },
    /interval must be from 1 to 16 for an interrupt endpoint at high speed/,
  ],
  [
    "high",
    { address: 0x81, type: "interrupt", interval: 17 },
    /from 1 to 16/,
  ],
  [
    "full",
    { address: 0x81, type: "interrupt", interval: 0 },
    /from 1 to 255 .*milliseconds/,
  ],
  [
    "full",
    { address: 0x81, type: "interrupt", interval: 256 },
    /from 1 to 255/,
  ],
  ["low", { address: 0x81, type: "interrupt", interval: 0 }, /from 1 to 255/],
  [
    "full",
    { address: 0x81, type: "isochronous", interval: 17 },
    /from 1 to 16 for an isochronous endpoint at full speed .*exponent/,
  ],
  [
    "super",
    { address: 0x81, type: "isochronous", interval: 0 },
    /from 1 to 16/,
  ],
  ["high", { address: 0x81, type: "bulk", interval: 256 }, /from 0 to 255/],
  [
    "full",
    { address: 0x81, type: "interrupt", interval: 1.5 },
    /got 1\.5/,
  ],
];

for (const [speed, ep, message] of intervalCases) {
  Deno.test(`interval: ${ep.type} ${ep.interval} at ${speed} speed is refused`, () => {
    refused(withEndpoints(speed, ep), message);
  });
}

// ---------------------------------------------------------------------------
// Addresses and numbering

Deno.test("endpoint numbers are 1..15, used once per alternate setting, once per configuration", () => {
  refused(
    withEndpoints("full", { address: 0x00, type: "bulk" }),
    /endpoints\[0\]\.address 0x00 is endpoint 0, the default control pipe/,
  );
  refused(
    withEndpoints("full", { address: 0x80, type: "bulk" }),
    /endpoint 0/,
  );
  refused(
    withEndpoints("full", { address: 0x90, type: "bulk" }),
    /has endpoint number 16; endpoint numbers are 1 to 15/,
  );
  refused(
    withEndpoints("full", { address: 0x100, type: "bulk" }),
    /address must be an integer from 0 to 255/,
  );
  refused(
    withEndpoints(
      "full",
      { address: 0x81, type: "bulk" },
      { address: 0x02, type: "bulk" },
      { address: 0x81, type: "interrupt" },
    ),
    /interfaces\[0\]\.endpoints\[2\]\.address 0x81 is used twice in one alternate setting \(also interfaces\[0\]\.endpoints\[0\]\)/,
  );
  refused(
    device("full", [
      { endpoints: [{ address: 0x81, type: "bulk" }] },
      { endpoints: [{ address: 0x81, type: "bulk" }] },
    ]),
    /interfaces\[1\]\.endpoints\[0\]\.address 0x81 is already used by interface 0/,
  );
});

Deno.test("the same address in two alternate settings of one interface is fine", () => {
  defineDevice(device("full", [{
    alternates: [
      { endpoints: [{ address: 0x81, type: "bulk" }] },
      { endpoints: [{ address: 0x81, type: "interrupt" }] },
    ],
  }])).close();
});

Deno.test("interface numbers are 0..n-1, each once", () => {
  refused(
    device("full", [{ number: 0 }, { number: 2 }]),
    /interfaces\[1\]\.number is 2, but with 2 interface\(s\) the numbers are 0 to 1/,
  );
  refused(
    device("full", [{ number: 1 }, { number: 1 }]),
    /interfaces\[1\]\.number 1 is already the number of interfaces\[0\]/,
  );
  refused(
    device("full", Array.from({ length: 33 }, () => ({}))),
    /33 interfaces; Linux takes at most 32/,
  );
});

Deno.test("alternate settings are 0..n-1, each once", () => {
  refused(
    device("full", [{ alternates: [{}, { alternate: 0 }] }]),
    /interfaces\[0\]\.alternates\[1\]\.alternate 0 is already the alternate setting of interfaces\[0\]\.alternates\[0\] \(duplicate alternate setting\)/,
  );
  refused(
    device("full", [{ alternates: [{}, { alternate: 2 }] }]),
    /alternates\[1\]\.alternate is 2, but with 2 alternate setting\(s\) the numbers are 0 to 1/,
  );
  refused(
    device("full", [{ alternates: [] }]),
    /alternates must be a non-empty array/,
  );
  refused(
    device("full", [{ class: 3, alternates: [{}] }]),
    /interfaces\[0\] has alternates and also class/,
  );
  refused(
    device("full", [{ alternates: Array.from({ length: 129 }, () => ({})) }]),
    /at most 128/,
  );
});

Deno.test("configurations: 1..8, distinct values 1..255, not both shapes", () => {
  refused(
    { speed: "full", vendorId: 1, productId: 2 },
    /has no configurations/,
  );
  refused(
    {
      speed: "full",
      vendorId: 1,
      productId: 2,
      configurations: [{ interfaces: [] }],
      interfaces: [],
    },
    /both configurations and interfaces/,
  );
  refused(
    { speed: "full", vendorId: 1, productId: 2, configurations: [] },
    /configurations has 0 entries; a device has 1 to 8/,
  );
  refused(
    {
      speed: "full",
      vendorId: 1,
      productId: 2,
      configurations: Array.from({ length: 9 }, () => ({ interfaces: [{}] })),
    },
    /USB_MAXCONFIG/,
  );
  refused(
    {
      speed: "full",
      vendorId: 1,
      productId: 2,
      configurations: [{ value: 2, interfaces: [] }, {
        value: 2,
        interfaces: [],
      }],
    },
    /configurations\[1\]\.value 2 is already the value of configurations\[0\]/,
  );
  refused(
    {
      speed: "full",
      vendorId: 1,
      productId: 2,
      configurations: [{ value: 0, interfaces: [] }],
    },
    /configurations\[0\]\.value must be an integer from 1 to 255, got 0/,
  );
});

Deno.test("power: at most 500 mA, 900 mA at SuperSpeed", () => {
  refused(
    {
      speed: "high",
      vendorId: 1,
      productId: 2,
      configurations: [{ maxPowerMilliamps: 501, interfaces: [] }],
    },
    /configurations\[0\]\.maxPowerMilliamps must be an integer from 0 to 500/,
  );
  refused(
    {
      speed: "super",
      vendorId: 1,
      productId: 2,
      configurations: [{ maxPowerMilliamps: 901, interfaces: [] }],
    },
    /from 0 to 900/,
  );
});

// ---------------------------------------------------------------------------
// Strings

Deno.test("strings: an index with no string, bad text, bad keys", () => {
  refused(
    device("full", [{ name: 5 }]),
    /interfaces\[0\]\.name is string index 5, but strings has no entry 5/,
  );
  refused(
    device("full", [{}], { product: 7, strings: { 6: "six" } }),
    /^product is string index 7/,
  );
  refused(
    device("full", [{}], { product: "" }),
    /product is an empty string/,
  );
  refused(
    device("full", [{}], { product: "x".repeat(127) }),
    /127 UTF-16 code units long; a string descriptor holds at most 126/,
  );
  refused(
    device("full", [{}], { product: "bad \ud800 surrogate" }),
    /lone surrogate/,
  );
  refused(
    device("full", [{}], { strings: { 0: "zero" } }),
    /strings has the key "0": string indices are 1\.\.255/,
  );
  refused(
    device("full", [{}], { strings: { 256: "big" } }),
    /key "256"/,
  );
  refused(
    device("full", [{}], {
      product: true as unknown as string,
    }),
    /product must be a string, or a string index from 0 to 255, got true/,
  );
  refused(
    device(
      "full",
      Array.from({ length: 32 }, (_, i) => ({
        alternates: Array.from({ length: 8 }, (_, j) => ({
          name: `string ${i}.${j}`,
        })),
      })),
    ),
    /more than 255 different strings/,
  );
  refused(device("full", [{}], { languageId: 0 }), /languageId/);
});

// ---------------------------------------------------------------------------
// Companions

Deno.test("SuperSpeed companions: only at SuperSpeed, fields in range", () => {
  refused(
    withEndpoints("high", {
      address: 0x81,
      type: "bulk",
      companion: { maxBurst: 1 },
    }),
    /endpoints\[0\]\.companion is given but the device runs at high speed; endpoint companions are for SuperSpeed only/,
  );
  const ss = (ep: Partial<EndpointDefinition>) =>
    withEndpoints("super", {
      address: 0x81,
      type: "bulk",
      ...ep,
    } as EndpointDefinition);
  refused(
    ss({ companion: { maxBurst: 16 } }),
    /companion\.maxBurst must be an integer from 0 to 15/,
  );
  refused(
    ss({ companion: { maxStreams: 3 } }),
    /companion\.maxStreams must be 0 or a power of two from 2 to 65536/,
  );
  refused(ss({ companion: { maxStreams: 1 } }), /power of two/);
  refused(ss({ companion: { maxStreams: 131072 } }), /power of two/);
  refused(
    ss({ type: "interrupt", companion: { maxStreams: 4 } }),
    /maxStreams is for bulk endpoints; this one is interrupt/,
  );
  refused(
    ss({ companion: { mult: 2 } }),
    /mult is for isochronous endpoints/,
  );
  refused(
    ss({ type: "isochronous", companion: { mult: 2 } }),
    /mult is 2 but maxBurst is 0; with no burst, mult must be 1/,
  );
  refused(
    ss({ type: "isochronous", companion: { maxBurst: 1, mult: 4 } }),
    /mult must be an integer from 1 to 3/,
  );
  refused(
    ss({
      type: "isochronous",
      companion: { maxBurst: 1, mult: 2, bytesPerInterval: 4097 },
    }),
    /bytesPerInterval must be from 0 to 4096/,
  );
  refused(
    ss({
      type: "interrupt",
      maxPacketSize: 64,
      companion: { bytesPerInterval: 32 },
    }),
    /bytesPerInterval must be from 64 to 64/,
  );
  refused(
    ss({ companion: { bytesPerInterval: 5 } }),
    /bytesPerInterval must be 0 for a bulk endpoint/,
  );
  refused(
    ss({ companion: { burst: 1 } as never }),
    /companion has an unknown field "burst"/,
  );
});

Deno.test("a SuperSpeed endpoint without a companion gets the kernel's defaults", () => {
  const enc = encodeDescriptors(
    withEndpoints("super", {
      address: 0x81,
      type: "interrupt",
      maxPacketSize: 16,
    }),
  );
  const c = enc.configurations[0]!;
  // ... endpoint, then 6 0x30 bMaxBurst 0 bmAttributes 0 wBytesPerInterval 16
  assert.deepEqual([...c.slice(25, 31)], [6, 0x30, 0, 0, 16, 0]);
});

// ---------------------------------------------------------------------------
// Attributes, types, handlers

Deno.test("endpoint attributes fit the type", () => {
  refused(
    withEndpoints("full", { address: 0x81, type: "control" as "bulk" }),
    /type must be "bulk", "interrupt" or "isochronous", got "control"/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "bulk",
      synchronization: "adaptive",
    }),
    /synchronization is for isochronous endpoints; this one is bulk/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "isochronous",
      synchronization: "sometimes" as "none",
    }),
    /synchronization must be "none", "asynchronous", "adaptive" or "synchronous"/,
  );
  refused(
    withEndpoints("high", {
      address: 0x81,
      type: "interrupt",
      usage: "notification",
    }),
    /usage must be left out for an interrupt endpoint below SuperSpeed/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "isochronous",
      usage: "periodic",
    }),
    /usage must be one of "data", "feedback", "implicit-feedback"/,
  );
  refused(
    withEndpoints("full", { address: 0x81, type: "bulk", usage: "data" }),
    /usage must be left out for a bulk endpoint/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "isochronous",
      refresh: 256,
    }),
    /refresh must be an integer from 0 to 255/,
  );
});

Deno.test("handlers fit the endpoint's direction and type", () => {
  refused(
    withEndpoints("full", { address: 0x81, type: "bulk", onOut: () => {} }),
    /endpoints\[0\]\.onOut does not fit an IN bulk endpoint \(0x81\); use onIn or source/,
  );
  refused(
    withEndpoints("full", {
      address: 0x01,
      type: "bulk",
      onIn: () => new Uint8Array(0),
    }),
    /onIn does not fit an OUT bulk endpoint \(0x01\); use onOut or sink/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "isochronous",
      onIn: () => new Uint8Array(0),
    }),
    /use onIsoIn/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "bulk",
      onIn: () => new Uint8Array(0),
      source: [],
    }),
    /has both onIn and source; give one/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "bulk",
      onIn: 5 as never,
    }),
    /onIn must be a function, got 5/,
  );
  refused(
    withEndpoints("full", { address: 0x81, type: "bulk", source: 5 as never }),
    /source must be an iterable or async iterable of Uint8Array/,
  );
  refused(
    withEndpoints("full", { address: 0x01, type: "bulk", sink: {} as never }),
    /sink must be a WritableStream/,
  );
  refused(
    device("full", [{ control: "yes" as never }]),
    /interfaces\[0\]\.control must be a function/,
  );
});

// ---------------------------------------------------------------------------
// Raw class-specific descriptors

Deno.test("raw class-specific descriptors must be whole descriptors of class types", () => {
  refused(
    device("full", [{ extra: [[5, 0x24, 0x00]] }]),
    /interfaces\[0\]\.extra\[0\]: bLength 5 runs past the end/,
  );
  refused(
    device("full", [{ extra: [[1, 0x24]] }]),
    /bLength 1; every descriptor has at least bLength and bDescriptorType/,
  );
  refused(
    device("full", [{ extra: [[3, 0x24, 0, 0]] }]),
    /the descriptor at byte 3 has bLength 0/,
  );
  refused(
    device("full", [{ extra: [[9, 0x04, 1, 0, 0, 0xff, 0, 0, 0]] }]),
    /extra\[0\]: the descriptor at byte 0 is an interface descriptor \(type 0x04\); the model writes those itself/,
  );
  refused(
    device("full", [{ extra: [new Uint8Array(0)] }]),
    /extra\[0\] is empty/,
  );
  refused(
    device("full", [{ extra: [[3, 0x24, 300]] }]),
    /extra\[0\]\[2\] must be an integer from 0 to 255, got 300/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "bulk",
      extra: [[6, 0x30, 0, 0, 0, 0]],
    }),
    /SuperSpeed endpoint companion descriptor/,
  );
});

Deno.test("a configuration larger than wTotalLength can say is refused", () => {
  const big = new Uint8Array(255);
  big[0] = 255;
  big[1] = 0x24;
  refused(
    device("full", [{ extra: Array.from({ length: 258 }, () => big) }]),
    /encodes to 65808 bytes; wTotalLength is 16 bits/,
  );
});

// ---------------------------------------------------------------------------
// Interface associations

Deno.test("interface associations: in range, not overlapping", () => {
  const two = [{}, {}, {}];
  const config = (associations: unknown) => ({
    speed: "full",
    vendorId: 1,
    productId: 2,
    configurations: [{ associations, interfaces: two }],
  });
  refused(
    config([{ firstInterface: 3, interfaceCount: 1 }]),
    /configurations\[0\]\.associations\[0\]\.firstInterface must be an integer from 0 to 2, got 3/,
  );
  refused(
    config([{ firstInterface: 1, interfaceCount: 3 }]),
    /interfaceCount must be an integer from 1 to 2, got 3/,
  );
  refused(config([{ firstInterface: 0, interfaceCount: 0 }]), /from 1 to 3/);
  refused(
    config([
      { firstInterface: 0, interfaceCount: 2 },
      { firstInterface: 1, interfaceCount: 2 },
    ]),
    /associations\[1\] covers interface 1, which configurations\[0\]\.associations\[0\] already covers/,
  );
});

// ---------------------------------------------------------------------------
// Device fields, versions, BOS, typos

Deno.test("device fields: types and ranges", () => {
  refused(null, /^device definition must be an object, got null/);
  refused(
    device("full", [{}], { speed: "ultra" as EmulatedSpeed }),
    /^speed must be "low", "full", "high" or "super", got "ultra"/,
  );
  refused(
    { ...device("full", [{}]), vendorId: 0x10000 },
    /^vendorId must be an integer from 0 to 65535, got 65536/,
  );
  refused(
    { ...device("full", [{}]), vendorId: "0x1209" },
    /vendorId must be an integer .*got "0x1209"/,
  );
  refused({ ...device("full", [{}]), productId: NaN }, /got NaN/);
  refused(device("full", [{}], { class: -1 }), /^class must be/);
});

Deno.test("unknown fields are refused with a suggestion", () => {
  refused(
    { ...device("full", [{}]), vendorID: 1 },
    /device definition has an unknown field "vendorID" \(did you mean vendorId\?\)/,
  );
  refused(
    withEndpoints("full", {
      address: 0x81,
      type: "bulk",
      maxPacketsize: 64,
    } as never),
    /interfaces\[0\]\.endpoints\[0\] has an unknown field "maxPacketsize" \(did you mean maxPacketSize\?\)/,
  );
  refused(
    device("full", [{ endpoint: [] } as never]),
    /interfaces\[0\] has an unknown field "endpoint" \(did you mean endpoints\?\)/,
  );
});

Deno.test("bcdUSB: BCD, 0x0300+ at SuperSpeed, 0x0201+ with a BOS", () => {
  refused(
    device("super", [{}], { usbVersion: 0x0210 }),
    /usbVersion is 0x0210 but a SuperSpeed device reports 0x0300 or more/,
  );
  refused(
    device("high", [{}], { usbVersion: 0x0200, bos: { usb2Extension: true } }),
    /usbVersion is 0x0200 but the device has a BOS descriptor, which hosts only read when bcdUSB is 0x0201 or more/,
  );
  refused(
    device("full", [{}], { usbVersion: 0x020a }),
    /usbVersion must be binary-coded decimal/,
  );
});

Deno.test("BOS: capability fields in range", () => {
  refused(
    device("super", [{}], { bos: { superSpeed: false } }),
    /bos\.superSpeed is false, but a SuperSpeed device must have the SuperSpeed USB Device capability/,
  );
  refused(
    device("high", [{}], { bos: { platform: [{ uuid: "not-a-uuid" }] } }),
    /bos\.platform\[0\]\.uuid must be a UUID/,
  );
  refused(
    device("high", [{}], {
      bos: {
        platform: [{
          uuid: "3408b638-09a9-47a0-8bfd-a0768815b665",
          data: new Uint8Array(236),
        }],
      },
    }),
    /bos\.platform\[0\]\.data is 236 bytes; a platform capability holds at most 235/,
  );
  refused(
    device("high", [{}], { bos: { usb2Extension: { baselineBesl: 16 } } }),
    /bos\.usb2Extension\.baselineBesl must be an integer from 0 to 15/,
  );
  refused(
    device("super", [{}], { bos: { superSpeed: { u1ExitLatency: 11 } } }),
    /bos\.superSpeed\.u1ExitLatency must be an integer from 0 to 10/,
  );
  refused(
    device("super", [{}], {
      bos: { superSpeed: { speeds: ["warp" as EmulatedSpeed] } },
    }),
    /bos\.superSpeed\.speeds\[0\] must be "low", "full", "high" or "super"/,
  );
  refused(
    device("high", [{}], { bos: { capabilities: [{ type: 256, data: [] }] } }),
    /bos\.capabilities\[0\]\.type must be an integer from 0 to 255/,
  );
  refused(
    device("high", [{}], { bos: { usb2extension: true } as never }),
    /bos has an unknown field "usb2extension" \(did you mean usb2Extension\?\)/,
  );
});

Deno.test("request descriptors are checked", () => {
  refused(
    device("full", [{ requestDescriptors: [{ type: 0x22 } as never] }]),
    /interfaces\[0\]\.requestDescriptors\[0\]\.data must be a Uint8Array or an array of bytes/,
  );
});
