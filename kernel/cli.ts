/**
 * Command-line flags of `deno task vm` and how they map onto a
 * {@link Bench} (pure, unit-tested on the host).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Bench,
  fullBench,
  type GadgetSpec,
  type QemuDeviceSpec,
} from "./bench.ts";
import { withVhci } from "./plan.ts";
import type { RunInGuestOptions } from "./run.ts";

/**
 * Help text of `deno task vm`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VM_USAGE } from "./cli.ts";
 * assert.ok(VM_USAGE.includes("--gadget"));
 * ```
 */
export const VM_USAGE = `\
usage: deno task vm [options] -- <command> [args...]

Boots a Linux guest (QEMU, Debian kernel) with virtual USB devices and runs
<command> in it, in the host's root filesystem (read-only) with the project
read-write at its own path, as root, with stdin from /dev/null. Exits with
the command's status; 2 for a bad flag or a --device that does not load; 124
if the guest was killed for hanging, 125 if the VM or the bench failed (a
--device that could not be attached too), 130 on Ctrl-C. Inside,
$USBKIT_BENCH names a JSON file describing the devices (kernel/bench.ts
BenchInfo), and with --device $USBKIT_DEVICES lists where each device is
(scripts/serve_device.ts servedDevices).

devices (default: one SuperSpeed SourceSink gadget, 0525:a4a0, unless
--device is given):
  --gadget KIND[:ATTR=VAL,...]  add a configfs gadget on its own dummy_hcd;
                        KIND is sourcesink or loopback; attributes go to the
                        function (bulk_buflen, pattern, qlen...). Repeatable.
                        Replaces the default gadget.
  --no-gadgets          no gadget at all
  --high-speed          gadgets at high speed (480M) instead of SuperSpeed
  --storage[=IMG]       QEMU usb-storage backed by raw image IMG (default: a
                        generated 16 MiB image, sector n starts with n)
  --kbd                 QEMU usb-kbd
  --serial              QEMU usb-serial (FTDI), output to a host file
  --audio               QEMU usb-audio (isochronous OUT)
  --full                SourceSink + Loopback + storage + kbd + serial + audio
  --module NAME         load a kernel module too, e.g. usbtest. Repeatable.
  --device FILE         a device written in TypeScript: FILE's default export
                        is a device definition (what defineDevice takes, see
                        scripts/examples/vendor_device.ts) or an
                        EmulatedDevice. It is checked on the host, then
                        plugged in over USB/IP (vhci-hcd) with the kernel
                        drivers it asks for loaded, before <command> runs,
                        and unplugged after. Repeatable: <command> sees
                        every device. No default gadget with it.

guest:
  --memory MIB          guest memory (default 1024)
  --timeout SEC         kill the guest after SEC seconds (default 600)
  --env KEY=VALUE       set a variable for the command. Repeatable.
  --cwd DIR             working directory in the guest (default: yours)

output:
  --console             show the kernel console live (and a verbose kernel)
  -v, --verbose         show boot stages with guest timestamps
  -h, --help            this text
`;

/**
 * What the command line asks for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { VmCli } from "./cli.ts";
 * import { parseVmArgs } from "./cli.ts";
 * const c: VmCli = parseVmArgs(["--kbd", "--", "lsusb"]);
 * assert.ok(c.command[0] === "lsusb");
 * ```
 */
export interface VmCli {
  /** The bench to boot. */
  bench: Bench;
  /** The command to run in the guest. */
  command: string[];
  /** Run options (console, verbose, timeout, env, cwd). */
  options: RunInGuestOptions;
  /** `--help` was given. */
  help: boolean;
  /** `--device` files, as given (relative to where the user ran the task). */
  devices: string[];
}

/** Options that take a value as the next argument when written without `=`. */
const VALUE_OPTIONS = new Set([
  "--gadget",
  "--module",
  "--device",
  "--memory",
  "--timeout",
  "--env",
  "--cwd",
]);

/**
 * Splits arguments into our options and the guest command: the command starts
 * after `--`, or at the first argument that is not an option (so
 * `deno task vm ls -l` works too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitCommand } from "./cli.ts";
 * const { ours, command } = splitCommand(["--kbd", "--memory", "512", "sh", "-c", "x"]);
 * assert.ok(ours.length === 3 && command.join(" ") === "sh -c x");
 * ```
 */
export function splitCommand(
  args: readonly string[],
): { ours: string[]; command: string[] } {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    if (a === "--") {
      return { ours: args.slice(0, i), command: args.slice(i + 1) };
    }
    if (!a.startsWith("-")) {
      return { ours: args.slice(0, i), command: args.slice(i) };
    }
    if (VALUE_OPTIONS.has(a)) i++;
  }
  return { ours: [...args], command: [] };
}

/**
 * Parses `KIND[:ATTR=VAL,...]` of `--gadget`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseGadgetFlag } from "./cli.ts";
 * const g = parseGadgetFlag("sourcesink:bulk_buflen=65536,pattern=0");
 * assert.ok(g.function === "sourcesink" && g.attributes?.bulk_buflen === "65536");
 * ```
 */
