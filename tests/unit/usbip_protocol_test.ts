// USB/IP wire format: byte-exact encodings against the protocol document's
// capture and hand-computed offsets of the kernel structs, the kernel's
// validation rules, incremental decoding at every split point, and fuzzed
// input that may only ever produce UsbipProtocolError, within bounded memory.

import assert from "node:assert/strict";
import {
  decodeCommand,
  decodeOpRepDevlist,
  decodeOpRepImport,
  decodeOpRequest,
  decodeReturn,
  encodeCmdSubmit,
  encodeCmdUnlink,
  encodeOpRepDevlist,
  encodeOpRepImport,
  encodeOpReqDevlist,
  encodeOpReqImport,
  encodeRetSubmit,
  encodeRetUnlink,
  HEADER_SIZE,
  speedCode,
  speedFromCode,
  StreamDecoder,
  type SubmittedUrb,
  type UsbipCommand,
  type UsbipDeviceInfo,
  UsbipProtocolError,
} from "../../src/usbip/mod.ts";

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

function value<T>(d: { value: T; size: number } | { need: number }): T {
  if ("need" in d) throw new Error(`incomplete: needs ${d.need}`);
  return d.value;
}

// Documentation/usb/usbip_protocol.rst, "EXAMPLE": an HID interrupt
// endpoint, captured on the wire.
const CMD_INTR_IN = hex(
  "00000001 00000d05 0001000f 00000001 00000001 00000200 00000040 ffffffff 00000000 00000004 00000000 00000000",
);
const OUT_DATA = hex(
  "ffffffff860008a784ce5ae212376300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
);
const CMD_INTR_OUT = hex(
  "00000001 00000d06 0001000f 00000000 00000001 00000000 00000040 ffffffff 00000000 00000004 00000000 00000000" +
    "ffffffff860008a784ce5ae212376300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
);
const RET_INTR_OUT = hex(
  "00000003 00000d06 00000000 00000000 00000000 00000000 00000040 ffffffff 00000000 00000000 00000000 00000000",
);
const IN_DATA = hex(
  "ffffffff860011a784ce5ae2123763612891b1020100000400000000000000000000000000000000000000000000000000000000000000000000000000000000",
);
const RET_INTR_IN = hex(
  "00000003 00000d05 00000000 00000000 00000000 00000000 00000040 ffffffff 00000000 00000000 00000000 00000000" +
    "ffffffff860011a784ce5ae2123763612891b1020100000400000000000000000000000000000000000000000000000000000000000000000000000000000000",
);

Deno.test("CMD_SUBMIT of the protocol document's capture decodes field by field and encodes back byte for byte", () => {
  const c = value(decodeCommand(CMD_INTR_IN));
  assert.deepEqual(c, {
    command: "submit",
    seqnum: 0xd05,
    devid: 0x1000f,
    direction: "in",
    ep: 1,
    transferFlags: 0x200, // USBIP_URB_DIR_IN
    transferBufferLength: 64,
    startFrame: -1, // the capture has start_frame, not number_of_packets, at 0xffffffff
    numberOfPackets: 0,
    interval: 4,
    setup: new Uint8Array(8),
  });
  assert.deepEqual(encodeCmdSubmit(c), CMD_INTR_IN);

  const o = decodeCommand(CMD_INTR_OUT);
  assert.ok("value" in o && o.size === 48 + 64);
  assert.equal(o.value.command, "submit");
  if (o.value.command !== "submit") return;
  assert.equal(o.value.direction, "out");
  assert.deepEqual(o.value.data, OUT_DATA);
  assert.deepEqual(encodeCmdSubmit(o.value), CMD_INTR_OUT);
});

