/**
 * A writer for the "newc" cpio format, the one the kernel unpacks as an
 * initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * @module
 */

/**
 * One member of the archive.
 *
 * @example
 * ```ts
 * import type { CpioEntry } from "./cpio.ts";
 * const e: CpioEntry[] = [
 *   { type: "dir", path: "bin" },
 *   { type: "symlink", path: "bin/sh", target: "busybox" },
 * ];
 * ```
 */
export type CpioEntry =
  | {
    /** Directory. */
    type: "dir";
    /** Path without leading slash. */
    path: string;
    /** Permission bits. Default 0o755. */
    mode?: number;
  }
  | {
    /** Regular file. */
    type: "file";
    /** Path without leading slash. */
    path: string;
    /** Content. */
    data: Uint8Array;
    /** Permission bits. Default 0o644. */
    mode?: number;
  }
  | {
    /** Symbolic link. */
    type: "symlink";
    /** Path without leading slash. */
    path: string;
    /** Link target. */
    target: string;
  }
  | {
    /** Character device node. */
    type: "char";
    /** Path without leading slash. */
    path: string;
    /** Device major number. */
    major: number;
    /** Device minor number. */
    minor: number;
    /** Permission bits. Default 0o600. */
    mode?: number;
  };

// File type bits of st_mode (include/uapi/linux/stat.h).
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const enc = new TextEncoder();

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/**
 * Serialises entries as a newc archive, with the `TRAILER!!!` end marker.
 * All members belong to root, with mtime 0 (reproducible output). Parent
 * directories must be listed before their contents.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeCpio } from "./cpio.ts";
 * const a = writeCpio([
 *   { type: "dir", path: "bin" },
 *   { type: "file", path: "init", data: new TextEncoder().encode("#!/bin/sh\n"), mode: 0o755 },
 * ]);
 * assert.ok(new TextDecoder().decode(a.subarray(0, 6)) === "070701");
 * assert.ok(a.length % 4 === 0);
 * ```
 */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
  };
  let ino = 1;
  const member = (
    name: string,
    mode: number,
    data: Uint8Array,
    rdev: [number, number] = [0, 0],
  ) => {
    const nameBytes = enc.encode(name + "\0");
    const header = "070701" + [
      ino++,
      mode,
      0, // uid
      0, // gid
      (mode & S_IFDIR) === S_IFDIR ? 2 : 1, // nlink
      0, // mtime
      data.length,
      0, // devmajor
      0, // devminor
      rdev[0],
      rdev[1],
      nameBytes.length,
      0, // check
    ].map(hex8).join("");
    push(enc.encode(header));
    push(nameBytes);
    push(new Uint8Array(pad4(110 + nameBytes.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, "");
    switch (e.type) {
      case "dir":
        member(path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array());
        break;
      case "file":
        member(path, S_IFREG | (e.mode ?? 0o644), e.data);
        break;
      case "symlink":
        member(path, S_IFLNK | 0o777, enc.encode(e.target));
        break;
      case "char":
        member(path, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(), [
          e.major,
          e.minor,
        ]);
        break;
    }
  }
  member("TRAILER!!!", 0, new Uint8Array());
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
