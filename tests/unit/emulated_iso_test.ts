/**
 * Isochronous transfers on an emulated device. The invariant vhci_hcd
 * depends on (usbip_common.c, usbip_recv_iso: otherwise it drops the
 * connection): every packet's actualLength is at most its requested
 * length, and the URB's actualLength is their sum.
 */

import assert from "node:assert/strict";
import {
  defineDevice,
  type EmulatedUrbResult,
  type IsoInHandler,
  type IsoInPacket,
  type IsoOutHandler,
  TestHost,
  type TransferInfo,
  UrbStatus,
} from "../../src/emulated/mod.ts";

type Errors = { error: unknown; where: string }[];

/** An audio-like device: interface 1 alternate 1 has iso IN 0x81 and iso OUT 0x02. */
async function setup(
  onIsoIn: IsoInHandler | undefined,
  onIsoOut?: IsoOutHandler,
  speed: "full" | "high" = "full",
) {
  const errors: Errors = [];
  const device = defineDevice({
    speed,
    vendorId: 1,
    productId: 2,
    interfaces: [
      { class: 1, subclass: 1 },
      {
        alternates: [
          { class: 1, subclass: 2 },
          {
            class: 1,
            subclass: 2,
            endpoints: [
              {
                address: 0x81,
                type: "isochronous",
                maxPacketSize: 192,
                onIsoIn,
              },
              {
                address: 0x02,
                type: "isochronous",
                maxPacketSize: 192,
                onIsoOut,
              },
            ],
          },
        ],
      },
    ],
    onError: (error, where) => errors.push({ error, where }),
  });
  const host = new TestHost(device);
  await host.setConfiguration(1);
  assert.equal((await host.setInterface(1, 1)).status, 0);
  return { device, host, errors };
}

/** Checks the invariants every iso result must keep. */
function checkInvariants(
  r: EmulatedUrbResult,
  requested: readonly { offset: number; length: number }[],
  bufferLength: number,
  direction: "in" | "out",
) {
  assert.equal(r.status, 0, "an iso URB completes; packets carry the errors");
  const packets = r.isoPackets!;
  assert.equal(packets.length, requested.length);
  let sum = 0;
  packets.forEach((p, i) => {
    assert.equal(p.offset, requested[i]!.offset);
    assert.equal(p.length, requested[i]!.length);
    assert.ok(
      p.actualLength >= 0 && p.actualLength <= p.length,
      `packet ${i}: actualLength ${p.actualLength} <= length ${p.length}`,
    );
    assert.ok(Number.isInteger(p.status) && p.status <= 0);
    sum += p.actualLength;
  });
  assert.equal(r.actualLength, sum, "actualLength is the sum of the packets'");
  assert.equal(r.errorCount, packets.filter((p) => p.status !== 0).length);
  if (direction === "in") assert.equal(r.data!.length, bufferLength);
  else assert.equal(r.data, undefined);
}

Deno.test("iso IN: the handler chooses each packet's length (0, short, full)", async () => {
  let info: TransferInfo | undefined;
  const { device, host } = await setup((packets, i) => {
    info = i;
    assert.deepEqual(packets.map((p) => p.length), [192, 192, 192, 192]);
    return [
      new Uint8Array(0),
      new Uint8Array(100).fill(1),
      new Uint8Array(192).fill(2),
      [3, 3],
    ];
  });
  const r = await host.isochronousIn(0x81, [192, 192, 192, 192]);
  checkInvariants(
    r,
    [0, 192, 384, 576].map((offset) => ({ offset, length: 192 })),
    768,
    "in",
  );
  assert.deepEqual(r.isoPackets!.map((p) => p.actualLength), [0, 100, 192, 2]);
  assert.equal(r.actualLength, 294);
  assert.equal(r.errorCount, 0);
  // Packet i's bytes start at its offset.
  assert.equal(r.data![192], 1);
  assert.equal(r.data![192 + 99], 1);
  assert.equal(r.data![384], 2);
  assert.deepEqual([...r.data!.subarray(576, 578)], [3, 3]);
  assert.equal(info!.alternate, 1);
  assert.equal(info!.interfaceNumber, 1);
  assert.equal(info!.intervalMicroseconds, 1000);
  device.close();
});

