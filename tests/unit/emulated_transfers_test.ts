/**
 * Bulk and interrupt transfers on an emulated device: handler dispatch,
 * stall, halt and clear, streams, ordering, unlink, reset and close, and
 * handlers that throw.
 */

import assert from "node:assert/strict";
import {
  defineDevice,
  type DeviceDefinition,
  type EmulatedDeviceEvent,
  type EndpointDefinition,
  TestHost,
  TransferFlags,
  type TransferInfo,
  UrbStatus,
} from "../../src/emulated/mod.ts";

type Errors = { error: unknown; where: string }[];

/** One interface (alternate 0 has `endpoints`, alternate 1 has `alt1`), configured. */
async function setup(
  endpoints: EndpointDefinition[],
  more: Partial<DeviceDefinition> & { alt1?: EndpointDefinition[] } = {},
) {
  const errors: Errors = [];
  const events: EmulatedDeviceEvent[] = [];
  const { alt1, ...rest } = more;
  const device = defineDevice({
    speed: "high",
    vendorId: 1,
    productId: 2,
    interfaces: [
      {
        alternates: alt1 === undefined
          ? [{ endpoints }]
          : [{ endpoints }, { endpoints: alt1 }],
      },
      { endpoints: [{ address: 0x8f, type: "bulk", onIn: () => [0xff] }] },
    ],
    onError: (error, where) => errors.push({ error, where }),
    onEvent: (e) => events.push(e),
    ...rest,
  });
  const host = new TestHost(device);
  await host.setConfiguration(1);
  return { device, host, errors, events };
}

const bytes = (r: { data?: Uint8Array }) => [...(r.data ?? [])];
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const halted = async (host: TestHost, address: number) =>
  (await host.controlIn({
    requestType: "standard",
    recipient: "endpoint",
    request: 0,
    value: 0,
    index: address,
  }, 2)).data![0] === 1;

/** A promise resolved from outside. */
function later<T>() {
  return Promise.withResolvers<T>();
}

Deno.test("an IN handler gets the length and the transfer's context", async () => {
  let seen: [number, TransferInfo] | undefined;
  const { device, host } = await setup([{
    address: 0x81,
    type: "interrupt",
    maxPacketSize: 16,
    interval: 4,
    onIn: (length, info) => {
      seen = [length, info];
      return [1, 2, 3];
    },
  }]);
  const r = await host.transferIn(0x81, 16, {
    transferFlags: TransferFlags.zeroPacket,
  });
  assert.deepEqual([r.status, r.actualLength, ...bytes(r)], [0, 3, 1, 2, 3]);
  const [length, info] = seen!;
  assert.equal(length, 16);
  assert.deepEqual(
    {
      endpoint: info.endpoint,
      type: info.type,
      maxPacketSize: info.maxPacketSize,
      transferFlags: info.transferFlags,
      configuration: info.configuration,
      interfaceNumber: info.interfaceNumber,
      alternate: info.alternate,
      intervalMicroseconds: info.intervalMicroseconds,
    },
    {
      endpoint: 0x81,
      type: "interrupt",
      maxPacketSize: 16,
      transferFlags: 0x40,
      configuration: 1,
      interfaceNumber: 0,
      alternate: 0,
      intervalMicroseconds: 1000,
    },
  );
  assert.ok(info.signal instanceof AbortSignal);
  device.close();
});

Deno.test("IN: more than asked is babble, short with URB_SHORT_NOT_OK is -EREMOTEIO", async () => {
  const { device, host, errors } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: (length) => new Uint8Array(length + 10).fill(7),
  }, {
    address: 0x82,
    type: "bulk",
    onIn: () => new Uint8Array(5),
  }]);
  const babble = await host.transferIn(0x81, 100);
  assert.deepEqual([babble.status, babble.actualLength], [
    UrbStatus.babble,
    100,
  ]);
  assert.equal(babble.data!.length, 100);
  const short = await host.transferIn(0x82, 512, {
    transferFlags: TransferFlags.shortNotOk,
  });
  assert.deepEqual([short.status, short.actualLength], [
    UrbStatus.shortNotOk,
    5,
  ]);
  assert.equal((await host.transferIn(0x82, 512)).status, 0);
  assert.equal(
    (await host.transferIn(0x82, 5, {
      transferFlags: TransferFlags.shortNotOk,
    })).status,
    0,
  );
  assert.equal(errors.length, 0, "babble is device behaviour, not an error");
  device.close();
});

