// The helper lookup order (src/helper_lookup.ts): USBKIT_HELPER, the
// project's build (rebuilt first when older than its sources), the per-user
// cache newest first, a cargo build; and the error that lists the options.

import assert from "node:assert/strict";
import {
  helperCacheDir,
  helperSteps,
  type LookupContext,
  noHelperError,
  systemContext,
} from "../../src/helper_lookup.ts";

const LIB = "/src/usbkit/helper/target/release/libusbkit_helper.so";

/** A machine described by its environment and the files' mtimes. */
function machine(
  env: Record<string, string>,
  files: Record<string, number>,
  options: { sources?: number; project?: boolean } = {},
): LookupContext {
  return {
    env: (n) => env[n],
    projectLibrary: options.project === false ? undefined : LIB,
    hasSources: options.sources !== undefined,
    newestSource: () => options.sources ?? 0,
    mtime: (p) => files[p] ?? 0,
    list: (dir) =>
      Object.keys(files).filter((p) => p.startsWith(`${dir}/`))
        .map((p) => p.slice(dir.length + 1)),
  };
}

Deno.test("lookup: USBKIT_HELPER is the only step when set", () => {
  const steps = helperSteps(machine(
    { USBKIT_HELPER: "/opt/h.so", HOME: "/home/u" },
    { [LIB]: 100, "/home/u/.cache/usbkit/helper-0123456789abcdef.so": 50 },
    { sources: 10 },
  ));
  assert.deepEqual(steps, [{ source: "env", path: "/opt/h.so" }]);
});

Deno.test("lookup: an up-to-date project build comes before the cache", () => {
  const cached = "/home/u/.cache/usbkit/helper-0123456789abcdef.so";
  const steps = helperSteps(machine(
    { HOME: "/home/u" },
    { [LIB]: 100, [cached]: 500 },
    { sources: 90 },
  ));
  assert.deepEqual(steps, [
    { source: "project", path: LIB },
    { source: "cache", path: cached },
  ]);
});

Deno.test("lookup: a project build older than its sources is rebuilt before the cache is tried", () => {
  const cached = "/home/u/.cache/usbkit/helper-0123456789abcdef.so";
  const steps = helperSteps(machine(
    { HOME: "/home/u" },
    { [LIB]: 100, [cached]: 500 },
    { sources: 200 },
  ));
  assert.deepEqual(steps, [
    { source: "build", path: LIB },
    { source: "cache", path: cached },
  ]);
});

Deno.test("lookup: no project build: the cache newest first, then a cargo build", () => {
  const dir = "/x/usbkit";
  const steps = helperSteps(machine(
    { XDG_CACHE_HOME: "/x", HOME: "/home/u" },
    {
      [`${dir}/helper-aaaaaaaaaaaaaaaa.so`]: 10,
      [`${dir}/helper-bbbbbbbbbbbbbbbb.so`]: 30,
      [`${dir}/helper-cccccccccccccccc.so.123`]: 40, // a temporary: not a helper
      [`${dir}/usb-dddddddddddddddd`]: 50, // the compiled usb's tree
      "/home/u/.cache/usbkit/helper-eeeeeeeeeeeeeeee.so": 60, // not XDG's
    },
    { sources: 5 },
  ));
  assert.deepEqual(steps, [
    { source: "cache", path: `${dir}/helper-bbbbbbbbbbbbbbbb.so` },
    { source: "cache", path: `${dir}/helper-aaaaaaaaaaaaaaaa.so` },
    { source: "build", path: LIB },
  ]);
});

Deno.test("lookup: an installed copy (no sources, not on disk) has only the cache", () => {
  const cached = "/home/u/.cache/usbkit/helper-0123456789abcdef.so";
  const steps = helperSteps(
    machine({ HOME: "/home/u" }, { [cached]: 1 }, { project: false }),
  );
  assert.deepEqual(steps, [{ source: "cache", path: cached }]);
  assert.deepEqual(
    helperSteps(machine({}, {}, { project: false })),
    [],
  );
});

