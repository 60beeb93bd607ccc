/**
 * Small host-side helpers shared by the bench modules: paths, subprocesses,
 * atomic writes, progress lines.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The project directory (the parent of kernel/).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { projectRoot } from "./util.ts";
 * assert.ok(projectRoot().startsWith("/"));
 * ```
 */
export function projectRoot(): string {
  return dirname(dirname(fileURLToPath(import.meta.url)));
}

/**
 * `<project>/.cache/<sub...>`: git-ignored cache for kernels, images, logs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheDir } from "./util.ts";
 * assert.ok(cacheDir("kernel").endsWith("/.cache/kernel"));
 * ```
 */
export function cacheDir(...sub: string[]): string {
  return join(projectRoot(), ".cache", ...sub);
}

/**
 * Prints a progress line on stderr (stdout stays for the guest's output).
 *
 * @example
 * ```ts
 * import { progress } from "./util.ts";
 * progress("checking the kernel cache");
 * ```
 */
export function progress(message: string): void {
  console.error(`usbkit: ${message}`);
}

/**
 * Result of {@link run}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunOutput } from "./util.ts";
 * import { run } from "./util.ts";
 * const out: RunOutput = await run(["true"]);
 * assert.ok(out.code === 0);
 * ```
 */
export interface RunOutput {
  /** Exit code. */
  code: number;
  /** Captured stdout, decoded. */
  stdout: string;
  /** Captured stderr, decoded. */
  stderr: string;
}

/**
 * Runs a program to completion and captures its output. Throws, quoting the
 * command and its stderr, when it cannot start or (unless `allowFail`)
 * exits non-zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { run } from "./util.ts";
 * const { stdout } = await run(["sh", "-c", "echo hi"]);
 * assert.ok(stdout === "hi\n");
 * ```
 */
export async function run(
  argv: readonly string[],
  opts: {
    cwd?: string;
    allowFail?: boolean;
    env?: Record<string, string>;
    stdin?: Uint8Array;
    inheritStderr?: boolean;
  } = {},
): Promise<RunOutput> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error("run: empty command");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: opts.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: opts.inheritStderr ? "inherit" : "piped",
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    }).spawn();
  } catch (e) {
    throw new Error(`cannot run ${cmd}: ${(e as Error).message}`);
  }
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const td = new TextDecoder();
  const res = {
    code: out.code,
    stdout: td.decode(out.stdout),
    stderr: opts.inheritStderr ? "" : td.decode(out.stderr),
  };
  if (out.code !== 0 && !opts.allowFail) {
    throw new Error(
      `${argv.join(" ")} failed (exit ${out.code})${
        res.stderr ? `:\n${res.stderr.trimEnd()}` : ""
      }`,
    );
  }
  return res;
}

/**
 * Runs a program with `input` on stdin and returns its raw stdout. Used for
 * decompressors; `tolerate` accepts a non-zero exit if the output is good
 * (xz and zstd complain about bytes after the stream, like the kernel's size
 * trailer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipeThrough } from "./util.ts";
 * const out = await pipeThrough(["cat"], new Uint8Array([1, 2]));
 * assert.ok(out.length === 2);
 * ```
 */
export async function pipeThrough(
  argv: readonly string[],
  input: Uint8Array,
  tolerate: (out: Uint8Array) => boolean = () => false,
): Promise<Uint8Array> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error("pipeThrough: empty command");
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writing = (async () => {
    const w = child.stdin.getWriter();
    try {
      await w.write(input);
      await w.close();
    } catch {
      // The program may exit before reading everything (trailing bytes).
    }
  })();
  const out = await child.output();
  await writing;
  if (out.code !== 0 && !tolerate(out.stdout)) {
    throw new Error(
      `${argv.join(" ")} failed (exit ${out.code}): ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return out.stdout;
}

/**
 * Whether a path exists (without following a final symlink's target errors).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exists } from "./util.ts";
 * assert.ok(await exists("/"));
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes a file atomically: to a temporary name in the same directory, then
 * rename. A crash or Ctrl-C mid-write never leaves a truncated file under the
 * final name, so a partial download cannot poison the cache.
 *
 * @example
 * ```ts
 * import { atomicWrite } from "./util.ts";
 * const dir = await Deno.makeTempDir();
 * await atomicWrite(`${dir}/x`, new TextEncoder().encode("x"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function atomicWrite(
  path: string,
  data: Uint8Array | ReadableStream<Uint8Array>,
  mode = 0o644,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(tmp, data, { mode });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Finds an executable in PATH, or returns null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { which } from "./util.ts";
 * assert.ok((await which("sh")) !== null);
 * ```
 */
export async function which(name: string): Promise<string | null> {
  const path = Deno.env.get("PATH") ??
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    const p = join(dir, name);
    try {
      const st = await Deno.stat(p);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Whether this process runs as root (uid 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRoot } from "./util.ts";
 * assert.ok(typeof isRoot() === "boolean");
 * ```
 */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/**
 * Quotes a word for POSIX sh with single quotes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shQuote } from "./util.ts";
 * assert.ok(shQuote("it's") === `'it'\\''s'`);
 * ```
 */
export function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Escapes a value for a QEMU option list: commas are doubled
 * (docs: "to use a comma in a value, double it").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qemuEscape } from "./util.ts";
 * assert.ok(qemuEscape("/a,b") === "/a,,b");
 * ```
 */
export function qemuEscape(value: string): string {
  return value.replaceAll(",", ",,");
}