Deno.test("IN data is a copy: the handler may reuse its buffer", async () => {
  const buffer = new Uint8Array([1, 2, 3]);
  const { device, host } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: () => buffer,
  }]);
  const r = await host.transferIn(0x81, 512);
  buffer.fill(9);
  assert.deepEqual(bytes(r), [1, 2, 3]);
  device.close();
});

Deno.test('"stall" halts the endpoint until CLEAR_FEATURE(ENDPOINT_HALT)', async () => {
  let calls = 0;
  const { device, host, events, errors } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: () => (++calls === 1 ? "stall" : [calls]),
  }]);
  const first = await host.transferIn(0x81, 512);
  assert.deepEqual([first.status, first.actualLength], [UrbStatus.stall, 0]);
  assert.ok(await halted(host, 0x81));
  assert.equal((await host.transferIn(0x81, 512)).status, UrbStatus.stall);
  assert.equal(calls, 1, "a halted endpoint does not call its handler");
  await host.clearHalt(0x81);
  assert.ok(!(await halted(host, 0x81)));
  assert.deepEqual(bytes(await host.transferIn(0x81, 512)), [2]);
  assert.deepEqual(events.filter((e) => e.type === "halt"), [
    { type: "halt", endpoint: 0x81, halted: true },
    { type: "halt", endpoint: 0x81, halted: false },
  ]);
  assert.equal(errors.length, 0, '"stall" is not an error');
  device.close();
});

Deno.test("a throwing IN handler stalls the endpoint, is reported, and the device keeps going", async () => {
  let calls = 0;
  const { device, host, errors } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: () => {
      if (++calls === 1) throw new Error("sensor unplugged");
      return [calls];
    },
  }, { address: 0x82, type: "bulk", onIn: () => [0x82] }]);
  assert.equal((await host.transferIn(0x81, 64)).status, UrbStatus.stall);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]!.error), /sensor unplugged/);
  assert.equal(errors[0]!.where, "endpoint 0x81 (bulk IN) onIn");
  assert.ok(await halted(host, 0x81));
  assert.equal((await host.transferIn(0x81, 64)).status, UrbStatus.stall);
  // Other endpoints and endpoint 0 are unaffected.
  assert.deepEqual(bytes(await host.transferIn(0x82, 64)), [0x82]);
  assert.deepEqual(bytes(await host.getDescriptor(1, 0, 1)), [18]);
  await host.clearHalt(0x81);
  assert.deepEqual(bytes(await host.transferIn(0x81, 64)), [2]);
  device.close();
});

Deno.test("an async handler that rejects, or returns nonsense, stalls and is reported", async () => {
  const { device, host, errors } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: () => Promise.reject(new RangeError("async failure")),
  }, {
    address: 0x82,
    type: "bulk",
    onIn: () => "hello" as never,
  }, {
    address: 0x83,
    type: "bulk",
    onIn: () => [1, 999] as never,
  }]);
  assert.equal((await host.transferIn(0x81, 64)).status, UrbStatus.stall);
  assert.equal((await host.transferIn(0x82, 64)).status, UrbStatus.stall);
  assert.equal((await host.transferIn(0x83, 64)).status, UrbStatus.stall);
  assert.match(String(errors[0]!.error), /async failure/);
  assert.match(
    String(errors[1]!.error),
    /returned "hello"; an IN handler returns a Uint8Array .* or "stall"/,
  );
  assert.match(String(errors[2]!.error), /returned an array/);
  device.close();
});

