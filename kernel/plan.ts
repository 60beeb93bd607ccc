/**
 * The per-run part of a guest boot, computed on the host: which modules to
 * load with which parameters, the configfs commands for the gadgets, the
 * bench record template, and the command line with its environment. It is
 * rendered as `bench.sh`, which kernel/init.sh sources.
 *
 * Pure functions only, so it is unit-tested on the host.
 *
 * @module
 */

import type { BenchInfo, ResolvedBench, ResolvedGadget } from "./bench.ts";
import { loadOrder, type ModuleDb, moduleName } from "./modules.ts";
import { shQuote } from "./util.ts";

/**
 * A module load step: `insmod <guestPath> <params>`.
 *
 * @example
 * ```ts
 * import type { ModuleLoad } from "./plan.ts";
 * const m: ModuleLoad = { name: "dummy_hcd", guestPath: "/lib/modules/dummy_hcd.ko", params: "num=2" };
 * ```
 */
export interface ModuleLoad {
  /** Canonical module name. */
  name: string;
  /** Path of the .ko as the guest init sees it (initramfs or /host/...). */
  guestPath: string;
  /** Parameters, e.g. `is_super_speed=1 num=2`. */
  params: string;
}

/**
 * Kernel parameters of dummy_hcd for a bench: `is_super_speed`,
 * `is_high_speed` and `num` (one controller per gadget or spare UDC), as declared in
 * drivers/usb/gadget/udc/dummy_hcd.c.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dummyHcdParams } from "./plan.ts";
 * assert.ok(dummyHcdParams("super", 2) === "is_super_speed=1 num=2");
 * ```
 */
export function dummyHcdParams(speed: "super" | "high", count: number): string {
  const n = Math.max(1, count);
  return speed === "super"
    ? `is_super_speed=1 num=${n}`
    : `is_super_speed=0 is_high_speed=1 num=${n}`;
}

/**
 * Splits a `modules` entry (`"usbtest"` or `"usbtest realworld=1"`) into name
 * and parameters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitModuleSpec } from "./plan.ts";
 * const m = splitModuleSpec("usbtest  realworld=1");
 * assert.ok(m.name === "usbtest" && m.params === "realworld=1");
 * ```
 */
export function splitModuleSpec(
  spec: string,
): { name: string; params: string } {
  const [name = "", ...rest] = spec.trim().split(/\s+/);
  if (name === "") throw new Error("empty module name");
  for (const p of rest) {
    if (!/^[A-Za-z0-9_.-]+(=[A-Za-z0-9_.,:/+-]*)?$/.test(p)) {
      throw new Error(`module parameter "${p}" has unsupported characters`);
    }
  }
  return { name: moduleName(name), params: rest.join(" ") };
}

/**
 * The modules a bench needs, after the base ones the init already loaded, in
 * load order with their parameters. dummy_hcd is loaded before xhci_pci so
 * the gadgets get the first bus numbers (a lone SuperSpeed gadget is bus 2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchModules } from "./plan.ts";
 * import { parseModulesDep } from "./modules.ts";
 * import { resolveBench, defaultBench } from "./bench.ts";
 * const db = parseModulesDep([
 *   "kernel/usb-common.ko:",
 *   "kernel/usbcore.ko: kernel/usb-common.ko",
 *   "kernel/udc-core.ko: kernel/usbcore.ko kernel/usb-common.ko",
 *   "kernel/dummy_hcd.ko: kernel/udc-core.ko kernel/usbcore.ko kernel/usb-common.ko",
 *   "kernel/configfs.ko:",
 *   "kernel/libcomposite.ko: kernel/udc-core.ko kernel/configfs.ko",
 *   "kernel/usb_f_ss_lb.ko: kernel/libcomposite.ko kernel/configfs.ko",
 * ].join("\n"));
 * const loads = benchModules(resolveBench(defaultBench), db, new Set(), new Set(), () => "/x.ko");
 * assert.ok(loads.find((m) => m.name === "dummy_hcd")?.params === "is_super_speed=1 num=1");
 * ```
 */
