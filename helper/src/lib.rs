//! usbkit's helper: the only code in usbkit that makes system calls.
//!
//! Loaded by src/ffi.ts with Deno FFI. Every exported function takes and
//! returns 32-bit integers, f64 or pointers (a JS number passed to a 64-bit
//! integer parameter takes Deno's slow path). Errors come back as negative
//! errno values.
//!
//! Data path: JS fills a URB slot and calls `usbkit_submit`; the reaper thread
//! (reaper.rs) reaps completions into the ring (ring.rs); JS keeps one parked
//! `usbkit_wait` per process (after an optional short `usbkit_ring_spin`) and
//! drains the ring when it returns. Streams (stream.rs) are resubmitted by
//! the reaper itself from a pool of buffers JS hands back through shared
//! memory.

mod abi;
mod device;
mod netlink;
mod reaper;
mod ring;
mod stream;
mod sys;
mod usbip;
mod usbmon;

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use device::{Dev, SLOT_SIZE};
use reaper::Shared;
use ring::Ring;

// USB/IP local attach (src/usbip/attach.ts).
pub use usbip::*;
// Hotplug: kernel uevents (src/hotplug.ts).
pub use netlink::*;
// Kernel capture: usbmon's binary interface (src/capture/kernel.ts).
pub use usbmon::*;

/// Bumped whenever an exported signature or a layout changes; src/ffi.ts
/// refuses a helper with another version.
pub const ABI_VERSION: u32 = 2;

struct Global {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

static GLOBAL: Mutex<Option<Global>> = Mutex::new(None);
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fn neg_errno() -> i32 {
    -sys::errno()
}

#[no_mangle]
pub extern "C" fn usbkit_abi_version() -> u32 {
    ABI_VERSION
}

/// Fills `out` (i32 words) with the layouts JS needs, so no offset is
/// written twice: see src/ffi.ts `Layout` for the order.
///
/// # Safety
/// `out` must be valid for writing `n` i32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_layout(out: *mut i32, n: u32) -> u32 {
    let values: [i32; 16] = [
        SLOT_SIZE as i32,
        abi::URB_ISO_DESC_OFFSET as i32,
        core::mem::size_of::<abi::usbdevfs_iso_packet_desc>() as i32,
        abi::MAX_ISO_PACKETS as i32,
        ring::RECORD_WORDS as i32,
        ring::RING_CAPACITY as i32,
        4,  // offsetof(usbdevfs_urb, status)
        28, // offsetof(usbdevfs_urb, actual_length)
        32, // offsetof(usbdevfs_urb, start_frame)
        36, // offsetof(usbdevfs_urb, number_of_packets)
        40, // offsetof(usbdevfs_urb, error_count)
        abi::USBDEVFS_URB_SHORT_NOT_OK as i32,
        abi::USBDEVFS_URB_ISO_ASAP as i32,
        abi::USBDEVFS_URB_BULK_CONTINUATION as i32,
        abi::USBDEVFS_URB_ZERO_PACKET as i32,
        abi::USBDEVFS_URB_NO_INTERRUPT as i32,
    ];
    let n = (n as usize).min(values.len());
    core::ptr::copy_nonoverlapping(values.as_ptr(), out, n);
    n as u32
}

const _: () = assert!(core::mem::offset_of!(abi::usbdevfs_urb, status) == 4);
const _: () = assert!(core::mem::offset_of!(abi::usbdevfs_urb, actual_length) == 28);
const _: () = assert!(core::mem::offset_of!(abi::usbdevfs_urb, start_frame) == 32);
const _: () = assert!(core::mem::offset_of!(abi::usbdevfs_urb, number_of_packets) == 36);
const _: () = assert!(core::mem::offset_of!(abi::usbdevfs_urb, error_count) == 40);

// ---- one-shot probes (no reaper, no pool): used by `usb describe` ----

