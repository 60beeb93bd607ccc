/**
 * The main-thread side of transport_worker.ts: starts the worker, turns its
 * messages into calls on the {@linkcode UsbipConnection}s whose devices live
 * here, and sends their answers back.
 *
 * @example One worker, one attached stream (what attach.ts does)
 * ```ts
 * import assert from "node:assert/strict";
 * import { TransportWorker } from "./worker_host.ts";
 * import { defineDevice } from "../emulated/mod.ts";
 * const device = defineDevice({ speed: "full", vendorId: 0x1209, productId: 0x0001, interfaces: [] });
 * // attach.ts listens here and hands the other end to vhci_hcd; this example is that other end
 * const dir = await Deno.makeTempDir();
 * const listener = Deno.listen({ transport: "unix", path: `${dir}/vhci.sock` });
 * const w = new TransportWorker((e) => console.error(e));
 * const c = w.connect(`${dir}/vhci.sock`, device, { devid: 0x10001 });
 * const peer = await listener.accept();
 * listener.close();
 * peer.close(); // vhci_hcd lets go of the port
 * assert.equal((await c.closed).reason, "peer-closed");
 * w.terminate();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import { type ConnectionOptions, UsbipConnection } from "./connection.ts";
import {
  type DecodeLimits,
  type UsbipDeviceInfo,
  UsbipProtocolError,
} from "./protocol.ts";
import type { ConnectionEnd, TransportOptions } from "./transport.ts";
import type { FromWorker, ToWorker, WireError } from "./transport_worker.ts";
import type { EmulatedDevice } from "../emulated/urb.ts";

function fromWire(w: WireError): Error {
  const cause = w.cause !== undefined ? { cause: new Error(w.cause) } : {};
  if (w.name === "UsbipProtocolError") {
    return new UsbipProtocolError(w.message, cause);
  }
  const e = new Error(w.message, cause);
  e.name = w.name;
  return e;
}

interface Entry {
  connection: UsbipConnection;
  stopped: () => void;
}

/**
 * A transport worker and the connections it carries.
 *
 * @example
 * ```ts
 * import { TransportWorker } from "./worker_host.ts";
 * const w = new TransportWorker(console.error);
 * w.terminate();
 * ```
 */
export class TransportWorker {
  readonly #worker: Worker;
  readonly #onError: (e: unknown) => void;
  readonly #entries = new Map<number, Entry>();
  #nextId = 1;
  #listening:
    | { resolve: (a: Deno.NetAddr) => void; reject: (e: unknown) => void }
    | null = null;
  #stopped: (() => void) | null = null;
  #imported:
    | ((id: number, index: number) => UsbipConnection | undefined)
    | null = null;
  #terminated = false;

