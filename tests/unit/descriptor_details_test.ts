/**
 * readDeviceDetails against the TypeScript test devices (no kernel): every
 * string the descriptors point at, the BOS and the WebUSB landing page, the
 * qualifier and other-speed configurations, the device status, HID report
 * descriptors, and what could not be read.
 */
import assert from "node:assert/strict";
import {
  type DetailsSource,
  readDeviceDetails,
} from "../../src/descriptors/details.ts";
import { deviceFromFiles } from "../../src/enumeration.ts";
import {
  COMPOSITE_ACM_NCM_ECM,
  COMPOSITE_HID_STORAGE_PRINTER,
  RawDescriptorDevice,
  type RawDeviceSpec,
  SUPERSPEED_BOS,
} from "../fixtures/descriptor_devices.ts";

/** A DetailsSource that sends each request to the TypeScript device. */
function sourceFor(spec: RawDeviceSpec): DetailsSource {
  const dev = new RawDescriptorDevice(spec);
  const source: DetailsSource = {
    async controlTransferIn(setup, length) {
      const type = 0x80 |
        { standard: 0, class: 0x20, vendor: 0x40 }[setup.requestType] |
        { device: 0, interface: 1, endpoint: 2, other: 3 }[setup.recipient];
      const r = await dev.handleUrb({
        endpoint: 0,
        direction: "in",
        length,
        transferFlags: 0,
        setup: new Uint8Array([
          type,
          setup.request,
          setup.value & 0xff,
          setup.value >> 8,
          setup.index & 0xff,
          setup.index >> 8,
          length & 0xff,
          length >> 8,
        ]),
        signal: new AbortController().signal,
      });
      return {
        status: r.status === 0 ? "ok" : "stall",
        data: r.data ?? new Uint8Array(0),
      };
    },
    async getStringDescriptor(index) {
      const r = await source.controlTransferIn({
        requestType: "standard",
        recipient: "device",
        request: 6,
        value: 0x0300 | index,
        index: 0x0409,
      }, 255);
      if (r.status !== "ok") throw new Error(`string ${index}: stall`);
      return new TextDecoder("utf-16le").decode(r.data.subarray(2));
    },
    claimInterface: () => Promise.resolve({ release: () => Promise.resolve() }),
  };
  return source;
}

function infoFor(spec: RawDeviceSpec, speed: string) {
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array | undefined>([
    [
      "descriptors",
      new Uint8Array([
        ...spec.device,
        ...spec.configurations.flatMap((c) => [...c]),
      ]),
    ],
    ["busnum", enc.encode("3\n")],
    ["devnum", enc.encode("2\n")],
    ["speed", enc.encode(`${speed}\n`)],
    ["bConfigurationValue", enc.encode("1\n")],
  ]);
  return deviceFromFiles("3-1", "/sys/devices/x/usb3/3-1", files)!;
}

Deno.test("details: every string of both configurations, every alternate setting and IAD, a qualifier and other-speed configurations", async () => {
  const spec = COMPOSITE_ACM_NCM_ECM;
  const d = await readDeviceDetails(sourceFor(spec), infoFor(spec, "480"));
  // Indexes 1..17 are all referenced: device, configurations (active and
  // not), IADs, every alternate setting, and CDC Ethernet's iMacAddress.
  assert.deepEqual(
    Object.keys(d.strings).map(Number),
    Array.from({ length: 17 }, (_, i) => i + 1),
  );
  assert.equal(d.strings[5], "02aabbccddee");
  assert.equal(
    d.strings[12],
    "NCM data",
    "an alternate setting that is not current",
  );
  assert.equal(d.strings[13], "ECM", "the configuration that is not active");
  assert.equal(d.qualifier?.numConfigurations, 2);
  assert.deepEqual(d.otherSpeedConfigurations.map((c) => c.descriptorType), [
    7,
    7,
  ]);
  assert.equal(d.status?.status, 0);
  assert.equal(d.bos, undefined, "bcdUSB 2.00: no BOS asked for");
  assert.deepEqual(d.errors, []);
});

Deno.test("details: the BOS and the WebUSB landing page of a SuperSpeed device", async () => {
  const spec = SUPERSPEED_BOS;
  const d = await readDeviceDetails(sourceFor(spec), infoFor(spec, "5000"));
  assert.equal(d.bos?.capabilities.length, 6);
  assert.equal(d.landingPage, "https://usbkit.example/landing");
  assert.equal(
    d.strings[6],
    "usbkit.example/landing",
    "iLandingPage is a string index too",
  );
  assert.equal(d.qualifier, undefined, "not asked at SuperSpeed");
});

Deno.test("details: a HID report descriptor when no driver holds the interface; what stalls is listed", async () => {
  const spec = COMPOSITE_HID_STORAGE_PRINTER;
  const d = await readDeviceDetails(sourceFor(spec), infoFor(spec, "480"));
  assert.equal(d.reportDescriptors.length, 1);
  assert.equal(d.reportDescriptors[0]!.raw.length, 63);
  assert.equal(d.reportDescriptors[0]!.items.at(-1)!.tag, "End Collection");
  assert.deepEqual(d.errors, [
    "other-speed configuration 0: the device answered stall",
  ]);
});
