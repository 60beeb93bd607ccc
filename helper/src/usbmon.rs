//! The kernel's USB capture: usbmon's binary interface, `/dev/usbmonN`
//! (drivers/usb/mon/mon_bin.c, Documentation/usb/usbmon.rst), for
//! src/capture/kernel.ts through src/usbfs.ts's usbmon section.
//!
//! Events are fetched one by one with MON_IOCX_GETX, which copies the
//! 64-byte header and the event's data (iso descriptors first) into user
//! memory and frees the event from the kernel's ring. A read packs as many
//! whole events into the caller's buffer as fit, each as its header
//! followed by `len_cap` bytes, so JavaScript walks them with `len_cap`.
//! The fd is non-blocking; the read waits with poll() up to a timeout, so
//! the caller (a parked `nonblocking` FFI call) can stop between reads.
//!
//! usbmon drops events when its ring is full and counts them
//! (MON_IOCG_STATS, which resets the count): the caller sums them and
//! reports the total.

use core::ffi::{c_ulong, c_void};

use crate::sys;

/// `_IO(0x92, 1)`: `len_cap` of the next event (0 when the ring is empty).
const MON_IOCQ_URB_LEN: c_ulong = 0x9201;
/// `_IOR(0x92, 3, struct mon_bin_stats)`, 8 bytes: queued, dropped.
const MON_IOCG_STATS: c_ulong = 0x8008_9203;
/// `_IO(0x92, 4)`: sets the ring size in bytes (8 KiB to 64 MiB).
const MON_IOCT_RING_SIZE: c_ulong = 0x9204;
/// `_IOW(0x92, 10, struct mon_bin_get)`, 24 bytes on 64-bit: one event with
/// the 64-byte header (API 1).
const MON_IOCX_GETX: c_ulong = 0x4018_920a;

/// `struct mon_bin_hdr` size (PKT_SZ_API1).
const HEADER: usize = 64;
/// Offset of `len_cap` in the header.
const LEN_CAP: usize = 36;

/// `struct mon_bin_get` (mon_bin.c).
#[repr(C)]
struct MonBinGet {
    hdr: *mut c_void,
    data: *mut c_void,
    alloc: usize,
}
const _: () = assert!(core::mem::size_of::<MonBinGet>() == 24);

/// `struct mon_bin_stats` (mon_bin.c).
#[repr(C)]
struct MonBinStats {
    queued: u32,
    dropped: u32,
}
const _: () = assert!(core::mem::size_of::<MonBinStats>() == 8);

/// Opens `/dev/usbmon<bus>` (bus 0: every bus) non-blocking, and asks for
/// a ring of `ring_bytes` (0: the kernel's default; a refused size keeps
/// the default). Returns the fd or -errno.
#[no_mangle]
pub extern "C" fn usbkit_usbmon_open(bus: i32, ring_bytes: i32) -> i32 {
    if bus < 0 {
        return -sys::EINVAL;
    }
    let path = format!("/dev/usbmon{bus}\0");
    let fd = unsafe {
        sys::open(
            path.as_ptr() as *const _,
            sys::O_RDONLY | sys::O_NONBLOCK | sys::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return -sys::errno();
    }
    if ring_bytes > 0 {
        unsafe { sys::ioctl(fd, MON_IOCT_RING_SIZE, ring_bytes as c_ulong) };
    }
    fd
}

/// Waits up to `timeout_ms` for events, then moves whole events into `buf`
/// (`len` bytes) until it is full or the ring is empty. Returns the bytes
/// written (0: none came), or -errno. An event larger than the whole buffer
/// is cut to fit and its `len_cap` says what was kept.
///
/// # Safety
/// `buf` must be valid for `len` bytes; `fd` must come from
/// `usbkit_usbmon_open`.
#[no_mangle]
pub unsafe extern "C" fn usbkit_usbmon_read(
    fd: i32,
    buf: *mut u8,
    len: u32,
    timeout_ms: i32,
) -> i32 {
    let len = (len as usize).min(i32::MAX as usize);
    if len < HEADER {
        return -sys::EINVAL;
    }
    let mut p = sys::pollfd {
        fd,
        events: sys::POLLIN,
        revents: 0,
    };
    let r = sys::poll(&mut p, 1, timeout_ms);
    if r < 0 {
        let e = sys::errno();
        return if e == sys::EINTR { 0 } else { -e };
    }
    if r == 0 {
        return 0;
    }
    let mut used = 0usize;
    loop {
        let room = len - used;
        if room < HEADER {
            break;
        }
        let next = sys::ioctl(fd, MON_IOCQ_URB_LEN);
        if next > 0 && used > 0 && HEADER + next as usize > room {
            break; // the next event goes into the next read
        }
        let hdr = buf.add(used);
        let mut get = MonBinGet {
            hdr: hdr as *mut c_void,
            data: hdr.add(HEADER) as *mut c_void,
            alloc: room - HEADER,
        };
        if sys::ioctl(fd, MON_IOCX_GETX, &mut get as *mut MonBinGet) < 0 {
            let e = sys::errno();
            if e == sys::EAGAIN || e == sys::EINTR {
                break;
            }
            return if used > 0 { used as i32 } else { -e };
        }
        let cap = (hdr.add(LEN_CAP) as *const u32).read_unaligned() as usize;
        let kept = cap.min(room - HEADER);
        (hdr.add(LEN_CAP) as *mut u32).write_unaligned(kept as u32);
        used += HEADER + kept;
    }
    used as i32
}

/// Events dropped since the last call (the kernel resets its count) into
/// `out[1]`, events queued now into `out[0]`. Returns 0 or -errno.
///
/// # Safety
/// `out` must be valid for two u32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_usbmon_stats(fd: i32, out: *mut u32) -> i32 {
    let mut s = MonBinStats {
        queued: 0,
        dropped: 0,
    };
    if sys::ioctl(fd, MON_IOCG_STATS, &mut s as *mut MonBinStats) < 0 {
        return -sys::errno();
    }
    *out = s.queued;
    *out.add(1) = s.dropped;
    0
}

/// Closes the fd. Returns 0 or -errno.
#[no_mangle]
pub extern "C" fn usbkit_usbmon_close(fd: i32) -> i32 {
    if unsafe { sys::close(fd) } < 0 {
        -sys::errno()
    } else {
        0
    }
}