/// Opens `path`, reads USBDEVFS_GET_CAPABILITIES and USBDEVFS_GET_SPEED,
/// closes it. out[0] = capability bits, out[1] = speed (USB_SPEED_* of ch9.h)
/// or -errno.
///
/// # Safety
/// `path` must be a NUL-terminated string; `out` must point to two i32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_probe(path: *const c_char, out: *mut i32) -> i32 {
    let fd = sys::open(path, sys::O_RDWR | sys::O_CLOEXEC);
    if fd < 0 {
        return neg_errno();
    }
    let mut caps: u32 = 0;
    let r = sys::ioctl(fd, abi::USBDEVFS_GET_CAPABILITIES as _, &mut caps);
    let err = if r < 0 { neg_errno() } else { 0 };
    let speed = sys::ioctl(fd, abi::USBDEVFS_GET_SPEED as _);
    *out = caps as i32;
    *out.add(1) = if speed < 0 { neg_errno() } else { speed };
    sys::close(fd);
    err
}

// ---- the process-wide completion machinery ----

/// Creates the ring, the two eventfds and the reaper thread, once per
/// process. Idempotent.
#[no_mangle]
pub extern "C" fn usbkit_init() -> i32 {
    let mut g = GLOBAL.lock().unwrap();
    if g.is_some() {
        return 0;
    }
    let doorbell = unsafe { sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK) };
    if doorbell < 0 {
        return neg_errno();
    }
    let wake = unsafe { sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK) };
    if wake < 0 {
        let e = neg_errno();
        unsafe { sys::close(doorbell) };
        return e;
    }
    let shared = Arc::new(Shared {
        ring: Ring::new(doorbell),
        wake_fd: wake,
        devices: Mutex::new(Vec::new()),
        stop: Default::default(),
    });
    let s2 = shared.clone();
    let thread = std::thread::Builder::new()
        .name("usbkit-reaper".into())
        .spawn(move || reaper::run(s2));
    match thread {
        Ok(t) => {
            *g = Some(Global {
                shared,
                thread: Some(t),
            });
            0
        }
        Err(_) => {
            unsafe {
                sys::close(doorbell);
                sys::close(wake);
            }
            -12 // ENOMEM
        }
    }
}

/// Stops the reaper and frees the ring. Refused (-EBUSY) while devices are
/// open. JS must have dropped its views of the ring and must not be parked in
/// `usbkit_wait`.
#[no_mangle]
pub extern "C" fn usbkit_shutdown() -> i32 {
    let mut g = GLOBAL.lock().unwrap();
    let Some(global) = g.as_mut() else { return 0 };
    if !global.shared.devices.lock().unwrap().is_empty() {
        return -16; // EBUSY
    }
    global.shared.stop.store(true, Ordering::Release);
    global.shared.wake();
    if let Some(t) = global.thread.take() {
        let _ = t.join();
    }
    let global = g.take().unwrap();
    unsafe {
        sys::close(global.shared.wake_fd);
        sys::close(global.shared.ring.doorbell_fd);
    }
    0
}

fn shared() -> Option<Arc<Shared>> {
    GLOBAL.lock().unwrap().as_ref().map(|g| g.shared.clone())
}

#[no_mangle]
pub extern "C" fn usbkit_ring_records() -> *const u8 {
    match GLOBAL.lock().unwrap().as_ref() {
        Some(g) => g.shared.ring.records_ptr(),
        None => core::ptr::null(),
    }
}

#[no_mangle]
pub extern "C" fn usbkit_ring_bytes() -> u32 {
    match GLOBAL.lock().unwrap().as_ref() {
        Some(g) => g.shared.ring.byte_len() as u32,
        None => 0,
    }
}

/// Fast path: a raw pointer to the shared state, so `usbkit_ring_ack` does
/// not take the global lock. Valid until `usbkit_shutdown`.
#[no_mangle]
pub extern "C" fn usbkit_ring_handle() -> *const c_void {
    match GLOBAL.lock().unwrap().as_ref() {
        Some(g) => Arc::as_ptr(&g.shared) as *const c_void,
        None => core::ptr::null(),
    }
}