Deno.test("onError that throws does not take the device down", async () => {
  const { device, host } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: () => {
      throw new Error("first");
    },
  }], {
    onError: () => {
      throw new Error("onError itself fails");
    },
  });
  assert.equal((await host.transferIn(0x81, 64)).status, UrbStatus.stall);
  assert.deepEqual(bytes(await host.getDescriptor(1, 0, 1)), [18]);
  device.close();
});

Deno.test('OUT: the handler gets a copy; nothing returned means accepted; "stall" halts; throw halts', async () => {
  const received: Uint8Array[] = [];
  const { device, host, errors } = await setup([{
    address: 0x01,
    type: "bulk",
    onOut: (data) => {
      received.push(data);
    },
  }, {
    address: 0x02,
    type: "bulk",
    onOut: (data) => (data[0] === 0xff ? "stall" : undefined),
  }, {
    address: 0x03,
    type: "bulk",
    onOut: () => {
      throw new Error("disk full");
    },
  }, {
    address: 0x04,
    type: "bulk",
    onOut: () => 7 as never,
  }]);
  const data = new Uint8Array([1, 2, 3]);
  const r = await host.transferOut(0x01, data);
  data.fill(0);
  assert.deepEqual([r.status, r.actualLength], [0, 3]);
  assert.deepEqual([...received[0]!], [1, 2, 3]);
  const zlp = await host.transferOut(0x01, new Uint8Array(0));
  assert.deepEqual([zlp.status, zlp.actualLength], [0, 0]);
  assert.equal(received[1]!.length, 0);

  assert.equal((await host.transferOut(0x02, new Uint8Array([1]))).status, 0);
  assert.equal(
    (await host.transferOut(0x02, new Uint8Array([0xff]))).status,
    UrbStatus.stall,
  );
  assert.equal(
    (await host.transferOut(0x02, new Uint8Array([1]))).status,
    UrbStatus.stall,
  );
  assert.ok(await halted(host, 0x02));

  assert.equal(
    (await host.transferOut(0x03, new Uint8Array([1]))).status,
    UrbStatus.stall,
  );
  assert.equal(errors[0]!.where, "endpoint 0x03 (bulk OUT) onOut");

  const odd = await host.transferOut(0x04, new Uint8Array([1]));
  assert.deepEqual([odd.status, odd.actualLength], [0, 1]);
  assert.match(
    String(errors[1]!.error),
    /returned 7; an OUT handler returns nothing/,
  );
  device.close();
});

Deno.test("endpoints without behaviour: IN waits until unlinked, OUT accepts", async () => {
  const { device, host } = await setup([
    { address: 0x81, type: "interrupt" },
    { address: 0x01, type: "bulk" },
  ]);
  const out = await host.transferOut(0x01, new Uint8Array(10));
  assert.deepEqual([out.status, out.actualLength], [0, 10]);
  const unlink = new AbortController();
  const pending = host.transferIn(0x81, 64, { signal: unlink.signal });
  await tick(5);
  unlink.abort();
  assert.equal((await pending).status, UrbStatus.unlinked);
  device.close();
});

Deno.test("URBs on one endpoint complete in order, one handler call at a time", async () => {
  const gates = [later<void>(), later<void>(), later<void>()];
  const log: string[] = [];
  let n = 0;
  const { device, host } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: async () => {
      const i = n++;
      log.push(`start ${i}`);
      await gates[i]!.promise;
      log.push(`end ${i}`);
      return [i];
    },
  }]);
  const done: number[] = [];
  const urbs = [0, 1, 2].map((i) =>
    host.transferIn(0x81, 512).then((r) => {
      done.push(i);
      return r;
    })
  );
  await tick();
  assert.deepEqual(log, ["start 0"]);
  gates[2]!.resolve();
  gates[1]!.resolve();
  await tick();
  assert.deepEqual(log, ["start 0"], "later URBs wait for the first");
  gates[0]!.resolve();
  const results = await Promise.all(urbs);
  assert.deepEqual(results.map((r) => bytes(r)[0]), [0, 1, 2]);
  assert.deepEqual(done, [0, 1, 2]);
  assert.deepEqual(log, [
    "start 0",
    "end 0",
    "start 1",
    "end 1",
    "start 2",
    "end 2",
  ]);
  device.close();
});

