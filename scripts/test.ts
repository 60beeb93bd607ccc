/**
 * `deno task test`: every test of the project, host and guest.
 *
 * 1. host: unit tests and doc tests (`deno test -A --doc --trace-leaks
 *    tests/unit/ src/ mod.ts webusb.ts kernel/ bench/ scripts/`);
 * 2. host: the VM runner's own tests (tests/vm_test.ts, boots small guests),
 *    and the README's host commands exactly as printed
 *    (tests/readme_vm_test.ts: every `deno task vm` line, the library
 *    example, the demo);
 * 3. guest preparation on the host: `deno install` (the guest has no
 *    network), the Rust helper build, `deno task compile` (dist/usb, for
 *    tests/device/compiled_test.ts) and `deno check tests/device/` (tsc
 *    under TCG is slow, so the guest runs with `--no-check`);
 * 4. guest: ONE boot of `fullBench` + usbtest + vhci-hcd (USB/IP, for the
 *    devices written in TypeScript) + veth (a second network namespace for
 *    the USB/IP client over TCP) running
 *    `deno test -A --no-check --cached-only tests/device/`.
 *
 * Then a summary with timings; the exit status is non-zero if any step
 * failed.
 *
 * ```sh
 * deno task test                      # everything
 * deno task test --host-only          # steps 1-2
 * deno task test --device-only -- --filter unplug   # steps 3-4, args to deno test
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fullBench } from "../kernel/bench.ts";
import { prepareGuest } from "../kernel/prepare.ts";
import { EXIT_VM_FAILURE, runInGuest } from "../kernel/run.ts";
import { exists, projectRoot } from "../kernel/util.ts";

/**
 * Outcome of one step.
 *
 * @example
 * ```ts
 * import type { StepResult } from "./test.ts";
 * const s: StepResult = { name: "unit", status: "pass", seconds: 3.2 };
 * ```
 */
export interface StepResult {
  /** Step name as printed in the summary. */
  name: string;
  /** "pass", "fail" or "skip". */
  status: "pass" | "fail" | "skip";
  /** Wall time, seconds. */
  seconds: number;
  /** Why it failed or was skipped. */
  note?: string;
}

const USAGE =
  `usage: deno task test [--host-only | --device-only] [--no-vm-test] [-- <deno test args for device tests>]`;

/**
 * Runs a host command with inherited output; returns its exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sh } from "./test.ts";
 * assert.ok((await sh(["true"], "/")) === 0);
 * ```
 */
export async function sh(argv: string[], cwd: string): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return 1;
  const p = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await p.status).code;
}

/**
 * Formats the summary table.
 *
 * @example
 * ```ts
 * import { summary } from "./test.ts";
 * console.log(summary([{ name: "unit", status: "pass", seconds: 1.5 }]));
 * ```
 */
export function summary(steps: readonly StepResult[]): string {
  const w = Math.max(...steps.map((s) => s.name.length), 4);
  const lines = steps.map((s) =>
    `  ${s.status.toUpperCase().padEnd(4)}  ${s.name.padEnd(w)}  ${
      s.seconds.toFixed(1).padStart(6)
    } s${s.note ? `  (${s.note})` : ""}`
  );
  const total = steps.reduce((t, s) => t + s.seconds, 0);
  const failed = steps.filter((s) => s.status === "fail").length;
  return [
    "",
    "test summary:",
    ...lines,
    `  ${failed === 0 ? "all passed" : `${failed} failed`} in ${
      total.toFixed(1)
    } s`,
  ].join("\n");
}

async function step(
  steps: StepResult[],
  name: string,
  fn: () => Promise<number | { code: number; note?: string }>,
): Promise<boolean> {
  console.error(`\n=== ${name}`);
  const t0 = performance.now();
  let code: number;
  let note: string | undefined;
  try {
    const r = await fn();
    code = typeof r === "number" ? r : r.code;
    note = typeof r === "number" ? undefined : r.note;
  } catch (e) {
    code = 1;
    note = (e as Error).message.split("\n")[0];
    console.error(`${name}: ${(e as Error).message}`);
  }
  const res: StepResult = {
    name,
    status: code === 0 ? "pass" : "fail",
    seconds: (performance.now() - t0) / 1000,
  };
  if (note !== undefined) res.note = note;
  else if (code !== 0) res.note = `exit ${code}`;
  steps.push(res);
  return code === 0;
}

