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
