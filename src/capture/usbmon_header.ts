/**
 * The 64-byte usbmon event header, as the kernel's binary interface hands
 * it out (drivers/usb/mon/mon_bin.c, `struct mon_bin_hdr`, API 1) and as
 * pcap files of link type 220, LINKTYPE_USB_LINUX_MMAPPED, store it before
 * each event's data (libpcap's pcap/usb.h, `pcap_usb_header_mmapped`).
 * Fields are in the byte order of the machine that captured: little-endian
 * here, and the file's header says so.
 *
 * After the header come `ndesc` isochronous descriptors of 16 bytes
 * (`struct mon_bin_isodesc`: status, offset, length, padding), then the
 * data. `len_cap` counts the descriptors and the data.
 *
 * @module
 */

/**
 * Byte offsets of the header's fields (`struct mon_bin_hdr`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UsbmonField, USBMON_HEADER_BYTES } from "./usbmon_header.ts";
 * assert.equal(UsbmonField.ndesc + 4, USBMON_HEADER_BYTES);
 * ```
 */
export const UsbmonField = {
  /** u64: the URB's id, the same in its submit and its completion. */
  id: 0,
  /** u8: `'S'` submit, `'C'` complete, `'E'` submission error. */
  type: 8,
  /** u8: 0 iso, 1 interrupt, 2 control, 3 bulk. */
  xferType: 9,
  /** u8: endpoint number, 0x80 for IN (control too). */
  epnum: 10,
  /** u8: device address. */
  devnum: 11,
  /** u16: bus number. */
  busnum: 12,
  /** char: 0 when `setup` holds a setup packet, else `'-'`. */
  flagSetup: 14,
  /** char: 0 when data follows, else why not (`'<'`, `'>'`, `'Z'`...). */
  flagData: 15,
  /** s64: seconds (real time). */
  tsSec: 16,
  /** s32: microseconds. */
  tsUsec: 24,
  /** s32: -EINPROGRESS at submit, the URB status at completion. */
  status: 28,
  /** u32: bytes asked for (submit) or moved (completion). */
  lenUrb: 32,
  /** u32: bytes that follow the header (descriptors and data). */
  lenCap: 36,
  /** 8 bytes: the setup packet; for iso, error_count (s32) and numdesc (s32). */
  setup: 40,
  /** s32: polling interval of interrupt and iso endpoints. */
  interval: 48,
  /** s32: iso start frame. */
  startFrame: 52,
  /** u32: the kernel's URB transfer_flags. */
  xferFlags: 56,
  /** u32: iso descriptors that follow the header. */
  ndesc: 60,
} as const;

/**
 * Bytes of the header (PKT_SZ_API1 in mon_bin.c).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBMON_HEADER_BYTES } from "./usbmon_header.ts";
 * assert.equal(USBMON_HEADER_BYTES, 64);
 * ```
 */
export const USBMON_HEADER_BYTES = 64;

/**
 * Bytes of one iso descriptor after the header (`struct mon_bin_isodesc`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBMON_ISODESC_BYTES } from "./usbmon_header.ts";
 * assert.equal(USBMON_ISODESC_BYTES, 16);
 * ```
 */
export const USBMON_ISODESC_BYTES = 16;

/**
 * The pcap link type of these records: LINKTYPE_USB_LINUX_MMAPPED
 * (tcpdump.org link-layer header types).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LINKTYPE_USB_LINUX_MMAPPED } from "./usbmon_header.ts";
 * assert.equal(LINKTYPE_USB_LINUX_MMAPPED, 220);
 * ```
 */
export const LINKTYPE_USB_LINUX_MMAPPED = 220;

/**
 * The status a submit event carries: -EINPROGRESS (mon_bin_submit).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STATUS_IN_PROGRESS } from "./usbmon_header.ts";
 * assert.equal(STATUS_IN_PROGRESS, -115);
 * ```
 */
export const STATUS_IN_PROGRESS = -115;

/**
 * The kernel's URB transfer_flags usbmon shows (include/linux/usb.h).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KernelUrbFlag } from "./usbmon_header.ts";
 * assert.equal(KernelUrbFlag.dirIn, 0x200);
 * ```
 */
export const KernelUrbFlag = {
  /** URB_SHORT_NOT_OK */
  shortNotOk: 0x1,
  /** URB_ISO_ASAP */
  isoAsap: 0x2,
  /** URB_ZERO_PACKET */
  zeroPacket: 0x40,
  /** URB_NO_INTERRUPT */
  noInterrupt: 0x80,
  /** URB_DIR_IN */
  dirIn: 0x200,
} as const;

/**
 * One iso packet descriptor of an event.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { UsbmonIsoDescriptor } from "./usbmon_header.ts";
 * const d: UsbmonIsoDescriptor = { status: 0, offset: 192, length: 96 };
 * assert.equal(d.offset, 192);
 * ```
 */
