/**
 * A USB/IP server: exports emulated devices over TCP, as usbipd does for
 * real ones, so that any USB/IP client (Linux `usbip attach -r HOST -b
 * BUSID`, usbip-win) can import them.
 *
 * Each device gets a bus id `1-N` (N from 1, in the order given), bus 1,
 * device number N, and the devid `1 << 16 | N`. A connection first speaks the
 * operation phase: OP_REQ_DEVLIST is answered and the connection closed (as
 * usbipd does); OP_REQ_IMPORT of a free device is answered with its record
 * and the connection goes on in the URB phase (connection.ts) until the
 * client detaches; the device is then reset, ready for the next import. The
 * streams run in a worker, the devices on the calling thread (see
 * transport.ts: a usbfs client in this process must be able to block this
 * thread while an unlink is answered). A
 * device is imported by one client at a time; a second import is refused
 * (status 1).
 *
 * @example Export one device and let the usbip tool attach it
 * ```ts ignore
 * // Needs a USB/IP client (`usbip list -r 127.0.0.1`, `usbip attach -r 127.0.0.1 -b 1-1`)
 * // and runs until the server closes; tests/device/usbip_test.ts attaches the
 * // Debian usbip client to serve() in the guest, tests/unit/usbip_server_test.ts
 * // plays the client over TCP loopback.
 * import { serve } from "./server.ts";
 * declare const device: import("../emulated/urb.ts").EmulatedDevice;
 * await using server = await serve([device], { hostname: "127.0.0.1" });
 * console.log(`listening on ${server.addr.hostname}:${server.addr.port}`);
 * await server.finished;
 * ```
 *
 * @module
 */

import { checkInteger, checkOptions, invalidArgument } from "../validate.ts";
import type { UsbipConnection } from "./connection.ts";
import type { UsbipDeviceInfo } from "./protocol.ts";
import type { EmulatedDevice } from "../emulated/urb.ts";
import { TransportWorker } from "./worker_host.ts";

/** The IANA port of USB/IP. */
export const USBIP_PORT = 3240;

/**
 * Options of {@linkcode serve}.
 *
 * @example
 * ```ts
 * import type { ServeOptions } from "./server.ts";
 * const o: ServeOptions = { port: 0, hostname: "127.0.0.1" }; // port 0: any free port
 * ```
 */
export interface ServeOptions {
  /** TCP port (default 3240; 0 picks a free one, see `addr`). */
  port?: number;
  /** Address to listen on (default "0.0.0.0": every IPv4 address, as usbipd). */
  hostname?: string;
  /** Device faults and dropped connections are reported here (default console.error). */
  onError?: (error: unknown) => void;
}

/**
 * One exported device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "./server.ts";
 * import { defineDevice } from "../emulated/mod.ts";
 * const device = defineDevice({ speed: "full", vendorId: 0x1209, productId: 0x0001, interfaces: [] });
 * await using s = await serve([device], { port: 0, hostname: "127.0.0.1" });
 * const [e] = s.exports;
 * assert.equal(e?.busid, "1-1");
 * assert.equal(e?.devid, 0x10001);
 * assert.equal(e?.imported, false); // no client has imported it yet
 * ```
 */
export interface ExportedDevice {
  /** Its bus id, what `usbip attach -b` takes. */
  readonly busid: string;
  /** Its devid (`busnum << 16 | devnum`). */
  readonly devid: number;
  /** The device. */
  readonly device: EmulatedDevice;
  /** The client's connection while imported, else null. */
  readonly connection: UsbipConnection | null;
  /** Whether a client has it. */
  readonly imported: boolean;
}

/**
 * A running server.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "./server.ts";
 * import { defineDevice } from "../emulated/mod.ts";
 * const device = defineDevice({ speed: "full", vendorId: 0x1209, productId: 0x0001, interfaces: [] });
 * const s = await serve([device], { port: 0, hostname: "127.0.0.1" });
 * assert.ok(s.addr.port > 0); // port 0: a free one was picked
 * await s.close();
 * await s.finished;
 * ```
 */
