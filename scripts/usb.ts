/**
 * The `usb` command line: `deno task usb <command> ...`.
 *
 * Each subcommand is one entry of {@linkcode commands}; adding a command is
 * adding an entry. Exit status (src/exit_codes.ts): 0 success, 1 failure, 2
 * usage errors and a selector that matches no device or several, 3 a broken
 * installation (the helper cannot be built or loaded), 128 + the signal
 * number for a run interrupted by a signal.
 *
 * @example Listing the fixture devices as JSON
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "./usb.ts";
 * const lines: string[] = [];
 * const root = new URL("../tests/fixtures/sysfs", import.meta.url).pathname;
 * const status = await main(["list", "--json", "--sysfs-root", root], {
 *   out: (s) => lines.push(s),
 *   err: (s) => lines.push(s),
 * });
 * assert.ok(status === 0 && JSON.parse(lines.join("\n")).length === 4);
 * ```
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsbError } from "../src/errors.ts";
import {
  EXIT_FAILED,
  exitCodeFor,
  type ExitSignal,
  signalExitCode,
} from "../src/exit_codes.ts";
import {
  type DeviceInfo,
  listDevices,
  type ListOptions,
} from "../src/enumeration.ts";
import { selectDevice } from "../src/selector.ts";
import type { DeviceDetails } from "../src/descriptors/details.ts";
import { SERVE_HELP, serveCommand } from "./serve_device.ts";
import {
  formatDeviceTable,
  formatDeviceTree,
  toJson,
  type UsbfsView,
} from "../src/format.ts";

/**
 * Where a command writes: lines of text for stdout and stderr.
 *
 * @example
 * ```ts
 * import type { Io } from "./usb.ts";
 * const quiet: Io = { out: () => {}, err: () => {} };
 * quiet.out("nothing");
 * ```
 */
export interface Io {
  /** Writes a line (or lines) to standard output. */
  out(text: string): void;
  /** Writes a line (or lines) to standard error. */
  err(text: string): void;
}

/**
 * A subcommand: a one-line summary for `usb --help`, the full help text for
 * `usb <command> --help`, and what it does. `run` returns the exit status.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Command } from "./usb.ts";
 * const hello: Command = {
 *   summary: "say hello",
 *   help: "usb hello\n\nSays hello.",
 *   run: (_args, io) => {
 *     io.out("hello");
 *     return Promise.resolve(0);
 *   },
 * };
 * assert.ok(hello.summary === "say hello");
 * ```
 */
export interface Command {
  /** One line for the command list. */
  readonly summary: string;
  /** The text `usb <command> --help` prints. */
  readonly help: string;
  /** Runs the command with the arguments after its name. */
  run(args: string[], io: Io): Promise<number>;
}

const consoleIo: Io = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
};

const ROOT_OPTIONS_HELP = `
Options for testing against a fixture tree:
  --sysfs-root DIR   read DIR/bus/usb/devices instead of /sys/bus/usb/devices
  --dev-root DIR     device nodes are under DIR/bus/usb instead of /dev/bus/usb`;

