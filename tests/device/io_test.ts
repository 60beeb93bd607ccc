// Device I/O against the virtual bench (run inside the guest by `deno task test`).
// Every test checks the data itself: the SourceSink pattern, a Loopback echo,
// sectors compared with the disk image.

import assert from "node:assert/strict";
import {
  type Device,
  type Endpoint,
  type Interface,
  open,
  UsbError,
} from "../../mod.ts";
import { pattern, processHandles, randomBytes, sameBytes } from "./data.ts";
import { benchInfo, plugGadget, unplugGadget } from "../../kernel/guest.ts";

const info = benchInfo();
const ss = info.gadgets.find((g) => g.function === "sourcesink")!;
const lb = info.gadgets.find((g) => g.function === "loopback");
const storage = info.qemuDevices.find((d) => d.kind === "storage");

const SS = `${ss.vendorId.toString(16).padStart(4, "0")}:${
  ss.productId.toString(16).padStart(4, "0")
}`;
const vendorOut = (request: number) =>
  ({
    requestType: "vendor",
    recipient: "device",
    request,
    value: 0,
    index: 0,
  }) as const;

/** The Loopback gadget's bulk endpoints (addresses depend on the UDC). */
function bulkPair(iface: Interface): { out: Endpoint; inn: Endpoint } {
  const find = (dir: "in" | "out") =>
    iface.endpoints.find((e) => e.type === "bulk" && e.direction === dir)!;
  return { out: find("out"), inn: find("in") };
}

/**
 * Opens the Loopback gadget and resets it, so data or a half-filled request
 * left by an earlier test cannot shift this test's echo.
 */
async function openLoopback(): Promise<Device> {
  const dev = await open(lb!.serial);
  await dev.reset();
  return dev;
}

/** The usbtest driver binds SourceSink when loaded; most tests detach it. */
async function openSS(): Promise<Device> {
  return await open(ss.serial);
}

Deno.test("SourceSink: 64 MiB bulk IN with 16 in flight matches the pattern byte for byte", async () => {
  await using dev = await openSS();
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  const ep = iface.endpoint(0x81);
  const size = 64 * 1024;
  const expected = pattern(size, ep.maxPacketSize);
  const total = 64 * 1024 * 1024;
  let submitted = 0, received = 0;
  const queue: Promise<{ status: string; data: Uint8Array }>[] = [];
  while (queue.length < 16) {
    queue.push(ep.transferIn(size));
    submitted += size;
  }
  while (queue.length > 0) {
    const r = await queue.shift()!;
    assert.equal(r.status, "ok");
    assert.equal(r.data.length, size);
    assert.ok(
      sameBytes(r.data, expected),
      `pattern mismatch at byte offset ${received}`,
    );
    received += r.data.length;
    if (submitted < total) {
      queue.push(ep.transferIn(size));
      submitted += size;
    }
  }
  assert.equal(received, total);
});

Deno.test("SourceSink: bulk OUT of the pattern is accepted; a wrong byte stalls; clearHalt recovers", async () => {
  await using dev = await openSS();
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  const ep = iface.endpoint(0x02);
  const good = pattern(64 * 1024, ep.maxPacketSize);
  const results = await Promise.all(
    Array.from({ length: 8 }, () => ep.transferOut(good)),
  );
  for (const r of results) {
    assert.deepEqual(r, { status: "ok", bytesWritten: good.length });
  }

  // f_sourcesink.c check_read_data halts the OUT endpoint on a bad byte.
  const bad = pattern(4096, ep.maxPacketSize);
  bad[100] = 0xee;
  await ep.transferOut(bad);
  const stalled = await ep.transferOut(good, { timeout: 5000 });
  assert.equal(stalled.status, "stall");
  await ep.clearHalt();
  assert.deepEqual(await ep.transferOut(good, { timeout: 5000 }), {
    status: "ok",
    bytesWritten: good.length,
  });
});

