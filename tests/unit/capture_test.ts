// usbkit's own capture (src/capture/) without a device: the tap records
// synthetic URBs of every kind into pcap and pcapng files, and tshark, a
// real reader, must decode each field as the test wrote it. The files are
// also read back with src/capture/read.ts.

import assert from "node:assert/strict";
import { Capture } from "../../src/capture/capture.ts";
import {
  busAndAddress,
  captureAll,
  checkCaptureOption,
  deviceCapture,
  processCaptureNow,
  processTap,
  stopCaptureAll,
} from "../../src/capture/process.ts";
import { describePacket, readCapture } from "../../src/capture/read.ts";
import { CaptureTap, type TapStream } from "../../src/capture/tap.ts";
import type { Layout } from "../../src/ffi.ts";
import { UsbError } from "../../src/errors.ts";
import { jsonReport } from "../../src/recipe/report_json.ts";
import { TerminalReporter } from "../../src/recipe/report_terminal.ts";
import type { StepResult } from "../../src/recipe/runner.ts";
import {
  CAPTURE_FIELDS,
  hexOf,
  tsharkFields,
  tsharkPath,
} from "./capture_tshark.ts";

const LAYOUT: Layout = {
  slotSize: 56 + 128 * 12,
  isoDescOffset: 56,
  isoDescSize: 12,
  maxIsoPackets: 128,
  recordWords: 8,
  ringCapacity: 1024,
  urbStatus: 4,
  urbActualLength: 28,
  urbStartFrame: 32,
  urbNumberOfPackets: 36,
  urbErrorCount: 40,
  flagShortNotOk: 1,
  flagIsoAsap: 2,
  flagBulkContinuation: 4,
  flagZeroPacket: 0x40,
  flagNoInterrupt: 0x80,
};

class FakeEngine {
  readonly layout = LAYOUT;
  readonly slotCount = 8;
  readonly slab = new DataView(new ArrayBuffer(8 * LAYOUT.slotSize));
  /** Writes iso descriptor `i` of `slot` as usbfs leaves it. */
  desc(slot: number, i: number, length: number, actual = 0, status = 0) {
    const off = slot * LAYOUT.slotSize + LAYOUT.isoDescOffset + i * 12;
    this.slab.setUint32(off, length, true);
    this.slab.setUint32(off + 4, actual, true);
    this.slab.setInt32(off + 8, status, true);
  }
}

const GET_DESCRIPTOR = [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00];
const DEVICE_DESCRIPTOR = [
  18,
  1,
  0x00,
  0x02,
  0,
  0,
  0,
  64,
  0x25,
  0x05,
  0xa0,
  0xa4,
  0x01,
  0x00,
  1,
  2,
  3,
  1,
];
const VENDOR_OUT = [0x41, 0x5b, 0x34, 0x12, 0x02, 0x00, 0x03, 0x00];
const BULK_OUT = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
const ISO_LENGTHS = [100, 200, 50];

/** Records one URB of each kind, as the engine and the stream core would. */
function record(cap: Capture): void {
  const engine = new FakeEngine();
  const tap = new CaptureTap(cap, 3, 9, engine);
  // Control IN: GET_DESCRIPTOR(device), 18 bytes back.
  const ctl = new Uint8Array(8 + 18);
  ctl.set(GET_DESCRIPTOR);
  tap.submitted(0, 2, 0, 0, ctl, null, 0, ctl.length, 0);
  ctl.set(DEVICE_DESCRIPTOR, 8);
  tap.completed(0, 0, 18, 0);
  // Control OUT, vendor request with a 3-byte data stage.
  const vend = new Uint8Array([...VENDOR_OUT, 0xaa, 0xbb, 0xcc]);
  tap.submitted(1, 2, 0, 0, vend, null, 0, vend.length, 0);
  tap.completed(1, 0, 3, 0);
  // Bulk OUT of 300 bytes at offset 4 of a larger array.
  const out = new Uint8Array(4 + 300);
  out.set(BULK_OUT, 4);
  tap.submitted(2, 3, 0x01, 0x40, out, null, 4, 300, 0);
  tap.completed(2, 0, 300, 0);
  // Bulk IN that stalls.
  tap.submitted(3, 3, 0x81, 0, new Uint8Array(64), null, 0, 64, 0);
  tap.completed(3, -32, 0, 0);
  // Iso OUT, three packets; the second fails.
  const iso = Uint8Array.from({ length: 350 }, (_, i) => i & 0xff);
  ISO_LENGTHS.forEach((l, i) => engine.desc(4, i, l));
  tap.submitted(4, 0, 0x02, 2, iso, null, 0, 350, 3);
  engine.desc(4, 0, 100, 100, 0);
  engine.desc(4, 1, 200, 0, -18);
  engine.desc(4, 2, 50, 50, 0);
  tap.completed(4, -18, 150, 1);
  // Iso IN through a stream: packets of 8, the second short.
  const streamBuf = new Uint8Array(24).fill(0xee);
  const urbs = new DataView(new ArrayBuffer(LAYOUT.slotSize * 2));
  const d = (i: number, len: number, act: number) => {
    const off = LAYOUT.slotSize + LAYOUT.isoDescOffset + i * 12;
    urbs.setUint32(off, len, true);
    urbs.setUint32(off + 4, act, true);
    urbs.setInt32(off + 8, 0, true);
  };
  d(0, 8, 8);
  d(1, 8, 3);
  d(2, 8, 0);
  streamBuf.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0);
  const stream: TapStream = {
    view: (_i, n) => new Uint8Array(streamBuf.slice(0, n).buffer),
    urbs,
  };
  tap.streamUrb(stream, 1, 0, 0x83, 2, 24, 3, 0, 11);
}

