//! One open usbfs device: its fd, its pool of URB structs, and the count of
//! URBs the kernel holds. The pool is allocated once at open; submitting a
//! transfer reuses a slot and allocates nothing.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::abi::{self, usbdevfs_urb, MAX_ISO_PACKETS, URB_ISO_DESC_OFFSET};
use crate::stream::Stream;
use crate::sys;

/// One URB struct with room for the kernel's maximum of iso packets,
/// rounded up to keep every slot 8-byte aligned.
pub const SLOT_SIZE: usize = (URB_ISO_DESC_OFFSET
    + MAX_ISO_PACKETS * core::mem::size_of::<abi::usbdevfs_iso_packet_desc>()
    + 7)
    & !7;

pub struct Dev {
    pub id: u32,
    pub fd: i32,
    slab: Box<[u64]>,
    pub nslots: u32,
    /// Per slot: 1 while the kernel owns the URB.
    submitted: Box<[AtomicU8]>,
    /// URBs the kernel holds, stream URBs included (close waits for 0).
    pub inflight: AtomicI32,
    pub gone: AtomicBool,
    /// Helper-side streams (stream.rs) of this device.
    pub streams: Mutex<Vec<Arc<Stream>>>,
}

impl Dev {
    pub fn new(id: u32, fd: i32, nslots: u32) -> Dev {
        let words = nslots as usize * SLOT_SIZE / 8;
        Dev {
            id,
            fd,
            slab: vec![0u64; words].into_boxed_slice(),
            nslots,
            submitted: (0..nslots).map(|_| AtomicU8::new(0)).collect(),
            inflight: AtomicI32::new(0),
            gone: AtomicBool::new(false),
            streams: Mutex::new(Vec::new()),
        }
    }

    pub fn slab_ptr(&self) -> *mut u8 {
        self.slab.as_ptr() as *mut u8
    }

    pub fn slab_len(&self) -> usize {
        self.slab.len() * 8
    }

    pub fn urb(&self, slot: u32) -> *mut usbdevfs_urb {
        unsafe { self.slab_ptr().add(slot as usize * SLOT_SIZE) as *mut usbdevfs_urb }
    }

    pub fn slot_of(&self, urb: *mut usbdevfs_urb) -> Option<u32> {
        let off = (urb as usize).wrapping_sub(self.slab_ptr() as usize);
        if off % SLOT_SIZE != 0 || off / SLOT_SIZE >= self.nslots as usize {
            return None;
        }
        Some((off / SLOT_SIZE) as u32)
    }

    /// Fill slot `slot` and hand it to the kernel. Iso packet lengths must
    /// already be in the slot's iso_frame_desc (JS writes them there).
    // The arguments are usbkit_submit's, one for one (lib.rs).
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        &self,
        slot: u32,
        type_: u8,
        endpoint: u8,
        flags: u32,
        buffer: *mut u8,
        length: i32,
        packets_or_stream: i32,
    ) -> Result<(), i32> {
        if slot >= self.nslots {
            return Err(sys::EINVAL);
        }
        if self.submitted[slot as usize].swap(1, Ordering::AcqRel) != 0 {
            return Err(EBUSY);
        }
        let urb = self.urb(slot);
        unsafe {
            (*urb).type_ = type_;
            (*urb).endpoint = endpoint;
            (*urb).status = 0;
            (*urb).flags = flags;
            (*urb).buffer = buffer;
            (*urb).buffer_length = length;
            (*urb).actual_length = 0;
            (*urb).start_frame = 0;
            (*urb).number_of_packets = packets_or_stream;
            (*urb).error_count = 0;
            (*urb).signr = 0;
            (*urb).usercontext = core::ptr::null_mut();
        }
        self.inflight.fetch_add(1, Ordering::AcqRel);
        let r = unsafe { sys::ioctl(self.fd, abi::USBDEVFS_SUBMITURB as _, urb) };
        if r < 0 {
            let e = sys::errno();
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            self.submitted[slot as usize].store(0, Ordering::Release);
            return Err(e);
        }
        Ok(())
    }

    /// Called by the reaper for each reaped URB.
    pub fn reaped(&self, slot: u32) {
        self.submitted[slot as usize].store(0, Ordering::Release);
        self.inflight.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn discard(&self, slot: u32) -> i32 {
        if slot >= self.nslots || self.submitted[slot as usize].load(Ordering::Acquire) == 0 {
            return -sys::EINVAL;
        }
        let r = unsafe { sys::ioctl(self.fd, abi::USBDEVFS_DISCARDURB as _, self.urb(slot)) };
        if r < 0 {
            -sys::errno()
        } else {
            0
        }
    }

    pub fn discard_all(&self) {
        for slot in 0..self.nslots {
            if self.submitted[slot as usize].load(Ordering::Acquire) != 0 {
                self.discard(slot);
            }
        }
        for s in self.streams.lock().unwrap().iter() {
            self.stop_stream(s);
        }
    }

    /// Submits URB `i` of stream `s` (the reaper's and JavaScript's refill).
    pub fn submit_stream(&self, s: &Stream, i: u32, len: i32) -> Result<(), i32> {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        let r = s.submit_on(self.fd, i, len);
        if r.is_err() {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
        }
        r
    }

    /// JavaScript's refill of stream `s`: number submitted, or -errno.
    pub fn refill_stream(&self, s: &Stream) -> i32 {
        match s.refill(&mut |i, len| self.submit_stream(s, i, len)) {
            Ok(n) => n as i32,
            Err(e) => -e,
        }
    }

    /// Stops stream `s`: discards what the kernel holds; returns that count.
    pub fn stop_stream(&self, s: &Stream) -> i32 {
        let fd = self.fd;
        s.stop(&mut |urb| unsafe {
            sys::ioctl(fd, abi::USBDEVFS_DISCARDURB as _, urb);
        })
    }
}

/// The slot is still owned by the kernel (asm-generic/errno-base.h EBUSY).
const EBUSY: i32 = 16;

impl Drop for Dev {
    fn drop(&mut self) {
        unsafe { sys::close(self.fd) };
    }
}
