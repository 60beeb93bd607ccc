//! The completion ring: fixed-size records written by the reaper thread and
//! read by JavaScript through long-lived typed-array views, plus the eventfd
//! doorbell that wakes JavaScript's one parked wait.
//!
//! Single producer (the reaper thread), single consumer (the JS thread).
//! The doorbell rings only when the consumer is parked: `usbkit_wait` sets
//! `parked` with an atomic store, then re-checks the head, and the producer
//! swaps `parked` back to 0 after moving the head (both SeqCst, so one of
//! them sees the other: no lost wakeup). A consumer that is draining or
//! spinning costs the producer no syscall, and a busy stream costs one
//! wakeup per drain, not one per completion.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys;

/// Record layout, in 32-bit words. JS learns these through `usbkit_layout`.
pub const RECORD_WORDS: usize = 8;
pub const REC_KIND: usize = 0;
pub const REC_DEVICE: usize = 1;
pub const REC_SLOT: usize = 2;
pub const REC_STATUS: usize = 3;
pub const REC_ACTUAL: usize = 4;
pub const REC_ERRORS: usize = 5;
/// Words 6-7 hold an f64: CLOCK_MONOTONIC milliseconds at reap.
pub const REC_TIME: usize = 6;

pub const KIND_URB: i32 = 0;
pub const KIND_GONE: i32 = 1;
/// A stream URB was reaped: REC_SLOT is the stream id, REC_ERRORS the
/// buffer index (stream.rs).
pub const KIND_STREAM: i32 = 2;
/// A stopped stream has nothing left in the kernel: it may be freed.
pub const KIND_STREAM_END: i32 = 3;
/// A stream's resubmit failed (REC_STATUS: -errno); it is halted.
pub const KIND_STREAM_HALT: i32 = 4;

/// Power of two, so indexes wrap with a mask. Far above the URB slots any
/// process can have in flight, so the producer never waits in practice.
pub const RING_CAPACITY: u32 = 1 << 16;

pub struct Ring {
    records: Box<[u64]>, // u64 for f64 alignment; viewed as i32 words
    head: AtomicU32,     // written by the producer
    tail: AtomicU32,     // written by the consumer (usbkit_ring_ack)
    /// 1 while the consumer is parked in `wait` (or about to poll).
    parked: AtomicU32,
    pending_head: core::cell::Cell<u32>,
    pub doorbell_fd: i32,
}

// The Cell is touched only by the single producer thread.
unsafe impl Sync for Ring {}
unsafe impl Send for Ring {}

impl Ring {
    pub fn new(doorbell_fd: i32) -> Ring {
        let words = RING_CAPACITY as usize * RECORD_WORDS;
        Ring {
            records: vec![0u64; words / 2].into_boxed_slice(),
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            parked: AtomicU32::new(0),
            pending_head: core::cell::Cell::new(0),
            doorbell_fd,
        }
    }

    pub fn records_ptr(&self) -> *const u8 {
        self.records.as_ptr() as *const u8
    }

    pub fn byte_len(&self) -> usize {
        self.records.len() * 8
    }

