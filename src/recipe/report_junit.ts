/**
 * The JUnit XML report of a run, which CI servers read: the recipe is a test
 * suite and each step a test case (the `finally` steps too, as `F1`, `F2`,
 * …), with a failure message that reads like the terminal's. A case names
 * the device its step used when the recipe has several, and carries it and
 * the step's waits (in seconds) as properties; the waits are also said in
 * its system-out.
 *
 * @module
 */

import { formatFailure } from "./report_terminal.ts";
import type { RunResult, StepResult } from "./runner.ts";

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
// The characters XML 1.0 cannot hold (section 2.2, "Char").
// deno-lint-ignore no-control-regex
const NOT_XML = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g;

/**
 * Escapes text for XML attributes and content. Characters XML 1.0 cannot hold
 * (most control characters) become `\xNN`, and terminal colour codes are
 * dropped.
 *
 * @param text any text
 * @returns the escaped text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeXml } from "./report_junit.ts";
 * assert.ok(escapeXml('a<b & "c"') === "a&lt;b &amp; &quot;c&quot;");
 * ```
 */
export function escapeXml(text: string): string {
  return text
    .replace(ANSI, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(
      NOT_XML,
      (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
    );
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

/** The steps that become test cases: inner steps of repeats, not the repeats. */
function leaves(steps: readonly StepResult[]): StepResult[] {
  return steps.flatMap((
    s,
  ) => (s.children && s.status !== "skipped" ? leaves(s.children) : [s]));
}

function caseName(s: StepResult, named: boolean): string {
  const id = s.iteration === undefined ? s.id : `${s.id} #${s.iteration}`;
  const on = named && s.device ? `[${s.device}] ` : "";
  return `${id} ${on}${s.name ? `${s.name} (${s.title})` : s.title}`;
}

/**
 * A test case's properties: the device the step used and its waits (in
 * seconds), as `<property>` elements, which CI servers show with the case.
 */
function caseProperties(s: StepResult): string[] {
  const props: [string, string][] = [];
  if (s.device !== undefined) props.push(["device", s.device]);
  for (const w of s.waits ?? []) {
    props.push([
      `wait.${w.device}.${w.for}`,
      `${seconds(w.durationMs)}${w.ok ? "" : " (timed out or failed)"}`,
    ]);
  }
  if (props.length === 0) return [];
  return [
    `      <properties>`,
    ...props.map(([k, v]) =>
      `        <property name="${escapeXml(k)}" value="${escapeXml(v)}"/>`
    ),
    `      </properties>`,
  ];
}

/** A step's waits for people: `waited 1.203 s for loopback to appear`. */
function waitLines(s: StepResult): string[] {
  return (s.waits ?? []).map((w) =>
    `waited ${seconds(w.durationMs)} s for ${w.device} to ${w.for}${
      w.ok ? "" : ", in vain"
    }`
  );
}

/**
 * The JUnit XML text of a run.
 *
 * @param result the run's result
 * @returns the XML document
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { junitReport } from "./report_junit.ts";
 * const xml = junitReport({
 *   recipe: { name: "t" }, outcome: "failed", startedAt: new Date(0).toISOString(), durationMs: 5,
 *   vars: {}, summary: { passed: 0, failed: 1, skipped: 0, total: 1 },
 *   steps: [{
 *     id: "1", path: "steps[0]", kind: "bulk", title: "bulk IN 0x81, 13 B", status: "failed",
 *     startMs: 0, durationMs: 2, failures: [{ message: "status: expected ok, got stall" }],
 *   }],
 * });
 * assert.ok(xml.includes('<failure message="status: expected ok, got stall"'));
 * ```
 */
export function junitReport(result: RunResult): string {
  const cases = [...leaves(result.steps), ...leaves(result.finally ?? [])];
  // With several devices, each case names the one it used.
  const named = (result.devices?.length ?? 0) > 1;
  const suite = escapeXml(result.recipe.name);
  const body: string[] = [];
  let failures = 0;
  let errors = 0;
  let skipped = 0;

  if (result.error) {
    // Nothing ran, or setup failed: one case says why, so CI shows it.
    errors++;
    const e = result.error;
    const text = `error[${e.code}]: ${e.message}${
      e.hint ? `\n  hint: ${e.hint}` : ""
    }`;
    body.push(
      `    <testcase classname="${suite}" name="${
        escapeXml(
          result.outcome === "interrupted"
            ? "run interrupted"
            : `open ${result.device?.selector ?? "device"}`,
        )
      }" time="${seconds(result.device?.waitedMs ?? 0)}">`,
      `      <error message="${
        escapeXml(`error[${e.code}]: ${e.message}`)
      }" type="${escapeXml(e.code)}">${escapeXml(text)}</error>`,
      `    </testcase>`,
    );
  }

  for (const s of cases) {
    const open = `    <testcase classname="${suite}" name="${
      escapeXml(caseName(s, named))
    }" time="${seconds(s.durationMs)}"`;
    const props = caseProperties(s);
    if (s.status === "skipped") {
      skipped++;
      body.push(
        `${open}>`,
        ...props,
        `      <skipped message="${escapeXml(s.skipReason ?? "skipped")}"/>`,
        `    </testcase>`,
      );
      continue;
    }
    const said = [
      ...(s.message !== undefined ? [s.message] : []),
      ...waitLines(s),
    ];
    const out = said.length
      ? [`      <system-out>${escapeXml(said.join("\n"))}</system-out>`]
      : [];
    if (s.status === "passed") {
      const inner = [...props, ...out];
      body.push(
        inner.length ? `${open}>` : `${open}/>`,
        ...inner,
        ...(inner.length ? [`    </testcase>`] : []),
      );
      continue;
    }
    const text = formatFailure(s);
    const first = s.failures[0]?.message ??
      (s.error ? `error[${s.error.code}]: ${s.error.message}` : "failed");
    // An expectation that did not hold is a failure; a transfer that threw
    // (timeout, disconnect) is an error, as JUnit tells them apart.
    const tag = s.failures.length ? "failure" : "error";
    const type = s.failures.length ? "expectation" : s.error?.code ?? "error";
    if (tag === "failure") failures++;
    else errors++;
    body.push(
      `${open}>`,
      ...props,
      `      <${tag} message="${escapeXml(first)}" type="${escapeXml(type)}">${
        escapeXml(text)
      }</${tag}>`,
      ...out,
      `    </testcase>`,
    );
  }

  const tests = cases.length + (result.error ? 1 : 0);
  const counts =
    `tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${
      seconds(result.durationMs)
    }"`;
  const props = Object.entries(result.vars).map(([k, v]) =>
    `      <property name="${escapeXml(`var.${k}`)}" value="${
      escapeXml(String(v))
    }"/>`
  );
  if (result.devices) {
    props.unshift(
      ...result.devices.map((d) =>
        `      <property name="${escapeXml(`device.${d.name}`)}" value="${
          escapeXml(d.selector)
        }"/>`
      ),
    );
  } else if (result.device) {
    props.unshift(
      `      <property name="device" value="${
        escapeXml(result.device.selector)
      }"/>`,
    );
  }
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="usbkit recipes" ${counts}>`,
    `  <testsuite name="${suite}" ${counts} timestamp="${
      escapeXml(result.startedAt)
    }"${result.recipe.file ? ` file="${escapeXml(result.recipe.file)}"` : ""}>`,
    ...(props.length
      ? [`    <properties>`, ...props, `    </properties>`]
      : []),
    ...body,
    `  </testsuite>`,
    `</testsuites>`,
    "",
  ].join("\n");
}

/**
 * Writes the JUnit XML report to a file.
 *
 * @param path where to write
 * @param result the run's result
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeJunitReport } from "./report_junit.ts";
 * const path = await Deno.makeTempFile({ suffix: ".xml" });
 * await writeJunitReport(path, {
 *   recipe: { name: "t" }, outcome: "passed", startedAt: new Date(0).toISOString(), durationMs: 1,
 *   steps: [], vars: {}, summary: { passed: 0, failed: 0, skipped: 0, total: 0 },
 * });
 * assert.ok((await Deno.readTextFile(path)).startsWith("<?xml"));
 * await Deno.remove(path);
 * ```
 */
export async function writeJunitReport(
  path: string,
  result: RunResult,
): Promise<void> {
  await Deno.writeTextFile(path, junitReport(result));
}
