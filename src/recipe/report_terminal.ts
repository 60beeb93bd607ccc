/**
 * The terminal report: each step with its duration and result as it runs, a
 * hex diff for byte mismatches, a live progress bar for streams (periodic
 * lines when the output is not a terminal), and a summary. Also the plan that
 * `--dry-run` prints.
 *
 * @module
 */

import type { Failure } from "./expect.ts";
import {
  describeData,
  describeSelector,
  describeStep,
  type DeviceReady,
  type RunObserver,
  type RunResult,
  type RunStart,
  type StepResult,
  type StepStart,
  type StreamProgress,
} from "./runner.ts";
import {
  type DataSpec,
  type Recipe,
  recipeDevices,
  type Step,
  tagStep,
} from "./schema.ts";
import { formatDuration, formatHex, formatRate, formatSize } from "./values.ts";
import type { Template } from "./interpolate.ts";

/** Where and how the terminal report writes. */
export interface TerminalOptions {
  /** Writes report text (default: standard output). */
  write?: (text: string) => void;
  /** Writes errors (default: standard error). */
  writeError?: (text: string) => void;
  /** Whether the output is a terminal: live progress bar and colours. */
  isTTY?: boolean;
  /** Colours; default: on for a terminal unless NO_COLOR is set. */
  color?: boolean;
}

const encoder = new TextEncoder();

/**
 * A function that writes text to a file synchronously and completely, so that
 * progress lines and step lines come out in order.
 *
 * @param file such as `Deno.stdout`
 * @returns the writer
 *
 * @example
 * ```ts
 * import { writerFor } from "./report_terminal.ts";
 * writerFor(Deno.stdout)("hello\n");
 * ```
 */
export function writerFor(
  file: { writeSync(p: Uint8Array): number },
): (text: string) => void {
  return (text) => {
    let bytes = encoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
  };
}

type Paint = (s: string) => string;

function palette(on: boolean) {
  const code = (open: number, close: number): Paint =>
    on ? (s) => `\x1b[${open}m${s}\x1b[${close}m` : (s) => s;
  return {
    green: code(32, 39),
    red: code(31, 39),
    yellow: code(33, 39),
    dim: code(2, 22),
    bold: code(1, 22),
  };
}

/**
 * The lines that explain a failed step, as the terminal shows them (without
 * colour): each failure, its hex diff, the error and its hint. The JUnit
 * report uses the same text.
 *
 * @param result a step's result
 * @returns the lines, joined with newlines
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatFailure } from "./report_terminal.ts";
 * const text = formatFailure({
 *   id: "1", path: "steps[0]", kind: "bulk", title: "bulk IN 0x81, 13 B", status: "failed",
 *   startMs: 0, durationMs: 1, failures: [{ message: "status: expected ok, got stall" }],
 * });
 * assert.ok(text === "status: expected ok, got stall");
 * ```
 */
export function formatFailure(result: StepResult): string {
  const lines: string[] = [];
  for (const f of result.failures) lines.push(...failureLines(f));
  if (result.error) {
    lines.push(`error[${result.error.code}]: ${result.error.message}`);
    if (result.error.hint) lines.push(`  hint: ${result.error.hint}`);
    if (
      result.transfer?.data && result.transfer.direction === "in" &&
      result.transfer.data.length
    ) {
      lines.push(
        `  received before the error: ${formatHex(result.transfer.data, 32)}`,
      );
    }
  }
  if (result.children) {
    for (const c of result.children) {
      if (c.status !== "failed") continue;
      lines.push(
        `${c.id}${c.iteration ? ` #${c.iteration}` : ""} ${c.name ?? c.title}:`,
      );
      lines.push(...formatFailure(c).split("\n").map((l) => `  ${l}`));
    }
  }
  return lines.join("\n");
}

function failureLines(f: Failure): string[] {
  return f.detail
    ? [f.message, ...f.detail.split("\n").map((l) => `  ${l}`)]
    : [f.message];
}

function stepLabel(r: { id: string; iteration?: number }): string {
  return r.iteration === undefined ? r.id : `${r.id} #${r.iteration}`;
}

/**
 * Prints a run as it happens. Pass it as the `observer` of `runRecipe`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TerminalReporter } from "./report_terminal.ts";
 * let out = "";
 * const reporter = new TerminalReporter({ write: (s) => out += s, isTTY: false });
 * reporter.stepFinished(
 *   { id: "1", path: "steps[0]", kind: "log", title: "log", status: "passed", startMs: 0, durationMs: 0.1, summary: "hello", failures: [] },
 *   { depth: 0, quiet: false },
 * );
 * assert.ok(out.includes("hello"));
 * ```
 */
