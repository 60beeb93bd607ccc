/**
 * Booting a bench and running one command inside it: {@link runInGuest}.
 *
 * The guest's stdout and stderr stream back separately as they come (two
 * virtio-serial ports), its exit status becomes the result, its serial
 * console goes to a log that is kept and quoted when something fails.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import {
  type Bench,
  BENCH_INFO_PATH,
  resolveBench,
  type ResolvedBench,
  STORAGE_SECTOR_SIZE,
  storageSector,
} from "./bench.ts";
import { EofScanner } from "./eof.ts";
import {
  benchInfoTemplate,
  benchModules,
  keepPaths,
  renderBenchScript,
  withDevices,
  withVhci,
} from "./plan.ts";
import { kernelCmdline, qemuArgs, type QemuSockets } from "./qemu.ts";
import {
  ensureKernel,
  guestModulePath,
  type KernelArtifacts,
} from "./setup.ts";
import { atomicWrite, cacheDir, exists, projectRoot } from "./util.ts";

/**
 * Where guest output goes: the host's own stream, a buffer returned in the
 * result, nowhere, or a function called with each chunk as it arrives.
 *
 * @example
 * ```ts
 * import type { OutputSink } from "./run.ts";
 * const lines: string[] = [];
 * const sink: OutputSink = (chunk) => {
 *   lines.push(new TextDecoder().decode(chunk));
 * };
 * ```
 */
export type OutputSink =
  | "inherit"
  | "piped"
  | "null"
  | ((chunk: Uint8Array) => void | Promise<void>);

/**
 * Options of {@link runInGuest}.
 *
 * @example
 * ```ts
 * import type { RunInGuestOptions } from "./run.ts";
 * const o: RunInGuestOptions = { timeoutSec: 120, stdout: "piped", env: { RUST_LOG: "debug" } };
 * ```
 */
export interface RunInGuestOptions {
  /** Kill the guest after this many seconds (default: the bench's, else 600). */
  timeoutSec?: number;
  /** Destination of the command's stdout. Default `"inherit"`. */
  stdout?: OutputSink;
  /** Destination of the command's stderr. Default `"inherit"`. */
  stderr?: OutputSink;
  /** Show the kernel console live on stderr (and boot with a verbose kernel). */
  console?: boolean;
  /** Print boot stages with guest timestamps on stderr. */
  verbose?: boolean;
  /** Print nothing of our own on stderr (setup progress, failure reports). */
  quiet?: boolean;
  /** Working directory in the guest. Default: the host's (INIT_CWD, then cwd), else the project. */
  cwd?: string;
  /** Extra environment for the command. */
  env?: Record<string, string>;
  /** Aborting kills the guest. */
  signal?: AbortSignal;
  /** Bound on waiting for devices to enumerate, seconds. Default 60. */
  enumTimeoutSec?: number;
  /**
   * Device modules written in TypeScript (a default export that
   * `defineDevice` takes, or an `EmulatedDevice`) to plug in before the
   * command runs and unplug after: `usb serve` attaches them to vhci_hcd
   * (loaded for them), loads the kernel drivers they ask for, and runs the
   * command (see {@linkcode withDevices}). Relative paths are relative to
   * the current directory. Check them on the host first with
   * `checkDevices` (kernel/prepare.ts): a mistake then costs no boot.
   */
  devices?: readonly string[];
  /** Kill the guest on SIGINT/SIGTERM while it runs. Default true. */
  handleSignals?: boolean;
  /**
   * The host DENO_DIR the guest's is overlaid on (copy-on-write, writes stay
   * in the guest), or false for an empty one. Default: the host's own
   * (`DENO_DIR`, else `$XDG_CACHE_HOME/deno`, else `$HOME/.cache/deno`).
   */
  hostDenoDir?: string | false;
}

/**
 * Why a run did not produce the command's own exit status.
 *
 * @example
 * ```ts
 * import type { GuestFailure } from "./run.ts";
 * function explain(f: GuestFailure): string {
 *   return `${f.kind}: ${f.message}\n${f.consoleTail.join("\n")}`;
 * }
 * ```
 */