Deno.test("a slow endpoint does not block other endpoints or endpoint 0", async () => {
  const gate = later<void>();
  const { device, host } = await setup([{
    address: 0x81,
    type: "interrupt",
    onIn: async () => {
      await gate.promise;
      return [1];
    },
  }, { address: 0x82, type: "bulk", onIn: () => [2] }]);
  const slow = host.transferIn(0x81, 64);
  assert.deepEqual(bytes(await host.transferIn(0x82, 64)), [2]);
  assert.deepEqual(bytes(await host.getDescriptor(1, 0, 1)), [18]);
  gate.resolve();
  assert.deepEqual(bytes(await slow), [1]);
  device.close();
});

Deno.test("unlink: a running handler's URB ends with -ECONNRESET at once, its signal fires, the next URB runs", async () => {
  let signal: AbortSignal | undefined;
  let calls = 0;
  const { device, host, errors } = await setup([{
    address: 0x81,
    type: "interrupt",
    onIn: (_n, info) => {
      if (++calls === 1) {
        signal = info.signal;
        return new Promise(() => {}); // never answers, ignores the signal
      }
      return [calls];
    },
  }]);
  const unlink = new AbortController();
  const first = host.transferIn(0x81, 64, { signal: unlink.signal });
  const second = host.transferIn(0x81, 64);
  await tick();
  const t0 = performance.now();
  unlink.abort();
  const r = await first;
  assert.ok(performance.now() - t0 < 50, "promptly");
  assert.deepEqual([r.status, r.actualLength, r.data], [
    UrbStatus.unlinked,
    0,
    undefined,
  ]);
  assert.ok(signal!.aborted);
  assert.deepEqual(bytes(await second), [2]);
  assert.equal(errors.length, 0);
  device.close();
});

Deno.test("unlink: a queued URB ends at once and its handler is never called", async () => {
  const gate = later<void>();
  const calls: number[] = [];
  const { device, host } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: async (length) => {
      calls.push(length);
      if (length === 1) await gate.promise;
      return [length];
    },
  }]);
  const first = host.transferIn(0x81, 1);
  const unlink = new AbortController();
  const queued = host.transferIn(0x81, 2, { signal: unlink.signal });
  const third = host.transferIn(0x81, 3);
  await tick();
  unlink.abort();
  assert.equal((await queued).status, UrbStatus.unlinked);
  gate.resolve();
  assert.deepEqual(bytes(await first), [1]);
  assert.deepEqual(bytes(await third), [3]);
  assert.deepEqual(calls, [1, 3]);

  const gone = new AbortController();
  gone.abort();
  const r = await host.transferIn(0x81, 4, { signal: gone.signal });
  assert.equal(r.status, UrbStatus.unlinked);
  assert.deepEqual(calls, [1, 3], "an already unlinked URB never starts");
  device.close();
});

Deno.test("unlink: what a handler does afterwards is dropped, errors included", async () => {
  const gate = later<void>();
  let calls = 0;
  const { device, host, errors } = await setup([{
    address: 0x81,
    type: "bulk",
    onIn: async () => {
      if (++calls === 1) {
        await gate.promise;
        throw new Error("too late to matter");
      }
      return [calls];
    },
  }]);
  const unlink = new AbortController();
  const first = host.transferIn(0x81, 64, { signal: unlink.signal });
  await tick();
  unlink.abort();
  assert.equal((await first).status, UrbStatus.unlinked);
  gate.resolve();
  await tick();
  assert.equal(errors.length, 0);
  assert.ok(!(await halted(host, 0x81)), "no halt from an unlinked URB");
  assert.deepEqual(bytes(await host.transferIn(0x81, 64)), [2]);
  device.close();
});