export class TerminalReporter implements RunObserver {
  readonly #write: (text: string) => void;
  readonly #writeError: (text: string) => void;
  readonly #tty: boolean;
  readonly #c: ReturnType<typeof palette>;
  #progressShown = false;
  #lastPeriodic = 0;
  #named = false;

  /**
   * A reporter writing to the terminal (or where `options` say).
   *
   * @param options where to write, and whether it is a terminal
   */
  constructor(options: TerminalOptions = {}) {
    this.#write = options.write ?? (writerFor(Deno.stdout));
    this.#writeError = options.writeError ?? options.write ??
      (writerFor(Deno.stderr));
    this.#tty = options.isTTY ?? Deno.stdout.isTerminal();
    const noColor = (() => {
      try {
        return Deno.env.get("NO_COLOR") !== undefined;
      } catch {
        return false; // no --allow-env: keep the default
      }
    })();
    this.#c = palette(options.color ?? (this.#tty && !noColor));
  }

  #line(text: string) {
    this.#clearProgress();
    this.#write(text + "\n");
  }

  #clearProgress() {
    if (this.#progressShown) {
      this.#write("\r\x1b[2K");
      this.#progressShown = false;
    }
  }

  /** Prints the recipe and the device it waits for. */
  runStarted(info: RunStart): void {
    const c = this.#c;
    this.#named = info.recipe.devices !== undefined &&
      Object.keys(info.recipe.devices).length > 1;
    this.#line(
      `${c.bold(info.name)}${
        info.recipe.description ? c.dim(` — ${info.recipe.description}`) : ""
      }`,
    );
    if (info.waitMs > 0) {
      this.#line(
        c.dim(
          `  waiting up to ${formatDuration(info.waitMs)} for ${info.selector}`,
        ),
      );
    }
  }

  /** Prints the device that was opened. */
  deviceReady(info: DeviceReady): void {
    const id = `${info.vendorId.toString(16).padStart(4, "0")}:${
      info.productId.toString(16).padStart(4, "0")
    }`;
    const waited = info.waitedMs >= 50
      ? `, appeared after ${formatDuration(info.waitedMs)}`
      : "";
    const selector = info.selector === id ? "" : ` (${info.selector})`;
    this.#line(
      this.#c.dim(
        `  ${
          info.name ? `${info.name}: ` : ""
        }device ${id}${selector} opened${waited}`,
      ),
    );
  }

  /** Notes the step, and announces a repeat before its inner steps. */
  stepStarted(info: StepStart): void {
    this.#lastPeriodic = performance.now();
    if (info.kind === "repeat" && !info.quiet) {
      this.#line(
        `${"  ".repeat(info.depth)}  ${this.#c.dim("↻")} ${
          info.id.padEnd(4)
        } ${info.title}`,
      );
    }
  }

  /** Draws the progress bar (terminal) or a line a second (otherwise). */
  streamProgress(info: StreamProgress): void {
    const rate = info.elapsedMs > 0 ? info.bytes / (info.elapsedMs / 1000) : 0;
    const fraction = info.targetBytes
      ? info.bytes / info.targetBytes
      : info.targetMs
      ? info.elapsedMs / info.targetMs
      : 0;
    const of = info.targetBytes ? ` / ${formatSize(info.targetBytes)}` : "";
    const text = `${formatSize(info.bytes)}${of}  ${formatRate(rate)}`;
    if (this.#tty) {
      const width = 30;
      const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
      const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
      this.#write(`\r\x1b[2K     ${info.id.padEnd(4)} ${bar} ${text}`);
      this.#progressShown = true;
      return;
    }
    const now = performance.now();
    if (now - this.#lastPeriodic >= 1000) {
      this.#lastPeriodic = now;
      this.#line(`     ${info.id.padEnd(4)} … ${text}`);
    }
  }

  /** Prints the step's line, and what went wrong if it failed. */
  stepFinished(r: StepResult, info: { depth: number; quiet: boolean }): void {
    const c = this.#c;
    if (info.quiet && r.status !== "failed" && r.kind !== "log") return;
    const indent = "  ".repeat(info.depth);
    const mark = r.status === "passed"
      ? c.green("✓")
      : r.status === "failed"
      ? c.red("✗")
      : c.yellow("-");
    // In a recipe with several devices, each step says which it used.
    const on =
      this.#named && r.device && !/^(wait for|unplug|plug|reset) /.test(r.title)
        ? `${r.device}: `
        : "";
    const title = r.name
      ? `${on}${r.name} ${c.dim(`(${r.title})`)}`
      : `${on}${r.title}`;
    const summary = r.status === "skipped"
      ? c.yellow(`skipped: ${r.skipReason ?? ""}`)
      : r.summary ?? "";
    const time = r.status === "skipped"
      ? ""
      : c.dim(formatDuration(r.durationMs));
    this.#line(
      `${indent}  ${mark} ${stepLabel(r).padEnd(4)} ${title}${
        summary ? `  ${summary}` : ""
      }  ${time}`.trimEnd(),
    );
    if (r.status === "failed" && r.kind !== "repeat") {
      const pad = `${indent}         `;
      for (const line of formatFailure(r).split("\n")) {
        this.#line(pad + this.#paintDiff(line));
      }
      if (r.lastPackets?.length) {
        this.#line(
          pad + c.dim(
            `last packets in the capture (${r.packets?.first}-${r.packets?.last} are this step's):`,
          ),
        );
        for (const p of r.lastPackets) this.#line(`${pad}  ${p}`);
      }
    }
  }

  #paintDiff(line: string): string {
    const c = this.#c;
    const t = line.trimStart();
    if (t.startsWith("- expected, + actual")) return c.dim(line);
    if (/^0x[0-9a-f]+\s+- /.test(t) || t.startsWith("- ")) return c.green(line);
    if (t.startsWith("+ ")) return c.red(line);
    if (/^\^\^/.test(t)) return c.red(line);
    return line;
  }

  /** Announces the finally steps. */
  finallyStarted(): void {
    this.#line(`  ${this.#c.dim("finally (always run)")}`);
  }

  /** Prints the summary, or why nothing ran. */
  runFinished(result: RunResult): void {
    const c = this.#c;
    this.#clearProgress();
    if (result.error) {
      const e = result.error;
      this.#writeError(
        `${c.red(`error[${e.code}]`)}: ${e.message}\n${
          e.hint ? `  hint: ${e.hint}\n` : ""
        }`,
      );
    }
    if (result.outcome === "no-device" || result.outcome === "invalid") return;
    const s = result.summary;
    const parts = [c.green(`${s.passed} passed`)];
    if (s.failed) parts.push(c.red(`${s.failed} failed`));
    if (s.skipped) parts.push(c.yellow(`${s.skipped} skipped`));
    const verdict = result.outcome === "passed"
      ? c.green("PASS")
      : result.outcome === "interrupted"
      ? c.yellow("INTERRUPTED")
      : c.red("FAIL");
    this.#line(
      `${verdict} ${parts.join(", ")} in ${formatDuration(result.durationMs)}`,
    );
  }
}

