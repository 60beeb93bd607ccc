/**
 * The device side of the benchmark's USB/IP track (`deno task bench`): a
 * high-speed vendor device written in TypeScript, attached to the guest's
 * own vhci_hcd with `attachLocal`, in a process of its own so that the
 * measuring usbkit client (bench/usbkit_bench.ts) is a separate process,
 * pinned like every other contender.
 *
 * The device is made cheap, so that what is measured is the transport and
 * the client, not the device:
 * - interface 0: bulk IN 0x81 answers every URB with a view of one
 *   preallocated buffer holding the SourceSink pattern 1 (byte i of a
 *   transfer is `(i % 1024) % 63`, as f_sourcesink.c with 1024-byte
 *   packets), so the client checks it exactly as it checks the gadget;
 *   bulk OUT 0x02 accepts and drops;
 * - interface 1: alternate 0 has no endpoints, alternate 1 an isochronous
 *   IN 0x83 (1024 bytes, every microframe) whose handler returns every
 *   packet full length, views of one preallocated buffer;
 * - vendor request {@link MARK_REQUEST} (OUT, no data) on the device: the
 *   client marks the start (`wValue` 0) and the end (1) of its measured
 *   phase, and the device notes its process's CPU time and the clock, so it
 *   can report what serving the measured phase cost it.
 *
 * Protocol with bench/run_in_guest.ts: once the kernel has enumerated the
 * device, one JSON line on stdout, {@link UsbipReady}; then the process
 * serves until its stdin ends, detaches, prints one {@link UsbipServerEnd}
 * line and exits 0. A failure prints `{"ok":false,"error":...}` and exits 1.
 *
 * ```sh
 * deno run -A --no-check --cached-only bench/usbip_device.ts < /dev/tty
 * ```
 *
 * @module
 */

import process from "node:process";
import { attachLocal } from "../src/usbip/attach.ts";
import { defineDevice } from "../src/emulated/device.ts";
import type { DeviceDefinition } from "../src/emulated/definition.ts";
import { USBIP_MARK_REQUEST } from "./report.ts";

/** The bulk IN endpoint. */
export const BULK_IN = 0x81;
/** The bulk OUT endpoint. */
export const BULK_OUT = 0x02;
/** The isochronous IN endpoint (interface 1, alternate 1). */
export const ISO_IN = 0x83;
/** Bytes per isochronous packet (`wMaxPacketSize`, one transaction per microframe). */
export const ISO_PACKET = 1024;
/** The interface of the isochronous endpoint. */
export const ISO_INTERFACE = 1;
/** The alternate setting of the isochronous endpoint. */
export const ISO_ALTERNATE = 1;

/** The vendor request that marks the client's measured phase (`wValue` 0 start, 1 end). */
export const MARK_REQUEST = USBIP_MARK_REQUEST;

const SOURCE_BYTES = 1 << 20;

/**
 * The SourceSink pattern 1 for 1024-byte packets: byte i is `(i % 1024) % 63`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sourceSinkPattern } from "./usbip_device.ts";
 * const p = sourceSinkPattern(2048);
 * assert.ok(p[1] === 1 && p[63] === 0 && p[1024] === 0 && p[1025] === 1);
 * ```
 */
export function sourceSinkPattern(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i % 1024) % 63;
  return b;
}

/** What the server prints once the kernel has enumerated the device. */
export interface UsbipReady {
  /** Always true. */
  ok: true;
  /** Marks this line. */
  ready: true;
  /** usbfs node of the attached device. */
  devnode: string;
  /** sysfs name, e.g. "3-1". */
  portPath: string;
  /** Bulk IN endpoint. */
  epIn: number;
  /** Bulk OUT endpoint. */
  epOut: number;
  /** Isochronous IN endpoint. */
  isoEp: number;
  /** Its interface. */
  isoInterface: number;
  /** Its alternate setting. */
  isoAlternate: number;
  /** Its packet size. */
  isoPacket: number;
  /** Seconds from process start to enumerated. */
  attachSeconds: number;
}

/** What the server prints when it has detached. */
export interface UsbipServerEnd {
  /** Always true. */
  ok: true;
  /** Marks this line. */
  end: true;
  /** URBs served (CMD_SUBMITs). */
  submitted: number;
  /** URBs unlinked while pending. */
  unlinked: number;
  /** Data bytes sent to the host. */
  bytesIn: number;
  /** CPU seconds (user + system) of the whole server process. */
  cpu_total_s: number;
  /** CPU seconds of the server between the client's marks (absent without both). */
  measured_cpu_s?: number;
  /** Wall seconds between the client's marks (absent without both). */
  measured_wall_s?: number;
  /** Peak RSS of the server, KiB. */
  peak_rss_kb: number;
}

