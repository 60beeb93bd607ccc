/**
 * What the guest cannot do for itself, done on the host before a boot: the
 * guest has no network (so npm packages must already be in node_modules and
 * Deno's cache) and no cargo on its PATH (so the Rust helper must already be
 * built). {@linkcode prepareGuest} does both, and only what is missing or
 * stale, so `deno task vm`, `deno task demo` and `deno task test` all start
 * from the same state a fresh clone needs.
 *
 * @module
 */

import { projectRoot } from "./util.ts";

/** What {@linkcode prepareGuest} did, for a caller that wants to report it. */
export interface Prepared {
  /** `deno install` exit status (0 when the packages are in place). */
  installCode: number;
  /** Whether the helper is usable: built now, or already up to date. */
  helperReady: boolean;
  /** Why the helper is not ready (the build's error, for people). */
  helperProblem?: string;
}

/**
 * Runs `deno install` (npm packages into node_modules, for a guest with no
 * network) and builds the Rust helper on the host when it is missing or older
 * than its sources. A failed helper build is reported, not thrown: the guest
 * can still run commands that do not open devices.
 *
 * @param options `quiet` sends the tools' output to /dev/null
 * @returns what was done
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prepareGuest } from "./prepare.ts";
 * const p = await prepareGuest({ quiet: true });
 * assert.ok(p.installCode === 0);
 * if (!p.helperReady) console.error(p.helperProblem);
 * ```
 */
export async function prepareGuest(
  options: { quiet?: boolean } = {},
): Promise<Prepared> {
  const root = projectRoot();
  const deno = Deno.execPath();
  const out = options.quiet ? "null" : "inherit";
  const install = await new Deno.Command(deno, {
    args: ["install", "--quiet"],
    cwd: root,
    stdin: "null",
    stdout: out,
    stderr: out,
  }).output();
  // The build runs in a child so that a cargo failure prints like
  // `deno task build` does and cannot take this process down.
  const build = await new Deno.Command(deno, {
    args: ["run", "-A", "scripts/build_helper.ts"],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(build.stderr).trim();
  const result: Prepared = {
    installCode: install.code,
    helperReady: build.code === 0,
  };
  if (build.code !== 0) {
    result.helperProblem = text || `helper build exited ${build.code}`;
  } else if (!options.quiet && text.includes("helper built")) {
    console.error(text);
  }
  return result;
}

/**
 * What {@linkcode checkDevices} found.
 *
 * @example
 * ```ts
 * import type { DeviceCheck } from "./prepare.ts";
 * const c: DeviceCheck = { ok: false, code: 2, output: "error[invalid-argument]: ..." };
 * ```
 */
export interface DeviceCheck {
  /** Every module loaded and its device is valid. */
  ok: boolean;
  /** `usb serve --dry-run`'s exit status. */
  code: number;
  /** What it printed (one line per device, or the problems). */
  output: string;
}

/**
 * Checks device modules written in TypeScript on the host, before a boot:
 * `usb serve --dry-run FILE...` imports each (which also caches whatever it
 * imports, for a guest with no network) and validates its device. A
 * mistake in a definition is reported in a second instead of after a boot.
 *
 * @param files the device modules (relative to the current directory)
 * @returns whether they are usable, and what `usb serve` said
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDevices } from "./prepare.ts";
 * const root = new URL("../", import.meta.url).pathname;
 * const c = await checkDevices([`${root}scripts/examples/vendor_device.ts`]);
 * assert.ok(c.ok, c.output);
 * assert.match(c.output, /1209:0001/);
 * ```
 */
export async function checkDevices(
  files: readonly string[],
): Promise<DeviceCheck> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${projectRoot()}/scripts/usb.ts`,
      "serve",
      "--dry-run",
      ...files,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const td = new TextDecoder();
  return {
    ok: out.code === 0,
    code: out.code,
    output: (td.decode(out.stdout) + td.decode(out.stderr)).trim(),
  };
}