/**
 * Runs the selected steps and returns the exit status.
 *
 * @example
 * ```ts ignore
 * // Runs the host test suite, doc tests included, so it would run itself (and boots
 * // QEMU guests for tests/vm_test.ts); `deno task test` is this.
 * import { main } from "./test.ts";
 * Deno.exit(await main(["--host-only"]));
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  const dash = argv.indexOf("--");
  const ours = dash < 0 ? [...argv] : argv.slice(0, dash);
  const extra = dash < 0 ? [] : argv.slice(dash + 1);
  let flags;
  try {
    flags = parseArgs({
      args: ours,
      options: {
        "host-only": { type: "boolean" },
        "device-only": { type: "boolean" },
        "no-vm-test": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const root = projectRoot();
  const deno = Deno.execPath();
  const steps: StepResult[] = [];
  const present = async (paths: string[]) => {
    const out: string[] = [];
    for (const p of paths) if (await exists(`${root}/${p}`)) out.push(p);
    return out;
  };

  if (!flags["device-only"]) {
    const targets = await present([
      "tests/unit/",
      "src/",
      "mod.ts",
      "webusb.ts",
      "kernel/",
      "bench/",
      "scripts/",
    ]);
    await step(
      steps,
      "host unit + doc tests",
      () =>
        sh([deno, "test", "-A", "--doc", "--trace-leaks", ...targets], root),
    );
    await step(
      steps,
      "Rust helper tests (cargo test: completion ring)",
      () =>
        sh(
          ["cargo", "test", "--release", "--offline", "--quiet"],
          `${root}/helper`,
        ),
    );
    if (!flags["no-vm-test"]) {
      await step(
        steps,
        "VM runner tests (tests/vm_test.ts)",
        () =>
          sh([deno, "test", "-A", "--trace-leaks", "tests/vm_test.ts"], root),
      );
      await step(
        steps,
        "README host examples, as printed (tests/readme_vm_test.ts)",
        () =>
          sh(
            [deno, "test", "-A", "--trace-leaks", "tests/readme_vm_test.ts"],
            root,
          ),
      );
    }
  }

  if (!flags["host-only"]) {
    const ready = await step(
      steps,
      "prepare guest (install, build, check)",
      async () => {
        // The guest has no network and no cargo: npm packages and the
        // helper are made ready on the host.
        const p = await prepareGuest();
        if (p.installCode !== 0) {
          return { code: p.installCode, note: "deno install failed" };
        }
        if (!p.helperReady) {
          console.error(p.helperProblem);
          return { code: 1, note: "helper build failed" };
        }
        // The single-file `usb` that tests/device/compiled_test.ts runs.
        const k = await sh([deno, "run", "-A", "scripts/compile.ts"], root);
        if (k !== 0) return { code: k, note: "deno task compile failed" };
        const c = await sh([deno, "check", "tests/device/"], root);
        return c === 0
          ? 0
          : { code: c, note: "deno check tests/device/ failed" };
      },
    );
    if (ready) {
      await step(
        steps,
        "device tests in the guest (fullBench + usbtest)",
        async () => {
          const r = await runInGuest(
            { ...fullBench, modules: ["usbtest", "vhci-hcd", "veth"] },
            [
              "deno",
              "test",
              "-A",
              "--no-check",
              "--cached-only",
              "tests/device/",
              ...extra,
            ],
            // The device suite takes about 30 min under TCG on 2 cores (173
            // tests); a hang is still cut off well inside CI's 90 minutes.
            { timeoutSec: 3600, cwd: root },
          );
          const boot = `boot ${(r.timings.bootMs / 1000).toFixed(1)} s`;
          if (r.failure !== null) {
            return {
              code: r.code || EXIT_VM_FAILURE,
              note: `${r.failure.kind}; ${boot}`,
            };
          }
          return { code: r.code, note: boot };
        },
      );
    } else {
      steps.push({
        name: "device tests in the guest",
        status: "skip",
        seconds: 0,
        note: "preparation failed",
      });
    }
  }

  console.error(summary(steps));
  return steps.some((s) => s.status === "fail") ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
