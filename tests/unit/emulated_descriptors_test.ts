/**
 * Descriptors of emulated devices: encoded bytes parsed back with usbkit's
 * own parser (strict mode) give what the definition says, field by field;
 * real devices' descriptors (the fixtures) are reproduced byte for byte.
 */

import assert from "node:assert/strict";
import {
  type ConfigurationDescriptor,
  maxPowerMilliamps,
  parseConfiguration,
  parseDescriptors,
  type RawDescriptor,
} from "../../src/descriptors.ts";
import {
  type Bytes,
  type DeviceDefinition,
  type EmulatedSpeed,
  type EncodedDescriptors,
  encodeDescriptors,
  encodeStringDescriptor,
  type EndpointDefinition,
  hidDescriptor,
  type StringRef,
} from "../../src/emulated/mod.ts";
import { cdcAcm } from "../../scripts/examples/serial_device.ts";
import { vendorBulk } from "../../scripts/examples/vendor_device.ts";
import { readHexFixture } from "../fixtures/hex.ts";
import { KEYBOARD_REPORT } from "../fixtures/descriptor_devices.ts";

// ---------------------------------------------------------------------------
// The round-trip checker: every field the definition gives (or its
// documented default) against what parseDescriptors reads back.

const DEFAULT_MAXP: Record<EmulatedSpeed, Record<string, number>> = {
  low: { interrupt: 8 },
  full: { bulk: 64, interrupt: 64, isochronous: 1023 },
  high: { bulk: 512, interrupt: 64, isochronous: 1024 },
  super: { bulk: 1024, interrupt: 64, isochronous: 1024 },
};
const DEFAULT_INTERVAL: Record<EmulatedSpeed, Record<string, number>> = {
  low: { interrupt: 10 },
  full: { bulk: 0, interrupt: 1, isochronous: 1 },
  high: { bulk: 0, interrupt: 4, isochronous: 4 },
  super: { bulk: 0, interrupt: 4, isochronous: 4 },
};

const concat = (parts: readonly ArrayLike<number>[]) =>
  parts.flatMap((p) => Array.from(p));
const rawOf = (extra: readonly RawDescriptor[]) =>
  concat(extra.map((r) => r.raw));

function decodeUtf16(bytes: Uint8Array): string {
  let s = "";
  for (let i = 2; i + 1 < bytes.length; i += 2) {
    s += String.fromCharCode(bytes[i]! | (bytes[i + 1]! << 8));
  }
  return s;
}

function expectString(
  enc: EncodedDescriptors,
  index: number,
  ref: StringRef | undefined,
  what: string,
  explicit?: Readonly<Record<number, string>>,
) {
  if (ref === undefined) return assert.equal(index, 0, `${what}: no string`);
  if (typeof ref === "number") {
    assert.equal(index, ref, `${what}: explicit index`);
    if (ref === 0) return;
    assert.equal(enc.stringTable.get(index), explicit?.[ref], what);
    return;
  }
  assert.notEqual(index, 0, `${what}: has an index`);
  assert.equal(enc.stringTable.get(index), ref, what);
  const desc = enc.strings.get(index)!;
  assert.equal(desc[0], desc.length);
  assert.equal(desc[1], 3);
  assert.equal(decodeUtf16(desc), ref, `${what}: UTF-16LE`);
}

