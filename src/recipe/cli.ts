/**
 * The `usb run` and `usb schema` commands.
 *
 * Exit status of `usb run`: 0 when every step passed, 1 when a step failed,
 * 2 for an invalid recipe, a usage error, or a device that was not found
 * (also after `device.wait`), 3 for a broken installation (the helper is
 * missing or cannot be built), and 128 + the signal number (130 for Ctrl-C,
 * 143 for SIGTERM, 129 for SIGHUP) when a signal interrupted the run; the
 * device is then released, detached kernel drivers are bound again, and the
 * reports are written with the outcome `interrupted`. Problems are printed
 * for people; never a stack trace.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { handleExitSignals, releaseAllNow } from "../cleanup.ts";
import {
  EXIT_BROKEN,
  EXIT_FAILED as FAILED,
  EXIT_INVALID,
  EXIT_OK,
  EXIT_SIGNALS,
  type ExitSignal,
  signalExitCode,
} from "../exit_codes.ts";
import type { Capture } from "../capture/capture.ts";
import { captureAll, stopCaptureAll } from "../capture/process.ts";
import { VAR_NAME } from "./interpolate.ts";
import { loadRecipe, RecipeError } from "./load.ts";
import { writeJsonReport } from "./report_json.ts";
import { writeJunitReport } from "./report_junit.ts";
import { formatPlan, TerminalReporter, writerFor } from "./report_terminal.ts";
import { type DeviceOpener, runRecipe, type RunResult } from "./runner.ts";
import { recipeJsonSchema } from "./schema.ts";

/** Exit status: every step passed. */
export const EXIT_PASSED: 0 = EXIT_OK;
/** Exit status: a step failed. */
export const EXIT_FAILED: 1 = FAILED;
/** Exit status: invalid recipe, usage error, or device not found. */
export const EXIT_USAGE: 2 = EXIT_INVALID;
/** Exit status: the helper is missing or cannot be built or loaded. */
export const EXIT_INSTALL: 3 = EXIT_BROKEN;

/** The help text of `usb run`. */
export const RUN_HELP =
  `usage: usb run <recipe> [--var name=value]... [--dry-run] [--report json=PATH] [--report junit=PATH] [--capture FILE]

Runs a transfer recipe (YAML, JSON, or a TypeScript module) against a device.

  --var name=value     set a variable; overrides the recipe's vars (repeatable)
  --dry-run            check the recipe and print its plan, without opening the device
  --report json=PATH   also write a JSON report to PATH
  --report junit=PATH  also write a JUnit XML report to PATH
  --capture FILE       record every transfer of the run for Wireshark: FILE is
                       pcapng, or pcap when it ends in .pcap; each step of the
                       JSON report gives its packet range, and a failed step
                       shows its last packets decoded (needs neither root nor
                       usbmon)
  -h, --help           show this help

exit status: 0 every step passed, 1 a step failed,
             2 invalid recipe, usage error, or device not found,
             3 broken installation (the helper is missing or cannot be built),
             130 / 143 / 129 interrupted by Ctrl-C / SIGTERM / SIGHUP (the
             device is released, drivers bound again, reports written)`;

/** The help text of `usb schema`. */
export const SCHEMA_HELP = `usage: usb schema

Prints the JSON Schema of recipe files, for editors. For example:
  usb schema > recipe.schema.json
then start a YAML recipe with
  # yaml-language-server: $schema=recipe.schema.json`;

/** What the commands write to and open; tests replace them. */
export interface CliIo {
  /** Standard output. */
  stdout?: (text: string) => void;
  /** Standard error. */
  stderr?: (text: string) => void;
  /** Whether standard output is a terminal. */
  isTTY?: boolean;
  /** Opens devices (default: usbkit's `open()`). */
  openDevice?: DeviceOpener;
}

function usageError(
  err: (s: string) => void,
  message: string,
  usage: string,
): number {
  err(`usb: ${message}\n\n${usage}\n`);
  return EXIT_USAGE;
}

/**
 * `usb run <recipe> [--var k=v] [--dry-run] [--report json=PATH] [--report junit=PATH]`.
 *
 * @param args the arguments after `run`
 * @param io where to write, and how to open devices (for tests)
 * @returns the exit status: 0 passed, 1 a step failed, 2 invalid recipe,
 * usage error, or device not found, 3 broken installation, 128 + the signal
 * number when a signal interrupted the run
 *
 * @example Checking a recipe without a device
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCommand } from "./cli.ts";
 * const path = await Deno.makeTempFile({ suffix: ".yaml" });
 * await Deno.writeTextFile(path, "name: t\ndevice: {serial: abc}\nsteps: [{log: hello}]\n");
 * let out = "";
 * const status = await runCommand([path, "--dry-run"], { stdout: (s) => out += s });
 * assert.ok(status === 0 && out.includes("nothing was run"));
 * await Deno.remove(path);
 * ```
 */
