/**
 * `deno task build`: builds the Rust helper (helper/) with
 * `cargo build --release --offline`, even when it looks up to date with
 * `--force`.
 *
 * @module
 */
import { buildHelper } from "../src/ffi.ts";
import { UsbError } from "../src/errors.ts";

if (import.meta.main) {
  try {
    const force = Deno.args.includes("--force");
    const built = buildHelper({ force });
    console.error(
      built ? "usbkit: helper built" : "usbkit: helper is up to date",
    );
  } catch (e) {
    if (e instanceof UsbError) {
      console.error(e.describe());
      Deno.exit(2);
    }
    throw e;
  }
}
