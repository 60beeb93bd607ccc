/**
 * `deno task vm [options] -- <command...>`: boot a virtual USB bench and run a
 * command in it. See {@link VM_USAGE} for the flags.
 *
 * @example
 * ```ts ignore
 * // Boots a QEMU guest (needs QEMU and the Debian kernel): tests/readme_vm_test.ts runs
 * // the README's `deno task vm` lines. From a shell:
 * // deno task vm --full -- sh -c 'cat /sys/bus/usb/devices/* /idVendor'
 * import { main } from "./vm.ts";
 * Deno.exit(await main(["--", "true"]));
 * ```
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { parseVmArgs, UsageError, VM_USAGE } from "./cli.ts";
import { checkDevices, prepareGuest } from "./prepare.ts";
import { EXIT_VM_FAILURE, runInGuest } from "./run.ts";

/**
 * Runs the CLI with `args` and returns the exit status.
 *
 * @example
 * ```ts ignore
 * // Boots a QEMU guest (needs QEMU and the Debian kernel): tests/readme_vm_test.ts runs
 * // the README's `deno task vm` lines.
 * import { main } from "./vm.ts";
 * const code = await main(["--kbd", "--", "ls", "/dev/bus/usb"]);
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let cli;
  try {
    cli = parseVmArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`usbkit vm: ${e.message}\n\n${VM_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (cli.help) {
    console.log(VM_USAGE);
    return 0;
  }
  // Relative image paths are relative to where the user ran the task.
  const base = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const bench = {
    ...cli.bench,
    qemuDevices: cli.bench.qemuDevices.map((d) =>
      d.kind === "storage" && d.image !== undefined && !isAbsolute(d.image)
        ? { ...d, image: resolve(base, d.image) }
        : d
    ),
  };
  const devices = cli.devices.map((f) => resolve(base, f));
  try {
    // The guest has neither network nor cargo: packages and the helper are
    // made ready here, on the host, when missing or stale.
    const prepared = await prepareGuest({ quiet: true });
    if (devices.length > 0) {
      // A mistake in a device costs a second here rather than a boot; the
      // check also caches what the modules import.
      const check = await checkDevices(devices);
      if (!check.ok) {
        console.error(
          `usbkit vm: --device: ${check.output || `exit ${check.code}`}`,
        );
        return 2;
      }
    }
    if (!prepared.helperReady) {
      console.error(
        `usbkit vm: the helper could not be built on the host, so usbkit ` +
          `cannot open devices in the guest:\n${prepared.helperProblem}`,
      );
    }
    const r = await runInGuest(bench, cli.command, {
      ...cli.options,
      ...(devices.length > 0 ? { devices } : {}),
    });
    return r.code;
  } catch (e) {
    console.error(`usbkit vm: ${(e as Error).message}`);
    return EXIT_VM_FAILURE;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
