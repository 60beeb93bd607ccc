// Transfer recipes against the virtual bench (run inside the guest by
// `deno task test`). Each test runs `usb run` as a subprocess, as a person
// or a CI job would, and checks its exit status, its output and its reports.
// No mocks: the devices are the bench's gadgets and QEMU's emulated devices.

import assert from "node:assert/strict";
import { benchInfo } from "../../kernel/guest.ts";
import { storageSector } from "../../kernel/bench.ts";
import { parseXml } from "../fixtures/recipes/xml.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const info = benchInfo();
const hasSourceSink = info.gadgets.some((g) =>
  g.function === "sourcesink" && g.vendorId === 0x0525 && g.productId === 0xa4a0
);
const hasLoopback = info.gadgets.some((g) =>
  g.function === "loopback" && g.serial === "usbkit-lb-0001"
);
const storage = info.qemuDevices.find((d) => d.kind === "storage");
const hasSerial = info.qemuDevices.some((d) => d.kind === "serial");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `deno run -A scripts/usb.ts <args>`, from the project root. */
async function usb(...args: string[]): Promise<Run> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    // --cached-only: the guest has no network; npm packages are in node_modules.
    args: ["run", "-A", "--cached-only", "scripts/usb.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const run = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    ms: performance.now() - started,
  };
  return run;
}

function explain(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function tempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "usbkit-recipes-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

Deno.test({
  name:
    "recipe: SourceSink smoke passes, with --var reaching the device and both reports written",
  ignore: !hasSourceSink,
  async fn() {
    await tempDir(async (dir) => {
      const message = "recipes run in the guest";
      const r = await usb(
        "run",
        "recipes/sourcesink-smoke.yaml",
        "--var",
        `message=${message}`,
        "--report",
        `json=${dir}/report.json`,
        "--report",
        `junit=${dir}/report.xml`,
      );
      assert.equal(r.code, 0, explain(r));
      assert.match(r.stdout, /^PASS \d+ passed in /m);
      assert.match(
        r.stdout,
        /✓ \d+ +stream 0x81, 64 MiB .* 64 MiB in [\d.]+ m?s, [\d.]+ [kMG]?B\/s/,
      );

      const report = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
      assert.equal(report.outcome, "passed");
      assert.equal(report.vars.message, message);
      // The text went out through 0x5b and came back through 0x5c.
      const readBack = report.steps.find((s: { name?: string }) =>
        s.name === "read the text back"
      );
      assert.ok(
        readBack.transfer.data.hex.startsWith(
          hex(new TextEncoder().encode(message)),
        ),
      );
      assert.equal(report.vars.totalLength > 9, true);
      const stream = report.steps.find((s: { kind: string }) =>
        s.kind === "stream"
      );
      assert.equal(stream.stream.bytes, 64 * 1024 * 1024);
      assert.ok(stream.stream.bytesPerSecond >= 5e6);

      const suite = parseXml(await Deno.readTextFile(`${dir}/report.xml`))
        .children[0]!;
      assert.equal(suite.attrs.failures, "0");
      assert.equal(suite.attrs.errors, "0");
      assert.equal(Number(suite.attrs.tests), report.summary.total);
    });
  },
});

Deno.test({
  name: "recipe: Loopback echo passes",
  ignore: !hasLoopback,
  async fn() {
    const r = await usb("run", "recipes/loopback-echo.yaml");
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /3000 random bytes echoed, starting [0-9a-f]{2} /);
  },
});

Deno.test({
  name: "recipe: mass storage reads the sectors the image holds",
  ignore: !storage,
  async fn() {
    await tempDir(async (dir) => {
      const r = await usb(
        "run",
        "recipes/mass-storage.yaml",
        "--report",
        `json=${dir}/report.json`,
      );
      assert.equal(r.code, 0, explain(r));
      const { vars } = JSON.parse(
        await Deno.readTextFile(`${dir}/report.json`),
      );
      assert.equal(vars.blockLength, 512);
      if (storage!.sizeBytes !== undefined) {
        assert.equal(vars.lastLba, storage!.sizeBytes / 512 - 1);
      }
      if (storage!.patterned) {
        // The generated image: every sector starts with its LBA (kernel/bench.ts).
        assert.equal(vars.lba0, hex(storageSector(0).subarray(0, 16)));
        assert.equal(vars.lastHead, vars.lastLba);
      }
    });
  },
});

Deno.test({
  name: "recipe: FTDI serial line setup passes",
  ignore: !hasSerial,
  async fn() {
    const r = await usb("run", "recipes/ftdi-serial.yaml");
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /modem status 0x[0-9a-f]+/);
  },
});

