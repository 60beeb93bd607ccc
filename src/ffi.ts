/**
 * Loads the Rust helper (helper/) with Deno FFI: from USBKIT_HELPER, the
 * project's build, the per-user cache, or a cargo build (in that order:
 * src/helper_lookup.ts).
 *
 * The symbol table below is the one place where JavaScript meets the helper's
 * C ABI. Struct offsets are not repeated here: the helper reports them through
 * `usbkit_layout`, read once into {@linkcode Layout}.
 *
 * Types follow the measured FFI costs in DESIGN.md: 32-bit integers, f64,
 * `buffer` and `pointer` only; a JS number passed to a 64-bit parameter takes a
 * slow path.
 *
 * @module
 */

import { UsbError } from "./errors.ts";
import {
  type HelperStep,
  helperSteps,
  noHelperError,
  systemContext,
} from "./helper_lookup.ts";

/** The ABI version this file was written for (helper/src/lib.rs ABI_VERSION). */
const ABI_VERSION = 2;

const symbols = {
  usbkit_abi_version: { parameters: [], result: "u32" },
  usbkit_layout: { parameters: ["buffer", "u32"], result: "u32" },
  usbkit_probe: { parameters: ["buffer", "buffer"], result: "i32" },
  usbkit_init: { parameters: [], result: "i32" },
  usbkit_shutdown: { parameters: [], result: "i32" },
  usbkit_ring_records: { parameters: [], result: "pointer" },
  usbkit_ring_bytes: { parameters: [], result: "u32" },
  usbkit_ring_handle: { parameters: [], result: "pointer" },
  usbkit_ring_ack: { parameters: ["pointer", "u32"], result: "u32" },
  usbkit_wait: {
    parameters: ["pointer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  usbkit_ring_doorbell: { parameters: ["pointer"], result: "void" },
  /** The short spin before parking: sync, bounded by its f64 microseconds. */
  usbkit_ring_spin: { parameters: ["pointer", "u32", "f64"], result: "u32" },
  usbkit_now_ms: { parameters: [], result: "f64" },
  // Helper-side streams (helper/src/stream.rs), called from src/usbfs.ts section B.
  usbkit_stream_open: {
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "buffer",
      "u32",
      "u32",
      "buffer",
    ],
    result: "pointer",
  },
  usbkit_stream_id: { parameters: ["pointer"], result: "u32" },
  usbkit_stream_ctl: { parameters: ["pointer"], result: "pointer" },
  usbkit_stream_ctl_bytes: { parameters: ["pointer"], result: "u32" },
  usbkit_stream_buffer: { parameters: ["pointer", "u32"], result: "pointer" },
  usbkit_stream_urbs: { parameters: ["pointer"], result: "pointer" },
  usbkit_stream_urbs_bytes: { parameters: ["pointer"], result: "u32" },
  usbkit_stream_refill: { parameters: ["pointer", "pointer"], result: "i32" },
  usbkit_stream_stop: { parameters: ["pointer", "pointer"], result: "i32" },
  usbkit_stream_free: { parameters: ["pointer", "pointer"], result: "i32" },
  usbkit_open: { parameters: ["buffer", "u32", "buffer"], result: "pointer" },
  usbkit_close: { parameters: ["pointer"], result: "i32", nonblocking: true },
  usbkit_device_id: { parameters: ["pointer"], result: "u32" },
  usbkit_slab: { parameters: ["pointer"], result: "pointer" },
  usbkit_slab_bytes: { parameters: ["pointer"], result: "u32" },
  /** Submit with the data in a JS typed array (the kernel copies it). */
  usbkit_submit: {
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "u32",
      "buffer",
      "u32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /** The same entry point, with the data in a mapped region: base + offset. */
  usbkit_submit_mapped: {
    name: "usbkit_submit",
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "u32",
      "pointer",
      "u32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  usbkit_discard: { parameters: ["pointer", "u32"], result: "i32" },
  usbkit_inflight: { parameters: ["pointer"], result: "i32" },
  usbkit_get_capabilities: { parameters: ["pointer", "buffer"], result: "i32" },
  usbkit_get_speed: { parameters: ["pointer"], result: "i32" },
  usbkit_claim_interface: { parameters: ["pointer", "u32"], result: "i32" },
  usbkit_release_interface: { parameters: ["pointer", "u32"], result: "i32" },
  usbkit_disconnect_claim: { parameters: ["pointer", "u32"], result: "i32" },
  usbkit_get_driver: {
    parameters: ["pointer", "u32", "buffer", "u32"],
    result: "i32",
  },
  usbkit_connect_driver: {
    parameters: ["pointer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  /** The same call, synchronous: for cleanup at exit, where nothing can be awaited. */
  usbkit_connect_driver_sync: {
    name: "usbkit_connect_driver",
    parameters: ["pointer", "u32"],
    result: "i32",
  },
  usbkit_set_interface: {
    parameters: ["pointer", "u32", "u32"],
    result: "i32",
    nonblocking: true,
  },
  usbkit_set_configuration: {
    parameters: ["pointer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  usbkit_clear_halt: {
    parameters: ["pointer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  usbkit_reset: { parameters: ["pointer"], result: "i32", nonblocking: true },
  usbkit_mmap: { parameters: ["pointer", "u32", "buffer"], result: "pointer" },
  usbkit_munmap: { parameters: ["pointer", "u32"], result: "i32" },
  // USB/IP local attach (helper/src/usbip.rs, src/usbip/attach.ts).
  usbkit_usbip_listen: { parameters: ["buffer"], result: "i32" },
  /** Waits for the connection JS made (up to the timeout): nonblocking. */
  usbkit_usbip_accept: {
    parameters: ["i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** vhci_hcd's attach/detach sysfs files: the write may wait on kernel locks. */
  usbkit_usbip_write_file: {
    parameters: ["buffer", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  usbkit_usbip_close: { parameters: ["i32"], result: "i32" },
  // Hotplug (helper/src/netlink.rs), called from src/usbfs.ts section C.
  usbkit_hotplug_open: {
    parameters: ["i32", "i32", "buffer"],
    result: "pointer",
  },
  /** The parked wait for uevents: nonblocking. */
  usbkit_hotplug_wait: {
    parameters: ["pointer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  usbkit_hotplug_read: {
    parameters: ["pointer", "buffer", "u32", "buffer"],
    result: "i32",
  },
  /** Joins the listener's thread (it wakes at once): sync. */
  usbkit_hotplug_stop: { parameters: ["pointer"], result: "i32" },
  usbkit_hotplug_free: { parameters: ["pointer"], result: "void" },
  usbkit_hotplug_rcvbuf: { parameters: ["pointer"], result: "i32" },
  // Kernel capture (helper/src/usbmon.rs), called from src/usbfs.ts
  // section D.
  usbkit_usbmon_open: { parameters: ["i32", "i32"], result: "i32" },
  /** Waits up to a timeout for usbmon events, then copies them: nonblocking. */
  usbkit_usbmon_read: {
    parameters: ["i32", "buffer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  usbkit_usbmon_stats: { parameters: ["i32", "buffer"], result: "i32" },
  usbkit_usbmon_close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The helper's symbols, as Deno FFI exposes them. */
export type HelperSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

/**
 * Offsets and limits reported by the helper (helper/src/lib.rs,
 * `usbkit_layout`), so that the usbfs ABI is declared only in helper/src/abi.rs.
 */
export interface Layout {
  /** Bytes per URB slot in a device's pool. */
  slotSize: number;
  /** Offset of `iso_frame_desc[0]` in `struct usbdevfs_urb`. */
  isoDescOffset: number;
  /** Size of `struct usbdevfs_iso_packet_desc`. */
  isoDescSize: number;
  /** The kernel's limit on packets per iso URB. */
  maxIsoPackets: number;
  /** 32-bit words per completion record. */
  recordWords: number;
  /** Records in the completion ring. */
  ringCapacity: number;
  /** Offset of `status` in `struct usbdevfs_urb`. */
  urbStatus: number;
  /** Offset of `actual_length`. */
  urbActualLength: number;
  /** Offset of `start_frame`. */
  urbStartFrame: number;
  /** Offset of `number_of_packets`. */
  urbNumberOfPackets: number;
  /** Offset of `error_count`. */
  urbErrorCount: number;
  /** USBDEVFS_URB_SHORT_NOT_OK. */
  flagShortNotOk: number;
  /** USBDEVFS_URB_ISO_ASAP. */
  flagIsoAsap: number;
  /** USBDEVFS_URB_BULK_CONTINUATION. */
  flagBulkContinuation: number;
  /** USBDEVFS_URB_ZERO_PACKET. */
  flagZeroPacket: number;
  /** USBDEVFS_URB_NO_INTERRUPT. */
  flagNoInterrupt: number;
}

/** The loaded helper. */
export interface Helper {
  /** The FFI symbols. */
  sym: HelperSymbols;
  /** Layouts reported by the helper. */
  layout: Layout;
  /** Where the shared library was loaded from. */
  path: string;
}

let loaded: Helper | undefined;

const projectRoot = new URL("../", import.meta.url);
const helperDir = new URL("helper/", projectRoot);

/**
 * Builds the helper with cargo when the library is missing or older than its
 * sources. Returns true when it built. Throws a `helper-unavailable` UsbError
 * that says what to install when cargo is missing.
 *
 * @example
 * ```ts ignore
 * // Runs cargo, a minute or more of CPU (force: even when up to date): `deno task build`
 * // (scripts/build_helper.ts) and `deno task compile` (scripts/compile.ts) call it.
 * import { buildHelper } from "./ffi.ts";
 * buildHelper({ force: true }); // runs cargo build --release --offline
 * ```
 */
export function buildHelper(
  options: { force?: boolean; quiet?: boolean } = {},
): boolean {
  const ctx = systemContext(projectRoot);
  const lib = ctx.projectLibrary;
  if (lib === undefined || !ctx.hasSources) return false;
  const built = ctx.mtime(lib);
  if (!options.force && built !== 0 && built >= ctx.newestSource()) {
    return false;
  }
  if (!options.quiet) {
    console.error(
      `usbkit: building the helper (cargo build --release --offline in helper/)`,
    );
  }
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("cargo", {
      args: ["build", "--release", "--offline", "--quiet"],
      cwd: helperDir.pathname,
      stdout: "inherit",
      stderr: "inherit",
    }).outputSync();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsbError(
        "helper-unavailable",
        "cargo was not found, so the usbkit helper cannot be built",
        {
          hint:
            "install Rust 1.77 or newer: `apt-get install cargo` on a recent Debian, or https://rustup.rs; " +
            "then run `deno task build`",
          cause: e,
        },
      );
    }
    throw e;
  }
  if (!out.success) {
    throw new UsbError(
      "helper-unavailable",
      `building the usbkit helper failed (cargo exit ${out.code})`,
      {
        hint: "the cargo output above says why; `deno task build` retries",
      },
    );
  }
  return true;
}

/**
 * Opens one candidate helper and checks its ABI version. Returns the library
 * when it is usable, else why not. A missing FFI permission is thrown: no
 * other candidate would do better.
 */
function openHelper(
  path: string,
): Deno.DynamicLibrary<typeof symbols> | string {
  let lib: Deno.DynamicLibrary<typeof symbols>;
  try {
    lib = Deno.dlopen(path, symbols);
  } catch (e) {
    if (
      e instanceof Deno.errors.NotCapable ||
      e instanceof Deno.errors.PermissionDenied
    ) {
      throw new UsbError(
        "helper-unavailable",
        "usbkit needs FFI permission to load its helper",
        {
          hint:
            "run deno with -A: usbkit needs the bare --allow-ffi (a path-scoped --allow-ffi=... does not " +
            "cover the pointer views it uses), and Deno 2 lets only --allow-all read /sys and /proc",
          cause: e,
        },
      );
    }
    return `cannot load it (${(e as Error).message.split("\n")[0]})`;
  }
  const version = lib.symbols.usbkit_abi_version();
  if (version !== ABI_VERSION) {
    lib.close();
    return `it speaks ABI ${version}, this code expects ${ABI_VERSION}`;
  }
  return lib;
}

/**
 * Loads the helper once per process, found in the order
 * src/helper_lookup.ts describes (USBKIT_HELPER, the project's build, the
 * per-user cache, a cargo build).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { helper } from "./ffi.ts";
 * assert.equal(helper().layout.maxIsoPackets, 128);
 * assert.equal(helper(), helper()); // loaded once
 * ```
 */
export function helper(): Helper {
  if (loaded) return loaded;
  const tried: { step: HelperStep; problem: string }[] = [];
  let lib: Deno.DynamicLibrary<typeof symbols> | undefined;
  let path = "";
  for (const step of helperSteps(systemContext(projectRoot))) {
    if (step.source === "build") {
      try {
        buildHelper();
      } catch (e) {
        if (!(e instanceof UsbError)) throw e;
        tried.push({ step, problem: e.message });
        continue;
      }
    }
    const opened = openHelper(step.path);
    if (typeof opened !== "string") {
      lib = opened;
      path = step.path;
      break;
    }
    const problem = opened;
    // USBKIT_HELPER names the one helper to use: no fallback behind it.
    if (step.source === "env") {
      throw new UsbError(
        "helper-unavailable",
        `USBKIT_HELPER=${step.path}: ${problem}`,
        { hint: noHelperError([]).hint ?? "" },
      );
    }
    tried.push({ step, problem });
  }
  if (lib === undefined) throw noHelperError(tried);
  const words = new Int32Array(16);
  lib.symbols.usbkit_layout(words, words.length);
  const w = (i: number) => words[i] ?? 0;
  loaded = {
    sym: lib.symbols,
    path,
    layout: {
      slotSize: w(0),
      isoDescOffset: w(1),
      isoDescSize: w(2),
      maxIsoPackets: w(3),
      recordWords: w(4),
      ringCapacity: w(5),
      urbStatus: w(6),
      urbActualLength: w(7),
      urbStartFrame: w(8),
      urbNumberOfPackets: w(9),
      urbErrorCount: w(10),
      flagShortNotOk: w(11),
      flagIsoAsap: w(12),
      flagBulkContinuation: w(13),
      flagZeroPacket: w(14),
      flagNoInterrupt: w(15),
    },
  };
  return loaded;
}

/**
 * A NUL-terminated copy of a string, for C `const char *` parameters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cString } from "./ffi.ts";
 * assert.ok(cString("ab").length === 3);
 * ```
 */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
