// Host unit tests for the pure parts of kernel/: module order, CLI flags to
// Bench, bench resolution, the bzImage payload finder, the cpio writer, the
// end-of-stream scanner, the rendered guest script and the QEMU command line.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  type Bench,
  COMPOSITE_MODULES,
  defaultBench,
  fullBench,
  resolveBench,
  STORAGE_SECTOR_SIZE,
  storageSector,
  usbId,
} from "../../kernel/bench.ts";
import { findKernelPayload, isStaticElf } from "../../kernel/bzimage.ts";
import {
  parseGadgetFlag,
  parseVmArgs,
  splitCommand,
  UsageError,
} from "../../kernel/cli.ts";
import { writeCpio } from "../../kernel/cpio.ts";
import { EofScanner, indexOfBytes } from "../../kernel/eof.ts";
import {
  loadOrder,
  moduleName,
  parseModulesBuiltin,
  parseModulesDep,
} from "../../kernel/modules.ts";
import {
  benchInfoTemplate,
  benchModules,
  dummyHcdParams,
  keepPaths,
  renderBenchScript,
  splitModuleSpec,
  unquotePlaceholders,
  withDevices,
  withVhci,
} from "../../kernel/plan.ts";
import { kernelCmdline, qemuArgs } from "../../kernel/qemu.ts";
import { defaultGuestCwd, guestEnv } from "../../kernel/run.ts";
import { parseAptDepends } from "../../kernel/setup.ts";
import { qemuEscape, shQuote } from "../../kernel/util.ts";

// An excerpt of modules.dep from linux-image-6.1.0-56-amd64 after depmod.
const MODULES_DEP = `
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/usb/common/usb-common.ko:
kernel/drivers/usb/core/usbcore.ko: kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/gadget/udc/udc-core.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/gadget/udc/dummy_hcd.ko: kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/fs/configfs/configfs.ko:
kernel/drivers/usb/gadget/libcomposite.ko: kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_ss_lb.ko: kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_acm.ko: kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/function/u_serial.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/u_serial.ko: kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/host/xhci-hcd.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/host/xhci-pci.ko: kernel/drivers/usb/host/xhci-hcd.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/misc/usbtest.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
`;

// The composite gadgets' function modules, from linux-image-6.1.0-57-amd64.
const COMPOSITE_DEP = `
kernel/drivers/usb/gadget/function/usb_f_serial.ko: kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/function/u_serial.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/u_ether.ko: kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/gadget/function/usb_f_ncm.ko: kernel/drivers/usb/gadget/function/u_ether.ko kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_ecm.ko: kernel/drivers/usb/gadget/function/u_ether.ko kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_rndis.ko: kernel/drivers/usb/gadget/function/u_ether.ko kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_mass_storage.ko: kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_midi.ko: kernel/sound/core/snd-rawmidi.ko kernel/sound/core/snd-seq-device.ko kernel/sound/core/snd.ko kernel/sound/soundcore.ko kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_hid.ko: kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_printer.ko: kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/sound/soundcore.ko:
kernel/sound/core/snd.ko: kernel/sound/soundcore.ko
kernel/sound/core/snd-seq-device.ko: kernel/sound/core/snd.ko kernel/sound/soundcore.ko
kernel/sound/core/snd-rawmidi.ko: kernel/sound/core/snd-seq-device.ko kernel/sound/core/snd.ko kernel/sound/soundcore.ko
`;

const db = parseModulesDep(MODULES_DEP);
/** The excerpt with the composite gadgets' modules: what fullBench loads. */
const fullDb = parseModulesDep(MODULES_DEP + COMPOSITE_DEP);
const names = (xs: { name: string }[]) => xs.map((x) => x.name);

function assertDepsFirst(order: string[]) {
  const pos = new Map(order.map((n, i) => [n, i]));
  for (const n of order) {
    for (const d of db.get(n)?.deps ?? []) {
      assert.ok(
        (pos.get(d) ?? Infinity) < (pos.get(n) ?? -1),
        `${d} must load before ${n}`,
      );
    }
  }
  assert.equal(new Set(order).size, order.length, "no module twice");
}

Deno.test("moduleName folds dashes and compression suffixes", () => {
  assert.equal(moduleName("kernel/drivers/usb/host/xhci-pci.ko"), "xhci_pci");
  assert.equal(moduleName("a/usb-common.ko.xz"), "usb_common");
  assert.equal(moduleName("b.ko.zst"), "b");
  assert.equal(moduleName("udc-core"), "udc_core");
});