const rootOptions = {
  "sysfs-root": { type: "string" },
  "dev-root": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/**
 * The subcommands, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commands } from "./usb.ts";
 * assert.ok("list" in commands && "describe" in commands);
 * ```
 */
export const commands: Record<string, Command> = {
  list: {
    summary: "list the USB devices attached",
    help: `usb list [--all] [--json]

Lists the USB devices attached, from sysfs. No device is opened.

  --all    include root hubs (the host controllers' virtual hubs)
  --json   print a JSON array for programs: ids are numbers, descriptor bytes
           are hex strings, absent strings are null
${ROOT_OPTIONS_HELP}`,
    async run(args, io) {
      const { values } = parse("list", args, {
        ...rootOptions,
        all: { type: "boolean" },
        json: { type: "boolean" },
      }, 0);
      if (values.help) {
        io.out(commands.list!.help);
        return 0;
      }
      const devices = await listDevices(listOptions(values));
      const shown = values.all ? devices : devices.filter((d) => !d.isRootHub);
      if (values.json) {
        io.out(JSON.stringify(toJson(shown), null, 2));
      } else if (devices.length === 0) {
        io.out(
          "no USB devices found; on a machine with no USB try `deno task demo`",
        );
      } else if (shown.length === 0) {
        io.out(
          `no USB devices attached (${devices.length} root hub(s) hidden; \`usb list --all\` shows them)`,
        );
      } else {
        io.out(formatDeviceTable(shown));
      }
      return 0;
    },
  },

  describe: {
    summary: "show a device's descriptors and usbfs capabilities",
    help: `usb describe <selector> [--json]

Prints the device's descriptors as a tree (like lsusb -v) with the driver
bound to each interface, and the usbfs capabilities and speed read through
the helper (this opens the device node).

A selector is one of:
  0525:a4a0               vendor and product id, hex
  2-1, 1-1.4              port path
  /dev/bus/usb/002/002    device node
  ABC123                  serial number (or serial=ABC123 to force it)

  --json   print the device and its parsed descriptors as JSON
${ROOT_OPTIONS_HELP}`,
    async run(args, io) {
      const { values, positionals } = parse("describe", args, {
        ...rootOptions,
        json: { type: "boolean" },
      }, 1);
      if (values.help) {
        io.out(commands.describe!.help);
        return 0;
      }
      const selector = positionals[0];
      if (selector === undefined) {
        throw new UsbError(
          "invalid-argument",
          "usb describe needs a device selector",
          {
            hint:
              "for example `usb describe 0525:a4a0`; `usb list` shows what is attached",
          },
        );
      }
      const info = selectDevice(
        await listDevices(listOptions(values)),
        selector,
      );
      const usbfs = await readUsbfs(info.devnode);
      const details = await readDetails(info);
      if (values.json) {
        const json = {
          ...info,
          capabilities: "error" in usbfs ? undefined : usbfs,
          capabilitiesError: "error" in usbfs ? usbfs.error : undefined,
          details: "error" in details ? undefined : details,
          detailsError: "error" in details ? details.error : undefined,
        };
        io.out(JSON.stringify(toJson(json), null, 2));
      } else {
        io.out(
          formatDeviceTree(
            info,
            usbfs,
            "error" in details ? undefined : details,
          ),
        );
        if ("error" in details) {
          io.out(
            `device not opened (${details.error.message}): strings, BOS, qualifier, hub and status not read`,
          );
        }
      }
      return 0;
    },
  },
  watch: {
    summary: "print devices as they are plugged in and unplugged",
    help: `usb watch [<selector>] [--json] [--all] [--snapshot]

Prints a line each time a USB device is plugged in (add) or unplugged
(remove), until Ctrl-C. Events come from the kernel's uevents: udevd is not
needed. An add is printed once the kernel has configured the device.

  <selector>   only devices this selector matches (as \`usb describe\` takes it)
  --json       one JSON object per line: "type" ("add" or "remove") and the
               same device fields as \`usb list --json\`
  --all        include root hubs
  --snapshot   first print the devices present now, as add lines

exit status: 130 after Ctrl-C (SIGINT), 143 after SIGTERM, 1 on a failure`,
    async run(args, io) {
      const { values, positionals } = parse("watch", args, {
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
        all: { type: "boolean" },
        snapshot: { type: "boolean" },
      }, 1);
      if (values.help) {
        io.out(commands.watch!.help);
        return 0;
      }
      const { watchDevices } = await import("../src/hotplug.ts");
      const watcher = watchDevices({
        ...(positionals[0] === undefined ? {} : { filter: positionals[0] }),
        snapshot: values.snapshot ?? false,
      });
      let stoppedBy: ExitSignal | undefined;
      const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) => {
        const h = () => {
          stoppedBy ??= sig;
          void watcher.close();
        };
        Deno.addSignalListener(sig, h);
        return () => Deno.removeSignalListener(sig, h);
      });
      try {
        io.err("watching USB devices (Ctrl-C to stop)");
        if (!values.json) io.out(WATCH_HEADER);
        for await (const { type, device } of watcher) {
          if (device.isRootHub && !values.all) continue;
          io.out(
            values.json
              ? JSON.stringify({ type, ...(toJson(device) as object) })
              : formatWatchLine(type, device),
          );
        }
      } finally {
        for (const remove of handlers) remove();
        await watcher.close();
      }
      return stoppedBy === undefined ? 0 : signalExitCode(stoppedBy);
    },
  },
  rebind: {
    summary: "bind again kernel drivers a killed usbkit process left detached",
    help: `usb rebind [<selector>] [--force] [--json]

A script or \`usb run\` that detached a kernel driver (detachKernelDriver)
binds it again when it ends, on Ctrl-C, SIGTERM and SIGHUP. SIGKILL (or a
crash) gives it no chance: the interface stays without its driver. usbkit
journals every driver it detaches; this command asks the kernel to probe
again each journaled interface whose process is gone.

  <selector>   only this device, and also every interface of it that has no
               driver at all (journaled or not)
  --force      also interfaces whose detaching process is still running
  --json       print the outcomes as JSON

exit status: 0 when nothing is left detached, 1 when an interface could not
be bound again (or is still held by a running process), 2 for a bad selector`,
    async run(args, io) {
      const { values, positionals } = parse("rebind", args, {
        help: { type: "boolean", short: "h" },
        force: { type: "boolean" },
        json: { type: "boolean" },
      }, 1);
      if (values.help) {
        io.out(commands.rebind!.help);
        return 0;
      }
      const { rebindDetached } = await import("../src/rebind.ts");
      const outcomes = await rebindDetached({
        ...(positionals[0] === undefined ? {} : { selector: positionals[0] }),
        ...(values.force ? { force: true } : {}),
      });
      if (values.json) {
        io.out(JSON.stringify(
          outcomes.map((o) => ({
            ...o,
            error: o.error?.describe(),
          })),
          null,
          2,
        ));
      } else if (outcomes.length === 0) {
        io.out("nothing to rebind: no kernel driver is left detached");
      } else {
        for (const o of outcomes) {
          const was = o.detachedDriver ? ` (was ${o.detachedDriver})` : "";
          const text = {
            rebound: `bound to ${o.driver}`,
            "no-driver": "probed again; no kernel driver wants it",
            "already-bound": `already bound to ${o.driver}`,
            held: "skipped: the process that detached it is still running " +
              "(--force overrides)",
            gone: "the device is gone; nothing to undo",
            failed: `failed: ${o.error?.describe() ?? "unknown"}`,
          }[o.result];
          io.out(`${o.interface}${was}: ${text}`);
        }
      }
      return outcomes.some((o) => o.result === "failed" || o.result === "held")
        ? EXIT_FAILED
        : 0;
    },
  },
  capture: {
    summary: "capture a bus's traffic with the kernel's usbmon, for Wireshark",
    help: `usb capture --out FILE [--bus N] [--device SELECTOR] [--snap BYTES]

Records every URB of a bus, as the kernel's usbmon sees it (kernel drivers'
traffic included), into FILE: pcapng, or pcap when FILE ends in .pcap, link
type 220 (USB Linux mmapped), which Wireshark and tshark read. Runs until
Ctrl-C or SIGTERM, then writes what is left, closes the file and prints the
packets written and the events usbmon dropped (its ring was full).

  --out FILE         the capture file
  --bus N            the bus (default 0: every bus)
  --device SELECTOR  only this device's traffic (implies its bus)
  --snap BYTES       data bytes kept per event (default 262144)

Needs root and the usbmon module (\`sudo modprobe usbmon\`). usbkit's own
capture (\`usb run --capture FILE\`, USBKIT_CAPTURE=FILE) needs neither.

exit status: 130 after Ctrl-C (SIGINT), 143 after SIGTERM, 1 on a failure,
2 for a bad option`,
    async run(args, io) {
      const { values } = parse("capture", args, {
        help: { type: "boolean", short: "h" },
        out: { type: "string" },
        bus: { type: "string" },
        device: { type: "string" },
        snap: { type: "string" },
      }, 0);
      if (values.help) {
        io.out(commands.capture!.help);
        return 0;
      }
      if (values.out === undefined) {
        throw new UsbError("invalid-argument", "usb capture needs --out FILE", {
          hint: "see `usb capture --help`",
        });
      }
      const number = (name: string, v: string | undefined) => {
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v)) {
          throw new UsbError(
            "invalid-argument",
            `--${name} must be a whole number, got "${v}"`,
          );
        }
        return Number(v);
      };
      let bus = number("bus", values.bus) ?? 0;
      let deviceAddress: number | undefined;
      if (values.device !== undefined) {
        const d = selectDevice(await listDevices(), values.device);
        if (values.bus !== undefined && bus !== d.busNumber) {
          throw new UsbError(
            "invalid-argument",
            `--device ${values.device} is on bus ${d.busNumber}, not ${bus}`,
          );
        }
        bus = d.busNumber;
        deviceAddress = d.deviceAddress;
      }
      const snapLength = number("snap", values.snap);
      const { captureKernel } = await import("../src/capture/kernel.ts");
      const ac = new AbortController();
      let stoppedBy: ExitSignal | undefined;
      const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) => {
        const h = () => {
          stoppedBy ??= sig;
          ac.abort();
        };
        Deno.addSignalListener(sig, h);
        return () => Deno.removeSignalListener(sig, h);
      });
      try {
        let started = false;
        const r = await captureKernel({
          out: values.out,
          bus,
          signal: ac.signal,
          ...(deviceAddress === undefined ? {} : { deviceAddress }),
          ...(snapLength === undefined ? {} : { snapLength }),
          onProgress: () => {
            if (started) return;
            started = true;
            io.err(
              `capturing ${bus === 0 ? "every bus" : `bus ${bus}`}${
                deviceAddress === undefined ? "" : `, device ${deviceAddress}`
              } into ${values.out} (Ctrl-C to stop)`,
            );
          },
        });
        io.err(
          `${r.packets} packets written to ${r.out}; usbmon dropped ${r.dropped} events`,
        );
      } finally {
        for (const remove of handlers) remove();
      }
      return stoppedBy === undefined ? 0 : signalExitCode(stoppedBy);
    },
  },
  run: {
    summary: "run a transfer recipe against a device",
    help:
      "usb run <recipe> [--var k=v]... [--dry-run] [--report json=PATH|junit=PATH]",
    // Loaded on demand: zod and yaml take seconds to load under emulation,
    // and list/describe do not need them. run prints straight to the
    // terminal (its progress bar rewrites a line), so io is not used.
    run: async (args) =>
      (await import("../src/recipe/cli.ts")).runCommand(args),
  },
  serve: {
    summary: "plug in devices written in TypeScript (USB/IP), here or over TCP",
    help: SERVE_HELP,
    // The device model and USB/IP are loaded by the command when it runs.
    run: (args, io) => serveCommand(args, io),
  },
  schema: {
    summary: "print the JSON Schema of recipe files, for editors",
    help: "usb schema",
    run: async (args) =>
      (await import("../src/recipe/cli.ts")).schemaCommand(args),
  },
};

