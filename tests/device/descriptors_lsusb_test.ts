// `usb describe --json` against `lsusb -v` (usbutils, from the host's /usr),
// field by field, for every device of the bench: the fullBench gadgets and
// QEMU devices, the root hubs, and composite devices written in TypeScript
// and plugged in over USB/IP (tests/fixtures/descriptor_devices.ts: ACM +
// NCM + ECM with IADs and two configurations, a qualifier and other-speed
// configurations; HID keyboard + mass storage + printer; RNDIS + MIDI +
// generic serial; a SuperSpeed device whose BOS has every capability); and
// the same three composites as real configfs gadgets
// (kernel/composite.ts COMPOSITE_PRESETS), made one at a time on the
// bench's spare dummy_hcd UDC. The test fails on any field that differs,
// and on any section lsusb decodes that usbkit has no decoded counterpart
// for.
//
//   deno task test --device-only -- --filter "/lsusb/"

import assert from "node:assert/strict";
import { listDevices } from "../../src/enumeration.ts";
import type { DeviceInfo } from "../../src/enumeration.ts";
import {
  COMPOSITE_PRESETS,
  createComposite,
  freeSpareUdc,
} from "../../kernel/composite.ts";
import {
  attachLocal,
  type LocalAttachment,
  VHCI_SYSFS,
} from "../../src/usbip/mod.ts";
import { main } from "../../scripts/usb.ts";
import {
  COMPARISON_DEVICES,
  RawDescriptorDevice,
} from "../fixtures/descriptor_devices.ts";
import {
  compareSections,
  LSUSB_014_DEFECTS,
  parseLsusb,
  usbkitSections,
} from "../fixtures/lsusb.ts";

const LSUSB = "/usr/bin/lsusb";
const exists = (p: string) => {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
};
const READY = exists(LSUSB) && exists(`${VHCI_SYSFS}/attach`);
if (!READY) {
  console.error(
    "descriptors_lsusb_test: needs /usr/bin/lsusb (usbutils) and vhci_hcd: ignored",
  );
}

