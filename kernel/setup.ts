/**
 * Setup of the virtual bench, idempotent and cached under
 * `<project>/.cache/kernel/<release>/`:
 *
 * 1. host packages (qemu-system-x86, busybox-static, libusb-1.0-0-dev, kmod,
 *    xz-utils, usbip, tshark), installed with apt-get when root;
 * 2. the current Debian kernel image package (resolved through
 *    `apt-cache depends linux-image-amd64`, never hard-coded), downloaded with
 *    `apt-get download` and unpacked with `dpkg -x`;
 * 3. an uncompressed ELF `vmlinux` cut out of its bzImage;
 * 4. `depmod -b` on the unpacked tree;
 * 5. the initramfs: busybox, the modules the bench loads, kernel/init.sh.
 *
 * Run it alone with `deno run -A kernel/setup.ts` (prints the artifacts).
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  decompressCommand,
  findKernelPayload,
  isElf64,
  isStaticElf,
} from "./bzimage.ts";
import { type CpioEntry, writeCpio } from "./cpio.ts";
import {
  loadOrder,
  type ModuleDb,
  type ModuleEntry,
  parseModulesBuiltin,
  parseModulesDep,
} from "./modules.ts";
import {
  atomicWrite,
  cacheDir,
  exists,
  isRoot,
  pipeThrough,
  progress,
  run,
  which,
} from "./util.ts";

/**
 * Modules the guest init loads before anything else, to reach the host:
 * virtio PCI transport, virtio-serial ports (command output), 9p (file
 * shares). Dependencies are added from modules.dep.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BASE_MODULES } from "./setup.ts";
 * assert.ok(BASE_MODULES.includes("9p"));
 * ```
 */
export const BASE_MODULES: readonly string[] = [
  "virtio_pci",
  "virtio_console",
  "9pnet_virtio",
  "9p",
];

/**
 * Modules copied into the initramfs besides the base ones, because benches
 * use them often: dummy_hcd + SourceSink/Loopback (gadgets), xhci_pci (QEMU
 * devices), usbtest and usbmon, overlay (the guest's DENO_DIR). Any other
 * module is loaded from the unpacked tree over 9p.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { INITRAMFS_MODULES } from "./setup.ts";
 * assert.ok(INITRAMFS_MODULES.includes("dummy_hcd"));
 * ```
 */
export const INITRAMFS_MODULES: readonly string[] = [
  "dummy_hcd",
  "usb_f_ss_lb",
  "xhci_pci",
  "usbtest",
  "usbmon",
  "overlay",
];

/** Host packages and how to tell whether each is there. */
const HOST_PACKAGES: readonly {
  pkg: string;
  present: () => Promise<boolean>;
}[] = [
  {
    pkg: "qemu-system-x86",
    present: async () => (await which("qemu-system-x86_64")) !== null,
  },
  { pkg: "busybox-static", present: () => busyboxIsStatic() },
  {
    pkg: "libusb-1.0-0-dev",
    present: () => exists("/usr/include/libusb-1.0/libusb.h"),
  },
  { pkg: "kmod", present: async () => (await depmodPath()) !== null },
  { pkg: "xz-utils", present: async () => (await which("xz")) !== null },
  // The standard USB/IP client: tests attach usbkit's TypeScript devices
  // with it over TCP, as a second machine would (the guest sees the host's
  // /usr).
  { pkg: "usbip", present: () => exists("/usr/sbin/usbip") },
  // Wireshark's command-line reader: the capture tests decode usbkit's
  // pcap files with it, on the host and in the guest (which sees /usr).
  { pkg: "tshark", present: () => exists("/usr/bin/tshark") },
  // lsusb -v: the descriptor tests compare `usb describe --json` with it,
  // field by field, in the guest (which sees /usr).
  { pkg: "usbutils", present: () => exists("/usr/bin/lsusb") },
];

const BUSYBOX = "/bin/busybox";