function describeValue(v: unknown): string {
  if (v === undefined) return "";
  if (typeof v === "object" && v !== null && "source" in v) {
    return (v as Template<unknown>).source;
  }
  if (v instanceof Uint8Array) return formatHex(v, 16);
  if (Array.isArray(v)) {
    return v.map((
      b,
    ) => (b === null
      ? "??"
      : typeof b === "number"
      ? b.toString(16).padStart(2, "0")
      : describeValue(b))
    ).join(" ");
  }
  if (typeof v === "object" && v !== null) {
    return Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) =>
      `${k}: ${describeValue(x)}`
    ).join(", ");
  }
  return String(v);
}

function planDetails(step: Step): string {
  const t = tagStep(step);
  const b = t.body as {
    expect?: Record<string, unknown>;
    save?: Record<string, unknown>;
    onFail?: string;
    timeout?: unknown;
  };
  if (typeof b !== "object" || b === null || b instanceof Uint8Array) return "";
  const parts: string[] = [];
  if (b.expect) {
    const e = Object.entries(b.expect).filter(([, v]) => v !== undefined);
    if (e.length) {
      const shown = e.map(([k, v]) => {
        if (k === "minRate" && typeof v === "number") {
          return `minRate ${formatRate(v)}`;
        }
        if (k === "pattern" && typeof v === "object" && v !== null) {
          const p = v as { type: string; maxPacketSize?: unknown };
          return `pattern ${p.type}${
            p.maxPacketSize === undefined
              ? ""
              : ` (maxPacketSize ${describeValue(p.maxPacketSize)})`
          }`;
        }
        if (k === "data" && typeof v === "object" && v !== null) {
          return `data ${describeData(v as DataSpec)}`;
        }
        return `${k} ${describeValue(v)}`;
      });
      parts.push(`expect ${shown.join("; ")}`);
    }
  }
  if (b.save) parts.push(`save ${Object.keys(b.save).join(", ")}`);
  if (b.timeout !== undefined) {
    parts.push(
      `timeout ${
        typeof b.timeout === "number"
          ? formatDuration(b.timeout)
          : describeValue(b.timeout)
      }`,
    );
  }
  if (b.onFail === "continue") parts.push("continue on failure");
  return parts.join("; ");
}