const USAGE = () =>
  `usb: USB devices through usbfs

usage: usb <command> [options]

commands:
${
    Object.entries(commands).map(([name, c]) =>
      `  ${name.padEnd(10)} ${c.summary}`
    ).join("\n")
  }

\`usb <command> --help\` tells more.`;

/**
 * Runs the command line.
 *
 * @param args the arguments after `usb`
 * @param io where to write; the console by default
 * @returns the exit status
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "./usb.ts";
 * const out: string[] = [];
 * const status = await main(["describe"], { out: (s) => out.push(s), err: (s) => out.push(s) });
 * assert.ok(status === 2 && out[0]!.startsWith("error[invalid-argument]"));
 * ```
 */
export async function main(
  args: string[],
  io: Io = consoleIo,
): Promise<number> {
  const [name, ...rest] = args;
  if (
    name === undefined || name === "--help" || name === "-h" || name === "help"
  ) {
    const topic = name === "help" ? rest[0] : undefined;
    const command = topic === undefined ? undefined : commands[topic];
    const text = command?.help ?? USAGE();
    // Bare `usb` is a usage error: the text goes to stderr, status 2.
    if (name === undefined) {
      io.err(text);
      return 2;
    }
    io.out(text);
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  try {
    if (command === undefined) {
      throw new UsbError("invalid-argument", `unknown command "${name}"`, {
        hint: `the commands are: ${Object.keys(commands).join(", ")}`,
      });
    }
    return await command.run(rest, io);
  } catch (e) {
    return report(e, io);
  }
}

function report(e: unknown, io: Io): number {
  if (e instanceof UsbError) {
    io.err(e.describe());
    if (Deno.env.get("USBKIT_DEBUG") === "1" && e.stack) io.err(e.stack);
    return exitCodeFor(e.code);
  }
  const message = e instanceof Error ? e.message : String(e);
  const debug = Deno.env.get("USBKIT_DEBUG") === "1";
  io.err(
    `error: ${message.split("\n")[0]}${
      debug ? "" : " (USBKIT_DEBUG=1 shows the stack)"
    }`,
  );
  if (debug && e instanceof Error && e.stack) io.err(e.stack);
  return EXIT_FAILED;
}

/** `node:util` parseArgs, with its errors turned into usage errors. */
function parse<O extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  args: string[],
  options: O,
  maxPositionals: number,
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsbError(
      "invalid-argument",
      e instanceof Error ? e.message : String(e),
      {
        hint: `see \`usb ${command} --help\``,
      },
    );
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsbError(
      "invalid-argument",
      `unexpected argument "${parsed.positionals[maxPositionals]}"`,
      { hint: `see \`usb ${command} --help\`` },
    );
  }
  return parsed;
}

