// Sequencing a bench, in the guest: QEMU hotplug driven from inside the
// guest (QMP device_del / device_add of the usb-storage, through the
// usbkit.qmp port), and a recipe over SourceSink and Loopback at once with a
// replug in the middle and a finally step after a forced failure, run with
// `usb run` as CI would, its JUnit report parsed back.

import assert from "node:assert/strict";
import { storageSector } from "../../kernel/bench.ts";
import {
  benchInfo,
  locate,
  qemuDeviceAdd,
  qemuDeviceDel,
} from "../../kernel/guest.ts";
import { listDevices, open } from "../../mod.ts";
import { watchDevices } from "../../src/hotplug.ts";
import { type Element, parseXml } from "../fixtures/recipes/xml.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** `p`, or a failure naming `what` after `ms`: a lost event fails, not hangs. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: not done after ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
const info = benchInfo();
const storage = info.qemuDevices.find((d) => d.kind === "storage");
const hasSourceSink = info.gadgets.some((g) =>
  g.function === "sourcesink" && g.vendorId === 0x0525 && g.productId === 0xa4a0
);
const loopback = info.gadgets.find((g) =>
  g.function === "loopback" && g.serial === "usbkit-lb-0001"
);

/**
 * SCSI READ(10) of sectors over Bulk-Only Transport, after TEST UNIT READY:
 * a disk that was just plugged in answers its first command with CHECK
 * CONDITION and the sense UNIT ATTENTION (power on or reset, SPC-4 5.14),
 * which REQUEST SENSE clears, as a host's SCSI layer does.
 */
async function readSectors(
  serial: string,
  lbas: readonly number[],
): Promise<Uint8Array[]> {
  await using dev = await open({ serial });
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  const bulkIn = iface.endpoints.find((e) =>
    e.direction === "in" && e.type === "bulk"
  )!;
  const bulkOut = iface.endpoints.find((e) =>
    e.direction === "out" && e.type === "bulk"
  )!;
  let tag = 1;
  /** One command: CBW, data IN, CSW; resolves with the data and the status. */
  async function scsi(cdb: number[], length: number) {
    // Bulk-Only Transport 1.0, 5.1: the 31-byte Command Block Wrapper.
    const cbw = new Uint8Array(31);
    const v = new DataView(cbw.buffer);
    v.setUint32(0, 0x43425355, true); // "USBC"
    v.setUint32(4, tag, true);
    v.setUint32(8, length, true);
    cbw[12] = length > 0 ? 0x80 : 0; // data IN
    cbw[14] = cdb.length;
    cbw.set(cdb, 15);
    await bulkOut.transferOut(cbw, { timeout: 5000 });
    const data = length > 0
      ? (await bulkIn.transferIn(length, { timeout: 5000 })).data.slice()
      : new Uint8Array(0);
    const csw = (await bulkIn.transferIn(13, { timeout: 5000 })).data;
    const cv = new DataView(csw.buffer, csw.byteOffset);
    assert.equal(cv.getUint32(0, true), 0x53425355, "CSW signature"); // "USBS"
    assert.equal(cv.getUint32(4, true), tag++, "CSW tag");
    return { data, status: csw[12] };
  }
  const ready = await scsi([0, 0, 0, 0, 0, 0], 0); // TEST UNIT READY
  if (ready.status !== 0) {
    assert.equal(ready.status, 1, "TEST UNIT READY: command failed");
    const sense = await scsi([0x03, 0, 0, 0, 18, 0], 18); // REQUEST SENSE
    assert.equal(sense.status, 0);
    assert.equal(sense.data[2]! & 0x0f, 0x06, "sense key UNIT ATTENTION");
    assert.equal((await scsi([0, 0, 0, 0, 0, 0], 0)).status, 0);
  }
  const out: Uint8Array[] = [];
  for (const lba of lbas) {
    const r = await scsi([
      0x28,
      0,
      lba >>> 24,
      (lba >> 16) & 0xff,
      (lba >> 8) & 0xff,
      lba & 0xff,
      0,
      0,
      1,
      0,
    ], 512);
    assert.equal(r.status, 0, `READ(10) of LBA ${lba}`);
    out.push(r.data);
  }
  return out;
}