export function benchModules(
  bench: ResolvedBench,
  db: ModuleDb,
  builtin: ReadonlySet<string>,
  alreadyLoaded: ReadonlySet<string>,
  guestPath: (name: string) => string,
): ModuleLoad[] {
  const params = new Map<string, string>();
  const wanted: string[] = [];
  // One dummy_hcd controller per gadget, and one per spare UDC.
  const udcs = bench.gadgets.length + bench.spareUdcs.length;
  if (udcs > 0) {
    wanted.push("dummy_hcd");
    params.set("dummy_hcd", dummyHcdParams(bench.speed, udcs));
    for (const g of bench.gadgets) wanted.push(g.module);
  }
  // Function modules of gadgets made at run time (kernel/composite.ts).
  for (const m of bench.gadgetModules) wanted.push(m);
  if (bench.qemuDevices.length > 0) wanted.push("xhci_pci");
  // usbmon, for `usb capture` and the capture tests: it costs nothing
  // until a reader opens /dev/usbmonN (drivers/usb/mon/mon_main.c).
  if (
    (udcs > 0 || bench.qemuDevices.length > 0) &&
    (db.has("usbmon") || builtin.has("usbmon"))
  ) wanted.push("usbmon");
  for (const spec of bench.modules) {
    const { name, params: p } = splitModuleSpec(spec);
    wanted.push(name);
    if (p !== "") {
      params.set(name, [params.get(name), p].filter(Boolean).join(" "));
    }
  }
  return loadOrder(db, wanted, builtin)
    .filter((m) => !alreadyLoaded.has(m.name))
    .map((m) => ({
      name: m.name,
      guestPath: guestPath(m.name),
      params: params.get(m.name) ?? "",
    }));
}

/**
 * Host paths hidden in the guest by the tmpfs mounts (/tmp, /run, /root)
 * that must be bound back: the deno binary's directory, the working
 * directory, storage images (files or directories). Paths inside the project are skipped (the
 * project share is mounted over its own path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keepPaths } from "./plan.ts";
 * const k = keepPaths(["/root/.npm/x/deno-dir", "/usr/bin", "/work/p/a"], "/work/p");
 * assert.ok(k.length === 1 && k[0] === "/root/.npm/x/deno-dir");
 * ```
 */
export function keepPaths(paths: readonly string[], project: string): string[] {
  const hidden = ["/tmp", "/run", "/root"];
  const under = (p: string, d: string) => p === d || p.startsWith(d + "/");
  const out: string[] = [];
  for (const p of paths) {
    if (under(p, project) || !hidden.some((h) => under(p, h))) continue;
    if (hidden.includes(p)) continue; // binding a whole tmpfs root back is pointless
    if (/\s/.test(p)) {
      throw new Error(`path with white space cannot be kept: ${p}`);
    }
    if (!out.some((o) => under(p, o))) out.push(p);
  }
  return out;
}

/**
 * Everything {@link renderBenchScript} needs.
 *
 * @example
 * ```ts
 * import type { GuestPlan } from "./plan.ts";
 * function commandOf(p: GuestPlan): string {
 *   return p.argv.join(" ");
 * }
 * ```
 */
export interface GuestPlan {
  /** Token that ends the stdout/stderr streams. */
  eofToken: string;
  /** Project directory (mounted read-write at the same path). */
  project: string;
  /** Host paths to bind back over the tmpfs mounts. */
  keepPaths: string[];
  /**
   * The host's DENO_DIR, overlaid copy-on-write as the guest's (needs the
   * `overlay` module among `modules`), or null for an empty one.
   */
  hostDenoDir: string | null;
  /** Modules to load, in order. */
  modules: ModuleLoad[];
  /** The bench (gadgets are created from it). */
  bench: ResolvedBench;
  /** Serials to wait for before running the command. */
  expectSerials: string[];
  /** Bound on that wait, seconds. */
  enumTimeoutSec: number;
  /** The record template (locations filled in by the guest). */
  info: BenchInfo;
  /** Command to run, argv[0] looked up in the guest PATH. */
  argv: string[];
  /** Environment of the command (nothing else is inherited). */
  env: Record<string, string>;
  /** Working directory of the command. */
  cwd: string;
}

