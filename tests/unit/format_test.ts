// The `usb list` / `usb describe` renderings (src/format.ts) and the CLI
// around them (scripts/usb.ts), against the fixture sysfs tree.
import assert from "node:assert/strict";
import { parseDescriptors } from "../../src/descriptors.ts";
import { type DeviceInfo, listDevicesSync } from "../../src/enumeration.ts";
import { UsbError } from "../../src/errors.ts";
import {
  formatDeviceTable,
  formatDeviceTree,
  hexBytes,
  toJson,
} from "../../src/format.ts";
import { commands, main } from "../../scripts/usb.ts";
import { readHexFixture } from "../fixtures/hex.ts";
import { sysfsDisagreements } from "../fixtures/sysfs_agreement.ts";

const SYSFS = new URL("../fixtures/sysfs", import.meta.url).pathname;
const devices = listDevicesSync({ sysfsRoot: SYSFS });
const at = (port: string) => devices.find((d) => d.portPath === port)!;

/** Runs the CLI, capturing what it prints. */
async function usb(
  ...args: string[]
): Promise<{ status: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(args, {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  });
  return { status, out: out.join("\n"), err: err.join("\n") };
}

Deno.test("table: a header, one row per device, '-' for absent strings", () => {
  const lines = formatDeviceTable(devices.filter((d) => !d.isRootHub)).split(
    "\n",
  );
  assert.match(
    lines[0]!,
    /^BUS +DEV +PORT +ID +SPEED +CLASS +MANUFACTURER +PRODUCT +SERIAL$/,
  );
  assert.equal(lines.length, 5);
  assert.match(
    lines[1]!,
    /^001 +002 +1-1 +05e3:0608 +high +hub +- +USB2\.0 Hub +-$/,
  );
  assert.match(
    lines[3]!,
    /1-2 +1d6b:0104 +high +comm\+cdc-data\+storage +Linux Foundation/,
  );
  assert.match(
    lines[4]!,
    /^002 +002 +2-1 +0525:a4a0 +super +vendor +usbkit +SourceSink/,
  );
  // Columns line up: every row has the ID column at the same place.
  const col = lines[0]!.indexOf("ID");
  for (const l of lines.slice(1)) {
    assert.match(l.slice(col), /^[0-9a-f]{4}:[0-9a-f]{4}/);
  }
});

Deno.test("tree: SuperSpeed gadget with companions, driver and usbfs capabilities", () => {
  const tree = formatDeviceTree(at("2-1"), {
    bits: 0x1ff,
    names: ["ZERO_PACKET", "MMAP"],
    speed: "super",
  });
  assert.match(
    tree,
    /^Bus 002 Device 002: ID 0525:a4a0 usbkit SourceSink bench gadget$/m,
  );
  assert.match(
    tree,
    /port 2-1, super speed \(5 Gb\/s\), \/dev\/bus\/usb\/002\/002/,
  );
  assert.match(
    tree,
    /usbfs: speed super, capabilities 0x1ff\n +ZERO_PACKET MMAP/,
  );
  assert.match(tree, /bcdUSB +0x0320 +USB 3\.2/);
  assert.match(tree, /bMaxPacketSize0 +9 +512 bytes/);
  assert.match(tree, /iSerialNumber +3 +"usbkit-ss-0001"/);
  assert.match(tree, /Configuration Descriptor: \(active\)/);
  assert.match(tree, /iConfiguration +4 +"SourceSink"/);
  assert.match(tree, /bMaxPower +1 +8 mA/);
  assert.match(tree, /Interface Descriptor: \(current, no driver\)/);
  assert.match(tree, /bInterfaceClass +0xff +Vendor Specific/);
  assert.match(tree, /iInterface +5 +"source and sink data"/);
  assert.match(tree, /bEndpointAddress +0x81 +EP 1 IN/);
  assert.match(tree, /bEndpointAddress +0x02 +EP 2 OUT/);
  assert.match(tree, /wMaxPacketSize +0x0400 +1 x 1024 bytes/);
  assert.equal(tree.match(/SuperSpeed Endpoint Companion:/g)?.length, 2);
  assert.match(tree, /bmAttributes +0x00 +no streams/);
});

Deno.test("tree: IAD, class-specific descriptors as hex, drivers per interface", () => {
  const tree = formatDeviceTree(at("1-2"));
  assert.doesNotMatch(tree, /usbfs/, "no usbfs section when not asked");
  const iad = tree.indexOf("Interface Association:");
  const first = tree.indexOf("Interface Descriptor:");
  assert.ok(
    iad > 0 && iad < first,
    "the IAD comes before the interfaces it groups",
  );
  assert.match(tree, /bFunctionClass +0x02 +Communications/);
  // CDC functional descriptors are decoded by the class registry.
  assert.match(tree, /CDC Header:\n( +b\w+ +\d+\n){3} +bcdCDC +1\.10/);
  assert.match(
    tree,
    /CDC ACM:\n[^]*?bmCapabilities +0x02 +line coding and serial state/,
  );
  assert.match(
    tree,
    /CDC Union:\n[^]*?bMasterInterface +0\n +bSlaveInterface +1/,
  );
  assert.doesNotMatch(tree, /Class-specific interface descriptor/);
  assert.match(tree, /Interface Descriptor: \(current, driver usb-storage\)/);
  assert.match(tree, /bInterval +9 +32 ms/);
  assert.match(tree, /bInterval +1 +125 us/);
  assert.match(
    tree,
    /bmAttributes +0x03 +Interrupt\n/,
    "no USB 3 usage on a USB 2 device",
  );
});

