/**
 * `deno task demo`: boots the default bench (one virtual SuperSpeed
 * SourceSink gadget) and runs the `usb` CLI against it inside the guest:
 * `deno task usb list`, then `deno task usb describe 0525:a4a0`.
 *
 * @module
 */

import { defaultBench, resolveBench } from "../kernel/bench.ts";
import { prepareGuest } from "../kernel/prepare.ts";
import { runInGuest } from "../kernel/run.ts";
import { ensureKernel } from "../kernel/setup.ts";
import { projectRoot, shQuote } from "../kernel/util.ts";

/**
 * The shell script the demo runs in the guest: each command echoed before it
 * runs, as in a terminal session.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { demoScript } from "./demo.ts";
 * const s = demoScript(["deno task usb list"]);
 * assert.ok(s === "printf '\\n$ %s\\n' 'deno task usb list' && deno task usb list || exit $?");
 * ```
 */
export function demoScript(commands: readonly string[]): string {
  return commands.map((c) =>
    `printf '\\n$ %s\\n' ${shQuote(c)} && ${c} || exit $?`
  )
    .join("\n");
}

/**
 * Runs the demo and returns the exit status.
 *
 * @example
 * ```ts ignore
 * // Boots a QEMU guest: tests/readme_vm_test.ts runs the README's `deno task demo`.
 * import { main } from "./demo.ts";
 * Deno.exit(await main());
 * ```
 */
export async function main(): Promise<number> {
  const t0 = performance.now();
  const root = projectRoot();
  const say = (m: string) => console.log(m);
  say("usbkit demo\n");
  const k = await ensureKernel();
  const g = resolveBench(defaultBench).gadgets[0];
  // The guest has no network: packages and the helper are prepared here.
  const prepared = await prepareGuest({ quiet: true });
  if (!prepared.helperReady) console.error(prepared.helperProblem);
  say(
    `booting a Linux kernel (Debian ${k.release}) under QEMU with a virtual ` +
      `SuperSpeed gadget: ${g?.product}, ${g?.id}, serial ${g?.serial}, ` +
      `on dummy_hcd…`,
  );
  const r = await runInGuest(defaultBench, [
    "sh",
    "-c",
    demoScript([
      "deno task usb list",
      `deno task usb describe ${g?.id ?? "0525:a4a0"}`,
    ]),
  ], { cwd: root, timeoutSec: 300 });
  const s = (ms: number) => (ms / 1000).toFixed(1);
  say(
    `\n${r.code === 0 ? "done" : `failed (exit ${r.code})`} in ${
      s(performance.now() - t0)
    } s: boot and bench ${s(r.timings.bootMs)} s, commands ${
      s(r.timings.commandMs)
    } s.`,
  );
  return r.code;
}

if (import.meta.main) {
  Deno.exit(await main());
}