/// JS has read every record before `tail`; returns the producer's head.
///
/// # Safety
/// `handle` must come from `usbkit_ring_handle` while the helper is
/// initialised.
#[no_mangle]
pub unsafe extern "C" fn usbkit_ring_ack(handle: *const c_void, tail: u32) -> u32 {
    (*(handle as *const Shared)).ring.ack(tail)
}

/// The one parked wait (called `nonblocking` from JS): marks the consumer
/// parked (a native SeqCst store the producer swaps back: ring.rs), then
/// blocks until a record is published, the doorbell rings or `timeout_ms`
/// passes. 1 = woken, 0 = timed out.
///
/// # Safety
/// `handle` must come from `usbkit_ring_handle` while the helper is
/// initialised.
#[no_mangle]
pub unsafe extern "C" fn usbkit_wait(handle: *const c_void, timeout_ms: i32) -> i32 {
    (*(handle as *const Shared)).ring.wait(timeout_ms)
}

/// The short spin before parking (a sync call): returns the ring's head as
/// soon as it moves past `tail`, or after `max_us` microseconds. Yields the
/// CPU each round, so a reaper pinned to the same CPU still runs.
///
/// # Safety
/// `handle` must come from `usbkit_ring_handle` while the helper is
/// initialised.
#[no_mangle]
pub unsafe extern "C" fn usbkit_ring_spin(handle: *const c_void, tail: u32, max_us: f64) -> u32 {
    (*(handle as *const Shared)).ring.spin(tail, max_us)
}

/// CLOCK_MONOTONIC in milliseconds: the clock of the records' time field.
#[no_mangle]
pub extern "C" fn usbkit_now_ms() -> f64 {
    sys::now_ms()
}

/// Unparks the JS wait (used before shutdown).
///
/// # Safety
/// `handle` must come from `usbkit_ring_handle` while the helper is
/// initialised.
#[no_mangle]
pub unsafe extern "C" fn usbkit_ring_doorbell(handle: *const c_void) {
    (*(handle as *const Shared)).ring.ring_doorbell();
}

// ---- devices ----

/// Opens a usbfs node with a pool of `nslots` URB slots. Returns the device
/// handle, or null with -errno in `*err`.
///
/// # Safety
/// `path` must be a NUL-terminated string; `err` must point to one i32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_open(
    path: *const c_char,
    nslots: u32,
    err: *mut i32,
) -> *const Dev {
    let Some(shared) = shared() else {
        *err = -22; // EINVAL: usbkit_init first
        return core::ptr::null();
    };
    let fd = sys::open(path, sys::O_RDWR | sys::O_CLOEXEC);
    if fd < 0 {
        *err = neg_errno();
        return core::ptr::null();
    }
    let dev = Arc::new(Dev::new(
        NEXT_ID.fetch_add(1, Ordering::Relaxed),
        fd,
        nslots.max(1),
    ));
    shared.devices.lock().unwrap().push(dev.clone());
    shared.wake(); // poll the new fd from now on
    *err = 0;
    Arc::into_raw(dev)
}