export interface GuestFailure {
  /**
   * - `timeout`: killed for hanging;
   * - `panic`: the kernel panicked;
   * - `boot`: the guest stopped before the command started;
   * - `bench`: the init could not build the bench (a gadget, a module, a
   *   device that did not enumerate);
   * - `crash`: the guest stopped while the command ran;
   * - `qemu`: QEMU itself failed;
   * - `interrupted`: Ctrl-C or the abort signal.
   */
  kind:
    | "timeout"
    | "panic"
    | "boot"
    | "bench"
    | "crash"
    | "qemu"
    | "interrupted";
  /** One-line explanation. */
  message: string;
  /** Last lines of the guest console. */
  consoleTail: string[];
}

/**
 * Result of {@link runInGuest}.
 *
 * @example
 * ```ts
 * import type { GuestResult } from "./run.ts";
 * function summary(r: GuestResult): string {
 *   return r.failure ? r.failure.message : `exit ${r.code} after ${r.timings.totalMs} ms`;
 * }
 * ```
 */
export interface GuestResult {
  /** The command's exit status, or {@link EXIT_TIMEOUT} / {@link EXIT_VM_FAILURE} / 130. */
  code: number;
  /** `code === 0`. */
  success: boolean;
  /** Captured stdout when the sink was `"piped"` (else empty). */
  stdout: Uint8Array;
  /** Captured stderr when the sink was `"piped"` (else empty). */
  stderr: Uint8Array;
  /** Set when the command did not finish normally. */
  failure: GuestFailure | null;
  /** Console log kept on failure (path on the host), else null. */
  consoleLog: string | null;
  /** Milliseconds spent in each phase. */
  timings: {
    /** Host setup: kernel cache check, images, plan. */
    setupMs: number;
    /** QEMU start until the command started (boot + bench). */
    bootMs: number;
    /** Command start to its exit. */
    commandMs: number;
    /** Everything. */
    totalMs: number;
  };
}

/**
 * Exit status when the guest was killed for hanging (as coreutils `timeout`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXIT_TIMEOUT } from "./run.ts";
 * assert.ok(EXIT_TIMEOUT === 124);
 * ```
 */
export const EXIT_TIMEOUT = 124;

/**
 * Exit status when the VM failed (boot failure, panic, bench setup failure,
 * QEMU error), as distinct from any status of the command.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXIT_VM_FAILURE } from "./run.ts";
 * assert.ok(EXIT_VM_FAILURE === 125);
 * ```
 */
export const EXIT_VM_FAILURE = 125;

const CONSOLE_TAIL = 30;

/**
 * Makes sure the default storage image exists: `.cache/bench/storage-<N>m.img`,
 * each sector following {@link storageSector}. Written atomically, reused.
 *
 * @example
 * ```ts ignore
 * // Writes a 16 MiB image into the project's .cache/bench: runInGuest makes it for
 * // fullBench's usb-storage, which `deno task test` boots.
 * import { ensureStorageImage } from "./run.ts";
 * const path = await ensureStorageImage(16 * 1024 * 1024);
 * ```
 */
export async function ensureStorageImage(sizeBytes: number): Promise<string> {
  if (sizeBytes % STORAGE_SECTOR_SIZE !== 0 || sizeBytes <= 0) {
    throw new Error(
      `storage size ${sizeBytes} is not a positive number of sectors`,
    );
  }
  const path = cacheDir("bench", `storage-${sizeBytes / 1048576}m-v1.img`);
  if (await exists(path)) return path;
  await Deno.mkdir(dirname(path), { recursive: true });
  const img = new Uint8Array(sizeBytes);
  for (let lba = 0; lba < sizeBytes / STORAGE_SECTOR_SIZE; lba++) {
    img.set(storageSector(lba), lba * STORAGE_SECTOR_SIZE);
  }
  await atomicWrite(path, img);
  return path;
}

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/");
}

/**
 * The guest working directory when none is given: the directory the user
 * ran from (`INIT_CWD`, set by `deno task`, else the cwd) if it is in the
 * project or outside the directories the guest covers with tmpfs; else the
 * project.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultGuestCwd } from "./run.ts";
 * assert.ok(defaultGuestCwd("/p", "/p/sub") === "/p/sub");
 * assert.ok(defaultGuestCwd("/p", "/tmp/x") === "/p");
 * ```
 */
export function defaultGuestCwd(project: string, hostCwd: string): string {
  if (isUnder(hostCwd, project)) return hostCwd;
  if (["/tmp", "/run", "/root"].some((h) => isUnder(hostCwd, h))) {
    return project;
  }
  return hostCwd;
}

