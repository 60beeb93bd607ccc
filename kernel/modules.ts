/**
 * Kernel module bookkeeping for the virtual bench: parsing `modules.dep` and
 * computing the order in which busybox `insmod` must load a set of modules.
 *
 * busybox `insmod` does not resolve dependencies (only `modprobe` does), so the
 * host computes the order once and the guest init just follows it.
 *
 * @module
 */

/**
 * One module known to `modules.dep`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ModuleEntry } from "./modules.ts";
 * import { parseModulesDep } from "./modules.ts";
 * const e: ModuleEntry | undefined = parseModulesDep("kernel/a.ko: kernel/b.ko\n").get("a");
 * assert.ok(e?.deps[0] === "b");
 * ```
 */
export interface ModuleEntry {
  /** Canonical module name: file base name, `-` folded to `_`. */
  name: string;
  /** Path relative to the modules directory, as written in `modules.dep`. */
  path: string;
  /** Direct and indirect dependencies, canonical names, as listed. */
  deps: string[];
}

/**
 * Parsed `modules.dep`: canonical module name → entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ModuleDb } from "./modules.ts";
 * import { parseModulesDep } from "./modules.ts";
 * const db: ModuleDb = parseModulesDep("kernel/a.ko:\n");
 * assert.ok(db.has("a"));
 * ```
 */
export type ModuleDb = Map<string, ModuleEntry>;

/**
 * Canonical module name of a module name or path. The kernel treats `-` and
 * `_` in module names as the same character (kernel/params.c `parameq`), and
 * files may be compressed (`.ko.xz`, `.ko.zst`, `.ko.gz`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { moduleName } from "./modules.ts";
 * assert.ok(moduleName("kernel/drivers/usb/host/xhci-pci.ko.xz") === "xhci_pci");
 * assert.ok(moduleName("usb-common") === "usb_common");
 * ```
 */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf("/") + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}

/**
 * Parses the text of a `modules.dep` file (written by `depmod`).
 * Each line is `path: dep-path dep-path ...`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModulesDep } from "./modules.ts";
 * const db = parseModulesDep(
 *   "kernel/a.ko: kernel/b-c.ko\nkernel/b-c.ko:\n",
 * );
 * assert.ok(db.get("a")?.deps[0] === "b_c");
 * ```
 */
export function parseModulesDep(text: string): ModuleDb {
  const db: ModuleDb = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) =>
      d !== ""
    ).map(moduleName);
    db.set(moduleName(path), { name: moduleName(path), path, deps });
  }
  return db;
}

/**
 * Computes a load order for `wanted` and everything it depends on:
 * dependencies always come before their users, each module appears once, and
 * the order is deterministic (depth-first, in the order given). Modules listed
 * in `builtin` (from `modules.builtin`) are skipped because they need no load.
 *
 * Throws if a wanted module is neither in `db` nor built in, or if the
 * dependency graph has a cycle (depmod refuses those, so it means a corrupt
 * file).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadOrder, parseModulesDep } from "./modules.ts";
 * const db = parseModulesDep([
 *   "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko",
 *   "kernel/net/9p/9pnet.ko:",
 *   "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko",
 *   "kernel/fs/netfs/netfs.ko:",
 * ].join("\n"));
 * const order = loadOrder(db, ["9p"]).map((m) => m.name);
 * assert.ok(order.join(" ") === "9pnet netfs fscache 9p");
 * ```
 */
export function loadOrder(
  db: ModuleDb,
  wanted: readonly string[],
  builtin: ReadonlySet<string> = new Set(),
): ModuleEntry[] {
  const out: ModuleEntry[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    if (done.has(name) || builtin.has(name)) return;
    const entry = db.get(name);
    if (entry === undefined) {
      const via = chain.length > 0 ? ` (needed by ${chain.join(" → ")})` : "";
      throw new Error(`kernel module ${name} not found in modules.dep${via}`);
    }
    if (visiting.has(name)) {
      throw new Error(
        `kernel module dependency cycle: ${[...chain, name].join(" → ")}`,
      );
    }
    visiting.add(name);
    for (const dep of entry.deps) visit(dep, [...chain, name]);
    visiting.delete(name);
    done.add(name);
    out.push(entry);
  };
  for (const w of wanted) visit(moduleName(w), []);
  return out;
}

/**
 * Parses `modules.builtin` (one path per line) into canonical names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModulesBuiltin } from "./modules.ts";
 * assert.ok(parseModulesBuiltin("kernel/fs/configfs/configfs.ko\n").has("configfs"));
 * ```
 */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(
    text.split("\n").map((l) => l.trim()).filter((l) => l !== "").map(
      moduleName,
    ),
  );
}