function checkDecoded(rows: Record<string, string>[]): void {
  assert.equal(rows.length, 12);
  const r = (i: number) => rows[i]!;
  // Every packet: bus 3, device 9; ids pair S with C.
  for (const row of rows) {
    assert.equal(row["usb.bus_id"], "3");
    assert.equal(row["usb.device_address"], "9");
  }
  for (let i = 0; i < 12; i += 2) {
    assert.equal(r(i)["usb.urb_type"], "'S'");
    assert.equal(r(i + 1)["usb.urb_type"], "'C'");
    assert.equal(r(i)["usb.urb_id"], r(i + 1)["usb.urb_id"]);
    assert.equal(r(i)["usb.urb_status"], "-115");
  }
  // GET_DESCRIPTOR: setup, then the device descriptor decoded.
  assert.equal(r(0)["usb.transfer_type"], "0x02");
  assert.equal(r(0)["usb.endpoint_address"], "0x80");
  assert.equal(r(0)["usb.bmRequestType"], "0x80");
  assert.equal(r(0)["usb.setup.bRequest"], "6");
  assert.equal(r(0)["usb.bDescriptorType"], "0x01");
  assert.equal(r(0)["usb.setup.wLength"], "18");
  assert.equal(r(0)["usb.urb_len"], "18");
  assert.equal(r(1)["usb.urb_status"], "0");
  assert.equal(r(1)["usb.urb_len"], "18");
  assert.equal(r(1)["usb.idVendor"], "0x0525");
  assert.equal(r(1)["usb.idProduct"], "0xa4a0");
  // Vendor OUT: every setup field, the data stage in the submit.
  assert.equal(r(2)["usb.endpoint_address"], "0x00");
  assert.equal(r(2)["usb.bmRequestType"], "0x41");
  assert.equal(r(2)["usb.setup.bRequest"], "91");
  assert.equal(r(2)["usb.setup.wValue"], "0x1234");
  assert.equal(r(2)["usb.setup.wIndex"], "2");
  assert.equal(r(2)["usb.setup.wLength"], "3");
  assert.equal(r(2)["usb.data_len"], "3");
  // A control data stage is "Data Fragment" in Wireshark.
  assert.equal(r(2)["usb.data_fragment"], "aabbcc");
  assert.equal(r(3)["usb.data_len"], "0");
  // Bulk OUT: the 300 bytes in the submit, none in the completion.
  assert.equal(r(4)["usb.transfer_type"], "0x03");
  assert.equal(r(4)["usb.endpoint_address"], "0x01");
  assert.equal(r(4)["usb.capdata"], hexOf(BULK_OUT));
  assert.equal(r(4)["usb.transfer_flags.zero_packet"], "1");
  assert.equal(r(5)["usb.urb_len"], "300");
  assert.equal(r(5)["usb.capdata"], "");
  // The stall: -EPIPE.
  assert.equal(r(6)["usb.endpoint_address"], "0x81");
  assert.equal(r(6)["usb.urb_len"], "64");
  assert.equal(r(7)["usb.urb_status"], "-32");
  assert.equal(r(7)["usb.urb_len"], "0");
  // Iso OUT: descriptors at submit (lengths asked) and completion (sent).
  assert.equal(r(8)["usb.transfer_type"], "0x00");
  // numdesc (the URB's packets) and ndesc (descriptors that follow).
  assert.equal(r(8)["usb.iso.numdesc"], "3,3");
  assert.equal(r(8)["usb.iso.iso_off"], "0,100,300");
  assert.equal(r(8)["usb.iso.iso_len"], "100,200,50");
  assert.equal(r(8)["usb.iso.iso_status"], "-18,-18,-18"); // -EXDEV until done
  assert.equal(r(9)["usb.urb_status"], "-18");
  assert.equal(r(9)["usb.iso.error_count"], "1");
  assert.equal(r(9)["usb.iso.iso_status"], "0,-18,0");
  assert.equal(r(9)["usb.iso.iso_len"], "100,0,50");
  // Iso IN from a stream: data in the completion, sliced per packet.
  assert.equal(r(10)["usb.endpoint_address"], "0x83");
  assert.equal(r(11)["usb.iso.iso_off"], "0,8,16");
  assert.equal(r(11)["usb.iso.iso_len"], "8,3,0");
  assert.equal(r(11)["usb.iso.data"], "0102030405060708,090a0b");
}