Deno.test("parseModulesDep reads paths and dependencies", () => {
  const e = db.get("dummy_hcd");
  assert.ok(e);
  assert.equal(e.path, "kernel/drivers/usb/gadget/udc/dummy_hcd.ko");
  assert.deepEqual(e.deps, ["udc_core", "usbcore", "usb_common"]);
  assert.deepEqual(db.get("9pnet")?.deps, []);
});

Deno.test("loadOrder: the base modules in the order BENCH-NOTES saw", () => {
  const order = names(
    loadOrder(db, ["virtio_pci", "virtio_console", "9pnet_virtio", "9p"]),
  );
  assertDepsFirst(order);
  assert.deepEqual(order, [
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_ring",
    "virtio",
    "virtio_pci",
    "virtio_console",
    "9pnet",
    "9pnet_virtio",
    "netfs",
    "fscache",
    "9p",
  ]);
});

Deno.test("loadOrder: gadget and xhci stacks, deps first, each once", () => {
  const order = names(
    loadOrder(db, ["dummy_hcd", "usb_f_ss_lb", "xhci_pci", "usbtest"]),
  );
  assertDepsFirst(order);
  assert.deepEqual(order, [
    "usb_common",
    "usbcore",
    "udc_core",
    "dummy_hcd",
    "configfs",
    "libcomposite",
    "usb_f_ss_lb",
    "xhci_hcd",
    "xhci_pci",
    "usbtest",
  ]);
});

Deno.test("loadOrder skips built-ins and names missing modules", () => {
  const builtin = parseModulesBuiltin("kernel/fs/configfs/configfs.ko\n");
  const order = names(loadOrder(db, ["usb_f_ss_lb"], builtin));
  assert.ok(!order.includes("configfs"));
  assert.throws(
    () => loadOrder(db, ["usb_f_midi"]),
    /usb_f_midi not found/,
  );
  const broken = parseModulesDep("a.ko: b.ko\n");
  assert.throws(() => loadOrder(broken, ["a"]), /b not found.*needed by a/);
});

Deno.test("loadOrder rejects a dependency cycle", () => {
  const cyc = parseModulesDep("a.ko: b.ko\nb.ko: a.ko\n");
  assert.throws(() => loadOrder(cyc, ["a"]), /cycle/);
});

Deno.test("benchModules: dummy_hcd params, xhci after gadgets, extras last", () => {
  const rb = resolveBench({ ...fullBench, modules: ["usbtest"] });
  const loads = benchModules(
    rb,
    fullDb,
    new Set(),
    new Set(["virtio", "virtio_ring"]),
    (n) => `/lib/modules/${n}.ko`,
  );
  const order = loads.map((l) => l.name);
  const pos = new Map(order.map((n, i) => [n, i]));
  for (const n of order) {
    for (const d of fullDb.get(n)?.deps ?? []) {
      assert.ok(pos.get(d)! < pos.get(n)!, `${d} must load before ${n}`);
    }
  }
  assert.equal(new Set(order).size, order.length, "no module twice");
  assert.ok(order.indexOf("dummy_hcd") < order.indexOf("xhci_pci"));
  assert.equal(order.at(-1), "usbtest");
  // Three gadgets and one spare UDC: four controllers.
  assert.equal(
    loads.find((l) => l.name === "dummy_hcd")?.params,
    "is_super_speed=1 num=4",
  );
  // The composite gadgets' function modules, and what they need (ALSA's
  // core for MIDI), after the gadgets' own and before xhci.
  for (const m of [...COMPOSITE_MODULES, "u_ether", "snd", "snd_rawmidi"]) {
    assert.ok(order.includes(m), m);
    assert.ok(order.indexOf(m) > order.indexOf("usb_f_ss_lb"), m);
    assert.ok(order.indexOf(m) < order.indexOf("xhci_pci"), m);
  }
  assert.equal(loads[0]?.guestPath, "/lib/modules/usb_common.ko");
  // No gadgets, no dummy_hcd; no QEMU devices, no xhci.
  const none = benchModules(
    resolveBench({ speed: "super", gadgets: [], qemuDevices: [] }),
    db,
    new Set(),
    new Set(),
    (n) => n,
  );
  assert.deepEqual(none, []);
  // Spare UDCs alone still need dummy_hcd, one controller each, and
  // gadget modules alone their stack.
  const spare = benchModules(
    resolveBench({
      speed: "high",
      gadgets: [],
      qemuDevices: [],
      spareUdcs: 2,
      gadgetModules: ["usb_f_hid"],
    }),
    fullDb,
    new Set(),
    new Set(),
    (n) => n,
  );
  assert.deepEqual(spare.map((l) => l.name), [
    "usb_common",
    "usbcore",
    "udc_core",
    "dummy_hcd",
    "configfs",
    "libcomposite",
    "usb_f_hid",
  ]);
  assert.equal(spare[3]?.params, "is_super_speed=0 is_high_speed=1 num=2");
  // Without spares or gadget modules (defaultBench), nothing more.
  const plain = benchModules(
    resolveBench(defaultBench),
    fullDb,
    new Set(),
    new Set(),
    (n) => n,
  ).map((l) => l.name);
  assert.ok(!plain.includes("u_ether") && !plain.includes("snd"));
});

