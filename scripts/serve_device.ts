/**
 * `usb serve`: devices written in TypeScript, plugged into a Linux kernel.
 *
 * Each FILE is a module whose default export is a device: a definition (what
 * `defineDevice` of src/emulated/ takes), an `EmulatedDevice`, or a function
 * returning either. By default each device is attached to this machine's
 * USB/IP virtual host controller (vhci_hcd, root): the kernel enumerates it
 * like a plugged-in device, its drivers bind, usbfs and usbkit open it. With
 * `--tcp` the devices are exported over USB/IP instead, for the `usbip`
 * client of another machine. The devices stay until Ctrl-C or SIGTERM, which
 * unplug them cleanly (the kernel sees them go) and exit 130 or 143; with a
 * command after `--`, they stay while it runs and its status is the exit
 * status (what `deno task vm --device` uses).
 *
 * ```sh
 * deno task usb serve scripts/examples/vendor_device.ts          # attach, wait for Ctrl-C
 * deno task usb serve scripts/examples/serial_device.ts -- sh -c 'ls /dev/ttyACM*'
 * deno task usb serve scripts/examples/vendor_device.ts --tcp 3240   # then, elsewhere:
 * usbip attach -r HOST -b 1-1
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { UsbError } from "../src/errors.ts";
import {
  EXIT_FAILED,
  type ExitSignal,
  signalExitCode,
} from "../src/exit_codes.ts";
import type { DeviceDefinition, EmulatedDevice } from "../src/emulated/mod.ts";
import type { Io } from "./usb.ts";

/**
 * Exit status of `usb serve FILE... -- COMMAND` when the devices could not
 * be set up, so COMMAND never ran (as `env` and `timeout` report their own
 * failures).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXIT_NOT_RUN } from "./serve_device.ts";
 * assert.equal(EXIT_NOT_RUN, 125);
 * ```
 */
export const EXIT_NOT_RUN = 125;

/**
 * The environment variable through which a command run by `usb serve` (and
 * so by `deno task vm --device`) learns where the devices are: a JSON array
 * of {@linkcode ServedDevice}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEVICES_ENV } from "./serve_device.ts";
 * assert.equal(DEVICES_ENV, "USBKIT_DEVICES");
 * ```
 */
export const DEVICES_ENV = "USBKIT_DEVICES";

/**
 * One device `usb serve` attached.
 *
 * @example
 * ```ts
 * import type { ServedDevice } from "./serve_device.ts";
 * const d: ServedDevice = {
 *   file: "/p/scripts/examples/vendor_device.ts", id: "1209:0001", vendorId: 0x1209,
 *   productId: 1, speed: "high", devnode: "/dev/bus/usb/001/002", portPath: "1-1",
 *   busNumber: 1, deviceAddress: 2, vhciPort: 0, product: "Vendor bulk example", serialNumber: "0001",
 * };
 * ```
 */
export interface ServedDevice {
  /** The module it came from (absolute path). */
  file: string;
  /** `vvvv:pppp`, lower-case hex. */
  id: string;
  /** `idVendor`. */
  vendorId: number;
  /** `idProduct`. */
  productId: number;
  /** The speed it runs at. */
  speed: EmulatedDevice["speed"];
  /** Its usbfs node. */
  devnode: string;
  /** Its sysfs name, e.g. "1-1". */
  portPath: string;
  /** Bus number. */
  busNumber: number;
  /** Device address. */
  deviceAddress: number;
  /** The vhci_hcd port it took (what `usbip port` lists). */
  vhciPort: number;
  /** The product string, as the kernel read it (null when none). */
  product: string | null;
  /** The serial number string, as the kernel read it (null when none). */
  serialNumber: string | null;
}

/**
 * The devices of the `usb serve` (or `deno task vm --device`) that runs
 * this process, from {@linkcode DEVICES_ENV}; empty when there is none.
 *
 * @param env where to look (default: this process's environment)
 * @returns the devices, in the order of the files
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { servedDevices } from "./serve_device.ts";
 * assert.deepEqual(servedDevices({}), []);
 * const d = servedDevices({ USBKIT_DEVICES: '[{"id":"1209:0001","devnode":"/dev/bus/usb/001/002"}]' });
 * assert.equal(d[0]?.devnode, "/dev/bus/usb/001/002");
 * ```
 */