Deno.test("RET_SUBMIT of the capture: encoded from its fields, decoded as vhci_hcd reads it", () => {
  assert.deepEqual(
    encodeRetSubmit({
      seqnum: 0xd06,
      status: 0,
      actualLength: 64,
      startFrame: -1,
      numberOfPackets: 0,
      errorCount: 0,
    }),
    RET_INTR_OUT,
  );
  assert.deepEqual(
    encodeRetSubmit({
      seqnum: 0xd05,
      status: 0,
      actualLength: 64,
      startFrame: -1,
      numberOfPackets: 0,
      errorCount: 0,
      data: IN_DATA,
    }),
    RET_INTR_IN,
  );
  const submitted = new Map<number, SubmittedUrb>([
    [0xd05, { direction: "in", transferBufferLength: 64, numberOfPackets: 0 }],
    [0xd06, {
      direction: "out",
      transferBufferLength: 64,
      numberOfPackets: 0,
    }],
  ]);
  const r = value(decodeReturn(RET_INTR_IN, (s) => submitted.get(s)));
  assert.ok(r.command === "ret-submit");
  assert.deepEqual(r.data, IN_DATA);
  const d = decodeReturn(RET_INTR_OUT, (s) => submitted.get(s));
  assert.ok("value" in d && d.size === 48 && d.value.command === "ret-submit");
  assert.equal(d.value.data, undefined, "an OUT reply carries no data");
});

Deno.test("CMD_UNLINK and RET_UNLINK: 48 bytes, unlink_seqnum and status at 0x14, zero padding", () => {
  const u = encodeCmdUnlink({
    seqnum: 0x10,
    devid: 0x20003,
    unlinkSeqnum: 0x0f,
  });
  assert.deepEqual(
    u,
    hex(
      "00000002 00000010 00020003 00000000 00000000 0000000f" + "00".repeat(24),
    ),
  );
  assert.deepEqual(value(decodeCommand(u)), {
    command: "unlink",
    seqnum: 0x10,
    devid: 0x20003,
    direction: "out",
    ep: 0,
    unlinkSeqnum: 0x0f,
  });
  assert.deepEqual(
    encodeRetUnlink({ seqnum: 0x10, status: -104 }),
    hex(
      "00000004 00000010 00000000 00000000 00000000 ffffff98" + "00".repeat(24),
    ),
  );
});

Deno.test("isochronous CMD_SUBMIT: OUT data, then 16-byte descriptors (offset, length, actual_length, status)", () => {
  const packets = [
    { offset: 0, length: 3, actualLength: 0, status: 0 },
    { offset: 3, length: 2, actualLength: 0, status: 0 },
  ];
  const b = encodeCmdSubmit({
    seqnum: 1,
    devid: 2,
    direction: "out",
    ep: 3,
    transferFlags: 2, // USBIP_URB_ISO_ASAP
    transferBufferLength: 5,
    data: new Uint8Array([1, 2, 3, 4, 5]),
    isoPackets: packets,
    interval: 1,
  });
  assert.deepEqual(
    b,
    hex(
      "00000001 00000001 00000002 00000000 00000003 00000002 00000005 00000000 00000002 00000001 0000000000000000" +
        "0102030405" +
        "00000000 00000003 00000000 00000000" +
        "00000003 00000002 00000000 00000000",
    ),
  );
  const c = value(decodeCommand(b));
  assert.ok(c.command === "submit");
  assert.deepEqual(c.isoPackets, packets);
  assert.deepEqual(c.data, new Uint8Array([1, 2, 3, 4, 5]));
  // IN: the descriptors follow the header directly.
  const inb = encodeCmdSubmit({
    seqnum: 2,
    devid: 2,
    direction: "in",
    ep: 3,
    transferFlags: 0x202,
    transferBufferLength: 5,
    isoPackets: packets,
  });
  assert.equal(inb.length, 48 + 32);
  assert.deepEqual(value(decodeCommand(inb)).command, "submit");
});

