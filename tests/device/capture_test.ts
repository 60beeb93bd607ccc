// Capture against the virtual bench: usbkit's own capture of control, bulk,
// a stall, a helper-fed stream and iso OUT, decoded by tshark (the guest
// runs the host's /usr/bin/tshark) and checked field by field against what
// the test did; the kernel's usbmon capture of the same run (captureKernel,
// `usb capture`) must hold every URB usbkit recorded, with the same type,
// endpoint, lengths, status, setup and data. Also USBKIT_CAPTURE in a child
// process.

import assert from "node:assert/strict";
import { open } from "../../mod.ts";
import { benchInfo } from "../../kernel/guest.ts";
import { captureKernel } from "../../src/capture/kernel.ts";
import { type CapturedPacket, readCapture } from "../../src/capture/read.ts";
import type { UsbmonEvent } from "../../src/capture/usbmon_header.ts";
import {
  CAPTURE_FIELDS,
  hexOf,
  tsharkFields,
  tsharkPath,
} from "../unit/capture_tshark.ts";
import { pattern, randomBytes, sameBytes } from "./data.ts";

const info = benchInfo();
const ss = info.gadgets.find((g) => g.function === "sourcesink")!;
const audio = info.qemuDevices.find((d) => d.kind === "audio");
const hex4 = (n: number) => n.toString(16).padStart(4, "0");
const USBMON = (() => {
  try {
    return Deno.statSync("/dev/usbmon0").isCharDevice === true;
  } catch {
    return false;
  }
})();

const NO_USBMON =
  "/dev/usbmon0 is missing: the bench loads usbmon (kernel/plan.ts benchModules)";

async function decoded(path: string): Promise<Record<string, string>[]> {
  assert.ok(
    tsharkPath() !== null,
    "tshark is missing in the guest: the bench setup installs it on the host (kernel/setup.ts)",
  );
  return await tsharkFields(path, CAPTURE_FIELDS);
}

/** The same URB event in both captures: everything but id and time. */
function sameEvent(own: UsbmonEvent, k: UsbmonEvent): boolean {
  return own.type === k.type && own.xferType === k.xferType &&
    own.epnum === k.epnum && own.devnum === k.devnum &&
    own.busnum === k.busnum && own.length === k.length &&
    own.status === k.status && own.numdesc === k.numdesc &&
    (own.setup === null) === (k.setup === null) &&
    (own.setup === null || sameBytes(own.setup, k.setup!)) &&
    sameBytes(own.data, k.data) &&
    own.iso.length === k.iso.length &&
    own.iso.every((d, i) =>
      d.status === k.iso[i]!.status && d.offset === k.iso[i]!.offset &&
      d.length === k.iso[i]!.length
    );
}

/**
 * Every event of `own` is in `kernel`, in order (the kernel also has URBs
 * usbkit did not make: the CLEAR_FEATURE of clearHalt(), hub traffic).
 */
function assertSubsequence(
  own: CapturedPacket[],
  kernel: CapturedPacket[],
): void {
  let k = 0;
  const show = (e: UsbmonEvent) =>
    JSON.stringify({
      ...e,
      data: hexOf(e.data.subarray(0, 32)),
      setup: e.setup && hexOf(e.setup),
    });
  for (const p of own) {
    const from = k;
    while (k < kernel.length && !sameEvent(p.event, kernel[k]!.event)) k++;
    assert.ok(
      k < kernel.length,
      `usbkit's packet ${p.number} is not in the kernel's capture:\n${
        show(p.event)
      }\nthe kernel's of that type and endpoint:\n${
        kernel.slice(from).filter((q) =>
          q.event.type === p.event.type && q.event.epnum === p.event.epnum
        ).slice(0, 2).map((q) => show(q.event)).join("\n")
      }`,
    );
    k++;
  }
}