function gadgetCommands(g: ResolvedGadget): string[] {
  const G = `"$G"`;
  const fn = `${G}/functions/${g.functionDir}`;
  const lines = [
    `G=${shQuote(g.configfs)}`,
    `cfg_mkdir ${G}`,
    `cfg ${G}/idVendor 0x${g.vendorId.toString(16).padStart(4, "0")}`,
    `cfg ${G}/idProduct 0x${g.productId.toString(16).padStart(4, "0")}`,
    `cfg_mkdir ${G}/strings/0x409`,
    `cfg ${G}/strings/0x409/manufacturer ${shQuote(g.manufacturer)}`,
    `cfg ${G}/strings/0x409/product ${shQuote(g.product)}`,
    `cfg ${G}/strings/0x409/serialnumber ${shQuote(g.serial)}`,
    `cfg_mkdir ${G}/configs/c.1`,
    `cfg ${G}/configs/c.1/MaxPower ${g.maxPowerMa}`,
    `cfg_mkdir ${G}/configs/c.1/strings/0x409`,
    `cfg ${G}/configs/c.1/strings/0x409/configuration ${shQuote(g.product)}`,
    `cfg_mkdir ${fn}`,
  ];
  for (const [k, v] of Object.entries(g.attributes)) {
    lines.push(`cfg ${fn}/${k} ${shQuote(v)}`);
  }
  lines.push(
    `ln -s ${fn} ${G}/configs/c.1/ || die ${
      shQuote(`configfs: cannot link ${g.functionDir} into ${g.name}`)
    }`,
  );
  if (g.bound) lines.push(`cfg ${G}/UDC ${g.udc}`);
  return lines;
}

/**
 * Renders `bench.sh`, the per-run script the guest init sources. See
 * kernel/init.sh for the functions it may call (`cfg`, `cfg_mkdir`, `die`)
 * and the names it must define.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderBenchScript } from "./plan.ts";
 * import { defaultBench, resolveBench } from "./bench.ts";
 * const bench = resolveBench(defaultBench);
 * const sh = renderBenchScript({
 *   eofToken: "EOF", project: "/p", keepPaths: [], hostDenoDir: null, modules: [], bench,
 *   expectSerials: ["usbkit-ss-0001"], enumTimeoutSec: 30,
 *   info: { version: 1, kernel: "k", speed: "super", gadgets: [], qemuDevices: [], modules: [] },
 *   argv: ["sh", "-c", "exit 7"], env: { PATH: "/usr/bin" }, cwd: "/p",
 * });
 * assert.ok(sh.includes("cfg \"$G\"/UDC dummy_udc.0"));
 * ```
 */
export function renderBenchScript(plan: GuestPlan): string {
  const q = shQuote;
  const out: string[] = [
    "# bench.sh: written by kernel/plan.ts for one boot; sourced by /init",
    `USBKIT_EOF=${q(plan.eofToken)}`,
    `PROJECT=${q(plan.project)}`,
    `KEEP_PATHS=${q(plan.keepPaths.join(" "))}`,
    `HOST_DENO_DIR=${q(plan.hostDenoDir ?? "")}`,
    `EXPECT_SERIALS=${q(plan.expectSerials.join(" "))}`,
    `ENUM_TIMEOUT=${Math.ceil(plan.enumTimeoutSec)}`,
    "",
    "bench_modules() {",
  ];
  for (const m of plan.modules) {
    const params = m.params === "" ? "" : ` ${m.params}`;
    out.push(
      `\tinsmod ${q(m.guestPath)}${params} || die ${
        q(`insmod ${m.name}${params} failed`)
      }`,
    );
  }
  out.push("\t:", "}", "", "bench_gadgets() {");
  for (const g of plan.bench.gadgets) {
    out.push(...gadgetCommands(g).map((l) => `\t${l}`));
  }
  out.push("\t:", "}", "");
  // Each "location" sits alone on a line so that the init can fill it in
  // with a line-by-line shell loop.
  const json = unquotePlaceholders(JSON.stringify(plan.info, null, 2));
  out.push(
    "bench_info_template() {",
    "cat <<'USBKIT_JSON_EOF'",
    json,
    "USBKIT_JSON_EOF",
    "}",
    "",
  );
  const envWords = Object.entries(plan.env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      throw new Error(`bad environment variable name "${k}"`);
    }
    return q(`${k}=${v}`);
  });
  const inner = 'cd "$1" || exit 126; shift; exec "$@"';
  out.push(
    "run_command() {",
    `\tenv -i ${envWords.join(" ")} \\`,
    `\t\t/bin/busybox chroot /host /bin/sh -c ${q(inner)} usbkit ${
      q(plan.cwd)
    } \\`,
    `\t\t${plan.argv.map(q).join(" ")}`,
    "}",
    "",
  );
  return out.join("\n");
}

