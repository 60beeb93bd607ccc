// Zero-copy buffers, streams and isochronous transfers against the virtual
// bench. The zero-copy and the fallback path run the same data checks.

import assert from "node:assert/strict";
import { open, UsbError } from "../../mod.ts";
import { pattern, randomBytes, sameBytes } from "./data.ts";
import { benchInfo } from "../../kernel/guest.ts";

const info = benchInfo();
const ss = info.gadgets.find((g) => g.function === "sourcesink")!;
const lb = info.gadgets.find((g) => g.function === "loopback");
const audio = info.qemuDevices.find((d) => d.kind === "audio");
const MEMORY_MB = "/sys/module/usbcore/parameters/usbfs_memory_mb";

for (const zeroCopy of [true, false]) {
  const path = zeroCopy ? "zero-copy" : "fallback";

  /**
   * The Loopback gadget with interface 0 claimed, its OUT and IN endpoints,
   * and a buffer of `size` bytes (of this path) holding random `sent`.
   */
  const loopbackBuffer = async (size: number) => {
    const dev = await open(lb!.serial);
    const iface = await dev.claimInterface(0);
    const buf = dev.allocBuffer(size, { zeroCopy });
    const sent = crypto.getRandomValues(new Uint8Array(size));
    buf.bytes.set(sent);
    return {
      dev,
      out: iface.endpoints.find((e) => e.direction === "out")!,
      inn: iface.endpoints.find((e) => e.direction === "in")!,
      buf,
      sent,
    };
  };

  Deno.test(`${path}: stream() of 32 MiB from SourceSink matches the pattern; chunks detach on the next iteration`, async () => {
    await using dev = await open(ss.serial);
    const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
      .endpoint(0x81);
    const expected = pattern(65536, ep.packetSize);
    const stream = ep.stream({ transferSize: 65536, inFlight: 16, zeroCopy });
    assert.equal(stream.zeroCopy, zeroCopy);
    let total = 0;
    let previous: Uint8Array | undefined;
    for await (const chunk of stream) {
      if (previous) {
        assert.equal(previous.byteLength, 0, "a chunk outlived its iteration");
      }
      assert.ok(sameBytes(chunk, expected), `pattern mismatch at ${total}`);
      total += chunk.length;
      previous = chunk;
      if (total >= 32 * 1024 * 1024) break;
    }
    assert.equal(total, 32 * 1024 * 1024);
  });

  Deno.test(`${path}: transferIn into a UsbBuffer returns a fresh view of the data`, async () => {
    await using dev = await open(ss.serial);
    const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
      .endpoint(0x81);
    const buf = dev.allocBuffer(16384, { zeroCopy });
    assert.equal(buf.zeroCopy, zeroCopy);
    for (let i = 0; i < 4; i++) {
      const before = buf.bytes;
      const pending = ep.transferIn(buf);
      assert.equal(
        before.byteLength,
        0,
        "the view stayed attached while in flight",
      );
      const r = await pending;
      assert.ok(sameBytes(r.data, pattern(16384, ep.packetSize)));
      assert.equal(buf.bytes.byteLength, 16384);
    }
    buf.release();
    assert.equal(buf.bytes.byteLength, 0, "a released buffer kept a view");
  });

  Deno.test({
    name:
      `${path}: an OUT UsbBuffer has byteLength 0 in flight, and the data sent is the data at submit time`,
    ignore: lb === undefined,
    fn: async () => {
      const l = await loopbackBuffer(4096);
      await using _dev = l.dev;
      const { out, inn, buf, sent } = l;
      const view = buf.bytes;
      const reading = inn.transferIn(4096, { timeout: 10000 });
      const writing = out.transferOut(buf);
      assert.equal(view.byteLength, 0);
      assert.equal(buf.bytes.byteLength, 0);
      // Writes through a detached view go nowhere (indexed stores are
      // ignored; methods such as fill() throw a TypeError).
      view[0] = 0xaa;
      buf.bytes[1] = 0xbb;
      assert.throws(() => view.fill(0xaa), TypeError);
      const [w, r] = await Promise.all([writing, reading]);
      assert.equal(w.bytesWritten, 4096);
      assert.ok(
        sameBytes(r.data, sent),
        "the device received bytes changed after submit",
      );
      assert.ok(
        sameBytes(buf.bytes, sent),
        "the buffer changed while the kernel owned it",
      );
      buf.release();
    },
  });

  Deno.test({
    name:
      `${path}: an OUT UsbBuffer sent again untouched echoes its bytes each time; bytes read in flight is empty`,
    ignore: lb === undefined,
    fn: async () => {
      // With mapped memory a buffer whose bytes nobody took since its last
      // transfer is not detached at submit (there is no view to detach);
      // reading bytes while in flight must still give an empty view.
      const l = await loopbackBuffer(512);
      await using _dev = l.dev;
      const { out, inn, buf, sent } = l;
      for (let i = 0; i < 8; i++) {
        const reading = inn.transferIn(512, { timeout: 10000 });
        const writing = out.transferOut(buf);
        if (i === 5) {
          const inFlight = buf.bytes;
          assert.equal(inFlight.byteLength, 0, "a live view while in flight");
          inFlight[0] = sent[0]! ^ 0xff; // goes nowhere
        }
        const [w, r] = await Promise.all([writing, reading]);
        assert.equal(w.bytesWritten, 512);
        assert.ok(sameBytes(r.data, sent), `echo ${i} differs`);
      }
      assert.ok(sameBytes(buf.bytes, sent), "the buffer's bytes changed");
      buf.release();
    },
  });
}