Deno.test("isochronous RET_SUBMIT: packed actual bytes, then descriptors; vhci_hcd's sum rule and packet clamp", () => {
  const urb: SubmittedUrb = {
    direction: "in",
    transferBufferLength: 12,
    numberOfPackets: 3,
  };
  const packets = [
    { offset: 0, length: 4, actualLength: 0, status: 0 },
    { offset: 4, length: 4, actualLength: 2, status: 0 },
    { offset: 8, length: 4, actualLength: 4, status: -18 },
  ];
  const b = encodeRetSubmit({
    seqnum: 9,
    status: 0,
    actualLength: 6,
    startFrame: 0,
    numberOfPackets: 3,
    errorCount: 1,
    data: new Uint8Array([0xa, 0xb, 0xc, 0xd, 0xe, 0xf]),
    isoPackets: packets,
  });
  assert.deepEqual(
    b,
    hex(
      "00000003 00000009 00000000 00000000 00000000 00000000 00000006 00000000 00000003 00000001 0000000000000000" +
        "0a0b0c0d0e0f" +
        "00000000 00000004 00000000 00000000" +
        "00000004 00000004 00000002 00000000" +
        "00000008 00000004 00000004 ffffffee",
    ),
  );
  const r = value(decodeReturn(b, () => urb));
  assert.ok(r.command === "ret-submit");
  assert.deepEqual(r.isoPackets, packets);

  // Sum of actual lengths != actual_length: vhci_hcd drops the connection.
  const bad = b.slice();
  new DataView(bad.buffer).setUint32(48 + 6 + 16 + 8, 3);
  assert.throws(() => decodeReturn(bad, () => urb), UsbipProtocolError);
  // More packets than submitted: the kernel takes it as 0 and reads none.
  const more = b.slice(0, 48 + 6);
  new DataView(more.buffer).setInt32(32, 4);
  const m = value(decodeReturn(more, () => urb));
  assert.ok(m.command === "ret-submit" && m.numberOfPackets === 0);
  assert.equal(m.isoPackets, undefined);
  // The encoder refuses to build an inconsistent reply.
  assert.throws(() =>
    encodeRetSubmit({
      seqnum: 1,
      status: 0,
      actualLength: 5,
      startFrame: 0,
      numberOfPackets: 1,
      errorCount: 0,
      isoPackets: [{ offset: 0, length: 8, actualLength: 4, status: 0 }],
    }), RangeError);
});

Deno.test("decodeReturn refuses what vhci_hcd refuses: unknown seqnum, IN data beyond the buffer, unknown command", () => {
  const ret = (actual: number) =>
    encodeRetSubmit({
      seqnum: 1,
      status: 0,
      actualLength: actual,
      startFrame: 0,
      numberOfPackets: 0,
      errorCount: 0,
      data: new Uint8Array(actual),
    });
  const urb: SubmittedUrb = {
    direction: "in",
    transferBufferLength: 8,
    numberOfPackets: 0,
  };
  assert.throws(() => decodeReturn(ret(4), () => undefined), /not pending/);
  assert.throws(() => decodeReturn(ret(9), () => urb), /does not fit/);
  const junk = ret(0);
  junk[3] = 7;
  assert.throws(() => decodeReturn(junk, () => urb), /unknown command/);
});

const device: UsbipDeviceInfo = {
  path: "/sys/devices/pci0000:00/0000:00:1d.1/usb3/3-2",
  busid: "3-2",
  busnum: 3,
  devnum: 4,
  speed: "high",
  vendorId: 0x1209,
  productId: 0xabcd,
  bcdDevice: 0x0102,
  deviceClass: 0xef,
  deviceSubclass: 2,
  deviceProtocol: 1,
  configurationValue: 1,
  numConfigurations: 1,
  numInterfaces: 2,
  interfaces: [
    { interfaceClass: 0xff, interfaceSubclass: 0x42, interfaceProtocol: 1 },
    { interfaceClass: 0x03, interfaceSubclass: 0x01, interfaceProtocol: 2 },
  ],
};

