/**
 * Finding the compressed kernel inside an x86 bzImage, so the host can hand
 * QEMU an uncompressed ELF `vmlinux` (BENCH-NOTES: booting the ELF directly
 * saves about 3 s of in-guest decompression under TCG).
 *
 * @module
 */

/**
 * Compression formats the kernel build can use for the bzImage payload.
 *
 * @example
 * ```ts
 * import type { PayloadFormat } from "./bzimage.ts";
 * const f: PayloadFormat = "zstd";
 * ```
 */
export type PayloadFormat =
  | "gzip"
  | "xz"
  | "zstd"
  | "lzma"
  | "bzip2"
  | "lzo"
  | "lz4";

/**
 * Where the compressed kernel is in a bzImage.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KernelPayload } from "./bzimage.ts";
 * import { findKernelPayload } from "./bzimage.ts";
 * const img = new Uint8Array(16);
 * img.set([0x1f, 0x8b, 0x08], 4);
 * const p: KernelPayload = findKernelPayload(img);
 * assert.ok(p.format === "gzip");
 * ```
 */
export interface KernelPayload {
  /** Byte offset of the compressed stream in the file. */
  offset: number;
  /** Length of the compressed stream, without the size trailer. */
  length: number;
  /** Compression format, from the stream's magic bytes. */
  format: PayloadFormat;
  /**
   * Uncompressed size from the 4-byte little-endian trailer the kernel build
   * appends (scripts/Makefile.lib `size_append`), when the format has one.
   */
  uncompressedSize: number | null;
}

/**
 * Magic bytes of each format, as scripts/extract-vmlinux looks for them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PAYLOAD_MAGIC } from "./bzimage.ts";
 * assert.ok(PAYLOAD_MAGIC.xz[0] === 0xfd);
 * ```
 */
export const PAYLOAD_MAGIC: Readonly<Record<PayloadFormat, readonly number[]>> =
  {
    gzip: [0x1f, 0x8b, 0x08],
    xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    zstd: [0x28, 0xb5, 0x2f, 0xfd],
    lzma: [0x5d, 0x00, 0x00, 0x00],
    bzip2: [0x42, 0x5a, 0x68],
    lzo: [0x89, 0x4c, 0x5a],
    lz4: [0x02, 0x21, 0x4c, 0x18],
  };

function startsWithAt(data: Uint8Array, at: number, magic: readonly number[]) {
  if (at < 0 || at + magic.length > data.length) return false;
  return magic.every((b, i) => data[at + i] === b);
}

function formatAt(data: Uint8Array, at: number): PayloadFormat | null {
  for (const [f, m] of Object.entries(PAYLOAD_MAGIC)) {
    if (startsWithAt(data, at, m)) return f as PayloadFormat;
  }
  return null;
}

/**
 * Locates the compressed kernel in a bzImage.
 *
 * First from the boot protocol header (Documentation/x86/boot.rst): "HdrS"
 * at 0x202, `setup_sects` at 0x1f1 (0 means 4), and for protocol 2.08+
 * `payload_offset` at 0x248 and `payload_length` at 0x24c, relative to the
 * protected-mode code at `(setup_sects + 1) * 512`. If that header is absent
 * or does not point at a known magic, the first known magic in the file is
 * used, as scripts/extract-vmlinux does (then `length` runs to the end of the
 * file, and the decompressor must tolerate trailing bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findKernelPayload } from "./bzimage.ts";
 * // A fake image: just some bytes, then an xz magic.
 * const img = new Uint8Array(64);
 * img.set([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 20);
 * const p = findKernelPayload(img);
 * assert.ok(p.format === "xz" && p.offset === 20);
 * ```
 */
export function findKernelPayload(image: Uint8Array): KernelPayload {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const hasHeader = image.length > 0x250 &&
    startsWithAt(image, 0x202, [0x48, 0x64, 0x72, 0x53]); // "HdrS"
  if (hasHeader && view.getUint16(0x206, true) >= 0x0208) {
    const setupSects = image[0x1f1] || 4;
    const base = (setupSects + 1) * 512;
    const offset = base + view.getUint32(0x248, true);
    const total = view.getUint32(0x24c, true);
    const format = formatAt(image, offset);
    if (format !== null && offset + total <= image.length) {
      // gzip carries its own size (ISIZE); the others get size_append.
      const trailer = format !== "gzip" && total >= 4;
      return {
        offset,
        length: trailer ? total - 4 : total,
        format,
        uncompressedSize: trailer
          ? view.getUint32(offset + total - 4, true)
          : null,
      };
    }
  }
  let best: { offset: number; format: PayloadFormat } | null = null;
  for (const [f, m] of Object.entries(PAYLOAD_MAGIC)) {
    const at = indexOf(image, m);
    if (at >= 0 && (best === null || at < best.offset)) {
      best = { offset: at, format: f as PayloadFormat };
    }
  }
  if (best === null) {
    throw new Error("no compressed kernel found in the image (unknown format)");
  }
  return {
    offset: best.offset,
    length: image.length - best.offset,
    format: best.format,
    uncompressedSize: null,
  };
}

function indexOf(data: Uint8Array, magic: readonly number[]): number {
  const first = magic[0];
  if (first === undefined) return -1;
  for (let i = data.indexOf(first); i >= 0; i = data.indexOf(first, i + 1)) {
    if (startsWithAt(data, i, magic)) return i;
  }
  return -1;
}

/**
 * Command line that decompresses `format` from stdin to stdout, or null if
 * unsupported. `--single-stream` lets xz ignore the size trailer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decompressCommand } from "./bzimage.ts";
 * assert.ok(decompressCommand("xz")?.[0] === "xz");
 * ```
 */
export function decompressCommand(format: PayloadFormat): string[] | null {
  switch (format) {
    case "xz":
      return ["xz", "-dc", "--single-stream"];
    case "zstd":
      return ["zstd", "-dcq"];
    case "gzip":
      return ["gzip", "-dc"];
    case "lzma":
      return ["xz", "-dc", "--format=lzma"];
    case "bzip2":
      return ["bzip2", "-dc"];
    case "lz4":
      return ["lz4", "-dc"];
    case "lzo":
      return ["lzop", "-dc"];
  }
}

/**
 * Checks that `data` starts like an x86-64 ELF executable (what QEMU's
 * `-kernel` loads through the PVH entry note).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isElf64 } from "./bzimage.ts";
 * assert.ok(!isElf64(new Uint8Array(64)));
 * ```
 */
export function isElf64(data: Uint8Array): boolean {
  return data.length >= 64 && startsWithAt(data, 0, [0x7f, 0x45, 0x4c, 0x46]) &&
    data[4] === 2; // EI_CLASS = ELFCLASS64
}

/**
 * Whether an ELF file is statically linked: it has no PT_INTERP program
 * header (ELF spec, program header type 3). Used to check /bin/busybox.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isStaticElf } from "./bzimage.ts";
 * assert.ok(!isStaticElf(new Uint8Array(10)));
 * ```
 */
export function isStaticElf(data: Uint8Array): boolean {
  if (!isElf64(data)) return false;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > data.length) return false;
    if (v.getUint32(at, true) === 3) return false; // PT_INTERP
  }
  return true;
}