Deno.test("lookup: a project build without sources beside it is used as it is", () => {
  const steps = helperSteps(machine({}, { [LIB]: 100 }));
  assert.deepEqual(steps, [{ source: "project", path: LIB }]);
});

Deno.test("cache dir: XDG_CACHE_HOME, else HOME/.cache, else none", () => {
  const env = (e: Record<string, string>) => (n: string) => e[n];
  assert.equal(
    helperCacheDir(env({ XDG_CACHE_HOME: "/c", HOME: "/h" })),
    "/c/usbkit",
  );
  assert.equal(helperCacheDir(env({ HOME: "/h" })), "/h/.cache/usbkit");
  assert.equal(helperCacheDir(env({})), undefined);
});

Deno.test("no helper: the error lists what was tried and the three ways", () => {
  const e = noHelperError([
    { step: { source: "build", path: LIB }, problem: "cargo was not found" },
  ]);
  assert.equal(e.code, "helper-unavailable");
  assert.match(e.message, /build .*libusbkit_helper\.so: cargo was not found/);
  assert.match(e.hint ?? "", /USBKIT_HELPER/);
  assert.match(e.hint ?? "", /~\/\.cache\/usbkit/);
  assert.match(e.hint ?? "", /deno task build/);
});

Deno.test("system context: the real files of this checkout", async () => {
  const root = new URL("../../", import.meta.url);
  const ctx = systemContext(root);
  assert.equal(
    ctx.projectLibrary,
    `${root.pathname}helper/target/release/libusbkit_helper.so`,
  );
  assert.ok(ctx.hasSources);
  assert.ok(ctx.newestSource() > 0);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/helper-0123456789abcdef.so`, new Uint8Array());
    assert.deepEqual(ctx.list(dir), ["helper-0123456789abcdef.so"]);
    assert.ok(ctx.mtime(`${dir}/helper-0123456789abcdef.so`) > 0);
    assert.equal(ctx.mtime(`${dir}/missing`), 0);
    assert.deepEqual(ctx.list(`${dir}/missing`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs helper() in a child, from a copy of src/ with no helper/ beside it. */
async function loadFromCopy(withCache: boolean) {
  const root = new URL("../../", import.meta.url).pathname;
  const tmp = await Deno.makeTempDir();
  const cached = `${tmp}/home/.cache/usbkit/helper-0123456789abcdef.so`;
  try {
    await Deno.mkdir(`${tmp}/home/.cache/usbkit`, { recursive: true });
    if (withCache) {
      await Deno.copyFile(
        `${root}helper/target/release/libusbkit_helper.so`,
        cached,
      );
    }
    await new Deno.Command("cp", { args: ["-a", `${root}src`, `${tmp}/src`] })
      .output();
    const code = `import { helper } from "${tmp}/src/ffi.ts";
import { UsbError } from "${tmp}/src/errors.ts";
try { console.log(helper().path); } catch (e) {
  console.log(e instanceof UsbError ? e.describe() : String(e)); Deno.exit(3);
}`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", code],
      env: { HOME: `${tmp}/home`, XDG_CACHE_HOME: "", USBKIT_HELPER: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const td = new TextDecoder();
    return {
      code: out.code,
      stdout: td.decode(out.stdout).trim(),
      stderr: td.decode(out.stderr),
      cached,
    };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("loader: with no project build, the per-user cache's helper is loaded", async () => {
  const r = await loadFromCopy(true);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(r.stdout, r.cached);
});

Deno.test("loader: with no helper anywhere, the error says the three ways", async () => {
  const r = await loadFromCopy(false);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout, /no usbkit helper could be loaded \(none found\)/);
  assert.match(r.stdout, /USBKIT_HELPER/);
  assert.match(r.stdout, /deno task compile/);
  assert.match(r.stdout, /deno task build/);
});