Deno.test("OP_REP_DEVLIST: every field at the offset of the protocol document's table", () => {
  const b = encodeOpRepDevlist([device]);
  assert.equal(b.length, 0x0c + 0x138 + 2 * 4);
  const v = new DataView(b.buffer);
  assert.deepEqual([...b.subarray(0, 12)], [
    0x01,
    0x11,
    0x00,
    0x05,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
  ]);
  const text = (at: number, n: number) =>
    new TextDecoder().decode(b.subarray(at, at + n));
  assert.equal(text(0x0c, device.path.length), device.path);
  assert.equal(b[0x0c + device.path.length], 0);
  assert.ok(b.subarray(0x0c + device.path.length, 0x10c).every((x) => x === 0));
  assert.equal(text(0x10c, 3), "3-2");
  assert.ok(b.subarray(0x10c + 3, 0x12c).every((x) => x === 0));
  assert.equal(v.getUint32(0x12c), 3);
  assert.equal(v.getUint32(0x130), 4);
  assert.equal(v.getUint32(0x134), 3); // USB_SPEED_HIGH
  assert.equal(v.getUint16(0x138), 0x1209);
  assert.equal(v.getUint16(0x13a), 0xabcd);
  assert.equal(v.getUint16(0x13c), 0x0102);
  assert.deepEqual([...b.subarray(0x13e, 0x144)], [0xef, 2, 1, 1, 1, 2]);
  assert.deepEqual([...b.subarray(0x144, 0x14c)], [
    0xff,
    0x42,
    1,
    0,
    0x03,
    0x01,
    2,
    0,
  ]);
  const d = value(decodeOpRepDevlist(b));
  assert.deepEqual(d, { version: 0x111, status: 0, devices: [device] });
});

Deno.test("OP_REP_IMPORT: the device record after the 8-byte header, no interfaces (320 bytes)", () => {
  const b = encodeOpRepImport(device);
  assert.equal(b.length, 0x140);
  const v = new DataView(b.buffer);
  assert.equal(v.getUint16(2), 0x0003);
  assert.equal(v.getUint32(4), 0);
  assert.equal(new TextDecoder().decode(b.subarray(0x108, 0x10b)), "3-2");
  assert.equal(v.getUint32(0x128), 3);
  assert.equal(v.getUint32(0x12c), 4);
  assert.equal(v.getUint32(0x130), 3);
  assert.equal(v.getUint16(0x134), 0x1209);
  assert.equal(v.getUint16(0x136), 0xabcd);
  assert.equal(v.getUint16(0x138), 0x0102);
  // The document's table puts bDeviceClass at 0x139, inside bcdDevice; the
  // packed kernel struct has it at 0x13a.
  assert.deepEqual([...b.subarray(0x13a, 0x140)], [0xef, 2, 1, 1, 1, 2]);
  assert.deepEqual(value(decodeOpRepImport(b)), {
    version: 0x111,
    status: 0,
    device: { ...device, interfaces: [] },
  });
  assert.deepEqual([...encodeOpRepImport(null)], [1, 0x11, 0, 3, 0, 0, 0, 1]);
});

Deno.test("OP_REQ_DEVLIST and OP_REQ_IMPORT decode; an unknown operation is a protocol error", () => {
  assert.deepEqual(value(decodeOpRequest(encodeOpReqDevlist())), {
    op: "devlist",
    version: 0x111,
  });
  const imp = encodeOpReqImport("1-1");
  assert.deepEqual([...imp.subarray(0, 12)], [
    1,
    0x11,
    0x80,
    0x03,
    0,
    0,
    0,
    0,
    0x31,
    0x2d,
    0x31,
    0,
  ]);
  assert.deepEqual(decodeOpRequest(imp.subarray(0, 20)), { need: 40 });
  assert.deepEqual(value(decodeOpRequest(imp)), {
    op: "import",
    version: 0x111,
    busid: "1-1",
  });
  assert.throws(
    () => decodeOpRequest(hex("0111 8004 00000000")),
    /unknown operation code 0x8004/,
  );
  assert.throws(() => encodeOpReqImport("x".repeat(32)), RangeError);
});

Deno.test("speeds are enum usb_device_speed values", () => {
  assert.deepEqual(
    ["low", "full", "high", "wireless", "super", "super-plus"].map((s) =>
      speedCode(s as "low")
    ),
    [1, 2, 3, 4, 5, 6],
  );
  assert.equal(speedFromCode(0), "unknown");
  assert.equal(speedFromCode(5), "super");
});

