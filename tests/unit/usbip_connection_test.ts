// The URB phase of a USB/IP connection, on the host: a scripted client on a
// unix socket checks what vhci_hcd relies on (seqnums, completion order,
// unlink replies and the missing RET_SUBMIT, iso packing, babble clamping),
// and that a client that vanishes leaves nothing behind. The real vhci_hcd
// path is tests/device/usbip_test.ts.

import assert from "node:assert/strict";
import {
  type CmdSubmit,
  decodeReturn,
  encodeCmdSubmit,
  encodeCmdUnlink,
  encodeUrbResult,
  serveConnection,
  StreamDecoder,
  type SubmittedUrb,
  type UsbipReturn,
} from "../../src/usbip/mod.ts";
import type {
  EmulatedDevice,
  EmulatedUrb,
  EmulatedUrbResult,
} from "../../src/emulated/urb.ts";
import { UsbError } from "../../src/errors.ts";

const DEVID = 0x10001;

/** A client speaking the URB phase, as vhci_hcd would. */
class Client {
  readonly #conn: Deno.Conn;
  readonly #decoder = new StreamDecoder();
  readonly #sent = new Map<number, SubmittedUrb>();
  readonly #buf = new Uint8Array(65536);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async write(b: Uint8Array) {
    for (let at = 0; at < b.length;) {
      at += await this.#conn.write(b.subarray(at));
    }
  }
  submit(
    seqnum: number,
    c: Partial<Parameters<typeof encodeCmdSubmit>[0]> & {
      direction: "in" | "out";
      ep: number;
      transferBufferLength: number;
    },
  ) {
    this.#sent.set(seqnum, {
      direction: c.direction,
      transferBufferLength: c.transferBufferLength,
      numberOfPackets: c.isoPackets?.length ?? 0,
    });
    return this.write(
      encodeCmdSubmit({ seqnum, devid: DEVID, transferFlags: 0, ...c }),
    );
  }
  unlink(seqnum: number, target: number) {
    return this.write(
      encodeCmdUnlink({ seqnum, devid: DEVID, unlinkSeqnum: target }),
    );
  }
  /** The next reply, decoded exactly as vhci_hcd would (throws where it would drop the connection). */
  async next(): Promise<UsbipReturn | null> {
    for (;;) {
      const r = this.#decoder.next((b) =>
        decodeReturn(b, (s) => this.#sent.get(s))
      );
      if (r !== undefined) {
        if (r.command === "ret-submit") this.#sent.delete(r.seqnum);
        return r;
      }
      const n = await this.#conn.read(this.#buf);
      if (n === null) return null;
      this.#decoder.push(this.#buf.subarray(0, n));
    }
  }
  close() {
    this.#conn.close();
  }
}