Deno.test({
  name:
    "capture: control, bulk OUT/IN, a stall and a stream; tshark decodes every field as done; usbmon saw every URB",
  async fn() {
    const dir = await Deno.makeTempDir();
    const own = `${dir}/own.pcapng`;
    const bus = `${dir}/kernel.pcap`;
    const ac = new AbortController();
    let kernel: ReturnType<typeof captureKernel> | undefined;
    try {
      const listed = await open(ss.serial);
      const where = {
        bus: listed.info.busNumber,
        dev: listed.info.deviceAddress,
      };
      await listed.close();
      assert.ok(USBMON, NO_USBMON);
      {
        kernel = captureKernel({
          out: bus,
          bus: where.bus,
          deviceAddress: where.dev,
          signal: ac.signal,
        });
      }
      const vendorData = randomBytes(64);
      let mps = 0;
      {
        await using dev = await open(ss.serial, { capture: own });
        assert.equal(dev.capture?.path, own);
        const d = await dev.controlTransferIn({
          requestType: "standard",
          recipient: "device",
          request: 6,
          value: 0x0100,
          index: 0,
        }, 18);
        assert.ok(sameBytes(d.data, dev.info.device.raw));
        const vendor = {
          requestType: "vendor",
          recipient: "device",
          // f_sourcesink.c answers 0x5b/0x5c only with wValue and wIndex 0.
          value: 0,
          index: 0,
        } as const;
        await dev.controlTransferOut({ ...vendor, request: 0x5b }, vendorData);
        const back = await dev.controlTransferIn(
          { ...vendor, request: 0x5c },
          64,
        );
        assert.ok(sameBytes(back.data, vendorData));
        const iface = await dev.claimInterface(0, { detachKernelDriver: true });
        const inn = iface.endpoint(0x81);
        const out = iface.endpoint(0x02);
        mps = inn.packetSize;
        // Whole packets: a read shorter than the packet the device sends
        // would babble.
        const w = await out.transferOut(pattern(mps, out.packetSize));
        assert.equal(w.bytesWritten, mps);
        const r = await inn.transferIn(mps);
        assert.ok(sameBytes(r.data, pattern(mps, mps)));
        // SET_FEATURE(ENDPOINT_HALT) on 0x81, then a read stalls.
        await dev.controlTransferOut({
          requestType: "standard",
          recipient: "endpoint",
          request: 3,
          value: 0,
          index: 0x81,
        });
        const stalled = await inn.transferIn(mps, { timeout: 5000 });
        assert.equal(stalled.status, "stall");
        await inn.clearHalt();
        // A helper-fed stream: 4 chunks of 16 KiB.
        let chunks = 0;
        for await (
          const chunk of inn.stream({ transferSize: 16384, inFlight: 2 })
        ) {
          assert.ok(sameBytes(chunk, pattern(16384, mps)));
          if (++chunks === 4) break;
        }
      }
      const rows = await decoded(own);
      const packets = readCapture(await Deno.readFile(own));
      assert.equal(rows.length, packets.length);
      for (const r of rows) {
        assert.equal(r["usb.bus_id"], String(where.bus));
        assert.equal(r["usb.device_address"], String(where.dev));
      }
      // The first 14 packets are the seven one-shot transfers, S then C.
      const expect = (i: number, f: Record<string, string>) => {
        for (const [k, v] of Object.entries(f)) {
          assert.equal(rows[i]![k], v, `packet ${i + 1}: ${k}`);
        }
      };
      expect(0, {
        "usb.urb_type": "'S'",
        "usb.transfer_type": "0x02",
        "usb.endpoint_address": "0x80",
        "usb.bmRequestType": "0x80",
        "usb.setup.bRequest": "6",
        "usb.bDescriptorType": "0x01",
        "usb.DescriptorIndex": "0x00",
        "usb.setup.wLength": "18",
      });
      expect(1, {
        "usb.urb_type": "'C'",
        "usb.urb_status": "0",
        "usb.urb_len": "18",
        "usb.idVendor": `0x${hex4(ss.vendorId)}`,
        "usb.idProduct": `0x${hex4(ss.productId)}`,
      });
      assert.equal(rows[0]!["usb.urb_id"], rows[1]!["usb.urb_id"]);
      expect(2, {
        "usb.urb_type": "'S'",
        "usb.endpoint_address": "0x00",
        "usb.bmRequestType": "0x40",
        "usb.setup.bRequest": "91",
        "usb.setup.wValue": "0x0000",
        "usb.setup.wIndex": "0",
        "usb.setup.wLength": "64",
        "usb.data_fragment": hexOf(vendorData),
      });
      expect(3, { "usb.urb_type": "'C'", "usb.urb_len": "64" });
      expect(4, {
        "usb.endpoint_address": "0x80",
        "usb.bmRequestType": "0xc0",
        "usb.setup.bRequest": "92",
        "usb.setup.wLength": "64",
      });
      expect(5, {
        "usb.urb_len": "64",
        // Wireshark's name for the data stage of a control IN it has no
        // dissector for.
        "usb.control.Response": hexOf(vendorData),
      });
      expect(6, {
        "usb.urb_type": "'S'",
        "usb.transfer_type": "0x03",
        "usb.endpoint_address": "0x02",
        "usb.urb_len": String(mps),
        "usb.capdata": hexOf(pattern(mps, mps)),
      });
      expect(7, { "usb.urb_type": "'C'", "usb.urb_len": String(mps) });
      expect(8, {
        "usb.endpoint_address": "0x81",
        "usb.urb_len": String(mps),
        "usb.data_len": "0",
      });
      expect(9, {
        "usb.urb_status": "0",
        "usb.urb_len": String(mps),
        "usb.capdata": hexOf(pattern(mps, mps)),
      });
      expect(10, {
        "usb.endpoint_address": "0x00",
        "usb.bmRequestType": "0x02",
        "usb.setup.bRequest": "3",
      });
      expect(11, { "usb.urb_status": "0" });
      expect(12, {
        "usb.endpoint_address": "0x81",
        "usb.urb_len": String(mps),
      });
      expect(13, { "usb.urb_status": "-32", "usb.urb_len": "0" });
      // The stream: submit/complete pairs on 0x81 of 16 KiB with the pattern
      // (at least the 4 chunks taken; the URBs discarded at the break say
      // -ENOENT).
      const stream = rows.slice(14);
      const full = stream.filter((r) =>
        r["usb.urb_type"] === "'C'" && r["usb.urb_status"] === "0"
      );
      assert.ok(full.length >= 4, `${full.length} stream completions`);
      for (const r of full) {
        assert.equal(r["usb.endpoint_address"], "0x81");
        assert.equal(r["usb.urb_len"], "16384");
        assert.equal(r["usb.capdata"], hexOf(pattern(16384, mps)));
      }
      for (let i = 0; i < stream.length; i += 2) {
        assert.equal(stream[i]!["usb.urb_type"], "'S'");
        assert.equal(stream[i]!["usb.urb_id"], stream[i + 1]!["usb.urb_id"]);
      }
      if (kernel !== undefined) {
        ac.abort();
        const k = await kernel;
        kernel = undefined;
        assert.equal(k.dropped, 0);
        const kp = readCapture(await Deno.readFile(bus));
        // The one-shot transfers, URB for URB (the stream's submits are
        // synthesized when JS sees the completion, so only its completions
        // are compared).
        assertSubsequence(packets.slice(0, 14), kp);
        assertSubsequence(
          packets.slice(14).filter((p) => p.event.type === "C"),
          kp,
        );
        // tshark reads the kernel's file too.
        const krows = await decoded(bus);
        assert.equal(krows.length, kp.length);
      }
    } finally {
      ac.abort();
      await kernel?.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "capture: iso OUT to QEMU usb-audio; tshark's iso offsets, lengths and statuses are the packets'",
  ignore: audio === undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    const own = `${dir}/iso.pcap`;
    const bus = `${dir}/iso-kernel.pcapng`;
    const ac = new AbortController();
    let kernel: ReturnType<typeof captureKernel> | undefined;
    try {
      await using dev = await open(
        `${hex4(audio!.vendorId)}:${hex4(audio!.productId)}`,
        { capture: own },
      );
      assert.ok(USBMON, NO_USBMON);
      {
        kernel = captureKernel({
          out: bus,
          bus: dev.info.busNumber,
          deviceAddress: dev.info.deviceAddress,
          signal: ac.signal,
        });
      }
      const streaming = dev.configuration!.interfaces.find((i) =>
        i.alternates.some((a) =>
          a.endpoints.some((e) => e.type === "isochronous")
        )
      )!;
      const alt = streaming.alternates.find((a) =>
        a.endpoints.some((e) => e.type === "isochronous")
      )!;
      const iface = await dev.claimInterface(streaming.interfaceNumber, {
        detachKernelDriver: true,
      });
      await iface.selectAlternateInterface(alt.alternateSetting);
      const ep = iface.endpoints.find((e) =>
        e.type === "isochronous" && e.direction === "out"
      )!;
      const packet = Math.min(192, ep.maxPacketSize);
      const lengths = [packet, packet / 2, packet, 8, packet, packet / 4];
      const total = lengths.reduce((a, b) => a + b, 0);
      const data = randomBytes(total);
      const r = await ep.isochronousTransferOut(data, lengths, {
        timeout: 10000,
      });
      await iface.selectAlternateInterface(0);
      await dev.close();
      const rows = await decoded(own);
      const iso = rows.filter((row) => row["usb.transfer_type"] === "0x00");
      assert.equal(iso.length, 2);
      const [s, c] = iso as [Record<string, string>, Record<string, string>];
      const offsets: number[] = [];
      lengths.reduce((off, l) => (offsets.push(off), off + l), 0);
      assert.equal(s["usb.urb_type"], "'S'");
      assert.equal(s["usb.endpoint_address"], `0x${hex4(ep.address).slice(2)}`);
      assert.equal(s["usb.urb_len"], String(total));
      assert.equal(s["usb.iso.numdesc"], `${lengths.length},${lengths.length}`);
      assert.equal(s["usb.iso.iso_off"], offsets.join(","));
      assert.equal(s["usb.iso.iso_len"], lengths.join(","));
      // The submit carries the data; Wireshark cuts it per packet.
      assert.equal(
        s["usb.iso.data"],
        lengths.map((l, i) =>
          hexOf(data.subarray(offsets[i]!, offsets[i]! + l))
        ).join(","),
      );
      assert.equal(c["usb.urb_type"], "'C'");
      assert.equal(c["usb.urb_id"], s["usb.urb_id"]);
      assert.equal(c["usb.iso.iso_off"], offsets.join(","));
      assert.equal(
        c["usb.iso.iso_len"],
        r.packets.map((p) => p.bytesWritten).join(","),
      );
      assert.equal(
        c["usb.iso.iso_status"],
        r.packets.map((p) => (p.status === "ok" ? "0" : "?")).join(","),
      );
      assert.equal(
        c["usb.iso.error_count"],
        String(r.packets.filter((p) => p.status !== "ok").length),
      );
      if (kernel !== undefined) {
        ac.abort();
        const k = await kernel;
        kernel = undefined;
        const kp = readCapture(await Deno.readFile(bus));
        const mine = readCapture(await Deno.readFile(own));
        assertSubsequence(mine, kp);
        assert.equal(k.dropped, 0);
      }
    } finally {
      ac.abort();
      await kernel?.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("capture: USBKIT_CAPTURE records a child process's transfers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/env.pcap`;
    const root = new URL("../../", import.meta.url).pathname;
    const source = `import { open } from "./mod.ts";
await using dev = await open(${JSON.stringify(ss.serial)});
await dev.controlTransferIn({ requestType: "standard", recipient: "device", request: 6, value: 0x0100, index: 0 }, 18);
`;
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", "--cached-only", source],
      cwd: root,
      env: { USBKIT_CAPTURE: file, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(child.success, new TextDecoder().decode(child.stderr));
    const packets = readCapture(await Deno.readFile(file));
    assert.equal(packets.length, 2);
    assert.deepEqual(
      [...packets[0]!.event.setup!],
      [0x80, 6, 0, 1, 0, 0, 18, 0],
    );
    const rows = await decoded(file);
    assert.equal(rows[1]!["usb.idVendor"], `0x${hex4(ss.vendorId)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("capture: usb run --capture gives each step its packets; a failed step shows its last packets", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = new URL("../../", import.meta.url).pathname;
    const recipe = `${dir}/r.yaml`;
    await Deno.writeTextFile(
      recipe,
      `name: capture ranges
device: { vendorId: ${ss.vendorId}, productId: ${ss.productId}, wait: 5s }
interfaces: [{ number: 0, detachKernelDriver: true }]
steps:
  - control: { in: 18, requestType: standard, recipient: device, request: 6, value: 0x0100, expect: { length: 18 } }
  - log: nothing on the bus
  - bulk: { endpoint: 0x81, in: 1024, expect: { length: 1024, pattern: sourcesink } }
  - bulk: { endpoint: 0x81, in: 1024, expect: { bytes: "ff" } }
  - log: skipped after the failure
`,
    );
    const file = `${dir}/run.pcapng`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--cached-only",
        "scripts/usb.ts",
        "run",
        recipe,
        "--capture",
        file,
        "--report",
        `json=${dir}/report.json`,
      ],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, `${stdout}\n${stderr}`);
    const report = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
    const ranges = report.steps.map((s: { packets: unknown }) => s.packets);
    assert.deepEqual(ranges, [
      { first: 1, last: 2, count: 2 },
      { first: 0, last: 0, count: 0 },
      { first: 3, last: 4, count: 2 },
      { first: 5, last: 6, count: 2 },
      { first: 0, last: 0, count: 0 },
    ]);
    // The file holds exactly those packets, and tshark agrees on them.
    const rows = await decoded(file);
    assert.equal(rows.length, 6);
    assert.equal(rows[0]!["usb.setup.wLength"], "18");
    assert.equal(rows[5]!["usb.endpoint_address"], "0x81");
    assert.equal(rows[5]!["usb.urb_len"], "1024");
    // The failed step's packets, decoded, in the terminal report.
    const pat = [...pattern(16, 1024)].map((b) =>
      b.toString(16).padStart(2, "0")
    ).join(" ");
    assert.match(stdout, /last packets in the capture \(5-6 are this step's\)/);
    assert.ok(stdout.includes("#5 S bulk 0x81 len 1024"), stdout);
    assert.ok(
      stdout.includes(`#6 C bulk 0x81 ok len 1024: ${pat} ...`),
      stdout,
    );
    assert.match(stderr, /capture: 6 packets in /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "capture: `usb capture --device` records a transfer and stops cleanly on SIGINT",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const root = new URL("../../", import.meta.url).pathname;
      const file = `${dir}/cli.pcap`;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--cached-only",
          "scripts/usb.ts",
          "capture",
          "--device",
          ss.serial,
          "--out",
          file,
        ],
        cwd: root,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait for "capturing ..." on stderr: usbmon is then being read.
      const reader = child.stderr.pipeThrough(new TextDecoderStream())
        .getReader();
      let err = "";
      while (!err.includes("Ctrl-C to stop")) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      assert.match(err, /capturing bus \d+, device \d+ into /);
      const data = randomBytes(64);
      {
        await using dev = await open(ss.serial);
        await dev.controlTransferOut({
          requestType: "vendor",
          recipient: "device",
          request: 0x5b,
          value: 0,
          index: 0,
        }, data);
      }
      child.kill("SIGINT");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      const status = await child.status;
      await child.stdout.cancel();
      assert.equal(status.code, 130, err);
      assert.match(err, /\d+ packets written to .*; usbmon dropped 0 events/);
      const rows = await decoded(file);
      const submit = rows.find((r) =>
        r["usb.urb_type"] === "'S'" && r["usb.setup.bRequest"] === "91"
      );
      assert.ok(submit, "the vendor request is in the kernel's capture");
      assert.equal(submit["usb.data_fragment"], hexOf(data));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const VHCI = (() => {
  try {
    return Deno.statSync("/sys/devices/platform/vhci_hcd.0/attach").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "capture: iso IN from a TypeScript device (vhci_hcd); tshark's per-packet offsets, lengths, statuses and data are what it sent",
  ignore: !VHCI,
  async fn() {
    const { defineDevice } = await import("../../src/emulated/mod.ts");
    const { attachLocal } = await import("../../src/usbip/mod.ts");
    // Packet i: empty, 10 bytes or full (64), bytes i*16 + j.
    const sent = (i: number) =>
      Uint8Array.from(
        { length: [0, 10, 64][i % 3]! },
        (_, j) => (i * 16 + j) & 0xff,
      );
    const device = defineDevice({
      speed: "high",
      vendorId: 0x1209,
      productId: 0x0003,
      manufacturer: "usbkit",
      product: "capture iso IN",
      serialNumber: "capture-iso-1",
      interfaces: [{
        alternates: [{}, {
          endpoints: [{
            address: 0x81,
            type: "isochronous" as const,
            maxPacketSize: 64,
            onIsoIn: (packets) => packets.map((_, i) => sent(i)),
          }],
        }],
      }],
    });
    const dir = await Deno.makeTempDir();
    try {
      await using a = await attachLocal(device);
      const file = `${dir}/iso-in.pcapng`;
      const lengths = new Array(6).fill(64);
      {
        await using dev = await open(a.devnode, { capture: file });
        const iface = await dev.claimInterface(0);
        await iface.selectAlternateInterface(1);
        const r = await iface.endpoint(0x81).isochronousTransferIn(lengths, {
          timeout: 10000,
        });
        r.packets.forEach((p, i) =>
          assert.ok(sameBytes(p.data!, sent(i)), `packet ${i}`)
        );
      }
      const rows = (await decoded(file)).filter((r) =>
        r["usb.transfer_type"] === "0x00"
      );
      assert.equal(rows.length, 2);
      const c = rows[1]!;
      assert.equal(c["usb.urb_type"], "'C'");
      assert.equal(c["usb.iso.iso_off"], "0,64,128,192,256,320");
      assert.equal(
        c["usb.iso.iso_len"],
        lengths.map((_, i) => sent(i).length).join(","),
      );
      assert.equal(c["usb.iso.iso_status"], "0,0,0,0,0,0");
      // Wireshark shows the data of the packets that have some.
      assert.equal(
        c["usb.iso.data"],
        lengths.map((_, i) => sent(i)).filter((d) => d.length > 0).map(
          hexOf,
        ).join(","),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
