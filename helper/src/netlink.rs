//! Hotplug: the kernel's device events (uevents) from a NETLINK_KOBJECT_UEVENT
//! socket, for src/hotplug.ts.
//!
//! The socket joins multicast group 1, the kernel's own broadcast
//! (lib/kobject_uevent.c, uevent_net_broadcast), not group 2, which only
//! udevd re-broadcasts: a system without udevd (a container, an initramfs,
//! the bench guest) still sees every event.
//!
//! A helper thread drains the socket into a queue, and JavaScript takes
//! batches from the queue after a parked wait (`usbkit_hotplug_wait`, called
//! `nonblocking`). The thread rather than nonblocking reads done by JS
//! itself: JS reads only between its own turns of the event loop, so a slow
//! consumer (a long synchronous step, a debugger, a loaded machine) would
//! leave the socket undrained and the kernel would drop events once its
//! buffer is full. The thread reads as fast as the kernel sends, whatever JS
//! is doing, and keeps only the events JS wants (subsystem `usb`, devtype
//! `usb_device`), so the queue stays small.
//!
//! For an add or a bind, the thread also reads the device's sysfs
//! attributes at once (`capture`), so that JS builds the same device
//! information as `listDevices()` even when it gets to the event after the
//! device has gone again.
//!
//! Events can still be lost, and that is reported rather than hidden: when
//! the kernel reports an overrun (recv fails with ENOBUFS: the socket
//! buffer overflowed) or the queue is at its limit, the next batch carries
//! an overrun flag, and JS re-reads sysfs to learn what changed.
//!
//! Only the kernel (netlink port id 0) is believed: anything else that
//! reaches the socket is dropped.

use core::ffi::{c_int, c_void};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::sys;

const AF_NETLINK: c_int = 16;
const SOCK_DGRAM: c_int = 2;
const SOCK_NONBLOCK: c_int = 0o4000;
/// <linux/netlink.h>
const NETLINK_KOBJECT_UEVENT: c_int = 15;
/// The kernel's own uevent broadcast (udevd uses group 2 for its re-broadcast).
const UEVENT_GROUP_KERNEL: u32 = 1;
/// <asm-generic/socket.h>
const SO_RCVBUF: c_int = 8;
const SO_RCVBUFFORCE: c_int = 33;
const ENOBUFS: c_int = 105;
const ESHUTDOWN: c_int = 108;
const ENOMEM: c_int = 12;

/// Socket buffer asked for by default: 8 MiB (udevd asks for 128 MiB).
/// SO_RCVBUFFORCE (root, CAP_NET_ADMIN) gets it; otherwise SO_RCVBUF is
/// capped by net.core.rmem_max.
const DEFAULT_RCVBUF: c_int = 8 << 20;
/// Events queued for JS before further ones count as an overrun.
const DEFAULT_QUEUE_LIMIT: usize = 1 << 16;
/// The largest uevent: UEVENT_BUFFER_SIZE is 2048 bytes of environment plus
/// "ACTION@DEVPATH"; 16 KiB leaves room.
const MAX_MESSAGE: usize = 16 << 10;

/// struct sockaddr_nl (<linux/netlink.h>)
#[repr(C)]
struct sockaddr_nl {
    nl_family: u16,
    nl_pad: u16,
    nl_pid: u32,
    nl_groups: u32,
}

extern "C" {
    fn setsockopt(fd: c_int, lvl: c_int, opt: c_int, v: *const c_void, n: u32) -> c_int;
    fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        len: usize,
        flags: c_int,
        addr: *mut c_void,
        alen: *mut u32,
    ) -> isize;
}

struct Queue {
    events: VecDeque<Vec<u8>>,
    /// An event was lost since JS last read (kernel ENOBUFS or a full queue).
    overrun: bool,
    /// Overruns in all.
    overruns: u32,
    closing: bool,
}