async function busyboxIsStatic(): Promise<boolean> {
  try {
    using f = await Deno.open(BUSYBOX);
    const head = new Uint8Array(65536);
    const n = await f.read(head);
    return n !== null && isStaticElf(head.subarray(0, n));
  } catch {
    return false;
  }
}

async function depmodPath(): Promise<string | null> {
  for (const p of ["/usr/sbin/depmod", "/sbin/depmod"]) {
    if (await exists(p)) return p;
  }
  return await which("depmod");
}

let aptUpdated = false;

async function aptGet(args: string[]): Promise<void> {
  // Two setups at once (a test run and a `deno task vm` started beside it)
  // would race for dpkg's lock: wait for it instead of failing.
  await run(["apt-get", "-o", "DPkg::Lock::Timeout=600", ...args], {
    env: { DEBIAN_FRONTEND: "noninteractive" },
  });
}

async function aptUpdateOnce(): Promise<void> {
  if (aptUpdated) return;
  progress("apt-get update");
  await aptGet(["update", "-q"]);
  aptUpdated = true;
}

/**
 * Makes sure the host has what the bench needs: qemu-system-x86,
 * busybox-static (`/bin/busybox` statically linked: it runs as the guest's
 * init before any library is reachable), libusb-1.0-0-dev (benchmark
 * baseline), kmod (depmod) and xz-utils. As root, missing packages are
 * installed with apt-get (after one `apt-get update`); otherwise this throws
 * with the exact command to run.
 *
 * @example
 * ```ts ignore
 * // Installs missing host packages with apt-get (root and the network): ensureKernel
 * // calls it, so every guest boot does (tests/vm_test.ts).
 * import { ensureHostPackages } from "./setup.ts";
 * await ensureHostPackages();
 * ```
 */
export async function ensureHostPackages(extra: readonly string[] = []) {
  const missing: string[] = [];
  for (const { pkg, present } of HOST_PACKAGES) {
    if (!(await present())) missing.push(pkg);
  }
  missing.push(...extra);
  if (missing.length === 0) return;
  const cmd = `apt-get install -y --no-install-recommends ${missing.join(" ")}`;
  if (!isRoot()) {
    throw new Error(
      `missing host packages: ${missing.join(", ")}\n` +
        `install them with:\n  sudo apt-get update && sudo ${cmd}`,
    );
  }
  await aptUpdateOnce();
  progress(`installing ${missing.join(" ")} (apt-get)`);
  await aptGet(["install", "-y", "-q", "--no-install-recommends", ...missing]);
}

/**
 * The Debian kernel image package the bench boots.
 *
 * @example
 * ```ts
 * import type { KernelPackage } from "./setup.ts";
 * const k: KernelPackage = {
 *   pkg: "linux-image-6.1.0-56-amd64", release: "6.1.0-56-amd64", debVersion: "6.1.192-2",
 * };
 * ```
 */
export interface KernelPackage {
  /** Package name, e.g. `linux-image-6.1.0-56-amd64`. */
  pkg: string;
  /** Kernel release (uname -r), e.g. `6.1.0-56-amd64`. */
  release: string;
  /** Debian package version, e.g. `6.1.192-2`. */
  debVersion: string;
}

/**
 * Extracts the concrete image package from `apt-cache depends
 * linux-image-amd64` output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAptDepends } from "./setup.ts";
 * const out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
 * assert.ok(parseAptDepends(out) === "linux-image-6.1.0-56-amd64");
 * ```
 */
export function parseAptDepends(text: string): string | null {
  const m = text.match(/^\s*Depends:\s*(linux-image-[0-9][^\s<>]*)\s*$/m);
  return m?.[1] ?? null;
}

const META_PACKAGE = "linux-image-amd64";
const APT_LISTS = "/var/lib/apt/lists";