export interface UsbipServer {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** The devices, in the order given. */
  readonly exports: readonly ExportedDevice[];
  /** Settles when the server has closed. */
  readonly finished: Promise<void>;
  /**
   * Stops listening, drops every connection (importing clients see their
   * device unplugged) and closes the devices.
   */
  close(): Promise<void>;
  /** Same as {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

class Exported implements ExportedDevice {
  connection: UsbipConnection | null = null;
  constructor(
    readonly busid: string,
    readonly devid: number,
    readonly device: EmulatedDevice,
    readonly info: UsbipDeviceInfo,
  ) {}
  get imported(): boolean {
    return this.connection !== null;
  }
}

function deviceInfo(device: EmulatedDevice, n: number): UsbipDeviceInfo {
  const s = device.summary;
  return {
    path: `/sys/devices/usbkit/usb1/1-${n}`,
    busid: `1-${n}`,
    busnum: 1,
    devnum: n,
    speed: device.speed,
    vendorId: s.vendorId,
    productId: s.productId,
    bcdDevice: s.bcdDevice,
    deviceClass: s.deviceClass,
    deviceSubclass: s.deviceSubclass,
    deviceProtocol: s.deviceProtocol,
    configurationValue: s.configurationValue,
    numConfigurations: s.numConfigurations,
    numInterfaces: s.interfaces.length,
    interfaces: s.interfaces.map((i) => ({
      interfaceClass: i.interfaceClass,
      interfaceSubclass: i.interfaceSubclass,
      interfaceProtocol: i.interfaceProtocol,
    })),
  };
}

/**
 * Starts a USB/IP server for `devices`; resolves once it listens. The
 * streams run in a worker (as for attachLocal), the devices on this thread.
 * The devices are closed when the server closes.
 *
 * @example
 * ```ts ignore
 * // Runs until SIGINT and needs a USB/IP client on another machine; the
 * // examples of UsbipServer and ExportedDevice run serve() on loopback.
 * // Remote use: on this machine `serve([device])`, on the other one
 * // `usbip list -r THIS_HOST` and `sudo usbip attach -r THIS_HOST -b 1-1`.
 * import { serve } from "./server.ts";
 * declare const device: import("../emulated/urb.ts").EmulatedDevice;
 * const server = await serve([device], { port: 3240 });
 * Deno.addSignalListener("SIGINT", () => server.close());
 * await server.finished;
 * ```
 *
 * @param devices the devices to export (at least one)
 * @param options port, hostname, fault reporting
 * @returns the running server
 */
export async function serve(
  devices: readonly EmulatedDevice[],
  options: ServeOptions = {},
): Promise<UsbipServer> {
  if (!Array.isArray(devices) || devices.length === 0) {
    throw invalidArgument(
      "serve: devices",
      devices,
      "a non-empty array of EmulatedDevice",
    );
  }
  for (const [i, d] of devices.entries()) {
    if (typeof d?.handleUrb !== "function" || typeof d?.summary !== "object") {
      throw invalidArgument(`serve: devices[${i}]`, d, "an EmulatedDevice");
    }
  }
  const o = checkOptions("serve: options", options, [
    "port",
    "hostname",
    "onError",
  ]);
  const port = o.port === undefined
    ? USBIP_PORT
    : checkInteger("serve: options.port", o.port, 0, 65535);
  if (o.hostname !== undefined && typeof o.hostname !== "string") {
    throw invalidArgument("serve: options.hostname", o.hostname, "a string");
  }
  const hostname = (o.hostname as string | undefined) ?? "0.0.0.0";
  if (o.onError !== undefined && typeof o.onError !== "function") {
    throw invalidArgument(
      "serve: options.onError",
      o.onError,
      "a function or undefined",
    );
  }
  const onError = (o.onError as ((e: unknown) => void) | undefined) ??
    ((e: unknown) => console.error(e));

  const exported = devices.map((d, i) => {
    const info = deviceInfo(d, i + 1);
    return new Exported(info.busid, (1 << 16) | (i + 1), d, info);
  });
  let closing = false;
  const worker = new TransportWorker(onError);
  let addr: Deno.NetAddr;
  try {
    addr = await worker.serve(
      port,
      hostname,
      exported.map((e) => ({ info: e.info, devid: e.devid })),
      undefined,
      (_id, index, make) => {
        const e = exported[index];
        if (e === undefined || closing) return;
        const c = make(e.device, { onEnd: "reset", onError });
        e.connection = c;
        c.closed.then((end) => {
          if (e.connection === c) e.connection = null;
          if (end.reason === "protocol-error" || end.reason === "io-error") {
            if (!closing) {
              onError(
                new Error(
                  `USB/IP client of ${e.busid} dropped: ${end.reason}`,
                  {
                    cause: end.error,
                  },
                ),
              );
            }
          }
        });
      },
    );
  } catch (e) {
    worker.terminate();
    throw e;
  }

  let finish!: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      await worker.stop();
      await Promise.all(exported.map((e) => e.connection?.closed));
      worker.terminate();
      for (const e of exported) {
        try {
          e.device.close();
        } catch (err) {
          onError(err);
        }
      }
      finish();
    })();
    return closed;
  };
  return {
    addr,
    exports: exported,
    finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}
