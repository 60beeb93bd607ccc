//! Helper-side streams: the reaper thread resubmits stream URBs itself, so
//! the kernel's queue stays `in_flight` deep however late JavaScript is.
//!
//! A stream owns `nbufs` buffers (usbfs-mapped, or ordinary memory) and one
//! URB struct per buffer. Each buffer is, at any time, in exactly one place:
//! - the kernel (submitted, `in_kernel[i]`);
//! - the return queue: a single-producer/single-consumer ring in the control
//!   block that JavaScript writes (`Atomics.store` of the entry, then of
//!   `CTL_RET_HEAD`) and the helper reads (Acquire load of the head);
//! - JavaScript: a completed IN chunk the user still holds, an OUT buffer
//!   being filled, or a buffer a stopped stream gave back.
//!
//! The reaper pushes one `KIND_STREAM` record per reaped URB and, on the
//! same round, takes returned buffers from the queue and submits them while
//! fewer than `in_flight` are queued. When the queue ran dry (JavaScript held
//! every spare), JavaScript sees `CTL_QUEUED` at 0 after handing a buffer
//! back (below `in_flight`, for iso) and calls `usbkit_stream_refill`, so a
//! drained queue restarts without waiting for a completion.
//!
//! A URB that ends with an error (a stall, a disconnection) halts the stream:
//! nothing more is submitted, JavaScript reports the error and stops it.
//! Stopping discards every URB in the kernel; when the last is reaped the
//! reaper pushes `KIND_STREAM_END`, and only then may JavaScript free the
//! stream (after detaching its views of the buffers).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use crate::abi::{self, usbdevfs_iso_packet_desc, usbdevfs_urb, URB_ISO_DESC_OFFSET};
use crate::device::SLOT_SIZE;
use crate::ring::{Ring, KIND_STREAM, KIND_STREAM_END, KIND_STREAM_HALT};
use crate::sys;

/// Control block words, shared with JavaScript (src/usbfs.ts section B).
/// URBs the kernel holds now. Written by the helper under the stream lock.
pub const CTL_QUEUED: usize = 0;
/// Return queue: entries written by JavaScript (free-running counter).
pub const CTL_RET_HEAD: usize = 1;
/// Return queue: entries taken by the helper (free-running counter).
pub const CTL_RET_TAIL: usize = 2;
/// 0 running, 1 halted (an error: nothing more is submitted), 2 stopped.
pub const CTL_STATE: usize = 3;
/// The first submit error, as a negative errno; 0 if none.
pub const CTL_ERRNO: usize = 4;
/// URBs submitted in all (statistics).
pub const CTL_SUBMITS: usize = 5;
/// 1 when the buffers are usbfs-mapped (zero-copy).
pub const CTL_MAPPED: usize = 6;
/// Header words; the return ring (`nbufs` words) and the OUT lengths
/// (`nbufs` words) follow.
pub const CTL_HEADER: usize = 8;

pub const STATE_RUNNING: i32 = 0;
pub const STATE_HALTED: i32 = 1;
pub const STATE_STOPPED: i32 = 2;

const PAGE: usize = 4096;
const EREMOTEIO: i32 = 121;
const EXDEV: i32 = 18;
const ENOMEM: i32 = 12;
const EBUSY: i32 = 16;

/// What to stream.
pub struct Spec {
    pub type_: u8,
    pub endpoint: u8,
    pub flags: u32,
    /// Bytes per buffer (for iso: the packets' lengths added up).
    pub size: u32,
    pub in_flight: u32,
    pub nbufs: u32,
    /// Iso packet lengths per URB; empty for bulk and interrupt.
    pub iso: Vec<u32>,
}

struct Inner {
    in_kernel: Box<[bool]>,
}

pub struct Stream {
    pub id: u32,
    pub dev_id: u32,
    type_: u8,
    endpoint: u8,
    flags: u32,
    size: u32,
    pub in_flight: u32,
    pub nbufs: u32,
    out: bool,
    iso: Box<[u32]>,
    bufs: Box<[*mut u8]>,
    /// Bytes mapped per buffer; 0 for ordinary memory.
    map_len: usize,
    _heap: Box<[u64]>,
    urbs: Box<[u64]>,
    ctl: Box<[AtomicI32]>,
    lock: Mutex<Inner>,
}

// The raw pointers are the stream's own memory; every mutation of the
// bookkeeping is under `lock` or through atomics.
unsafe impl Send for Stream {}
unsafe impl Sync for Stream {}