Deno.test("tree: HID descriptors, low speed intervals, self-powered hub", () => {
  const kb = formatDeviceTree(at("1-1.4"));
  assert.match(
    kb,
    /HID Device Descriptor:\n( +b\w+ +\d+\n){2} +bcdHID +1\.10\n +bCountryCode +0 +Not supported\n +bNumDescriptors +1\n +bDescriptorType +34 +Report\n +wDescriptorLength +65/,
  );
  assert.match(kb, /bcdDevice +64\.10 +0x6410/, "bcdDevice reads as USB BCD");
  assert.match(kb, /bInterval +10 +10 ms/);
  assert.match(kb, /bmAttributes +0xa0 +bus powered, remote wakeup/);
  assert.match(kb, /iSerialNumber +0\n/);
  const hub = formatDeviceTree(at("1-1"));
  assert.match(hub, /bmAttributes +0xe0 +self powered, remote wakeup/);
  assert.match(hub, /bInterval +12 +256 ms/);
});

Deno.test("tree: isochronous alternates and a high-bandwidth endpoint", () => {
  const withConfigs = (
    hex: string,
    speed: DeviceInfo["speed"],
  ): DeviceInfo => {
    const parsed = parseDescriptors(readHexFixture(hex));
    return {
      ...at("2-1"),
      speed,
      device: parsed.device,
      configurations: parsed.configurations,
    };
  };
  const ss = formatDeviceTree(withConfigs("sourcesink-ss-iso", "super"));
  assert.match(ss, /bmAttributes +0x01 +Isochronous, none, data/);
  assert.match(
    ss,
    /bMaxBurst +2 +3 packet\(s\) per burst\n +bmAttributes +0x01 +mult 2/,
  );
  assert.match(ss, /wBytesPerInterval +6144/);
  assert.match(ss, /bInterval +4 +1 ms/);
  assert.match(ss, /bAlternateSetting +1/);
  assert.match(
    ss,
    /Interface Descriptor:\n(.|\n)*bAlternateSetting +1/,
    "alt 1 is not current",
  );
  const hs = formatDeviceTree(withConfigs("sourcesink-hs-iso", "high"));
  assert.match(hs, /wMaxPacketSize +0x1400 +3 x 1024 bytes/);
});

Deno.test("tree: unavailable capabilities and unparsable configurations say why", () => {
  const err = new UsbError(
    "access-denied",
    "cannot open /dev/bus/usb/002/002",
    {
      hint: "add a udev rule",
    },
  );
  const broken: DeviceInfo = {
    ...at("2-1"),
    configurations: [],
    descriptorError: new UsbError(
      "invalid-descriptor",
      "invalid descriptor at byte 20: oops",
    ),
  };
  const tree = formatDeviceTree(broken, { error: err });
  assert.match(
    tree,
    /usbfs: capabilities unavailable\n +error\[access-denied\]: cannot open/,
  );
  assert.match(tree, /hint: add a udev rule/);
  assert.match(
    tree,
    /configurations could not be parsed:\n +error\[invalid-descriptor\]/,
  );
  assert.match(tree, /09 02 2c 00 01 01 04 80 01/, "the raw bytes are shown");
});

Deno.test("toJson: plain data with hex bytes, nulls for absent values", () => {
  const json = toJson(at("1-1")) as Record<string, unknown>;
  const text = JSON.stringify(json);
  const back = JSON.parse(text);
  assert.equal(back.vendorId, 0x05e3);
  assert.equal(back.descriptors, hexBytes(readHexFixture("hub-hs")));
  assert.equal(back.manufacturerName, null);
  assert.equal(back.descriptorError, null);
  assert.equal(
    back.configurations[0].interfaces[0].alternates[0].endpoints[0].raw,
    "0705810301000c",
  );
  assert.deepEqual(Object.keys(back).sort(), Object.keys(at("2-1")).sort());
  assert.deepEqual(
    sysfsDisagreements(back),
    [],
    "the JSON form carries the same facts",
  );
  const e = toJson(new UsbError("busy", "held", { hint: "unbind" }));
  assert.deepEqual(e, { code: "busy", message: "held", hint: "unbind" });
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  assert.deepEqual(toJson(cyclic), { a: 1, self: "[cycle]" });
  assert.deepEqual(toJson({ f: () => 1, n: 2n, list: [undefined] }), {
    n: "2",
    list: [null],
  });
});