Deno.test("SourceSink: vendor control 0x5b writes a buffer and 0x5c reads it back", async () => {
  await using dev = await openSS();
  for (const len of [1, 64, 512, 4096]) {
    const data = crypto.getRandomValues(new Uint8Array(len));
    const w = await dev.controlTransferOut(vendorOut(0x5b), data);
    assert.deepEqual(w, { status: "ok", bytesWritten: len });
    const r = await dev.controlTransferIn(vendorOut(0x5c), len);
    assert.equal(r.status, "ok");
    assert.ok(
      sameBytes(r.data, data),
      `control round trip of ${len} bytes differs`,
    );
  }
});

Deno.test("GET_DESCRIPTOR through controlTransferIn equals the sysfs descriptors; strings read the gadget's", async () => {
  await using dev = await openSS();
  const sysfs = dev.info.device.raw;
  const get = (type: number, length: number) =>
    dev.controlTransferIn({
      requestType: "standard",
      recipient: "device",
      request: 6,
      value: type << 8,
      index: 0,
    }, length);
  const d = await get(1, 18);
  assert.ok(sameBytes(d.data, sysfs));
  const config = dev.configuration!;
  const c = await get(2, config.totalLength);
  assert.ok(
    sameBytes(c.data, config.raw),
    "configuration descriptor differs from sysfs",
  );
  const desc = dev.deviceDescriptor;
  assert.equal(
    await dev.getStringDescriptor(desc.manufacturerStringIndex),
    ss.manufacturer,
  );
  assert.equal(
    await dev.getStringDescriptor(desc.productStringIndex),
    ss.product,
  );
  assert.equal(
    await dev.getStringDescriptor(desc.serialNumberStringIndex),
    ss.serial,
  );
});

Deno.test({
  name:
    "Loopback: 16 MiB of random data echoed in varied sizes (1 byte, maxPacket multiples, 0, 1 MiB)",
  ignore: lb === undefined,
  fn: async () => {
    await using dev = await openLoopback();
    const iface = await dev.claimInterface(0);
    const { out, inn } = bulkPair(iface);
    const mps = out.packetSize;
    const buflen = 4096; // f_loopback.c bulk_buflen default (GZERO_BULK_BUFLEN)
    const sizes = [
      1,
      0,
      mps,
      2 * mps,
      3 * mps,
      buflen,
      mps - 1,
      mps + 1,
      5000,
      1024 * 1024,
      63,
      100_000,
      4 * buflen,
    ];
    let moved = 0, i = 0;
    while (moved < 16 * 1024 * 1024) {
      const size = sizes[i++ % sizes.length]!;
      const data = randomBytes(size);
      // f_loopback.c (loopback_complete) sets `zero` on the echo of a
      // request that ended short of buflen, so that echo is followed by a
      // zero-length packet when it ends on a full packet: read it.
      // A gadget OUT request ends at bulk_buflen or at a short packet, so a
      // transfer ending on a full packet short of buflen needs a ZLP.
      const zeroPacket = size % mps === 0 && size % buflen !== 0;
      const [w, r] = await Promise.all([
        out.transferOut(data, { zeroPacket }),
        inn.transferIn(size, { timeout: 10000 }),
      ]);
      assert.equal(w.bytesWritten, size);
      assert.equal(r.status, "ok");
      assert.equal(
        r.data.length,
        size,
        `echo of ${size} bytes came back as ${r.data.length}`,
      );
      assert.ok(sameBytes(r.data, data), `echo of ${size} bytes differs`);
      if (size > 0 && size % mps === 0 && size % buflen !== 0) {
        const zlp = await inn.transferIn(mps, { timeout: 10000 });
        assert.equal(
          zlp.data.length,
          0,
          "expected the echo's zero-length packet",
        );
      }
      moved += size;
    }
  },
});