Deno.test("iso IN: a packet longer than requested is babble (-EOVERFLOW, length 0)", async () => {
  const { device, host, errors } = await setup(() => [
    new Uint8Array(193),
    new Uint8Array(10),
  ]);
  const r = await host.isochronousIn(0x81, [192, 192]);
  checkInvariants(
    r,
    [{ offset: 0, length: 192 }, { offset: 192, length: 192 }],
    384,
    "in",
  );
  assert.deepEqual(r.isoPackets!.map((p) => [p.actualLength, p.status]), [
    [0, UrbStatus.babble],
    [10, 0],
  ]);
  assert.equal(r.errorCount, 1);
  assert.equal(r.actualLength, 10);
  assert.equal(errors.length, 0);
  device.close();
});

Deno.test("iso IN: missing entries are empty packets; extra ones are dropped and reported", async () => {
  let extra = false;
  const { device, host, errors } = await setup((packets) =>
    extra
      ? packets.map(() => new Uint8Array(1)).concat([new Uint8Array(1)])
      : [new Uint8Array(5)]
  );
  const r = await host.isochronousIn(0x81, [192, 192, 192]);
  assert.deepEqual(r.isoPackets!.map((p) => p.actualLength), [5, 0, 0]);
  extra = true;
  const r2 = await host.isochronousIn(0x81, [192, 192]);
  assert.deepEqual(r2.isoPackets!.map((p) => p.actualLength), [1, 1]);
  assert.match(String(errors[0]!.error), /returned 3 packets for a URB of 2/);
  device.close();
});

Deno.test("iso IN: packets can carry an error status to simulate bad packets", async () => {
  const { device, host, errors } = await setup(() => [
    { data: new Uint8Array(50), status: -84 }, // EILSEQ: CRC error, data kept
    { status: -71 },
    { data: [1, 2, 3] },
    { status: 5 }, // not a status: reported, -EPROTO
  ]);
  const r = await host.isochronousIn(0x81, [192, 192, 192, 192]);
  checkInvariants(
    r,
    [0, 192, 384, 576].map((offset) => ({ offset, length: 192 })),
    768,
    "in",
  );
  assert.deepEqual(r.isoPackets!.map((p) => [p.actualLength, p.status]), [
    [50, -84],
    [0, -71],
    [3, 0],
    [0, UrbStatus.protocolError],
  ]);
  assert.equal(r.errorCount, 3);
  assert.match(String(errors[0]!.error), /packet 3 has status 5/);
  device.close();
});

Deno.test("iso IN: a throwing handler fails the URB's packets (-EPROTO) without halting", async () => {
  let calls = 0;
  const { device, host, errors } = await setup(() => {
    if (++calls === 1) throw new Error("ADC overrun");
    return [new Uint8Array(4)];
  });
  const r = await host.isochronousIn(0x81, [192, 192]);
  checkInvariants(
    r,
    [{ offset: 0, length: 192 }, { offset: 192, length: 192 }],
    384,
    "in",
  );
  assert.deepEqual(r.isoPackets!.map((p) => p.status), [-71, -71]);
  assert.equal(r.errorCount, 2);
  assert.equal(r.actualLength, 0);
  assert.equal(errors[0]!.where, "endpoint 0x81 (isochronous IN) onIsoIn");
  const next = await host.isochronousIn(0x81, [192]);
  assert.deepEqual(next.isoPackets!.map((p) => p.actualLength), [4]);
  device.close();
});