Deno.test("dummyHcdParams and splitModuleSpec", () => {
  assert.equal(dummyHcdParams("super", 1), "is_super_speed=1 num=1");
  assert.equal(
    dummyHcdParams("high", 3),
    "is_super_speed=0 is_high_speed=1 num=3",
  );
  assert.deepEqual(splitModuleSpec("usbtest"), {
    name: "usbtest",
    params: "",
  });
  assert.deepEqual(splitModuleSpec("usb-storage quirks=1:2:u"), {
    name: "usb_storage",
    params: "quirks=1:2:u",
  });
  assert.throws(() => splitModuleSpec("x a;b"), /unsupported/);
});

Deno.test("CLI: no flags is the default bench", () => {
  const c = parseVmArgs(["--", "sh", "-c", "exit 7"]);
  assert.deepEqual(c.command, ["sh", "-c", "exit 7"]);
  assert.equal(c.bench.speed, "super");
  assert.deepEqual(c.bench.gadgets, defaultBench.gadgets);
  assert.deepEqual(c.bench.qemuDevices, []);
  assert.equal(c.bench.modules, undefined);
});

Deno.test("CLI: flags map onto the Bench", () => {
  const c = parseVmArgs([
    "--gadget",
    "sourcesink:bulk_buflen=65536,pattern=0",
    "--gadget=loopback",
    "--high-speed",
    "--storage",
    "--storage=/img/disk.raw",
    "--kbd",
    "--serial",
    "--audio",
    "--module",
    "usbtest",
    "--memory",
    "512",
    "--timeout=30",
    "--env",
    "A=b=c",
    "--console",
    "-v",
    "--",
    "true",
  ]);
  const expected: Bench = {
    speed: "high",
    gadgets: [
      {
        function: "sourcesink",
        attributes: { bulk_buflen: "65536", pattern: "0" },
      },
      { function: "loopback" },
    ],
    qemuDevices: [
      { kind: "storage" },
      { kind: "storage", image: "/img/disk.raw" },
      { kind: "kbd" },
      { kind: "serial" },
      { kind: "audio" },
    ],
    modules: ["usbtest"],
    memoryMiB: 512,
    timeoutSec: 30,
  };
  assert.deepEqual(c.bench, expected);
  assert.deepEqual(c.options, {
    console: true,
    verbose: true,
    env: { A: "b=c" },
  });
});

Deno.test("CLI: --full is fullBench; repeated kinds are not doubled", () => {
  const c = parseVmArgs(["--full", "--kbd", "--storage", "true"]);
  assert.deepEqual(c.bench.gadgets, fullBench.gadgets);
  assert.deepEqual(c.bench.qemuDevices, fullBench.qemuDevices);
  assert.deepEqual(c.command, ["true"]);
  const g = parseVmArgs(["--full", "--gadget", "lb", "--", "x"]);
  assert.deepEqual(g.bench.gadgets, [{ function: "loopback" }]);
  assert.deepEqual(parseVmArgs(["--no-gadgets", "x"]).bench.gadgets, []);
});