    /// Producer: write one record, not yet visible to the consumer.
    pub fn push(&self, kind: i32, device: u32, slot: u32, status: i32, actual: i32, errors: i32) {
        let h = self.pending_head.get();
        // Wait for space: the consumer frees slots as it drains.
        while h.wrapping_sub(self.tail.load(Ordering::Acquire)) >= RING_CAPACITY {
            self.publish();
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        let base = (h & (RING_CAPACITY - 1)) as usize * RECORD_WORDS;
        let words = self.records.as_ptr() as *mut i32;
        unsafe {
            *words.add(base + REC_KIND) = kind;
            *words.add(base + REC_DEVICE) = device as i32;
            *words.add(base + REC_SLOT) = slot as i32;
            *words.add(base + REC_STATUS) = status;
            *words.add(base + REC_ACTUAL) = actual;
            *words.add(base + REC_ERRORS) = errors;
            *(words.add(base + REC_TIME) as *mut f64) = sys::now_ms();
        }
        self.pending_head.set(h.wrapping_add(1));
    }

    /// Producer: make pushed records visible; ring the doorbell if the
    /// consumer is parked.
    pub fn publish(&self) {
        let new_head = self.pending_head.get();
        let old_head = self.head.swap(new_head, Ordering::SeqCst);
        if new_head == old_head {
            return;
        }
        if self.parked.swap(0, Ordering::SeqCst) != 0 {
            self.ring_doorbell();
        }
    }

    /// Consumer: the head, for a spin.
    pub fn head(&self) -> u32 {
        self.head.load(Ordering::SeqCst)
    }

    /// Consumer: park until a record is published or `timeout_ms` passes
    /// (-1: no limit). 1 = records may be there, 0 = timed out.
    pub fn wait(&self, timeout_ms: i32) -> i32 {
        self.parked.store(1, Ordering::SeqCst);
        if self.head.load(Ordering::SeqCst) != self.tail.load(Ordering::SeqCst) {
            self.parked.store(0, Ordering::SeqCst);
            return 1;
        }
        let mut pfd = sys::pollfd {
            fd: self.doorbell_fd,
            events: sys::POLLIN,
            revents: 0,
        };
        let r = unsafe { sys::poll(&mut pfd, 1, timeout_ms) };
        self.parked.store(0, Ordering::SeqCst);
        if r > 0 {
            let mut v: u64 = 0;
            unsafe { sys::read(self.doorbell_fd, &mut v as *mut u64 as *mut _, 8) };
            1
        } else {
            0
        }
    }

    /// Consumer: spin (yielding the CPU each round, so a reaper pinned to
    /// the same CPU runs) until the head moves past `tail` or `max_us`
    /// passes. Returns the head.
    pub fn spin(&self, tail: u32, max_us: f64) -> u32 {
        let end = sys::now_ms() + max_us / 1000.0;
        loop {
            let h = self.head.load(Ordering::SeqCst);
            if h != tail || sys::now_ms() >= end {
                return h;
            }
            unsafe { sys::sched_yield() };
        }
    }

    pub fn ring_doorbell(&self) {
        let one: u64 = 1;
        unsafe { sys::write(self.doorbell_fd, &one as *const u64 as *const _, 8) };
    }

    /// Consumer: everything before `tail` has been read. Returns the head, so
    /// the consumer knows whether to drain again or to park.
    pub fn ack(&self, tail: u32) -> u32 {
        self.tail.store(tail, Ordering::SeqCst);
        self.head.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eventfd() -> i32 {
        unsafe { sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK) }
    }

    fn doorbell_count(fd: i32) -> u64 {
        let mut v: u64 = 0;
        let r = unsafe { sys::read(fd, &mut v as *mut u64 as *mut _, 8) };
        if r == 8 {
            v
        } else {
            0
        }
    }

    fn word(ring: &Ring, index: u32, field: usize) -> i32 {
        let base = (index & (RING_CAPACITY - 1)) as usize * RECORD_WORDS;
        unsafe { *(ring.records_ptr() as *const i32).add(base + field) }
    }

    #[test]
    fn records_are_invisible_until_published() {
        let ring = Ring::new(eventfd());
        ring.push(KIND_URB, 7, 3, -32, 100, 0);
        assert_eq!(ring.ack(0), 0, "head moved before publish");
        ring.publish();
        assert_eq!(ring.ack(0), 1);
        assert_eq!(word(&ring, 0, REC_DEVICE), 7);
        assert_eq!(word(&ring, 0, REC_SLOT), 3);
        assert_eq!(word(&ring, 0, REC_STATUS), -32);
        assert_eq!(word(&ring, 0, REC_ACTUAL), 100);
    }

    #[test]
    fn doorbell_rings_only_when_the_consumer_is_parked() {
        let fd = eventfd();
        let ring = std::sync::Arc::new(Ring::new(fd));
        ring.push(KIND_URB, 1, 0, 0, 0, 0);
        ring.publish();
        assert_eq!(
            doorbell_count(fd),
            0,
            "rang while the consumer was not parked"
        );
        // Records are there: wait returns at once, without a doorbell.
        assert_eq!(ring.wait(-1), 1);
        assert_eq!(ring.ack(1), 1);
        // Parked with nothing there: the next publish wakes it.
        let waiter = {
            let ring = ring.clone();
            std::thread::spawn(move || ring.wait(5000))
        };
        while ring.parked.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        ring.push(KIND_URB, 1, 1, 0, 0, 0);
        ring.publish();
        assert_eq!(
            waiter.join().unwrap(),
            1,
            "the parked consumer was not woken"
        );
        // Once woken, more records ring nothing until it parks again.
        ring.push(KIND_URB, 1, 2, 0, 0, 0);
        ring.publish();
        assert_eq!(doorbell_count(fd), 0);
        assert_eq!(ring.wait(0), 1);
        unsafe { sys::close(fd) };
    }

    #[test]
    fn no_wakeup_is_lost_between_park_and_publish() {
        let fd = eventfd();
        let ring = std::sync::Arc::new(Ring::new(fd));
        let n = 20_000u32;
        let producer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    ring.push(KIND_URB, 0, i, 0, 0, 0);
                    ring.publish();
                    if i % 7 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut tail = 0u32;
        while tail != n {
            // A lost wakeup would block here for the whole timeout.
            assert_eq!(ring.wait(2000), 1, "parked wait missed a publish at {tail}");
            tail = ring.ack(tail);
            tail = ring.spin(tail, 1.0).max(tail);
            ring.ack(tail);
        }
        producer.join().unwrap();
        unsafe { sys::close(fd) };
    }

    #[test]
    fn indexes_wrap_around_the_capacity() {
        let fd = eventfd();
        let ring = Ring::new(fd);
        let mut tail = 0u32;
        for round in 0..3u32 {
            for i in 0..RING_CAPACITY - 1 {
                ring.push(KIND_URB, round, i, 0, i as i32, 0);
            }
            ring.publish();
            let head = ring.ack(tail);
            assert_eq!(head.wrapping_sub(tail), RING_CAPACITY - 1);
            assert_eq!(word(&ring, tail.wrapping_add(5), REC_ACTUAL), 5);
            tail = head;
            ring.ack(tail);
        }
        unsafe { sys::close(fd) };
    }

    #[test]
    fn a_full_ring_waits_for_the_consumer() {
        let fd = eventfd();
        let ring = std::sync::Arc::new(Ring::new(fd));
        let producer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                for i in 0..RING_CAPACITY + 10 {
                    ring.push(KIND_URB, 0, i, 0, 0, 0);
                }
                ring.publish();
            })
        };
        // Drain as the producer fills; the producer must not overwrite.
        let mut tail = 0u32;
        while tail != RING_CAPACITY + 10 {
            let head = ring.ack(tail);
            for t in tail..head {
                assert_eq!(word(&ring, t, REC_SLOT) as u32, t, "record overwritten");
            }
            tail = head;
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        producer.join().unwrap();
        unsafe { sys::close(fd) };
    }
}