Deno.test("iso IN: a result that is not an array fails every packet and is reported", async () => {
  const { device, host, errors } = await setup(() => "nope" as never);
  const r = await host.isochronousIn(0x81, [192, 192]);
  assert.equal(r.errorCount, 2);
  assert.match(
    String(errors[0]!.error),
    /returned "nope"; onIsoIn returns an array/,
  );
  device.close();
});

Deno.test("iso IN without a handler: every packet is empty", async () => {
  const { device, host } = await setup(undefined);
  const r = await host.isochronousIn(0x81, [192, 192, 192]);
  checkInvariants(
    r,
    [0, 192, 384].map((offset) => ({ offset, length: 192 })),
    576,
    "in",
  );
  assert.equal(r.actualLength, 0);
  assert.equal(r.errorCount, 0);
  device.close();
});

Deno.test("iso IN with packets at fixed strides (gaps in the buffer)", async () => {
  const { device, host } = await setup((packets) =>
    packets.map((p, i) => new Uint8Array(p.length - i).fill(i + 1))
  );
  const isoPackets = [
    { offset: 0, length: 100 },
    { offset: 192, length: 100 },
    { offset: 384, length: 100 },
  ];
  const r = await device.handleUrb({
    endpoint: 1,
    direction: "in",
    length: 576,
    isoPackets,
    transferFlags: 0,
    signal: new AbortController().signal,
  });
  checkInvariants(r, isoPackets, 576, "in");
  assert.deepEqual(r.isoPackets!.map((p) => p.actualLength), [100, 99, 98]);
  assert.equal(r.data![192], 2);
  assert.equal(r.data![384 + 97], 3);
  assert.equal(r.data![384 + 98], 0);
  void host;
  device.close();
});

Deno.test("iso IN: random handler output always keeps the invariants", async () => {
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const { device, host } = await setup((packets) =>
    packets.map((p): IsoInPacket => {
      const len = random(p.length * 2 + 2);
      const kind = random(4);
      if (kind === 0) {
        return { data: new Uint8Array(len), status: -1 - random(99) };
      }
      if (kind === 1) return { status: -71 };
      return new Uint8Array(len).fill(len & 0xff);
    })
  );
  for (let urb = 0; urb < 200; urb++) {
    const lengths = Array.from({ length: 1 + random(32) }, () => random(193));
    const r = await host.isochronousIn(0x81, lengths);
    let offset = 0;
    const requested = lengths.map((length) => {
      const p = { offset, length };
      offset += length;
      return p;
    });
    checkInvariants(r, requested, offset, "in");
    for (const p of r.isoPackets!) {
      if (p.actualLength > 0 && p.status === 0) {
        assert.equal(r.data![p.offset], p.actualLength & 0xff);
      }
    }
  }
  device.close();
});

Deno.test("iso OUT: the handler gets each packet; statuses per packet", async () => {
  const seen: number[][] = [];
  const { device, host, errors } = await setup(undefined, (packets) => {
    seen.push(...packets.map((p) => [...p]));
    return [0, -71];
  });
  const r = await host.isochronousOut(0x02, [
    new Uint8Array([1, 2, 3]),
    new Uint8Array([4]),
    new Uint8Array(0),
  ]);
  checkInvariants(
    r,
    [
      { offset: 0, length: 3 },
      { offset: 3, length: 1 },
      { offset: 4, length: 0 },
    ],
    4,
    "out",
  );
  assert.deepEqual(seen, [[1, 2, 3], [4], []]);
  assert.deepEqual(r.isoPackets!.map((p) => [p.actualLength, p.status]), [
    [3, 0],
    [0, -71],
    [0, 0],
  ]);
  assert.equal(r.actualLength, 3);
  assert.equal(r.errorCount, 1);
  assert.equal(errors.length, 0);
  device.close();
});

