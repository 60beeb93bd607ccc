// `usb describe --json` against `lsusb -v` (usbutils, from the host's /usr),
// field by field, for every device of the bench: the fullBench gadgets and
// QEMU devices, the root hubs, and composite devices written in TypeScript
// and plugged in over USB/IP (tests/fixtures/descriptor_devices.ts: ACM +
// NCM + ECM with IADs and two configurations, a qualifier and other-speed
// configurations; HID keyboard + mass storage + printer; RNDIS + MIDI +
// generic serial; a SuperSpeed device whose BOS has every capability). The
// test fails on any field that differs, and on any section lsusb decodes
// that usbkit has no decoded counterpart for.
//
//   deno task test --device-only -- --filter "/lsusb/"

import assert from "node:assert/strict";
import { listDevices } from "../../src/enumeration.ts";
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
        const [parsed] = parseLsusb(await lsusb(d.busNumber, d.deviceAddress));
        assert.ok(
          parsed,
          `lsusb -s ${d.busNumber}:${d.deviceAddress} printed nothing`,
        );
        const json = await describeJson(d.portPath);
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
        total += matched;
        lsusbDefects += defects;
        report.push(
          `${d.portPath} ${d.vendorId.toString(16)}:${
            d.productId.toString(16)
          }: ${matched}/${lsusbFields} lsusb fields agree (${defects} where lsusb 014 is known wrong); usbkit shows ${usbkitFields}`,
        );
        assert.ok(matched > 0, `${d.portPath}: nothing compared`);
        for (const x of differences) failures.push(`${d.portPath}: ${x}`);
        if (usbkitFields <= lsusbFields) {
          failures.push(
            `${d.portPath}: usbkit shows ${usbkitFields} fields, lsusb ${lsusbFields}: not strictly more`,
          );
        }
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