async function aptListsStamp(): Promise<string> {
  try {
    const st = await Deno.stat(APT_LISTS);
    return String(st.mtime?.getTime() ?? 0);
  } catch {
    return "none";
  }
}

/**
 * Resolves the current kernel image package. `apt-cache` takes about 0.6 s,
 * so the answer is remembered in `.cache/kernel/resolved.json` until the apt
 * lists change (their directory's mtime moves with every `apt-get update`).
 *
 * @example
 * ```ts ignore
 * // Needs apt and the network: ensureKernel calls it, so every guest boot does
 * // (tests/vm_test.ts).
 * import { resolveKernelPackage } from "./setup.ts";
 * console.log((await resolveKernelPackage()).release);
 * ```
 */
export async function resolveKernelPackage(): Promise<KernelPackage> {
  const memo = join(cacheDir("kernel"), "resolved.json");
  const stamp = await aptListsStamp();
  try {
    const saved = JSON.parse(await Deno.readTextFile(memo));
    if (saved.stamp === stamp && typeof saved.pkg === "string") {
      return {
        pkg: saved.pkg,
        release: saved.release,
        debVersion: saved.debVersion,
      };
    }
  } catch {
    // no memo yet
  }
  let out = await run(["apt-cache", "depends", META_PACKAGE], {
    allowFail: true,
  });
  let pkg = parseAptDepends(out.stdout);
  if (pkg === null && isRoot() && !aptUpdated) {
    // A fresh machine may have no package lists at all.
    await aptUpdateOnce();
    out = await run(["apt-cache", "depends", META_PACKAGE], {
      allowFail: true,
    });
    pkg = parseAptDepends(out.stdout);
  }
  if (pkg === null) {
    throw new Error(
      `cannot resolve ${META_PACKAGE} with apt-cache (${
        out.stderr.trim() || "no Depends line"
      }); run: apt-get update`,
    );
  }
  const show = await run(["apt-cache", "show", "--no-all-versions", pkg]);
  const ver = show.stdout.match(/^Version:\s*(\S+)/m)?.[1];
  if (ver === undefined) throw new Error(`apt-cache show ${pkg}: no Version`);
  const res: KernelPackage = {
    pkg,
    release: pkg.replace(/^linux-image-/, ""),
    debVersion: ver,
  };
  await Deno.mkdir(dirname(memo), { recursive: true });
  await atomicWrite(
    memo,
    new TextEncoder().encode(JSON.stringify({ stamp, ...res }) + "\n"),
  );
  return res;
}

/**
 * What setup produced, ready to boot.
 *
 * @example
 * ```ts
 * import type { KernelArtifacts } from "./setup.ts";
 * function bootFiles(k: KernelArtifacts): string[] {
 *   return [k.vmlinux, k.initramfs];
 * }
 * ```
 */
export interface KernelArtifacts {
  /** Kernel release, e.g. `6.1.0-56-amd64`. */
  release: string;
  /** Debian package version. */
  debVersion: string;
  /** `.cache/kernel/<release>`. */
  dir: string;
  /** Uncompressed ELF kernel. */
  vmlinux: string;
  /** gzip'd newc initramfs. */
  initramfs: string;
  /** Absolute path of `lib/modules/<release>` in the unpacked tree. */
  modulesDir: string;
  /** Parsed modules.dep. */
  db: ModuleDb;
  /** Built-in modules (never loaded). */
  builtin: Set<string>;
  /** Modules present in the initramfs, canonical names. */
  inInitramfs: Set<string>;
  /** Modules the init loads first, in order. */
  baseOrder: string[];
}

interface Stamp {
  release: string;
  debVersion: string;
  pkg: string;
  modulesRel: string;
}