/// Closes in order: discard pending URBs, wait until the reaper has reaped
/// them (their records reach JS), stop polling the fd, close it.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; it is invalid
/// after this call.
#[no_mangle]
pub unsafe extern "C" fn usbkit_close(dev: *const Dev) -> i32 {
    if dev.is_null() {
        return -sys::EINVAL;
    }
    let d = &*dev;
    d.discard_all();
    let deadline = sys::now_ms() + 5000.0;
    while d.inflight.load(Ordering::Acquire) > 0 && sys::now_ms() < deadline {
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    if let Some(shared) = shared() {
        shared
            .devices
            .lock()
            .unwrap()
            .retain(|x| !std::ptr::eq(Arc::as_ptr(x), dev));
        shared.wake();
    }
    let arc = Arc::from_raw(dev);
    // The reaper may still hold a clone from its last poll round; it drops
    // it on its next round (woken above). The fd closes when the last goes.
    let deadline = sys::now_ms() + 5000.0;
    while Arc::strong_count(&arc) > 1 && sys::now_ms() < deadline {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    drop(arc);
    0
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_device_id(dev: *const Dev) -> u32 {
    (*dev).id
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_slab(dev: *const Dev) -> *mut u8 {
    (*dev).slab_ptr()
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_slab_bytes(dev: *const Dev) -> u32 {
    (*dev).slab_len() as u32
}

/// Submits slot `slot`. `buffer + offset` is the data (for control URBs, the
/// 8-byte setup packet followed by the data stage). Returns 0 or -errno.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `slot` must be
/// a free slot of it; unless null, `buffer + offset` must stay valid for
/// `length` bytes (plus the 8-byte setup packet of a control URB) until the
/// URB completes.
#[no_mangle]
pub unsafe extern "C" fn usbkit_submit(
    dev: *const Dev,
    slot: u32,
    type_: u32,
    endpoint: u32,
    flags: u32,
    buffer: *mut u8,
    offset: u32,
    length: i32,
    packets_or_stream: i32,
) -> i32 {
    let d = &*dev;
    let buf = if buffer.is_null() {
        buffer
    } else {
        buffer.add(offset as usize)
    };
    match d.submit(
        slot,
        type_ as u8,
        endpoint as u8,
        flags,
        buf,
        length,
        packets_or_stream,
    ) {
        // The reaper polls idle devices too (reaper.rs): no wakeup needed.
        Ok(()) => 0,
        Err(e) => -e,
    }
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_discard(dev: *const Dev, slot: u32) -> i32 {
    (*dev).discard(slot)
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_inflight(dev: *const Dev) -> i32 {
    (*dev).inflight.load(Ordering::Acquire)
}

unsafe fn ioctl_u32(dev: *const Dev, req: u64, v: u32) -> i32 {
    let mut v = v;
    let r = sys::ioctl((*dev).fd, req as _, &mut v);
    if r < 0 {
        neg_errno()
    } else {
        r
    }
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `out` must
/// point to one u32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_get_capabilities(dev: *const Dev, out: *mut u32) -> i32 {
    let r = sys::ioctl((*dev).fd, abi::USBDEVFS_GET_CAPABILITIES as _, out);
    if r < 0 {
        neg_errno()
    } else {
        0
    }
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_get_speed(dev: *const Dev) -> i32 {
    let r = sys::ioctl((*dev).fd, abi::USBDEVFS_GET_SPEED as _);
    if r < 0 {
        neg_errno()
    } else {
        r
    }
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_claim_interface(dev: *const Dev, ifno: u32) -> i32 {
    ioctl_u32(dev, abi::USBDEVFS_CLAIMINTERFACE, ifno)
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_release_interface(dev: *const Dev, ifno: u32) -> i32 {
    ioctl_u32(dev, abi::USBDEVFS_RELEASEINTERFACE, ifno)
}

/// USBDEVFS_DISCONNECT_CLAIM: detach whatever kernel driver holds `ifno`
/// (except usbfs itself, so another usbfs user is never kicked off) and claim
/// it in one step.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_disconnect_claim(dev: *const Dev, ifno: u32) -> i32 {
    let mut dc = abi::usbdevfs_disconnect_claim {
        interface: ifno,
        flags: abi::USBDEVFS_DISCONNECT_CLAIM_EXCEPT_DRIVER,
        driver: [0; abi::USBDEVFS_MAXDRIVERNAME + 1],
    };
    dc.driver[..5].copy_from_slice(b"usbfs");
    let r = sys::ioctl((*dev).fd, abi::USBDEVFS_DISCONNECT_CLAIM as _, &mut dc);
    if r < 0 {
        neg_errno()
    } else {
        0
    }
}

/// The name of the kernel driver bound to `ifno`, into `out` (NUL-ended).
/// -ENODATA when none is bound.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `out` must be
/// valid for writing `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn usbkit_get_driver(
    dev: *const Dev,
    ifno: u32,
    out: *mut u8,
    n: u32,
) -> i32 {
    let mut gd = abi::usbdevfs_getdriver {
        interface: ifno,
        driver: [0; abi::USBDEVFS_MAXDRIVERNAME + 1],
    };
    let r = sys::ioctl((*dev).fd, abi::USBDEVFS_GETDRIVER as _, &mut gd);
    if r < 0 {
        return neg_errno();
    }
    let len = gd
        .driver
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(gd.driver.len());
    let n = (n as usize).saturating_sub(1).min(len);
    core::ptr::copy_nonoverlapping(gd.driver.as_ptr(), out, n);
    *out.add(n) = 0;
    n as i32
}

/// Asks the kernel to bind its driver to `ifno` again (USBDEVFS_IOCTL with
/// USBDEVFS_CONNECT), after usbkit released the interface.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_connect_driver(dev: *const Dev, ifno: u32) -> i32 {
    let mut cmd = abi::usbdevfs_ioctl {
        ifno: ifno as i32,
        ioctl_code: abi::USBDEVFS_CONNECT as i32,
        data: core::ptr::null_mut(),
    };
    let r = sys::ioctl((*dev).fd, abi::USBDEVFS_IOCTL as _, &mut cmd);
    if r < 0 {
        neg_errno()
    } else {
        0
    }
}

/// These send a control request to the device and may take milliseconds:
/// JS calls them `nonblocking`.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_set_interface(dev: *const Dev, ifno: u32, alt: u32) -> i32 {
    let mut si = abi::usbdevfs_setinterface {
        interface: ifno,
        altsetting: alt,
    };
    let r = sys::ioctl((*dev).fd, abi::USBDEVFS_SETINTERFACE as _, &mut si);
    if r < 0 {
        neg_errno()
    } else {
        0
    }
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_set_configuration(dev: *const Dev, value: i32) -> i32 {
    ioctl_u32(dev, abi::USBDEVFS_SETCONFIGURATION, value as u32)
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_clear_halt(dev: *const Dev, endpoint: u32) -> i32 {
    ioctl_u32(dev, abi::USBDEVFS_CLEAR_HALT, endpoint)
}

/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_reset(dev: *const Dev) -> i32 {
    let r = sys::ioctl((*dev).fd, abi::USBDEVFS_RESET as _);
    if r < 0 {
        neg_errno()
    } else {
        0
    }
}

/// Maps `len` bytes of usbfs DMA-able memory (USBDEVFS_CAP_MMAP). Returns
/// the address, or null with -errno in `*err`.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `err` must
/// point to one i32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_mmap(dev: *const Dev, len: u32, err: *mut i32) -> *mut c_void {
    let p = sys::mmap(
        core::ptr::null_mut(),
        len as usize,
        sys::PROT_READ | sys::PROT_WRITE,
        sys::MAP_SHARED,
        (*dev).fd,
        0,
    );
    if p == sys::MAP_FAILED {
        *err = neg_errno();
        return core::ptr::null_mut();
    }
    *err = 0;
    p
}

/// # Safety
/// `addr` and `len` must be a mapping `usbkit_mmap` returned, not used
/// after this call.
#[no_mangle]
pub unsafe extern "C" fn usbkit_munmap(addr: *mut c_void, len: u32) -> i32 {
    if sys::munmap(addr, len as usize) < 0 {
        neg_errno()
    } else {
        0
    }
}

// ---- helper-side streams (stream.rs) ----

static NEXT_STREAM: AtomicU32 = AtomicU32::new(1);

/// Creates a stream of `nbufs` buffers of `size` bytes on `endpoint`, of
/// which `in_flight` are kept queued; iso streams pass `npackets` packet
/// lengths. `mmap` != 0 asks for usbfs-mapped buffers. Nothing is submitted
/// yet (`usbkit_stream_refill` starts it). Returns the stream, or null with
/// -errno in `*err`.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `iso_lengths`
/// must hold `npackets` u32 (or be null when `npackets` is 0); `err` must
/// point to one i32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_open(
    dev: *const Dev,
    type_: u32,
    endpoint: u32,
    flags: u32,
    size: u32,
    in_flight: u32,
    nbufs: u32,
    iso_lengths: *const u32,
    npackets: u32,
    mmap: u32,
    err: *mut i32,
) -> *const stream::Stream {
    let d = &*dev;
    let iso = if npackets == 0 || iso_lengths.is_null() {
        Vec::new()
    } else {
        std::slice::from_raw_parts(
            iso_lengths,
            npackets.min(abi::MAX_ISO_PACKETS as u32 + 1) as usize,
        )
        .to_vec()
    };
    let spec = stream::Spec {
        type_: type_ as u8,
        endpoint: endpoint as u8,
        flags,
        size,
        in_flight,
        nbufs,
        iso,
    };
    let id = NEXT_STREAM.fetch_add(1, Ordering::Relaxed);
    match stream::Stream::new(id, d.id, d.fd, &spec, mmap != 0) {
        Ok(s) => {
            let s = Arc::new(s);
            let p = Arc::as_ptr(&s);
            d.streams.lock().unwrap().push(s);
            *err = 0;
            p
        }
        Err(e) => {
            *err = -e;
            core::ptr::null()
        }
    }
}

/// # Safety
/// `s` must come from `usbkit_stream_open` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_id(s: *const stream::Stream) -> u32 {
    (*s).id
}

/// The control block (stream.rs CTL_*), shared with JS.
///
/// # Safety
/// `s` must come from `usbkit_stream_open` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_ctl(s: *const stream::Stream) -> *mut u8 {
    (*s).ctl_ptr()
}

/// # Safety
/// `s` must come from `usbkit_stream_open` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_ctl_bytes(s: *const stream::Stream) -> u32 {
    (*s).ctl_bytes() as u32
}

/// Buffer `i`'s address (null past the end).
///
/// # Safety
/// `s` must come from `usbkit_stream_open` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_buffer(s: *const stream::Stream, i: u32) -> *mut u8 {
    (*s).buffer(i)
}

/// The stream's URB structs (SLOT_SIZE each, one per buffer): iso packet
/// results are read there.
///
/// # Safety
/// `s` must come from `usbkit_stream_open` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_urbs(s: *const stream::Stream) -> *mut u8 {
    (*s).urbs_ptr()
}

/// # Safety
/// `s` must come from `usbkit_stream_open` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_urbs_bytes(s: *const stream::Stream) -> u32 {
    (*s).urbs_bytes() as u32
}

