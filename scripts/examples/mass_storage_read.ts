/**
 * Reads sectors from a USB mass-storage device over Bulk-Only Transport with
 * SCSI INQUIRY, READ CAPACITY(10) and READ(10), and prints a hex dump.
 *
 *     deno task vm --storage -- deno run -A scripts/examples/mass_storage_read.ts 46f4:0001 --lba 0 --count 1
 *
 * The interface's kernel driver (usb-storage), if bound, is detached for the
 * session and re-attached on exit.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Endpoint, open, UsbError } from "../../mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    lba: { type: "string", default: "0" },
    count: { type: "string", default: "1" },
  },
});

let tag = 1;
/** One SCSI command: CBW out, data in, CSW in (USB Mass Storage Bulk-Only Transport 1.0, 5). */
async function scsi(
  out: Endpoint,
  inn: Endpoint,
  cdb: number[],
  length: number,
): Promise<Uint8Array> {
  const cbw = new Uint8Array(31);
  const v = new DataView(cbw.buffer);
  v.setUint32(0, 0x43425355, true); // dCBWSignature "USBC"
  v.setUint32(4, tag, true);
  v.setUint32(8, length, true);
  cbw[12] = 0x80; // bmCBWFlags: data IN
  cbw[14] = cdb.length;
  cbw.set(cdb, 15);
  await out.transferOut(cbw, { timeout: 5000 });
  const data = length > 0
    ? (await inn.transferIn(length, { timeout: 5000 })).data
    : new Uint8Array();
  const csw = (await inn.transferIn(13, { timeout: 5000 })).data;
  const c = new DataView(csw.buffer, csw.byteOffset);
  if (c.getUint32(0, true) !== 0x53425355 || c.getUint32(4, true) !== tag++) {
    throw new Error("bad CSW");
  }
  if (csw[12] !== 0) {
    throw new Error(
      `SCSI command 0x${cdb[0]!.toString(16)} failed: CSW status ${csw[12]}`,
    );
  }
  return data;
}

function hexdump(data: Uint8Array, base: number): string {
  const lines: string[] = [];
  for (let off = 0; off < data.length; off += 16) {
    const row = data.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...row].map((
      b,
    ) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(
      `${(base + off).toString(16).padStart(8, "0")}  ${
        hex.padEnd(47)
      }  ${ascii}`,
    );
  }
  return lines.join("\n");
}

try {
  await using dev = await open(positionals[0] ?? "46f4:0001");
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  const out = iface.endpoints.find((e) =>
    e.direction === "out" && e.type === "bulk"
  )!;
  const inn = iface.endpoints.find((e) =>
    e.direction === "in" && e.type === "bulk"
  )!;
  const inquiry = await scsi(out, inn, [0x12, 0, 0, 0, 36, 0], 36);
  const text = (a: number, b: number) =>
    new TextDecoder().decode(inquiry.subarray(a, b)).trim();
  console.log(
    `INQUIRY: vendor "${text(8, 16)}", product "${text(16, 32)}", revision "${
      text(32, 36)
    }"`,
  );
  const cap = new DataView(
    (await scsi(out, inn, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8)).buffer,
  );
  const last = cap.getUint32(0), block = cap.getUint32(4);
  console.log(
    `READ CAPACITY: ${last + 1} blocks of ${block} bytes (${
      ((last + 1) * block / 1048576).toFixed(1)
    } MiB)`,
  );
  const lba = Number(values.lba), count = Number(values.count);
  const cdb = [
    0x28,
    0,
    lba >>> 24,
    (lba >> 16) & 0xff,
    (lba >> 8) & 0xff,
    lba & 0xff,
    0,
    count >> 8,
    count & 0xff,
    0,
  ];
  const data = await scsi(out, inn, cdb, count * block);
  console.log(`READ(10) LBA ${lba}, ${count} block(s):`);
  console.log(hexdump(data, lba * block));
} catch (e) {
  if (e instanceof UsbError) {
    console.error(e.describe());
    Deno.exit(1);
  }
  throw e;
}
