import assert from "node:assert/strict";
import { parseRecipe } from "../../src/recipe/load.ts";
import {
  runRecipe,
  type RunResult,
  type StepResult,
} from "../../src/recipe/runner.ts";
import { UsbError } from "../../src/errors.ts";
import { FakeDevice, fakeOpener } from "../fixtures/recipes/fake_device.ts";

const HEAD =
  "name: t\ndevice: {vendorId: 0x0525, productId: 0xa4a0}\ninterfaces: [0]\n";

async function run(
  yaml: string,
  options: { vars?: Record<string, string>; device?: FakeDevice } = {},
) {
  const device = options.device ?? new FakeDevice();
  const recipe = parseRecipe(yaml, {
    file: "t.yaml",
    vars: Object.keys(options.vars ?? {}),
  });
  const result = await runRecipe(recipe, {
    openDevice: fakeOpener(device),
    ...(options.vars ? { vars: options.vars } : {}),
    baseDir: new URL("../fixtures/recipes/valid/", import.meta.url).pathname,
  });
  return { device, result };
}

function statuses(result: RunResult): string {
  const walk = (rs: StepResult[]): string[] =>
    rs.flatMap((
      r,
    ) => [
      `${r.id}${r.iteration ? "#" + r.iteration : ""}:${r.status}`,
      ...walk(r.children ?? []),
    ]);
  return walk(result.steps).join(" ");
}

Deno.test("saved fields flow into later steps, in numbers and in hex data", async () => {
  const { device, result } = await run(
    HEAD + `steps:
  - control: {out: "02 00 07 ff", requestType: vendor, request: 0x5b}
  - control:
      in: 4
      requestType: vendor
      request: 0x5c
      save:
        size: {type: u16be, offset: 0}
        last: {type: u16le, offset: 2}
        head: {type: hex, offset: 0, length: 2}
  - bulk: {endpoint: 0x81, in: "\${size}", expect: {length: "\${size}"}}
  - bulk: {endpoint: 0x02, out: "\${last:u32be} \${head}"}
  - log: "size \${size}, last \${last:hex}"
`,
  );
  assert.equal(
    result.outcome,
    "passed",
    JSON.stringify(result.steps.map((s) => s.failures)),
  );
  assert.deepEqual(result.vars, { size: 512, last: 0xff07, head: "02 00" });
  assert.ok(device.log.includes("in 0x81 512"));
  assert.deepEqual([...device.queue[0]!], [0, 0, 0xff, 0x07, 2, 0]);
  assert.equal(result.steps[4]!.message, "size 512, last 0xff07");
  assert.deepEqual(device.log.slice(0, 1), ["claim 0"]);
  assert.ok(device.closed && device.log.includes("release 0"));
});

Deno.test("--var values override the recipe's vars", async () => {
  const yaml = HEAD +
    `vars: {n: 16}\nsteps:\n  - bulk: {endpoint: 0x81, in: "\${n}", expect: {length: {max: 16}}}\n`;
  const plain = await run(yaml);
  assert.equal(plain.result.outcome, "passed");
  assert.equal(plain.result.vars.n, 16);
  // Only the name is known when the recipe is loaded: the run finds it out.
  const overridden = await run(yaml, { vars: { n: "32" } });
  assert.equal(overridden.result.outcome, "failed");
  assert.equal(overridden.result.vars.n, "32");
  assert.equal(
    overridden.result.steps[0]!.failures[0]!.message,
    "length: expected 0..16 bytes, got 32",
  );
});

Deno.test("repeat runs its steps count times, with the iteration variable", async () => {
  const { device, result } = await run(
    HEAD + `steps:
  - repeat:
      count: 3
      var: i
      steps:
        - bulk: {endpoint: 0x02, out: "\${i:u8} aa"}
        - bulk: {endpoint: 0x81, in: 64, expect: {bytes: "\${i:u8} aa"}}
`,
  );
  assert.equal(result.outcome, "passed");
  assert.equal(
    statuses(result),
    "1:passed 1.1#1:passed 1.2#1:passed 1.1#2:passed 1.2#2:passed 1.1#3:passed 1.2#3:passed",
  );
  assert.deepEqual(result.summary, {
    passed: 6,
    failed: 0,
    skipped: 0,
    total: 6,
  });
  assert.equal(device.log.filter((l) => l.startsWith("out")).length, 3);
});