for (const ext of [".pcapng", ".pcap"]) {
  Deno.test({
    name: `capture ${ext}: tshark decodes every field as recorded`,
    ignore: tsharkPath() === null,
    async fn() {
      const path = await Deno.makeTempFile({ suffix: ext });
      try {
        const cap = Capture.open(path);
        assert.equal(cap.format, ext === ".pcap" ? "pcap" : "pcapng");
        record(cap);
        cap.close();
        checkDecoded(await tsharkFields(path, CAPTURE_FIELDS));
      } finally {
        await Deno.remove(path);
      }
    },
  });

  Deno.test(`capture ${ext}: read back with readCapture`, async () => {
    const path = await Deno.makeTempFile({ suffix: ext });
    try {
      const cap = Capture.open(path);
      record(cap);
      assert.equal(cap.packets, 12);
      cap.close();
      const packets = readCapture(await Deno.readFile(path));
      assert.deepEqual(
        packets.map((p) => `${p.event.type}${p.event.xferType}`),
        [
          "S2",
          "C2",
          "S2",
          "C2",
          "S3",
          "C3",
          "S3",
          "C3",
          "S0",
          "C0",
          "S0",
          "C0",
        ],
      );
      assert.deepEqual([...packets[0]!.event.setup!], GET_DESCRIPTOR);
      assert.deepEqual([...packets[1]!.event.data], DEVICE_DESCRIPTOR);
      assert.deepEqual(packets[4]!.event.data, BULK_OUT);
      assert.equal(packets[7]!.event.status, -32);
      assert.deepEqual(
        packets[9]!.event.iso.map((d) => [d.status, d.offset, d.length]),
        [[0, 0, 100], [-18, 100, 0], [0, 300, 50]],
      );
      // Iso IN: the data runs to the end of the last packet with data.
      assert.equal(packets[11]!.event.data.length, 11);
      assert.equal(
        describePacket(packets[7]!),
        "#8 C bulk 0x81 EPIPE len 0",
      );
      assert.equal(
        describePacket(packets[1]!),
        "#2 C control 0x80 ok len 18: 12 01 00 02 00 00 00 40 25 05 a0 a4 01 00 01 02 ...",
      );
      assert.equal(
        describePacket(packets[0]!),
        "#1 S control 0x80 setup 0x80 0x06 0x0100 0x0000 18 len 18",
      );
    } finally {
      await Deno.remove(path);
    }
  });
}