/** Checks every field; returns the parse for more specific checks. */
function roundTrip(def: DeviceDefinition) {
  const enc = encodeDescriptors(def);
  const parsed = parseDescriptors(enc.descriptorsFile); // strict
  const speed = def.speed;
  const d = parsed.device;
  assert.equal(d.vendorId, def.vendorId);
  assert.equal(d.productId, def.productId);
  assert.equal(d.deviceVersion, def.deviceVersion ?? 0x0100);
  if (def.usbVersion !== undefined) assert.equal(d.usbVersion, def.usbVersion);
  else {
    assert.equal(
      d.usbVersion,
      speed === "super" ? 0x0320 : def.bos ? 0x0201 : 0x0200,
    );
  }
  const configs = def.configurations ?? [{ interfaces: def.interfaces! }];
  const iad = configs.some((c) => (c.associations ?? []).length > 0);
  assert.equal(d.deviceClass, def.class ?? (iad ? 0xef : 0));
  assert.equal(d.deviceSubclass, def.subclass ?? (iad ? 2 : 0));
  assert.equal(d.deviceProtocol, def.protocol ?? (iad ? 1 : 0));
  const maxp0 = def.maxPacketSize0 ??
    { low: 8, full: 64, high: 64, super: 512 }[speed];
  assert.equal(d.maxPacketSize0, speed === "super" ? Math.log2(maxp0) : maxp0);
  expectString(
    enc,
    d.manufacturerStringIndex,
    def.manufacturer,
    "manufacturer",
    def.strings,
  );
  expectString(enc, d.productStringIndex, def.product, "product", def.strings);
  expectString(
    enc,
    d.serialNumberStringIndex,
    def.serialNumber,
    "serial",
    def.strings,
  );
  assert.equal(d.numConfigurations, configs.length);
  assert.equal(parsed.configurations.length, configs.length);

  configs.forEach((c, ci) => {
    const pc = parsed.configurations[ci]!;
    const at = `configurations[${ci}]`;
    assert.equal(pc.descriptorType, 2);
    assert.equal(pc.configurationValue, c.value ?? ci + 1, `${at}.value`);
    expectString(enc, pc.configurationStringIndex, c.name, at, def.strings);
    assert.equal(pc.selfPowered, c.selfPowered ?? false);
    assert.equal(pc.remoteWakeup, c.remoteWakeup ?? false);
    assert.equal(pc.attributes & 0x80, 0x80, "bit 7 is always set");
    const unit = speed === "super" ? 8 : 2;
    assert.equal(
      maxPowerMilliamps(pc, speed),
      Math.ceil((c.maxPowerMilliamps ?? 100) / unit) * unit,
    );
    assert.equal(pc.totalLength, pc.raw.length, "wTotalLength");
    assert.equal(pc.raw.length, enc.configurations[ci]!.length);
    assert.equal(pc.numInterfaces, c.interfaces.length);
    assert.deepEqual(rawOf(pc.extra), concat(c.extra ?? []), `${at}.extra`);

    const assocs = c.associations ?? [];
    assert.equal(pc.associations.length, assocs.length);
    for (const a of assocs) {
      const pa = pc.associations.find((x) =>
        x.firstInterface === a.firstInterface
      )!;
      assert.ok(pa, `IAD for interface ${a.firstInterface}`);
      const first = c.interfaces.find((i, n) =>
        (i.number ?? n) === a.firstInterface
      )!;
      const alt0 = first.alternates?.[0] ?? first;
      assert.equal(pa.interfaceCount, a.interfaceCount);
      assert.equal(pa.functionClass, a.class ?? alt0.class ?? 0xff);
      assert.equal(pa.functionSubclass, a.subclass ?? alt0.subclass ?? 0);
      assert.equal(pa.functionProtocol, a.protocol ?? alt0.protocol ?? 0);
      expectString(
        enc,
        pa.functionStringIndex,
        a.name,
        "iFunction",
        def.strings,
      );
      // The IAD comes right before its first interface's descriptor.
      const firstAlt = pc.interfaces.find((i) =>
        i.interfaceNumber === a.firstInterface
      )!.alternates[0]!;
      assert.equal(pa.offset + 8, firstAlt.offset);
    }

    c.interfaces.forEach((intf, ii) => {
      const number = intf.number ?? ii;
      const pi = pc.interfaces.find((x) => x.interfaceNumber === number)!;
      assert.ok(pi, `interface ${number}`);
      const alts = intf.alternates ?? [intf];
      assert.equal(pi.alternates.length, alts.length);
      alts.forEach((a, ai) => {
        const altNo = a.alternate ?? ai;
        const pa = pi.alternates.find((x) => x.alternateSetting === altNo)!;
        const aat = `${at}.interfaces[${ii}] alt ${altNo}`;
        assert.ok(pa, aat);
        assert.equal(pa.interfaceClass, a.class ?? 0xff, `${aat} class`);
        assert.equal(pa.interfaceSubclass, a.subclass ?? 0);
        assert.equal(pa.interfaceProtocol, a.protocol ?? 0);
        expectString(enc, pa.interfaceStringIndex, a.name, aat, def.strings);
        assert.deepEqual(
          rawOf(pa.extra),
          concat(a.extra ?? []),
          `${aat} extra`,
        );
        const eps = a.endpoints ?? [];
        assert.equal(pa.numEndpoints, eps.length);
        assert.equal(pa.endpoints.length, eps.length);
        eps.forEach((e, ei) => {
          const pe = pa.endpoints[ei]!;
          checkEndpoint(e, pe, speed, `${aat} ep ${ei}`);
        });
      });
    });
  });
  return { enc, parsed };
}

