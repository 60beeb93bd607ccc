/**
 * tshark, the reader the capture tests check usbkit's files with: the
 * fields Wireshark decodes, one object per packet.
 *
 * @module
 */

/**
 * The fields the capture tests read: URB header, setup, descriptor, data and
 * isochronous fields as Wireshark's USB dissector names them (a control OUT
 * data stage is `usb.data_fragment`, a vendor IN reply `usb.control.Response`).
 */
export const CAPTURE_FIELDS: readonly string[] = [
  "usb.urb_id",
  "usb.urb_type",
  "usb.transfer_type",
  "usb.endpoint_address",
  "usb.device_address",
  "usb.bus_id",
  "usb.urb_status",
  "usb.urb_len",
  "usb.data_len",
  "usb.bmRequestType",
  "usb.setup.bRequest",
  "usb.setup.wValue",
  "usb.setup.wIndex",
  "usb.setup.wLength",
  "usb.bDescriptorType",
  "usb.DescriptorIndex",
  "usb.idVendor",
  "usb.idProduct",
  "usb.capdata",
  "usb.data_fragment",
  "usb.control.Response",
  "usb.iso.numdesc",
  "usb.iso.error_count",
  "usb.iso.iso_status",
  "usb.iso.iso_off",
  "usb.iso.iso_len",
  "usb.iso.data",
  "usb.transfer_flags.zero_packet",
];

/** Where tshark is, or null (the bench setup installs Debian's `tshark`). */
export function tsharkPath(): string | null {
  for (const p of ["/usr/bin/tshark", "/usr/local/bin/tshark"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not there
    }
  }
  return null;
}

/**
 * Runs `tshark -r path -T fields` for `fields`; each packet becomes an
 * object of field name to value (`""` when absent, values of repeated
 * fields joined with `,`). Throws with tshark's stderr when it fails.
 */
export async function tsharkFields(
  path: string,
  fields: readonly string[],
): Promise<Record<string, string>[]> {
  const tshark = tsharkPath();
  if (tshark === null) throw new Error("tshark is not installed");
  const args = ["-r", path, "-T", "fields", "-E", "separator=/t"];
  args.push("-E", "occurrence=a", "-E", "aggregator=,");
  for (const f of fields) args.push("-e", f);
  const out = await new Deno.Command(tshark, {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { HOME: Deno.env.get("HOME") ?? "/tmp" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `tshark failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return text.split("\n").filter((l) => l !== "").map((line) => {
    const cols = line.split("\t");
    const row: Record<string, string> = {};
    fields.forEach((f, i) => (row[f] = cols[i] ?? ""));
    return row;
  });
}

/** Bytes as tshark prints a bytes field: lowercase hex, no separator. */
export function hexOf(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