Deno.test({
  name: "recipe: a wrong expected byte exits 1 and shows the hex diff",
  ignore: !hasSourceSink,
  async fn() {
    await tempDir(async (dir) => {
      // The device descriptor, with the last byte of idProduct wrong (a5, not a4).
      await Deno.writeTextFile(
        `${dir}/wrong.yaml`,
        [
          "name: wrong byte",
          "device: {vendorId: 0x0525, productId: 0xa4a0, wait: 5s}",
          "steps:",
          "  - control:",
          "      in: 18",
          "      requestType: standard",
          "      request: 0x06",
          "      value: 0x0100",
          '      expect: {bytes: "12 01 ?? ?? ?? ?? ?? ?? 25 05 a0 a5"}',
          "  - log: not reached",
          "",
        ].join("\n"),
      );
      const r = await usb(
        "run",
        `${dir}/wrong.yaml`,
        "--report",
        `junit=${dir}/r.xml`,
      );
      assert.equal(r.code, 1, explain(r));
      assert.match(r.stdout, /✗ 1 +control IN GET_DESCRIPTOR\(device\), 18 B/);
      assert.match(r.stdout, /bytes: 1 of 12 bytes differ/);
      assert.match(
        r.stdout,
        /0x0000 {2}- 12 01 \?\? \?\? \?\? \?\? \?\? \?\? 25 05 a0 a5/,
      );
      assert.match(r.stdout, /\n {10,}\+ 12 01 [0-9a-f ]+ 25 05 a0 a4/);
      assert.match(r.stdout, /\n {10,}\^\^\n/);
      assert.match(r.stdout, /- 2 +log +skipped: an earlier step failed/);
      const failure = parseXml(await Deno.readTextFile(`${dir}/r.xml`))
        .children[0]!
        .children.filter((c) => c.name === "testcase")[0]!.children[0]!;
      assert.equal(failure.name, "failure");
      assert.match(failure.text, /\^\^/);
    });
  },
});

Deno.test("recipe: a device that never appears exits 2 after about `wait`, with a clear message", async () => {
  await tempDir(async (dir) => {
    // 1d6b is the Linux Foundation's vendor id; fffe is not a product of it.
    await Deno.writeTextFile(
      `${dir}/absent.yaml`,
      "name: absent\ndevice: {vendorId: 0x1d6b, productId: 0xfffe, wait: 1s}\nsteps:\n  - log: never\n",
    );
    // --dry-run never looks for the device: it shows what starting the
    // command costs here (seconds, under emulation), the baseline below.
    const dry = await usb("run", `${dir}/absent.yaml`, "--dry-run");
    assert.equal(dry.code, 0, explain(dry));
    assert.match(dry.stdout, /nothing was run \(--dry-run\)/);

    const r = await usb(
      "run",
      `${dir}/absent.yaml`,
      "--report",
      `json=${dir}/r.json`,
    );
    assert.equal(r.code, 2, explain(r));
    assert.ok(r.ms >= 900, `exited after ${r.ms} ms, before the wait was over`);
    assert.ok(
      r.ms - dry.ms < 10_000,
      `took ${r.ms} ms, against ${dry.ms} ms for a dry run`,
    );
    assert.match(
      r.stderr,
      /^error\[not-found\]: no device matching 1d6b:fffe appeared within 1\.00 s\n {2}hint: /m,
    );
    assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
    const report = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
    assert.equal(report.outcome, "no-device");
    assert.ok(
      report.device.waitedMs >= 950 && report.device.waitedMs < 5000,
      `waited ${report.device.waitedMs} ms`,
    );
  });
});

Deno.test({
  name:
    "recipe: an interface usbtest holds is busy, and the hint names the recipe's detachKernelDriver",
  ignore: !hasSourceSink || !info.modules.includes("usbtest"),
  async fn() {
    await tempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/busy.yaml`,
        [
          "name: busy",
          "device: {vendorId: 0x0525, productId: 0xa4a0, wait: 5s}",
          "interfaces: [0]",
          "steps:",
          "  - bulk: {endpoint: 0x81, in: 1024}",
          "",
        ].join("\n"),
      );
      const r = await usb("run", `${dir}/busy.yaml`);
      assert.equal(r.code, 1, explain(r));
      assert.match(r.stderr, /^error\[busy\]: .*usbtest/m);
      assert.match(
        r.stderr,
        /^ {2}hint: write the interface as \{number: 0, detachKernelDriver: true\} in the recipe's interfaces/m,
      );
      assert.ok(!r.stderr.includes("claimInterface to detach"), r.stderr);
    });
  },
});

Deno.test({
  name:
    "recipe: a read shorter than a packet babbles, and the hint gives the endpoint's wMaxPacketSize",
  ignore: !hasSourceSink,
  async fn() {
    await tempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/babble.yaml`,
        [
          "name: babble",
          "device: {vendorId: 0x0525, productId: 0xa4a0, wait: 5s}",
          "interfaces: [{number: 0, detachKernelDriver: true}]",
          "steps:",
          "  - bulk: {endpoint: 0x81, in: 64}",
          "",
        ].join("\n"),
      );
      const r = await usb("run", `${dir}/babble.yaml`);
      assert.equal(r.code, 1, explain(r));
      assert.match(r.stdout, /✗ 1 +bulk IN 0x81, 64 B/);
      assert.match(r.stdout, /status: expected ok, got babble/);
      // SourceSink's bulk IN is 1024 bytes a packet at SuperSpeed, 512 at high speed.
      const hint =
        /hint: babble means the device sent more than the 64 bytes asked for; a device sends whole packets, so the length of a read must be a multiple of the endpoint's wMaxPacketSize \((\d+) here\): read (\d+) bytes/
          .exec(r.stdout);
      assert.ok(hint, explain(r));
      assert.equal(hint[1], hint[2]);
      assert.ok(["512", "1024"].includes(hint[1]!), hint[1]);
    });
  },
});
