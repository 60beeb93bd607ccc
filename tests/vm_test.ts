// Host tests that boot the virtual bench (QEMU under TCG, a few seconds per
// boot): exit status, separate and streamed stdout/stderr, and the hang
// timeout. Run with `deno test -A tests/vm_test.ts`.

import assert from "node:assert/strict";
import { type Bench, defaultBench } from "../kernel/bench.ts";
import { EXIT_TIMEOUT, runInGuest } from "../kernel/run.ts";

/** No devices at all: the quickest boot, for tests of the runner itself. */
const bare: Bench = { speed: "super", gadgets: [], qemuDevices: [] };

Deno.test("guest exit status comes back: sh -c 'exit 7' exits 7", async () => {
  const r = await runInGuest(bare, ["sh", "-c", "exit 7"], {
    stdout: "piped",
    stderr: "piped",
    timeoutSec: 120,
    quiet: true,
  });
  assert.equal(r.failure, null);
  assert.equal(r.code, 7);
  assert.equal(r.success, false);
});

Deno.test("stdout and stderr stream separately, as they come, complete", async () => {
  const arrivals: { at: number; text: string }[] = [];
  const td = new TextDecoder();
  let outBytes = 0;
  let zeros = 0;
  const big = 4 * 1024 * 1024;
  const r = await runInGuest(
    defaultBench,
    [
      "sh",
      "-c",
      // Two seconds between the first line and the rest shows streaming; 4 MiB
      // at the end checks nothing is lost when the guest powers off.
      `echo out; echo err >&2; sleep 2; echo late; head -c ${big} /dev/zero; ` +
      'test -s "$USBKIT_BENCH" || echo "no bench record" >&2; exit 3',
    ],
    {
      stdout: (chunk) => {
        if (outBytes < 16) {
          arrivals.push({
            at: performance.now(),
            text: td.decode(chunk.subarray(0, 16)),
          });
        }
        outBytes += chunk.length;
        for (const b of chunk) if (b === 0) zeros++;
      },
      stderr: "piped",
      timeoutSec: 180,
      quiet: true,
    },
  );
  assert.equal(r.failure, null);
  assert.equal(r.code, 3);
  assert.equal(td.decode(r.stderr), "err\n");
  assert.equal(outBytes, "out\nlate\n".length + big);
  assert.equal(zeros, big);
  const first = arrivals[0];
  const late = arrivals.find((a) => a.text.includes("late"));
  assert.ok(first?.text.startsWith("out\n"), JSON.stringify(arrivals));
  assert.ok(late, "the late line arrived");
  assert.ok(first);
  assert.ok(
    late.at - first.at > 1500,
    `"out" came ${late.at - first.at} ms before "late": not streamed`,
  );
});

Deno.test("a hanging guest is killed by the timeout, with a message", async () => {
  const t0 = performance.now();
  const r = await runInGuest(bare, ["sleep", "1000"], {
    stdout: "piped",
    stderr: "piped",
    timeoutSec: 20,
    quiet: true,
  });
  const took = (performance.now() - t0) / 1000;
  assert.equal(r.code, EXIT_TIMEOUT);
  assert.equal(r.failure?.kind, "timeout");
  assert.match(
    r.failure?.message ?? "",
    /killed the guest after 20 s: it was hanging/,
  );
  assert.ok(took < 40, `took ${took} s`);
  if (r.consoleLog !== null) await Deno.remove(r.consoleLog).catch(() => {});
});

// ---------------------------------------------------------------------------
// deno task vm --device: devices written in TypeScript, exactly as a user
// runs them (a subprocess of `deno task vm`, from the project root).

const PROJECT = new URL("../", import.meta.url).pathname;

async function vmTask(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "vm", ...args],
    cwd: PROJECT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const td = new TextDecoder();
  return {
    code: out.code,
    stdout: td.decode(out.stdout),
    stderr: td.decode(out.stderr),
  };
}

const explain = (r: { code: number; stdout: string; stderr: string }) =>
  `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

for (
  const [device, recipe, passed] of [
    ["scripts/examples/vendor_device.ts", "recipes/vendor-device.yaml", 13],
    ["scripts/examples/serial_device.ts", "recipes/serial-device.yaml", 10],
  ] as const
) {
  Deno.test(`deno task vm --device ${device} -- deno task usb run ${recipe}: passes`, async () => {
    const r = await vmTask([
      "--device",
      device,
      "--",
      "deno",
      "task",
      "usb",
      "run",
      recipe,
    ]);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, new RegExp(`^PASS ${passed} passed in `, "m"));
    // usb serve said where the device is, on stderr.
    assert.match(
      r.stderr,
      new RegExp(
        `${
          device.replaceAll(".", "\\.")
        }: 1209:000[12] .* at /dev/bus/usb/\\d{3}/\\d{3} \\(port \\d+-1\\)`,
      ),
    );
  });
}

Deno.test("deno task vm --device, repeated: the command sees every device (a file twice is two devices), class drivers bound", async () => {
  const r = await vmTask([
    "--device",
    "scripts/examples/vendor_device.ts",
    "--device",
    "scripts/examples/vendor_device.ts",
    "--device",
    "scripts/examples/serial_device.ts",
    "--device",
    "scripts/examples/keyboard_device.ts",
    "--",
    "sh",
    "-c",
    'echo "$USBKIT_DEVICES"; for i in /sys/bus/usb/devices/[0-9]*-*:1.0; do ' +
    'echo "driver $(cat $i/../idProduct) $(basename "$(readlink $i/driver)")"; done',
  ]);
  assert.equal(r.code, 0, explain(r));
  const [json = "", ...lines] = r.stdout.trim().split("\n");
  const devices = JSON.parse(json) as {
    id: string;
    devnode: string;
    serialNumber: string;
  }[];
  assert.deepEqual(devices.map((d) => d.id), [
    "1209:0001",
    "1209:0001",
    "1209:0002",
    "1209:0003",
  ]);
  assert.equal(new Set(devices.map((d) => d.devnode)).size, 4);
  // The guest has no udev: usb serve --drivers loaded cdc_acm and usbhid.
  const drivers = new Set(lines);
  assert.ok(drivers.has("driver 0002 cdc_acm"), r.stdout);
  assert.ok(drivers.has("driver 0003 usbhid"), r.stdout);
});

Deno.test("deno task vm --device with a broken device exits 2 before booting, naming the field", async () => {
  const dir = await Deno.makeTempDir({ dir: PROJECT, prefix: ".vm-device-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.ts`,
      `export default { speed: "full", vendorId: 0x1209, productId: 1, interfaces: [{ endpoints: [{ address: 0x81, type: "bulk", maxPacketSize: 512 }] }] };`,
    );
    const r = await vmTask(["--device", `${dir}/bad.ts`, "--", "true"]);
    assert.equal(r.code, 2, explain(r));
    assert.match(
      r.stderr,
      /--device: .*bad\.ts: interfaces\[0\]\.endpoints\[0\]\.maxPacketSize/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