function checkEndpoint(
  e: EndpointDefinition,
  pe: ConfigurationDescriptor["interfaces"][number]["alternates"][number][
    "endpoints"
  ][number],
  speed: EmulatedSpeed,
  at: string,
) {
  assert.equal(pe.address, e.address, `${at} address`);
  assert.equal(pe.endpointNumber, e.address & 0x0f);
  assert.equal(pe.direction, e.address & 0x80 ? "in" : "out");
  assert.equal(pe.type, e.type, `${at} type`);
  const maxp = e.maxPacketSize ?? DEFAULT_MAXP[speed][e.type]!;
  assert.equal(pe.packetSize, maxp, `${at} maxPacketSize`);
  assert.equal(pe.transactionsPerMicroframe, e.transactions ?? 1);
  assert.equal(
    pe.interval,
    e.interval ?? DEFAULT_INTERVAL[speed][e.type],
    `${at} interval`,
  );
  if (e.type === "isochronous") {
    assert.equal(pe.synchronization, e.synchronization ?? "none");
    assert.equal(pe.usage, e.usage ?? "data");
  } else if (e.type === "interrupt") {
    assert.equal(pe.usage, e.usage ?? "periodic");
  }
  const audio = e.refresh !== undefined || e.synchAddress !== undefined;
  assert.equal(pe.raw.length, audio ? 9 : 7);
  assert.equal(pe.refresh, audio ? e.refresh ?? 0 : undefined);
  assert.equal(pe.synchAddress, audio ? e.synchAddress ?? 0 : undefined);
  if (speed === "super") {
    const comp = pe.companion;
    assert.ok(comp, `${at} has a companion at SuperSpeed`);
    const burst = e.companion?.maxBurst ?? 0;
    const mult = e.companion?.mult ?? 1;
    assert.equal(comp.maxBurst, burst);
    assert.equal(comp.maxStreams, e.companion?.maxStreams ?? 0);
    assert.equal(comp.mult, mult);
    assert.equal(
      comp.bytesPerInterval,
      e.companion?.bytesPerInterval ??
        (e.type === "bulk" ? 0 : maxp * (burst + 1) * mult),
    );
  } else {
    assert.equal(pe.companion, undefined);
  }
  assert.deepEqual(rawOf(pe.extra), concat(e.extra ?? []), `${at} extra`);
}

// ---------------------------------------------------------------------------
// Shapes

const vendor = (speed: EmulatedSpeed, maxp?: number): DeviceDefinition => ({
  speed,
  vendorId: 0x1209,
  productId: 0x0001,
  manufacturer: "usbkit",
  product: `Vendor bulk at ${speed} speed`,
  serialNumber: "SN-0001",
  interfaces: [{
    name: "Bulk pair",
    endpoints: [
      { address: 0x81, type: "bulk", maxPacketSize: maxp },
      { address: 0x01, type: "bulk", maxPacketSize: maxp },
    ],
  }],
});

for (const speed of ["full", "high", "super"] as const) {
  Deno.test(`round trip: vendor bulk device at ${speed} speed`, () => {
    const { parsed } = roundTrip(vendor(speed));
    const alt = parsed.configurations[0]!.interfaces[0]!.alternates[0]!;
    assert.equal(
      alt.endpoints[0]!.packetSize,
      { full: 64, high: 512, super: 1024 }[speed],
    );
  });
  Deno.test(`round trip: vendor bulk example at ${speed} speed`, () => {
    roundTrip(vendorBulk({ speed }));
  });
  Deno.test(`round trip: CDC ACM example (IAD) at ${speed} speed`, () => {
    const { parsed } = roundTrip(cdcAcm({ speed }));
    assert.equal(parsed.device.deviceClass, 0xef);
    const c = parsed.configurations[0]!;
    assert.equal(c.associations[0]!.functionClass, 2);
    // The four CDC functional descriptors stay after interface 0, in order.
    const extra = c.interfaces[0]!.alternates[0]!.extra;
    assert.deepEqual(extra.map((x) => x.raw[2]), [0x00, 0x01, 0x02, 0x06]);
  });
}

