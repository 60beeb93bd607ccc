/**
 * Recipes that sequence a bench, on the host: several named devices, waits,
 * unplug/plug through a stand-in bench, finally steps, the recipe timeout,
 * and what the reports say about them. The devices are in-memory fakes
 * (tests/fixtures/recipes/fake_device.ts); the same recipes against the
 * virtual bench are in tests/device/sequencing_test.ts.
 */
import assert from "node:assert/strict";
import { UsbError } from "../../src/errors.ts";
import { parseRecipe, RecipeError } from "../../src/recipe/load.ts";
import { jsonReport } from "../../src/recipe/report_json.ts";
import { junitReport } from "../../src/recipe/report_junit.ts";
import {
  formatPlan,
  TerminalReporter,
} from "../../src/recipe/report_terminal.ts";
import {
  type RecipeBench,
  type RecipeDevice,
  type RecipeDeviceSelector,
  type RecipeHotplug,
  type RunOptions,
  runRecipe,
} from "../../src/recipe/runner.ts";
import { FakeDevice } from "../fixtures/recipes/fake_device.ts";
import { parseXml } from "../fixtures/recipes/xml.ts";

/**
 * Two fake devices by serial, a bench that plugs them in and out, and waits
 * that see what the bench did. Everything that happens goes to `log`.
 */