Deno.test("decodeCommand refuses before allocating: bad command, direction, endpoint, length, packet count, packet bounds", () => {
  const base = () =>
    encodeCmdSubmit({
      seqnum: 1,
      devid: 1,
      direction: "in",
      ep: 1,
      transferFlags: 0,
      transferBufferLength: 8,
    });
  const set = (at: number, v: number) => {
    const b = base();
    new DataView(b.buffer).setInt32(at, v);
    return b;
  };
  assert.throws(() => decodeCommand(set(0, 3)), /unknown command/);
  assert.throws(() => decodeCommand(set(12, 2)), /direction/);
  assert.throws(() => decodeCommand(set(16, 16)), /endpoint 16/);
  assert.throws(() => decodeCommand(set(24, -1)), /transfer_buffer_length -1/);
  assert.throws(
    () => decodeCommand(set(24, 4097), { maxTransferLength: 4096 }),
    /transfer_buffer_length 4097/,
  );
  assert.throws(() => decodeCommand(set(32, 1025)), /number_of_packets 1025/);
  assert.throws(() => decodeCommand(set(32, -2)), /number_of_packets -2/);
  // -1 (0xffffffff) is "not isochronous", as the document's table says.
  const c = value(decodeCommand(set(32, -1)));
  assert.ok(c.command === "submit" && c.isoPackets === undefined);
  const outside = encodeCmdSubmit({
    seqnum: 1,
    devid: 1,
    direction: "in",
    ep: 1,
    transferFlags: 0,
    transferBufferLength: 8,
    isoPackets: [{ offset: 6, length: 4, actualLength: 0, status: 0 }],
  });
  assert.throws(() => decodeCommand(outside), /ends past the 8-byte buffer/);
  // A huge OUT length is refused from the header alone: nothing is awaited.
  const huge = set(12, 0); // OUT
  new DataView(huge.buffer).setInt32(24, 0x7fffffff);
  assert.throws(() => decodeCommand(huge), /transfer_buffer_length 2147483647/);
  // Within the limit, the header alone asks for the data.
  assert.deepEqual(decodeCommand(set(12, 0)), { need: 48 + 8 });
});

/** Several commands back to back, of every shape. */
function sampleStream(): { bytes: Uint8Array; commands: UsbipCommand[] } {
  const parts = [
    encodeCmdSubmit({
      seqnum: 1,
      devid: 7,
      direction: "in",
      ep: 0,
      transferFlags: 0x200,
      transferBufferLength: 18,
      setup: new Uint8Array([0x80, 6, 0, 1, 0, 0, 18, 0]),
    }),
    encodeCmdSubmit({
      seqnum: 2,
      devid: 7,
      direction: "out",
      ep: 2,
      transferFlags: 0,
      transferBufferLength: 100,
      data: Uint8Array.from({ length: 100 }, (_, i) => i),
    }),
    encodeCmdUnlink({ seqnum: 3, devid: 7, unlinkSeqnum: 1 }),
    encodeCmdSubmit({
      seqnum: 4,
      devid: 7,
      direction: "in",
      ep: 4,
      transferFlags: 0x202,
      transferBufferLength: 30,
      isoPackets: [0, 10, 20].map((o) => ({
        offset: o,
        length: 10,
        actualLength: 0,
        status: 0,
      })),
    }),
  ];
  const bytes = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { bytes, commands: parts.map((p) => value(decodeCommand(p))) };
}

Deno.test("StreamDecoder: a stream split at every byte boundary, and byte by byte, decodes to the same commands", () => {
  const { bytes, commands } = sampleStream();
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new StreamDecoder();
    const got: UsbipCommand[] = [];
    for (const piece of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
      d.push(piece);
      for (let c; (c = d.next(decodeCommand)) !== undefined;) got.push(c);
    }
    assert.deepEqual(got, commands, `split at ${cut}`);
    assert.equal(d.buffered, 0);
  }
  const d = new StreamDecoder();
  const got: UsbipCommand[] = [];
  for (const b of bytes) {
    d.push(new Uint8Array([b]));
    for (let c; (c = d.next(decodeCommand)) !== undefined;) got.push(c);
  }
  assert.deepEqual(got, commands);
});

Deno.test("StreamDecoder hands over the bytes after a handshake (takeRest)", () => {
  const { bytes, commands } = sampleStream();
  const d = new StreamDecoder();
  d.push(encodeOpReqImport("1-1"));
  d.push(bytes.subarray(0, 50));
  assert.equal(value(decodeOpRequest(encodeOpReqImport("1-1"))).op, "import");
  assert.equal(d.next(decodeOpRequest)?.op, "import");
  const rest = d.takeRest();
  assert.equal(d.buffered, 0);
  const d2 = new StreamDecoder();
  d2.push(rest);
  d2.push(bytes.subarray(50));
  const got: UsbipCommand[] = [];
  for (let c; (c = d2.next(decodeCommand)) !== undefined;) got.push(c);
  assert.deepEqual(got, commands);
});