Deno.test("an interrupt IN endpoint can wait for something to say", async () => {
  const events: number[] = [];
  let wake: (() => void) | undefined;
  const { device, host } = await setup([{
    address: 0x81,
    type: "interrupt",
    onIn: async (_n, { signal }) => {
      while (events.length === 0) {
        await new Promise<void>((resolve, reject) => {
          wake = resolve;
          signal.addEventListener("abort", () => reject(signal.reason), {
            once: true,
          });
        });
      }
      return [events.shift()!];
    },
  }]);
  const waiting = host.transferIn(0x81, 8);
  await tick(10);
  events.push(42);
  wake!();
  assert.deepEqual(bytes(await waiting), [42]);
  device.close();
});

Deno.test("SET_INTERFACE ends pending URBs of that interface only (-ESHUTDOWN) and clears halts", async () => {
  const { device, host, errors } = await setup([
    { address: 0x81, type: "interrupt" },
  ], { alt1: [{ address: 0x81, type: "bulk", onIn: () => [0xa1] }] });
  const pending = host.transferIn(0x81, 64);
  const otherInterface = host.device.handleUrb({
    endpoint: 15,
    direction: "in",
    length: 64,
    transferFlags: 0,
    signal: new AbortController().signal,
  });
  await host.controlOut({
    requestType: "standard",
    recipient: "endpoint",
    request: 3,
    value: 0,
    index: 0x8f,
  }); // halt 0x8f in interface 1
  await tick();
  assert.equal((await host.setInterface(0, 1)).status, 0);
  assert.equal((await pending).status, UrbStatus.shutdown);
  assert.deepEqual(bytes(await otherInterface), [0xff]);
  assert.ok(await halted(host, 0x8f), "interface 1 keeps its halt");
  assert.deepEqual(bytes(await host.transferIn(0x81, 64)), [0xa1]);
  // Back in alternate 0 the endpoint is the idle interrupt one again.
  await host.setInterface(0, 0);
  const idle = new AbortController();
  const again = host.transferIn(0x81, 64, { signal: idle.signal });
  await tick();
  idle.abort();
  assert.equal((await again).status, UrbStatus.unlinked);
  assert.equal(errors.length, 0);
  device.close();
});

Deno.test("a URB for an endpoint the current setting does not have stalls and is reported", async () => {
  const { device, host, errors } = await setup([], {
    alt1: [{ address: 0x81, type: "bulk" }],
  });
  assert.equal((await host.transferIn(0x81, 64)).status, UrbStatus.stall);
  assert.match(
    String(errors[0]!.error),
    /endpoint 0x81, which the current configuration and alternate settings do not have/,
  );
  await host.setConfiguration(0);
  assert.equal((await host.transferIn(0x8f, 64)).status, UrbStatus.stall);
  assert.match(String(errors[1]!.error), /not configured/);
  device.close();
});

Deno.test("reset(): pending URBs end with -ESHUTDOWN, the device is back in its default state", async () => {
  let signal: AbortSignal | undefined;
  const { device, host, events, errors } = await setup([{
    address: 0x81,
    type: "interrupt",
    onIn: (_n, info) => {
      signal = info.signal;
      return new Promise(() => {});
    },
  }]);
  await host.controlOut({
    requestType: "standard",
    recipient: "endpoint",
    request: 3,
    value: 0,
    index: 0x8f,
  });
  const pending = host.transferIn(0x81, 64);
  await tick();
  device.reset();
  assert.equal((await pending).status, UrbStatus.shutdown);
  assert.ok(signal!.aborted);
  const config = await host.controlIn({
    requestType: "standard",
    recipient: "device",
    request: 8,
    value: 0,
    index: 0,
  }, 1);
  assert.deepEqual(bytes(config), [0], "unconfigured");
  assert.equal(events.at(-1)!.type, "reset");
  assert.equal((await host.transferIn(0x81, 64)).status, UrbStatus.stall);
  assert.equal(errors.length, 1, "the stray URB is reported");
  await host.setConfiguration(1);
  assert.ok(!(await halted(host, 0x8f)), "a reset clears halts");
  device.close();
});