Deno.test("a failed step stops the run; the rest are skipped; the device is closed", async () => {
  const { device, result } = await run(
    HEAD + `steps:
  - bulk: {endpoint: 0x81, in: 4, expect: {bytes: "00 01 02 04"}}
  - delay: 1ms
  - log: never printed
`,
  );
  assert.equal(result.outcome, "failed");
  assert.equal(statuses(result), "1:failed 2:skipped 3:skipped");
  assert.equal(result.steps[1]!.skipReason, "an earlier step failed");
  const f = result.steps[0]!.failures[0]!;
  assert.equal(f.message, "bytes: 1 of 4 bytes differ");
  assert.match(f.detail!, /- 00 01 02 04/);
  assert.match(f.detail!, /\+ 00 01 02 03/);
  assert.match(f.detail!, /\^\^/);
  assert.ok(device.closed);
});

Deno.test("onFail: continue keeps going, and the run still fails", async () => {
  const { result } = await run(
    HEAD + `steps:
  - control: {in: 2, requestType: vendor, request: 0x42, onFail: continue}
  - control: {in: 2, requestType: vendor, request: 0x42, expect: {status: stall}}
  - log: reached
`,
  );
  assert.equal(statuses(result), "1:failed 2:passed 3:passed");
  assert.equal(
    result.steps[0]!.failures[0]!.message,
    "status: expected ok, got stall",
  );
  assert.equal(result.outcome, "failed");
});

Deno.test("a failure inside a repeat stops the repeat and the run", async () => {
  const { result } = await run(
    HEAD + `steps:
  - repeat:
      count: 5
      var: i
      steps:
        - bulk: {endpoint: 0x81, in: 1, expect: {bytes: "00"}}
        - control: {in: 1, requestType: vendor, request: 0x42}
  - log: after
`,
  );
  assert.equal(
    statuses(result),
    "1:failed 1.1#1:passed 1.2#1:failed 2:skipped",
  );
  assert.deepEqual(result.summary, {
    passed: 1,
    failed: 1,
    skipped: 1,
    total: 3,
  });
});

Deno.test("a transfer timeout is an error on the step, with its code", async () => {
  const started = performance.now();
  const { result } = await run(
    HEAD + `steps:
  - bulk: {endpoint: 0x85, in: 64, timeout: 50ms}
  - log: skipped
`,
  );
  assert.ok(performance.now() - started < 2000);
  assert.equal(result.outcome, "failed");
  assert.equal(result.steps[0]!.error?.code, "timeout");
  assert.match(result.steps[0]!.error!.message, /timed out after 50 ms/);
});

Deno.test("the recipe timeout is the default for steps", async () => {
  const { result } = await run(
    HEAD.replace("interfaces", "timeout: 30ms\ninterfaces") + `steps:
  - control: {in: 1, requestType: vendor, request: 0x77}
`,
  );
  assert.match(result.steps[0]!.error!.message, /after 30 ms/);
});

Deno.test("expected data, from a pattern, after a round trip through the control buffer", async () => {
  const { result } = await run(
    HEAD + `steps:
  - control: {out: {pattern: random, length: 256, seed: 5}, requestType: vendor, request: 0x5b}
  - control:
      in: 300
      requestType: vendor
      request: 0x5c
      expect: {length: 300, data: {pattern: random, length: 256, seed: 5}}
  - control:
      in: 300
      requestType: vendor
      request: 0x5c
      expect: {data: {pattern: random, length: 256, seed: 6}}
`,
  );
  assert.equal(statuses(result), "1:passed 2:passed 3:failed");
  assert.match(
    result.steps[2]!.failures[0]!.message,
    /^data: \d+ of 256 bytes differ$/,
  );
});

Deno.test("file data and file expectations, relative to the recipe", async () => {
  const { device, result } = await run(Deno.readTextFileSync(
    new URL("../fixtures/recipes/valid/with-file.yaml", import.meta.url),
  ));
  assert.equal(result.outcome, "passed");
  assert.deepEqual([...result.steps[0]!.transfer!.data!], [3, 4, 5, 6]);
  assert.equal(device.queue.length, 0);
});