/**
 * The benchmark device: see the module doc. Handlers only take views of
 * buffers allocated here, once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineDevice } from "../src/emulated/device.ts";
 * import { benchDeviceDefinition } from "./usbip_device.ts";
 * const dev = defineDevice(benchDeviceDefinition());
 * assert.equal(dev.summary.vendorId, 0x1209);
 * const signal = new AbortController().signal;
 * await dev.handleUrb({ endpoint: 0, direction: "out", setup: new Uint8Array([0, 9, 1, 0, 0, 0, 0, 0]), length: 0, transferFlags: 0, signal });
 * const r = await dev.handleUrb({ endpoint: 1, direction: "in", length: 65536, transferFlags: 0, signal });
 * assert.ok(r.actualLength === 65536 && r.data![1] === 1 && r.data![1025] === 1);
 * dev.close();
 * ```
 */
export function benchDeviceDefinition(
  onMark: (phase: number) => void = () => {},
): DeviceDefinition {
  const source = sourceSinkPattern(SOURCE_BYTES);
  const isoPacket = sourceSinkPattern(ISO_PACKET);
  return {
    speed: "high",
    vendorId: 0x1209,
    productId: 0x0001, // pid.codes test PID
    manufacturer: "usbkit",
    product: "usbkit bench USB/IP source",
    serialNumber: "usbkit-bench-usbip",
    control: (req) => {
      if (
        req.requestType !== "vendor" || req.direction !== "out" ||
        req.request !== MARK_REQUEST || req.value > 1
      ) {
        return "stall";
      }
      onMark(req.value);
      return undefined;
    },
    interfaces: [
      {
        endpoints: [
          {
            address: BULK_IN,
            type: "bulk",
            onIn: (length) =>
              source.subarray(0, Math.min(length, SOURCE_BYTES)),
          },
          { address: BULK_OUT, type: "bulk" },
        ],
      },
      {
        alternates: [
          {},
          {
            endpoints: [{
              address: ISO_IN,
              type: "isochronous",
              maxPacketSize: ISO_PACKET,
              interval: 1,
              onIsoIn: (packets) =>
                packets.map((p) =>
                  p.length >= ISO_PACKET
                    ? isoPacket
                    : isoPacket.subarray(0, p.length)
                ),
            }],
          },
        ],
      },
    ],
  };
}

function peakRssKb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(
      Deno.readTextFileSync("/proc/self/status"),
    );
    if (m) return Number(m[1]);
  } catch {
    // no /proc
  }
  return process.resourceUsage().maxRSS;
}

/** Attaches, reports, serves until stdin ends, detaches. */
async function serveUntilStdinEnds(): Promise<void> {
  const t0 = performance.now();
  let faults = 0;
  const cpu = () => {
    const u = process.resourceUsage();
    return (u.userCPUTime + u.systemCPUTime) / 1e6;
  };
  const marks: ({ cpu: number; wall: number } | undefined)[] = [];
  const device = defineDevice({
    ...benchDeviceDefinition((phase) => {
      marks[phase] = { cpu: cpu(), wall: performance.now() / 1000 };
    }),
    onError: (e: unknown) => {
      if (faults++ < 5) console.error("usbip_device: device fault:", e);
    },
  });
  const attached = await attachLocal(device, {
    timeout: 60_000,
    onError: (e) => {
      if (faults++ < 5) console.error("usbip_device: connection fault:", e);
    },
  });
  const ready: UsbipReady = {
    ok: true,
    ready: true,
    devnode: attached.devnode,
    portPath: attached.portPath,
    epIn: BULK_IN,
    epOut: BULK_OUT,
    isoEp: ISO_IN,
    isoInterface: ISO_INTERFACE,
    isoAlternate: ISO_ALTERNATE,
    isoPacket: ISO_PACKET,
    attachSeconds: (performance.now() - t0) / 1000,
  };
  console.log(JSON.stringify(ready));
  // Serve until the driver closes our stdin.
  const buf = new Uint8Array(256);
  while ((await Deno.stdin.read(buf)) !== null) {
    // nothing is expected on stdin
  }
  await attached.detach();
  const s = attached.connection.stats;
  const end: UsbipServerEnd = {
    ok: true,
    end: true,
    submitted: s.submitted,
    unlinked: s.unlinked,
    bytesIn: s.bytesIn,
    cpu_total_s: cpu(),
    peak_rss_kb: peakRssKb(),
  };
  const [m0, m1] = marks;
  if (m0 !== undefined && m1 !== undefined) {
    end.measured_cpu_s = m1.cpu - m0.cpu;
    end.measured_wall_s = m1.wall - m0.wall;
  }
  console.log(JSON.stringify(end));
}

if (import.meta.main) {
  try {
    await serveUntilStdinEnds();
    Deno.exit(0);
  } catch (e) {
    console.log(JSON.stringify({
      ok: false,
      error: e instanceof Error ? e.message : String(e),
    }));
    Deno.exit(1);
  }
}
