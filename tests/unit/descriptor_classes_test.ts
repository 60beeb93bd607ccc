/**
 * Class decoders (one class per file behind the registry), the BOS and its
 * capabilities, hub and status decoding, and what enumeration reports
 * (authorized, warnings).
 */
import assert from "node:assert/strict";
import {
  type ClassContext,
  ClassDecoderRegistry,
  decodeClassDescriptor,
  decodeDeviceStatus,
  decodePortStatus,
  decodeReportDescriptor,
  defaultDecoders,
  parseBos,
  parseConfiguration,
  parseDescriptors,
  parseDeviceQualifier,
  parseHubDescriptor,
} from "../../src/descriptors.ts";
import { deviceFromFiles, listDevicesSync } from "../../src/enumeration.ts";
import type { DeviceDetails } from "../../src/descriptors/details.ts";
import { formatDeviceTree } from "../../src/format.ts";
import { UsbError } from "../../src/errors.ts";
import { encodeBos } from "../../src/emulated/bos.ts";
import { readHexFixture } from "../fixtures/hex.ts";

const ctx = (
  interfaceClass: number,
  interfaceSubclass: number,
  interfaceProtocol = 0,
  placement: ClassContext["placement"] = "interface",
): ClassContext => ({
  interfaceClass,
  interfaceSubclass,
  interfaceProtocol,
  placement,
});
const fields = (raw: number[], c: ClassContext) =>
  Object.fromEntries(
    (decodeClassDescriptor(new Uint8Array(raw), c)?.fields ?? []).map((
      f,
    ) => [f.name, f.value]),
  );

Deno.test("composite fixture: every class-specific descriptor is decoded", () => {
  const d = parseDescriptors(readHexFixture("composite-hs-iad"));
  const raws = d.configurations.flatMap((c) => [
    ...c.extra,
    ...c.associations.flatMap((a) => a.extra),
    ...c.interfaces.flatMap((i) =>
      i.alternates.flatMap((
        a,
      ) => [...a.extra, ...a.endpoints.flatMap((e) => e.extra)])
    ),
  ]);
  assert.ok(raws.length >= 4);
  for (const r of raws) {
    assert.ok(
      r.decoded,
      `type 0x${r.descriptorType.toString(16)} at ${r.offset}`,
    );
  }
  assert.deepEqual(raws.map((r) => r.decoded!.name), [
    "CDC Header",
    "CDC Call Management",
    "CDC ACM",
    "CDC Union",
  ]);
});

Deno.test("HID descriptor and report descriptor items", () => {
  const d = parseDescriptors(readHexFixture("keyboard-ls"));
  const hid = d.configurations[0]!.interfaces[0]!.alternates[0]!.extra[0]!
    .decoded!;
  assert.equal(hid.name, "HID Device Descriptor");
  assert.deepEqual(hid.fields.map((f) => f.name), [
    "bLength",
    "bDescriptorType",
    "bcdHID",
    "bCountryCode",
    "bNumDescriptors",
    "bDescriptorType",
    "wDescriptorLength",
  ]);
  // A boot keyboard's report descriptor, first items (HID 1.11 appendix B.1).
  const items = decodeReportDescriptor(
    new Uint8Array([
      0x05,
      0x01,
      0x09,
      0x06,
      0xa1,
      0x01,
      0x05,
      0x07,
      0x19,
      0xe0,
      0x29,
      0xe7,
      0x15,
      0x00,
      0x25,
      0x01,
      0x75,
      0x01,
      0x95,
      0x08,
      0x81,
      0x02,
      0xc0,
    ]),
  );
  assert.deepEqual(items.map((i) => [i.tag, i.value]), [
    ["Usage Page", 1],
    ["Usage", 6],
    ["Collection", 1],
    ["Usage Page", 7],
    ["Usage Minimum", 0xe0],
    ["Usage Maximum", 0xe7],
    ["Logical Minimum", 0],
    ["Logical Maximum", 1],
    ["Report Size", 1],
    ["Report Count", 8],
    ["Input", 2],
    ["End Collection", 0],
  ]);
  assert.equal(items[2]!.note, "Application");
  assert.equal(items[3]!.note, "Keyboard");
  // Truncated and long items never throw and always advance.
  assert.equal(decodeReportDescriptor(new Uint8Array([0x27, 1])).length, 1);
  assert.equal(
    decodeReportDescriptor(new Uint8Array([0xfe, 200, 1])).length,
    1,
  );
});