Deno.test("CLI: --device adds vhci-hcd, replaces the default gadget, keeps the files in order", () => {
  const c = parseVmArgs([
    "--device",
    "scripts/examples/vendor_device.ts",
    "--device=my device.ts",
    "--",
    "deno",
    "task",
    "usb",
    "run",
    "recipes/vendor-device.yaml",
  ]);
  assert.deepEqual(c.devices, [
    "scripts/examples/vendor_device.ts",
    "my device.ts",
  ]);
  assert.deepEqual(c.command, [
    "deno",
    "task",
    "usb",
    "run",
    "recipes/vendor-device.yaml",
  ]);
  assert.deepEqual(c.bench.gadgets, []);
  assert.deepEqual(c.bench.modules, ["vhci-hcd"]);
  // Without --, the command starts after the file, not at it.
  const bare = parseVmArgs(["--device", "d.ts", "lsusb", "-t"]);
  assert.deepEqual(bare.devices, ["d.ts"]);
  assert.deepEqual(bare.command, ["lsusb", "-t"]);
  // Asked-for gadgets and modules stay; vhci-hcd is not doubled.
  const g = parseVmArgs([
    "--gadget",
    "lb",
    "--module",
    "vhci_hcd",
    "--module",
    "usbtest",
    "--device",
    "d.ts",
    "--",
    "x",
  ]);
  assert.deepEqual(g.bench.gadgets, [{ function: "loopback" }]);
  assert.deepEqual(g.bench.modules, ["vhci_hcd", "usbtest"]);
  const full = parseVmArgs(["--full", "--device", "d.ts", "--", "x"]);
  assert.deepEqual(full.bench.gadgets, fullBench.gadgets);
  assert.deepEqual(full.bench.modules, ["vhci-hcd"]);
  assert.deepEqual(parseVmArgs(["--", "x"]).devices, []);
});

Deno.test("withDevices: usb serve --drivers runs the command; withVhci", () => {
  assert.deepEqual(
    withDevices("/p", ["/p/a.ts", "/q/b.ts"], ["sh", "-c", "exit 3"]),
    [
      "deno",
      "run",
      "-A",
      "--cached-only",
      "/p/scripts/usb.ts",
      "serve",
      "--drivers",
      "/p/a.ts",
      "/q/b.ts",
      "--",
      "sh",
      "-c",
      "exit 3",
    ],
  );
  assert.deepEqual(withDevices("/p", [], ["true"]), ["true"]);
  assert.deepEqual(withVhci([]), ["vhci-hcd"]);
  assert.deepEqual(withVhci(["vhci-hcd nports=8"]), ["vhci-hcd nports=8"]);
});

Deno.test("CLI: the command starts at -- or the first non-option", () => {
  assert.deepEqual(splitCommand(["--memory", "512", "ls", "-l"]), {
    ours: ["--memory", "512"],
    command: ["ls", "-l"],
  });
  assert.deepEqual(splitCommand(["--kbd", "--", "--weird"]), {
    ours: ["--kbd"],
    command: ["--weird"],
  });
  assert.equal(parseVmArgs(["--help"]).help, true);
});

Deno.test("CLI: mistakes are UsageErrors", () => {
  for (
    const bad of [
      ["--bogus", "--", "x"],
      ["--memory", "lots", "--", "x"],
      ["--timeout", "-1", "--", "x"],
      ["--gadget", "hid", "--", "x"],
      ["--gadget", "ss:noequals", "--", "x"],
      ["--env", "NOVALUE", "--", "x"],
      ["--no-gadgets", "--gadget", "ss", "--", "x"],
      ["--kbd"],
      ["--device", "", "--", "x"],
      ["--device"],
    ]
  ) {
    assert.throws(() => parseVmArgs(bad), UsageError, bad.join(" "));
  }
  assert.deepEqual(parseGadgetFlag("SS"), { function: "sourcesink" });
});