for (const maxp of [8, 16, 32, 64]) {
  Deno.test(`round trip: full-speed bulk maxPacketSize ${maxp}`, () => {
    roundTrip(vendor("full", maxp));
  });
}

/** A HID boot keyboard with its HID descriptor and report descriptor. */
const keyboard = (speed: "low" | "full"): DeviceDefinition => ({
  speed,
  vendorId: 0x1209,
  productId: 0x0003,
  manufacturer: "usbkit",
  product: "Keyboard",
  configurations: [{
    remoteWakeup: true,
    maxPowerMilliamps: 90,
    interfaces: [{
      class: 3,
      subclass: 1,
      protocol: 1,
      extra: [hidDescriptor(KEYBOARD_REPORT)],
      requestDescriptors: [{ type: 0x22, data: KEYBOARD_REPORT }],
      endpoints: [{
        address: 0x81,
        type: "interrupt",
        maxPacketSize: 8,
        interval: 10,
      }],
    }],
  }],
});

for (const speed of ["low", "full"] as const) {
  Deno.test(`round trip: HID keyboard at ${speed} speed`, () => {
    const { parsed } = roundTrip(keyboard(speed));
    const alt = parsed.configurations[0]!.interfaces[0]!.alternates[0]!;
    const hid = alt.extra[0]!;
    assert.equal(hid.descriptorType, 0x21);
    assert.equal(hid.raw[7]! | (hid.raw[8]! << 8), KEYBOARD_REPORT.length);
  });
}

/** A UAC 1.0-like device: control interface, two streaming interfaces with iso alternates. */
const audio = (speed: "full" | "high" | "super"): DeviceDefinition => {
  const fs = speed === "full";
  const csEndpoint: Bytes = [7, 0x25, 0x01, 0x01, 0x01, 0x00, 0x00]; // AS iso endpoint, general
  const format: Bytes = [
    11,
    0x24,
    0x02,
    0x01,
    0x02,
    0x02,
    0x10,
    0x01,
    0x80,
    0xbb,
    0x00,
  ]; // type I, stereo, 16 bit, 48 kHz
  const comp = speed === "super" ? { bytesPerInterval: 192 } : undefined;
  return {
    speed,
    vendorId: 0x1209,
    productId: 0x0004,
    product: "Audio",
    configurations: [{
      associations: [{ firstInterface: 0, interfaceCount: 3, name: "Audio" }],
      interfaces: [
        {
          class: 1,
          subclass: 1,
          extra: [[10, 0x24, 0x01, 0x00, 0x01, 0x1e, 0x00, 0x02, 0x01, 0x02]], // AC header, 2 streaming interfaces
        },
        {
          alternates: [
            { class: 1, subclass: 2 },
            {
              class: 1,
              subclass: 2,
              name: "Playback 48 kHz",
              extra: [[7, 0x24, 0x01, 0x01, 0x01, 0x01, 0x00], format],
              endpoints: [{
                address: 0x01,
                type: "isochronous",
                synchronization: "adaptive",
                maxPacketSize: 192,
                interval: fs ? 1 : 4,
                refresh: 0,
                synchAddress: 0,
                extra: [csEndpoint],
                companion: comp,
              }],
            },
            {
              class: 1,
              subclass: 2,
              extra: [format],
              endpoints: [{
                address: 0x01,
                type: "isochronous",
                synchronization: "adaptive",
                maxPacketSize: speed === "high" ? 700 : 288,
                transactions: speed === "high" ? 2 : undefined,
                interval: fs ? 1 : 4,
                companion: speed === "super" ? { maxBurst: 0 } : undefined,
              }],
            },
          ],
        },
        {
          alternates: [
            { class: 1, subclass: 2 },
            {
              class: 1,
              subclass: 2,
              extra: [format],
              endpoints: [
                {
                  address: 0x82,
                  type: "isochronous",
                  synchronization: "asynchronous",
                  maxPacketSize: 196,
                  interval: fs ? 1 : 4,
                  extra: [csEndpoint],
                },
                {
                  address: 0x83,
                  type: "isochronous",
                  usage: "feedback",
                  maxPacketSize: fs ? 3 : 4,
                  interval: fs ? 1 : 4,
                },
              ],
            },
          ],
        },
      ],
    }],
  };
};

