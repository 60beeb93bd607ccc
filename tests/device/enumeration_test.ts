// Enumeration, selectors and the `usb` CLI against the virtual bench (run
// inside the guest: `deno test -A --no-check tests/device/`).
//
// What usbkit reports is checked against the kernel's own sysfs attributes
// (read independently by tests/fixtures/sysfs_agreement.ts, which the unit
// tests validate on the fixture tree) and against the bench record the guest
// writes at /run/usbkit-bench.json (kernel/bench.ts, BenchInfo).

import assert from "node:assert/strict";
import type { BenchInfo } from "../../kernel/bench.ts";
import type { EndpointDescriptor } from "../../src/descriptors.ts";
import {
  type DeviceInfo,
  listDevices,
  type Speed,
} from "../../src/enumeration.ts";
import { selectDevice } from "../../src/selector.ts";
import {
  type DescribedDevice,
  sysfsDisagreements,
} from "../fixtures/sysfs_agreement.ts";

const USB_CLI = new URL("../../scripts/usb.ts", import.meta.url).pathname;

/** The bench record, or undefined when running on a bench that writes none. */
function readBench(): BenchInfo | undefined {
  const path = Deno.env.get("USBKIT_BENCH") ?? "/run/usbkit-bench.json";
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as BenchInfo;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

const bench = readBench();
const benchSS = bench?.gadgets.find((g) =>
  g.function === "sourcesink" && g.bound
);

/**
 * The SourceSink gadget: from the bench record, else the configfs defaults
 * the bench uses (Gadget Zero's NetChip ids, drivers/usb/gadget/legacy/zero.c).
 */
const SS = {
  vendorId: benchSS?.vendorId ?? 0x0525,
  productId: benchSS?.productId ?? 0xa4a0,
  speed: (bench?.speed ?? "super") as Speed,
  manufacturer: benchSS?.manufacturer,
  product: benchSS?.product,
  serial: benchSS?.serial,
  port: benchSS?.location?.port,
};

/**
 * The ids QEMU gives its emulated devices, checked against QEMU's sources:
 * hw/usb/dev-storage.c (0x46f4 is "CRC16() of QEMU"), dev-hid.c (usb-kbd,
 * usb-mouse and usb-tablet all use 0627:0001), dev-serial.c (an FTDI FT232,
 * 0403:6001), dev-audio.c (USBAUDIO_VENDOR_NUM/PRODUCT_NUM). Each also has a
 * check that tells it apart by what its interfaces are.
 */
const QEMU_DEVICES: Record<string, {
  vendorId: number;
  productId: number;
  looksRight: (d: DeviceInfo) => boolean;
  what: string;
}> = {
  storage: {
    vendorId: 0x46f4,
    productId: 0x0001,
    // Mass storage, SCSI transparent, Bulk-Only Transport.
    looksRight: (d) =>
      hasAlt(
        d,
        (a) => a.interfaceClass === 0x08 && a.interfaceProtocol === 0x50,
      ),
    what: "a mass-storage bulk-only interface",
  },
  kbd: {
    vendorId: 0x0627,
    productId: 0x0001,
    // HID boot interface, keyboard protocol (HID 1.11 §4.2-4.3).
    looksRight: (d) =>
      hasAlt(
        d,
        (a) =>
          a.interfaceClass === 0x03 && a.interfaceSubclass === 1 &&
          a.interfaceProtocol === 1,
      ),
    what: "a HID boot keyboard interface",
  },
  serial: {
    vendorId: 0x0403,
    productId: 0x6001,
    looksRight: (d) =>
      hasAlt(d, (a) => a.interfaceClass === 0xff && a.endpoints.length === 2),
    what: "a vendor-specific interface with two bulk endpoints",
  },
  audio: {
    vendorId: 0x46f4,
    productId: 0x0002,
    // An audio streaming alternate with an isochronous OUT endpoint.
    looksRight: (d) =>
      hasAlt(d, (a) =>
        a.interfaceClass === 0x01 &&
        a.endpoints.some((e) =>
          e.type === "isochronous" && e.direction === "out"
        )),
    what: "an audio interface with an isochronous OUT endpoint",
  },
};

type Alt =
  DeviceInfo["configurations"][number]["interfaces"][number]["alternates"][
    number
  ];

function hasAlt(d: DeviceInfo, test: (a: Alt) => boolean): boolean {
  return d.configurations.some((c) =>
    c.interfaces.some((i) => i.alternates.some(test))
  );
}

const hex4 = (n: number) => n.toString(16).padStart(4, "0");
const id = (vendorId: number, productId: number) =>
  `${hex4(vendorId)}:${hex4(productId)}`;

/** The SourceSink gadget as listDevices sees it. */
function findGadget(devices: readonly DeviceInfo[]): DeviceInfo {
  const matches = devices.filter((d) =>
    d.vendorId === SS.vendorId && d.productId === SS.productId &&
    (SS.serial === undefined || d.serialNumber === SS.serial)
  );
  assert.equal(
    matches.length,
    1,
    `expected one SourceSink ${id(SS.vendorId, SS.productId)}; attached: ${
      devices.map((d) => `${d.portPath} ${id(d.vendorId, d.productId)}`).join(
        ", ",
      )
    }`,
  );
  return matches[0]!;
}

/** Runs the usb CLI in a subprocess, as a user would. */
async function usb(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", USB_CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: decode(out.stdout),
    stderr: decode(out.stderr),
  };
}