/// One hotplug listener: its socket, its thread and its queue.
pub struct Hotplug {
    sock: c_int,
    stop_fd: c_int,
    rcvbuf: c_int,
    limit: usize,
    queue: Mutex<Queue>,
    ready: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// True when `msg` is a kernel uevent ("ACTION@DEVPATH\0KEY=VALUE\0...") of
/// a USB device: SUBSYSTEM=usb and DEVTYPE=usb_device. Interfaces
/// (DEVTYPE=usb_interface), endpoints and other subsystems are not device
/// events.
pub fn is_usb_device_event(msg: &[u8]) -> bool {
    let mut fields = msg.split(|&b| b == 0);
    match fields.next() {
        Some(head) if head.contains(&b'@') => {}
        _ => return false, // libudev's re-broadcast starts with "libudev\0"
    }
    let (mut usb, mut device) = (false, false);
    for f in fields {
        if f == b"SUBSYSTEM=usb" {
            usb = true;
        } else if f == b"DEVTYPE=usb_device" {
            device = true;
        }
    }
    usb && device
}

/// The attributes `listDevices()` (src/enumeration.ts) reads from a
/// device's sysfs directory, and from each of its interfaces.
///
/// The strings and the configuration take the device lock
/// (drivers/usb/core/sysfs.c, usb_lock_device_interruptible), which the
/// kernel holds while it probes drivers: at an add, the first of them waits
/// until the device is configured. The strings come first, as they are
/// what selectors match; a device unplugged within that wait may leave the
/// later ones unread (missing).
const DEVICE_FILES: [&str; 9] = [
    "descriptors",
    "busnum",
    "devnum",
    "speed",
    "manufacturer",
    "product",
    "serial",
    "bConfigurationValue",
    "configuration",
];
const INTERFACE_FILES: [&str; 7] = [
    "bInterfaceNumber",
    "bAlternateSetting",
    "bInterfaceClass",
    "bInterfaceSubClass",
    "bInterfaceProtocol",
    "bNumEndpoints",
    "interface",
];

fn put(out: &mut Vec<u8>, name: &str, data: Option<&[u8]>) {
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    match data {
        Some(d) => {
            out.extend_from_slice(&(d.len() as i32).to_le_bytes());
            out.extend_from_slice(d);
        }
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
    }
}

/// The device's sysfs attributes, read the moment its add or bind uevent
/// arrives, while the device is surely still there (JS may read the event
/// much later, when the device is gone or another one took its path).
/// Encoded as a u32 count, then per file a u32 name length, the name
/// (relative to the device directory; an interface's `driver` link gives
/// its target), an i32 data length (-1: missing) and the data.
fn capture(devpath: &[u8]) -> Vec<u8> {
    let mut files = Vec::with_capacity(4096);
    let mut count = 0u32;
    let Ok(devpath) = std::str::from_utf8(devpath) else {
        return 0u32.to_le_bytes().to_vec();
    };
    let dir = format!("/sys{devpath}");
    for f in DEVICE_FILES {
        put(
            &mut files,
            f,
            std::fs::read(format!("{dir}/{f}")).ok().as_deref(),
        );
        count += 1;
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.contains(':') {
                continue;
            }
            for f in INTERFACE_FILES {
                let rel = format!("{name}/{f}");
                put(
                    &mut files,
                    &rel,
                    std::fs::read(format!("{dir}/{rel}")).ok().as_deref(),
                );
                count += 1;
            }
            let rel = format!("{name}/driver");
            let link = std::fs::read_link(format!("{dir}/{rel}")).ok();
            let target = link.as_ref().and_then(|l| l.to_str()).map(|s| s.as_bytes());
            put(&mut files, &rel, target);
            count += 1;
        }
    }
    let mut out = Vec::with_capacity(4 + files.len());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&files);
    out
}

/// A queue entry: the uevent (u32 length, bytes), then the capture of the
/// device's sysfs attributes for an add or bind (see `capture`), or a
/// count of 0.
fn entry(msg: &[u8]) -> Vec<u8> {
    let head = msg.split(|&b| b == 0).next().unwrap_or(&[]);
    let at = head.iter().position(|&b| b == b'@').unwrap_or(0);
    let action = &head[..at];
    let files = if action == b"add" || action == b"bind" {
        capture(&head[at + 1..])
    } else {
        0u32.to_le_bytes().to_vec()
    };
    let mut out = Vec::with_capacity(4 + msg.len() + files.len());
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(msg);
    out.extend_from_slice(&files);
    out
}

impl Hotplug {
    fn push(&self, msg: &[u8]) {
        if !is_usb_device_event(msg) {
            return;
        }
        // Read sysfs before taking the lock: JS is never held up by it.
        let e = entry(msg);
        let mut q = self.queue.lock().unwrap();
        if q.events.len() >= self.limit {
            q.overrun = true;
            q.overruns = q.overruns.wrapping_add(1);
        } else {
            q.events.push_back(e);
        }
        drop(q);
        self.ready.notify_all();
    }