export function parseGadgetFlag(value: string): GadgetSpec {
  const colon = value.indexOf(":");
  const kind = (colon < 0 ? value : value.slice(0, colon)).trim().toLowerCase();
  const attrs: Record<string, string> = {};
  if (colon >= 0) {
    for (const kv of value.slice(colon + 1).split(",")) {
      if (kv.trim() === "") continue;
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new UsageError(`--gadget: "${kv}" is not ATTR=VALUE`);
      attrs[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
    }
  }
  const withAttrs = Object.keys(attrs).length > 0 ? { attributes: attrs } : {};
  switch (kind) {
    case "sourcesink":
    case "ss":
      return { function: "sourcesink", ...withAttrs };
    case "loopback":
    case "lb":
      return { function: "loopback", ...withAttrs };
    default:
      throw new UsageError(
        `--gadget: unknown kind "${kind}" (sourcesink or loopback)`,
      );
  }
}

/**
 * A command-line mistake: the CLI prints it with the usage and exits 2.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UsageError } from "./cli.ts";
 * assert.ok(new UsageError("x") instanceof Error);
 * ```
 */
export class UsageError extends Error {
  /** Creates the error.
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function positiveNumber(
  flag: string,
  v: string | undefined,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${flag}: "${v}" is not a positive number`);
  }
  return n;
}

/**
 * Parses the arguments of `deno task vm` into a bench, a command and run
 * options. Throws {@link UsageError} on a bad flag or a missing command.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseVmArgs } from "./cli.ts";
 * const c = parseVmArgs(["--gadget", "loopback", "--kbd", "--high-speed", "--", "true"]);
 * assert.ok(c.bench.speed === "high");
 * assert.ok(c.bench.gadgets[0]?.function === "loopback");
 * assert.ok(c.bench.qemuDevices[0]?.kind === "kbd");
 * assert.ok(c.command[0] === "true");
 * const d = parseVmArgs(["--device", "my_device.ts", "--", "lsusb"]);
 * assert.deepEqual(d.devices, ["my_device.ts"]);
 * assert.deepEqual(d.bench.modules, ["vhci-hcd"]);
 * ```
 */
export function parseVmArgs(args: readonly string[]): VmCli {
  const split = splitCommand(args);
  // node's parseArgs has no optional values: a bare --storage means "the
  // default image", written as an empty value.
  const ours = split.ours.map((a) => a === "--storage" ? "--storage=" : a);
  let parsed;
  try {
    parsed = parseArgs({
      args: ours,
      allowPositionals: false,
      strict: true,
      options: {
        gadget: { type: "string", multiple: true },
        "no-gadgets": { type: "boolean" },
        "high-speed": { type: "boolean" },
        storage: { type: "string", multiple: true },
        kbd: { type: "boolean" },
        serial: { type: "boolean" },
        audio: { type: "boolean" },
        full: { type: "boolean" },
        module: { type: "string", multiple: true },
        device: { type: "string", multiple: true },
        memory: { type: "string" },
        timeout: { type: "string" },
        env: { type: "string", multiple: true },
        cwd: { type: "string" },
        console: { type: "boolean" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  const help = v.help ?? false;
  const deviceFiles = v.device ?? [];
  for (const f of deviceFiles) {
    if (f.trim() === "") throw new UsageError("--device: empty file name");
  }

  let gadgets: GadgetSpec[];
  if (v["no-gadgets"]) {
    if (v.gadget !== undefined) {
      throw new UsageError("--no-gadgets and --gadget contradict each other");
    }
    gadgets = [];
  } else if (v.gadget !== undefined) {
    gadgets = v.gadget.map(parseGadgetFlag);
  } else if (v.full) {
    gadgets = [...fullBench.gadgets];
  } else if (deviceFiles.length > 0) {
    gadgets = []; // the user's devices are the bench
  } else {
    gadgets = [{ function: "sourcesink" }];
  }

  const devices: QemuDeviceSpec[] = [];
  if (v.full) devices.push(...fullBench.qemuDevices);
  for (const img of v.storage ?? []) {
    if (v.full && img === "" && devices.some((d) => d.kind === "storage")) {
      continue; // --full already has the default storage
    }
    devices.push(
      img === "" ? { kind: "storage" } : { kind: "storage", image: img },
    );
  }
  const has = (k: QemuDeviceSpec["kind"]) => devices.some((d) => d.kind === k);
  if (v.kbd && !has("kbd")) devices.push({ kind: "kbd" });
  if (v.serial && !has("serial")) devices.push({ kind: "serial" });
  if (v.audio && !has("audio")) devices.push({ kind: "audio" });

  const memoryMiB = positiveNumber("--memory", v.memory);
  const timeoutSec = positiveNumber("--timeout", v.timeout);
  const bench: Bench = {
    speed: v["high-speed"] ? "high" : "super",
    gadgets,
    qemuDevices: devices,
    ...(deviceFiles.length > 0
      ? { modules: withVhci(v.module ?? []) }
      : v.module !== undefined
      ? { modules: v.module }
      : {}),
    ...(memoryMiB !== undefined ? { memoryMiB } : {}),
    ...(timeoutSec !== undefined ? { timeoutSec } : {}),
  };

  const env: Record<string, string> = {};
  for (const kv of v.env ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env: "${kv}" is not KEY=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const options: RunInGuestOptions = {
    console: v.console ?? false,
    verbose: v.verbose ?? false,
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(v.cwd !== undefined ? { cwd: v.cwd } : {}),
  };
  if (!help && split.command.length === 0) {
    throw new UsageError("no command given (put it after --)");
  }
  return {
    bench,
    command: split.command,
    options,
    help,
    devices: deviceFiles,
  };
}