Deno.test("resolveBench fills in names, UDCs, IDs and serials", () => {
  const r = resolveBench(fullBench);
  assert.deepEqual(
    r.gadgets.map((g) => [g.name, g.udc, g.id, g.serial, g.functionDir]),
    [
      [
        "sourcesink0",
        "dummy_udc.0",
        "0525:a4a0",
        "usbkit-ss-0001",
        "SourceSink.0",
      ],
      ["loopback0", "dummy_udc.1", "0525:a4ab", "usbkit-lb-0001", "Loopback.0"],
      ["acm0", "dummy_udc.2", "1d6b:0104", "usbkit-acm-0001", "acm.0"],
    ],
  );
  // The spare UDC follows the gadgets'; the function modules are as given.
  assert.deepEqual(r.spareUdcs, ["dummy_udc.3"]);
  assert.deepEqual(r.gadgetModules, [...COMPOSITE_MODULES]);
  assert.deepEqual(resolveBench(defaultBench).spareUdcs, []);
  assert.deepEqual(resolveBench(defaultBench).gadgetModules, []);
  // A bench spread from fullBench with other modules keeps both.
  const spread = resolveBench({ ...fullBench, modules: ["usbtest"] });
  assert.deepEqual(spread.spareUdcs, ["dummy_udc.3"]);
  assert.throws(
    () => resolveBench({ ...defaultBench, spareUdcs: -1 }),
    /spareUdcs -1/,
  );
  assert.throws(
    () => resolveBench({ ...defaultBench, spareUdcs: 1.5 }),
    /spareUdcs 1.5/,
  );
  assert.throws(
    () => resolveBench({ ...defaultBench, spareUdcs: 32 }),
    /at most 32/,
  );
  assert.equal(
    resolveBench({ ...defaultBench, spareUdcs: 31 }).spareUdcs.at(-1),
    "dummy_udc.31",
  );
  assert.deepEqual(
    r.qemuDevices.map((d) => [d.name, d.driver, d.id, d.serial]),
    [
      ["storage0", "usb-storage", "46f4:0001", "usbkit-storage-0001"],
      ["kbd0", "usb-kbd", "0627:0001", "usbkit-kbd-0001"],
      ["serial0", "usb-serial", "0403:6001", "usbkit-serial-0001"],
      ["audio0", "usb-audio", "46f4:0002", "usbkit-audio-0001"],
    ],
  );
  const st = r.qemuDevices[0];
  assert.equal(st?.snapshot, true);
  assert.equal(st?.patterned, true);
  assert.equal(st?.sizeBytes, 16 * 1024 * 1024);
  assert.equal(r.memoryMiB, 1024);
  assert.equal(r.timeoutSec, 600);
  const two = resolveBench({
    speed: "super",
    gadgets: [{ function: "sourcesink" }, { function: "sourcesink" }],
    qemuDevices: [],
  });
  assert.deepEqual(two.gadgets.map((g) => g.serial), [
    "usbkit-ss-0001",
    "usbkit-ss-0002",
  ]);
});

Deno.test("resolveBench rejects duplicates and bad values", () => {
  const base = { speed: "super" as const, qemuDevices: [] };
  assert.throws(
    () =>
      resolveBench({
        ...base,
        gadgets: [{ function: "sourcesink", name: "a" }, {
          function: "loopback",
          name: "a",
        }],
      }),
    /duplicate device name/,
  );
  assert.throws(
    () =>
      resolveBench({
        ...base,
        gadgets: [{ function: "sourcesink", serial: "x" }, {
          function: "loopback",
          serial: "x",
        }],
      }),
    /duplicate serial/,
  );
  assert.throws(
    () =>
      resolveBench({
        ...base,
        gadgets: [{ function: "sourcesink", serial: "has space" }],
      }),
    /serial/,
  );
  assert.throws(
    () =>
      resolveBench({
        ...base,
        gadgets: [{ function: "sourcesink", vendorId: 0x10000 }],
      }),
    /16-bit/,
  );
  assert.throws(
    () => resolveBench({ ...base, gadgets: [], memoryMiB: 64 }),
    /at least 128/,
  );
  assert.throws(
    () =>
      resolveBench({
        ...base,
        gadgets: [{ function: "sourcesink", attributes: { "../x": 1 } }],
      }),
    /attribute name/,
  );
});

Deno.test("storageSector: LBA first, then a per-sector pattern", () => {
  const s = storageSector(0x01020304);
  assert.equal(s.length, STORAGE_SECTOR_SIZE);
  assert.deepEqual([...s.subarray(0, 8)], [4, 3, 2, 1, 0, 0, 0, 0]);
  assert.equal(s[8], (0x01020304 * 7 + 8) & 0xff);
  assert.notDeepEqual(storageSector(1), storageSector(2));
  assert.equal(usbId(0x46f4, 1), "46f4:0001");
});