Deno.test("text, pattern, length range and mask expectations", async () => {
  const { result } = await run(
    HEAD + `steps:
  - bulk: {endpoint: 0x02, out: {text: "QEMU    QEMU HARDDISK"}}
  - bulk:
      endpoint: 0x81
      in: 64
      expect:
        length: {min: 8, max: 64}
        text: {offset: 0, length: 8, equals: "QEMU    "}
  - bulk: {endpoint: 0x02, out: {text: "QEMU HARDDISK"}}
  - bulk: {endpoint: 0x81, in: 64, expect: {text: {regex: "^QEMU H"}}}
  - bulk: {endpoint: 0x81, in: 1024, expect: {pattern: sourcesink}}
  - bulk: {endpoint: 0x02, out: "b1 60"}
  - bulk: {endpoint: 0x81, in: 2, expect: {bytes: "01 60", mask: "01 ff"}}
  - bulk: {endpoint: 0x02, out: "b1 60"}
  - bulk: {endpoint: 0x81, in: 4, expect: {text: "nope", pattern: sequence}}
`,
  );
  assert.equal(
    statuses(result),
    "1:passed 2:passed 3:passed 4:passed 5:passed 6:passed 7:passed 8:passed 9:failed",
  );
  const messages = result.steps[8]!.failures.map((f) => f.message);
  assert.deepEqual(messages, [
    'text: expected "nope", got "\uFFFD`"',
    "pattern sequence: 2 of 2 bytes differ, the first at offset 0x0",
  ]);
});

Deno.test("save past the end of the data is a failure that says so", async () => {
  const { result } = await run(
    HEAD + `steps:
  - bulk: {endpoint: 0x02, out: "01 02"}
  - bulk: {endpoint: 0x81, in: 64, save: {lba: {type: u32be, offset: 0}}}
`,
  );
  assert.equal(
    result.steps[1]!.failures[0]!.message,
    "save lba: u32be at offset 0 needs 4 bytes, but only 2 bytes were received",
  );
});

Deno.test("streams move the bytes asked for and check the pattern and the rate", async () => {
  const { result } = await run(
    HEAD + `steps:
  - stream: {endpoint: 0x81, bytes: 1MiB, transferSize: 64KiB, expect: {pattern: sourcesink, minRate: 1kB/s}}
  - stream: {endpoint: 0x02, bytes: 100KiB, transferSize: 16KiB, data: {pattern: sourcesink, length: 16KiB}}
  - stream: {endpoint: 0x81, duration: 50ms}
  - stream: {endpoint: 0x81, bytes: 64KiB, expect: {minRate: 1000GB/s}}
`,
  );
  assert.equal(statuses(result), "1:passed 2:passed 3:passed 4:failed");
  assert.equal(result.steps[0]!.stream!.bytes, 1024 * 1024);
  assert.equal(result.steps[1]!.stream!.bytes, 100 * 1024);
  assert.ok(result.steps[2]!.durationMs >= 45);
  assert.match(
    result.steps[3]!.failures[0]!.message,
    /^rate: expected at least 1000 GB\/s, got /,
  );
});

Deno.test("configuration, interfaces, alternate settings, clear-halt and reset reach the device", async () => {
  const device = new FakeDevice();
  const { result } = await run(
    `name: t
device: {serial: fake}
configuration: 2
interfaces: [{number: 0, detachKernelDriver: true}, {number: 1, alternate: 1}]
steps:
  - selectAlternate: {interface: 1, alternate: 0}
  - clearHalt: {endpoint: 0x81}
  - reset:
  - iso: {endpoint: 0x83, in: [8, 8]}
  - iso: {endpoint: 0x02, out: "00 01 02 03", packets: [2, 2]}
`,
    { device },
  );
  assert.equal(
    result.outcome,
    "passed",
    JSON.stringify(result.steps.map((s) => s.error)),
  );
  assert.deepEqual(device.log.slice(0, 7), [
    "configuration 2",
    "claim 0 detach",
    "claim 1",
    "alternate 1 1",
    "alternate 1 0",
    "clearHalt 0x81",
    "reset",
  ]);
  assert.equal(result.steps[3]!.transfer!.length, 16);
});