  /**
   * Starts the worker.
   *
   * @param onError where faults without a caller go
   */
  constructor(onError: (e: unknown) => void) {
    this.#onError = onError;
    this.#worker = new Worker(
      new URL("./transport_worker.ts", import.meta.url),
      { type: "module", name: "usbkit-usbip" },
    );
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) =>
      this.#receive(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`the USB/IP worker failed: ${e.message}`));
    };
  }

  #post(m: ToWorker, transfer: Transferable[] = []): void {
    if (!this.#terminated) this.#worker.postMessage(m, { transfer });
  }

  #connection(
    id: number,
    device: EmulatedDevice,
    options: Pick<ConnectionOptions, "onEnd" | "onError">,
  ): UsbipConnection {
    let stopped!: () => void;
    const closed = new Promise<void>((r) => stopped = r);
    const connection = new UsbipConnection(device, options, () => ({
      reply: (seqnum, bytes) => {
        // A RET_SUBMIT owns its buffer (encodeRetSubmit): move it.
        const whole = bytes.byteOffset === 0 &&
          bytes.byteLength === bytes.buffer.byteLength;
        const b = whole ? bytes : bytes.slice();
        this.#post({ t: "reply", id, seqnum, bytes: b }, [
          b.buffer as ArrayBuffer,
        ]);
      },
      close: () => this.#post({ t: "close", id }),
      closed,
    }));
    this.#entries.set(id, { connection, stopped });
    return connection;
  }

  /**
   * Has the worker connect to the unix socket at `path` and serve `device`
   * on it.
   *
   * @param path the socket
   * @param device the device (stays on this thread)
   * @param options devid check, limits, backpressure, end action, faults
   * @returns the connection
   */
  connect(
    path: string,
    device: EmulatedDevice,
    options: ConnectionOptions,
  ): UsbipConnection {
    const id = this.#nextId++;
    const c = this.#connection(id, device, options);
    const t: Omit<TransportOptions, "initialBytes"> = {};
    if (options.devid !== undefined) t.devid = options.devid;
    if (options.limits !== undefined) t.limits = options.limits;
    if (options.maxPending !== undefined) t.maxPending = options.maxPending;
    this.#post({ t: "connect", id, path, options: t });
    return c;
  }

  /**
   * Has the worker listen on TCP and answer the operation phase for
   * `devices`; each import becomes a connection made by `imported`.
   *
   * @param port TCP port (0: any)
   * @param hostname address
   * @param devices device records and devids, by index
   * @param limits decoding caps
   * @param imported makes the connection of an import (undefined: none)
   * @returns where it listens
   */
  serve(
    port: number,
    hostname: string,
    devices: { info: UsbipDeviceInfo; devid: number }[],
    limits: DecodeLimits | undefined,
    imported: (
      id: number,
      index: number,
      make: (
        device: EmulatedDevice,
        options: Pick<ConnectionOptions, "onEnd" | "onError">,
      ) => UsbipConnection,
    ) => void,
  ): Promise<Deno.NetAddr> {
    this.#imported = (id, index) => {
      let made: UsbipConnection | undefined;
      imported(id, index, (device, options) => {
        made = this.#connection(id, device, options);
        return made;
      });
      return made;
    };
    const listening = new Promise<Deno.NetAddr>((resolve, reject) =>
      this.#listening = { resolve, reject }
    );
    this.#post({
      t: "serve",
      port,
      hostname,
      devices,
      ...(limits !== undefined ? { limits } : {}),
    });
    return listening;
  }

  /**
   * Stops the server side: no new connections, every stream closed.
   *
   * @returns settles once the worker has closed everything
   */
  stop(): Promise<void> {
    if (this.#terminated) return Promise.resolve();
    const stopped = new Promise<void>((r) => this.#stopped = r);
    this.#post({ t: "stop" });
    return stopped;
  }

  /** Ends the worker. Connections still open end as `io-error`. */
  terminate(): void {
    if (this.#terminated) return;
    this.#fail(new Error("the USB/IP worker was terminated"));
  }

  #fail(error: Error): void {
    this.#terminated = true;
    this.#worker.terminate();
    for (const [id, e] of this.#entries) {
      this.#entries.delete(id);
      e.connection.end({ reason: "io-error", error });
      e.stopped();
    }
    this.#listening?.reject(error);
    this.#listening = null;
    this.#stopped?.();
    this.#stopped = null;
  }

  #receive(m: FromWorker): void {
    switch (m.t) {
      case "submit":
        this.#entries.get(m.id)?.connection.submit(m.cmd);
        break;
      case "unlinked":
        this.#entries.get(m.id)?.connection.unlinked(m.seqnum);
        break;
      case "end": {
        const e = this.#entries.get(m.id);
        if (e === undefined) break;
        this.#entries.delete(m.id);
        const end: ConnectionEnd = { reason: m.reason };
        if (m.error !== undefined) end.error = fromWire(m.error);
        e.connection.end(end);
        e.stopped();
        break;
      }
      case "imported":
        if (this.#imported?.(m.id, m.index) === undefined) {
          this.#post({ t: "close", id: m.id });
        }
        break;
      case "listening":
        this.#listening?.resolve({
          transport: "tcp",
          hostname: m.hostname,
          port: m.port,
        });
        this.#listening = null;
        break;
      case "listen-failed":
        this.#listening?.reject(
          new UsbError(
            "io",
            `cannot listen for USB/IP clients: ${m.error.message}`,
            { cause: fromWire(m.error) },
          ),
        );
        this.#listening = null;
        break;
      case "report":
        this.#onError(fromWire(m.error));
        break;
      case "stopped":
        this.#stopped?.();
        this.#stopped = null;
        break;
    }
  }
}