Deno.test("listDevices finds the SourceSink gadget with its speed and strings", async () => {
  const gadget = findGadget(await listDevices());
  assert.equal(gadget.speed, SS.speed);
  assert.equal(gadget.isRootHub, false);
  // Strings come from the gadget's configfs strings/0x409 directory.
  assert.ok(gadget.manufacturerName, "manufacturer string");
  assert.ok(gadget.productName, "product string");
  assert.ok(gadget.serialNumber, "serial string");
  if (SS.manufacturer !== undefined) {
    assert.equal(gadget.manufacturerName, SS.manufacturer);
  }
  if (SS.product !== undefined) assert.equal(gadget.productName, SS.product);
  if (SS.port !== undefined) assert.equal(gadget.portPath, SS.port);
  assert.equal(
    gadget.devnode,
    `/dev/bus/usb/${String(gadget.busNumber).padStart(3, "0")}/${
      String(gadget.deviceAddress).padStart(3, "0")
    }`,
  );
  assert.ok((await Deno.stat(gadget.devnode)).isCharDevice, gadget.devnode);
  assert.equal(gadget.descriptorError, undefined);

  // f_sourcesink.c: one interface, bulk IN 0x81 and bulk OUT 0x02; dummy_hcd
  // has no isochronous endpoints, so no alternate setting 1.
  const config = gadget.configurations.find((c) =>
    c.configurationValue === gadget.activeConfiguration
  );
  assert.ok(config, "the active configuration is parsed");
  const alt = config.interfaces[0]?.alternates[0];
  assert.ok(alt);
  assert.equal(alt.interfaceClass, 0xff);
  const maxPacket = SS.speed === "super" ? 1024 : 512; // ss_source_desc / hs_source_desc
  for (const [address, direction] of [[0x81, "in"], [0x02, "out"]] as const) {
    const ep: EndpointDescriptor | undefined = alt.endpoints.find((e) =>
      e.address === address
    );
    assert.ok(ep, `endpoint 0x${address.toString(16)}`);
    assert.equal(ep.type, "bulk");
    assert.equal(ep.direction, direction);
    assert.equal(ep.packetSize, maxPacket);
    assert.equal(
      ep.companion !== undefined,
      SS.speed === "super",
      "SuperSpeed companion",
    );
  }
  if (SS.speed === "super") {
    assert.equal(gadget.usbVersion, 0x0320); // composite.c at SuperSpeed
    assert.equal(gadget.device.maxPacketSize0, 9); // 2^9 = 512
  }
  // Selecting it by each form gives it back.
  const devices = await listDevices();
  for (
    const sel of [
      id(SS.vendorId, SS.productId),
      gadget.portPath,
      gadget.devnode,
    ]
  ) {
    assert.equal(selectDevice(devices, sel).devnode, gadget.devnode, sel);
  }
  assert.equal(
    selectDevice(devices, gadget.serialNumber!).devnode,
    gadget.devnode,
  );
});

Deno.test("every listed device agrees with its sysfs attributes", async () => {
  const devices = await listDevices();
  assert.ok(devices.length >= 2, "at least the gadget and a root hub");
  for (const d of devices) {
    assert.deepEqual(sysfsDisagreements(d), [], `${d.portPath}`);
  }
  // Root hubs are there and marked.
  assert.ok(devices.some((d) => d.isRootHub && d.vendorId === 0x1d6b));
});