/**
 * The bench record as a template: every `location` is the placeholder
 * `@LOC:<serial>@`, which the guest replaces with the device's location (or
 * `null`) once it has enumerated.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchInfoTemplate } from "./plan.ts";
 * import { defaultBench, resolveBench } from "./bench.ts";
 * const t = benchInfoTemplate(resolveBench(defaultBench), "6.1.0-56-amd64", ["dummy_hcd"], "/k/root");
 * assert.ok(JSON.stringify(t).includes("@LOC:usbkit-ss-0001@"));
 * assert.equal(t.modulesRoot, "/k/root");
 * ```
 */
export function benchInfoTemplate(
  bench: ResolvedBench,
  kernel: string,
  modules: string[],
  modulesRoot?: string,
): BenchInfo {
  // The placeholder travels as a string and is unquoted by the renderer.
  const loc = (serial: string) => `@LOC:${serial}@` as unknown as null;
  return {
    version: 1,
    kernel,
    speed: bench.speed,
    gadgets: bench.gadgets.map((g) => ({
      name: g.name,
      function: g.function,
      functionDir: g.functionDir,
      configfs: g.configfs,
      udc: g.udc,
      vendorId: g.vendorId,
      productId: g.productId,
      id: g.id,
      manufacturer: g.manufacturer,
      product: g.product,
      serial: g.serial,
      attributes: g.attributes,
      bound: g.bound,
      location: g.bound ? loc(g.serial) : null,
    })),
    qemuDevices: bench.qemuDevices.map((d) => ({
      ...d,
      location: loc(d.serial),
    })),
    modules,
    spareUdcs: [...bench.spareUdcs],
    ...(modulesRoot !== undefined ? { modulesRoot } : {}),
  };
}

/**
 * Turns the quoted placeholders of a JSON text back into bare ones
 * (`"@LOC:x@"` → `@LOC:x@`) so the guest can substitute JSON objects.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unquotePlaceholders } from "./plan.ts";
 * assert.ok(unquotePlaceholders('{"location": "@LOC:a@"}') === '{"location": @LOC:a@}');
 * ```
 */
export function unquotePlaceholders(json: string): string {
  return json.replace(/"(@LOC:[^"@]+@)"/g, "$1");
}

/**
 * The guest command that runs `argv` with devices written in TypeScript
 * plugged in: `usb serve` (scripts/serve_device.ts) attaches each device
 * module to vhci_hcd, loads the kernel drivers their interfaces ask for (the
 * guest has no udev to do it), runs `argv`, and unplugs them when it exits,
 * exiting with its status (125 when a device could not be attached).
 *
 * @param project the project directory (as the guest sees it)
 * @param devices absolute paths of the device modules
 * @param argv the command
 * @returns the command line to run instead
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withDevices } from "./plan.ts";
 * const argv = withDevices("/p", ["/p/dev.ts"], ["lsusb"]);
 * assert.deepEqual(argv.slice(-4), ["--drivers", "/p/dev.ts", "--", "lsusb"]);
 * assert.deepEqual(withDevices("/p", [], ["lsusb"]), ["lsusb"]);
 * ```
 */
export function withDevices(
  project: string,
  devices: readonly string[],
  argv: readonly string[],
): string[] {
  if (devices.length === 0) return [...argv];
  return [
    "deno",
    "run",
    "-A",
    // The guest has no network: everything was cached on the host.
    "--cached-only",
    `${project}/scripts/usb.ts`,
    "serve",
    "--drivers",
    ...devices,
    "--",
    ...argv,
  ];
}

/**
 * The module that serves devices written in TypeScript (USB/IP's virtual
 * host controller), as a bench `modules` entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VHCI_MODULE } from "./plan.ts";
 * assert.equal(VHCI_MODULE, "vhci-hcd");
 * ```
 */
export const VHCI_MODULE = "vhci-hcd";

/**
 * `modules` with vhci-hcd added unless it is there already (under either
 * spelling, with or without parameters).
 *
 * @param modules a bench's `modules`
 * @returns the list, vhci-hcd last if it was missing
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withVhci } from "./plan.ts";
 * assert.deepEqual(withVhci(["usbtest"]), ["usbtest", "vhci-hcd"]);
 * assert.deepEqual(withVhci(["vhci_hcd nports=4"]), ["vhci_hcd nports=4"]);
 * ```
 */
export function withVhci(modules: readonly string[] = []): string[] {
  const has = modules.some((m) =>
    splitModuleSpec(m).name === moduleName(VHCI_MODULE)
  );
  return has ? [...modules] : [...modules, VHCI_MODULE];
}
