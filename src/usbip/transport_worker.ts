/**
 * The worker that runs USB/IP streams away from the main thread (see
 * transport.ts for why): it connects to attach.ts's unix socket, or listens
 * on TCP and answers the operation phase itself, and runs one
 * {@linkcode UrbTransport} per stream. URBs go to the main thread, where the
 * devices live, as messages; their answers come back the same way. Started
 * by worker_host.ts; the message shapes are {@linkcode ToWorker} and
 * {@linkcode FromWorker}.
 *
 * @example Started by the host, never imported directly
 * ```ts ignore
 * // Not run: the message protocol is internal, only worker_host.ts's TransportWorker
 * // speaks it (its examples and tests/unit/usbip_worker_test.ts run this worker).
 * const w = new Worker(new URL("./transport_worker.ts", import.meta.url), { type: "module" });
 * w.postMessage({ t: "connect", id: 1, path: "/tmp/usbkit-usbip-x/vhci.sock", options: {} });
 * ```
 *
 * @module
 */

import { StreamDecoder } from "./decoder.ts";
import {
  type CmdSubmit,
  type DecodeLimits,
  decodeOpRequest,
  encodeOpRepDevlist,
  encodeOpRepImport,
  type OpRequest,
  ST_NA,
  type UsbipDeviceInfo,
  UsbipProtocolError,
} from "./protocol.ts";
import {
  type ConnectionEnd,
  type TransportOptions,
  UrbTransport,
} from "./transport.ts";

/**
 * An error as it crosses to the main thread.
 *
 * @example
 * ```ts
 * import type { WireError } from "./transport_worker.ts";
 * const e: WireError = { name: "UsbipProtocolError", message: "unknown command 0x7" };
 * ```
 */
export interface WireError {
  /** The error's name (its class). */
  name: string;
  /** Its message. */
  message: string;
  /** Its cause's message, if any. */
  cause?: string;
}

/**
 * Messages to the worker.
 *
 * @example
 * ```ts
 * import type { ToWorker } from "./transport_worker.ts";
 * const m: ToWorker = { t: "close", id: 3 };
 * ```
 */
export type ToWorker =
  | {
    t: "connect";
    id: number;
    path: string;
    options: Omit<TransportOptions, "initialBytes">;
  }
  | {
    t: "serve";
    port: number;
    hostname: string;
    devices: { info: UsbipDeviceInfo; devid: number }[];
    limits?: DecodeLimits;
  }
  | { t: "reply"; id: number; seqnum: number; bytes: Uint8Array }
  | { t: "close"; id: number }
  | { t: "stop" };

/**
 * Messages from the worker.
 *
 * @example
 * ```ts
 * import type { FromWorker } from "./transport_worker.ts";
 * const m: FromWorker = { t: "unlinked", id: 3, seqnum: 17 };
 * ```
 */
export type FromWorker =
  | { t: "submit"; id: number; cmd: CmdSubmit }
  | { t: "unlinked"; id: number; seqnum: number }
  | {
    t: "end";
    id: number;
    reason: ConnectionEnd["reason"];
    error?: WireError;
  }
  | { t: "imported"; id: number; index: number }
  | { t: "listening"; hostname: string; port: number }
  | { t: "listen-failed"; error: WireError }
  | { t: "report"; error: WireError }
  | { t: "stopped" };

/**
 * An error, flattened for postMessage.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wireError } from "./transport_worker.ts";
 * assert.deepEqual(wireError(new TypeError("x")), { name: "TypeError", message: "x" });
 * ```
 *
 * @param e anything thrown
 * @returns name, message, cause message
 */
export function wireError(e: unknown): WireError {
  if (e instanceof Error) {
    const out: WireError = { name: e.name, message: e.message };
    if (e.cause !== undefined) {
      out.cause = e.cause instanceof Error ? e.cause.message : String(e.cause);
    }
    return out;
  }
  return { name: "Error", message: String(e) };
}

/**
 * This worker's global scope. Typed here rather than with a
 * `/// <reference lib="deno.worker" />`, which JSR does not publish.
 */
