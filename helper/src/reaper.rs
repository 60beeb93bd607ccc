//! The reaper thread: polls every busy usbfs fd and reaps with
//! REAPURBNDELAY until EAGAIN, writing one record per URB into the ring.
//!
//! Every open device is polled, busy or idle: usbdev_poll (devio.c) reports
//! EPOLLOUT only when a completed URB waits to be reaped, and EPOLLHUP /
//! EPOLLERR only once the device is disconnected (ps->list is the device's
//! list of open files, emptied at unplug). So an idle fd costs nothing, a
//! submit needs no wakeup, and an unplug is seen even with nothing in flight.
//! A gone device is dropped from the set, or its EPOLLHUP would spin.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::abi::{self, usbdevfs_urb};
use crate::device::Dev;
use crate::ring::{Ring, KIND_GONE, KIND_URB};
use crate::stream::Stream;
use crate::sys;

pub struct Shared {
    pub ring: Ring,
    pub wake_fd: i32,
    pub devices: Mutex<Vec<Arc<Dev>>>,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn wake(&self) {
        let one: u64 = 1;
        unsafe { sys::write(self.wake_fd, &one as *const u64 as *const _, 8) };
    }
}

pub fn run(shared: Arc<Shared>) {
    // Reused across iterations: the steady state allocates nothing.
    let mut busy: Vec<Arc<Dev>> = Vec::with_capacity(16);
    let mut fds: Vec<sys::pollfd> = Vec::with_capacity(17);
    loop {
        busy.clear();
        fds.clear();
        fds.push(sys::pollfd {
            fd: shared.wake_fd,
            events: sys::POLLIN,
            revents: 0,
        });
        {
            let devices = shared.devices.lock().unwrap();
            for d in devices.iter() {
                if !d.gone.load(Ordering::Acquire) {
                    fds.push(sys::pollfd {
                        fd: d.fd,
                        events: sys::POLLOUT,
                        revents: 0,
                    });
                    busy.push(d.clone());
                }
            }
        }
        let r = unsafe { sys::poll(fds.as_mut_ptr(), fds.len() as _, -1) };
        if r < 0 {
            continue; // EINTR
        }
        if fds[0].revents & sys::POLLIN != 0 {
            let mut v: u64 = 0;
            unsafe { sys::read(shared.wake_fd, &mut v as *mut u64 as *mut _, 8) };
            if shared.stop.load(Ordering::Acquire) {
                break;
            }
        }
        for (i, d) in busy.iter().enumerate() {
            if fds[i + 1].revents != 0 {
                reap_all(&shared.ring, d);
            }
        }
        shared.ring.publish();
    }
    busy.clear();
}

fn reap_all(ring: &Ring, d: &Dev) {
    loop {
        let mut urb: *mut usbdevfs_urb = core::ptr::null_mut();
        let r = unsafe { sys::ioctl(d.fd, abi::USBDEVFS_REAPURBNDELAY as _, &mut urb) };
        if r == 0 {
            let (status, actual, errors) =
                unsafe { ((*urb).status, (*urb).actual_length, (*urb).error_count) };
            if let Some(slot) = d.slot_of(urb) {
                ring.push(KIND_URB, d.id, slot, status, actual, errors);
                d.reaped(slot);
            } else {
                // A stream URB: usercontext is its stream, alive until its
                // last URB is reaped (usbkit_stream_free refuses before).
                let ctx = unsafe { (*urb).usercontext } as *const Stream;
                if !ctx.is_null() {
                    let s = unsafe { &*ctx };
                    if let Some(i) = s.index_of(urb) {
                        d.inflight.fetch_sub(1, Ordering::AcqRel);
                        s.completed(ring, i, status, actual, &mut |j, len| {
                            d.submit_stream(s, j, len)
                        });
                    }
                }
            }
            continue;
        }
        match sys::errno() {
            sys::EINTR => continue,
            sys::EAGAIN => return,
            // Disconnected and nothing left to reap: every URB the kernel
            // killed at unplug has been reported above.
            sys::ENODEV => {
                if !d.gone.swap(true, Ordering::AcqRel) {
                    ring.push(KIND_GONE, d.id, 0, -sys::ENODEV, 0, 0);
                }
                return;
            }
            _ => return,
        }
    }
}