Deno.test("CDC: Ethernet (iMacAddress is a string index), NCM, bad lengths stay raw", () => {
  const ecm = decodeClassDescriptor(
    new Uint8Array([13, 0x24, 0x0f, 4, 0, 0, 0, 0, 0xea, 0x05, 0, 0, 0]),
    ctx(2, 6),
  )!;
  assert.equal(ecm.name, "CDC Ethernet");
  const mac = ecm.fields.find((f) => f.name === "iMacAddress")!;
  assert.ok(mac.stringIndex && mac.value === 4);
  assert.equal(
    ecm.fields.find((f) => f.name === "wMaxSegmentSize")!.value,
    1514,
  );
  assert.deepEqual(fields([6, 0x24, 0x1a, 0, 1, 0x23], ctx(2, 0x0d)), {
    bLength: 6,
    bDescriptorType: 0x24,
    bDescriptorSubtype: 0x1a,
    bcdNcmVersion: "1.00",
    bmNetworkCapabilities: 0x23,
  });
  assert.equal(
    decodeClassDescriptor(new Uint8Array([6, 0x24, 0, 0x10, 1, 0]), ctx(2, 2)),
    undefined,
    "a 6-byte header is invalid",
  );
  assert.equal(
    decodeClassDescriptor(new Uint8Array([5, 0x24, 0, 0x10, 1]), ctx(0xff, 0)),
    undefined,
    "not a CDC interface",
  );
});

Deno.test("UAC1 and UAC2: header, terminals, feature unit, AS general, format type, AS endpoint", () => {
  assert.deepEqual(fields([10, 0x24, 1, 0, 1, 40, 0, 2, 1, 2], ctx(1, 1)), {
    bLength: 10,
    bDescriptorType: 0x24,
    bDescriptorSubtype: 1,
    bcdADC: "1.00",
    wTotalLength: 40,
    bInCollection: 2,
    "baInterfaceNr(0)": 1,
    "baInterfaceNr(1)": 2,
  });
  const it = decodeClassDescriptor(
    new Uint8Array([12, 0x24, 2, 1, 1, 2, 0, 2, 3, 0, 0, 5]),
    ctx(1, 1),
  )!;
  assert.equal(
    it.fields.find((f) => f.name === "wTerminalType")!.note,
    "Microphone",
  );
  assert.ok(it.fields.find((f) => f.name === "iTerminal")!.stringIndex);
  // UAC1 feature unit with bControlSize 1 and 3 controls, then iFeature.
  assert.deepEqual(fields([10, 0x24, 6, 2, 1, 1, 3, 1, 1, 0], ctx(1, 1)), {
    bLength: 10,
    bDescriptorType: 0x24,
    bDescriptorSubtype: 6,
    bUnitID: 2,
    bSourceID: 1,
    bControlSize: 1,
    "bmaControls(0)": 3,
    "bmaControls(1)": 1,
    "bmaControls(2)": 1,
    iFeature: 0,
  });
  // UAC2 clock source and format type I.
  assert.deepEqual(fields([8, 0x24, 0x0a, 4, 1, 1, 0, 0], ctx(1, 1, 0x20)), {
    bLength: 8,
    bDescriptorType: 0x24,
    bDescriptorSubtype: 0x0a,
    bClockID: 4,
    bmAttributes: 1,
    bmControls: 1,
    bAssocTerminal: 0,
    iClockSource: 0,
  });
  assert.deepEqual(fields([6, 0x24, 2, 1, 2, 16], ctx(1, 2, 0x20)), {
    bLength: 6,
    bDescriptorType: 0x24,
    bDescriptorSubtype: 2,
    bFormatType: 1,
    bSubslotSize: 2,
    bBitResolution: 16,
  });
  // UAC1 format type I with two discrete rates.
  const ft = fields(
    [14, 0x24, 2, 1, 2, 2, 16, 2, 0x80, 0xbb, 0, 0x44, 0xac, 0],
    ctx(1, 2),
  );
  assert.deepEqual([ft["tSamFreq(0)"], ft["tSamFreq(1)"]], [48000, 44100]);
  assert.deepEqual(fields([7, 0x25, 1, 0, 0, 0, 0], ctx(1, 2, 0, "endpoint")), {
    bLength: 7,
    bDescriptorType: 0x25,
    bDescriptorSubtype: 1,
    bmAttributes: 0,
    bLockDelayUnits: 0,
    wLockDelay: 0,
  });
});