/**
 * The command's environment in the guest: nothing is inherited from the host
 * but the language, and the terminal type when the output goes to one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guestEnv } from "./run.ts";
 * const env = guestEnv("/opt/deno", false, {});
 * assert.ok(env.PATH?.startsWith("/opt/deno:") && env.NO_COLOR === "1");
 * ```
 */
export function guestEnv(
  denoDir: string,
  colorTty: boolean,
  extra: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH:
      `${denoDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: "/root",
    USER: "root",
    LOGNAME: "root",
    LANG: Deno.env.get("LANG") ?? "C.UTF-8",
    TERM: colorTty ? (Deno.env.get("TERM") ?? "xterm-256color") : "dumb",
    USBKIT_GUEST: "1",
    USBKIT_BENCH: BENCH_INFO_PATH,
    // An empty DENO_DIR on tmpfs works with the project's node_modules
    // (BENCH-NOTES); the guest has no network to fill it anyway.
    DENO_DIR: "/root/.cache/deno",
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
  };
  // deno colours its output whenever NO_COLOR is unset, tty or not.
  if (!colorTty) env.NO_COLOR = "1";
  return { ...env, ...extra };
}

/**
 * The host's DENO_DIR, as deno itself finds it on Linux (`DENO_DIR`, else
 * `$XDG_CACHE_HOME/deno`, else `$HOME/.cache/deno`), if it exists and can be
 * an overlay lower directory (no `,` or `:` in the path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostDenoDir } from "./run.ts";
 * const d = hostDenoDir();
 * assert.ok(d === null || d.endsWith("deno") || d === Deno.env.get("DENO_DIR"));
 * ```
 */
export function hostDenoDir(): string | null {
  const env = (k: string) => Deno.env.get(k);
  const home = env("HOME");
  const dir = env("DENO_DIR") ??
    (env("XDG_CACHE_HOME") ? `${env("XDG_CACHE_HOME")}/deno` : null) ??
    (home ? `${home}/.cache/deno` : null);
  if (dir === null || !dir.startsWith("/") || /[,:\s]/.test(dir)) return null;
  try {
    return Deno.statSync(dir).isDirectory ? dir : null;
  } catch {
    return null;
  }
}

/** Something with Deno's `write` (Deno.stdout, Deno.stderr). */
interface ByteWriter {
  write(p: Uint8Array): Promise<number>;
}

class Sink {
  #kind: OutputSink;
  #file: ByteWriter;
  #chunks: Uint8Array[] = [];
  #broken = false;
  constructor(kind: OutputSink, file: ByteWriter) {
    this.#kind = kind;
    this.#file = file;
  }
  async write(b: Uint8Array): Promise<void> {
    if (b.length === 0) return;
    const k = this.#kind;
    if (k === "null") return;
    if (k === "piped") {
      this.#chunks.push(b.slice());
      return;
    }
    if (typeof k === "function") {
      await k(b);
      return;
    }
    if (this.#broken) return;
    try {
      let off = 0;
      while (off < b.length) off += await this.#file.write(b.subarray(off));
    } catch {
      this.#broken = true; // e.g. `| head` closed the pipe: keep draining
    }
  }
  collected(): Uint8Array {
    const n = this.#chunks.reduce((s, c) => s + c.length, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Waits for `p`, at most `ms` milliseconds; the timer is cleared either way so
 * that no timer outlives the run (Deno's test sanitizers flag those).
 */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms))),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/**
 * Boots `bench` and runs `argv` inside it, in a chroot of the host's root,
 * with the project read-write at its own path. Resolves when the command has
 * exited (or the guest failed); never rejects for guest-side failures: see
 * `failure` and `code` ({@link EXIT_TIMEOUT}, {@link EXIT_VM_FAILURE}, 130
 * when interrupted). Setup errors on the host (packages, download) reject.
 *
 * @example
 * ```ts ignore
 * // Needs QEMU and the Debian kernel (downloaded once): tests/vm_test.ts runs the same
 * // command in a smaller guest.
 * import { runInGuest } from "./run.ts";
 * import { defaultBench } from "./bench.ts";
 * const r = await runInGuest(defaultBench, ["sh", "-c", "exit 7"], { timeoutSec: 120 });
 * console.log(r.code); // 7
 * ```
 */
export async function runInGuest(
  bench: Bench,
  argv: readonly string[],
  opts: RunInGuestOptions = {},
): Promise<GuestResult> {
  const t0 = performance.now();
  if (argv.length === 0) throw new Error("runInGuest: no command given");
  const say = opts.quiet
    ? () => {}
    : (m: string) => console.error(`usbkit vm: ${m}`);
  const devices = (opts.devices ?? []).map((d) => resolve(d));
  const rb = resolveBench(
    devices.length > 0
      ? { ...bench, modules: withVhci(bench.modules ?? []) }
      : bench,
  );
  const kernel = await ensureKernel({ quiet: opts.quiet ?? false });
  const project = projectRoot();
  for (const d of rb.qemuDevices) {
    if (d.kind === "storage" && d.image === undefined) {
      d.image = await ensureStorageImage(d.sizeBytes ?? 0);
    } else if (d.kind === "storage" && d.image !== undefined) {
      d.image = resolve(d.image); // the guest sees the same absolute path
      const st = await Deno.stat(d.image).catch(() => null);
      if (st === null || !st.isFile) {
        throw new Error(`storage image ${d.image} does not exist`);
      }
      d.sizeBytes = st.size;
    }
  }
  const stdoutSink = opts.stdout ?? "inherit";
  const colorTty = stdoutSink === "inherit" && Deno.stdout.isTerminal();
  const sinks = {
    out: new Sink(stdoutSink, Deno.stdout),
    err: new Sink(opts.stderr ?? "inherit", Deno.stderr),
  };
  const cwd = opts.cwd ??
    defaultGuestCwd(project, Deno.env.get("INIT_CWD") ?? Deno.cwd());
  const denoDir = dirname(Deno.execPath());
  const runDir = await Deno.makeTempDir({ prefix: "usbkit-vm-" });
  const sockets: QemuSockets = {
    console: join(runDir, "con.sock"),
    ctl: join(runDir, "ctl.sock"),
    stdout: join(runDir, "out.sock"),
    stderr: join(runDir, "err.sock"),
  };
  const consolePath = join(runDir, "console.log");
  const listeners: Deno.UnixListener[] = [];
  const conns: Deno.UnixConn[] = [];
  let child: Deno.ChildProcess | null = null;
  const removeSignals: (() => void)[] = [];
  let keepLog: string | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const plan = await makePlan(rb, kernel, project, {
      argv: withDevices(project, devices, argv),
      cwd,
      env: guestEnv(denoDir, colorTty, opts.env ?? {}),
      extraKeep: [
        denoDir,
        cwd,
        ...rb.qemuDevices.flatMap((d) => d.image ? [d.image] : []),
        // A device module may import its neighbours.
        ...devices.map((d) => dirname(d)),
        modulesRoot(kernel),
      ],
      enumTimeoutSec: opts.enumTimeoutSec ?? 60,
      hostDenoDir: opts.hostDenoDir === false
        ? null
        : (opts.hostDenoDir ?? hostDenoDir()),
    });
    await Deno.writeTextFile(join(runDir, "bench.sh"), plan.script);

    for (const p of Object.values(sockets)) {
      listeners.push(Deno.listen({ transport: "unix", path: p }));
    }
    const args = qemuArgs({
      vmlinux: kernel.vmlinux,
      initramfs: kernel.initramfs,
      cmdline: kernelCmdline(runDir, opts.console ?? false),
      memoryMiB: rb.memoryMiB,
      smp: 2,
      project,
      sockets,
      devices: rb.qemuDevices,
      runDir,
    });
    const setupMs = performance.now() - t0;
    const finish = (
      code: number,
      failure: GuestFailure | null,
      t: { bootMs: number; commandMs: number; setupMs: number } = {
        bootMs: 0,
        commandMs: 0,
        setupMs,
      },
    ): GuestResult => {
      return {
        code,
        success: code === 0,
        stdout: sinks.out.collected(),
        stderr: sinks.err.collected(),
        failure,
        consoleLog: keepLog,
        timings: { ...t, totalMs: performance.now() - t0 },
      };
    };
    const tBoot = performance.now();
    child = new Deno.Command("qemu-system-x86_64", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const proc = child;
    // QEMU's own messages (not the guest's): kept for error reports.
    const qemuOut: string[] = [];
    const collectQemu = async (s: ReadableStream<Uint8Array>) => {
      const td = new TextDecoder();
      for await (const c of s) qemuOut.push(td.decode(c, { stream: true }));
    };
    const qemuPumps = Promise.all([
      collectQemu(proc.stdout),
      collectQemu(proc.stderr),
    ]);
    let qemuExited = false;
    const status = proc.status.then((s) => {
      qemuExited = true;
      return s;
    });

    // Interruption and timeout both end in killing QEMU.
    const stop = deferred<GuestFailure["kind"]>();
    const timeoutSec = opts.timeoutSec ?? rb.timeoutSec;
    timer = setTimeout(() => stop.resolve("timeout"), timeoutSec * 1000);
    if (opts.signal) {
      if (opts.signal.aborted) stop.resolve("interrupted");
      const onAbort = () => stop.resolve("interrupted");
      opts.signal.addEventListener("abort", onAbort, { once: true });
      removeSignals.push(() =>
        opts.signal?.removeEventListener("abort", onAbort)
      );
    }
    if (opts.handleSignals ?? true) {
      for (const sig of ["SIGINT", "SIGTERM"] as const) {
        const h = () => stop.resolve("interrupted");
        Deno.addSignalListener(sig, h);
        removeSignals.push(() => Deno.removeSignalListener(sig, h));
      }
    }

    // QEMU connects to every socket while it starts.
    const accepted = Promise.all(listeners.map((l) => l.accept()));
    accepted.catch(() => {}); // rejected when we close the listeners early
    const first = await Promise.race([
      accepted.then((c) => ({ kind: "conns" as const, c })),
      status.then(() => ({ kind: "exited" as const })),
      stop.promise.then((k) => ({ kind: "stop" as const, k })),
    ]);
    if (first.kind !== "conns") {
      try {
        proc.kill("SIGKILL");
      } catch { /* already gone */ }
      await status;
      await qemuPumps;
      const failure: GuestFailure =
        first.kind === "stop" && first.k === "interrupted"
          ? {
            kind: "interrupted",
            message: "interrupted while QEMU started",
            consoleTail: [],
          }
          : {
            kind: "qemu",
            message: `QEMU failed to start: ${
              qemuOut.join("").trim() || "no message"
            }`,
            consoleTail: [],
          };
      report(say, failure, null);
      return finish(
        failure.kind === "interrupted" ? 130 : EXIT_VM_FAILURE,
        failure,
      );
    }
    for (const l of listeners) l.close();
    listeners.length = 0;
    const [conCon, ctlCon, outCon, errCon] = first.c;
    conns.push(...first.c);
    if (!conCon || !ctlCon || !outCon || !errCon) {
      throw new Error("missing socket");
    }

    // Console: to a log file, to a tail buffer, and live if asked.
    const logFile = await Deno.open(consolePath, {
      write: true,
      create: true,
      truncate: true,
    });
    const tail: string[] = [];
    let partial = "";
    const consolePump = (async () => {
      const td = new TextDecoder();
      try {
        for await (const c of conCon.readable) {
          await logFile.write(c);
          if (opts.console) await Deno.stderr.write(c).catch(() => 0);
          const text = partial + td.decode(c, { stream: true });
          const lines = text.split(/\r?\n/);
          partial = lines.pop() ?? "";
          tail.push(...lines);
          if (tail.length > 400) tail.splice(0, tail.length - 200);
        }
      } catch { /* connection reset at QEMU exit */ }
    })();
    const consoleTail = () =>
      [...tail, ...(partial ? [partial] : [])].slice(-CONSOLE_TAIL);

    // Command output with end tokens.
    const token = new TextEncoder().encode(plan.eofToken);
    const streamDone = { out: deferred<void>(), err: deferred<void>() };
    const pumpOut = async (conn: Deno.UnixConn, which: "out" | "err") => {
      const sc = new EofScanner(token);
      try {
        for await (const c of conn.readable) {
          await sinks[which].write(sc.push(c));
          if (sc.done) {
            streamDone[which].resolve();
            // keep reading (and dropping) so QEMU never blocks on this port
          }
        }
      } catch { /* reset at exit */ }
      await sinks[which].write(sc.flush());
      streamDone[which].resolve();
    };
    const outPumps = Promise.all([
      pumpOut(outCon, "out"),
      pumpOut(errCon, "err"),
    ]);

    // Control lines from the init.
    const exitMsg = deferred<{ code: number }>();
    const fatalMsg = deferred<string>();
    let tStart = 0;
    let tExit = 0;
    const ctlPump = (async () => {
      const td = new TextDecoder();
      let buf = "";
      try {
        for await (const c of ctlCon.readable) {
          buf += td.decode(c, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            const [word = "", ...rest] = line.split(" ");
            if (word === "stage") {
              if (opts.verbose) {
                say(`[guest ${rest[0]}s] ${rest.slice(1).join(" ")}`);
              }
            } else if (word === "start") {
              tStart = performance.now();
              if (opts.verbose) say(`[guest ${rest[0]}s] command started`);
            } else if (word === "fatal") {
              fatalMsg.resolve(rest.join(" "));
            } else if (word === "exit") {
              tExit = performance.now();
              if (opts.verbose) {
                say(`[guest ${rest[1]}s] command exited ${rest[0]}`);
              }
              exitMsg.resolve({ code: Number(rest[0]) });
            }
          }
        }
      } catch { /* reset at exit */ }
    })();
    const ack = async () => {
      try {
        await ctlCon.write(new TextEncoder().encode("ack\n"));
      } catch { /* guest gone */ }
    };

    const ev = await Promise.race([
      exitMsg.promise.then((v) => ({ kind: "exit" as const, code: v.code })),
      fatalMsg.promise.then((m) => ({ kind: "fatal" as const, m })),
      status.then(() => ({ kind: "exited" as const })),
      stop.promise.then((k) => ({ kind: "stop" as const, k })),
    ]);
    let code: number;
    let failure: GuestFailure | null = null;
    if (ev.kind === "exit") {
      // All output is in once both tokens have arrived; then let the guest go.
      await within(
        Promise.race([
          Promise.all([streamDone.out.promise, streamDone.err.promise]),
          status,
        ]),
        30_000,
      );
      await ack();
      await within(status, 5_000);
      code = ev.code;
    } else if (ev.kind === "fatal") {
      await ack();
      await within(status, 3_000);
      code = EXIT_VM_FAILURE;
      failure = {
        kind: "bench",
        message: `bench setup failed in the guest: ${ev.m}`,
        consoleTail: [],
      };
    } else if (ev.kind === "stop") {
      try {
        proc.kill(ev.k === "timeout" ? "SIGKILL" : "SIGTERM");
      } catch { /* gone */ }
      if (ev.k === "timeout") {
        code = EXIT_TIMEOUT;
        failure = {
          kind: "timeout",
          message: `killed the guest after ${timeoutSec} s: it was hanging ${
            tStart
              ? "(the command did not exit)"
              : "(it never finished booting)"
          }; raise --timeout if it needs longer`,
          consoleTail: [],
        };
      } else {
        code = 130;
        failure = {
          kind: "interrupted",
          message: "interrupted: QEMU killed",
          consoleTail: [],
        };
      }
    } else {
      code = EXIT_VM_FAILURE;
      failure = { kind: "boot", message: "", consoleTail: [] };
    }
    if (!qemuExited) {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
    }
    const st = await status;
    // QEMU is gone, so every socket reaches EOF once drained: read to the end
    // (the last console lines may be a panic message) before closing.
    await within(
      Promise.all([consolePump, outPumps, ctlPump, qemuPumps]),
      5_000,
    );
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    conns.length = 0;
    logFile.close();
    if (failure !== null) {
      failure.consoleTail = consoleTail();
      if (failure.kind === "boot") {
        const qmsg = qemuOut.join("").trim();
        const panic = tail.find((l) => /Kernel panic/.test(l));
        if (panic !== undefined) {
          failure.kind = "panic";
          failure.message = `the guest kernel panicked${
            tStart ? " while the command ran" : ""
          }: ${panic.replace(/^\[[\s\d.]+\]\s*/, "").trim()}`;
        } else if (tStart) {
          failure.kind = "crash";
          failure.message =
            `the guest stopped while the command ran (QEMU exit ${st.code})`;
        } else {
          failure.message =
            `the guest stopped before the command started (boot failure, QEMU exit ${st.code})`;
        }
        if (qmsg) failure.message += `; QEMU said: ${qmsg}`;
      }
      if (failure.kind !== "interrupted") {
        keepLog = cacheDir(
          "logs",
          `console-${new Date().toISOString().replaceAll(":", "-")}.log`,
        );
        await Deno.mkdir(dirname(keepLog), { recursive: true });
        await Deno.copyFile(consolePath, keepLog).catch(() => {
          keepLog = null;
        });
      }
      report(say, failure, keepLog);
    }
    if (opts.verbose) {
      const now = performance.now();
      say(
        `host timings: setup ${setupMs.toFixed(0)} ms, boot+bench ${
          ((tStart || now) - tBoot).toFixed(0)
        } ms, command ${
          (tStart ? (tExit || now) - tStart : 0).toFixed(0)
        } ms, ` +
          `shutdown ${(tExit ? now - tExit : 0).toFixed(0)} ms, total ${
            (now - t0).toFixed(0)
          } ms`,
      );
    }
    return finish(code, failure, {
      bootMs: (tStart || performance.now()) - tBoot,
      commandMs: tStart ? (tExit || performance.now()) - tStart : 0,
      setupMs,
    });
  } finally {
    clearTimeout(timer);
    for (const r of removeSignals) r();
    for (const l of listeners) {
      try {
        l.close();
      } catch { /* closed */ }
    }
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    if (child !== null) {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
    }
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}

function report(say: (m: string) => void, f: GuestFailure, log: string | null) {
  say(f.message);
  if (f.consoleTail.length > 0) {
    say(`last ${f.consoleTail.length} lines of the guest console:`);
    for (const l of f.consoleTail) console.error(`  | ${l}`);
  }
  if (log !== null) say(`full console log: ${log}`);
}

/**
 * The directory `modprobe -d` takes for the guest kernel's modules: the
 * unpacked tree's root, above `lib/modules/<release>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modulesRoot } from "./run.ts";
 * assert.equal(
 *   modulesRoot({ release: "6.1.0-57-amd64", modulesDir: "/c/root/lib/modules/6.1.0-57-amd64" }),
 *   "/c/root",
 * );
 * ```
 */
export function modulesRoot(
  k: Pick<KernelArtifacts, "release" | "modulesDir">,
): string {
  const tail = `/lib/modules/${k.release}`;
  return k.modulesDir.endsWith(tail)
    ? k.modulesDir.slice(0, -tail.length)
    : dirname(dirname(dirname(k.modulesDir)));
}

interface PlanInput {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  extraKeep: string[];
  enumTimeoutSec: number;
  hostDenoDir: string | null;
}

async function makePlan(
  rb: ResolvedBench,
  k: KernelArtifacts,
  project: string,
  inp: PlanInput,
): Promise<{ script: string; eofToken: string }> {
  // overlayfs for the DENO_DIR overlay (kernel/init.sh).
  const withOverlay = inp.hostDenoDir === null
    ? rb
    : { ...rb, modules: [...rb.modules, "overlay"] };
  const loads = benchModules(
    withOverlay,
    k.db,
    k.builtin,
    new Set(k.baseOrder),
    (n) => n,
  );
  for (const l of loads) {
    const entry = k.db.get(l.name);
    if (entry === undefined) throw new Error(`module ${l.name} vanished`);
    l.guestPath = k.inInitramfs.has(l.name)
      ? `/lib/modules/${l.name}.ko`
      : `/host${await guestModulePath(k, entry)}`;
  }
  // Random, so no output can contain it by accident.
  const eofToken = `usbkit-eof-${crypto.randomUUID()}`;
  const info = benchInfoTemplate(
    rb,
    k.release,
    loads.map((l) => l.name),
    modulesRoot(k),
  );
  const expect = [
    ...rb.gadgets.filter((g) => g.bound).map((g) => g.serial),
    ...rb.qemuDevices.map((d) => d.serial),
  ];
  const script = renderBenchScript({
    eofToken,
    project,
    keepPaths: keepPaths(inp.extraKeep, project),
    hostDenoDir: inp.hostDenoDir,
    modules: loads,
    bench: rb,
    expectSerials: expect,
    enumTimeoutSec: inp.enumTimeoutSec,
    info,
    argv: inp.argv,
    env: inp.env,
    cwd: inp.cwd,
  });
  return { script, eofToken };
}