Deno.test("an endpoint that no claimed interface has is a clear error", async () => {
  const { result } = await run(
    HEAD + `steps:\n  - bulk: {endpoint: 0x84, in: 8}\n`,
  );
  assert.deepEqual(result.steps[0]!.error, {
    code: "invalid-argument",
    message: "endpoint 0x84 is not on a claimed interface (claimed: 0)",
  });
});

Deno.test("waiting for a device retries until it appears", async () => {
  const device = new FakeDevice();
  const opener = fakeOpener(device, { appearAfter: 2 });
  const recipe = parseRecipe(
    "name: t\ndevice: {serial: fake, wait: 2s}\nsteps: [{log: hi}]\n",
    { file: "t.yaml" },
  );
  const result = await runRecipe(recipe, { openDevice: opener });
  assert.equal(result.outcome, "passed");
  assert.equal(opener.calls(), 3);
  assert.ok(result.device!.waitedMs >= 150 && result.device!.waitedMs < 1500);
});

Deno.test("a device that does not appear within wait: no-device, after about that long", async () => {
  const recipe = parseRecipe(
    "name: t\ndevice: {vendorId: 0x1234, productId: 0x5678, wait: 300ms}\nsteps: [{log: hi}]\n",
    {
      file: "t.yaml",
    },
  );
  const started = performance.now();
  const result = await runRecipe(recipe, {
    openDevice: fakeOpener(new FakeDevice(), { never: true }),
  });
  const took = performance.now() - started;
  assert.equal(result.outcome, "no-device");
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
  assert.equal(
    result.error?.message,
    "no device matching 1234:5678 appeared within 300 ms",
  );
  assert.match(result.error!.hint!, /usb list/);
  assert.equal(result.steps[0]!.status, "skipped");
});

Deno.test("a --var that does not fit the selector is an invalid run, not a crash", async () => {
  const recipe = parseRecipe(
    "name: t\ndevice: {vendorId: '${vid}', productId: 1}\nsteps: [{log: hi}]\n",
    {
      file: "t.yaml",
      vars: ["vid"],
    },
  );
  const result = await runRecipe(recipe, {
    vars: { vid: "zz" },
    openDevice: fakeOpener(new FakeDevice()),
  });
  assert.equal(result.outcome, "invalid");
  assert.match(
    result.error!.message,
    /^device\.vendorId: expected a vendor id \(0x0000-0xffff\), found "zz"/,
  );
});

Deno.test("a busy interface held by a kernel driver: the hint says it in the recipe's words", async () => {
  class HeldDevice extends FakeDevice {
    override claimInterface(): Promise<never> {
      // What usbkit's claimInterface says (errors.ts, EBUSY with a driver).
      return Promise.reject(
        new UsbError(
          "busy",
          "claimInterface(0): held by kernel driver usbtest",
          {
            errno: 16,
            hint:
              "pass { detachKernelDriver: true } to claimInterface to detach it for the session",
          },
        ),
      );
    }
  }
  const { result } = await run(HEAD + "steps:\n  - log: never\n", {
    device: new HeldDevice(),
  });
  assert.equal(result.outcome, "failed");
  assert.equal(result.error?.code, "busy");
  assert.equal(
    result.error?.message,
    "claimInterface(0): held by kernel driver usbtest",
  );
  assert.equal(
    result.error?.hint,
    "write the interface as {number: 0, detachKernelDriver: true} in the recipe's interfaces, to detach the kernel driver for the run (it is bound again at the end)",
  );
});

Deno.test("babble says the device sent more than asked, and what length to read", async () => {
  const { result } = await run(
    HEAD + `steps:
  - bulk: {endpoint: 0x02, out: {pattern: zeros, length: 600}}
  - bulk: {endpoint: 0x81, in: 64, onFail: continue}
  - bulk: {endpoint: 0x02, out: {pattern: zeros, length: 600}}
  - bulk: {endpoint: 0x81, in: 512}
`,
  );
  assert.deepEqual(result.steps[1]!.failures, [{
    message: "status: expected ok, got babble",
    detail:
      "hint: babble means the device sent more than the 64 bytes asked for; a device sends whole packets, so the length of a read must be a multiple of the endpoint's wMaxPacketSize (512 here): read 512 bytes (in: 512)",
  }]);
  assert.deepEqual(result.steps[3]!.failures, [{
    message: "status: expected ok, got babble",
    detail:
      "hint: babble means the device sent more than the 512 bytes asked for",
  }]);
});