Deno.test({
  name:
    "timeout and cancellation: partial data is kept, and the endpoint keeps working",
  ignore: lb === undefined,
  fn: async () => {
    await using dev = await openLoopback();
    const iface = await dev.claimInterface(0);
    const { out, inn } = bulkPair(iface);

    // Drain anything an earlier test left in the gadget.
    while (true) {
      try {
        await inn.transferIn(65536, { timeout: 300 });
      } catch (e) {
        if (e instanceof UsbError && e.code === "timeout") break;
        throw e;
      }
    }

    // Nothing to read: times out with zero bytes.
    await assert.rejects(
      inn.transferIn(512, { timeout: 200 }),
      (e: unknown) => {
        assert.ok(e instanceof UsbError);
        assert.equal(e.code, "timeout");
        assert.equal(e.bytesTransferred, 0);
        return true;
      },
    );

    // 8 KiB echoed as full packets, then silence: a 1 MiB read times out
    // holding those 8 KiB.
    const data = crypto.getRandomValues(new Uint8Array(8192));
    await out.transferOut(data);
    await assert.rejects(
      inn.transferIn(1024 * 1024, { timeout: 1500 }),
      (e: unknown) => {
        assert.ok(e instanceof UsbError);
        assert.equal(e.code, "timeout");
        assert.equal(e.bytesTransferred, 8192);
        assert.ok(e.data && sameBytes(e.data, data), "partial data lost");
        return true;
      },
    );

    // AbortSignal: before and during.
    const ac = new AbortController();
    const pending = inn.transferIn(512, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof UsbError && e.code === "cancelled",
    );
    await assert.rejects(
      inn.transferIn(512, { signal: AbortSignal.abort() }),
      (e: unknown) => e instanceof UsbError && e.code === "cancelled",
    );

    // Still works.
    const again = crypto.getRandomValues(new Uint8Array(100));
    const [, r] = await Promise.all([
      out.transferOut(again),
      inn.transferIn(100, { timeout: 5000 }),
    ]);
    assert.ok(sameBytes(r.data, again));
  },
});

Deno.test({
  name: "many in flight across endpoints and interfaces of two devices at once",
  ignore: lb === undefined,
  fn: async () => {
    await using a = await openSS();
    await using b = await openLoopback();
    const sIn = (await a.claimInterface(0, { detachKernelDriver: true }))
      .endpoint(0x81);
    const sOut = a.configuration && (await a.claimInterface(0)).endpoint(0x02);
    const lbi = await b.claimInterface(0);
    const expected = pattern(16384, sIn.packetSize);
    const echo = crypto.getRandomValues(new Uint8Array(16384));
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 32; i++) {
      jobs.push(
        sIn.transferIn(16384).then((r) =>
          assert.ok(sameBytes(r.data, expected))
        ),
      );
      jobs.push(
        sOut!.transferOut(pattern(16384, sIn.packetSize)).then((r) =>
          assert.equal(r.bytesWritten, 16384)
        ),
      );
    }
    for (let i = 0; i < 8; i++) {
      jobs.push(
        Promise.all([
          bulkPair(lbi).out.transferOut(echo),
          bulkPair(lbi).inn.transferIn(16384, { timeout: 10000 }),
        ])
          .then(([, r]) => assert.ok(sameBytes(r.data, echo))),
      );
    }
    await Promise.all(jobs);
  },
});

Deno.test("misuse gives invalid-argument errors that say what was wrong", async () => {
  await using dev = await openSS();
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  await assert.rejects(iface.endpoint(0x02).transferIn(64), (e: unknown) => {
    assert.ok(e instanceof UsbError && e.code === "invalid-argument");
    assert.match(e.message, /OUT endpoint/);
    return true;
  });
  assert.throws(() => iface.endpoint(0x05), (e: unknown) => {
    assert.ok(e instanceof UsbError && e.code === "invalid-argument");
    assert.match(e.message, /no endpoint 0x05.*0x81/);
    return true;
  });
  const ep = iface.endpoint(0x81);
  await iface.release();
  await assert.rejects(
    ep.transferIn(64),
    (e: unknown) => e instanceof UsbError && /not claimed/.test(e.message),
  );
  await assert.rejects(
    dev.claimInterface(7),
    (e: unknown) => e instanceof UsbError && e.code === "invalid-argument",
  );
});

function sysfsDriver(port: string, ifno: number): string | undefined {
  try {
    const link = Deno.readLinkSync(
      `/sys/bus/usb/devices/${port}:1.${ifno}/driver`,
    );
    return link.split("/").pop();
  } catch {
    return undefined;
  }
}