const WATCH_HEADER =
  "TIME         EVENT  BUS DEV PORT     ID        SPEED      " +
  "PRODUCT";

/** One `usb watch` line: fixed columns, since lines are printed as they come. */
function formatWatchLine(type: string, d: DeviceInfo): string {
  const hex4 = (n: number) => n.toString(16).padStart(4, "0");
  const p3 = (n: number) => String(n).padStart(3, "0");
  const name = [d.manufacturerName, d.productName].filter((x) =>
    x !== undefined
  ).join(" ");
  const serial = d.serialNumber === undefined
    ? ""
    : ` serial ${d.serialNumber}`;
  const time = new Date().toISOString().slice(11, 23);
  return `${time} ${type.padEnd(6)} ${p3(d.busNumber)} ${p3(d.deviceAddress)} ${
    d.portPath.padEnd(8)
  } ${hex4(d.vendorId)}:${hex4(d.productId)} ${d.speed.padEnd(10)} ${
    name || "-"
  }${serial}`.trimEnd();
}

function listOptions(
  values: { "sysfs-root"?: string; "dev-root"?: string },
): ListOptions {
  const options: ListOptions = {};
  if (values["sysfs-root"] !== undefined) {
    options.sysfsRoot = values["sysfs-root"];
  }
  if (values["dev-root"] !== undefined) options.devRoot = values["dev-root"];
  return options;
}