function fakeBench() {
  const log: string[] = [];
  const devices = new Map<string, FakeDevice>([
    ["dut-1", new FakeDevice()],
    ["relay-1", new FakeDevice()],
  ]);
  const present = new Set(devices.keys());
  const serialOf = (s: RecipeDeviceSelector) => s.serial ?? "";
  const openDevice = (s: RecipeDeviceSelector): Promise<RecipeDevice> => {
    const serial = serialOf(s);
    log.push(`open ${serial}`);
    const d = devices.get(serial);
    if (!d || !present.has(serial)) {
      return Promise.reject(new UsbError("not-found", `no ${serial}`));
    }
    d.closed = false;
    return Promise.resolve(d);
  };
  const hotplug: RecipeHotplug = {
    async waitForDevice(s, options) {
      log.push(`waitForDevice ${serialOf(s)} ${options?.timeout}`);
      const t0 = performance.now();
      while (!present.has(serialOf(s))) {
        if (performance.now() - t0 > (options?.timeout ?? 0)) {
          throw new UsbError("timeout", `${serialOf(s)} did not appear`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    waitForDeviceGone(s) {
      log.push(`waitForDeviceGone ${serialOf(s)}`);
      return present.has(serialOf(s))
        ? Promise.reject(new UsbError("timeout", "still there"))
        : Promise.resolve();
    },
  };
  const bench: RecipeBench = {
    find: (s) =>
      Promise.resolve(serialOf(s) === "dut-1" ? "gadget-dut" : undefined),
    unplug(name) {
      log.push(`unplug ${name}`);
      const serial = name === "gadget-dut" ? "dut-1" : name;
      present.delete(serial);
      // What it held is gone with it.
      devices.get(serial)!.queue.length = 0;
      return Promise.resolve();
    },
    plug(name) {
      log.push(`plug ${name}`);
      // It comes back a little later, as a device does.
      setTimeout(() => present.add(name === "gadget-dut" ? "dut-1" : name), 30);
      return Promise.resolve();
    },
  };
  const options: RunOptions = { openDevice, hotplug, bench };
  return { log, devices, present, options };
}

const TWO_DEVICES = `name: bench sequence
devices:
  dut: {serial: dut-1, interfaces: [0]}
  relay: {serial: relay-1}
timeout: 2s
steps:
  - control: {device: relay, out: "01", requestType: vendor, request: 0x5b}
  - bulk: {device: dut, endpoint: 0x02, out: "aa bb"}
  - replug: {device: dut, name: power-cycle the DUT}
  - bulk: {device: dut, endpoint: 0x02, out: "cc"}
  - bulk: {device: dut, endpoint: 0x81, in: 512, expect: {bytes: "cc"}}
finally:
  - control: {device: relay, out: "00", requestType: vendor, request: 0x5b}
`;

Deno.test("a recipe with two named devices: each step acts on the device it names", async () => {
  const { log, devices, options } = fakeBench();
  const recipe = parseRecipe(TWO_DEVICES, { file: "bench.yaml" });
  const result = await runRecipe(recipe, options);
  assert.equal(result.outcome, "passed", JSON.stringify(result, null, 1));
  const dut = devices.get("dut-1")!;
  const relay = devices.get("relay-1")!;
  // The relay got the two control writes, the DUT the bulk writes, claimed
  // again after the replug; nothing went to the wrong one.
  assert.deepEqual(relay.log, [
    "control out vendor 0x5b 1",
    "control out vendor 0x5b 1",
    "close",
  ]);
  assert.deepEqual(dut.log, [
    "claim 0",
    "out 0x2 2",
    "release 0",
    "close",
    "claim 0",
    "out 0x2 1",
    "in 0x81 512",
    "release 0",
    "close",
  ]);
  // The bench: unplug, wait until gone, plug, wait until openable, open.
  const bench = log.filter((l) => !l.startsWith("open relay"));
  assert.deepEqual(bench, [
    "open dut-1",
    "unplug gadget-dut",
    "waitForDeviceGone dut-1",
    "plug gadget-dut",
    "waitForDevice dut-1 2000",
    "open dut-1",
  ]);
  const replug = result.steps[2]!;
  assert.equal(replug.device, "dut");
  assert.equal(replug.title, "unplug and replug dut");
  assert.deepEqual(replug.waits?.map((w) => [w.device, w.for, w.ok]), [
    ["dut", "disappear", true],
    ["dut", "appear", true],
  ]);
  // It came back about 30 ms after the plug.
  assert.ok(
    replug.waits![1]!.durationMs >= 20,
    `${replug.waits![1]!.durationMs}`,
  );
  assert.match(replug.summary!, /^dut gone after .*, dut ready after /);
  assert.deepEqual(result.devices?.map((d) => d.name), ["dut", "relay"]);
  assert.equal(result.finally?.[0]?.status, "passed");
  assert.equal(result.summary.total, 6);
});

Deno.test("the reports name each step's device and its waits with durations", async () => {
  const { options } = fakeBench();
  const recipe = parseRecipe(TWO_DEVICES, { file: "bench.yaml" });
  let out = "";
  const result = await runRecipe(recipe, {
    ...options,
    observer: new TerminalReporter({ write: (s) => out += s, isTTY: false }),
  });
  // Terminal: the device on each step, the finally header, the waits.
  assert.match(out, /✓ 1 +relay: control OUT /);
  assert.match(out, /✓ 2 +dut: bulk OUT 0x02, 2 B/);
  assert.match(
    out,
    /✓ 3 +power-cycle the DUT \(unplug and replug dut\) {2}dut gone after [\d.]+ [mµ]?s, dut ready after [\d.]+ m?s/,
  );
  assert.match(out, /finally \(always run\)\n {2}✓ F1 +relay: control OUT/);

  const json = jsonReport(result) as {
    steps: { device?: string; waits?: { for: string; durationMs: number }[] }[];
    finally: { id: string; device: string }[];
    devices: { name: string; vendorId: number }[];
  };
  assert.deepEqual(json.steps.map((s) => s.device), [
    "relay",
    "dut",
    "dut",
    "dut",
    "dut",
  ]);
  assert.deepEqual(json.steps[2]!.waits!.map((w) => w.for), [
    "disappear",
    "appear",
  ]);
  assert.equal(typeof json.steps[2]!.waits![1]!.durationMs, "number");
  assert.deepEqual(json.finally.map((s) => [s.id, s.device]), [[
    "F1",
    "relay",
  ]]);
  assert.deepEqual(json.devices.map((d) => [d.name, d.vendorId]), [
    ["dut", 0x0525],
    ["relay", 0x0525],
  ]);

  const suite = parseXml(junitReport(result)).children[0]!;
  const cases = suite.children.filter((c) => c.name === "testcase");
  assert.deepEqual(cases.map((c) => c.attrs.name), [
    "1 [relay] control OUT vendor/device request 0x5b value=0x0000 index=0x0000, 1 B",
    "2 [dut] bulk OUT 0x02, 2 B",
    "3 [dut] power-cycle the DUT (unplug and replug dut)",
    "4 [dut] bulk OUT 0x02, 1 B",
    "5 [dut] bulk IN 0x81, 512 B",
    "F1 [relay] control OUT vendor/device request 0x5b value=0x0000 index=0x0000, 1 B",
  ]);
  const props = cases[2]!.children.find((c) => c.name === "properties")!;
  const byName = new Map(
    props.children.map((p) => [p.attrs.name, p.attrs.value]),
  );
  assert.equal(byName.get("device"), "dut");
  assert.match(byName.get("wait.dut.disappear")!, /^\d+\.\d{3}$/);
  assert.match(byName.get("wait.dut.appear")!, /^\d+\.\d{3}$/);
  const said = cases[2]!.children.find((c) => c.name === "system-out")!;
  assert.match(
    said.text,
    /^waited \d+\.\d{3} s for dut to disappear\nwaited \d+\.\d{3} s for dut to appear$/,
  );
  const suiteProps = suite.children.find((c) => c.name === "properties")!;
  assert.deepEqual(
    suiteProps.children.map((p) => [p.attrs.name, p.attrs.value]).slice(0, 2),
    [["device.dut", 'serial "dut-1"'], ["device.relay", 'serial "relay-1"']],
  );
});

Deno.test("finally steps run after a failed step, each one, and a failing one is reported", async () => {
  const { options, devices } = fakeBench();
  const recipe = parseRecipe(
    `name: cleanup
devices:
  dut: {serial: dut-1, interfaces: [0]}
  relay: {serial: relay-1}
steps:
  - bulk: {device: dut, endpoint: 0x81, in: 512, expect: {length: 7}}
  - log: not reached
finally:
  - bulk: {device: dut, endpoint: 0x85, in: 8, timeout: 20ms}
  - control: {device: relay, out: "00", requestType: vendor, request: 0x5b}
`,
    { file: "cleanup.yaml" },
  );
  const result = await runRecipe(recipe, options);
  assert.equal(result.outcome, "failed");
  assert.deepEqual(result.steps.map((s) => s.status), ["failed", "skipped"]);
  // The first finally step fails (0x85 never answers), the second still runs.
  assert.deepEqual(result.finally?.map((s) => [s.id, s.status]), [
    ["F1", "failed"],
    ["F2", "passed"],
  ]);
  assert.equal(result.finally![0]!.error?.code, "timeout");
  assert.ok(devices.get("relay-1")!.log.includes("control out vendor 0x5b 1"));
  assert.deepEqual(result.summary, {
    passed: 1,
    failed: 2,
    skipped: 1,
    total: 4,
  });
  const suite = parseXml(junitReport(result)).children[0]!;
  assert.equal(suite.attrs.tests, "4");
  assert.equal(suite.attrs.failures, "1");
  assert.equal(suite.attrs.errors, "1");
});

Deno.test("finally steps run after Ctrl-C, and a failing finally step fails a run that passed", async () => {
  const { options } = fakeBench();
  const recipe = parseRecipe(
    `name: interrupted
device: {serial: dut-1}
steps:
  - delay: 10s
finally:
  - log: cleaning up
`,
    { file: "i.yaml" },
  );
  const controller = new AbortController();
  setTimeout(() => controller.abort("SIGINT"), 30);
  const t0 = performance.now();
  const result = await runRecipe(recipe, {
    ...options,
    signal: controller.signal,
  });
  assert.ok(performance.now() - t0 < 5000);
  assert.equal(result.outcome, "interrupted");
  assert.equal(result.error?.message, "the run was interrupted by SIGINT");
  assert.equal(result.finally?.[0]?.message, "cleaning up");

  const failing = parseRecipe(
    `name: failing cleanup
devices:
  dut: {serial: dut-1}
steps:
  - log: fine
finally:
  - waitGone: {device: dut, timeout: 50ms}
`,
    { file: "f.yaml" },
  );
  const r2 = await runRecipe(failing, options);
  assert.equal(r2.steps[0]!.status, "passed");
  assert.equal(r2.outcome, "failed");
  assert.equal(r2.finally?.[0]?.status, "failed");
  assert.deepEqual(r2.finally?.[0]?.waits?.map((w) => [w.for, w.ok]), [[
    "disappear",
    false,
  ]]);
});

Deno.test("recipeTimeout stops the steps, skips the rest, fails the run, and the finally steps still run", async () => {
  const { options } = fakeBench();
  const recipe = parseRecipe(
    `name: too slow
device: {serial: dut-1}
recipeTimeout: 50ms
steps:
  - delay: 10s
  - log: skipped
finally:
  - log: still runs
`,
    { file: "t.yaml" },
  );
  const t0 = performance.now();
  const result = await runRecipe(recipe, options);
  assert.ok(performance.now() - t0 < 5000);
  assert.equal(result.outcome, "failed");
  assert.equal(result.error?.code, "timeout");
  assert.match(result.error!.message, /within 50\.0 ms \(recipeTimeout\)/);
  assert.equal(result.steps[1]!.status, "skipped");
  assert.equal(result.finally?.[0]?.status, "passed");
});

Deno.test("a device with open: false is opened by waitFor; a step on it before fails", async () => {
  const { options, present } = fakeBench();
  present.delete("dut-1");
  setTimeout(() => present.add("dut-1"), 40);
  const recipe = parseRecipe(
    `name: appears later
devices:
  dut: {serial: dut-1, open: false, interfaces: [0]}
steps:
  - bulk: {endpoint: 0x02, out: "01", onFail: continue}
  - waitFor: {timeout: 2s}
  - bulk: {endpoint: 0x02, out: "01"}
`,
    { file: "later.yaml" },
  );
  const result = await runRecipe(recipe, options);
  assert.deepEqual(result.steps.map((s) => s.status), [
    "failed",
    "passed",
    "passed",
  ]);
  assert.match(result.steps[0]!.error!.message, /device dut is not open/);
  assert.ok(result.steps[1]!.waits![0]!.durationMs >= 20);
  // The recipe's only device: the step need not name it.
  assert.equal(result.steps[1]!.title, "wait for the device to appear");
});

Deno.test("the dry-run plan lists the devices, the recipe timeout and the finally steps", () => {
  const recipe = parseRecipe(
    TWO_DEVICES.replace("timeout: 2s", "timeout: 2s\nrecipeTimeout: 5m"),
    { file: "bench.yaml" },
  );
  const plan = formatPlan(recipe, "bench.yaml");
  assert.match(plan, /^device {6}dut: serial "dut-1"\n {2}interface {3}0\n/m);
  assert.match(plan, /^device {6}relay: serial "relay-1"$/m);
  assert.match(plan, /^timeout {5}the whole recipe: 5 min 0 s$/m);
  assert.match(
    plan,
    /^ {2}3 +\[dut\] power-cycle the DUT: unplug and replug dut$/m,
  );
  assert.match(plan, /^ {2}2 +\[dut\] bulk OUT 0x02, 2 B$/m);
  assert.match(
    plan,
    /^finally \(always run, also after a failure or Ctrl-C\)\n {2}F1 /m,
  );
});

/** The problems of a recipe that must be refused, as printed. */
function problems(yaml: string): string[] {
  try {
    parseRecipe(yaml, { file: "r.yaml" });
  } catch (e) {
    if (e instanceof RecipeError) return e.message.split("\n");
    throw e;
  }
  assert.fail("the recipe was accepted");
}

Deno.test("invalid multi-device recipes are refused before any device is touched, each problem at its line and column", () => {
  assert.deepEqual(
    problems(`name: x
devices:
  dut: {serial: a, interfaces: [0]}
  relay: {serial: b}
steps:
  - bulk: {endpoint: 0x81, in: 512}
  - bulk: {device: dtu, endpoint: 0x81, in: 512}
  - bulk: {device: relay, endpoint: 0x81, in: 512}
  - selectAlternate: {device: dut, interface: 1, alternate: 0}
finally:
  - replug: {device: rely}
`),
    [
      "r.yaml:6:5: steps[0].bulk: this recipe has several devices (dut, relay): say which one this step acts on, such as device: dut",
      'r.yaml:7:20: steps[1].bulk.device: unknown device "dtu"; did you mean "dut"? (devices: dut, relay)',
      "r.yaml:8:37: steps[2].bulk.endpoint: no interface of devices.relay is claimed: add interfaces: [0] (the interface this endpoint belongs to) to it",
      "r.yaml:9:47: steps[3].selectAlternate.interface: interface 1 is not claimed (claimed: 0); add it to devices.dut.interfaces",
      'r.yaml:11:22: finally[0].replug.device: unknown device "rely"; did you mean "relay"? (devices: dut, relay)',
    ],
  );
  assert.deepEqual(
    problems(`name: x
device: {serial: a}
devices:
  dut: {serial: a, wiat: 1s}
  1st: {}
interfaces: [0]
steps:
  - waitFor: {device: dut, timout: 1s}
`),
    [
      "r.yaml:3:1: devices: a recipe has device (one device) or devices (several, by name), not both",
      'r.yaml:4:20: devices.dut.wiat: unknown key "wiat"; did you mean "wait"? (valid keys: vendorId, productId, serial, port, path, wait, configuration, interfaces, open)',
      'r.yaml:5:3: devices["1st"]: a device selector needs vendorId and productId, serial, port or path, found none of them',
      'r.yaml:5:3: devices["1st"]: "1st" is not a valid device name (use letters, digits and _, not starting with a digit)',
      "r.yaml:6:1: interfaces: with devices, each device has its own interfaces: move it under the device it is for",
      'r.yaml:8:28: steps[0].waitFor.timout: unknown key "timout"; did you mean "timeout"? (valid keys: name, timeout, onFail, device)',
    ],
  );
  // One device: steps do not name it; a name there is a mistake.
  assert.deepEqual(
    problems(`name: x
device: {serial: a}
steps:
  - replug: {device: dut}
  - unplug: {bench: [a]}
`),
    [
      "r.yaml:4:22: steps[0].replug.device: this recipe has one device (device: {...}), and steps act on it without naming it; to name devices, write them as devices: {dut: {...}}",
      'r.yaml:5:14: steps[1].unplug.bench: expected the name of a gadget or QEMU device of the virtual bench, such as "loopback0", found a list',
    ],
  );
});

Deno.test("a recipe with one device stays as short as before: steps need no device", async () => {
  const { options } = fakeBench();
  const recipe = parseRecipe(
    `name: short
device: {serial: dut-1}
interfaces: [0]
steps:
  - bulk: {endpoint: 0x02, out: "01"}
  - replug:
  - waitFor:
  - reset:
`,
    { file: "short.yaml" },
  );
  const result = await runRecipe(recipe, options);
  assert.equal(result.outcome, "passed", JSON.stringify(result.steps, null, 1));
  assert.equal(result.devices, undefined);
  assert.equal(result.steps[0]!.device, undefined);
  assert.deepEqual(result.steps[1]!.waits?.map((w) => w.device), [
    "device",
    "device",
  ]);
  assert.equal(result.steps[1]!.title, "unplug and replug the device");
});

Deno.test("a plain reset step follows a re-enumeration that reset() reports: close, wait, open again, the wait in the report", async () => {
  const { log, devices, options } = fakeBench();
  const dut = devices.get("dut-1")!;
  dut.reset = () => {
    dut.log.push("reset (re-enumerated)");
    return Promise.resolve({ reenumerated: true }) as unknown as Promise<void>;
  };
  const recipe = parseRecipe(
    `name: reset follows
device: {serial: dut-1}
interfaces: [0]
steps:
  - reset:
  - bulk: {endpoint: 0x02, out: "01"}
`,
    { file: "reset.yaml" },
  );
  const result = await runRecipe(recipe, options);
  assert.equal(result.outcome, "passed", JSON.stringify(result.steps, null, 1));
  assert.deepEqual(dut.log, [
    "claim 0",
    "reset (re-enumerated)",
    "release 0",
    "close",
    "claim 0",
    "out 0x2 1",
    "release 0",
    "close",
  ]);
  assert.ok(
    log.some((l) => l.startsWith("waitForDevice dut-1")),
    log.join("\n"),
  );
  assert.equal(result.steps[0]!.waits?.[0]?.for, "appear");
});

Deno.test("a plain reset step that keeps the device keeps the handle", async () => {
  const { log, devices, options } = fakeBench();
  const recipe = parseRecipe(
    `name: reset keeps
device: {serial: dut-1}
interfaces: [0]
steps:
  - reset:
  - bulk: {endpoint: 0x02, out: "01"}
`,
    { file: "reset.yaml" },
  );
  const result = await runRecipe(recipe, options);
  assert.equal(result.outcome, "passed");
  assert.deepEqual(devices.get("dut-1")!.log, [
    "claim 0",
    "reset",
    "out 0x2 1",
    "release 0",
    "close",
  ]);
  assert.ok(!log.some((l) => l.startsWith("waitForDevice")), log.join("\n"));
});