Deno.test({
  name:
    "kernel driver: usbtest holds SourceSink → busy naming usbtest; detach claims; close re-binds usbtest",
  ignore: !info.modules.includes("usbtest"),
  fn: async () => {
    const dev = await openSS();
    const port = dev.info.portPath;
    assert.equal(sysfsDriver(port, 0), "usbtest");
    await assert.rejects(dev.claimInterface(0), (e: unknown) => {
      assert.ok(e instanceof UsbError);
      assert.equal(e.code, "busy");
      assert.match(e.message, /usbtest/);
      assert.match(e.hint ?? "", /detachKernelDriver/);
      return true;
    });
    const iface = await dev.claimInterface(0, { detachKernelDriver: true });
    assert.equal(iface.detachedDriver, "usbtest");
    assert.equal(sysfsDriver(port, 0), "usbfs");
    await dev.close();
    assert.equal(sysfsDriver(port, 0), "usbtest");
  },
});

Deno.test("two processes: the second claimInterface fails with busy naming the first", async () => {
  const script = `
    import { open } from "${new URL("../../mod.ts", import.meta.url).href}";
    const dev = await open(${JSON.stringify(ss.serial)});
    await dev.claimInterface(0, { detachKernelDriver: true });
    console.log("claimed");
    await new Promise((r) => setTimeout(r, 60_000));
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", "--cached-only", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /claimed/);
  try {
    await using dev = await openSS();
    await assert.rejects(
      dev.claimInterface(0, { detachKernelDriver: true }),
      (e: unknown) => {
        assert.ok(e instanceof UsbError);
        assert.equal(e.code, "busy");
        assert.match(e.message, new RegExp(`process ${child.pid}`));
        return true;
      },
    );
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
  }
});

Deno.test("permissions: an unprivileged user gets access-denied with the udev rule for 0525:a4a0", async () => {
  const script = `
    import { open, UsbError } from "${
    new URL("../../mod.ts", import.meta.url).href
  }";
    try { await open(${JSON.stringify(SS)}); console.log("opened"); }
    catch (e) { if (e instanceof UsbError) console.log(JSON.stringify({ code: e.code, hint: e.hint })); else throw e; }
  `;
  const out = await new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      Deno.execPath(),
      "eval",
      "--no-check",
      "--cached-only",
      script,
    ],
    env: { DENO_DIR: "/tmp/deno-nobody", HOME: "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(text.split("\n").pop()!);
  assert.equal(result.code, "access-denied");
  assert.match(
    result.hint,
    /ATTR\{idVendor\}=="0525", ATTR\{idProduct\}=="a4a0"/,
  );
});

function leakSnapshot(devnode: string) {
  const { fds, threads } = processHandles();
  return {
    deviceFds: fds.filter((f) => f === devnode).length,
    eventfds: fds.filter((f) => f.includes("eventfd")).length,
    deviceMaps:
      Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) =>
        l.includes(devnode)
      ).length,
    reapers: threads.filter((t) => t === "usbkit-reaper").length,
  };
}

Deno.test({
  name:
    "unplug: every pending transfer rejects promptly with disconnected; close works; nothing leaks",
  ignore: lb === undefined,
  fn: async () => {
    const before = leakSnapshot("/dev/null");
    const dev = await open(lb!.serial);
    const devnode = dev.info.devnode;
    const iface = await dev.claimInterface(0);
    const inn = iface.endpoint(0x81);
    const pending = Array.from({ length: 16 }, () => inn.transferIn(4096));
    const during = leakSnapshot(devnode);
    assert.equal(during.deviceFds, 1);
    assert.equal(during.reapers, 1);
    const t0 = performance.now();
    await unplugGadget(lb!.name);
    try {
      const results = await Promise.allSettled(pending);
      const elapsed = performance.now() - t0;
      for (const r of results) {
        assert.equal(r.status, "rejected");
        assert.ok(r.reason instanceof UsbError);
        assert.equal(r.reason.code, "disconnected", r.reason.message);
      }
      assert.ok(
        elapsed < 10_000,
        `pending transfers took ${elapsed} ms to fail`,
      );
      assert.ok(dev.gone);
      await assert.rejects(
        inn.transferIn(64),
        (e: unknown) => e instanceof UsbError && e.code === "disconnected",
      );
      await assert.rejects(
        dev.controlTransferIn({
          requestType: "standard",
          recipient: "device",
          request: 0,
          value: 0,
          index: 0,
        }, 2),
        (e: unknown) => e instanceof UsbError && e.code === "disconnected",
      );
      await dev.close();
      const after = leakSnapshot(devnode);
      assert.equal(after.deviceFds, 0, "usbfs fd leaked");
      assert.equal(after.deviceMaps, 0, "usbfs mapping leaked");
      assert.equal(after.reapers, 0, "reaper thread still running");
      assert.equal(after.eventfds, before.eventfds, "eventfd leaked");
    } finally {
      await plugGadget(lb!.name);
    }
  },
});

Deno.test({
  name:
    "usb-storage: INQUIRY, READ CAPACITY and READ(10) over Bulk-Only Transport match the disk image",
  ignore: storage === undefined,
  fn: async () => {
    await using dev = await open(
      `${storage!.vendorId.toString(16).padStart(4, "0")}:${
        storage!.productId.toString(16).padStart(4, "0")
      }`,
    );
    const iface = await dev.claimInterface(0, { detachKernelDriver: true });
    const bulkIn = iface.endpoints.find((e) =>
      e.direction === "in" && e.type === "bulk"
    )!;
    const bulkOut = iface.endpoints.find((e) =>
      e.direction === "out" && e.type === "bulk"
    )!;
    let tag = 1;
    async function scsi(cdb: number[], length: number): Promise<Uint8Array> {
      // Bulk-Only Transport 1.0, 5.1: the 31-byte Command Block Wrapper.
      const cbw = new Uint8Array(31);
      const v = new DataView(cbw.buffer);
      v.setUint32(0, 0x43425355, true); // "USBC"
      v.setUint32(4, tag, true);
      v.setUint32(8, length, true);
      cbw[12] = 0x80; // data IN
      cbw[14] = cdb.length;
      cbw.set(cdb, 15);
      await bulkOut.transferOut(cbw, { timeout: 5000 });
      const data = length > 0
        ? (await bulkIn.transferIn(length, { timeout: 5000 })).data
        : new Uint8Array(0);
      const csw = (await bulkIn.transferIn(13, { timeout: 5000 })).data;
      const cv = new DataView(csw.buffer, csw.byteOffset);
      assert.equal(cv.getUint32(0, true), 0x53425355, "CSW signature"); // "USBS"
      assert.equal(cv.getUint32(4, true), tag++, "CSW tag");
      assert.equal(csw[12], 0, "CSW status");
      return data;
    }
    const inquiry = await scsi([0x12, 0, 0, 0, 36, 0], 36);
    assert.equal(new TextDecoder().decode(inquiry.subarray(8, 12)), "QEMU");
    const cap = new DataView(
      (await scsi([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8)).buffer,
    );
    const lastLba = cap.getUint32(0), blockSize = cap.getUint32(4);
    assert.equal(blockSize, 512);
    const image = await Deno.open(storage!.image!);
    try {
      assert.equal((lastLba + 1) * blockSize, (await image.stat()).size);
      for (const lba of [0, 1, 7, lastLba]) {
        const count = lba === lastLba ? 1 : 8;
        const cdb = [
          0x28,
          0,
          lba >>> 24,
          (lba >> 16) & 0xff,
          (lba >> 8) & 0xff,
          lba & 0xff,
          0,
          0,
          count,
          0,
        ];
        const got = await scsi(cdb, count * blockSize);
        const want = new Uint8Array(count * blockSize);
        await image.seek(lba * blockSize, Deno.SeekMode.Start);
        let off = 0;
        while (off < want.length) {
          off += (await image.read(want.subarray(off))) ?? want.length;
        }
        assert.ok(
          sameBytes(got, want),
          `sectors at LBA ${lba} differ from the image`,
        );
      }
    } finally {
      image.close();
    }
  },
});
