// Every exit cleans up (run inside the guest by `deno task test`): a script
// or `usb run` that detached usbtest from the SourceSink gadget is stopped by
// SIGINT, SIGTERM, SIGHUP, Deno.exit() or the end of the script, and usbtest
// must be bound again each time; SIGKILL leaves it unbound and `usb rebind`
// binds it again. The state checked is the kernel's own: the interface's
// driver link in sysfs.

import assert from "node:assert/strict";
import { benchInfo } from "../../kernel/guest.ts";
import { readJournal } from "../../src/driver_journal.ts";
import { pattern, sameBytes } from "./data.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MOD = new URL("../../mod.ts", import.meta.url).href;
const info = benchInfo();
const ss = info.gadgets.find((g) => g.function === "sourcesink")!;
const withUsbtest = info.modules.includes("usbtest");

function portOf(serial: string): string {
  for (const e of Deno.readDirSync("/sys/bus/usb/devices")) {
    try {
      const s = Deno.readTextFileSync(`/sys/bus/usb/devices/${e.name}/serial`);
      if (s.trim() === serial) return e.name;
    } catch {
      // Interfaces and hubs without a serial.
    }
  }
  throw new Error(`no device with serial ${serial}`);
}

function driverOf(port: string): string | undefined {
  try {
    return Deno.readLinkSync(`/sys/bus/usb/devices/${port}:1.0/driver`)
      .split("/").pop();
  } catch {
    return undefined;
  }
}

/** Polls until `fn` is true; fails after `ms` (a hang detector, not a timing). */
async function until(fn: () => boolean, what: string, ms = 60_000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Child {
  proc: Deno.ChildProcess;
  stdout: () => string;
  stderr: () => string;
}

function collect(stream: ReadableStream<Uint8Array>): () => string {
  let text = "";
  const dec = new TextDecoder();
  void (async () => {
    for await (const c of stream) text += dec.decode(c, { stream: true });
  })();
  return () => text;
}

/** A Deno script in a child process, its output collected as it comes. */
function spawnScript(source: string): Child {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", "--cached-only", source],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { proc, stdout: collect(proc.stdout), stderr: collect(proc.stderr) };
}

/** Opens SourceSink, detaches usbtest, streams until stopped. */
const STREAMING = `
  import { open } from "${MOD}";
  await using dev = await open(${JSON.stringify(ss.serial)});
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  let n = 0;
  for await (const chunk of iface.endpoint(0x81).stream({ transferSize: 16384, inFlight: 8 })) {
    if (++n === 4) console.log("streaming", chunk.length);
  }
`;

async function streamingChild(): Promise<{ child: Child; port: string }> {
  const port = portOf(ss.serial);
  assert.equal(driverOf(port), "usbtest", "usbtest is bound before the test");
  const child = spawnScript(STREAMING);
  await until(() => child.stdout().includes("streaming"), "the stream");
  assert.equal(driverOf(port), "usbfs");
  assert.ok(
    readJournal().some((r) =>
      r.portPath === port && r.driver === "usbtest" &&
      r.pid === child.proc.pid
    ),
    "the detach is journaled",
  );
  return { child, port };
}

/** A normal transfer works after the cleanup: the pattern, byte for byte. */
async function patternStillReads(): Promise<void> {
  const { open } = await import("../../mod.ts");
  await using dev = await open(ss.serial);
  const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
    .endpoint(0x81);
  const r = await ep.transferIn(4096, { timeout: 10_000 });
  assert.equal(r.status, "ok");
  assert.ok(sameBytes(r.data, pattern(4096, ep.maxPacketSize)));
}

for (
  const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const
) {
  Deno.test({
    name:
      `library: ${signal} mid-stream cancels, releases, binds usbtest again and exits ${code}`,
    ignore: !withUsbtest,
    async fn() {
      const { child, port } = await streamingChild();
      child.proc.kill(signal);
      const status = await child.proc.status;
      assert.equal(status.code, code, child.stderr());
      assert.equal(driverOf(port), "usbtest");
      assert.ok(!readJournal().some((r) => r.portPath === port));
      assert.doesNotMatch(child.stderr(), /error|at file:/i);
      await patternStillReads();
      assert.equal(driverOf(port), "usbtest");
    },
  });
}

Deno.test({
  name:
    "library: SIGKILL leaves usbtest unbound; `usb rebind` binds it again from the journal",
  ignore: !withUsbtest,
  async fn() {
    const { child, port } = await streamingChild();
    child.proc.kill("SIGKILL");
    await child.proc.status;
    // The premise: nobody could clean up.
    await until(() => driverOf(port) === undefined, "usbfs to let go");
    assert.ok(readJournal().some((r) => r.portPath === port));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--cached-only", "scripts/usb.ts", "rebind"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(
      text,
      new RegExp(`${port}:1\\.0 \\(was usbtest\\): bound to usbtest`),
    );
    assert.equal(driverOf(port), "usbtest");
    assert.ok(!readJournal().some((r) => r.portPath === port));
    // Nothing left: a second run says so.
    const again = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--cached-only", "scripts/usb.ts", "rebind"],
      cwd: ROOT,
      stdout: "piped",
    }).output();
    assert.equal(again.code, 0);
    assert.match(new TextDecoder().decode(again.stdout), /nothing to rebind/);
  },
});

Deno.test({
  name:
    "`usb rebind <selector>` probes every driverless interface of the device, journal or not",
  ignore: !withUsbtest,
  async fn() {
    const port = portOf(ss.serial);
    // Unbind usbtest behind usbkit's back: no journal entry.
    Deno.writeTextFileSync(
      "/sys/bus/usb/drivers/usbtest/unbind",
      `${port}:1.0`,
    );
    assert.equal(driverOf(port), undefined);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--cached-only", "scripts/usb.ts", "rebind", port],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
    assert.match(text, new RegExp(`${port}:1\\.0: bound to usbtest`));
    assert.equal(driverOf(port), "usbtest");
  },
});