export interface UsbmonIsoDescriptor {
  /** 0 or a negative errno. */
  status: number;
  /** Offset of the packet in the URB's buffer. */
  offset: number;
  /** Length asked for (submit) or received (completion). */
  length: number;
}

/**
 * One usbmon event, decoded: the header, the iso descriptors and the data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { UsbmonEvent } from "./usbmon_header.ts";
 * const stalled = (e: UsbmonEvent) => e.type === "C" && e.status === -32;
 * assert.equal(typeof stalled, "function");
 * ```
 */
export interface UsbmonEvent {
  /** The URB id (a number: ids past 2⁵³ lose their low bits). */
  id: number;
  /** `"S"`, `"C"` or `"E"`. */
  type: string;
  /** 0 iso, 1 interrupt, 2 control, 3 bulk. */
  xferType: number;
  /** Endpoint number with 0x80 for IN. */
  epnum: number;
  /** Device address. */
  devnum: number;
  /** Bus number. */
  busnum: number;
  /** The setup packet (control submits), else null. */
  setup: Uint8Array | null;
  /** The data flag: 0 when data follows, else a character code. */
  flagData: number;
  /** Seconds. */
  tsSec: number;
  /** Microseconds. */
  tsUsec: number;
  /** -EINPROGRESS for a submit, else the URB status. */
  status: number;
  /** `len_urb`. */
  length: number;
  /** `len_cap`: descriptors and data that follow. */
  captured: number;
  /** Iso: error_count. */
  errorCount: number;
  /** Iso: number_of_packets. */
  numdesc: number;
  /** Interval. */
  interval: number;
  /** Iso start frame. */
  startFrame: number;
  /** The kernel's transfer_flags. */
  xferFlags: number;
  /** The iso descriptors. */
  iso: UsbmonIsoDescriptor[];
  /** The data after the descriptors. */
  data: Uint8Array;
}

/**
 * Decodes one event: the 64-byte header at the start of `bytes`, then what
 * follows it (cut at the end of `bytes`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeUsbmonEvent, UsbmonField } from "./usbmon_header.ts";
 * const b = new Uint8Array(64 + 2);
 * const v = new DataView(b.buffer);
 * b[UsbmonField.type] = 0x43; // 'C'
 * b[UsbmonField.xferType] = 3;
 * b[UsbmonField.epnum] = 0x81;
 * v.setUint32(UsbmonField.lenUrb, 2, true);
 * v.setUint32(UsbmonField.lenCap, 2, true);
 * b.set([7, 9], 64);
 * const e = decodeUsbmonEvent(b);
 * assert.equal(e.type, "C");
 * assert.deepEqual([...e.data], [7, 9]);
 * ```
 */
export function decodeUsbmonEvent(bytes: Uint8Array): UsbmonEvent {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const F = UsbmonField;
  const ndesc = v.getUint32(F.ndesc, true);
  const iso: UsbmonIsoDescriptor[] = [];
  let at = USBMON_HEADER_BYTES;
  for (let i = 0; i < ndesc && at + 16 <= bytes.length; i++, at += 16) {
    iso.push({
      status: v.getInt32(at, true),
      offset: v.getUint32(at + 4, true),
      length: v.getUint32(at + 8, true),
    });
  }
  const captured = v.getUint32(F.lenCap, true);
  const end = Math.min(bytes.length, USBMON_HEADER_BYTES + captured);
  const xferType = bytes[F.xferType]!;
  const type = String.fromCharCode(bytes[F.type]!);
  return {
    id: v.getUint32(F.id, true) + v.getUint32(F.id + 4, true) * 2 ** 32,
    type,
    xferType,
    epnum: bytes[F.epnum]!,
    devnum: bytes[F.devnum]!,
    busnum: v.getUint16(F.busnum, true),
    setup: bytes[F.flagSetup] === 0 ? bytes.slice(F.setup, F.setup + 8) : null,
    flagData: bytes[F.flagData]!,
    tsSec: Number(v.getBigInt64(F.tsSec, true)),
    tsUsec: v.getInt32(F.tsUsec, true),
    status: v.getInt32(F.status, true),
    length: v.getUint32(F.lenUrb, true),
    captured,
    errorCount: xferType === 0 ? v.getInt32(F.setup, true) : 0,
    numdesc: xferType === 0 ? v.getInt32(F.setup + 4, true) : 0,
    interval: v.getInt32(F.interval, true),
    startFrame: v.getInt32(F.startFrame, true),
    xferFlags: v.getUint32(F.xferFlags, true),
    iso,
    data: bytes.slice(Math.min(at, end), end),
  };
}