Deno.test("findKernelPayload uses the boot protocol header", () => {
  // A synthetic bzImage: setup_sects = 1, payload at 0x100 into the
  // protected-mode part, 10 bytes of which 4 are the size trailer.
  const img = new Uint8Array(4096);
  const v = new DataView(img.buffer);
  img[0x1f1] = 1;
  img.set([0x48, 0x64, 0x72, 0x53], 0x202); // HdrS
  v.setUint16(0x206, 0x020f, true);
  v.setUint32(0x248, 0x100, true);
  v.setUint32(0x24c, 10, true);
  const at = 2 * 512 + 0x100;
  img.set([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], at);
  v.setUint32(at + 6, 123456, true);
  // A decoy gzip magic earlier in the file must not win.
  img.set([0x1f, 0x8b, 0x08], 0x300);
  assert.deepEqual(findKernelPayload(img), {
    offset: at,
    length: 6,
    format: "xz",
    uncompressedSize: 123456,
  });
});

Deno.test("findKernelPayload falls back to the first magic", () => {
  const img = new Uint8Array(100);
  img.set([0x28, 0xb5, 0x2f, 0xfd], 40); // zstd
  img.set([0x1f, 0x8b, 0x08], 60); // gzip
  const p = findKernelPayload(img);
  assert.equal(p.format, "zstd");
  assert.equal(p.offset, 40);
  assert.throws(() => findKernelPayload(new Uint8Array(10)), /no compressed/);
});

Deno.test("the host busybox is recognised as static", async () => {
  // Debian's busybox-static is what the guest init runs.
  const bb = await Deno.readFile("/bin/busybox").catch(() => null);
  if (bb !== null) assert.equal(isStaticElf(bb), true);
  const sh = await Deno.readFile("/bin/sh").catch(() => null);
  if (sh !== null && sh[0] === 0x7f) assert.equal(isStaticElf(sh), false);
});

Deno.test("writeCpio output parses back as newc", () => {
  const data = new TextEncoder().encode("hello");
  const a = writeCpio([
    { type: "dir", path: "etc" },
    { type: "file", path: "/etc/x", data, mode: 0o600 },
    { type: "symlink", path: "sh", target: "busybox" },
    { type: "char", path: "console", major: 5, minor: 1 },
  ]);
  const td = new TextDecoder();
  const seen: [string, number, string][] = [];
  let at = 0;
  for (;;) {
    assert.equal(td.decode(a.subarray(at, at + 6)), "070701");
    const f = (i: number) =>
      parseInt(td.decode(a.subarray(at + 6 + i * 8, at + 14 + i * 8)), 16);
    const mode = f(1);
    const size = f(6);
    const nameLen = f(11);
    const name = td.decode(a.subarray(at + 110, at + 110 + nameLen - 1));
    let p = at + 110 + nameLen;
    p += (4 - (p % 4)) % 4;
    const body = td.decode(a.subarray(p, p + size));
    if (name === "console") assert.deepEqual([f(9), f(10)], [5, 1]);
    seen.push([name, mode, body]);
    p += size;
    p += (4 - (p % 4)) % 4;
    at = p;
    if (name === "TRAILER!!!") break;
  }
  assert.equal(at, a.length);
  assert.deepEqual(seen, [
    ["etc", 0o040755, ""],
    ["etc/x", 0o100600, "hello"],
    ["sh", 0o120777, "busybox"],
    ["console", 0o020600, ""],
    ["TRAILER!!!", 0, ""],
  ]);
});

Deno.test("EofScanner finds the token across every chunk split", () => {
  const enc = new TextEncoder();
  const token = enc.encode("usbkit-eof-1234");
  const stream = enc.encode(
    "data usbkit-eof-12 is not it\nusbkit-eof-1234trailing",
  );
  for (let cut = 0; cut <= stream.length; cut++) {
    for (const cut2 of [cut, Math.min(stream.length, cut + 3)]) {
      const s = new EofScanner(token);
      const parts = [
        s.push(stream.subarray(0, cut)),
        s.push(stream.subarray(cut, cut2)),
        s.push(stream.subarray(cut2)),
      ];
      const out = new TextDecoder().decode(
        new Uint8Array(parts.flatMap((p) => [...p])),
      );
      assert.equal(out, "data usbkit-eof-12 is not it\n", `cut ${cut}/${cut2}`);
      assert.equal(s.done, true);
    }
  }
  const s = new EofScanner(token);
  assert.deepEqual(
    [...s.push(enc.encode("abc usbkit"))],
    [..."abc "].map((c) => c.charCodeAt(0)),
  );
  assert.deepEqual(new TextDecoder().decode(s.flush()), "usbkit");
  assert.equal(indexOfBytes(enc.encode("aab"), enc.encode("ab")), 1);
  assert.equal(indexOfBytes(enc.encode("a"), enc.encode("ab")), -1);
});

