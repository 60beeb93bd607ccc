/**
 * `deno task compile`: builds `dist/usb`, the `usb` command line as ONE file
 * that runs on a Linux x86-64 machine with neither Deno nor Rust installed.
 *
 * Why not `deno compile`: it needs `denort`, the runtime it copies into the
 * executable, which it downloads from the Deno release server; no npm package
 * ships it, and the `deno` binary cannot stand in for it (an executable made
 * that way starts the REPL). This machine reaches only npm and Debian, so
 * `dist/usb` is built from parts that are here instead:
 *
 * - a POSIX `sh` header (a few lines, readable with `head -n 40 dist/usb`),
 * - followed by a gzip'd tar of: the `deno` binary that runs this script (from
 *   the npm package `deno`), the library and CLI sources with their npm
 *   packages (node_modules/, so nothing is fetched at run time), and the
 *   release build of the Rust helper.
 *
 * On its first run `dist/usb` unpacks the tar into a per-user cache,
 * `${XDG_CACHE_HOME:-~/.cache}/usbkit/usb-<sha256 of the tar>/` (into a
 * temporary directory renamed into place, so an interrupted first run never
 * leaves half a tree), copies the helper to
 * `${XDG_CACHE_HOME:-~/.cache}/usbkit/helper-<sha256 of the helper>.so` the
 * same way (where the library finds it too: src/helper_lookup.ts), and then
 * `exec`s its deno on `scripts/usb.ts` with `--cached-only`. Later runs find
 * both and start at once; a new build has a new hash, so old and new
 * binaries never mix files.
 *
 * ```sh
 * deno task compile            # dist/usb (about 40 MB)
 * deno task compile -o /tmp/usb
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { buildHelper } from "../src/ffi.ts";
import { UsbError } from "../src/errors.ts";
import { atomicWrite, projectRoot } from "../kernel/util.ts";

/** What goes into the tar, relative to the project root. */
export const APP_FILES: readonly string[] = [
  "deno.json",
  "deno.lock",
  "mod.ts",
  "src",
  "scripts",
  "kernel",
  "node_modules",
];

/** Hex SHA-256 of some bytes. */
async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * The `sh` header of `dist/usb`. `offset` is the 1-based byte where the tar
 * starts (`tail -c +offset`): the header's own length plus one, so the
 * header is built with a fixed-width offset field.
 *
 * @param tarSha SHA-256 of the tar (names the unpacked tree)
 * @param helperSha SHA-256 of the helper (names its cached copy)
 * @param offset where the tar starts
 * @returns the header text
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { header } from "./compile.ts";
 * const h = header("a".repeat(64), "b".repeat(64), 1234);
 * assert.ok(h.startsWith("#!/bin/sh\n"));
 * assert.match(h, /o=0000001234\n/);
 * assert.ok(header("a".repeat(64), "b".repeat(64), 1).length === h.length);
 * ```
 */
export function header(
  tarSha: string,
  helperSha: string,
  offset: number,
): string {
  const at = String(offset).padStart(10, "0");
  return `#!/bin/sh
# usb: usbkit's command line in one file (made by \`deno task compile\`).
# On its first run it unpacks itself into \${XDG_CACHE_HOME:-~/.cache}/usbkit/
# (Deno, the usbkit sources, the helper) and runs from there. The payload is a
# gzip'd tar from byte ${at} on: tail -c +${at} usb | tar -tzf - lists it.
set -e
t=${tarSha.slice(0, 16)} h=${helperSha.slice(0, 16)} o=${at}
c="\${XDG_CACHE_HOME:-\${HOME:-/tmp}/.cache}/usbkit"
d="$c/usb-$t"
if [ ! -f "$d/.complete" ]; then
	mkdir -p "$c"
	w="$c/.usb-$t.$$"
	rm -rf "$w" && mkdir "$w"
	tail -c +$o "$0" | tar -xzf - -C "$w" || { rm -rf "$w"; echo "usb: cannot unpack into $c" >&2; exit 3; }
	: >"$w/.complete"
	if [ -e "$d" ]; then rm -rf "$w"; else mv "$w" "$d"; fi
fi
f="$c/helper-$h.so"
if [ ! -f "$f" ]; then
	cp "$d/helper.so" "$f.$$" && mv -f "$f.$$" "$f"
fi
export USBKIT_HELPER="\${USBKIT_HELPER:-$f}" DENO_DIR="$d/deno-dir" DENO_NO_UPDATE_CHECK=1
exec "$d/deno" run -A --cached-only --quiet --config "$d/app/deno.json" "$d/app/scripts/usb.ts" "$@"
`;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${out.code}`);
  }
}

/**
 * Builds the single-file `usb` at `output`.
 *
 * @param output where to write it (made executable)
 * @returns its size and the hashes that name its cache entries
 *
 * @example
 * ```ts ignore
 * // Ignored: it builds the helper with cargo and packs a 95 MB runtime;
 * // tests/device/compiled_test.ts runs the result in the guest.
 * import { compile } from "./compile.ts";
 * await compile("dist/usb");
 * ```
 */
export async function compile(
  output: string,
): Promise<{ bytes: number; tarSha: string; helperSha: string }> {
  const root = projectRoot();
  buildHelper({ quiet: true });
  const helperPath = `${root}/helper/target/release/libusbkit_helper.so`;
  const stage = await Deno.makeTempDir({ prefix: "usbkit-compile-" });
  try {
    await Deno.mkdir(`${stage}/app`);
    for (const f of APP_FILES) {
      await run("cp", ["-a", `${root}/${f}`, `${stage}/app/`], root);
    }
    await Deno.copyFile(Deno.execPath(), `${stage}/deno`);
    await Deno.chmod(`${stage}/deno`, 0o755);
    await Deno.copyFile(helperPath, `${stage}/helper.so`);
    await run("tar", [
      "-czf",
      `${stage}.tgz`,
      "--owner=0",
      "--group=0",
      "-C",
      stage,
      "deno",
      "helper.so",
      "app",
    ], root);
    const tar = await Deno.readFile(`${stage}.tgz`);
    const tarSha = await sha256(tar);
    const helperSha = await sha256(await Deno.readFile(helperPath));
    const probe = header(tarSha, helperSha, 1);
    const head = new TextEncoder().encode(
      header(tarSha, helperSha, new TextEncoder().encode(probe).length + 1),
    );
    const file = new Uint8Array(head.length + tar.length);
    file.set(head);
    file.set(tar, head.length);
    const dir = output.includes("/")
      ? output.slice(0, output.lastIndexOf("/"))
      : ".";
    await Deno.mkdir(dir, { recursive: true });
    await atomicWrite(output, file, 0o755);
    return { bytes: file.length, tarSha, helperSha };
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
    await Deno.remove(`${stage}.tgz`).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { output: { type: "string", short: "o" } },
  });
  const output = values.output ?? `${projectRoot()}/dist/usb`;
  try {
    const r = await compile(output);
    console.error(
      `usbkit: wrote ${output} (${(r.bytes / 1e6).toFixed(1)} MB; helper ${
        r.helperSha.slice(0, 16)
      })`,
    );
  } catch (e) {
    if (e instanceof UsbError) {
      console.error(e.describe());
      Deno.exit(3);
    }
    throw e;
  }
}