Deno.test("close(): pending URBs end, later ones get -ESHUTDOWN, sources are closed", async () => {
  let finalized = false;
  async function* slowSource() {
    try {
      yield new Uint8Array([1]);
      await new Promise(() => {});
    } finally {
      finalized = true;
    }
  }
  const { device, host, events } = await setup([{
    address: 0x81,
    type: "bulk",
    source: slowSource,
  }]);
  assert.deepEqual(bytes(await host.transferIn(0x81, 64)), [1]);
  const pending = host.transferIn(0x81, 64);
  await tick();
  device.close();
  assert.equal((await pending).status, UrbStatus.shutdown);
  const after = await host.transferIn(0x81, 64);
  assert.equal(after.status, UrbStatus.shutdown);
  assert.equal((await host.getDescriptor(1, 0, 18)).status, UrbStatus.shutdown);
  assert.equal(events.at(-1)!.type, "close");
  device.close(); // twice is fine
  // The generator is stuck in its await, so return() is queued behind it:
  // finally has not run, and the device does not wait for it.
  assert.equal(finalized, false);
});

// ---------------------------------------------------------------------------
// Streams

Deno.test("source: chunks become transfers; a transfer that asks less gets whole packets", async () => {
  const { device, host } = await setup([{
    address: 0x81,
    type: "bulk",
    maxPacketSize: 512,
    source: [
      new Uint8Array(200).fill(1),
      new Uint8Array(1500).fill(2),
      new Uint8Array(0), // a zero-length packet
      [3, 3, 3] as unknown as Uint8Array,
    ],
  }]);
  const lengths: [number, number][] = [];
  for (const ask of [4096, 1024, 4096, 4096, 4096]) {
    const r = await host.transferIn(0x81, ask);
    lengths.push([r.status, r.actualLength]);
  }
  assert.deepEqual(lengths, [[0, 200], [0, 1024], [0, 476], [0, 0], [0, 3]]);
  device.close();
});

Deno.test("source: a transfer that is not a multiple of maxPacketSize and too short babbles", async () => {
  const chunk = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  // At full speed (64-byte packets): 300 bytes asked as 100 bytes.
  const errors: Errors = [];
  const full = defineDevice({
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [{
      endpoints: [{ address: 0x81, type: "bulk", source: [chunk] }],
    }],
    onError: (error, where) => errors.push({ error, where }),
  });
  const h = new TestHost(full);
  await h.setConfiguration(1);
  const r = await h.transferIn(0x81, 100);
  assert.deepEqual([r.status, r.actualLength], [UrbStatus.babble, 100]);
  assert.deepEqual(bytes(r), [...chunk.slice(0, 100)]);
  // The packet that did not fit (bytes 64..127) is lost, as on the wire.
  const rest = await h.transferIn(0x81, 512);
  assert.deepEqual([rest.status, rest.actualLength], [0, 300 - 128]);
  assert.equal(rest.data![0], 128);
  assert.equal(errors.length, 0);
  full.close();
});

Deno.test("source: unlinked while waiting, the chunk that arrives later goes to the next transfer", async () => {
  const gate = later<void>();
  async function* source() {
    await gate.promise;
    yield new Uint8Array([0xaa, 0xbb]);
  }
  const { device, host } = await setup([{
    address: 0x81,
    type: "bulk",
    source: source(),
  }]);
  const unlink = new AbortController();
  const first = host.transferIn(0x81, 512, { signal: unlink.signal });
  await tick();
  unlink.abort();
  assert.equal((await first).status, UrbStatus.unlinked);
  gate.resolve();
  await tick();
  assert.deepEqual(bytes(await host.transferIn(0x81, 512)), [0xaa, 0xbb]);
  // The source has ended: the endpoint has nothing more to send.
  const idle = new AbortController();
  const waiting = host.transferIn(0x81, 512, { signal: idle.signal });
  await tick(5);
  idle.abort();
  assert.equal((await waiting).status, UrbStatus.unlinked);
  device.close();
});