for (const speed of ["full", "high", "super"] as const) {
  Deno.test(`round trip: UAC-like isochronous alternates at ${speed} speed`, () => {
    const { parsed } = roundTrip(audio(speed));
    const streaming = parsed.configurations[0]!.interfaces[1]!;
    assert.deepEqual(streaming.alternates.map((a) => a.endpoints.length), [
      0,
      1,
      1,
    ]);
    if (speed === "high") {
      assert.equal(
        streaming.alternates[2]!.endpoints[0]!.transactionsPerMicroframe,
        2,
      );
    }
  });
}

Deno.test("round trip: two configurations, self-powered, remote wakeup, 500 mA", () => {
  const { parsed, enc } = roundTrip({
    speed: "high",
    vendorId: 0xffff,
    productId: 0,
    configurations: [
      {
        value: 3,
        name: "Low power",
        interfaces: [{ endpoints: [{ address: 0x81, type: "interrupt" }] }],
      },
      {
        value: 1,
        name: "Full power",
        selfPowered: true,
        remoteWakeup: true,
        maxPowerMilliamps: 500,
        interfaces: [
          { endpoints: [{ address: 0x81, type: "bulk" }] },
          { number: 1, class: 0x0a },
        ],
      },
    ],
  });
  assert.deepEqual(parsed.configurations.map((c) => c.configurationValue), [
    3,
    1,
  ]);
  assert.equal(parsed.configurations[1]!.maxPower, 250);
  assert.equal(enc.stringTable.size, 2);
});

Deno.test("round trip: interface numbers given out of order are encoded by number", () => {
  const { parsed } = roundTrip({
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [
      { number: 1, class: 0x0a, endpoints: [{ address: 0x82, type: "bulk" }] },
      { number: 0, class: 0x02 },
    ],
  });
  assert.deepEqual(
    parsed.configurations[0]!.interfaces.map((i) => i.interfaceNumber),
    [0, 1],
  );
});

Deno.test("round trip: SuperSpeed bulk streams and burst, interrupt bytes per interval", () => {
  roundTrip({
    speed: "super",
    vendorId: 1,
    productId: 2,
    interfaces: [{
      endpoints: [
        {
          address: 0x81,
          type: "bulk",
          companion: { maxBurst: 15, maxStreams: 65536 },
        },
        { address: 0x01, type: "bulk", companion: { maxStreams: 2 } },
        {
          address: 0x82,
          type: "interrupt",
          maxPacketSize: 1024,
          interval: 1,
          usage: "notification",
          companion: { maxBurst: 2, bytesPerInterval: 2048 },
        },
        {
          address: 0x83,
          type: "isochronous",
          companion: { maxBurst: 15, mult: 3, bytesPerInterval: 49152 - 1 },
        },
      ],
    }],
  });
});

Deno.test("round trip: explicit string indices and shared strings", () => {
  const { enc, parsed } = roundTrip({
    speed: "full",
    vendorId: 1,
    productId: 2,
    strings: { 1: "Fixed one", 3: "Fixed three" },
    manufacturer: 3,
    product: "Auto",
    serialNumber: "Auto", // the same text shares one index
    interfaces: [{ name: 1 }, { name: "Auto" }, { name: "Second auto" }],
  });
  const d = parsed.device;
  assert.equal(d.manufacturerStringIndex, 3);
  assert.equal(d.productStringIndex, 2); // 1 is taken
  assert.equal(d.serialNumberStringIndex, 2);
  const alts = parsed.configurations[0]!.interfaces.map((i) =>
    i.alternates[0]!.interfaceStringIndex
  );
  assert.deepEqual(alts, [1, 2, 4]);
  assert.deepEqual([...enc.stringTable.keys()], [1, 2, 3, 4]);
  assert.deepEqual([...enc.strings.keys()].sort((a, b) => a - b), [
    0,
    1,
    2,
    3,
    4,
  ]);
});