impl Stream {
    /// Allocates the buffers: mapped on `fd` when `mmap` is set and the
    /// kernel agrees (ENOMEM is an error: usbfs_memory_mb is reached; any
    /// other mmap failure falls back to ordinary memory), else ordinary.
    pub fn new(id: u32, dev_id: u32, fd: i32, spec: &Spec, mmap: bool) -> Result<Stream, i32> {
        let n = spec.nbufs as usize;
        if n == 0 || spec.in_flight == 0 || spec.in_flight > spec.nbufs || spec.size == 0 {
            return Err(sys::EINVAL);
        }
        if spec.iso.len() > abi::MAX_ISO_PACKETS {
            return Err(sys::EINVAL);
        }
        let out = spec.endpoint & 0x80 == 0;
        let stride = (spec.size as usize).div_ceil(PAGE) * PAGE;
        let mut bufs: Vec<*mut u8> = Vec::with_capacity(n);
        let mut map_len = 0;
        if mmap {
            for _ in 0..n {
                let p = unsafe {
                    sys::mmap(
                        core::ptr::null_mut(),
                        stride,
                        sys::PROT_READ | sys::PROT_WRITE,
                        sys::MAP_SHARED,
                        fd,
                        0,
                    )
                };
                if p == sys::MAP_FAILED {
                    let e = sys::errno();
                    for &b in &bufs {
                        unsafe { sys::munmap(b as *mut _, stride) };
                    }
                    bufs.clear();
                    if e == ENOMEM {
                        return Err(ENOMEM);
                    }
                    break; // ordinary memory below
                }
                bufs.push(p as *mut u8);
            }
            if !bufs.is_empty() {
                map_len = stride;
            }
        }
        let heap: Box<[u64]> = if map_len == 0 {
            let words = n * stride / 8;
            let mut v = Vec::new();
            if v.try_reserve_exact(words).is_err() {
                return Err(ENOMEM);
            }
            v.resize(words, 0u64);
            let h = v.into_boxed_slice();
            let base = h.as_ptr() as *mut u8;
            for i in 0..n {
                bufs.push(unsafe { base.add(i * stride) });
            }
            h
        } else {
            Box::new([])
        };
        let ctl: Box<[AtomicI32]> = (0..CTL_HEADER + 2 * n).map(|_| AtomicI32::new(0)).collect();
        ctl[CTL_MAPPED].store((map_len != 0) as i32, Ordering::Relaxed);
        if !out {
            // Every IN buffer starts in the return queue: the first refill
            // submits `in_flight` of them, the rest are the spares.
            for i in 0..n {
                ctl[CTL_HEADER + i].store(i as i32, Ordering::Relaxed);
            }
            ctl[CTL_RET_HEAD].store(n as i32, Ordering::Release);
        }
        Ok(Stream {
            id,
            dev_id,
            type_: spec.type_,
            endpoint: spec.endpoint,
            flags: spec.flags,
            size: spec.size,
            in_flight: spec.in_flight,
            nbufs: spec.nbufs,
            out,
            iso: spec.iso.clone().into_boxed_slice(),
            bufs: bufs.into_boxed_slice(),
            map_len,
            _heap: heap,
            urbs: vec![0u64; n * SLOT_SIZE / 8].into_boxed_slice(),
            ctl,
            lock: Mutex::new(Inner {
                in_kernel: vec![false; n].into_boxed_slice(),
            }),
        })
    }

    pub fn ctl_ptr(&self) -> *mut u8 {
        self.ctl.as_ptr() as *mut u8
    }

    pub fn ctl_bytes(&self) -> usize {
        self.ctl.len() * 4
    }

    pub fn buffer(&self, i: u32) -> *mut u8 {
        self.bufs
            .get(i as usize)
            .copied()
            .unwrap_or(core::ptr::null_mut())
    }

    pub fn urbs_ptr(&self) -> *mut u8 {
        self.urbs.as_ptr() as *mut u8
    }

    pub fn urbs_bytes(&self) -> usize {
        self.urbs.len() * 8
    }

    fn urb(&self, i: u32) -> *mut usbdevfs_urb {
        unsafe { self.urbs_ptr().add(i as usize * SLOT_SIZE) as *mut usbdevfs_urb }
    }

    /// The buffer index of one of this stream's URBs.
    pub fn index_of(&self, urb: *mut usbdevfs_urb) -> Option<u32> {
        let off = (urb as usize).wrapping_sub(self.urbs_ptr() as usize);
        if off % SLOT_SIZE != 0 || off / SLOT_SIZE >= self.nbufs as usize {
            return None;
        }
        Some((off / SLOT_SIZE) as u32)
    }