for (
  const [how, ending] of [
    ["Deno.exit(5)", "Deno.exit(5);"],
    ["the script's natural end without close()", ""],
  ] as const
) {
  Deno.test({
    name: `library: ${how} with a detached driver binds usbtest again`,
    ignore: !withUsbtest,
    async fn() {
      const port = portOf(ss.serial);
      const child = spawnScript(`
        import { open } from "${MOD}";
        const dev = await open(${JSON.stringify(ss.serial)});
        const iface = await dev.claimInterface(0, { detachKernelDriver: true });
        const r = await iface.endpoint(0x81).transferIn(1024);
        console.log("read", r.data.length);
        ${ending}
      `);
      const status = await child.proc.status;
      assert.equal(status.code, ending ? 5 : 0, child.stderr());
      assert.match(child.stdout(), /read 1024/);
      assert.equal(driverOf(port), "usbtest");
      assert.ok(!readJournal().some((r) => r.portPath === port));
    },
  });
}

Deno.test({
  name:
    "library: handleExitSignals(false) leaves SIGTERM to the script, whose closeAllDevices() binds usbtest again",
  ignore: !withUsbtest,
  async fn() {
    const port = portOf(ss.serial);
    const child = spawnScript(`
      import { closeAllDevices, handleExitSignals, open } from "${MOD}";
      handleExitSignals(false);
      Deno.addSignalListener("SIGTERM", async () => {
        await closeAllDevices();
        console.log("closed by my handler");
        Deno.exit(7);
      });
      const dev = await open(${JSON.stringify(ss.serial)});
      const iface = await dev.claimInterface(0, { detachKernelDriver: true });
      console.log("claimed");
      await iface.endpoint(0x81).transferIn(1024).catch(() => {});
      await new Promise((r) => setTimeout(r, 120_000));
    `);
    await until(() => child.stdout().includes("claimed"), "the claim");
    assert.equal(driverOf(port), "usbfs");
    child.proc.kill("SIGTERM");
    const status = await child.proc.status;
    assert.equal(status.code, 7, child.stderr());
    assert.match(child.stdout(), /closed by my handler/);
    assert.equal(driverOf(port), "usbtest");
  },
});

/** A recipe that streams long enough to be interrupted. */
const LONG_RECIPE = `name: long stream
device: { vendorId: 0x0525, productId: 0xa4a0 }
interfaces:
  - number: 0
    detachKernelDriver: true
steps:
  - bulk: { endpoint: 0x81, in: 4096, expect: { pattern: sourcesink } }
  - stream:
      endpoint: 0x81
      bytes: 64GiB
      transferSize: 16KiB
      inFlight: 8
      expect: { pattern: sourcesink }
  - log: never reached
`;

for (
  const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const
) {
  Deno.test({
    name:
      `usb run: ${signal} mid-stream exits ${code}, says so, writes the reports as interrupted, binds usbtest again`,
    ignore: !withUsbtest,
    async fn() {
      const port = portOf(ss.serial);
      const dir = await Deno.makeTempDir({ prefix: "usbkit-cleanup-" });
      try {
        await Deno.writeTextFile(`${dir}/long.yaml`, LONG_RECIPE);
        const proc = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--cached-only",
            "scripts/usb.ts",
            "run",
            `${dir}/long.yaml`,
            "--report",
            `json=${dir}/r.json`,
            "--report",
            `junit=${dir}/r.xml`,
          ],
          cwd: ROOT,
          env: { NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const stdout = collect(proc.stdout);
        const stderr = collect(proc.stderr);
        // The stream is running once usbfs holds the interface and the first
        // step has passed.
        await until(
          () => driverOf(port) === "usbfs" && /\b1 .*bulk/i.test(stdout()),
          "the run to reach its stream",
          120_000,
        );
        await new Promise((r) => setTimeout(r, 500));
        proc.kill(signal);
        const status = await proc.status;
        const text = `--- stdout\n${stdout()}\n--- stderr\n${stderr()}`;
        assert.equal(status.code, code, text);
        assert.match(stderr(), new RegExp(`interrupted by ${signal}`));
        assert.match(stdout(), /INTERRUPTED/);
        assert.doesNotMatch(text, /never reached|at file:/);
        const report = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
        assert.equal(report.outcome, "interrupted");
        assert.equal(report.steps[0].status, "passed");
        assert.equal(report.steps[2].status, "skipped");
        const xml = await Deno.readTextFile(`${dir}/r.xml`);
        assert.match(xml, /run interrupted/);
        assert.equal(driverOf(port), "usbtest");
        assert.ok(!readJournal().some((r) => r.portPath === port));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "usb run: a helper that cannot be loaded is a broken installation, exit 3, not a failed step",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "usbkit-cleanup-" });
    try {
      await Deno.writeTextFile(
        `${dir}/one.yaml`,
        `name: one\ndevice: { vendorId: 0x0525, productId: 0xa4a0 }\nsteps:\n  - log: hi\n`,
      );
      await Deno.writeTextFile(`${dir}/not-a-library.so`, "not ELF\n");
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--cached-only",
          "scripts/usb.ts",
          "run",
          `${dir}/one.yaml`,
        ],
        cwd: ROOT,
        env: { NO_COLOR: "1", USBKIT_HELPER: `${dir}/not-a-library.so` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 3, err);
      assert.match(err, /helper-unavailable/);
      assert.doesNotMatch(err, /at file:/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