Deno.test("bench info template becomes JSON once locations are filled", () => {
  const rb = resolveBench(fullBench);
  const info = benchInfoTemplate(rb, "6.1.0-56-amd64", ["dummy_hcd"]);
  const text = unquotePlaceholders(JSON.stringify(info, null, 2));
  // What the guest init does, line by line.
  const filled = text.split("\n").map((line) =>
    line.replace(
      /@LOC:([^@]+)@/,
      (_, serial) =>
        JSON.stringify({ busnum: 2, devnum: 2, port: "2-1", serial }),
    )
  ).join("\n");
  const parsed = JSON.parse(filled);
  assert.equal(parsed.gadgets[0].location.serial, "usbkit-ss-0001");
  assert.equal(parsed.qemuDevices[3].location.serial, "usbkit-audio-0001");
  assert.equal(parsed.qemuDevices[0].kind, "storage");
  assert.deepEqual(parsed.spareUdcs, ["dummy_udc.3"]);
  assert.equal(parsed.version, 1);
  // Every placeholder sits on a line of its own (the init's loop needs it).
  for (const l of text.split("\n")) {
    assert.ok((l.match(/@LOC:/g) ?? []).length <= 1);
  }
});

Deno.test("renderBenchScript is valid sh and quotes everything", async () => {
  const rb = resolveBench({
    speed: "super",
    gadgets: [
      {
        function: "sourcesink",
        product: 'it\'s a "test" $(reboot)',
        attributes: { bulk_buflen: 4096, pattern: 2 },
      },
      { function: "loopback", bind: false },
    ],
    qemuDevices: [{ kind: "kbd" }],
  });
  const script = renderBenchScript({
    eofToken: "usbkit-eof-x",
    project: "/work/main",
    keepPaths: ["/root/.npm/deno"],
    hostDenoDir: "/root/.cache/deno",
    modules: [{
      name: "dummy_hcd",
      guestPath: "/lib/modules/dummy_hcd.ko",
      params: "num=2",
    }],
    bench: rb,
    expectSerials: ["usbkit-ss-0001", "usbkit-kbd-0001"],
    enumTimeoutSec: 30,
    info: benchInfoTemplate(rb, "k", ["dummy_hcd"]),
    argv: ["sh", "-c", "echo 'hi'; exit 7"],
    env: { PATH: "/usr/bin", X: "a b" },
    cwd: "/work/main",
  });
  assert.match(script, /insmod '\/lib\/modules\/dummy_hcd.ko' num=2 \|\| die/);
  assert.match(
    script,
    /cfg "\$G"\/functions\/SourceSink.0\/bulk_buflen '4096'/,
  );
  assert.match(script, /cfg "\$G"\/UDC dummy_udc.0/);
  assert.doesNotMatch(script, /UDC dummy_udc.1/, "bind: false");
  assert.match(script, /'sh' '-c' 'echo '\\''hi'\\''; exit 7'/);
  // Syntax check with the shell that will run it (busybox ash), then run the
  // rendered command function for real with stubbed helpers.
  const bb = (await Deno.stat("/bin/busybox").catch(() => null))
    ? "/bin/busybox"
    : null;
  const sh = bb ? [bb, "sh"] : ["sh"];
  const check = await new Deno.Command(sh[0] ?? "sh", {
    args: [...sh.slice(1), "-n"],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const w = check.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const res = await check.output();
  assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bench.sh`, script);
    const probe = `. ${dir}/bench.sh; bench_info_template | head -c 1`;
    const out = await new Deno.Command(sh[0] ?? "sh", {
      args: [...sh.slice(1), "-c", probe],
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(out.stdout), "{");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kernel/init.sh is valid busybox sh", async () => {
  if (!(await Deno.stat("/bin/busybox").catch(() => null))) return;
  const init = fileURLToPath(new URL("../../kernel/init.sh", import.meta.url));
  const r = await new Deno.Command("/bin/busybox", {
    args: ["sh", "-n", init],
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
});

Deno.test("keepPaths binds back only hidden paths outside the project", () => {
  assert.deepEqual(
    keepPaths(
      [
        "/root/.npm/_npx/x/deno",
        "/root/.npm/_npx/x/deno/sub",
        "/usr/bin",
        "/work/main/sub",
        "/tmp/imgs",
        "/root",
      ],
      "/work/main",
    ),
    ["/root/.npm/_npx/x/deno", "/tmp/imgs"],
  );
  assert.throws(() => keepPaths(["/tmp/a b"], "/p"), /white space/);
});

Deno.test("defaultGuestCwd and guestEnv", () => {
  assert.equal(
    defaultGuestCwd("/work/main", "/work/main/tests"),
    "/work/main/tests",
  );
  assert.equal(defaultGuestCwd("/work/main", "/root/x"), "/work/main");
  assert.equal(defaultGuestCwd("/work/main", "/srv"), "/srv");
  const env = guestEnv("/opt/deno/bin", false, { EXTRA: "1" });
  assert.equal(env.PATH?.split(":")[0], "/opt/deno/bin");
  assert.equal(env.USBKIT_GUEST, "1");
  assert.equal(env.USBKIT_BENCH, "/run/usbkit-bench.json");
  assert.equal(env.NO_COLOR, "1");
  assert.equal(env.EXTRA, "1");
  assert.equal(guestEnv("/d", true, {}).NO_COLOR, undefined);
});

Deno.test("qemuArgs: TCG, shares, ports and every device kind", () => {
  const rb = resolveBench(fullBench);
  for (const d of rb.qemuDevices) {
    if (d.kind === "storage") d.image = "/cache/disk,1.img";
  }
  const a = qemuArgs({
    vmlinux: "/k/vmlinux",
    initramfs: "/k/initramfs.cpio.gz",
    cmdline: kernelCmdline("/tmp/usbkit-vm-1", false),
    memoryMiB: 1024,
    smp: 2,
    project: "/work/main",
    sockets: { console: "/r/c", ctl: "/r/t", stdout: "/r/o", stderr: "/r/e" },
    devices: rb.qemuDevices,
    runDir: "/r",
  });
  const joined = a.join(" ");
  assert.ok(
    joined.includes("-accel tcg,thread=multi -cpu max -M q35 -smp 2 -m 1024M"),
  );
  assert.ok(joined.includes("-kernel /k/vmlinux"));
  assert.ok(
    joined.includes("path=/,security_model=none,readonly=on,multidevs=remap"),
  );
  assert.ok(
    joined.includes(
      "virtserialport,bus=vser.0,chardev=stdout,name=usbkit.stdout",
    ),
  );
  assert.ok(joined.includes("file=/cache/disk,,1.img,snapshot=on"));
  assert.ok(
    joined.includes("usb-kbd,bus=xhci.0,serial=usbkit-kbd-0001,id=kbd0"),
  );
  assert.ok(
    joined.includes("-chardev file,id=chr-serial0,path=/r/serial0.out"),
  );
  assert.ok(joined.includes("-audiodev none,id=aud-audio0"));
  assert.ok(
    a[a.indexOf("-append") + 1]?.includes("usbkit_run=/tmp/usbkit-vm-1"),
  );
  // No QEMU devices: no xhci controller at all.
  const b = qemuArgs({
    vmlinux: "v",
    initramfs: "i",
    cmdline: "c",
    memoryMiB: 256,
    smp: 2,
    project: "/p",
    sockets: { console: "c", ctl: "t", stdout: "o", stderr: "e" },
    devices: [],
    runDir: "/r",
  });
  assert.ok(!b.join(" ").includes("xhci"));
});

Deno.test("small helpers: parseAptDepends, shQuote, qemuEscape", () => {
  assert.equal(
    parseAptDepends(
      "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n",
    ),
    "linux-image-6.1.0-56-amd64",
  );
  assert.equal(parseAptDepends("linux-image-amd64\n"), null);
  assert.equal(shQuote("a'b"), "'a'\\''b'");
  assert.equal(qemuEscape("a,b,,c"), "a,,b,,,,c");
});