Deno.test({
  name:
    "QEMU device_del and device_add from the guest: the usb-storage leaves, comes back on its port, and reads its image",
  ignore: storage === undefined || !storage.patterned,
  async fn() {
    const serial = storage!.serial;
    const before = locate(serial);
    assert.ok(before, `${serial} is not there at the start`);
    await using watcher = watchDevices({ filter: { serial } });
    const events: { type: string; serial?: string; port: string }[] = [];
    const seen = (async () => {
      for await (const e of watcher) {
        events.push({
          type: e.type,
          port: e.device.portPath,
          ...(e.device.serialNumber === undefined
            ? {}
            : { serial: e.device.serialNumber }),
        });
        if (events.length === 2) return;
      }
    })();

    await within(30_000, "qemuDeviceDel", qemuDeviceDel(storage!.name));
    assert.ok(
      !(await listDevices()).some((d) => d.serialNumber === serial),
      "listDevices still lists the storage after device_del",
    );
    assert.equal(locate(serial), null);

    const after = await within(
      30_000,
      "qemuDeviceAdd",
      qemuDeviceAdd(storage!.name),
    );
    // The same xHCI port: the device was added back with its properties.
    assert.equal(after.port, before.port);
    assert.notEqual(after.devnode, before.devnode, "a new address");
    const listed = (await listDevices()).find((d) => d.serialNumber === serial);
    assert.ok(listed, "listDevices does not list the storage after device_add");
    assert.equal(listed.vendorId, storage!.vendorId);
    assert.equal(listed.productId, storage!.productId);

    await within(
      30_000,
      `the watcher's remove and add (seen: ${JSON.stringify(events)})`,
      seen,
    );
    assert.deepEqual(events, [
      { type: "remove", serial, port: before.port },
      { type: "add", serial, port: before.port },
    ]);

    // The same drive: what READ(10) returns is the image's sector.
    const lbas = [0, 5, 1000];
    const got = await within(60_000, "READ(10)", readSectors(serial, lbas));
    lbas.forEach((lba, i) =>
      assert.deepEqual(got[i], storageSector(lba), `sector ${lba}`)
    );
  },
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function usb(...args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    // --cached-only: the guest has no network; npm packages are in node_modules.
    args: ["run", "-A", "--cached-only", "scripts/usb.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

function explain(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function property(c: Element, name: string): string | undefined {
  return c.children.find((n) => n.name === "properties")?.children.find((p) =>
    p.attrs.name === name
  )?.attrs.value;
}

Deno.test({
  name:
    "recipe: SourceSink and Loopback at once, the Loopback replugged in the middle, a finally step after a forced failure; JUnit parsed back",
  ignore: !hasSourceSink || loopback === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "usbkit-sequencing-" });
    try {
      // The example recipe, with one more step that must fail (the Loopback
      // echoes "after", not "wrong") and a finally step that talks to the
      // device that was replugged.
      const recipe = (await Deno.readTextFile(
        `${ROOT}recipes/bench-replug.yaml`,
      )).replace(
        "finally:\n",
        [
          "  - bulk: {device: loop, endpoint: 0x02, out: {text: after}}",
          "  - bulk:",
          "      name: forced failure",
          "      device: loop",
          "      endpoint: 0x81",
          "      in: 4096",
          "      expect: {text: wrong}",
          "  - log: not reached",
          "finally:",
          "  - bulk: {device: loop, endpoint: 0x02, out: {text: cleanup}}",
          "  - bulk:",
          "      device: loop",
          "      endpoint: 0x81",
          "      in: 4096",
          "      expect: {text: cleanup}",
          "",
        ].join("\n"),
      );
      await Deno.writeTextFile(`${dir}/bench.yaml`, recipe);
      const r = await usb(
        "run",
        `${dir}/bench.yaml`,
        "--report",
        `junit=${dir}/report.xml`,
        "--report",
        `json=${dir}/report.json`,
      );
      assert.equal(r.code, 1, explain(r));
      assert.match(
        r.stdout,
        /✓ 4 +replug the Loopback \(unplug and replug loop\) {2}loop gone after [\d.]+ m?s, loop ready after [\d.]+ m?s/,
        explain(r),
      );
      assert.match(r.stdout, /✗ 9 +loop: forced failure/);
      assert.match(r.stdout, /- 10 +log +skipped: an earlier step failed/);
      assert.match(r.stdout, /finally \(always run\)\n {2}✓ F1 /);
      assert.match(r.stdout, /✓ F2 +loop: bulk IN 0x81, 4 KiB/);
      assert.match(r.stdout, /^FAIL /m);

      const suite = parseXml(await Deno.readTextFile(`${dir}/report.xml`))
        .children[0]!;
      const cases = suite.children.filter((c) => c.name === "testcase");
      assert.deepEqual(cases.map((c) => c.attrs.name), [
        "1 [source] bulk IN 0x81, 4 KiB",
        '2 [loop] bulk OUT 0x02, text "before the replug"',
        "3 [loop] bulk IN 0x81, 4 KiB",
        "4 [loop] replug the Loopback (unplug and replug loop)",
        "5 [loop] bulk OUT 0x02, random pattern, 2.93 KiB",
        "6 [loop] bulk IN 0x81, 4 KiB",
        "7 [source] bulk IN 0x81, 4 KiB",
        '8 [loop] bulk OUT 0x02, text "after"',
        "9 [loop] forced failure (bulk IN 0x81, 4 KiB)",
        "10 log",
        'F1 [loop] bulk OUT 0x02, text "cleanup"',
        "F2 [loop] bulk IN 0x81, 4 KiB",
        "F3 log",
      ]);
      assert.equal(suite.attrs.tests, String(cases.length));
      assert.equal(suite.attrs.failures, "1");
      assert.equal(suite.attrs.errors, "0");
      assert.equal(suite.attrs.skipped, "1");
      const failed = cases.find((c) => c.attrs.name?.includes("forced"))!;
      const failure = failed.children.find((c) => c.name === "failure")!;
      assert.match(failure.attrs.message!, /^text: /);
      assert.equal(property(failed, "device"), "loop");
      // The replug's waits, with their durations, as properties and text.
      const replug = cases[3]!;
      assert.equal(property(replug, "device"), "loop");
      const gone = Number(property(replug, "wait.loop.disappear"));
      const back = Number(property(replug, "wait.loop.appear"));
      assert.ok(gone >= 0 && back > 0, `${gone} ${back}`);
      assert.match(
        replug.children.find((c) => c.name === "system-out")!.text,
        /^waited [\d.]+ s for loop to disappear\nwaited [\d.]+ s for loop to appear$/,
      );
      for (const c of cases) {
        // Every step but the logs acts on a device, and says which.
        if (c.attrs.name?.endsWith(" log")) continue;
        assert.ok(property(c, "device"), `${c.attrs.name} names no device`);
      }
      const suiteProps = suite.children.find((c) => c.name === "properties")!;
      assert.deepEqual(
        suiteProps.children.filter((p) => p.attrs.name?.startsWith("device."))
          .map((p) => p.attrs.name),
        ["device.source", "device.loop"],
      );

      const report = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
      assert.equal(report.outcome, "failed");
      assert.deepEqual(
        report.finally.map((s: { status: string }) => s.status),
        ["passed", "passed", "passed"],
      );
      // After the replug the Loopback echoed the random data: checked by the
      // step's expectation, and the step passed.
      assert.equal(report.steps[5].status, "passed");
      assert.equal(report.steps[5].transfer.length, 3000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