export function servedDevices(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ServedDevice[] {
  const text = env[DEVICES_ENV];
  if (text === undefined || text === "") return [];
  const parsed = JSON.parse(text);
  if (!Array.isArray(parsed)) {
    throw new Error(`${DEVICES_ENV} is not a JSON array`);
  }
  return parsed as ServedDevice[];
}

/**
 * A device module, loaded.
 *
 * @example
 * ```ts
 * import type { LoadedDevice } from "./serve_device.ts";
 * function describe(d: LoadedDevice): string {
 *   return `${d.file}: ${d.device.summary.vendorId.toString(16)}`;
 * }
 * ```
 */
export interface LoadedDevice {
  /** The module (absolute path). */
  file: string;
  /** The device, ready for a transport. */
  device: EmulatedDevice;
  /** The definition, when the module exported one. */
  definition: DeviceDefinition | undefined;
}

function isEmulatedDevice(v: unknown): v is EmulatedDevice {
  const d = v as Partial<EmulatedDevice> | null;
  return typeof d === "object" && d !== null &&
    typeof d.handleUrb === "function";
}

/**
 * Imports a device module and makes its device. The default export may be
 * a definition (validated by `defineDevice`), an `EmulatedDevice`, or a
 * function returning either. `instance` above 0 imports a fresh copy of the
 * module (its own state), for a file given more than once.
 *
 * @param file the module, relative to the current directory
 * @param instance which copy (default 0, the module itself)
 * @returns the device
 * @throws {UsbError} `not-found` when the file does not exist,
 *   `invalid-argument` when it does not load or its default export is not a
 *   valid device (the message names the file and the field)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadDevice } from "./serve_device.ts";
 * const file = new URL("./examples/vendor_device.ts", import.meta.url).pathname;
 * const a = await loadDevice(file);
 * const b = await loadDevice(file, 1);
 * assert.equal(a.device.summary.productId, 1);
 * assert.notEqual(a.definition, b.definition); // two copies, two states
 * a.device.close();
 * b.device.close();
 * ```
 */
export async function loadDevice(
  file: string,
  instance = 0,
): Promise<LoadedDevice> {
  if (typeof file !== "string" || file === "") {
    throw new UsbError("invalid-argument", "a device module path is needed");
  }
  const path = isAbsolute(file) ? file : resolve(file);
  try {
    if (!(await Deno.stat(path)).isFile) throw new Error("not a file");
  } catch {
    throw new UsbError("not-found", `no device module at ${path}`, {
      hint:
        "give the path of a .ts file whose default export is a device definition (see scripts/examples/vendor_device.ts)",
    });
  }
  const url = pathToFileURL(path).href +
    (instance > 0 ? `?instance=${instance}` : "");
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    throw new UsbError(
      "invalid-argument",
      `${file} does not load: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  let value = mod.default;
  if (value === undefined) {
    throw new UsbError("invalid-argument", `${file} has no default export`, {
      hint:
        "end it with `export default definition;` where definition is what defineDevice takes (see scripts/examples/vendor_device.ts)",
    });
  }
  if (typeof value === "function" && !isEmulatedDevice(value)) {
    value = await (value as () => unknown)();
  }
  if (isEmulatedDevice(value)) {
    return { file: path, device: value, definition: undefined };
  }
  if (typeof value !== "object" || value === null) {
    throw new UsbError(
      "invalid-argument",
      `${file}: the default export is ${
        value === null ? "null" : typeof value
      }, not a device definition or an EmulatedDevice`,
    );
  }
  const { defineDevice } = await import("../src/emulated/mod.ts");
  try {
    const definition = value as DeviceDefinition;
    return { file: path, device: defineDevice(definition), definition };
  } catch (e) {
    if (e instanceof UsbError) {
      throw new UsbError(e.code, `${file}: ${e.message}`, {
        ...(e.hint !== undefined ? { hint: e.hint } : {}),
        cause: e,
      });
    }
    throw e;
  }
}

/**
 * Parses `--tcp`'s `[HOST:]PORT` (`3240`, `127.0.0.1:3240`, `[::1]:3240`).
 *
 * @param text the value
 * @returns where to listen (host "0.0.0.0" when not given, as usbipd)
 * @throws {UsbError} `invalid-argument` for anything else
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTcpAddress } from "./serve_device.ts";
 * assert.deepEqual(parseTcpAddress("3240"), { hostname: "0.0.0.0", port: 3240 });
 * assert.deepEqual(parseTcpAddress("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
 * assert.deepEqual(parseTcpAddress("[::1]:3240"), { hostname: "::1", port: 3240 });
 * assert.throws(() => parseTcpAddress("localhost"));
 * ```
 */
export function parseTcpAddress(
  text: string,
): { hostname: string; port: number } {
  const colon = text.lastIndexOf(":");
  let hostname = colon < 0 ? "0.0.0.0" : text.slice(0, colon);
  const portText = colon < 0 ? text : text.slice(colon + 1);
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    hostname = hostname.slice(1, -1);
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535) || hostname === "") {
    throw new UsbError(
      "invalid-argument",
      `--tcp: "${text}" is not [HOST:]PORT`,
      { hint: "for example --tcp 3240 or --tcp 127.0.0.1:3240" },
    );
  }
  return { hostname, port };
}

/**
 * The help text of `usb serve`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SERVE_HELP } from "./serve_device.ts";
 * assert.ok(SERVE_HELP.includes("--tcp"));
 * ```
 */
export const SERVE_HELP =
  `usb serve <device.ts>... [--tcp [HOST:]PORT] [--drivers] [--json] [--dry-run] [-- COMMAND...]

Serves devices written in TypeScript. Each <device.ts> is a module whose
default export is a device: a definition (what defineDevice takes; see
scripts/examples/vendor_device.ts, serial_device.ts, keyboard_device.ts), an
EmulatedDevice, or a function returning one. A file given twice is loaded
twice (two devices, each with its own state).

By default each device is attached to this machine's USB/IP virtual host
controller (needs root and \`modprobe vhci-hcd\`): the kernel enumerates it,
its drivers bind, usbkit opens it like any device. One line per device tells
where it is. It stays until Ctrl-C or SIGTERM, which unplug it (the kernel
sees it go) and exit 130 or 143.

  --tcp [HOST:]PORT  export the devices over USB/IP TCP instead (usbipd's
                     role), for \`usbip attach -r HOST -b 1-N\` on another
                     machine; HOST defaults to every address, PORT 3240 is
                     the usual one
  --drivers          load the kernel modules each device's interfaces ask for
                     (modprobe by modalias), for systems without udev such as
                     the virtual bench
  --json             print the devices as JSON instead of lines
  --dry-run          load and check the devices, print them, attach nothing
  --timeout MS       how long the kernel may take to enumerate a device
                     (default 20000)
  -- COMMAND...      run COMMAND once the devices are attached, with
                     $USBKIT_DEVICES holding them as JSON; unplug them when it
                     exits and exit with its status (125 if a device could
                     not be attached: COMMAND did not run)

  deno task usb serve scripts/examples/vendor_device.ts
  deno task usb serve scripts/examples/vendor_device.ts --tcp 3240
  deno task vm --device scripts/examples/vendor_device.ts -- deno task usb list`;

const hex4 = (n: number) => n.toString(16).padStart(4, "0");

function summaryLine(d: LoadedDevice): string {
  const s = d.device.summary;
  const def = d.definition;
  const product = typeof def?.product === "string" ? ` "${def.product}"` : "";
  const classes = s.interfaces.map((i) =>
    i.interfaceClass.toString(16).padStart(2, "0")
  ).join(" ");
  return `${d.file}: ${hex4(s.vendorId)}:${
    hex4(s.productId)
  }${product}, ${d.device.speed} speed, ${s.numConfigurations} configuration(s), interface classes ${
    classes || "none"
  }`;
}

async function readSysfs(path: string): Promise<string | null> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return null;
  }
}