async function readStamp(dir: string): Promise<Stamp | null> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "stamp.json")));
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Brings the kernel, modules and initramfs up to date and returns them. Fast
 * when everything is cached (a few stats and one small file read, plus
 * parsing modules.dep). Prints progress lines on stderr while doing slow
 * steps, unless `quiet`.
 *
 * @example
 * ```ts ignore
 * // Needs root and the network the first time (it downloads and unpacks a Debian
 * // kernel): runInGuest calls it, so every guest boot does (tests/vm_test.ts).
 * import { ensureKernel } from "./setup.ts";
 * const k = await ensureKernel();
 * console.log(k.vmlinux, k.initramfs);
 * ```
 */
export async function ensureKernel(
  opts: { quiet?: boolean; offline?: boolean } = {},
): Promise<KernelArtifacts> {
  const say = opts.quiet ? () => {} : progress;
  await ensureHostPackages();
  const root = cacheDir("kernel");
  await Deno.mkdir(root, { recursive: true });
  await removeStaleBuilds(root);

  let kpkg: KernelPackage | null = null;
  try {
    if (!opts.offline) kpkg = await resolveKernelPackage();
  } catch (e) {
    const fallback = await newestCached(root);
    if (fallback === null) throw e;
    say(
      `cannot resolve the Debian kernel (${
        (e as Error).message.split("\n")[0]
      }); using cached ${fallback.release}`,
    );
    kpkg = fallback;
  }
  if (kpkg === null) {
    kpkg = await newestCached(root);
    if (kpkg === null) throw new Error("offline and no kernel in the cache");
  }

  const dir = join(root, kpkg.release);
  let stamp = await readStamp(dir);
  if (
    stamp === null || stamp.debVersion !== kpkg.debVersion ||
    !(await exists(join(dir, "vmlinux")))
  ) {
    await buildKernelDir(root, dir, kpkg, say);
    stamp = await readStamp(dir);
    if (stamp === null) throw new Error(`kernel cache ${dir} has no stamp`);
  }
  const modulesDir = join(dir, stamp.modulesRel);
  const db = parseModulesDep(
    await Deno.readTextFile(join(modulesDir, "modules.dep")),
  );
  const builtin = parseModulesBuiltin(
    await Deno.readTextFile(join(modulesDir, "modules.builtin")).catch(() =>
      ""
    ),
  );
  const baseOrder = loadOrder(db, BASE_MODULES, builtin).map((m) => m.name);
  const initOrder = loadOrder(
    db,
    [...BASE_MODULES, ...INITRAMFS_MODULES],
    builtin,
  );
  const initramfs = await ensureInitramfs(
    dir,
    modulesDir,
    initOrder,
    baseOrder,
    say,
  );
  return {
    release: stamp.release,
    debVersion: stamp.debVersion,
    dir,
    vmlinux: join(dir, "vmlinux"),
    initramfs,
    modulesDir,
    db,
    builtin,
    inInitramfs: new Set(initOrder.map((m) => m.name)),
    baseOrder,
  };
}

async function removeStaleBuilds(root: string): Promise<void> {
  for await (const e of Deno.readDir(root)) {
    const m = e.name.match(/^\.(?:build|old)-.*-(\d+)$/);
    if (m !== null && !pidAlive(Number(m[1]))) {
      await Deno.remove(join(root, e.name), { recursive: true }).catch(
        () => {},
      );
    }
  }
}

async function newestCached(root: string): Promise<KernelPackage | null> {
  let best: { k: KernelPackage; t: number } | null = null;
  for await (const e of Deno.readDir(root)) {
    if (!e.isDirectory || e.name.startsWith(".")) continue;
    const s = await readStamp(join(root, e.name));
    if (s === null) continue;
    const t = (await Deno.stat(join(root, e.name, "stamp.json"))).mtime
      ?.getTime() ?? 0;
    if (best === null || t > best.t) {
      best = {
        k: { pkg: s.pkg, release: s.release, debVersion: s.debVersion },
        t,
      };
    }
  }
  return best?.k ?? null;
}