Deno.test("MIDIStreaming and video class headers", () => {
  assert.deepEqual(fields([7, 0x24, 1, 0, 1, 65, 0], ctx(1, 3)), {
    bLength: 7,
    bDescriptorType: 0x24,
    bDescriptorSubtype: 1,
    bcdMSC: "1.00",
    wTotalLength: 65,
  });
  assert.deepEqual(fields([5, 0x25, 1, 1, 1], ctx(1, 3, 0, "endpoint")), {
    bLength: 5,
    bDescriptorType: 0x25,
    bDescriptorSubtype: 1,
    bNumEmbMIDIJack: 1,
    "baAssocJackID(0)": 1,
  });
  const vs = fields(
    [14, 0x24, 1, 1, 77, 0, 0x81, 0, 3, 0, 0, 0, 1, 0],
    ctx(0x0e, 2),
  );
  assert.deepEqual([
    vs.bNumFormats,
    vs.wTotalLength,
    vs.bEndpointAddress,
    vs["bmaControls(0)"],
  ], [1, 77, 0x81, 0]);
});

Deno.test("the registry: a vendor decoder without touching the parser; a throwing one is a warning", () => {
  const registry = new ClassDecoderRegistry(defaultDecoders.decoders);
  registry.register({
    name: "acme",
    decode: (raw, c) =>
      c.interfaceClass === 0xff && raw[1] === 0x41
        ? { name: "ACME", decoder: "acme", fields: [] }
        : undefined,
  });
  registry.register({
    name: "broken",
    decode: (raw) => {
      if (raw[1] === 0x42) throw new Error("boom");
      return undefined;
    },
  });
  const bytes = new Uint8Array([
    9,
    2,
    24,
    0,
    1,
    1,
    0,
    0x80,
    50,
    9,
    4,
    0,
    0,
    0,
    0xff,
    0,
    0,
    0,
    3,
    0x41,
    7,
    3,
    0x42,
    7,
  ]);
  const c = parseConfiguration(bytes, { decoders: registry });
  const extra = c.interfaces[0]!.alternates[0]!.extra;
  assert.equal(extra[0]!.decoded?.name, "ACME");
  assert.equal(extra[1]!.decoded, undefined);
  assert.match(c.warnings[0]!.message, /class decoder failed .*boom/);
  assert.equal(
    parseConfiguration(bytes).interfaces[0]!.alternates[0]!.extra[0]!.decoded,
    undefined,
    "the default registry is untouched",
  );
  assert.throws(
    () => registry.register({} as never),
    (e: unknown) => e instanceof UsbError && e.code === "invalid-argument",
  );
});