async function pair(): Promise<{ server: Deno.Conn; client: Client }> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s`;
  const l = Deno.listen({ transport: "unix", path });
  const [server, conn] = await Promise.all([
    l.accept(),
    Deno.connect({ transport: "unix", path }),
  ]);
  l.close();
  await Deno.remove(dir, { recursive: true });
  return { server, client: new Client(conn) };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/** A device whose URBs wait until the test answers them. */
class ScriptedDevice implements EmulatedDevice {
  readonly speed = "high" as const;
  readonly summary = {
    vendorId: 0x1209,
    productId: 1,
    bcdDevice: 0x100,
    deviceClass: 0,
    deviceSubclass: 0,
    deviceProtocol: 0,
    configurationValue: 1,
    numConfigurations: 1,
    interfaces: [],
  };
  readonly urbs: { urb: EmulatedUrb; answer: Deferred<EmulatedUrbResult> }[] =
    [];
  #arrived: Deferred<void> | null = null;
  closed = 0;
  resets = 0;
  handleUrb(urb: EmulatedUrb): Promise<EmulatedUrbResult> {
    const answer = deferred<EmulatedUrbResult>();
    this.urbs.push({ urb, answer });
    this.#arrived?.resolve();
    return answer.promise;
  }
  async waitFor(n: number): Promise<void> {
    while (this.urbs.length < n) {
      this.#arrived = deferred();
      await this.#arrived.promise;
    }
  }
  reset() {
    this.resets++;
  }
  close() {
    this.closed++;
  }
}

Deno.test("many URBs in flight: each RET_SUBMIT goes out when its handler settles, with its own seqnum", async () => {
  const { server, client } = await pair();
  const dev = new ScriptedDevice();
  const c = serveConnection(server, dev, { devid: DEVID });
  for (let s = 1; s <= 4; s++) {
    await client.submit(s, {
      direction: "in",
      ep: 1,
      transferBufferLength: 16,
    });
  }
  await dev.waitFor(4);
  assert.equal(c.pending, 4);
  for (const i of [2, 0, 3, 1]) {
    const data = new Uint8Array(4).fill(i + 1);
    dev.urbs[i]!.answer.resolve({ status: 0, data, actualLength: 4 });
    const r = await client.next();
    assert.ok(r?.command === "ret-submit");
    assert.equal(r.seqnum, i + 1);
    assert.deepEqual(r.data, data);
  }
  assert.deepEqual(c.stats, {
    submitted: 4,
    completed: 4,
    unlinked: 0,
    bytesIn: 16,
    bytesOut: 0,
  });
  client.close();
  assert.deepEqual(await c.closed, { reason: "peer-closed" });
  assert.equal(dev.closed, 1);
});

Deno.test("what the device sees: setup only on endpoint 0, OUT data, iso packets, flags; control and OUT replies", async () => {
  const { server, client } = await pair();
  const dev = new ScriptedDevice();
  const c = serveConnection(server, dev);
  const setup = new Uint8Array([0x80, 6, 0, 1, 0, 0, 18, 0]);
  await client.submit(1, {
    direction: "in",
    ep: 0,
    transferBufferLength: 18,
    transferFlags: 0x200,
    setup,
  });
  await client.submit(2, {
    direction: "out",
    ep: 2,
    transferBufferLength: 3,
    data: new Uint8Array([7, 8, 9]),
  });
  await client.submit(3, {
    direction: "in",
    ep: 3,
    transferBufferLength: 8,
    isoPackets: [
      { offset: 0, length: 4, actualLength: 0, status: 0 },
      { offset: 4, length: 4, actualLength: 0, status: 0 },
    ],
  });
  await dev.waitFor(3);
  const [a, b, iso] = dev.urbs.map((u) => u.urb);
  assert.deepEqual(a?.setup, setup);
  assert.equal(a?.transferFlags, 0x200);
  assert.equal(a?.length, 18);
  assert.equal(b?.setup, undefined);
  assert.deepEqual(b?.data, new Uint8Array([7, 8, 9]));
  assert.deepEqual(iso?.isoPackets, [{ offset: 0, length: 4 }, {
    offset: 4,
    length: 4,
  }]);
  dev.urbs[1]!.answer.resolve({ status: 0, actualLength: 3 });
  const rb = await client.next();
  assert.ok(rb?.command === "ret-submit" && rb.seqnum === 2);
  assert.equal(rb.actualLength, 3);
  dev.urbs[0]!.answer.resolve({ status: -32, actualLength: 0 });
  const ra = await client.next();
  assert.ok(ra?.command === "ret-submit" && ra.seqnum === 1);
  assert.equal(ra.status, -32);
  dev.urbs[2]!.answer.resolve({ status: 0, actualLength: 0, isoPackets: [] });
  await client.next();
  await c.close();
});

Deno.test("CMD_UNLINK of a pending URB aborts its signal, answers -ECONNRESET, and its RET_SUBMIT never comes", async () => {
  const { server, client } = await pair();
  const dev = new ScriptedDevice();
  const c = serveConnection(server, dev, { devid: DEVID });
  await client.submit(1, { direction: "in", ep: 1, transferBufferLength: 8 });
  await dev.waitFor(1);
  const { urb, answer } = dev.urbs[0]!;
  await client.unlink(2, 1);
  const r = await client.next();
  assert.deepEqual(r, { command: "ret-unlink", seqnum: 2, status: -104 });
  assert.ok(urb.signal.aborted);
  assert.ok(
    urb.signal.reason instanceof UsbError &&
      urb.signal.reason.code === "cancelled",
  );
  // The handler answering late changes nothing: the next reply is for seqnum 3.
  answer.resolve({ status: 0, data: new Uint8Array(8), actualLength: 8 });
  await client.submit(3, { direction: "in", ep: 1, transferBufferLength: 8 });
  await dev.waitFor(2);
  dev.urbs[1]!.answer.resolve({ status: 0, actualLength: 0 });
  const r3 = await client.next();
  assert.ok(r3?.command === "ret-submit" && r3.seqnum === 3);
  // Unlinking a URB already answered: status 0.
  await client.unlink(4, 3);
  assert.deepEqual(await client.next(), {
    command: "ret-unlink",
    seqnum: 4,
    status: 0,
  });
  assert.equal(c.stats.unlinked, 1);
  await c.close();
});

Deno.test("isochronous IN: only the packets' actual bytes, back to back, with the command's offsets; actual_length is their sum", async () => {
  const { server, client } = await pair();
  const dev = new ScriptedDevice();
  const c = serveConnection(server, dev);
  const lengths = [0, 5, 16, 16, 3, 0, 16];
  const packets = lengths.map((_, i) => ({
    offset: i * 16,
    length: 16,
    actualLength: 0,
    status: 0,
  }));
  await client.submit(1, {
    direction: "in",
    ep: 4,
    transferBufferLength: 16 * lengths.length,
    isoPackets: packets,
  });
  await dev.waitFor(1);
  const buffer = new Uint8Array(16 * lengths.length);
  for (const [i, n] of lengths.entries()) {
    buffer.fill(0x10 + i, i * 16, i * 16 + n);
  }
  dev.urbs[0]!.answer.resolve({
    status: 0,
    data: buffer,
    actualLength: lengths.reduce((a, b) => a + b),
    isoPackets: lengths.map((n, i) => ({
      offset: i * 16,
      length: 16,
      actualLength: n,
      status: i === 4 ? -18 : 0,
    })),
  });
  const r = await client.next(); // decodeReturn applies vhci_hcd's sum rule
  assert.ok(r?.command === "ret-submit");
  assert.equal(r.actualLength, 56);
  assert.equal(r.errorCount, 1);
  assert.deepEqual(
    r.isoPackets?.map((p) => [p.offset, p.length, p.actualLength, p.status]),
    lengths.map((n, i) => [i * 16, 16, n, i === 4 ? -18 : 0]),
  );
  const expected = lengths.flatMap((n, i) => new Array(n).fill(0x10 + i));
  assert.deepEqual([...r.data!], expected);
  await c.close();
});

Deno.test("encodeUrbResult keeps replies valid for vhci_hcd: babble cut to the buffer, iso lengths clamped to packets and data", () => {
  const cmd: CmdSubmit = {
    command: "submit",
    seqnum: 1,
    devid: 0,
    direction: "in",
    ep: 1,
    transferFlags: 0,
    transferBufferLength: 4,
    startFrame: 0,
    numberOfPackets: 0,
    interval: 0,
    setup: new Uint8Array(8),
  };
  const lookup = (n: number, iso = 0) => () => ({
    direction: "in" as const,
    transferBufferLength: n,
    numberOfPackets: iso,
  });
  const babble = decodeReturn(
    encodeUrbResult(cmd, {
      status: 0,
      data: new Uint8Array(10),
      actualLength: 10,
    }),
    lookup(4),
  );
  assert.ok("value" in babble && babble.value.command === "ret-submit");
  assert.equal(babble.value.actualLength, 4);
  assert.equal(babble.value.status, -75);
  // actualLength beyond the data given: only the data is sent.
  const short = decodeReturn(
    encodeUrbResult(cmd, {
      status: 0,
      data: new Uint8Array(2),
      actualLength: 4,
    }),
    lookup(4),
  );
  assert.ok("value" in short && short.value.command === "ret-submit");
  assert.equal(short.value.actualLength, 2);
  const iso: CmdSubmit = {
    ...cmd,
    transferBufferLength: 8,
    numberOfPackets: 2,
    isoPackets: [
      { offset: 0, length: 4, actualLength: 0, status: 0 },
      { offset: 4, length: 4, actualLength: 0, status: 0 },
    ],
  };
  const r = decodeReturn(
    encodeUrbResult(iso, {
      status: 0,
      data: new Uint8Array(6),
      actualLength: 99,
      isoPackets: [
        { offset: 0, length: 4, actualLength: 9, status: 0 },
        { offset: 4, length: 4, actualLength: 4, status: 0 },
      ],
    }),
    lookup(8, 2),
  );
  assert.ok("value" in r && r.value.command === "ret-submit");
  assert.deepEqual(r.value.isoPackets?.map((p) => p.actualLength), [4, 2]);
  assert.equal(r.value.actualLength, 6);
  assert.throws(
    () => encodeUrbResult(cmd, { status: 5, actualLength: 0 }),
    TypeError,
  );
});

Deno.test("a handler that throws gets its URB answered -EPROTO and is reported; the connection goes on", async () => {
  const { server, client } = await pair();
  const errors: unknown[] = [];
  let calls = 0;
  const dev: EmulatedDevice = {
    ...new ScriptedDevice(),
    speed: "full",
    summary: new ScriptedDevice().summary,
    handleUrb() {
      if (calls++ === 0) throw new Error("bug in the device");
      return Promise.resolve({ status: 1, actualLength: 0 }); // not an errno
    },
    reset() {},
    close() {},
  };
  const c = serveConnection(server, dev, { onError: (e) => errors.push(e) });
  await client.submit(1, { direction: "in", ep: 1, transferBufferLength: 4 });
  await client.submit(2, { direction: "out", ep: 1, transferBufferLength: 0 });
  for (const s of [1, 2]) {
    const r = await client.next();
    assert.ok(r?.command === "ret-submit" && r.seqnum === s);
    assert.equal(r.status, -71);
  }
  assert.equal(errors.length, 2);
  await c.close();
});

Deno.test("a client that vanishes: pending signals aborted (disconnected), device closed, nothing left running", async () => {
  const { server, client } = await pair();
  const dev = new ScriptedDevice();
  const c = serveConnection(server, dev);
  for (let s = 1; s <= 3; s++) {
    await client.submit(s, {
      direction: "in",
      ep: 1,
      transferBufferLength: 8,
    });
  }
  await dev.waitFor(3);
  client.close();
  assert.deepEqual(await c.closed, { reason: "peer-closed" });
  for (const { urb } of dev.urbs) {
    assert.ok(urb.signal.aborted);
    assert.ok(
      urb.signal.reason instanceof UsbError &&
        urb.signal.reason.code === "disconnected",
    );
  }
  assert.equal(dev.closed, 1);
  assert.equal(c.pending, 0);
  // Late answers go nowhere.
  for (const { answer } of dev.urbs) {
    answer.resolve({ status: 0, actualLength: 0 });
  }
});

Deno.test("malformed input ends that connection only, with the reason; onEnd reset keeps the device usable", async () => {
  const a = await pair();
  const b = await pair();
  const devA = new ScriptedDevice();
  const devB = new ScriptedDevice();
  const ca = serveConnection(a.server, devA, { onEnd: "reset" });
  const cb = serveConnection(b.server, devB, { devid: DEVID });
  await a.client.write(new Uint8Array(48).fill(0xee));
  const end = await ca.closed;
  assert.equal(end.reason, "protocol-error");
  assert.match(String(end.error), /unknown command/);
  assert.equal(await a.client.next(), null, "the client sees the stream end");
  assert.deepEqual([devA.resets, devA.closed], [1, 0]);
  // The other connection still works.
  await b.client.submit(1, { direction: "in", ep: 1, transferBufferLength: 1 });
  await devB.waitFor(1);
  devB.urbs[0]!.answer.resolve({
    status: 0,
    data: new Uint8Array([5]),
    actualLength: 1,
  });
  assert.equal((await b.client.next())?.seqnum, 1);
  // A command for another devid breaks the protocol too.
  await b.client.write(
    encodeCmdUnlink({ seqnum: 2, devid: DEVID + 1, unlinkSeqnum: 1 }),
  );
  assert.equal((await cb.closed).reason, "protocol-error");
  a.client.close();
  b.client.close();
});

Deno.test("initialBytes: commands read during the handshake are served first", async () => {
  const { server, client } = await pair();
  const dev = new ScriptedDevice();
  const first = encodeCmdSubmit({
    seqnum: 1,
    devid: 0,
    direction: "out",
    ep: 1,
    transferFlags: 0,
    transferBufferLength: 2,
    data: new Uint8Array([1, 2]),
  });
  const c = serveConnection(server, dev, {
    initialBytes: first.subarray(0, 30),
  });
  await client.write(first.subarray(30));
  await dev.waitFor(1);
  assert.deepEqual(dev.urbs[0]!.urb.data, new Uint8Array([1, 2]));
  await c.close();
  client.close();
});