Deno.test("capture: the snap length cuts data but keeps the lengths", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcapng" });
  try {
    const cap = Capture.open(path, { snapLength: 16 });
    const tap = new CaptureTap(cap, 1, 2, new FakeEngine());
    tap.submitted(0, 3, 0x02, 0, BULK_OUT, null, 0, 300, 0);
    tap.completed(0, 0, 300, 0);
    cap.close();
    const [s] = readCapture(await Deno.readFile(path));
    assert.equal(s!.event.length, 300);
    assert.deepEqual(s!.event.data, BULK_OUT.subarray(0, 16));
    if (tsharkPath() !== null) {
      const rows = await tsharkFields(path, ["usb.urb_len", "usb.data_len"]);
      assert.equal(rows[0]!["usb.urb_len"], "300");
      assert.equal(rows[0]!["usb.data_len"], "16");
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("capture: many events flush through the buffer in order", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const cap = Capture.open(path, { snapLength: 4096 });
    const tap = new CaptureTap(cap, 1, 2, new FakeEngine());
    const data = new Uint8Array(4096);
    for (let i = 0; i < 600; i++) {
      data[0] = i & 0xff;
      tap.submitted(i % 8, 3, 0x02, 0, data, null, 0, 4096, 0);
      tap.completed(i % 8, 0, 4096, 0);
    }
    cap.close();
    const packets = readCapture(await Deno.readFile(path));
    assert.equal(packets.length, 1200);
    for (let i = 0; i < 600; i++) {
      assert.equal(packets[2 * i]!.event.data[0], i & 0xff);
      assert.equal(packets[2 * i]!.event.id, packets[2 * i + 1]!.event.id);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("capture: bad arguments are invalid-argument naming them", () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof UsbError);
      assert.equal(e.code, "invalid-argument");
      assert.match(e.message, re);
      return true;
    });
  bad(() => Capture.open(""), /Capture\.open: path/);
  bad(() => Capture.open(3 as unknown as string), /Capture\.open: path/);
  bad(
    () => Capture.open("/tmp/x.pcap", { snapLength: -1 }),
    /options\.snapLength/,
  );
  bad(
    () =>
      Capture.open("/tmp/x.pcap", {
        format: "pcapx" as unknown as "pcap",
      }),
    /options\.format/,
  );
  bad(() => checkCaptureOption("open", 5), /open: options\.capture/);
  bad(() => captureAll(""), /captureAll/);
  assert.throws(
    () => Capture.open("/nonexistent-dir/x.pcap"),
    (e: unknown) =>
      e instanceof UsbError && /cannot create the capture file/.test(e.message),
  );
});

Deno.test("capture: process-wide and per-device captures", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcapng" });
  const own = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    assert.deepEqual(busAndAddress("/dev/bus/usb/001/004"), [1, 4]);
    const engine = new FakeEngine();
    stopCaptureAll();
    assert.equal(processTap("/dev/bus/usb/001/004", engine), undefined);
    const cap = captureAll(path);
    const tap = processTap("/dev/bus/usb/001/004", engine);
    assert.equal(tap?.capture, cap);
    assert.equal(tap?.busnum, 1);
    assert.equal(tap?.devnum, 4);
    // The device's own option wins, and the device owns that file.
    const mine = deviceCapture("open", own, "/dev/bus/usb/001/005");
    assert.equal(mine.capture.path, own);
    assert.equal(mine.tap(engine).devnum, 5);
    mine.close();
    assert.equal(mine.capture.open, false);
    // A shared Capture is only flushed by the device.
    const shared = deviceCapture("open", cap, "/dev/bus/usb/001/005");
    shared.close();
    assert.equal(cap.open, true);
    stopCaptureAll();
    assert.equal(processCaptureNow(), undefined);
    assert.equal(cap.open, false);
  } finally {
    await Deno.remove(path);
    await Deno.remove(own);
  }
});

Deno.test("recipe reports: packet ranges in the JSON, a failed step's last packets in the terminal", () => {
  const failed: StepResult = {
    id: "2",
    path: "steps[1]",
    kind: "bulk",
    title: "bulk IN 0x81, 512 B",
    status: "failed",
    startMs: 1,
    durationMs: 2,
    failures: [{ message: "bytes: 1 of 1 byte differ" }],
    packets: { first: 3, last: 4, count: 2 },
    lastPackets: ["#3 S bulk 0x81 len 512", "#4 C bulk 0x81 EPIPE len 0"],
  };
  const report = jsonReport({
    recipe: { name: "t" },
    outcome: "failed",
    startedAt: new Date(0).toISOString(),
    durationMs: 3,
    steps: [failed],
    vars: {},
    summary: { passed: 0, failed: 1, skipped: 0, total: 1 },
  });
  const step = (report.steps as Record<string, unknown>[])[0]!;
  assert.deepEqual(step.packets, { first: 3, last: 4, count: 2 });
  assert.deepEqual(step.lastPackets, failed.lastPackets);
  let out = "";
  new TerminalReporter({ write: (s) => (out += s), isTTY: false, color: false })
    .stepFinished(failed, { depth: 0, quiet: false });
  assert.match(out, /last packets in the capture \(3-4 are this step's\):/);
  assert.match(out, /\n\s+#4 C bulk 0x81 EPIPE len 0\n/);
});