    pub fn state(&self) -> i32 {
        self.ctl[CTL_STATE].load(Ordering::Acquire)
    }

    pub fn queued(&self) -> i32 {
        self.ctl[CTL_QUEUED].load(Ordering::Acquire)
    }

    /// Fills URB `i` for a submit of `len` bytes.
    fn prepare(&self, i: u32, len: i32) -> *mut usbdevfs_urb {
        let urb = self.urb(i);
        unsafe {
            (*urb).type_ = self.type_;
            (*urb).endpoint = self.endpoint;
            (*urb).status = 0;
            (*urb).flags = self.flags;
            (*urb).buffer = self.bufs[i as usize];
            (*urb).buffer_length = len;
            (*urb).actual_length = 0;
            (*urb).start_frame = 0;
            (*urb).number_of_packets = self.iso.len() as i32;
            (*urb).error_count = 0;
            (*urb).signr = 0;
            (*urb).usercontext = self as *const Stream as *mut u8;
            let desc = (urb as *mut u8).add(URB_ISO_DESC_OFFSET) as *mut usbdevfs_iso_packet_desc;
            for (k, &l) in self.iso.iter().enumerate() {
                *desc.add(k) = usbdevfs_iso_packet_desc {
                    length: l,
                    actual_length: 0,
                    status: 0,
                };
            }
        }
        urb
    }

    /// The URB submit the device path uses: SUBMITURB on `fd`.
    pub fn submit_on(&self, fd: i32, i: u32, len: i32) -> Result<(), i32> {
        let urb = self.prepare(i, len);
        let r = unsafe { sys::ioctl(fd, abi::USBDEVFS_SUBMITURB as _, urb) };
        if r < 0 {
            Err(sys::errno())
        } else {
            Ok(())
        }
    }