Deno.test("cli: usb list, --all, --json", async () => {
  const table = await usb("list", "--sysfs-root", SYSFS);
  assert.equal(table.status, 0);
  assert.equal(table.out.split("\n").length, 5);
  assert.doesNotMatch(table.out, /xHCI/);
  const all = await usb("list", "--all", "--sysfs-root", SYSFS);
  assert.equal(all.out.split("\n").length, 7);
  const json = await usb("list", "--json", "--sysfs-root", SYSFS);
  assert.equal(json.status, 0);
  const list = JSON.parse(json.out);
  assert.equal(list.length, 4);
  const gadget = list.find((d: { portPath: string }) => d.portPath === "2-1");
  assert.equal(gadget.vendorId, 0x0525);
  assert.equal(gadget.productId, 0xa4a0);
  assert.equal(gadget.descriptors, hexBytes(readHexFixture("sourcesink-ss")));
  assert.equal(
    JSON.parse(
      (await usb("list", "--json", "--all", "--sysfs-root", SYSFS)).out,
    ).length,
    6,
  );
});

Deno.test("cli: nothing attached gets a friendly line and status 0", async () => {
  const empty = await Deno.makeTempDir();
  try {
    const none = await usb("list", "--sysfs-root", empty);
    assert.equal(none.status, 0);
    assert.match(
      none.out,
      /no USB devices found; on a machine with no USB try `deno task demo`/,
    );
    assert.equal(
      (await usb("list", "--json", "--sysfs-root", empty)).out,
      "[]",
    );
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
  const roots = await usb(
    "list",
    "--sysfs-root",
    SYSFS,
    "--dev-root",
    "/nonexistent",
  );
  assert.equal(roots.status, 0);
});

Deno.test("cli: usb describe, text and JSON", async () => {
  const text = await usb("describe", "0525:a4a0", "--sysfs-root", SYSFS);
  assert.equal(text.status, 0, text.err);
  assert.match(text.out, /^Bus 002 Device 002: ID 0525:a4a0/);
  // There is no USB on this machine: the capabilities are unavailable, and
  // the tree is printed all the same.
  assert.match(text.out, /usbfs: capabilities unavailable\n +error\[/);
  assert.match(text.out, /SuperSpeed Endpoint Companion/);

  const json = await usb("describe", "2-1", "--json", "--sysfs-root", SYSFS);
  assert.equal(json.status, 0);
  const d = JSON.parse(json.out);
  assert.equal(d.portPath, "2-1");
  assert.equal(d.capabilities, null);
  assert.equal(typeof d.capabilitiesError.code, "string");
  assert.deepEqual(sysfsDisagreements(d), []);
});

Deno.test("cli: usage errors, not-found and ambiguous exit 2 with a described error", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["describe"],
      /^error\[invalid-argument\]: usb describe needs a device selector/,
    ],
    [
      ["describe", "dead:beef"],
      /^error\[not-found\]: no USB device matches "dead:beef"\n {2}hint: attached/,
    ],
    [["describe", "1d6b:"], /^error\[ambiguous\]: 3 USB devices match "1d6b:"/],
    [["describe", "2-1", "extra"], /unexpected argument "extra"/],
    [
      ["list", "--bogus"],
      /^error\[invalid-argument\]: Unknown option '--bogus'/,
    ],
    [
      ["frobnicate"],
      /^error\[invalid-argument\]: unknown command "frobnicate"\n {2}hint: the commands are: list, describe/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await usb(
      ...args,
      ...(args[0] === "frobnicate" ? [] : ["--sysfs-root", SYSFS]),
    );
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.err, message);
    assert.doesNotMatch(r.err, /\n +at /, "no stack trace");
    assert.equal(r.out, "");
  }
});

Deno.test("cli: help", async () => {
  const top = await usb("--help");
  assert.equal(top.status, 0);
  assert.match(top.out, /list +list the USB devices attached/);
  assert.match(top.out, /describe +show a device's descriptors/);
  assert.equal((await usb()).status, 2);
  for (const cmd of ["list", "describe"]) {
    const h = await usb(cmd, "--help");
    assert.equal(h.status, 0);
    assert.match(h.out, new RegExp(`^usb ${cmd}`));
    assert.equal((await usb("help", cmd)).out, h.out);
  }
});

Deno.test("cli: an unexpected error is one line, status 1; a UsbError keeps its code", async () => {
  commands.boom = {
    summary: "fails",
    help: "usb boom",
    run: () =>
      Promise.reject(new TypeError("x is not a function\n  more detail")),
  };
  commands.denied = {
    summary: "fails",
    help: "usb denied",
    run: () =>
      Promise.reject(new UsbError("access-denied", "no", { hint: "udev" })),
  };
  try {
    const boom = await usb("boom");
    assert.equal(boom.status, 1);
    assert.equal(
      boom.err,
      "error: x is not a function (USBKIT_DEBUG=1 shows the stack)",
    );
    const denied = await usb("denied");
    assert.equal(denied.status, 1);
    assert.equal(denied.err, "error[access-denied]: no\n  hint: udev");
  } finally {
    delete commands.boom;
    delete commands.denied;
  }
});