async function lsusb(bus: number, dev: number): Promise<string> {
  const r = await new Deno.Command(LSUSB, {
    args: ["-v", "-s", `${bus}:${dev}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(r.stdout);
}

async function describeJson(port: string): Promise<unknown> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(["describe", port, "--json"], {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  });
  assert.equal(status, 0, `usb describe ${port}: ${err.join("\n")}`);
  return JSON.parse(out.join("\n"));
}

/** What one device's comparison found. */
interface Compared {
  /** One line for the report. */
  line: string;
  /** Fields that agree. */
  matched: number;
  /** Fields where lsusb 014 is known wrong. */
  defects: number;
  /** The lsusb sections. */
  lsusb: ReturnType<typeof parseLsusb>[number];
  /** `usb describe --json`. */
  // deno-lint-ignore no-explicit-any
  json: any;
  /** Differences, and "not strictly more". */
  failures: string[];
}

/** lsusb -v and usb describe --json of one device, compared. */
async function compareDevice(d: DeviceInfo): Promise<Compared> {
  const [parsed] = parseLsusb(await lsusb(d.busNumber, d.deviceAddress));
  assert.ok(
    parsed,
    `lsusb -s ${d.busNumber}:${d.deviceAddress} printed nothing`,
  );
  // deno-lint-ignore no-explicit-any
  const json: any = await describeJson(d.portPath);
  const mine = usbkitSections(json);
  const { differences, matched, defects } = compareSections(
    parsed.sections,
    mine,
  );
  const lsusbFields = parsed.sections.reduce(
    (n, s) => n + s.fields.length,
    0,
  );
  const usbkitFields = mine.reduce((n, s) => n + s.fields.length, 0);
  assert.ok(matched > 0, `${d.portPath}: nothing compared`);
  const failures = differences.map((x) => `${d.portPath}: ${x}`);
  if (usbkitFields <= lsusbFields) {
    failures.push(
      `${d.portPath}: usbkit shows ${usbkitFields} fields, lsusb ${lsusbFields}: not strictly more`,
    );
  }
  return {
    line: `${d.portPath} ${d.vendorId.toString(16)}:${
      d.productId.toString(16)
    }: ${matched}/${lsusbFields} lsusb fields agree (${defects} where lsusb 014 is known wrong); usbkit shows ${usbkitFields}`,
    matched,
    defects,
    lsusb: parsed,
    json,
    failures,
  };
}

Deno.test({
  name:
    "lsusb: usb describe --json agrees with lsusb -v on every field, for every bench device and the composite USB/IP devices",
  ignore: !READY,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const attached: LocalAttachment[] = [];
    try {
      for (const spec of COMPARISON_DEVICES) {
        attached.push(
          await attachLocal(new RawDescriptorDevice(spec), { timeout: 30000 }),
        );
      }
      // Let the drivers that bind settle (usbhid, cdc_acm...).
      await new Promise((r) => setTimeout(r, 2000));
      const devices = await listDevices();
      const ports = new Set(devices.map((d) => d.portPath));
      for (const a of attached) assert.ok(ports.has(a.portPath), a.portPath);

      const report: string[] = [];
      const failures: string[] = [];
      let total = 0;
      let lsusbDefects = 0;
      for (const d of devices) {
        const c = await compareDevice(d);
        total += c.matched;
        lsusbDefects += c.defects;
        report.push(c.line);
        failures.push(...c.failures);
      }
      console.log(report.join("\n"));
      console.log(
        `${total} fields agree over ${devices.length} devices; ${lsusbDefects} fields where lsusb 014 is known wrong (${LSUSB_014_DEFECTS.length} defects)`,
      );
      assert.deepEqual(failures, []);
    } finally {
      for (const a of attached) await a.detach();
    }
  },
});

const SPARE_UDC = READY ? freeSpareUdc() : null;
if (READY && SPARE_UDC === null) {
  console.error(
    "descriptors_lsusb_test: no free spare UDC (a bench without spareUdcs): the configfs composites are ignored",
  );
}

Deno.test({
  name:
    "lsusb: usb describe --json agrees with lsusb -v on every field, for the composite configfs gadgets on the spare UDC (IADs, two configurations)",
  ignore: !READY || SPARE_UDC === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const report: string[] = [];
    const failures: string[] = [];
    let total = 0;
    let lsusbDefects = 0;
    // One at a time: the bench has one spare UDC.
    for (const spec of COMPOSITE_PRESETS) {
      await using g = await createComposite(spec, {
        udc: SPARE_UDC!,
        timeoutMs: 30000,
      });
      // Let the drivers that bind (if loaded) settle.
      await new Promise((r) => setTimeout(r, 1000));
      const d = (await listDevices()).find((x) =>
        x.portPath === g.location.port
      );
      assert.ok(d, `${spec.name}: not listed at ${g.location.port}`);
      assert.equal(d.serialNumber, spec.serial);
      const c = await compareDevice(d);
      total += c.matched;
      lsusbDefects += c.defects;
      report.push(`${spec.name} (${g.udc}) ${c.line}`);
      failures.push(...c.failures.map((f) => `${spec.name} ${f}`));
      // Every configuration, active or not: lsusb shows them all; so must usbkit.
      const n = spec.configurations.length;
      const lsusbConfigs = c.lsusb.sections.filter((s) =>
        s.title === "Configuration Descriptor"
      );
      assert.equal(
        lsusbConfigs.length,
        n,
        `${spec.name}: lsusb configurations`,
      );
      assert.equal(c.json.configurations.length, n, `${spec.name}: usbkit`);
      assert.deepEqual(
        c.json.configurations.map((x: { configurationValue: number }) =>
          x.configurationValue
        ),
        spec.configurations.map((_, i) => i + 1),
      );
      // IADs: lsusb shows one per function that has one; so does usbkit.
      const iads = c.lsusb.sections.filter((s) =>
        s.title === "Interface Association"
      ).length;
      const mine = c.json.configurations.reduce(
        (k: number, x: { associations: unknown[] }) =>
          k + x.associations.length,
        0,
      );
      assert.equal(mine, iads, `${spec.name}: IADs`);
      if (spec.deviceClass?.[0] === 0xef) {
        assert.ok(iads > 0, `${spec.name}: class 0xef without an IAD`);
      }
    }
    console.log(report.join("\n"));
    console.log(
      `${total} fields agree over ${COMPOSITE_PRESETS.length} configfs composites; ${lsusbDefects} fields where lsusb 014 is known wrong`,
    );
    assert.deepEqual(failures, []);
  },
});