/// Submits returned buffers while fewer than `in_flight` are queued: the
/// number submitted, or -errno (the stream is then halted).
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `s` must come
/// from `usbkit_stream_open` on `dev` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_refill(dev: *const Dev, s: *const stream::Stream) -> i32 {
    (*dev).refill_stream(&*s)
}

/// Stops the stream and discards what the kernel holds. Returns how many
/// URBs were queued: when more than 0, a KIND_STREAM_END record follows.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `s` must come
/// from `usbkit_stream_open` on `dev` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_stop(dev: *const Dev, s: *const stream::Stream) -> i32 {
    (*dev).stop_stream(&*s)
}

/// Frees a stopped stream with nothing in the kernel (-EBUSY otherwise).
/// JS must have detached every view of its buffers, control block and URBs.
///
/// # Safety
/// `dev` must come from `usbkit_open` and not be closed yet; `s` must come
/// from `usbkit_stream_open` on `dev` and not be freed yet; `s` is invalid
/// after this call.
#[no_mangle]
pub unsafe extern "C" fn usbkit_stream_free(dev: *const Dev, s: *const stream::Stream) -> i32 {
    if let Err(e) = (*s).can_free() {
        return -e;
    }
    // The reaper may hold a clone for the rest of its round: the memory goes
    // with the last reference.
    (*dev)
        .streams
        .lock()
        .unwrap()
        .retain(|x| !std::ptr::eq(Arc::as_ptr(x), s));
    0
}