Deno.test("iso OUT: no handler accepts everything; a throwing one fails every packet", async () => {
  {
    const { device, host } = await setup(undefined);
    const r = await host.isochronousOut(0x02, [
      new Uint8Array(10),
      new Uint8Array(20),
    ]);
    assert.deepEqual(r.isoPackets!.map((p) => p.actualLength), [10, 20]);
    assert.equal(r.actualLength, 30);
    device.close();
  }
  {
    const { device, host, errors } = await setup(undefined, () => {
      throw new Error("DAC gone");
    });
    const r = await host.isochronousOut(0x02, [new Uint8Array(10)]);
    assert.deepEqual(r.isoPackets!.map((p) => [p.actualLength, p.status]), [[
      0,
      -71,
    ]]);
    assert.equal(r.actualLength, 0);
    assert.equal(errors[0]!.where, "endpoint 0x02 (isochronous OUT) onIsoOut");
    device.close();
  }
  {
    const { device, host, errors } = await setup(undefined, () => [1] as never);
    const r = await host.isochronousOut(0x02, [new Uint8Array(10)]);
    assert.equal(r.isoPackets![0]!.status, UrbStatus.protocolError);
    assert.match(String(errors[0]!.error), /status 1 for packet 0/);
    device.close();
  }
});

Deno.test("iso: a URB with no packets completes empty", async () => {
  const { device, host } = await setup(() => []);
  const r = await host.isochronousIn(0x81, []);
  assert.deepEqual([r.status, r.actualLength, r.isoPackets, r.errorCount], [
    0,
    0,
    [],
    0,
  ]);
  device.close();
});

Deno.test("iso: malformed URBs (no isoPackets, packet outside the buffer) get -EINVAL", async () => {
  const { device, errors } = await setup(() => []);
  const signal = new AbortController().signal;
  const none = await device.handleUrb({
    endpoint: 1,
    direction: "in",
    length: 192,
    transferFlags: 0,
    signal,
  });
  assert.equal(none.status, UrbStatus.invalid);
  const outside = await device.handleUrb({
    endpoint: 1,
    direction: "in",
    length: 192,
    isoPackets: [{ offset: 100, length: 100 }],
    transferFlags: 0,
    signal,
  });
  assert.equal(outside.status, UrbStatus.invalid);
  const outData = await device.handleUrb({
    endpoint: 2,
    direction: "out",
    length: 4,
    data: new Uint8Array(4),
    isoPackets: [{ offset: 0, length: 8 }],
    transferFlags: 0,
    signal,
  });
  assert.equal(outData.status, UrbStatus.invalid);
  assert.equal(errors.length, 3);
  assert.match(
    String(errors[1]!.error),
    /isoPackets\[0\] .* is outside the 192-byte transfer buffer/,
  );
  device.close();
});

Deno.test("iso: a slow handler is cancelled by unlink", async () => {
  let signal: AbortSignal | undefined;
  const { device, host } = await setup((_p, info) => {
    signal = info.signal;
    return new Promise(() => {});
  });
  const unlink = new AbortController();
  const pending = host.isochronousIn(0x81, [192], { signal: unlink.signal });
  await new Promise((r) => setTimeout(r, 1));
  unlink.abort();
  assert.equal((await pending).status, UrbStatus.unlinked);
  assert.ok(signal!.aborted);
  device.close();
});

Deno.test("iso: the endpoint exists only in alternate setting 1", async () => {
  const { device, host, errors } = await setup(() => [new Uint8Array(1)]);
  await host.setInterface(1, 0);
  assert.equal((await host.isochronousIn(0x81, [192])).status, UrbStatus.stall);
  assert.equal(errors.length, 1);
  await host.setInterface(1, 1);
  assert.equal((await host.isochronousIn(0x81, [192])).actualLength, 1);
  device.close();
});

Deno.test("iso at high speed: the service interval is in microframes", async () => {
  let info: TransferInfo | undefined;
  const { device, host } = await setup(
    (p, i) => {
      info = i;
      return p.map(() => new Uint8Array(0));
    },
    undefined,
    "high",
  );
  await host.isochronousIn(0x81, [192]);
  assert.equal(info!.intervalMicroseconds, 1000); // default bInterval 4
  device.close();
});