/**
 * Downloads, unpacks and prepares one kernel in a private build directory,
 * then renames it into place: an interrupted setup leaves only a
 * `.build-*` directory that the next run removes.
 */
async function buildKernelDir(
  root: string,
  dir: string,
  k: KernelPackage,
  say: (m: string) => void,
): Promise<void> {
  const t0 = performance.now();
  const build = join(root, `.build-${k.release}-${Deno.pid}`);
  await Deno.remove(build, { recursive: true }).catch(() => {});
  await Deno.mkdir(build, { recursive: true });
  try {
    say(`downloading ${k.pkg} ${k.debVersion} (apt-get download)`);
    // apt drops privileges to _apt when root, which cannot write here.
    const sandbox = isRoot() ? ["-o", "APT::Sandbox::User=root"] : [];
    await run(["apt-get", "download", ...sandbox, `${k.pkg}=${k.debVersion}`], {
      cwd: build,
    });
    const deb = [...Deno.readDirSync(build)].find((e) =>
      e.name.endsWith(".deb")
    );
    if (deb === undefined) throw new Error("apt-get download produced no .deb");
    say(`unpacking ${deb.name} (dpkg -x)`);
    await run(["dpkg", "-x", join(build, deb.name), join(build, "root")]);
    await Deno.remove(join(build, deb.name));

    const kroot = join(build, "root");
    let modulesRel = join("root", "lib", "modules", k.release);
    if (!(await exists(join(build, modulesRel)))) {
      // merged-/usr layouts ship modules under usr/lib only
      const usr = join("root", "usr", "lib", "modules", k.release);
      if (!(await exists(join(build, usr)))) {
        throw new Error(`no lib/modules/${k.release} in ${k.pkg}`);
      }
      modulesRel = usr;
      if (!(await exists(join(kroot, "lib")))) {
        await Deno.symlink("usr/lib", join(kroot, "lib"));
      }
    }
    say(`depmod -b ${kroot} ${k.release}`);
    const depmod = await depmodPath();
    if (depmod === null) throw new Error("depmod not found (package kmod)");
    await run([depmod, "-b", kroot, k.release]);

    const vmlinuz = join(kroot, "boot", `vmlinuz-${k.release}`);
    say(`extracting vmlinux from ${basename(vmlinuz)}`);
    await extractVmlinux(vmlinuz, join(build, "vmlinux"));

    const stamp: Stamp = {
      release: k.release,
      debVersion: k.debVersion,
      pkg: k.pkg,
      modulesRel,
    };
    await Deno.writeTextFile(
      join(build, "stamp.json"),
      JSON.stringify(stamp, null, 2) + "\n",
    );
    if (await exists(dir)) {
      const old = join(root, `.old-${k.release}-${Deno.pid}`);
      await Deno.rename(dir, old);
      await Deno.remove(old, { recursive: true }).catch(() => {});
    }
    try {
      await Deno.rename(build, dir);
    } catch (e) {
      // Another setup running at the same time may have won the race.
      if ((await readStamp(dir))?.debVersion !== k.debVersion) throw e;
      await Deno.remove(build, { recursive: true }).catch(() => {});
    }
    say(
      `kernel ${k.release} ready in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
  } catch (e) {
    await Deno.remove(build, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Writes the uncompressed ELF kernel contained in a bzImage. Finds the payload
 * with {@link findKernelPayload}, decompresses it with the matching tool and
 * checks the result is an x86-64 ELF of the size the image announces.
 *
 * @example
 * ```ts ignore
 * // Needs a compressed kernel image (from the Debian package ensureKernel downloads):
 * // ensureKernel calls it, so the first guest boot does (tests/vm_test.ts).
 * import { extractVmlinux } from "./setup.ts";
 * await extractVmlinux("/boot/vmlinuz-6.1.0-56-amd64", "/tmp/vmlinux");
 * ```
 */
export async function extractVmlinux(
  bzImage: string,
  out: string,
): Promise<void> {
  const img = await Deno.readFile(bzImage);
  const p = findKernelPayload(img);
  const cmd = decompressCommand(p.format);
  if (cmd === null || (await which(cmd[0] ?? "")) === null) {
    throw new Error(
      `the kernel is ${p.format}-compressed and ${
        cmd?.[0] ?? "no tool"
      } is missing (install it with apt-get)`,
    );
  }
  const elf = await pipeThrough(
    cmd,
    img.subarray(p.offset, p.offset + p.length),
    isElf64,
  );
  if (!isElf64(elf)) {
    throw new Error(`decompressed ${p.format} kernel is not an ELF file`);
  }
  if (p.uncompressedSize !== null && elf.length !== p.uncompressedSize) {
    throw new Error(
      `vmlinux is ${elf.length} bytes, the image says ${p.uncompressedSize}`,
    );
  }
  await atomicWrite(out, elf);
}

/**
 * Reads a module file, decompressing `.ko.xz` / `.ko.zst` / `.ko.gz` (busybox
 * insmod is not guaranteed to understand compressed modules).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readModule } from "./setup.ts";
 * const dir = await Deno.makeTempDir();
 * const ko = new TextEncoder().encode("\x7fELF not really a module");
 * const gz = new Blob([ko]).stream().pipeThrough(new CompressionStream("gzip"));
 * await Deno.writeFile(`${dir}/dummy_hcd.ko.gz`, gz);
 * assert.deepEqual(await readModule(`${dir}/dummy_hcd.ko.gz`), ko);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readModule(path: string): Promise<Uint8Array> {
  const data = await Deno.readFile(path);
  if (path.endsWith(".xz")) return await pipeThrough(["xz", "-dc"], data);
  if (path.endsWith(".zst")) return await pipeThrough(["zstd", "-dcq"], data);
  if (path.endsWith(".gz")) return await pipeThrough(["gzip", "-dc"], data);
  return data;
}

/**
 * Host path of a module that the guest can `insmod` over 9p (at `/host` +
 * this path): the module itself when uncompressed, else a decompressed copy
 * cached in `<kernel dir>/ko/`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guestModulePath } from "./setup.ts";
 * // A kernel directory with one compressed module (ensureKernel gives the real one)
 * const dir = await Deno.makeTempDir();
 * const k = { dir, modulesDir: `${dir}/modules` };
 * const path = "kernel/drivers/usb/class/cdc-acm.ko.gz";
 * await Deno.mkdir(`${k.modulesDir}/kernel/drivers/usb/class`, { recursive: true });
 * const ko = new TextEncoder().encode("\x7fELF not really a module");
 * await Deno.writeFile(`${k.modulesDir}/${path}`, new Blob([ko]).stream().pipeThrough(new CompressionStream("gzip")));
 * const out = await guestModulePath(k, { name: "cdc_acm", path, deps: [] });
 * assert.equal(out, `${dir}/ko/cdc_acm.ko`); // a decompressed copy, for insmod
 * assert.deepEqual(await Deno.readFile(out), ko);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function guestModulePath(
  k: Pick<KernelArtifacts, "dir" | "modulesDir">,
  entry: ModuleEntry,
): Promise<string> {
  const src = join(k.modulesDir, entry.path);
  if (entry.path.endsWith(".ko")) return src;
  const out = join(k.dir, "ko", `${entry.name}.ko`);
  if (!(await exists(out))) {
    await Deno.mkdir(dirname(out), { recursive: true });
    await atomicWrite(out, await readModule(src));
  }
  return out;
}

/** Bumped when the initramfs layout changes, to invalidate old builds. */
const INITRAMFS_FORMAT = 1;

async function sha256hex(parts: (string | Uint8Array)[]): Promise<string> {
  const enc = new TextEncoder();
  const chunks = parts.map((p) => typeof p === "string" ? enc.encode(p) : p);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length + 1, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length + 1; // a zero separator keeps ("ab","c") ≠ ("a","bc")
  }
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function ensureInitramfs(
  dir: string,
  modulesDir: string,
  order: ModuleEntry[],
  base: string[],
  say: (m: string) => void,
): Promise<string> {
  const initText = await Deno.readTextFile(
    fileURLToPath(new URL("./init.sh", import.meta.url)),
  );
  const bb = await Deno.stat(BUSYBOX);
  const key = await sha256hex([
    String(INITRAMFS_FORMAT),
    initText,
    JSON.stringify(order.map((m) => m.path)),
    JSON.stringify(base),
    `${bb.size}:${bb.mtime?.getTime()}`,
  ]);
  const out = join(dir, `initramfs-${key.slice(0, 16)}.cpio.gz`);
  if (await exists(out)) return out;

  say("building the initramfs (busybox, modules, init)");
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const addDir = (d: string) => {
    const parts = d.split("/").filter((p) => p !== "");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (!dirs.has(p)) {
        dirs.add(p);
        entries.push({ type: "dir", path: p });
      }
    }
  };
  for (
    const d of [
      "bin",
      "sbin",
      "usr/bin",
      "usr/sbin",
      "proc",
      "sys",
      "dev",
      "host",
      "orig",
      "etc/usbkit",
      "lib/modules",
      "tmp",
      "run",
      "root",
    ]
  ) addDir(d);
  // The kernel opens /dev/console for init before devtmpfs is mounted
  // (init/main.c console_on_rootfs); 5:1 is its fixed number
  // (Documentation/admin-guide/devices.txt).
  entries.push({ type: "char", path: "dev/console", major: 5, minor: 1 });
  entries.push({
    type: "file",
    path: "bin/busybox",
    data: await Deno.readFile(BUSYBOX),
    mode: 0o755,
  });
  const applets = (await run([BUSYBOX, "--list-full"])).stdout.split("\n")
    .map((l) => l.trim()).filter((l) => l !== "" && l !== "bin/busybox");
  for (const a of applets) {
    addDir(dirname(a));
    const depth = a.split("/").length - 1;
    entries.push({
      type: "symlink",
      path: a,
      target: `${"../".repeat(depth)}bin/busybox`,
    });
  }
  entries.push({
    type: "file",
    path: "init",
    data: new TextEncoder().encode(initText),
    mode: 0o755,
  });
  for (const m of order) {
    entries.push({
      type: "file",
      path: `lib/modules/${m.name}.ko`,
      data: await readModule(join(modulesDir, m.path)),
    });
  }
  entries.push({
    type: "file",
    path: "etc/usbkit/base-modules",
    data: new TextEncoder().encode(base.map((n) => `${n}.ko\n`).join("")),
  });
  const cpio = writeCpio(entries);
  const gz = new Blob([cpio as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  await atomicWrite(out, gz);
  // Drop initramfs images of older init scripts or module sets, once they
  // are an hour old: a run that started just before may still be about to
  // hand its path to QEMU.
  for await (const e of Deno.readDir(dir)) {
    if (
      /^initramfs-[0-9a-f]+\.cpio\.gz$/.test(e.name) && e.name !== basename(out)
    ) {
      const p = join(dir, e.name);
      const age = Date.now() - ((await Deno.stat(p)).mtime?.getTime() ?? 0);
      if (age > 3600_000) await Deno.remove(p).catch(() => {});
    }
  }
  return out;
}

if (import.meta.main) {
  const t0 = performance.now();
  const k = await ensureKernel();
  console.log(JSON.stringify(
    {
      release: k.release,
      debVersion: k.debVersion,
      vmlinux: k.vmlinux,
      initramfs: k.initramfs,
      modulesDir: k.modulesDir,
      baseModules: k.baseOrder,
      initramfsModules: [...k.inInitramfs],
      seconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
    },
    null,
    2,
  ));
}