Deno.test("source: a ReadableStream, and a factory that gives each device its own", async () => {
  const makeSource = () =>
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array([1, 2]));
        c.enqueue(new Uint8Array([3]));
        c.close();
      },
    });
  const def: DeviceDefinition = {
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [{
      endpoints: [{ address: 0x81, type: "bulk", source: makeSource }],
    }],
  };
  for (let i = 0; i < 2; i++) {
    const device = defineDevice(def);
    const host = new TestHost(device);
    await host.setConfiguration(1);
    assert.deepEqual(bytes(await host.transferIn(0x81, 64)), [1, 2]);
    assert.deepEqual(bytes(await host.transferIn(0x81, 64)), [3]);
    device.close();
  }
});

Deno.test("source: an error, or a chunk that is not bytes, stalls and is reported", async () => {
  // deno-lint-ignore require-yield
  async function* failing(): AsyncGenerator<Uint8Array> {
    throw new Error("camera gone");
  }
  const { device, host, errors } = await setup([
    { address: 0x81, type: "bulk", source: failing() },
    { address: 0x82, type: "bulk", source: ["text" as unknown as Uint8Array] },
  ]);
  assert.equal((await host.transferIn(0x81, 64)).status, UrbStatus.stall);
  assert.equal(errors[0]!.where, "endpoint 0x81 (bulk IN) source");
  assert.match(String(errors[0]!.error), /camera gone/);
  assert.equal((await host.transferIn(0x82, 64)).status, UrbStatus.stall);
  assert.match(
    String(errors[1]!.error),
    /produced string instead of a Uint8Array/,
  );
  device.close();
});

Deno.test("sink: data goes to a WritableStream; backpressure holds the OUT transfer", async () => {
  const written: number[][] = [];
  let release: (() => void) | undefined;
  const { device, host } = await setup([{
    address: 0x01,
    type: "bulk",
    sink: new WritableStream<Uint8Array>({
      async write(chunk) {
        written.push([...chunk]);
        if (chunk[0] === 0xee) {
          await new Promise<void>((r) => (release = r));
        }
      },
    }),
  }]);
  assert.equal(
    (await host.transferOut(0x01, new Uint8Array([1, 2]))).status,
    0,
  );
  let done = false;
  const slow = host.transferOut(0x01, new Uint8Array([0xee])).then((r) => {
    done = true;
    return r;
  });
  await tick(5);
  assert.equal(done, false, "the device NAKs while the sink is busy");
  release!();
  const r = await slow;
  assert.deepEqual([r.status, r.actualLength], [0, 1]);
  assert.deepEqual(written, [[1, 2], [0xee]]);
  device.close();
});

Deno.test("sink: a failing stream stalls the endpoint and is reported", async () => {
  const { device, host, errors } = await setup([{
    address: 0x01,
    type: "bulk",
    sink: new WritableStream({
      write() {
        throw new Error("no space");
      },
    }),
  }]);
  assert.equal(
    (await host.transferOut(0x01, new Uint8Array([1]))).status,
    UrbStatus.stall,
  );
  assert.equal(errors[0]!.where, "endpoint 0x01 (bulk OUT) sink");
  device.close();
});

Deno.test("loopback through a TransformStream: OUT chunks come back on IN", async () => {
  const loop = new TransformStream<Uint8Array, Uint8Array>(
    undefined,
    undefined,
    { highWaterMark: 8 },
  );
  const { device, host } = await setup([
    { address: 0x01, type: "bulk", sink: loop.writable },
    { address: 0x81, type: "bulk", source: loop.readable },
  ]);
  for (const n of [1, 512, 513, 0, 3]) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
    assert.equal((await host.transferOut(0x01, data)).status, 0);
    const back = await host.transferIn(0x81, 4096);
    assert.deepEqual(bytes(back), [...data], `${n} bytes`);
  }
  device.close();
});
