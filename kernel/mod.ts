/**
 * The usbkit virtual bench: boot a Linux guest under QEMU whose USB devices
 * are emulated (configfs gadgets on dummy_hcd, QEMU devices on qemu-xhci),
 * and run a command in it.
 *
 * ```ts ignore
 * // Boots a QEMU guest and runs the device suite (half an hour under TCG): this is
 * // what `deno task test` (scripts/test.ts) does; tests/vm_test.ts boots smaller guests.
 * import { fullBench, runInGuest } from "./mod.ts";
 * const r = await runInGuest(
 *   { ...fullBench, modules: ["usbtest"] },
 *   ["deno", "test", "-A", "--no-check", "--cached-only", "tests/device/"],
 *   { timeoutSec: 900 },
 * );
 * Deno.exit(r.code);
 * ```
 *
 * Code running inside the guest imports kernel/guest.ts instead.
 *
 * @module
 */

export {
  type Bench,
  BENCH_INFO_PATH,
  type BenchInfo,
  type BenchSpeed,
  DEFAULT_MEMORY_MIB,
  DEFAULT_STORAGE_MIB,
  DEFAULT_TIMEOUT_SEC,
  defaultBench,
  type DeviceLocation,
  fullBench,
  type GadgetInfo,
  type GadgetSpec,
  type QemuDeviceInfo,
  type QemuDeviceSpec,
  resolveBench,
  STORAGE_SECTOR_SIZE,
  storageSector,
  usbId,
} from "./bench.ts";
export {
  ensureStorageImage,
  EXIT_TIMEOUT,
  EXIT_VM_FAILURE,
  type GuestFailure,
  type GuestResult,
  type OutputSink,
  runInGuest,
  type RunInGuestOptions,
} from "./run.ts";
export {
  ensureHostPackages,
  ensureKernel,
  type KernelArtifacts,
} from "./setup.ts";
export { parseVmArgs, VM_USAGE } from "./cli.ts";
export { checkDevices, type DeviceCheck } from "./prepare.ts";
