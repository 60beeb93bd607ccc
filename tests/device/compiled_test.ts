// The single-file `usb` (dist/usb, made by `deno task compile` on the host
// while `deno task test` prepares the guest) run as on a lab machine: a PATH
// with neither deno nor cargo, an empty home, so the first run unpacks into a
// fresh per-user cache. Each command's output is checked against the bench.

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const USB = `${ROOT}dist/usb`;
const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const home = await Deno.makeTempDir({ prefix: "usbkit-lab-" });
const cache = `${home}/.cache/usbkit`;
globalThis.addEventListener("unload", () => {
  Deno.removeSync(home, { recursive: true });
});

function env(): Record<string, string> {
  return { PATH, HOME: home, NO_COLOR: "1" };
}

async function usb(...args: string[]) {
  const out = await new Deno.Command(USB, {
    args,
    cwd: ROOT,
    clearEnv: true,
    env: env(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  const stdout = d.decode(out.stdout);
  const stderr = d.decode(out.stderr);
  return { code: out.code, stdout, stderr, all: `${stdout}\n${stderr}` };
}

async function sha256(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

Deno.test("compiled usb: the lab PATH has neither deno nor cargo", async () => {
  for (const tool of ["deno", "cargo"]) {
    const r = await new Deno.Command("sh", {
      args: ["-c", `command -v ${tool}`],
      clearEnv: true,
      env: env(),
      stdout: "piped",
    }).output();
    assert.notEqual(r.code, 0, `${tool} is on ${PATH}`);
  }
});

Deno.test("compiled usb list: first run unpacks, lists the bench gadget", async () => {
  const r = await usb("list");
  assert.equal(r.code, 0, r.all);
  assert.match(r.stdout, /0525:a4a0/);
  // The helper went into the per-user cache, named by its hash, and is
  // byte for byte the host's release build.
  const helpers = [...Deno.readDirSync(cache)]
    .filter((e) => /^helper-[0-9a-f]{16}\.so$/.test(e.name));
  assert.equal(helpers.length, 1, JSON.stringify(helpers));
  const built = await sha256(
    `${ROOT}helper/target/release/libusbkit_helper.so`,
  );
  assert.equal(helpers[0]!.name, `helper-${built.slice(0, 16)}.so`);
  assert.equal(await sha256(`${cache}/${helpers[0]!.name}`), built);
  const trees = [...Deno.readDirSync(cache)].filter((e) =>
    e.name.startsWith("usb-")
  );
  assert.equal(trees.length, 1);
  // No temporary directory or file was left behind.
  assert.ok(
    [...Deno.readDirSync(cache)].every((e) => !e.name.startsWith(".")),
  );
});

Deno.test("compiled usb describe: descriptors and capabilities through the cached helper", async () => {
  const r = await usb("describe", "0525:a4a0");
  assert.equal(r.code, 0, r.all);
  assert.match(r.stdout, /0525/);
  // Capabilities come from an ioctl on the opened device: the helper ran.
  assert.match(r.stdout, /MMAP/);
});

Deno.test("compiled usb run: the SourceSink recipe passes, JSON report written", async () => {
  const report = `${home}/report.json`;
  const r = await usb(
    "run",
    "recipes/sourcesink-smoke.yaml",
    "--var",
    "message=from the lab",
    "--report",
    `json=${report}`,
  );
  assert.equal(r.code, 0, r.all);
  const json = JSON.parse(await Deno.readTextFile(report));
  assert.equal(json.outcome, "passed");
  assert.equal(json.vars.message, "from the lab");
});

Deno.test("compiled usb watch: the snapshot lists the gadget, SIGTERM ends it with 143", async () => {
  const child = new Deno.Command(USB, {
    args: ["watch", "--snapshot", "--json", "0525:a4a0"],
    cwd: ROOT,
    clearEnv: true,
    env: env(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  child.kill("SIGTERM");
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  const err = await new Response(child.stderr).text();
  const status = await child.status;
  const line = JSON.parse(text.split("\n")[0]!) as {
    type: string;
    vendorId: number;
    productId: number;
  };
  assert.equal(line.type, "add", err);
  assert.equal(line.vendorId, 0x0525);
  assert.equal(line.productId, 0xa4a0);
  assert.equal(status.code, 143, err);
});