    fn overrun(&self) {
        let mut q = self.queue.lock().unwrap();
        q.overrun = true;
        q.overruns = q.overruns.wrapping_add(1);
        drop(q);
        self.ready.notify_all();
    }

    fn run(&self) {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let mut fds = [
                sys::pollfd {
                    fd: self.sock,
                    events: sys::POLLIN,
                    revents: 0,
                },
                sys::pollfd {
                    fd: self.stop_fd,
                    events: sys::POLLIN,
                    revents: 0,
                },
            ];
            let r = unsafe { sys::poll(fds.as_mut_ptr(), 2, -1) };
            if r < 0 {
                if sys::errno() == sys::EINTR {
                    continue;
                }
                return;
            }
            if fds[1].revents != 0 {
                return;
            }
            // Drain everything the socket holds before polling again.
            loop {
                let mut addr = sockaddr_nl {
                    nl_family: 0,
                    nl_pad: 0,
                    nl_pid: 0,
                    nl_groups: 0,
                };
                let mut alen = core::mem::size_of::<sockaddr_nl>() as u32;
                let n = unsafe {
                    recvfrom(
                        self.sock,
                        buf.as_mut_ptr() as *mut c_void,
                        buf.len(),
                        0,
                        &mut addr as *mut sockaddr_nl as *mut c_void,
                        &mut alen,
                    )
                };
                if n < 0 {
                    match sys::errno() {
                        sys::EINTR => continue,
                        // The kernel dropped events: the socket buffer overflowed.
                        ENOBUFS => {
                            self.overrun();
                            continue;
                        }
                        _ => break, // EAGAIN: drained
                    }
                }
                if addr.nl_pid != 0 {
                    continue; // not from the kernel
                }
                self.push(&buf[..n as usize]);
            }
        }
    }
}

fn neg_errno() -> i32 {
    -sys::errno()
}

/// Opens a listener: a uevent socket on the kernel's group, its buffer
/// (`rcvbuf` bytes, <= 0 for 8 MiB) and its draining thread, which keeps
/// at most `queue_limit` events (<= 0 for 65536). `out[0]` gets 0 or
/// -errno, `out[1]` the socket buffer the kernel granted. Returns the
/// listener, or null.
///
/// # Safety
/// `out` must point to two i32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_hotplug_open(
    rcvbuf: i32,
    queue_limit: i32,
    out: *mut i32,
) -> *const Hotplug {
    *out = 0;
    *out.add(1) = 0;
    let sock = sys::socket(
        AF_NETLINK,
        SOCK_DGRAM | sys::SOCK_CLOEXEC | SOCK_NONBLOCK,
        NETLINK_KOBJECT_UEVENT,
    );
    if sock < 0 {
        *out = neg_errno();
        return core::ptr::null();
    }
    let want: c_int = if rcvbuf > 0 { rcvbuf } else { DEFAULT_RCVBUF };
    let p = &want as *const c_int as *const c_void;
    let n = core::mem::size_of::<c_int>() as u32;
    // FORCE ignores rmem_max but needs CAP_NET_ADMIN; without it, the capped one.
    if setsockopt(sock, sys::SOL_SOCKET, SO_RCVBUFFORCE, p, n) < 0 {
        setsockopt(sock, sys::SOL_SOCKET, SO_RCVBUF, p, n);
    }
    let mut granted: c_int = 0;
    let mut glen = n;
    sys::getsockopt(
        sock,
        sys::SOL_SOCKET,
        SO_RCVBUF,
        &mut granted as *mut c_int as *mut c_void,
        &mut glen,
    );
    let addr = sockaddr_nl {
        nl_family: AF_NETLINK as u16,
        nl_pad: 0,
        nl_pid: 0,
        nl_groups: UEVENT_GROUP_KERNEL,
    };
    let alen = core::mem::size_of::<sockaddr_nl>() as u32;
    if sys::bind(sock, &addr as *const sockaddr_nl as *const c_void, alen) < 0 {
        *out = neg_errno();
        sys::close(sock);
        return core::ptr::null();
    }
    let stop_fd = sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK);
    if stop_fd < 0 {
        *out = neg_errno();
        sys::close(sock);
        return core::ptr::null();
    }
    let h = Arc::new(Hotplug {
        sock,
        stop_fd,
        rcvbuf: granted,
        limit: if queue_limit > 0 {
            queue_limit as usize
        } else {
            DEFAULT_QUEUE_LIMIT
        },
        queue: Mutex::new(Queue {
            events: VecDeque::new(),
            overrun: false,
            overruns: 0,
            closing: false,
        }),
        ready: Condvar::new(),
        thread: Mutex::new(None),
    });
    let h2 = h.clone();
    match std::thread::Builder::new()
        .name("usbkit-hotplug".into())
        .spawn(move || h2.run())
    {
        Ok(t) => *h.thread.lock().unwrap() = Some(t),
        Err(_) => {
            sys::close(sock);
            sys::close(stop_fd);
            *out = -ENOMEM;
            return core::ptr::null();
        }
    }
    *out.add(1) = granted;
    Arc::into_raw(h)
}