/** Waits for one of the signals; resolves with its name. */
function nextSignal(): { signal: Promise<ExitSignal>; stop(): void } {
  const names: ExitSignal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const handlers: [ExitSignal, () => void][] = [];
  const signal = new Promise<ExitSignal>((resolve) => {
    for (const n of names) {
      const h = () => resolve(n);
      Deno.addSignalListener(n, h);
      handlers.push([n, h]);
    }
  });
  return {
    signal,
    stop() {
      for (const [n, h] of handlers) Deno.removeSignalListener(n, h);
    },
  };
}

/**
 * Runs `usb serve` with the arguments after `serve`.
 *
 * @param args the arguments
 * @param io where to write
 * @returns the exit status
 *
 * @example Check a device without attaching it
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveCommand } from "./serve_device.ts";
 * const file = new URL("./examples/serial_device.ts", import.meta.url).pathname;
 * const out: string[] = [];
 * const code = await serveCommand(["--dry-run", file], { out: (s) => out.push(s), err: (s) => out.push(s) });
 * assert.equal(code, 0);
 * assert.match(out[0]!, /1209:0002 "CDC ACM loopback example", full speed/);
 * ```
 */
export async function serveCommand(args: string[], io: Io): Promise<number> {
  const dash = args.indexOf("--");
  const ours = dash < 0 ? args : args.slice(0, dash);
  const command = dash < 0 ? [] : args.slice(dash + 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: ours,
      allowPositionals: true,
      strict: true,
      options: {
        tcp: { type: "string" },
        drivers: { type: "boolean" },
        json: { type: "boolean" },
        "dry-run": { type: "boolean" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsbError(
      "invalid-argument",
      e instanceof Error ? e.message : String(e),
      { hint: "see `usb serve --help`" },
    );
  }
  const v = parsed.values;
  if (v.help) {
    io.out(SERVE_HELP);
    return 0;
  }
  const files = parsed.positionals;
  if (files.length === 0) {
    throw new UsbError("invalid-argument", "usb serve needs a device module", {
      hint: "for example `usb serve scripts/examples/vendor_device.ts`",
    });
  }
  if (dash >= 0 && command.length === 0) {
    throw new UsbError("invalid-argument", "nothing after --", {
      hint: "give the command to run while the devices are attached",
    });
  }
  const tcp = v.tcp === undefined ? undefined : parseTcpAddress(v.tcp);
  if (tcp !== undefined && v.drivers) {
    throw new UsbError(
      "invalid-argument",
      "--drivers applies to devices attached here, not to --tcp",
    );
  }
  const timeout = v.timeout === undefined ? 20000 : Number(v.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw new UsbError(
      "invalid-argument",
      `--timeout: "${v.timeout}" is not a positive number of milliseconds`,
    );
  }
  // With a command, what we say goes to stderr: stdout is the command's.
  const say = command.length > 0 ? io.err : io.out;

  const loaded: LoadedDevice[] = [];
  const copies = new Map<string, number>();
  try {
    for (const f of files) {
      const key = isAbsolute(f) ? f : resolve(f);
      const n = copies.get(key) ?? 0;
      copies.set(key, n + 1);
      loaded.push(await loadDevice(f, n));
    }
  } catch (e) {
    for (const d of loaded) d.device.close();
    throw e;
  }
  if (v["dry-run"]) {
    for (const d of loaded) d.device.close();
    if (v.json) {
      say(JSON.stringify(
        loaded.map((d) => ({
          file: d.file,
          speed: d.device.speed,
          ...d.device.summary,
        })),
        null,
        2,
      ));
    } else {
      for (const d of loaded) say(summaryLine(d));
    }
    return 0;
  }

  const usbip = await import("../src/usbip/mod.ts");
  const signals = nextSignal();
  let cleanup: () => Promise<void>;
  let ended: Promise<string>;
  let served: ServedDevice[] = [];
  try {
    if (tcp !== undefined) {
      const server = await usbip.serve(loaded.map((d) => d.device), tcp);
      cleanup = () => server.close();
      ended = server.finished.then(() => "the server closed");
      const { hostname, port } = server.addr;
      const portArg = port === usbip.USBIP_PORT ? "" : `--tcp-port ${port} `;
      const host = hostname === "0.0.0.0" ? "HOST" : hostname;
      if (v.json) {
        say(JSON.stringify(
          server.exports.map((x, i) => ({
            file: loaded[i]!.file,
            busid: x.busid,
            devid: x.devid,
            hostname,
            port,
          })),
          null,
          2,
        ));
      } else {
        say(`listening on ${hostname}:${port} (USB/IP)`);
        for (const [i, x] of server.exports.entries()) {
          const s = x.device.summary;
          say(
            `${loaded[i]!.file}: ${hex4(s.vendorId)}:${
              hex4(s.productId)
            } as bus id ${x.busid}: usbip ${portArg}attach -r ${host} -b ${x.busid}`,
          );
        }
      }
    } else {
      const attachments: Awaited<ReturnType<typeof usbip.attachLocal>>[] = [];
      cleanup = async () => {
        await Promise.all(attachments.map((a) => a.detach().catch(() => {})));
      };
      try {
        for (const d of loaded) {
          attachments.push(await usbip.attachLocal(d.device, { timeout }));
        }
      } catch (e) {
        await cleanup();
        for (const d of loaded.slice(attachments.length)) d.device.close();
        throw e;
      }
      ended = Promise.all(attachments.map((a) => a.connection.closed)).then(
        () => "every device was unplugged",
      );
      if (v.drivers) {
        const { loadDrivers } = await import("../kernel/guest.ts");
        for (const a of attachments) await loadDrivers(a.portPath);
      }
      served = await Promise.all(attachments.map(async (a, i) => {
        const d = loaded[i]!;
        const s = d.device.summary;
        const sys = `/sys/bus/usb/devices/${a.portPath}`;
        return {
          file: d.file,
          id: `${hex4(s.vendorId)}:${hex4(s.productId)}`,
          vendorId: s.vendorId,
          productId: s.productId,
          speed: d.device.speed,
          devnode: a.devnode,
          portPath: a.portPath,
          busNumber: a.busNumber,
          deviceAddress: a.deviceAddress,
          vhciPort: a.vhciPort,
          product: await readSysfs(`${sys}/product`),
          serialNumber: await readSysfs(`${sys}/serial`),
        };
      }));
      if (v.json) {
        say(JSON.stringify(served, null, 2));
      } else {
        for (const d of served) {
          say(
            `${d.file}: ${d.id}${
              d.product === null ? "" : ` "${d.product}"`
            }, ${d.speed} speed, at ${d.devnode} (port ${d.portPath})`,
          );
        }
      }
    }
  } catch (e) {
    signals.stop();
    if (command.length === 0) throw e;
    io.err(
      e instanceof UsbError
        ? e.describe()
        : `error: ${e instanceof Error ? e.message : String(e)}`,
    );
    io.err(`usb serve: ${command[0]} was not run`);
    return EXIT_NOT_RUN;
  }

  // A second signal while unplugging gives up on a clean exit.
  const finish = async (code: number, signal?: ExitSignal) => {
    if (signal !== undefined) {
      signals.stop();
      const again = nextSignal();
      again.signal.then((s) => Deno.exit(signalExitCode(s)));
      try {
        await cleanup();
      } finally {
        again.stop();
      }
      return code;
    }
    signals.stop();
    await cleanup();
    return code;
  };

  if (command.length > 0) {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command[0]!, {
        args: command.slice(1),
        env: { [DEVICES_ENV]: JSON.stringify(served) },
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } catch (e) {
      io.err(
        `usb serve: cannot run ${command[0]}: ${
          e instanceof Error ? e.message : String(e)
        }`,
      );
      return await finish(EXIT_NOT_RUN);
    }
    // Signals go on to the command; its status decides ours.
    signals.signal.then((s) => {
      try {
        child.kill(s);
      } catch { /* it has exited */ }
    });
    const status = await child.status;
    const code = status.signal !== null
      ? 128 + signalNumber(status.signal)
      : status.code;
    return await finish(code);
  }

  const outcome = await Promise.race([
    signals.signal.then((s) => ({ signal: s })),
    ended.then((why) => ({ why })),
  ]);
  if ("signal" in outcome) {
    io.err(`usb serve: ${outcome.signal}, unplugging`);
    return await finish(signalExitCode(outcome.signal), outcome.signal);
  }
  io.err(`usb serve: ${outcome.why}`);
  return await finish(tcp === undefined ? 0 : EXIT_FAILED);
}

function signalNumber(name: Deno.Signal): number {
  const numbers: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGABRT: 6,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return numbers[name] ?? 0;
}