export async function runCommand(
  args: string[],
  io: CliIo = {},
): Promise<number> {
  const out = io.stdout ?? writerFor(Deno.stdout);
  const err = io.stderr ?? writerFor(Deno.stderr);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        var: { type: "string", multiple: true },
        "dry-run": { type: "boolean" },
        report: { type: "string", multiple: true },
        capture: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return usageError(
      err,
      (e as Error).message.split("\n")[0] ?? "bad arguments",
      RUN_HELP,
    );
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(RUN_HELP + "\n");
    return EXIT_PASSED;
  }
  if (positionals.length !== 1) {
    return usageError(
      err,
      positionals.length === 0
        ? "run needs a recipe file"
        : `run takes one recipe, got ${positionals.length}`,
      RUN_HELP,
    );
  }
  const file = positionals[0]!;

  const vars: Record<string, string> = {};
  for (const v of values.var ?? []) {
    const eq = v.indexOf("=");
    const name = eq < 0 ? v : v.slice(0, eq);
    if (eq < 0 || !VAR_NAME.test(name)) {
      return usageError(
        err,
        `--var expects name=value with a name of letters, digits and _, got "${v}"`,
        RUN_HELP,
      );
    }
    vars[name] = v.slice(eq + 1);
  }

  const reports: { kind: "json" | "junit"; path: string }[] = [];
  for (const r of values.report ?? []) {
    const m = /^(json|junit)=(.+)$/.exec(r);
    if (!m) {
      return usageError(
        err,
        `--report expects json=PATH or junit=PATH, got "${r}"`,
        RUN_HELP,
      );
    }
    reports.push({ kind: m[1] as "json" | "junit", path: m[2]! });
  }

  let loaded;
  try {
    // With the values, fields that use them are checked as the run sees them.
    loaded = await loadRecipe(file, { vars });
  } catch (e) {
    if (!(e instanceof RecipeError)) throw e;
    const n = e.problems.length;
    err(
      `${e.message}\n${file}: ${
        n === 1 ? "1 problem" : `${n} problems`
      }; nothing was run\n`,
    );
    return EXIT_USAGE;
  }

  if (values["dry-run"]) {
    out(formatPlan(loaded.recipe, file) + "\n");
    return EXIT_PASSED;
  }

  // usb run handles the signals itself: the run stops, the device is
  // released (drivers bound again), and the reports are still written.
  const controller = new AbortController();
  let caught: ExitSignal | undefined;
  const listeners: [ExitSignal, () => void][] = [];
  for (const sig of Object.keys(EXIT_SIGNALS) as ExitSignal[]) {
    const fn = () => {
      if (caught !== undefined) {
        // A second signal: the user means it. Give the drivers back now.
        releaseAllNow();
        Deno.exit(signalExitCode(sig));
      }
      caught = sig;
      err(`\nusb: ${sig}: stopping the run and releasing the device\n`);
      controller.abort(sig);
    };
    try {
      Deno.addSignalListener(sig, fn);
      listeners.push([sig, fn]);
    } catch {
      // No signals here (or not allowed): the default action applies.
    }
  }
  handleExitSignals(false);
  let capture: Capture | undefined;
  if (values.capture !== undefined) {
    try {
      capture = captureAll(values.capture);
    } catch (e) {
      for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
      handleExitSignals(true);
      return usageError(
        err,
        `--capture: ${e instanceof Error ? e.message : String(e)}`,
        RUN_HELP,
      );
    }
  }
  let result: RunResult;
  try {
    const reporter = new TerminalReporter({
      write: out,
      writeError: err,
      ...(io.isTTY === undefined ? {} : { isTTY: io.isTTY }),
    });
    result = await runRecipe(loaded.recipe, {
      vars,
      observer: reporter,
      signal: controller.signal,
      baseDir: loaded.baseDir,
      file,
      ...(io.openDevice ? { openDevice: io.openDevice } : {}),
      ...(capture ? { capture } : {}),
    });
  } finally {
    handleExitSignals(true);
    if (capture !== undefined) {
      stopCaptureAll();
      err(`capture: ${capture.packets} packets in ${capture.path}\n`);
    }
  }

  let status = result.outcome === "passed"
    ? EXIT_PASSED
    : result.outcome === "interrupted"
    ? signalExitCode(caught ?? "SIGINT")
    : result.error?.code === "helper-unavailable"
    ? EXIT_INSTALL
    : result.outcome === "failed"
    ? EXIT_FAILED
    : EXIT_USAGE;
  for (const r of reports) {
    try {
      if (r.kind === "json") await writeJsonReport(r.path, result);
      else await writeJunitReport(r.path, result);
    } catch (e) {
      err(
        `usb: cannot write the ${r.kind} report to ${r.path}: ${
          (e as Error).message
        }\n`,
      );
      if (status === EXIT_PASSED) status = EXIT_USAGE;
    }
  }
  // Signals stay caught until the reports are written.
  for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  return status;
}

/**
 * `usb schema`: prints the JSON Schema of recipe files.
 *
 * @param args the arguments after `schema`
 * @param io where to write (for tests)
 * @returns the exit status: 0, or 2 for a usage error
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { schemaCommand } from "./cli.ts";
 * let out = "";
 * const status = await schemaCommand([], { stdout: (s) => out += s });
 * assert.ok(status === 0 && JSON.parse(out).title === "usbkit recipe");
 * ```
 */
export function schemaCommand(
  args: string[],
  io: Pick<CliIo, "stdout" | "stderr"> = {},
): Promise<number> {
  const out = io.stdout ?? writerFor(Deno.stdout);
  const err = io.stderr ?? writerFor(Deno.stderr);
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) {
    out(SCHEMA_HELP + "\n");
    return Promise.resolve(EXIT_PASSED);
  }
  if (args.length > 0) {
    return Promise.resolve(
      usageError(
        err,
        `schema takes no arguments, got ${args.join(" ")}`,
        SCHEMA_HELP,
      ),
    );
  }
  out(JSON.stringify(recipeJsonSchema(), null, 2) + "\n");
  return Promise.resolve(EXIT_PASSED);
}