/** xorshift32: deterministic, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

Deno.test("fuzz: random and mutated streams only ever raise UsbipProtocolError, and the decoder stays within its cap", () => {
  const limits = { maxTransferLength: 4096 };
  const maxBuffered = 48 + 4096 + 1024 * 16 + 512;
  const { bytes: sample } = sampleStream();
  const next = rng(0x5eed);
  let errors = 0, decoded = 0;
  for (let round = 0; round < 3000; round++) {
    let input: Uint8Array;
    const mode = round % 3;
    if (mode === 0) {
      input = new Uint8Array(next() % 400);
      for (let i = 0; i < input.length; i++) input[i] = next() & 0xff;
    } else {
      input = sample.slice();
      const flips = 1 + (next() % 6);
      for (let f = 0; f < flips; f++) {
        const at = next() % input.length;
        input[at] = mode === 1
          ? next() & 0xff
          : [0, 0xff, 0x7f, 0x80][next() % 4]!;
      }
    }
    const d = new StreamDecoder({ maxBuffered });
    try {
      for (let at = 0; at < input.length;) {
        const n = 1 + (next() % 512);
        d.push(input.subarray(at, at + n));
        at += n;
        assert.ok(d.buffered <= maxBuffered);
        for (
          let c;
          (c = d.next((b) => decodeCommand(b, limits))) !== undefined;
        ) {
          decoded++;
          if (c.command === "submit") {
            assert.ok(c.transferBufferLength <= 4096);
            assert.ok((c.isoPackets?.length ?? 0) <= 1024);
          }
        }
        // The op decoder on the same bytes must behave too.
        try {
          decodeOpRequest(input.subarray(0, at));
        } catch (e) {
          if (!(e instanceof UsbipProtocolError)) throw e;
        }
      }
    } catch (e) {
      if (!(e instanceof UsbipProtocolError)) {
        throw new Error(`round ${round}: not a protocol error`, { cause: e });
      }
      errors++;
    }
  }
  assert.ok(errors > 100, `only ${errors} rounds were refused`);
  assert.ok(decoded > 100, `only ${decoded} commands decoded`);
});

Deno.test("fuzz: client-side decoders (device list, import reply, returns) only raise UsbipProtocolError", () => {
  const next = rng(42);
  const list = encodeOpRepDevlist([device, device]);
  const imp = encodeOpRepImport(device);
  const ret = encodeRetSubmit({
    seqnum: 1,
    status: 0,
    actualLength: 6,
    startFrame: 0,
    numberOfPackets: 2,
    errorCount: 0,
    data: new Uint8Array(6),
    isoPackets: [
      { offset: 0, length: 4, actualLength: 4, status: 0 },
      { offset: 4, length: 4, actualLength: 2, status: 0 },
    ],
  });
  const urb: SubmittedUrb = {
    direction: "in",
    transferBufferLength: 8,
    numberOfPackets: 2,
  };
  for (let round = 0; round < 3000; round++) {
    const src = [list, imp, ret][round % 3]!;
    const b = src.slice(0, next() % (src.length + 1));
    for (let f = 0; f < 3; f++) {
      if (b.length > 0) b[next() % b.length] = next() & 0xff;
    }
    for (
      const f of [
        () => decodeOpRepDevlist(b),
        () => decodeOpRepImport(b),
        () => decodeReturn(b, (s) => s === 1 ? urb : undefined),
        () => decodeCommand(b),
        () => decodeOpRequest(b),
      ]
    ) {
      try {
        const r = f();
        if ("need" in r) assert.ok(r.need > b.length);
        else assert.ok(r.size <= b.length);
      } catch (e) {
        if (!(e instanceof UsbipProtocolError)) {
          throw new Error(`round ${round}`, { cause: e });
        }
      }
    }
  }
  assert.equal(HEADER_SIZE, 48);
});