Deno.test("BOS: what src/emulated encodes, parsed back; WebUSB and MS OS 2.0 platforms; lenient stops like the kernel", () => {
  const bytes = encodeBos(
    {
      usb2Extension: true,
      superSpeed: true,
      platform: [
        {
          uuid: "3408b638-09a9-47a0-8bfd-a0768815b665",
          data: [0x00, 0x01, 1, 1],
        },
        {
          uuid: "d8dd60df-4589-4cc7-9cd2-659d9e648a9f",
          data: [0, 0, 3, 6, 0xb2, 0, 2, 0],
        },
      ],
    },
    "super",
    "bos",
  )!;
  const bos = parseBos(bytes);
  assert.deepEqual(bos.capabilities.map((c) => c.name), [
    "USB 2.0 Extension Device Capability",
    "SuperSpeed USB Device Capability",
    "Platform Device Capability",
    "Platform Device Capability",
  ]);
  assert.deepEqual(bos.capabilities.map((c) => c.platform), [
    undefined,
    undefined,
    "webusb",
    "ms-os-2.0",
  ]);
  const ms = Object.fromEntries(
    bos.capabilities[3]!.fields.map((f) => [f.name, f.value]),
  );
  assert.deepEqual([
    ms["dwWindowsVersion(0)"],
    ms["wMSOSDescriptorSetTotalLength(0)"],
    ms["bMS_VendorCode(0)"],
  ], [0x06030000, 0xb2, 2]);
  const web = bos.capabilities[2]!.fields.find((f) =>
    f.name === "iLandingPage"
  )!;
  assert.ok(web.stringIndex && web.value === 1);
  // Truncate the last capability: strict refuses, lenient keeps the rest.
  const cut = bytes.slice(0, bytes.length - 3);
  assert.throws(
    () => parseBos(cut),
    (e: unknown) => e instanceof UsbError && e.code === "invalid-descriptor",
  );
  const lenient = parseBos(cut, { mode: "lenient" });
  assert.equal(lenient.capabilities.length, 3);
  assert.ok(lenient.warnings.length >= 1);
  // SuperSpeedPlus and Container ID.
  const ssp = parseBos(
    new Uint8Array([
      5,
      0x0f,
      45,
      0,
      2,
      20,
      0x10,
      4,
      0,
      ...Array.from({ length: 16 }, (_, i) => i),
      20,
      0x10,
      0x0a,
      0,
      0x01,
      0,
      0,
      0,
      0x00,
      0x11,
      0,
      0,
      0x30,
      0x40,
      0x0a,
      0,
      0xb0,
      0x40,
      0x0a,
      0,
    ]),
  );
  assert.equal(
    ssp.capabilities[0]!.uuid,
    "03020100-0504-0706-0809-0a0b0c0d0e0f",
  );
  const sub = ssp.capabilities[1]!.fields.filter((f) =>
    f.name.startsWith("bmSublinkSpeedAttr")
  );
  assert.equal(sub.length, 2);
  assert.match(sub[0]!.note!, /10Gb\/s Symmetric RX SuperSpeedPlus/);
});

Deno.test("qualifier, hub descriptor, port and device status", () => {
  const q = parseDeviceQualifier(
    new Uint8Array([10, 6, 0, 2, 0, 0, 0, 64, 1, 0]),
  );
  assert.equal(q.numConfigurations, 1);
  const hub = parseHubDescriptor(
    new Uint8Array([9, 0x29, 4, 0xa9, 0, 50, 100, 0, 0xff]),
  );
  assert.deepEqual(
    hub.fields.map((f) => f.name),
    [
      "bLength",
      "bDescriptorType",
      "nNbrPorts",
      "wHubCharacteristic",
      "bPwrOn2PwrGood",
      "bHubContrCurrent",
      "DeviceRemovable",
      "PortPwrCtrlMask",
    ],
  );
  assert.throws(
    () => parseHubDescriptor(new Uint8Array([9, 0x29, 4])),
    /truncated hub descriptor/,
  );
});