/// The parked wait (called `nonblocking`): returns the number of queued
/// events (plus one when an overrun is pending) once there is something,
/// 0 after `timeout_ms` (-1: none), -ESHUTDOWN once stopped.
///
/// # Safety
/// `h` must come from `usbkit_hotplug_open` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn usbkit_hotplug_wait(h: *const Hotplug, timeout_ms: i32) -> i32 {
    let h = &*h;
    let deadline = if timeout_ms >= 0 {
        Some(sys::now_ms() + timeout_ms as f64)
    } else {
        None
    };
    let mut q = h.queue.lock().unwrap();
    loop {
        if q.closing {
            return -ESHUTDOWN;
        }
        if !q.events.is_empty() || q.overrun {
            return q.events.len() as i32 + q.overrun as i32;
        }
        match deadline {
            None => q = h.ready.wait(q).unwrap(),
            Some(d) => {
                let left = d - sys::now_ms();
                if left <= 0.0 {
                    return 0;
                }
                q = h
                    .ready
                    .wait_timeout(q, std::time::Duration::from_micros((left * 1000.0) as u64))
                    .unwrap()
                    .0;
            }
        }
    }
}

/// Moves queued events into `buf` (`cap` bytes), oldest first, each as a
/// little-endian u32 length and its bytes (see `entry`), as many as fit. `info[0]` gets 1
/// when events were lost since the last call (then cleared), `info[1]` the
/// events still queued, `info[2]` the overruns in all. Returns the bytes
/// written.
///
/// # Safety
/// `h` as for `usbkit_hotplug_wait`; `buf` must hold `cap` bytes, `info`
/// three i32.
#[no_mangle]
pub unsafe extern "C" fn usbkit_hotplug_read(
    h: *const Hotplug,
    buf: *mut u8,
    cap: u32,
    info: *mut i32,
) -> i32 {
    let h = &*h;
    let mut q = h.queue.lock().unwrap();
    let mut at = 0usize;
    while let Some(e) = q.events.front() {
        if at + 4 + e.len() > cap as usize {
            break;
        }
        let len = (e.len() as u32).to_le_bytes();
        core::ptr::copy_nonoverlapping(len.as_ptr(), buf.add(at), 4);
        core::ptr::copy_nonoverlapping(e.as_ptr(), buf.add(at + 4), e.len());
        at += 4 + e.len();
        q.events.pop_front();
    }
    *info = q.overrun as i32;
    q.overrun = false;
    *info.add(1) = q.events.len() as i32;
    *info.add(2) = q.overruns as i32;
    at as i32
}

/// Stops the listener: wakes a parked wait (it returns -ESHUTDOWN), stops
/// and joins the thread, closes the socket. Idempotent. JS then awaits its
/// parked wait and frees the listener.
///
/// # Safety
/// `h` as for `usbkit_hotplug_wait`.
#[no_mangle]
pub unsafe extern "C" fn usbkit_hotplug_stop(h: *const Hotplug) -> i32 {
    let h = &*h;
    {
        let mut q = h.queue.lock().unwrap();
        if q.closing {
            return 0;
        }
        q.closing = true;
        q.events.clear();
    }
    h.ready.notify_all();
    let one: u64 = 1;
    sys::write(h.stop_fd, &one as *const u64 as *const c_void, 8);
    if let Some(t) = h.thread.lock().unwrap().take() {
        let _ = t.join();
    }
    sys::close(h.sock);
    sys::close(h.stop_fd);
    0
}

/// Frees a stopped listener. No wait may be parked on it.
///
/// # Safety
/// `h` from `usbkit_hotplug_open`, stopped, not freed before.
#[no_mangle]
pub unsafe extern "C" fn usbkit_hotplug_free(h: *const Hotplug) {
    if h.is_null() {
        return;
    }
    usbkit_hotplug_stop(h);
    drop(Arc::from_raw(h));
}

