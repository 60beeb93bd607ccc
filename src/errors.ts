/**
 * One error type for everything usbkit can report.
 *
 * Every failure carries a stable {@linkcode UsbErrorCode}, the kernel's errno
 * when there was one, and a `hint` that says what a person can do about it.
 *
 * @module
 */

/**
 * The stable error codes. Programs switch on these; the message and the hint
 * are for people and may change.
 *
 * @example Switching on a code
 * ```ts
 * import assert from "node:assert/strict";
 * import { UsbError, type UsbErrorCode } from "./errors.ts";
 * const code: UsbErrorCode = new UsbError("busy", "held by usbtest").code;
 * assert.ok(code === "busy");
 * ```
 */
export type UsbErrorCode =
  | "access-denied"
  | "busy"
  | "not-found"
  | "disconnected"
  | "no-memory"
  | "timeout"
  | "cancelled"
  | "stall"
  | "babble"
  | "io"
  | "invalid-argument"
  | "invalid-descriptor"
  | "not-supported"
  | "helper-unavailable"
  | "ambiguous";

/** Details attached to a {@linkcode UsbError}. */
export interface UsbErrorOptions {
  /** The kernel errno (positive), when the error came from a system call. */
  errno?: number;
  /** What a person can do about it. */
  hint?: string;
  /** Bytes already moved before a transfer ended in this error. */
  bytesTransferred?: number;
  /** Data already received before an IN transfer ended in this error. */
  data?: Uint8Array;
  /** The underlying error, if any. */
  cause?: unknown;
  /** `transferBatch`: the results of the requests before the one that failed. */
  results?: readonly BatchItemResult[];
  /** `transferBatch`: the index of the request that failed (-1: none did). */
  requestIndex?: number;
}

/**
 * A request's result in `UsbError.results` (from `transferBatch`): an
 * `InResult` (with `data`) or an `OutResult` (with `bytesWritten`).
 */
export interface BatchItemResult {
  /** `"ok"`, `"stall"` or `"babble"`. */
  readonly status: "ok" | "stall" | "babble";
  /** IN: the bytes received. */
  readonly data?: Uint8Array<ArrayBuffer>;
  /** OUT: the bytes the device accepted. */
  readonly bytesWritten?: number;
}

/**
 * The one error class of usbkit.
 *
 * @example Recognising a timeout and keeping the partial data
 * ```ts
 * import assert from "node:assert/strict";
 * import { UsbError } from "./errors.ts";
 * try {
 *   throw new UsbError("timeout", "bulk IN on 0x81 timed out after 100 ms", {
 *     data: new Uint8Array(3),
 *     bytesTransferred: 3,
 *   });
 * } catch (e) {
 *   if (e instanceof UsbError && e.code === "timeout") {
 *     assert.ok(e.bytesTransferred === 3);
 *   }
 * }
 * ```
 */
export class UsbError extends Error {
  /** The stable code. */
  readonly code: UsbErrorCode;
  /** The kernel errno, when there was one. */
  readonly errno: number | undefined;
  /** What a person can do about it. */
  readonly hint: string | undefined;
  /** Bytes already moved when a transfer failed, timed out or was cancelled. */
  readonly bytesTransferred: number;
  /** Data already received when an IN transfer failed or was cancelled. */
  readonly data: Uint8Array | undefined;
  /**
   * `transferBatch`: the results of the requests before the one that failed
   * or was cancelled, in order (see {@linkcode requestIndex}); undefined
   * for other calls.
   */
  readonly results: readonly BatchItemResult[] | undefined;
  /**
   * `transferBatch`: the index of the request that failed or was
   * cancelled (its partial data is `data`/`bytesTransferred`); -1 when all
   * had ended; undefined for other calls.
   */
  readonly requestIndex: number | undefined;

  /**
   * Makes an error with a stable code.
   *
   * @param code the stable code
   * @param message a sentence saying what happened
   * @param options errno, hint, partial data
   */
  constructor(
    code: UsbErrorCode,
    message: string,
    options: UsbErrorOptions = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "UsbError";
    this.code = code;
    this.errno = options.errno;
    this.hint = options.hint;
    this.bytesTransferred = options.bytesTransferred ?? options.data?.length ??
      0;
    this.data = options.data;
    this.results = options.results;
    this.requestIndex = options.requestIndex;
  }

  /**
   * The error as people should see it: the message, then the hint.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { UsbError } from "./errors.ts";
   * const e = new UsbError("no-memory", "usbfs is out of memory", { hint: "raise usbfs_memory_mb" });
   * assert.ok(e.describe().includes("raise usbfs_memory_mb"));
   * ```
   */
  describe(): string {
    const errno = this.errno === undefined ? "" : ` (${errnoName(this.errno)})`;
    return `error[${this.code}]: ${this.message}${errno}` +
      (this.hint
        ? `\n  hint: ${this.hint.replaceAll("\n", "\n        ")}`
        : "");
  }
}