const scope = self as unknown as {
  postMessage(message: unknown, options: { transfer: Transferable[] }): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

function post(m: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(m, { transfer });
}

const transports = new Map<number, UrbTransport>();
const connecting = new Set<number>();
const closeEarly = new Set<number>();
let nextServerId = 1 << 24; // ids of imported streams; the host numbers its own from 1

function run(id: number, conn: Deno.Conn, options: TransportOptions): void {
  const t = new UrbTransport(conn, {
    submit(cmd) {
      // The OUT data and setup are copies of their own: move, do not copy.
      post(
        { t: "submit", id, cmd },
        cmd.data ? [cmd.data.buffer as ArrayBuffer] : [],
      );
    },
    unlinked(seqnum) {
      post({ t: "unlinked", id, seqnum });
    },
    end() {
      // Reported once the stream is fully closed (below).
    },
  }, options);
  transports.set(id, t);
  t.closed.then((end) => {
    transports.delete(id);
    post({
      t: "end",
      id,
      reason: end.reason,
      ...(end.error !== undefined ? { error: wireError(end.error) } : {}),
    });
  });
}

// ---- the server ----

let listener: Deno.Listener | null = null;
let accepting: Promise<void> | null = null;
let stopping = false;
const handshakes = new Set<Deno.Conn>();
const handshaking = new Set<Promise<void>>();
/** Device index -> id of the stream that imported it. */
const imported = new Map<number, number>();

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

async function handshake(
  conn: Deno.Conn,
  devices: { info: UsbipDeviceInfo; devid: number }[],
  limits: DecodeLimits | undefined,
): Promise<void> {
  const decoder = new StreamDecoder({ maxBuffered: 64 * 1024 });
  const buf = new Uint8Array(4096);
  let req: OpRequest | undefined;
  while ((req = decoder.next(decodeOpRequest)) === undefined) {
    const n = await conn.read(buf);
    if (n === null) return;
    decoder.push(buf.subarray(0, n));
  }
  if (req.op === "devlist") {
    await writeAll(
      conn,
      encodeOpRepDevlist(devices.map((d) => d.info), req.version),
    );
    return;
  }
  const busid = req.busid;
  const index = devices.findIndex((d) => d.info.busid === busid);
  if (index < 0 || imported.has(index) || stopping) {
    await writeAll(conn, encodeOpRepImport(null, ST_NA, req.version));
    return;
  }
  const id = nextServerId++;
  imported.set(index, id);
  // The host makes the connection before any URB can arrive.
  post({ t: "imported", id, index });
  try {
    await writeAll(
      conn,
      encodeOpRepImport(devices[index]!.info, 0, req.version),
    );
  } catch (e) {
    imported.delete(index);
    post({ t: "end", id, reason: "io-error", error: wireError(e) });
    throw e;
  }
  handshakes.delete(conn); // the transport owns it from now on
  run(id, conn, {
    devid: devices[index]!.devid,
    initialBytes: decoder.takeRest(),
    ...(limits !== undefined ? { limits } : {}),
  });
  transports.get(id)!.closed.then(() => imported.delete(index));
}

function serve(m: Extract<ToWorker, { t: "serve" }>): void {
  try {
    listener = Deno.listen({
      port: m.port,
      hostname: m.hostname,
      transport: "tcp",
    });
  } catch (e) {
    post({ t: "listen-failed", error: wireError(e) });
    return;
  }
  const addr = listener.addr as Deno.NetAddr;
  post({ t: "listening", hostname: addr.hostname, port: addr.port });
  const l = listener;
  accepting = (async () => {
    try {
      for await (const conn of l) {
        if (stopping) {
          conn.close();
          break;
        }
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // Not TCP.
        }
        handshakes.add(conn);
        const h = handshake(conn, m.devices, m.limits).catch((e) => {
          if (!stopping && !(e instanceof Deno.errors.BadResource)) {
            const error = e instanceof UsbipProtocolError
              ? new Error("a USB/IP client sent a malformed request", {
                cause: e,
              })
              : e;
            post({ t: "report", error: wireError(error) });
          }
        }).finally(() => {
          if (handshakes.delete(conn)) {
            try {
              conn.close();
            } catch {
              // Closed already.
            }
          }
          handshaking.delete(h);
        });
        handshaking.add(h);
      }
    } catch (e) {
      if (!stopping) post({ t: "report", error: wireError(e) });
    }
  })();
}

async function stop(): Promise<void> {
  stopping = true;
  try {
    listener?.close();
  } catch {
    // Closed already.
  }
  await accepting;
  for (const c of handshakes) {
    try {
      c.close();
    } catch {
      // Closed already.
    }
  }
  handshakes.clear();
  await Promise.all([...transports.values()].map((t) => t.close()));
  while (handshaking.size > 0) await Promise.all([...handshaking]);
  post({ t: "stopped" });
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.t) {
    case "connect":
      connecting.add(m.id);
      Deno.connect({ transport: "unix", path: m.path }).then(
        (conn) => {
          connecting.delete(m.id);
          run(m.id, conn, m.options);
          if (closeEarly.delete(m.id)) transports.get(m.id)?.close();
        },
        (err) => {
          connecting.delete(m.id);
          post({
            t: "end",
            id: m.id,
            reason: "io-error",
            error: wireError(err),
          });
        },
      );
      break;
    case "reply":
      transports.get(m.id)?.reply(m.seqnum, m.bytes);
      break;
    case "close": {
      const t = transports.get(m.id);
      if (t !== undefined) t.close();
      else if (connecting.has(m.id)) closeEarly.add(m.id);
      break;
    }
    case "serve":
      serve(m);
      break;
    case "stop":
      stop();
      break;
  }
};