// ---------------------------------------------------------------------------
// Real devices, byte for byte

Deno.test("reproduces the low-speed keyboard fixture byte for byte", () => {
  const hid = (reportLength: number) =>
    [9, 0x21, 0x10, 0x01, 0, 1, 0x22, reportLength, 0] as const;
  const enc = encodeDescriptors({
    speed: "low",
    usbVersion: 0x0110,
    vendorId: 0x046d,
    productId: 0xc31c,
    deviceVersion: 0x6410,
    manufacturer: "Logitech",
    product: "USB Keyboard",
    configurations: [{
      name: "U77.03.00",
      remoteWakeup: true,
      maxPowerMilliamps: 90,
      interfaces: [
        {
          class: 3,
          subclass: 1,
          protocol: 1,
          extra: [hid(65)],
          endpoints: [{
            address: 0x81,
            type: "interrupt",
            maxPacketSize: 8,
            interval: 10,
          }],
        },
        {
          class: 3,
          extra: [hid(0xb1)],
          endpoints: [{
            address: 0x82,
            type: "interrupt",
            maxPacketSize: 8,
            interval: 255,
          }],
        },
      ],
    }],
  });
  assert.deepEqual(enc.descriptorsFile, readHexFixture("keyboard-ls"));
});

const sourceSinkStrings = {
  manufacturer: "Linux with dummy_hcd",
  product: "Source/Sink",
  serialNumber: "0123456789",
};

Deno.test("reproduces the SuperSpeed SourceSink fixture byte for byte", () => {
  const enc = encodeDescriptors({
    speed: "super",
    vendorId: 0x0525,
    productId: 0xa4a0,
    ...sourceSinkStrings,
    configurations: [{
      name: "source/sink",
      maxPowerMilliamps: 8,
      interfaces: [{
        name: "source and sink data",
        endpoints: [
          { address: 0x81, type: "bulk" },
          { address: 0x02, type: "bulk" },
        ],
      }],
    }],
  });
  assert.deepEqual(enc.descriptorsFile, readHexFixture("sourcesink-ss"));
});

Deno.test("reproduces the high-speed high-bandwidth isochronous SourceSink fixture", () => {
  const bulk: EndpointDefinition[] = [
    { address: 0x81, type: "bulk" },
    { address: 0x01, type: "bulk" },
  ];
  const iso = (address: number): EndpointDefinition => ({
    address,
    type: "isochronous",
    maxPacketSize: 1024,
    transactions: 3,
    interval: 4,
  });
  const enc = encodeDescriptors({
    speed: "high",
    vendorId: 0x0525,
    productId: 0xa4a0,
    ...sourceSinkStrings,
    configurations: [{
      name: "source/sink",
      interfaces: [{
        alternates: [
          { name: "source and sink data", endpoints: bulk },
          {
            name: "source and sink data",
            endpoints: [...bulk, iso(0x82), iso(0x02)],
          },
        ],
      }],
    }],
  });
  assert.deepEqual(enc.descriptorsFile, readHexFixture("sourcesink-hs-iso"));
});

Deno.test("reproduces the SuperSpeed isochronous SourceSink fixture (burst and mult)", () => {
  const bulk: EndpointDefinition[] = [
    { address: 0x81, type: "bulk" },
    { address: 0x01, type: "bulk" },
  ];
  const iso = (address: number): EndpointDefinition => ({
    address,
    type: "isochronous",
    interval: 4,
    companion: { maxBurst: 2, mult: 2 },
  });
  const enc = encodeDescriptors({
    speed: "super",
    vendorId: 0x0525,
    productId: 0xa4a0,
    ...sourceSinkStrings,
    configurations: [{
      name: "source/sink",
      maxPowerMilliamps: 8,
      interfaces: [{
        alternates: [
          { name: "source and sink data", endpoints: bulk },
          {
            name: "source and sink data",
            endpoints: [...bulk, iso(0x82), iso(0x02)],
          },
        ],
      }],
    }],
  });
  assert.deepEqual(enc.descriptorsFile, readHexFixture("sourcesink-ss-iso"));
});