    /// Takes returned buffers and submits them while fewer than `in_flight`
    /// are queued. `submit(i, len)` hands URB `i` to the kernel. Returns how
    /// many were submitted, or the errno of a failed submit (the stream is
    /// then halted). The caller holds the lock.
    fn refill_locked(
        &self,
        inner: &mut Inner,
        submit: &mut dyn FnMut(u32, i32) -> Result<(), i32>,
    ) -> Result<u32, i32> {
        let mut n = 0;
        let nbufs = self.nbufs;
        while self.state() == STATE_RUNNING && (self.queued() as u32) < self.in_flight {
            let tail = self.ctl[CTL_RET_TAIL].load(Ordering::Relaxed) as u32;
            let head = self.ctl[CTL_RET_HEAD].load(Ordering::Acquire) as u32;
            if tail == head {
                break;
            }
            let i = self.ctl[CTL_HEADER + (tail % nbufs) as usize].load(Ordering::Acquire) as u32;
            self.ctl[CTL_RET_TAIL].store(tail.wrapping_add(1) as i32, Ordering::Release);
            if i >= nbufs || inner.in_kernel[i as usize] || head.wrapping_sub(tail) > nbufs {
                // JavaScript broke the protocol: stop feeding the kernel.
                return Err(self.halt(sys::EINVAL));
            }
            let len = if self.out {
                let l = self.ctl[CTL_HEADER + nbufs as usize + i as usize].load(Ordering::Acquire);
                l.clamp(0, self.size as i32)
            } else {
                self.size as i32
            };
            // Counted before the ioctl: the reaper may reap it at once.
            inner.in_kernel[i as usize] = true;
            self.ctl[CTL_QUEUED].fetch_add(1, Ordering::AcqRel);
            if let Err(e) = submit(i, len) {
                inner.in_kernel[i as usize] = false;
                self.ctl[CTL_QUEUED].fetch_sub(1, Ordering::AcqRel);
                return Err(self.halt(e));
            }
            self.ctl[CTL_SUBMITS].fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
        Ok(n)
    }

    fn halt(&self, errno: i32) -> i32 {
        let _ = self.ctl[CTL_STATE].compare_exchange(
            STATE_RUNNING,
            STATE_HALTED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let _ =
            self.ctl[CTL_ERRNO].compare_exchange(0, -errno, Ordering::AcqRel, Ordering::Acquire);
        errno
    }

    /// JavaScript's refill (sync FFI call).
    pub fn refill(&self, submit: &mut dyn FnMut(u32, i32) -> Result<(), i32>) -> Result<u32, i32> {
        let mut inner = self.lock.lock().unwrap();
        self.refill_locked(&mut inner, submit)
    }

    /// The reaper reaped URB `i`: record it, then resubmit returned buffers
    /// on the same round. `submit` as in `refill`.
    pub fn completed(
        &self,
        ring: &Ring,
        i: u32,
        status: i32,
        actual: i32,
        submit: &mut dyn FnMut(u32, i32) -> Result<(), i32>,
    ) {
        let mut inner = self.lock.lock().unwrap();
        if !inner.in_kernel[i as usize] {
            return;
        }
        inner.in_kernel[i as usize] = false;
        let queued = self.ctl[CTL_QUEUED].fetch_sub(1, Ordering::AcqRel) - 1;
        if status != 0 && status != -EREMOTEIO && status != -EXDEV {
            // A stall, a disconnection, a discard: feed the kernel no more.
            let _ = self.ctl[CTL_STATE].compare_exchange(
                STATE_RUNNING,
                STATE_HALTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        ring.push(KIND_STREAM, self.dev_id, self.id, status, actual, i as i32);
        if self.state() == STATE_RUNNING {
            if let Err(e) = self.refill_locked(&mut inner, submit) {
                ring.push(KIND_STREAM_HALT, self.dev_id, self.id, -e, 0, -1);
            }
        } else if self.state() == STATE_STOPPED && queued == 0 {
            ring.push(KIND_STREAM_END, self.dev_id, self.id, 0, 0, -1);
        }
    }

    /// Stops feeding the kernel and discards every URB it holds with
    /// `discard(i)`. Returns how many were queued: when more than 0, a
    /// `KIND_STREAM_END` record follows the last reap.
    pub fn stop(&self, discard: &mut dyn FnMut(*mut usbdevfs_urb)) -> i32 {
        let inner = self.lock.lock().unwrap();
        self.ctl[CTL_STATE].store(STATE_STOPPED, Ordering::Release);
        for (i, &k) in inner.in_kernel.iter().enumerate() {
            if k {
                discard(self.urb(i as u32));
            }
        }
        self.queued()
    }

    /// True once stopped with nothing in the kernel: the memory may go.
    pub fn can_free(&self) -> Result<(), i32> {
        if self.state() == STATE_STOPPED && self.queued() == 0 {
            Ok(())
        } else {
            Err(EBUSY)
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if self.map_len != 0 {
            for &b in self.bufs.iter() {
                unsafe { sys::munmap(b as *mut _, self.map_len) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{
        RECORD_WORDS, REC_ACTUAL, REC_ERRORS, REC_KIND, REC_SLOT, REC_STATUS, RING_CAPACITY,
    };

    fn spec(endpoint: u8, in_flight: u32, nbufs: u32) -> Spec {
        Spec {
            type_: abi::USBDEVFS_URB_TYPE_BULK,
            endpoint,
            flags: 0,
            size: 1000,
            in_flight,
            nbufs,
            iso: vec![],
        }
    }

    fn ring() -> Ring {
        Ring::new(unsafe { sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK) })
    }

    /// The records published so far, as (kind, stream, status, actual, index).
    fn records(ring: &Ring, from: u32) -> Vec<(i32, i32, i32, i32, i32)> {
        ring.publish();
        let head = ring.ack(from);
        let w = ring.records_ptr() as *const i32;
        (from..head)
            .map(|t| {
                let b = (t & (RING_CAPACITY - 1)) as usize * RECORD_WORDS;
                unsafe {
                    (
                        *w.add(b + REC_KIND),
                        *w.add(b + REC_SLOT),
                        *w.add(b + REC_STATUS),
                        *w.add(b + REC_ACTUAL),
                        *w.add(b + REC_ERRORS),
                    )
                }
            })
            .collect()
    }

    /// What JavaScript does to hand buffer `i` back (Atomics.store, then the head).
    fn give_back(s: &Stream, i: u32, len: i32) {
        let head = s.ctl[CTL_RET_HEAD].load(Ordering::Relaxed) as u32;
        s.ctl[CTL_HEADER + s.nbufs as usize + i as usize].store(len, Ordering::SeqCst);
        s.ctl[CTL_HEADER + (head % s.nbufs) as usize].store(i as i32, Ordering::SeqCst);
        s.ctl[CTL_RET_HEAD].store(head.wrapping_add(1) as i32, Ordering::SeqCst);
    }

    #[test]
    fn in_stream_queues_in_flight_and_keeps_the_rest_as_spares() {
        let s = Stream::new(1, 9, -1, &spec(0x81, 4, 8), false).unwrap();
        assert_eq!(s.ctl[CTL_MAPPED].load(Ordering::Relaxed), 0);
        let mut sent = vec![];
        assert_eq!(
            s.refill(&mut |i, l| {
                sent.push((i, l));
                Ok(())
            }),
            Ok(4)
        );
        assert_eq!(sent, vec![(0, 1000), (1, 1000), (2, 1000), (3, 1000)]);
        assert_eq!(s.queued(), 4);
        // Already full: a refill submits nothing.
        assert_eq!(
            s.refill(&mut |_, _| panic!("submitted past in_flight")),
            Ok(0)
        );
    }

    #[test]
    fn the_reaper_resubmits_spares_however_late_javascript_is() {
        let r = ring();
        let s = Stream::new(2, 9, -1, &spec(0x81, 4, 8), false).unwrap();
        s.refill(&mut |_, _| Ok(())).unwrap();
        let mut sent = vec![];
        // JavaScript hands nothing back: the four spares keep the queue full.
        for i in 0..4 {
            s.completed(&r, i, 0, 1000, &mut |i, _| {
                sent.push(i);
                Ok(())
            });
            assert_eq!(s.queued(), 4, "queue not kept full");
        }
        assert_eq!(sent, vec![4, 5, 6, 7]);
        // Spares gone: completions drain the queue.
        for i in 4..8 {
            s.completed(&r, i, 0, 500, &mut |_, _| {
                panic!("no buffer was handed back")
            });
        }
        assert_eq!(s.queued(), 0);
        let recs = records(&r, 0);
        assert_eq!(recs.len(), 8);
        assert!(recs
            .iter()
            .enumerate()
            .all(|(k, x)| x.0 == KIND_STREAM && x.1 == 2 && x.4 == k as i32));
        assert_eq!(recs[7].3, 500);
        // JavaScript hands two back; its refill restarts the drained queue.
        give_back(&s, 0, 0);
        give_back(&s, 1, 0);
        let mut sent = vec![];
        assert_eq!(
            s.refill(&mut |i, _| {
                sent.push(i);
                Ok(())
            }),
            Ok(2)
        );
        assert_eq!(sent, vec![0, 1]);
        assert_eq!(s.queued(), 2);
    }

    #[test]
    fn the_return_queue_wraps_for_many_rounds() {
        let r = ring();
        let s = Stream::new(3, 9, -1, &spec(0x81, 3, 5), false).unwrap();
        s.refill(&mut |_, _| Ok(())).unwrap();
        let mut kernel: std::collections::VecDeque<u32> = (0..3).collect();
        let mut tail = 0u32;
        for round in 0..1000 {
            let i = kernel.pop_front().unwrap();
            s.completed(&r, i, 0, round, &mut |j, _| {
                kernel.push_back(j);
                Ok(())
            });
            let recs = records(&r, tail);
            tail = tail.wrapping_add(recs.len() as u32);
            for rec in recs {
                give_back(&s, rec.4 as u32, 0); // JavaScript is done with the chunk
            }
            s.refill(&mut |j, _| {
                kernel.push_back(j);
                Ok(())
            })
            .unwrap();
            assert_eq!(s.queued(), 3);
            assert_eq!(kernel.len(), 3);
        }
        assert_eq!(s.ctl[CTL_SUBMITS].load(Ordering::Relaxed), 1003);
    }

    #[test]
    fn out_stream_sends_only_what_javascript_queued_with_its_length() {
        let r = ring();
        let s = Stream::new(4, 9, -1, &spec(0x01, 2, 4), false).unwrap();
        assert_eq!(
            s.refill(&mut |_, _| panic!("OUT submitted before data")),
            Ok(0)
        );
        give_back(&s, 2, 17);
        give_back(&s, 0, 5000); // clamped to the buffer size
        give_back(&s, 3, 0);
        let mut sent = vec![];
        assert_eq!(
            s.refill(&mut |i, l| {
                sent.push((i, l));
                Ok(())
            }),
            Ok(2)
        );
        assert_eq!(sent, vec![(2, 17), (0, 1000)]);
        // The third waits for room, and goes on the next reap round.
        s.completed(&r, 2, 0, 17, &mut |i, l| {
            sent.push((i, l));
            Ok(())
        });
        assert_eq!(sent[2], (3, 0));
        assert_eq!(records(&r, 0), vec![(KIND_STREAM, 4, 0, 17, 2)]);
    }

    #[test]
    fn an_error_halts_the_stream_and_stop_ends_it_after_the_last_reap() {
        let r = ring();
        let s = Stream::new(5, 9, -1, &spec(0x81, 3, 6), false).unwrap();
        s.refill(&mut |_, _| Ok(())).unwrap();
        s.completed(&r, 0, -32, 0, &mut |_, _| {
            panic!("resubmitted after a stall")
        });
        assert_eq!(s.state(), STATE_HALTED);
        assert_eq!(s.can_free(), Err(EBUSY));
        let mut discarded = vec![];
        assert_eq!(s.stop(&mut |u| discarded.push(s.index_of(u).unwrap())), 2);
        assert_eq!(discarded, vec![1, 2]);
        s.completed(&r, 1, -2, 0, &mut |_, _| panic!());
        assert_eq!(s.can_free(), Err(EBUSY));
        s.completed(&r, 2, -2, 0, &mut |_, _| panic!());
        assert_eq!(s.can_free(), Ok(()));
        let kinds: Vec<i32> = records(&r, 0).iter().map(|x| x.0).collect();
        assert_eq!(
            kinds,
            vec![KIND_STREAM, KIND_STREAM, KIND_STREAM, KIND_STREAM_END]
        );
        // A URB reaped twice (it cannot be, but) is not counted twice.
        s.completed(&r, 2, 0, 0, &mut |_, _| panic!());
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn a_failed_resubmit_halts_with_its_errno_and_says_so_in_the_ring() {
        let r = ring();
        let s = Stream::new(6, 9, -1, &spec(0x81, 2, 4), false).unwrap();
        s.refill(&mut |_, _| Ok(())).unwrap();
        s.completed(&r, 0, 0, 1000, &mut |_, _| Err(sys::ENODEV));
        assert_eq!(s.state(), STATE_HALTED);
        assert_eq!(s.ctl[CTL_ERRNO].load(Ordering::Relaxed), -sys::ENODEV);
        assert_eq!(s.queued(), 1);
        let recs = records(&r, 0);
        assert_eq!(recs[1], (KIND_STREAM_HALT, 6, -sys::ENODEV, 0, -1));
        // Stopped with nothing queued: no end record is due, free at once.
        s.completed(&r, 1, -108 /* ESHUTDOWN */, 0, &mut |_, _| panic!());
        assert_eq!(s.stop(&mut |_| panic!("nothing in the kernel")), 0);
        assert_eq!(s.can_free(), Ok(()));
    }

    #[test]
    fn javascript_breaking_the_protocol_halts_instead_of_double_submitting() {
        let s = Stream::new(7, 9, -1, &spec(0x01, 2, 2), false).unwrap();
        give_back(&s, 1, 10);
        give_back(&s, 1, 10);
        let mut sent = vec![];
        assert_eq!(
            s.refill(&mut |i, _| {
                sent.push(i);
                Ok(())
            }),
            Err(sys::EINVAL)
        );
        assert_eq!(sent, vec![1]);
        assert_eq!(s.state(), STATE_HALTED);
    }

    #[test]
    fn iso_urbs_carry_their_packet_lengths_and_find_their_stream() {
        let mut sp = spec(0x81, 1, 2);
        sp.type_ = abi::USBDEVFS_URB_TYPE_ISO;
        sp.iso = vec![3, 0, 7];
        sp.size = 10;
        let s = Stream::new(8, 9, -1, &sp, false).unwrap();
        let urb = s.prepare(1, 10);
        assert_eq!(s.index_of(urb), Some(1));
        assert_eq!(
            s.index_of(unsafe { (urb as *mut u8).add(8) } as *mut _),
            None
        );
        unsafe {
            assert_eq!((*urb).number_of_packets, 3);
            assert_eq!((*urb).usercontext as *const Stream, &s as *const Stream);
            let d = (urb as *mut u8).add(URB_ISO_DESC_OFFSET) as *const usbdevfs_iso_packet_desc;
            assert_eq!(
                ((*d).length, (*d.add(1)).length, (*d.add(2)).length),
                (3, 0, 7)
            );
        }
        assert_eq!(
            Stream::new(
                8,
                9,
                -1,
                &Spec {
                    in_flight: 3,
                    ..spec(0x81, 3, 2)
                },
                false
            )
            .err(),
            Some(sys::EINVAL)
        );
    }
}
