// The USB/IP server on the host over TCP loopback: device list, import,
// refusals, hand-over to the URB phase, re-import after the client leaves,
// shutdown. A kernel client (usbip attach) is in tests/device/usbip_test.ts.

import assert from "node:assert/strict";
import {
  type Decoded,
  decodeOpRepDevlist,
  decodeOpRepImport,
  decodeReturn,
  encodeCmdSubmit,
  encodeOpReqDevlist,
  encodeOpReqImport,
  serve,
  StreamDecoder,
} from "../../src/usbip/mod.ts";
import type {
  EmulatedDevice,
  EmulatedUrbResult,
} from "../../src/emulated/urb.ts";

function device(productId: number) {
  const d = {
    speed: "full" as const,
    summary: {
      vendorId: 0x1209,
      productId,
      bcdDevice: 0x0100,
      deviceClass: 0,
      deviceSubclass: 0,
      deviceProtocol: 0,
      configurationValue: 1,
      numConfigurations: 1,
      interfaces: [{
        interfaceClass: 0xff,
        interfaceSubclass: 1,
        interfaceProtocol: 2,
      }],
    },
    resets: 0,
    closes: 0,
    handleUrb(): Promise<EmulatedUrbResult> {
      return Promise.resolve({
        status: 0,
        data: new Uint8Array([productId]),
        actualLength: 1,
      });
    },
    reset() {
      d.resets++;
    },
    close() {
      d.closes++;
    },
  };
  return d satisfies EmulatedDevice;
}

async function request<T>(
  conn: Deno.Conn,
  bytes: Uint8Array,
  decode: (b: Uint8Array) => Decoded<T>,
): Promise<{ value: T; rest: StreamDecoder }> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
  const d = new StreamDecoder();
  const buf = new Uint8Array(4096);
  for (;;) {
    const v = d.next(decode);
    if (v !== undefined) return { value: v, rest: d };
    const n = await conn.read(buf);
    if (n === null) throw new Error("closed before the reply");
    d.push(buf.subarray(0, n));
  }
}

async function readToEnd(conn: Deno.Conn): Promise<number> {
  let total = 0;
  const buf = new Uint8Array(4096);
  for (let n; (n = await conn.read(buf)) !== null;) total += n;
  return total;
}

Deno.test("serve: the device list has bus ids 1-N, the ids and interfaces; the connection closes after it", async () => {
  const a = device(0x10), b = device(0x20);
  await using server = await serve([a, b], { port: 0, hostname: "127.0.0.1" });
  const conn = await Deno.connect({
    port: server.addr.port,
    hostname: "127.0.0.1",
  });
  const { value } = await request(
    conn,
    encodeOpReqDevlist(),
    decodeOpRepDevlist,
  );
  assert.equal(value.status, 0);
  assert.deepEqual(
    value.devices.map((
      d,
    ) => [d.busid, d.busnum, d.devnum, d.speed, d.productId]),
    [["1-1", 1, 1, "full", 0x10], ["1-2", 1, 2, "full", 0x20]],
  );
  assert.deepEqual(value.devices[0]?.interfaces, [{
    interfaceClass: 0xff,
    interfaceSubclass: 1,
    interfaceProtocol: 2,
  }]);
  assert.equal(await readToEnd(conn), 0, "closed after the list, as usbipd");
  conn.close();
});

Deno.test("serve: import hands the stream to the URB phase; a busy or unknown bus id is refused; re-import after detach", async () => {
  const a = device(0x10);
  const server = await serve([a], { port: 0, hostname: "127.0.0.1" });
  const connect = () =>
    Deno.connect({ port: server.addr.port, hostname: "127.0.0.1" });

  const unknown = await connect();
  const u = await request(unknown, encodeOpReqImport("9-9"), decodeOpRepImport);
  assert.deepEqual(u.value, { version: 0x111, status: 1, device: null });
  unknown.close();

  const conn = await connect();
  const imp = await request(conn, encodeOpReqImport("1-1"), decodeOpRepImport);
  assert.equal(imp.value.status, 0);
  assert.equal(imp.value.device?.busid, "1-1");
  // URB phase, devid = busnum << 16 | devnum.
  const submit = encodeCmdSubmit({
    seqnum: 1,
    devid: 0x10001,
    direction: "in",
    ep: 1,
    transferFlags: 0,
    transferBufferLength: 4,
  });
  const ret = await request(conn, submit, (b) =>
    decodeReturn(b, () => ({
      direction: "in",
      transferBufferLength: 4,
      numberOfPackets: 0,
    })));
  assert.ok(ret.value.command === "ret-submit");
  assert.deepEqual(ret.value.data, new Uint8Array([0x10]));
  assert.equal(server.exports[0]?.imported, true);

  const second = await connect();
  const busy = await request(
    second,
    encodeOpReqImport("1-1"),
    decodeOpRepImport,
  );
  assert.equal(busy.value.status, 1, "one importer at a time");
  second.close();

  conn.close(); // the client detaches
  await server.exports[0]?.connection?.closed;
  assert.equal(a.resets, 1, "the device is reset for the next import");
  const again = await connect();
  const imp2 = await request(
    again,
    encodeOpReqImport("1-1"),
    decodeOpRepImport,
  );
  assert.equal(imp2.value.status, 0);

  await server.close();
  assert.equal(await readToEnd(again), 0, "the importer sees its device go");
  again.close();
  assert.equal(a.closes, 1);
  await server.finished;
});

Deno.test("serve: a malformed request drops that connection only and is reported", async () => {
  const errors: unknown[] = [];
  await using server = await serve([device(1)], {
    port: 0,
    hostname: "127.0.0.1",
    onError: (e) => errors.push(e),
  });
  const bad = await Deno.connect({
    port: server.addr.port,
    hostname: "127.0.0.1",
  });
  await bad.write(new Uint8Array([1, 0x11, 0x12, 0x34, 0, 0, 0, 0]));
  assert.equal(await readToEnd(bad), 0);
  bad.close();
  assert.equal(errors.length, 1);
  assert.match(
    String((errors[0] as Error).cause),
    /unknown operation code 0x1234/,
  );
  const good = await Deno.connect({
    port: server.addr.port,
    hostname: "127.0.0.1",
  });
  const { value } = await request(
    good,
    encodeOpReqDevlist(),
    decodeOpRepDevlist,
  );
  assert.equal(value.devices.length, 1);
  good.close();
});

Deno.test("serve: arguments are checked before anything listens", async () => {
  await assert.rejects(serve([]), /devices must be a non-empty array/);
  await assert.rejects(
    serve([device(1)], { port: 70000 }),
    /options.port must be an integer from 0 to 65535/,
  );
});