Deno.test("reproduces the high-speed composite (CDC ACM IAD + mass storage) fixture", () => {
  const enc = encodeDescriptors({
    speed: "high",
    vendorId: 0x1d6b,
    productId: 0x0104,
    manufacturer: "Linux",
    product: "Multifunction Composite Gadget",
    serialNumber: "0123",
    strings: {
      4: "Multifunction with CDC ACM",
      5: "unused",
      6: "CDC Abstract Control Model (ACM)",
      7: "CDC ACM control",
      8: "CDC ACM data",
      9: "Mass Storage",
    },
    configurations: [{
      name: 4,
      maxPowerMilliamps: 500,
      associations: [{ firstInterface: 0, interfaceCount: 2, name: 6 }],
      interfaces: [
        {
          class: 2,
          subclass: 2,
          protocol: 1,
          name: 7,
          extra: [
            [5, 0x24, 0x00, 0x10, 0x01],
            [5, 0x24, 0x01, 0x00, 0x01],
            [4, 0x24, 0x02, 0x02],
            [5, 0x24, 0x06, 0x00, 0x01],
          ],
          endpoints: [{
            address: 0x82,
            type: "interrupt",
            maxPacketSize: 10,
            interval: 9,
          }],
        },
        {
          class: 0x0a,
          name: 8,
          endpoints: [
            { address: 0x81, type: "bulk" },
            { address: 0x01, type: "bulk" },
          ],
        },
        {
          class: 8,
          subclass: 6,
          protocol: 0x50,
          name: 9,
          endpoints: [
            { address: 0x83, type: "bulk" },
            { address: 0x02, type: "bulk", interval: 1 },
          ],
        },
      ],
    }],
  });
  assert.deepEqual(enc.descriptorsFile, readHexFixture("composite-hs-iad"));
});

// ---------------------------------------------------------------------------
// Strings, qualifier, other speed, BOS

Deno.test("string descriptors are UTF-16LE; index 0 is the language table", () => {
  const enc = encodeDescriptors({
    speed: "full",
    vendorId: 1,
    productId: 2,
    languageId: 0x0407,
    manufacturer: "Müller",
    product: "Gerät 🔌",
    interfaces: [{}],
  });
  assert.deepEqual([...enc.strings.get(0)!], [4, 3, 0x07, 0x04]);
  assert.deepEqual([...enc.strings.get(1)!], [
    14,
    3,
    0x4d,
    0,
    0xfc,
    0,
    0x6c,
    0,
    0x6c,
    0,
    0x65,
    0,
    0x72,
    0,
  ]);
  const product = enc.strings.get(2)!;
  assert.equal(product[0], 2 + 2 * "Gerät 🔌".length); // a surrogate pair counts twice
  assert.equal(decodeUtf16(product), "Gerät 🔌");
  assert.deepEqual(
    encodeStringDescriptor("x".repeat(126)).length,
    254,
  );
});

Deno.test("a device without strings has no string descriptors at all", () => {
  const enc = encodeDescriptors({
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [{}],
  });
  assert.equal(enc.strings.size, 0);
});

Deno.test("high speed: device qualifier and other-speed configuration (full-speed view)", () => {
  const enc = encodeDescriptors({
    speed: "high",
    vendorId: 1,
    productId: 2,
    class: 0xff,
    interfaces: [{
      endpoints: [
        { address: 0x81, type: "bulk" },
        { address: 0x02, type: "bulk", interval: 4 },
        { address: 0x83, type: "interrupt", maxPacketSize: 512, interval: 7 }, // 8 ms
        {
          address: 0x84,
          type: "isochronous",
          maxPacketSize: 1024,
          transactions: 3,
          interval: 4, // 1 ms
        },
        { address: 0x85, type: "interrupt", maxPacketSize: 8, interval: 1 }, // 125 us
      ],
    }],
  });
  assert.deepEqual([...enc.deviceQualifier!], [
    10,
    6,
    0x00,
    0x02,
    0xff,
    0,
    0,
    64,
    1,
    0,
  ]);
  const other = parseConfiguration(enc.otherSpeedConfigurations![0]!);
  assert.equal(other.descriptorType, 7);
  assert.equal(other.totalLength, enc.configurations[0]!.length);
  const eps = other.interfaces[0]!.alternates[0]!.endpoints;
  assert.deepEqual(
    eps.map((e) => [e.packetSize, e.transactionsPerMicroframe, e.interval]),
    [[64, 1, 0], [64, 1, 0], [64, 1, 8], [1023, 1, 1], [8, 1, 1]],
  );
});