/** Linux errno values used by usbfs, from include/uapi/asm-generic/errno*.h. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  EPIPE: 32,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
  ETIME: 62,
  ENOSR: 63,
  ECOMM: 70,
  EPROTO: 71,
  EOVERFLOW: 75,
  EILSEQ: 84,
  ENOTSUPP: 524,
  EOPNOTSUPP: 95,
  ECONNRESET: 104,
  ESHUTDOWN: 108,
  ETIMEDOUT: 110,
  EINPROGRESS: 115,
  EREMOTEIO: 121,
  EXDEV: 18,
} as const;

const errnoNames = new Map<number, string>(
  Object.entries(Errno).map(([k, v]) => [v, k]),
);

/**
 * The symbolic name of an errno, such as `EPIPE`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errnoName } from "./errors.ts";
 * assert.ok(errnoName(32) === "EPIPE");
 * ```
 */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** What the caller knows when an errno has to become a {@linkcode UsbError}. */
export interface ErrnoContext {
  /** The device's vendor id, for the udev rule in an access-denied hint. */
  vendorId?: number;
  /** The device's product id. */
  productId?: number;
  /** The usbfs node, such as /dev/bus/usb/002/002. */
  devnode?: string;
  /** Who holds the interface, when known (a kernel driver or a process). */
  holder?: string;
}

/** Four hex digits; a value that is not a non-negative safe integer is printed as it is, never as 00-1. */
const hex4 = (n: number) =>
  typeof n === "number" && Number.isSafeInteger(n) && n >= 0 &&
    !Object.is(n, -0)
    ? n.toString(16).padStart(4, "0")
    : String(n);

/**
 * The udev rule that gives the current user's group access to a device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { udevRule } from "./errors.ts";
 * assert.ok(udevRule(0x0525, 0xa4a0).includes('ATTR{idVendor}=="0525"'));
 * ```
 */
export function udevRule(vendorId: number, productId: number): string {
  return `SUBSYSTEM=="usb", ATTR{idVendor}=="${
    hex4(vendorId)
  }", ATTR{idProduct}=="${hex4(productId)}", ` +
    `MODE="0660", GROUP="plugdev", TAG+="uaccess"`;
}

/**
 * Turns a negative or positive errno from the helper into a {@linkcode UsbError}
 * with a code and a hint a person can act on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorFromErrno } from "./errors.ts";
 * const e = errorFromErrno(-13, "cannot open /dev/bus/usb/002/002", { vendorId: 0x0525, productId: 0xa4a0 });
 * assert.ok(e.code === "access-denied" && e.hint!.includes("a4a0"));
 * ```
 */
export function errorFromErrno(
  errno: number,
  what: string,
  ctx: ErrnoContext = {},
): UsbError {
  const n = Math.abs(errno);
  const opts = { errno: n };
  switch (n) {
    case Errno.EACCES:
    case Errno.EPERM: {
      const rule = ctx.vendorId !== undefined && ctx.productId !== undefined
        ? udevRule(ctx.vendorId, ctx.productId)
        : `SUBSYSTEM=="usb", ATTR{idVendor}=="<vid>", ATTR{idProduct}=="<pid>", MODE="0660", GROUP="plugdev"`;
      return new UsbError("access-denied", `${what}: permission denied`, {
        ...opts,
        hint: `add this line to /etc/udev/rules.d/50-usbkit.rules, then run ` +
          `\`sudo udevadm control --reload && sudo udevadm trigger\` and replug the device ` +
          `(and make sure your user is in the plugdev group):\n${rule}`,
      });
    }
    case Errno.EBUSY:
      return new UsbError(
        "busy",
        `${what}: ${
          ctx.holder ? `held by ${ctx.holder}` : "the interface is in use"
        }`,
        {
          ...opts,
          hint: ctx.holder?.startsWith("kernel driver")
            ? "pass { detachKernelDriver: true } to claimInterface to detach it for the session"
            : "another program has claimed this interface; close it, or find it with `fuser " +
              (ctx.devnode ?? "/dev/bus/usb/BBB/DDD") + "`",
        },
      );
    case Errno.ENOENT:
      return new UsbError("not-found", `${what}: no such device`, {
        ...opts,
        hint: "run `deno task usb list` to see what is attached",
      });
    case Errno.ENODEV:
    case Errno.ESHUTDOWN:
      return new UsbError(
        "disconnected",
        `${what}: the device was disconnected`,
        {
          ...opts,
          hint: "plug it back in and open it again",
        },
      );
    case Errno.ENOMEM:
      return new UsbError("no-memory", `${what}: out of usbfs memory`, {
        ...opts,
        hint:
          "usbfs caps all its buffers at usbfs_memory_mb (default 16 MiB, system-wide); raise it with " +
          "`echo 256 | sudo tee /sys/module/usbcore/parameters/usbfs_memory_mb`, or use fewer or smaller " +
          "transfers in flight",
      });
    case Errno.ETIMEDOUT:
      return new UsbError("timeout", `${what}: timed out`, opts);
    case Errno.EINVAL:
      return new UsbError(
        "invalid-argument",
        `${what}: the kernel rejected the request as invalid`,
        opts,
      );
    case Errno.ENOSYS:
    case Errno.ENOTSUPP:
    case Errno.EOPNOTSUPP:
      return new UsbError(
        "not-supported",
        `${what}: not supported by this kernel or host controller`,
        opts,
      );
    default:
      return new UsbError("io", `${what}: ${errnoName(n)}`, opts);
  }
}