/**
 * The plan `--dry-run` prints: the device, the interfaces, the variables and
 * every step with its expectations, without opening anything.
 *
 * @param recipe the validated recipe
 * @param file the recipe file
 * @returns the text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRecipe } from "./load.ts";
 * import { formatPlan } from "./report_terminal.ts";
 * const recipe = parseRecipe("name: t\ndevice: {serial: x}\nsteps: [{delay: 5ms}]\n", { file: "t.yaml" });
 * assert.ok(formatPlan(recipe, "t.yaml").includes("delay 5.00 ms"));
 * ```
 */
export function formatPlan(recipe: Recipe, file: string): string {
  const lines: string[] = [];
  lines.push(`recipe      ${recipe.name} (${file})`);
  if (recipe.description) lines.push(`            ${recipe.description}`);
  const time = (v: unknown) =>
    typeof v === "number" ? formatDuration(v) : describeValue(v);
  const devices = recipeDevices(recipe);
  for (const [name, d] of devices) {
    const named = recipe.devices !== undefined;
    const pad = named ? "  " : "";
    lines.push(
      `${named ? `device      ${name}: ` : "device      "}${
        describeSelector(d)
      }${d.wait === undefined ? "" : `, waiting up to ${time(d.wait)}`}${
        d.open === false ? ", opened by a step (open: false)" : ""
      }`,
    );
    if (d.configuration !== undefined) {
      lines.push(`${pad}config      ${describeValue(d.configuration)}`);
    }
    for (const i of d.interfaces ?? []) {
      const extra = [
        "detachKernelDriver" in i && i.detachKernelDriver
          ? "detaching its kernel driver"
          : "",
        "alternate" in i && i.alternate !== undefined
          ? `alternate ${describeValue(i.alternate)}`
          : "",
      ].filter(Boolean).join(", ");
      lines.push(
        `${pad}interface   ${describeValue(i.number)}${
          extra ? ` (${extra})` : ""
        }`,
      );
    }
  }
  if (recipe.recipeTimeout !== undefined) {
    lines.push(`timeout     the whole recipe: ${time(recipe.recipeTimeout)}`);
  }
  for (const [k, v] of Object.entries(recipe.vars ?? {})) {
    lines.push(`var         ${k} = ${JSON.stringify(v)}`);
  }
  lines.push("steps");
  const walk = (steps: readonly Step[], prefix: string, depth: number) => {
    steps.forEach((step, i) => {
      const id = prefix === "F"
        ? `F${i + 1}`
        : prefix
        ? `${prefix}.${i + 1}`
        : String(i + 1);
      const t = tagStep(step);
      const name = typeof (t.body as { name?: unknown })?.name === "string"
        ? `${(t.body as { name: string }).name}: `
        : "";
      const details = planDetails(step);
      const log = t.kind === "log"
        ? ` ${JSON.stringify(describeValue(t.body))}`
        : "";
      const on = recipe.devices !== undefined &&
          typeof (t.body as { device?: unknown })?.device === "string"
        ? `[${(t.body as { device: string }).device}] `
        : "";
      lines.push(
        `${"  ".repeat(depth)}  ${id.padEnd(5)} ${on}${name}${
          describeStep(step)
        }${log}`,
      );
      if (details) lines.push(`${"  ".repeat(depth)}        ${details}`);
      if (t.kind === "repeat") walk(t.body.steps, id, depth + 1);
    });
  };
  walk(recipe.steps, "", 0);
  if (recipe.finally?.length) {
    lines.push("finally (always run, also after a failure or Ctrl-C)");
    walk(recipe.finally, "F", 0);
  }
  lines.push("the recipe is valid; nothing was run (--dry-run)");
  return lines.join("\n");
}