for (const speed of ["low", "full", "super"] as const) {
  Deno.test(`${speed} speed: no device qualifier, no other-speed configuration`, () => {
    const enc = encodeDescriptors(
      speed === "low" ? keyboard("low") : vendor(speed),
    );
    assert.equal(enc.deviceQualifier, undefined);
    assert.equal(enc.otherSpeedConfigurations, undefined);
  });
}

Deno.test("BOS: USB 2.0 extension with BESL, SuperSpeed capability, platform, raw", () => {
  const enc = encodeDescriptors({
    speed: "super",
    vendorId: 1,
    productId: 2,
    bos: {
      usb2Extension: { lpm: true, besl: true, baselineBesl: 2, deepBesl: 6 },
      superSpeed: { ltm: true, u1ExitLatency: 10, u2ExitLatency: 2047 },
      platform: [{
        uuid: "3408b638-09a9-47a0-8bfd-a0768815b665",
        data: [0x00, 0x01, 0x01, 0x01],
      }],
      capabilities: [{ type: 0x0b, data: [0] }],
    },
    interfaces: [{}],
  });
  assert.deepEqual([...enc.bos!], [
    // BOS header: wTotalLength 5 + 7 + 10 + 24 + 4 = 50, 4 capabilities
    5,
    0x0f,
    50,
    0,
    4,
    // USB 2.0 extension: LPM | BESL | baseline valid | deep valid, baseline 2, deep 6
    7,
    0x10,
    0x02,
    0x1e,
    0x62,
    0,
    0,
    // SuperSpeed: LTM, speeds low|full|high|5G, functionality full, U1 10, U2 2047
    10,
    0x10,
    0x03,
    0x02,
    0x0f,
    0x00,
    1,
    10,
    0xff,
    0x07,
    // WebUSB platform capability
    24,
    0x10,
    0x05,
    0x00,
    0x38,
    0xb6,
    0x08,
    0x34,
    0xa9,
    0x09,
    0xa0,
    0x47,
    0x8b,
    0xfd,
    0xa0,
    0x76,
    0x88,
    0x15,
    0xb6,
    0x65,
    0x00,
    0x01,
    0x01,
    0x01,
    // raw PTM capability
    4,
    0x10,
    0x0b,
    0,
  ]);
});

Deno.test("BOS: a SuperSpeed device without one gets USB 2.0 extension (LPM) + SuperSpeed", () => {
  const enc = encodeDescriptors(vendor("super"));
  assert.deepEqual([...enc.bos!], [
    5,
    0x0f,
    22,
    0,
    2,
    7,
    0x10,
    0x02,
    0x02,
    0,
    0,
    0,
    10,
    0x10,
    0x03,
    0x00,
    0x0f,
    0x00,
    1,
    1,
    0xf4,
    0x01,
  ]);
});

Deno.test("BOS: a high-speed device with a BOS reports bcdUSB 0x0201; without, none", () => {
  const withBos = encodeDescriptors({
    ...vendor("high"),
    bos: { usb2Extension: true },
  });
  assert.equal(withBos.device[2]! | (withBos.device[3]! << 8), 0x0201);
  assert.equal(encodeDescriptors(vendor("high")).bos, undefined);
});

Deno.test("descriptorsFile is the device descriptor followed by every configuration", () => {
  const enc = encodeDescriptors(cdcAcm({ speed: "high" }));
  const whole = concat([enc.device, ...enc.configurations]);
  assert.deepEqual([...enc.descriptorsFile], whole);
});