Deno.test("enumeration: authorized from sysfs, kernel warnings on the device, describe shows both", () => {
  const root =
    new URL("../fixtures/sysfs/bus/usb/devices/2-1/", import.meta.url).pathname;
  const files = new Map<string, Uint8Array | undefined>();
  for (const f of ["busnum", "devnum", "speed"]) {
    files.set(f, Deno.readFileSync(root + f));
  }
  const enc = new TextEncoder();
  // A high-speed device whose interrupt endpoint says bInterval 0, deauthorized.
  files.set(
    "descriptors",
    new Uint8Array([
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
      1,
      9,
      2,
      25,
      0,
      1,
      1,
      0,
      0x80,
      50,
      9,
      4,
      0,
      0,
      1,
      3,
      0,
      0,
      0,
      7,
      5,
      0x81,
      3,
      8,
      0,
      0,
    ]),
  );
  files.set("speed", enc.encode("480\n"));
  files.set("authorized", enc.encode("0\n"));
  const d = deviceFromFiles("2-1", "/sys/devices/x/usb2/2-1", files)!;
  assert.equal(d.authorized, false);
  assert.equal(d.activeConfiguration, undefined);
  assert.deepEqual(d.warnings, [
    "configuration 1, byte 36: endpoint 0x81: the kernel changes bInterval from 0 to 7",
  ]);
  const tree = formatDeviceTree(d);
  assert.match(tree, /not authorized/);
  assert.match(tree, /bInterval +0 +kernel uses 7: 8 ms/);
  assert.match(tree, /bcdDevice +6\.01/);
  files.set("authorized", enc.encode("1\n"));
  assert.equal(deviceFromFiles("2-1", "/x", files)!.authorized, true);
});

Deno.test("describe's text: BOS, qualifier, hub, status, HID report and the strings of every alternate setting", () => {
  const root = new URL("../fixtures/sysfs", import.meta.url).pathname;
  const info = listDevicesSync({ sysfsRoot: root }).find((d) =>
    d.portPath === "1-2"
  )!;
  const bos = parseBos(
    encodeBos(
      {
        usb2Extension: true,
        platform: [{
          uuid: "3408b638-09a9-47a0-8bfd-a0768815b665",
          data: [0, 1, 1, 0],
        }],
      },
      "high",
      "bos",
    )!,
  );
  const details: DeviceDetails = {
    strings: { 6: "ACM function", 7: "from the device" },
    bos,
    landingPage: "https://usbkit.example/",
    qualifier: parseDeviceQualifier(
      new Uint8Array([10, 6, 0, 2, 0xef, 2, 1, 64, 1, 0]),
    ),
    otherSpeedConfigurations: [],
    hub: parseHubDescriptor(
      new Uint8Array([9, 0x29, 4, 0xa9, 0, 50, 100, 0, 0xff]),
    ),
    ports: [decodePortStatus(new Uint8Array([0x03, 0x05, 0, 0]), false)],
    status: decodeDeviceStatus(new Uint8Array([1, 0])),
    reportDescriptors: [{
      interfaceNumber: 0,
      raw: new Uint8Array([0x05, 0x01, 0xc0]),
      items: decodeReportDescriptor(new Uint8Array([0x05, 0x01, 0xc0])),
    }],
    errors: ["string 9: stall"],
  };
  const tree = formatDeviceTree(info, undefined, details);
  assert.match(tree, /iFunction +6 +"ACM function"/, "IAD iFunction resolved");
  assert.match(tree, /Binary Object Store Descriptor:\n/);
  assert.match(
    tree,
    /Platform Device Capability \(webusb\):[^]*?iLandingPage +0/,
  );
  assert.match(
    tree,
    /Device Qualifier \(for other device speed\):[^]*?bNumConfigurations +1/,
  );
  assert.match(
    tree,
    /Hub Descriptor:[^]*?DeviceRemovable +0x00\n +PortPwrCtrlMask +0xff/,
  );
  assert.match(tree, /Port 1: 0000\.0503 connect enable power highspeed/);
  assert.match(tree, /Device Status: +0x0001\n +Self Powered/);
  assert.match(
    tree,
    /HID Report Descriptor \(interface 0, 3 bytes\):\n +Global +Usage Page +1 +Generic Desktop Controls/,
  );
  assert.match(tree, /Not read:\n +string 9: stall/);
});