Deno.test("`usb list --json` holds the gadget", async () => {
  const gadget = findGadget(await listDevices());
  const r = await usb("list", "--json");
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout) as {
    vendorId: number;
    productId: number;
    portPath: string;
    serialNumber: string | null;
    isRootHub: boolean;
    descriptors: string;
  }[];
  const entry = list.find((d) => d.portPath === gadget.portPath);
  assert.ok(entry, `port ${gadget.portPath} in ${r.stdout.slice(0, 500)}`);
  assert.equal(entry.vendorId, SS.vendorId);
  assert.equal(entry.productId, SS.productId);
  assert.equal(entry.serialNumber, gadget.serialNumber);
  assert.equal(
    entry.descriptors,
    Array.from(gadget.descriptors, (b) => b.toString(16).padStart(2, "0")).join(
      "",
    ),
  );
  assert.ok(list.every((d) => !d.isRootHub), "root hubs only with --all");

  const table = await usb("list");
  assert.equal(table.code, 0, table.stderr);
  assert.match(
    table.stdout,
    new RegExp(
      `${gadget.portPath} +${id(SS.vendorId, SS.productId)} +${SS.speed}`,
    ),
  );
});

Deno.test("`usb describe --json` agrees with sysfs, and usbfs offers MMAP", async () => {
  const gadget = findGadget(await listDevices());
  const r = await usb("describe", gadget.portPath, "--json");
  assert.equal(r.code, 0, r.stderr);
  const described = JSON.parse(r.stdout) as DescribedDevice & {
    capabilities: { bits: number; names: string[]; speed: string } | null;
    capabilitiesError:
      | { code: string; message: string; hint: string | null }
      | null;
  };
  assert.deepEqual(sysfsDisagreements(described), []);
  // bNumInterfaces and bMaxPacketSize0 as sysfs.c prints them ("%2d", "%d").
  const sysfs = (f: string) =>
    Deno.readTextFileSync(`${gadget.sysfsPath}/${f}`).trim();
  const active = described.configurations.find((c) =>
    c.configurationValue === described.activeConfiguration
  );
  assert.equal(Number(sysfs("bNumInterfaces")), active?.interfaces.length);
  assert.equal(
    Number(sysfs("bMaxPacketSize0")),
    described.device.maxPacketSize0,
  );

  assert.equal(
    described.capabilitiesError,
    null,
    `capabilities: ${described.capabilitiesError?.message} (${described.capabilitiesError?.hint})`,
  );
  assert.ok(described.capabilities);
  // USBDEVFS_CAP_MMAP (kernel commit f7d34b445abc, Linux 4.6+).
  assert.ok(
    described.capabilities.names.includes("MMAP"),
    described.capabilities.names.join(" "),
  );
  assert.equal(
    described.capabilities.speed,
    SS.speed,
    "usbfs and sysfs agree on the speed",
  );

  // The tree for people prints without error, with the capabilities in it.
  const text = await usb("describe", gadget.portPath);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /usbfs: speed \S+, capabilities 0x[0-9a-f]+\n +.*MMAP/,
  );
  assert.match(text.stdout, /bEndpointAddress +0x81 +EP 1 IN/);
});

Deno.test("`usb describe` of nothing says not-found and exits 2", async () => {
  const r = await usb("describe", "dead:beef");
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^error\[not-found\]: no USB device matches "dead:beef"/,
  );
  assert.match(r.stderr, /attached devices:/);
});

// QEMU's emulated devices on qemu-xhci. With a bench record, every device it
// says was created must be there, with the ids of QEMU_DEVICES and at the
// port the guest recorded. Without one (an older or hand-made bench), a
// device is checked only if something with its ids is attached: those steps
// show as "ignored" rather than passing vacuously.
Deno.test("QEMU emulated devices appear with their ids", async (t) => {
  const devices = await listDevices();
  for (const [kind, known] of Object.entries(QEMU_DEVICES)) {
    const recorded = bench?.qemuDevices.filter((q) => q.kind === kind) ?? [];
    const present = devices.filter((d) =>
      d.vendorId === known.vendorId && d.productId === known.productId &&
      known.looksRight(d)
    );
    const ignore = bench === undefined
      ? present.length === 0
      : recorded.length === 0;
    await t.step({
      name: `${kind} ${id(known.vendorId, known.productId)}`,
      ignore,
      fn: () => {
        if (bench === undefined) {
          assert.ok(present.length > 0);
          return;
        }
        for (const q of recorded) {
          assert.equal(
            q.id,
            id(known.vendorId, known.productId),
            `${q.name}: QEMU's ids`,
          );
          const d = devices.find((x) => x.serialNumber === q.serial) ??
            devices.find((x) => x.portPath === q.location?.port);
          assert.ok(d, `${q.name} (serial ${q.serial}) is attached`);
          assert.equal(id(d.vendorId, d.productId), q.id, q.name);
          assert.ok(known.looksRight(d), `${q.name} has ${known.what}`);
          if (q.location !== null) {
            assert.equal(d.portPath, q.location.port);
            assert.equal(d.devnode, q.location.devnode);
          }
          assert.deepEqual(sysfsDisagreements(d), [], q.name);
        }
      },
    });
  }
});
