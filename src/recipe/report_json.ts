/**
 * The JSON report of a run: every step with its data (hex, shortened when
 * long), its timing and its result, the device it used and what it waited
 * for (with durations), the `finally` steps, and the variables at the end.
 *
 * @module
 */

import type { RunResult, StepResult } from "./runner.ts";
import { formatHex } from "./values.ts";

/** Data longer than this many bytes is shortened in the report. */
export const REPORT_DATA_BYTES = 256;

/** Bytes in a report: hex, and whether it was shortened. */
export interface ReportData {
  /** The full length in bytes. */
  length: number;
  /** Hex pairs of at most {@linkcode REPORT_DATA_BYTES} bytes. */
  hex: string;
  /** True when `hex` holds only the first bytes. */
  truncated: boolean;
}

function data(bytes: Uint8Array, max: number): ReportData {
  const shown = bytes.subarray(0, max);
  return {
    length: bytes.length,
    hex: formatHex(shown),
    truncated: shown.length < bytes.length,
  };
}

const ms = (n: number) => Math.round(n * 1000) / 1000;

function step(r: StepResult, max: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: r.id,
    path: r.path,
    kind: r.kind,
    title: r.title,
  };
  if (r.name !== undefined) out.name = r.name;
  if (r.iteration !== undefined) out.iteration = r.iteration;
  out.status = r.status;
  if (r.skipReason !== undefined) out.skipReason = r.skipReason;
  out.startMs = ms(r.startMs);
  out.durationMs = ms(r.durationMs);
  if (r.summary !== undefined) out.summary = r.summary;
  if (r.transfer) {
    const { data: bytes, ...rest } = r.transfer;
    out.transfer = bytes ? { ...rest, data: data(bytes, max) } : rest;
  }
  if (r.stream) {
    out.stream = {
      bytes: r.stream.bytes,
      durationMs: ms(r.stream.durationMs),
      bytesPerSecond: Math.round(r.stream.rate),
      ...(r.stream.minRate === undefined
        ? {}
        : { minBytesPerSecond: r.stream.minRate }),
    };
  }
  if (r.saved) out.saved = r.saved;
  if (r.message !== undefined) out.message = r.message;
  out.failures = r.failures;
  if (r.error) out.error = r.error;
  if (r.device !== undefined) out.device = r.device;
  if (r.waits) {
    out.waits = r.waits.map((w) => ({ ...w, durationMs: ms(w.durationMs) }));
  }
  if (r.packets) out.packets = r.packets;
  if (r.lastPackets) out.lastPackets = r.lastPackets;
  if (r.children) out.children = r.children.map((c) => step(c, max));
  return out;
}

/**
 * The report as a plain object, ready for `JSON.stringify`.
 *
 * @param result the run's result
 * @param options how many bytes of data to keep per transfer
 * @returns the report
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonReport } from "./report_json.ts";
 * const report = jsonReport({
 *   recipe: { name: "t" }, outcome: "passed", startedAt: new Date(0).toISOString(), durationMs: 1,
 *   steps: [], vars: { lba: 7 }, summary: { passed: 0, failed: 0, skipped: 0, total: 0 },
 * });
 * assert.ok((report.vars as Record<string, number>).lba === 7);
 * ```
 */
export function jsonReport(
  result: RunResult,
  options: { maxDataBytes?: number } = {},
): Record<string, unknown> {
  const max = options.maxDataBytes ?? REPORT_DATA_BYTES;
  return {
    format: "usbkit-recipe-report",
    version: 1,
    recipe: result.recipe,
    outcome: result.outcome,
    startedAt: result.startedAt,
    durationMs: ms(result.durationMs),
    ...(result.device
      ? { device: { ...result.device, waitedMs: ms(result.device.waitedMs) } }
      : {}),
    ...(result.devices
      ? {
        devices: result.devices.map((d) => ({
          ...d,
          waitedMs: ms(d.waitedMs),
        })),
      }
      : {}),
    ...(result.error ? { error: result.error } : {}),
    summary: result.summary,
    vars: result.vars,
    steps: result.steps.map((s) => step(s, max)),
    ...(result.finally
      ? { finally: result.finally.map((s) => step(s, max)) }
      : {}),
  };
}

/**
 * Writes the JSON report to a file.
 *
 * @param path where to write
 * @param result the run's result
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeJsonReport } from "./report_json.ts";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await writeJsonReport(path, {
 *   recipe: { name: "t" }, outcome: "passed", startedAt: new Date(0).toISOString(), durationMs: 1,
 *   steps: [], vars: {}, summary: { passed: 0, failed: 0, skipped: 0, total: 0 },
 * });
 * assert.ok(JSON.parse(await Deno.readTextFile(path)).outcome === "passed");
 * await Deno.remove(path);
 * ```
 */
export async function writeJsonReport(
  path: string,
  result: RunResult,
): Promise<void> {
  await Deno.writeTextFile(
    path,
    JSON.stringify(jsonReport(result), null, 2) + "\n",
  );
}