Deno.test({
  name: "Loopback: readable and writable streams echo 4 MiB",
  ignore: lb === undefined,
  fn: async () => {
    await using dev = await open(lb!.serial);
    const iface = await dev.claimInterface(0);
    const data = randomBytes(4 * 1024 * 1024);
    const writer = iface.endpoints.find((e) => e.direction === "out")!
      .openWritable({ inFlight: 8 }).getWriter();
    const writing = (async () => {
      for (let off = 0; off < data.length; off += 4096) {
        await writer.write(data.subarray(off, off + 4096));
      }
      await writer.close();
    })();
    const received = new Uint8Array(data.length);
    let at = 0;
    for await (
      const chunk of iface.endpoints.find((e) => e.direction === "in")!
        .openReadable({ transferSize: 4096, inFlight: 8 })
    ) {
      received.set(chunk, at);
      at += chunk.length;
      if (at >= data.length) break;
    }
    await writing;
    assert.ok(sameBytes(received, data));
  },
});

Deno.test("a pool at its cap gives no-memory naming the cap", async () => {
  await using dev = await open(ss.serial, { maxBufferBytes: 1024 * 1024 });
  const a = dev.allocBuffer(600 * 1024);
  assert.ok(a.zeroCopy);
  assert.throws(() => dev.allocBuffer(600 * 1024), (e: unknown) => {
    assert.ok(e instanceof UsbError);
    assert.equal(e.code, "no-memory");
    assert.match(e.message, /buffer pool cap of 1048576 bytes/);
    assert.match(e.hint ?? "", /maxBufferBytes/);
    return true;
  });
  a.release();
  const b = dev.allocBuffer(600 * 1024); // the released region is reused
  assert.ok(b.zeroCopy);
  b.release();
});

Deno.test("usbfs_memory_mb=1: mapping more gives no-memory naming usbfs_memory_mb; the fallback path still works", async () => {
  const saved = Deno.readTextFileSync(MEMORY_MB).trim();
  Deno.writeTextFileSync(MEMORY_MB, "1");
  try {
    await using dev = await open(ss.serial);
    assert.throws(() => dev.allocBuffer(2 * 1024 * 1024), (e: unknown) => {
      assert.ok(e instanceof UsbError);
      assert.equal(e.code, "no-memory");
      assert.match(e.message, /usbfs_memory_mb/);
      assert.match(e.hint ?? "", /usbfs_memory_mb/);
      return true;
    });
    const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
      .endpoint(0x81);
    const buf = dev.allocBuffer(16384, { zeroCopy: false });
    for (let i = 0; i < 8; i++) {
      const r = await ep.transferIn(buf);
      assert.ok(sameBytes(r.data, pattern(16384, ep.packetSize)));
    }
    buf.release();
  } finally {
    Deno.writeTextFileSync(MEMORY_MB, saved);
  }
});

Deno.test("steady-state streaming does not grow the heap over 100k transfers", async () => {
  const probe = new URL("./heap_probe.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-check",
      "--cached-only",
      "--v8-flags=--expose-gc",
      probe,
      ss.serial,
      "100000",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "heap probe failed");
  const samples: { transfers: number; heapUsed: number }[] = JSON.parse(
    new TextDecoder().decode(out.stdout),
  );
  assert.equal(samples.at(-1)!.transfers, 100000);
  // After the warm-up sample, a per-transfer allocation that survived GC
  // would show as growth proportional to the transfers (>= 1 byte each).
  const growth = samples.at(-1)!.heapUsed - samples[1]!.heapUsed;
  assert.ok(
    growth < 512 * 1024,
    `heap grew by ${growth} bytes over ${
      samples.at(-1)!.transfers - samples[1]!.transfers
    } transfers: ${JSON.stringify(samples)}`,
  );
});

Deno.test({
  name: "iso OUT to QEMU usb-audio: 16 URBs in flight, every packet ok",
  ignore: audio === undefined,
  fn: async () => {
    await using dev = await open(
      `${audio!.vendorId.toString(16).padStart(4, "0")}:${
        audio!.productId.toString(16).padStart(4, "0")
      }`,
    );
    // The streaming interface is the one with an iso endpoint in some alternate setting.
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
    const packet = Math.min(192, ep.packetSize);
    const lengths = new Array(8).fill(packet);
    for (const zeroCopy of [true, false]) {
      const buffers = Array.from(
        { length: 16 },
        () => dev.allocBuffer(8 * packet, { zeroCopy }),
      );
      const results = await Promise.all(
        buffers.map((b) =>
          ep.isochronousTransferOut(b, lengths, { timeout: 10000 })
        ),
      );
      for (const r of results) {
        assert.equal(r.packets.length, 8);
        for (const p of r.packets) {
          assert.deepEqual([p.status, p.bytesWritten], ["ok", packet]);
        }
      }
      for (const b of buffers) b.release();
    }
    // More than 128 packets is split into several URBs and completes as one.
    const big = await ep.isochronousTransferOut(
      new Uint8Array(300 * packet),
      new Array(300).fill(packet),
      { timeout: 10000 },
    );
    assert.equal(big.packets.length, 300);
    assert.ok(big.packets.every((p) => p.status === "ok"));
    await iface.selectAlternateInterface(0);
  },
});
