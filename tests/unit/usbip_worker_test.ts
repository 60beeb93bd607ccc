// Streams served from the transport worker (what attachLocal and serve use):
// URBs cross to the device on this thread and back, OUT data and replies
// move between threads, CMD_UNLINK is answered by the worker alone, and
// every end reaches the device.

import assert from "node:assert/strict";
import { UsbError } from "../../src/errors.ts";
import {
  decodeReturn,
  encodeCmdSubmit,
  encodeCmdUnlink,
  StreamDecoder,
  type SubmittedUrb,
  type UsbipReturn,
} from "../../src/usbip/mod.ts";
import type {
  EmulatedDevice,
  EmulatedUrb,
  EmulatedUrbResult,
} from "../../src/emulated/urb.ts";
import { TransportWorker } from "../../src/usbip/worker_host.ts";

const DEVID = 0x10003;

/** Listens where the worker connects; returns the accepted (client) end. */
async function listen(): Promise<
  { path: string; accepted: Promise<Deno.Conn>; done: () => Promise<void> }
> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s`;
  const l = Deno.listen({ transport: "unix", path });
  const accepted = l.accept();
  return {
    path,
    accepted,
    done: async () => {
      l.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function write(conn: Deno.Conn, b: Uint8Array) {
  for (let at = 0; at < b.length;) at += await conn.write(b.subarray(at));
}

async function next(
  conn: Deno.Conn,
  d: StreamDecoder,
  sent: Map<number, SubmittedUrb>,
): Promise<UsbipReturn | null> {
  const buf = new Uint8Array(4096);
  for (;;) {
    const r = d.next((b) => decodeReturn(b, (s) => sent.get(s)));
    if (r !== undefined) return r;
    const n = await conn.read(buf);
    if (n === null) return null;
    d.push(buf.subarray(0, n));
  }
}

function device() {
  const d = {
    speed: "high" as const,
    summary: {
      vendorId: 1,
      productId: 2,
      bcdDevice: 0,
      deviceClass: 0,
      deviceSubclass: 0,
      deviceProtocol: 0,
      configurationValue: 1,
      numConfigurations: 1,
      interfaces: [],
    },
    urbs: [] as EmulatedUrb[],
    closed: 0,
    handleUrb(urb: EmulatedUrb): Promise<EmulatedUrbResult> {
      d.urbs.push(urb);
      if (urb.endpoint === 3) {
        // Never answers; rejects once aborted.
        return new Promise((_, reject) =>
          urb.signal.addEventListener("abort", () => reject(urb.signal.reason))
        );
      }
      // Echo the OUT data back, reversed, as if it were IN data.
      const data = (urb.data ?? new Uint8Array(urb.length)).slice().reverse();
      return Promise.resolve({ status: 0, data, actualLength: data.length });
    },
    reset() {},
    close() {
      d.closed++;
    },
  };
  return d satisfies EmulatedDevice;
}

Deno.test("worker transport: URBs and their data cross threads both ways; unlink is answered; the end reaches the device", async () => {
  const l = await listen();
  const worker = new TransportWorker((e) => {
    throw e;
  });
  const dev = device();
  const c = worker.connect(l.path, dev, { devid: DEVID });
  const client = await l.accepted;
  const d = new StreamDecoder();
  const lengths = new Map<number, SubmittedUrb>();
  const urb = (direction: "in" | "out", n: number): SubmittedUrb => ({
    direction,
    transferBufferLength: n,
    numberOfPackets: 0,
  });
  lengths.set(1, urb("out", 4));
  // OUT data goes to the device (moved into this thread).
  await write(
    client,
    encodeCmdSubmit({
      seqnum: 1,
      devid: DEVID,
      direction: "out",
      ep: 1,
      transferFlags: 0,
      transferBufferLength: 4,
      data: new Uint8Array([1, 2, 3, 4]),
    }),
  );
  const r1 = await next(client, d, lengths);
  assert.ok(
    r1?.command === "ret-submit" && r1.seqnum === 1 && r1.actualLength === 4,
  );
  assert.deepEqual(dev.urbs[0]?.data, new Uint8Array([1, 2, 3, 4]));
  // IN data comes back from the device (moved to the worker).
  lengths.set(2, urb("in", 8));
  await write(
    client,
    encodeCmdSubmit({
      seqnum: 2,
      devid: DEVID,
      direction: "in",
      ep: 1,
      transferFlags: 0,
      transferBufferLength: 8,
    }),
  );
  const r2 = await next(client, d, lengths);
  assert.ok(r2?.command === "ret-submit" && r2.seqnum === 2);
  assert.equal(r2.data?.length, 8);
  // A URB that never completes: the worker answers the unlink by itself.
  lengths.set(3, urb("in", 8));
  await write(
    client,
    encodeCmdSubmit({
      seqnum: 3,
      devid: DEVID,
      direction: "in",
      ep: 3,
      transferFlags: 0,
      transferBufferLength: 8,
    }),
  );
  await write(
    client,
    encodeCmdUnlink({ seqnum: 4, devid: DEVID, unlinkSeqnum: 3 }),
  );
  assert.deepEqual(await next(client, d, lengths), {
    command: "ret-unlink",
    seqnum: 4,
    status: -104,
  });
  // The abort reaches the device once this thread gets the message.
  while (dev.urbs.length < 3 || !dev.urbs[2]!.signal.aborted) {
    await new Promise((r) => setTimeout(r, 1));
  }
  const reason = dev.urbs[2]!.signal.reason;
  assert.ok(reason instanceof UsbError && reason.code === "cancelled");
  assert.equal(c.stats.unlinked, 1);
  // The client goes: the device is closed.
  client.close();
  assert.deepEqual(await c.closed, { reason: "peer-closed" });
  assert.equal(dev.closed, 1);
  worker.terminate();
  await l.done();
});

Deno.test("worker transport: close() from this side reaches the client; a protocol error carries its class back", async () => {
  const l = await listen();
  const worker = new TransportWorker((e) => {
    throw e;
  });
  const dev = device();
  const c = worker.connect(l.path, dev, { devid: DEVID, onEnd: "none" });
  const client = await l.accepted;
  await c.close();
  assert.equal(await client.read(new Uint8Array(8)), null);
  client.close();
  assert.equal(dev.closed, 0, "onEnd none");

  const l2 = await listen();
  const c2 = worker.connect(l2.path, dev, { devid: DEVID });
  const client2 = await l2.accepted;
  await write(
    client2,
    encodeCmdUnlink({ seqnum: 1, devid: DEVID + 1, unlinkSeqnum: 0 }),
  );
  const end = await c2.closed;
  assert.equal(end.reason, "protocol-error");
  assert.equal((end.error as Error).name, "UsbipProtocolError");
  assert.match((end.error as Error).message, /devid/);
  client2.close();
  worker.terminate();
  await l.done();
  await l2.done();
});

Deno.test("worker transport: terminate ends what is still open as io-error", async () => {
  const l = await listen();
  const worker = new TransportWorker(() => {});
  const dev = device();
  const c = worker.connect(l.path, dev, {});
  const client = await l.accepted;
  worker.terminate();
  const end = await c.closed;
  assert.equal(end.reason, "io-error");
  assert.equal(dev.closed, 1);
  client.close();
  await l.done();
});
