// Data helpers shared by the device tests: the SourceSink pattern, random
// data, and a byte comparison.

/** The SourceSink pattern (f_sourcesink.c, pattern=1): (i % maxpacket) % 63. */
export function pattern(
  length: number,
  maxPacket: number,
  start = 0,
): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((start + i) % maxPacket) % 63;
  return out;
}

/** Random bytes; crypto.getRandomValues fills at most 64 KiB per call. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, off + 65536));
  }
  return out;
}

/** True when both hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * This process's open files (each fd's link target, "" if it closed while
 * read) and threads (each one's name), for the leak checks.
 */
export function processHandles(): { fds: string[]; threads: string[] } {
  const fds = [...Deno.readDirSync("/proc/self/fd")].map((e) => {
    try {
      return Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      return "";
    }
  });
  const threads = [...Deno.readDirSync("/proc/self/task")].map((t) => {
    try {
      return Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim();
    } catch {
      return "";
    }
  });
  return { fds, threads };
}
