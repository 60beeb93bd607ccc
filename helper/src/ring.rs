//! The completion ring: fixed-size records written by the reaper thread and
//! read by JavaScript through long-lived typed-array views, plus the eventfd
//! doorbell that wakes JavaScript's one parked wait.
//!
//! Single producer (the reaper thread), single consumer (the JS thread).
//! The doorbell rings only when the consumer had caught up with everything
//! published before, so a busy stream costs one wakeup per drain, not one per
//! completion.

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

/// Power of two, so indexes wrap with a mask. Far above the URB slots any
/// process can have in flight, so the producer never waits in practice.
pub const RING_CAPACITY: u32 = 1 << 16;

pub struct Ring {
    records: Box<[u64]>, // u64 for f64 alignment; viewed as i32 words
    head: AtomicU32,     // written by the producer
    tail: AtomicU32,     // written by the consumer (usbkit_ring_ack)
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
    /// consumer had drained everything published before.
    pub fn publish(&self) {
        let new_head = self.pending_head.get();
        let old_head = self.head.swap(new_head, Ordering::SeqCst);
        if new_head == old_head {
            return;
        }
        if self.tail.load(Ordering::SeqCst) == old_head {
            self.ring_doorbell();
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
    fn doorbell_rings_only_when_the_consumer_had_caught_up() {
        let fd = eventfd();
        let ring = Ring::new(fd);
        ring.push(KIND_URB, 1, 0, 0, 0, 0);
        ring.publish();
        assert_eq!(doorbell_count(fd), 1, "first batch on an empty ring must ring");
        // Consumer has not acked: more records, no more doorbells.
        ring.push(KIND_URB, 1, 1, 0, 0, 0);
        ring.publish();
        ring.push(KIND_URB, 1, 2, 0, 0, 0);
        ring.publish();
        assert_eq!(doorbell_count(fd), 0, "rang while the consumer was behind");
        // Consumer catches up, then a new batch rings again.
        assert_eq!(ring.ack(3), 3);
        ring.push(KIND_URB, 1, 3, 0, 0, 0);
        ring.publish();
        assert_eq!(doorbell_count(fd), 1);
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