/**
 * The usbfs view of a device. Loaded lazily so that `usb list` works even
 * where the FFI helper is not built; any failure becomes the reason shown.
 */
/**
 * Opens the device and reads what sysfs lacks (strings, BOS, qualifier,
 * hub, status, HID reports), or says why it could not be opened.
 */
async function readDetails(
  info: DeviceInfo,
): Promise<DeviceDetails | { error: UsbError }> {
  try {
    const { open } = await import("../src/device.ts");
    const { readDeviceDetails } = await import("../src/descriptors/details.ts");
    const dev = await open(info);
    try {
      return await readDeviceDetails(dev, info);
    } finally {
      await dev.close();
    }
  } catch (e) {
    if (e instanceof UsbError) return { error: e };
    return {
      error: new UsbError(
        "helper-unavailable",
        `could not open the device: ${
          e instanceof Error ? e.message : String(e)
        }`,
        { cause: e },
      ),
    };
  }
}

async function readUsbfs(devnode: string): Promise<UsbfsView> {
  try {
    const { readCapabilities } = await import("../src/capabilities.ts");
    return readCapabilities(devnode);
  } catch (e) {
    if (e instanceof UsbError) return { error: e };
    return {
      error: new UsbError(
        "helper-unavailable",
        `could not read usbfs capabilities: ${
          e instanceof Error ? e.message : String(e)
        }`,
        { hint: "build the helper with `deno task build`", cause: e },
      ),
    };
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
