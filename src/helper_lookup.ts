/**
 * Where the Rust helper comes from, in order (src/ffi.ts tries each):
 *
 * 1. `USBKIT_HELPER`: the path of a prebuilt `libusbkit_helper.so`. When it
 *    is set, it is the only candidate (a wrong path is an error, not a
 *    silent fallback).
 * 2. The project's own build, `helper/target/release/libusbkit_helper.so`,
 *    when it is not older than the sources beside it. When it is older, cargo
 *    rebuilds it first (a developer's edit must not be shadowed by a cached
 *    copy).
 * 3. The per-user cache, `${XDG_CACHE_HOME:-~/.cache}/usbkit/helper-*.so`,
 *    where the single-file `usb` (`deno task compile`) puts its helper on
 *    its first run: newest first; the loader keeps the first whose ABI
 *    matches.
 * 4. `cargo build --release --offline` in helper/, when the sources are
 *    there.
 *
 * When none gives a helper, {@linkcode noHelperError} says exactly these
 * options.
 *
 * @module
 */

import { UsbError } from "./errors.ts";

/** Where a candidate helper comes from. */
export type HelperSource = "env" | "project" | "cache" | "build";

/** One step of the lookup: load `path`, or (for "build") build it first. */
export interface HelperStep {
  /** Which rule of the lookup order this is. */
  source: HelperSource;
  /** The shared library to load (for "build": where cargo writes it). */
  path: string;
}

/** What the lookup needs to know about the machine (injectable for tests). */
export interface LookupContext {
  /** An environment variable, or undefined. */
  env(name: string): string | undefined;
  /** The project's build path, or undefined for a copy not on disk (https). */
  projectLibrary: string | undefined;
  /** Whether the helper's sources (helper/Cargo.toml) are on disk. */
  hasSources: boolean;
  /** Newest modification time of the sources, ms (0 when none). */
  newestSource(): number;
  /** A file's modification time, ms, or 0 when it does not exist. */
  mtime(path: string): number;
  /** The names in a directory, or [] when it does not exist. */
  list(dir: string): string[];
}

/**
 * The per-user cache directory: `$XDG_CACHE_HOME/usbkit`, else
 * `$HOME/.cache/usbkit`; undefined when neither variable is set.
 *
 * @param env reads an environment variable
 * @returns the directory, without a trailing slash
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { helperCacheDir } from "./helper_lookup.ts";
 * const env = { HOME: "/home/lab" } as Record<string, string>;
 * assert.ok(helperCacheDir((n) => env[n]) === "/home/lab/.cache/usbkit");
 * ```
 */
export function helperCacheDir(
  env: (name: string) => string | undefined,
): string | undefined {
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/usbkit`;
  const home = env("HOME");
  return home ? `${home}/.cache/usbkit` : undefined;
}

/** Name of a cached helper: `helper-<hex of its SHA-256>.so`. */
const CACHED = /^helper-[0-9a-f]{8,64}\.so$/;

/**
 * The lookup order for this machine, as steps for src/ffi.ts to try.
 *
 * @param ctx what the lookup may read
 * @returns the steps, first to try first
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { helperSteps } from "./helper_lookup.ts";
 * const steps = helperSteps({
 *   env: (n) => (n === "USBKIT_HELPER" ? "/opt/usbkit/helper.so" : undefined),
 *   projectLibrary: undefined,
 *   hasSources: false,
 *   newestSource: () => 0,
 *   mtime: () => 0,
 *   list: () => [],
 * });
 * assert.deepEqual(steps, [{ source: "env", path: "/opt/usbkit/helper.so" }]);
 * ```
 */
export function helperSteps(ctx: LookupContext): HelperStep[] {
  const fromEnv = ctx.env("USBKIT_HELPER");
  if (fromEnv) return [{ source: "env", path: fromEnv }];
  const steps: HelperStep[] = [];
  const lib = ctx.projectLibrary;
  const built = lib === undefined ? 0 : ctx.mtime(lib);
  const canBuild = lib !== undefined && ctx.hasSources;
  if (lib !== undefined && built !== 0) {
    if (!ctx.hasSources || built >= ctx.newestSource()) {
      steps.push({ source: "project", path: lib });
    } else {
      steps.push({ source: "build", path: lib });
    }
  }
  const dir = helperCacheDir((n) => ctx.env(n));
  if (dir !== undefined) {
    const cached = ctx.list(dir).filter((n) => CACHED.test(n))
      .map((n) => ({ path: `${dir}/${n}`, t: ctx.mtime(`${dir}/${n}`) }))
      .sort((a, b) => b.t - a.t || (a.path < b.path ? -1 : 1));
    for (const c of cached) steps.push({ source: "cache", path: c.path });
  }
  if (canBuild && built === 0) steps.push({ source: "build", path: lib });
  return steps;
}

/**
 * The error when no step gave a usable helper: what was tried and why each
 * failed, then the three ways to get one.
 *
 * @param tried each step tried and why it did not do
 * @returns a `helper-unavailable` UsbError
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { noHelperError } from "./helper_lookup.ts";
 * const e = noHelperError([]);
 * assert.ok(e.code === "helper-unavailable");
 * assert.match(e.hint ?? "", /USBKIT_HELPER/);
 * ```
 */
export function noHelperError(
  tried: readonly { step: HelperStep; problem: string }[],
): UsbError {
  const lines = tried.map(({ step, problem }) =>
    `${step.source} ${step.path}: ${problem}`
  );
  return new UsbError(
    "helper-unavailable",
    `no usbkit helper could be loaded${
      lines.length === 0 ? " (none found)" : `; tried:\n  ${lines.join("\n  ")}`
    }`,
    {
      hint: "get one of three ways: " +
        "(1) set USBKIT_HELPER to the path of a prebuilt libusbkit_helper.so; " +
        "(2) run the single-file `usb` (`deno task compile` makes dist/usb) once as this user: " +
        "it puts its helper in ~/.cache/usbkit/, where the library finds it; " +
        "(3) install Rust 1.77 or newer (`apt-get install cargo` or https://rustup.rs) " +
        "and run `deno task build` in the usbkit checkout",
    },
  );
}

/**
 * The lookup context of this process: the real environment and file system,
 * with the project's build and sources next to this module.
 *
 * @param projectRoot the project's root URL (file: for a checkout)
 * @returns the context
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { systemContext } from "./helper_lookup.ts";
 * const ctx = systemContext(new URL("https://example.com/usbkit/"));
 * assert.ok(ctx.projectLibrary === undefined && !ctx.hasSources);
 * ```
 */
export function systemContext(projectRoot: URL): LookupContext {
  const local = projectRoot.protocol === "file:";
  const helperDir = new URL("helper/", projectRoot).pathname;
  const mtime = (path: string) => {
    try {
      return Deno.statSync(path).mtime?.getTime() ?? 0;
    } catch {
      return 0;
    }
  };
  const list = (dir: string) => {
    try {
      return [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch {
      return [];
    }
  };
  return {
    env: (name) => Deno.env.get(name),
    projectLibrary: local
      ? `${helperDir}target/release/libusbkit_helper.so`
      : undefined,
    hasSources: local && mtime(`${helperDir}Cargo.toml`) !== 0,
    newestSource: () =>
      Math.max(
        mtime(`${helperDir}Cargo.toml`),
        ...list(`${helperDir}src`).map((n) => mtime(`${helperDir}src/${n}`)),
      ),
    mtime,
    list,
  };
}