/// The socket buffer the kernel granted, in bytes.
///
/// # Safety
/// `h` as for `usbkit_hotplug_wait`.
#[no_mangle]
pub unsafe extern "C" fn usbkit_hotplug_rcvbuf(h: *const Hotplug) -> i32 {
    (*h).rcvbuf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_usb_device_events() {
        let dev = b"add@/devices/platform/dummy_hcd.0/usb2/2-1\0ACTION=add\0DEVPATH=/devices/platform/dummy_hcd.0/usb2/2-1\0SUBSYSTEM=usb\0DEVTYPE=usb_device\0BUSNUM=002\0DEVNUM=003\0SEQNUM=1\0";
        let intf = b"add@/devices/platform/dummy_hcd.0/usb2/2-1/2-1:1.0\0ACTION=add\0SUBSYSTEM=usb\0DEVTYPE=usb_interface\0SEQNUM=2\0";
        let net = b"add@/devices/virtual/net/lo\0ACTION=add\0SUBSYSTEM=net\0SEQNUM=3\0";
        let udev = b"libudev\0\xfe\xed\xca\xfeSUBSYSTEM=usb\0DEVTYPE=usb_device\0";
        let ep = b"add@/devices/x/usb2/2-1/ep_00\0ACTION=add\0SUBSYSTEM=usb_endpoint\0DEVTYPE=usb_device\0";
        assert!(is_usb_device_event(dev));
        assert!(!is_usb_device_event(intf));
        assert!(!is_usb_device_event(net));
        assert!(!is_usb_device_event(udev));
        assert!(!is_usb_device_event(ep));
        assert!(!is_usb_device_event(b""));
    }

    #[test]
    fn an_add_captures_the_attributes_a_remove_does_not() {
        // A path that does not exist: every file is reported missing.
        let add = entry(b"add@/devices/nowhere/usb9/9-1\0SUBSYSTEM=usb\0DEVTYPE=usb_device\0");
        let msg_len = u32::from_le_bytes(add[0..4].try_into().unwrap()) as usize;
        let at = 4 + msg_len;
        let count = u32::from_le_bytes(add[at..at + 4].try_into().unwrap());
        assert_eq!(count as usize, DEVICE_FILES.len());
        let name_len = u32::from_le_bytes(add[at + 4..at + 8].try_into().unwrap()) as usize;
        assert_eq!(&add[at + 8..at + 8 + name_len], b"descriptors");
        let data_len = i32::from_le_bytes(
            add[at + 8 + name_len..at + 12 + name_len]
                .try_into()
                .unwrap(),
        );
        assert_eq!(data_len, -1);
        let rm = entry(b"remove@/devices/nowhere/usb9/9-1\0SUBSYSTEM=usb\0");
        let msg_len = u32::from_le_bytes(rm[0..4].try_into().unwrap()) as usize;
        assert_eq!(&rm[4 + msg_len..], &[0, 0, 0, 0]);
    }

    #[test]
    fn queue_limit_counts_an_overrun() {
        let mut out = [0i32; 2];
        let h = unsafe { usbkit_hotplug_open(0, 2, out.as_mut_ptr()) };
        if h.is_null() {
            // No netlink in this sandbox: nothing to test here.
            return;
        }
        let hp = unsafe { &*h };
        let ev = b"remove@/devices/a/usb1/1-1\0ACTION=remove\0SUBSYSTEM=usb\0DEVTYPE=usb_device\0";
        for _ in 0..3 {
            hp.push(ev);
        }
        assert_eq!(unsafe { usbkit_hotplug_wait(h, 0) }, 3); // 2 events + overrun
        let mut buf = vec![0u8; 4096];
        let mut info = [0i32; 3];
        let n = unsafe {
            usbkit_hotplug_read(h, buf.as_mut_ptr(), buf.len() as u32, info.as_mut_ptr())
        };
        // Each: entry length, uevent length, uevent, a capture count of 0.
        let one = 4 + 4 + ev.len() + 4;
        assert_eq!(n as usize, 2 * one);
        assert_eq!(
            u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize,
            one - 4
        );
        assert_eq!(
            u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize,
            ev.len()
        );
        assert_eq!(info, [1, 0, 1]);
        assert_eq!(unsafe { usbkit_hotplug_wait(h, 0) }, 0);
        unsafe { usbkit_hotplug_free(h) };
    }
}
