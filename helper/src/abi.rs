//! The usbfs kernel ABI, translated from include/uapi/linux/usbdevice_fs.h
//! (Linux 6.1). This is the one place that knows struct layouts and ioctl
//! numbers; every struct carries a size assert against the x86_64 layout.

#![allow(non_camel_case_types, dead_code)]

use core::mem::size_of;

// <asm-generic/ioctl.h>: dir(2) | size(14) | type(8) | nr(8).
const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;
const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u64 {
    ((dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32) as u64
}
const fn io(nr: u8) -> u64 {
    ioc(IOC_NONE, b'U', nr, 0)
}
const fn ior(nr: u8, size: usize) -> u64 {
    ioc(IOC_READ, b'U', nr, size)
}
const fn iow(nr: u8, size: usize) -> u64 {
    ioc(IOC_WRITE, b'U', nr, size)
}
const fn iowr(nr: u8, size: usize) -> u64 {
    ioc(IOC_READ | IOC_WRITE, b'U', nr, size)
}

/// struct usbdevfs_ctrltransfer
#[repr(C)]
pub struct usbdevfs_ctrltransfer {
    pub b_request_type: u8,
    pub b_request: u8,
    pub w_value: u16,
    pub w_index: u16,
    pub w_length: u16,
    pub timeout: u32,
    pub data: *mut u8,
}
const _: () = assert!(size_of::<usbdevfs_ctrltransfer>() == 24);

/// struct usbdevfs_setinterface
#[repr(C)]
pub struct usbdevfs_setinterface {
    pub interface: u32,
    pub altsetting: u32,
}
const _: () = assert!(size_of::<usbdevfs_setinterface>() == 8);

pub const USBDEVFS_MAXDRIVERNAME: usize = 255;

/// struct usbdevfs_getdriver
#[repr(C)]
pub struct usbdevfs_getdriver {
    pub interface: u32,
    pub driver: [u8; USBDEVFS_MAXDRIVERNAME + 1],
}
const _: () = assert!(size_of::<usbdevfs_getdriver>() == 260);

/// struct usbdevfs_conninfo_ex
#[repr(C)]
pub struct usbdevfs_conninfo_ex {
    pub size: u32,
    pub busnum: u32,
    pub devnum: u32,
    pub speed: u32,
    pub num_ports: u8,
    pub ports: [u8; 7],
}
const _: () = assert!(size_of::<usbdevfs_conninfo_ex>() == 24);

// URB flags and types.
pub const USBDEVFS_URB_SHORT_NOT_OK: u32 = 0x01;
pub const USBDEVFS_URB_ISO_ASAP: u32 = 0x02;
pub const USBDEVFS_URB_BULK_CONTINUATION: u32 = 0x04;
pub const USBDEVFS_URB_ZERO_PACKET: u32 = 0x40;
pub const USBDEVFS_URB_NO_INTERRUPT: u32 = 0x80;
pub const USBDEVFS_URB_TYPE_ISO: u8 = 0;
pub const USBDEVFS_URB_TYPE_INTERRUPT: u8 = 1;
pub const USBDEVFS_URB_TYPE_CONTROL: u8 = 2;
pub const USBDEVFS_URB_TYPE_BULK: u8 = 3;

/// struct usbdevfs_iso_packet_desc
#[repr(C)]
pub struct usbdevfs_iso_packet_desc {
    pub length: u32,
    pub actual_length: u32,
    pub status: u32,
}
const _: () = assert!(size_of::<usbdevfs_iso_packet_desc>() == 12);

/// struct usbdevfs_urb, without its flexible iso_frame_desc[] tail.
#[repr(C)]
pub struct usbdevfs_urb {
    pub type_: u8,
    pub endpoint: u8,
    pub status: i32,
    pub flags: u32,
    pub buffer: *mut u8,
    pub buffer_length: i32,
    pub actual_length: i32,
    pub start_frame: i32,
    /// number_of_packets (iso) or stream_id (bulk streams): a union.
    pub number_of_packets: i32,
    pub error_count: i32,
    pub signr: u32,
    pub usercontext: *mut u8,
    // iso_frame_desc[] follows at offset 56
}
const _: () = assert!(size_of::<usbdevfs_urb>() == 56);
pub const URB_ISO_DESC_OFFSET: usize = size_of::<usbdevfs_urb>();

/// struct usbdevfs_ioctl: forwards an ioctl to the interface's driver.
#[repr(C)]
pub struct usbdevfs_ioctl {
    pub ifno: i32,
    pub ioctl_code: i32,
    pub data: *mut u8,
}
const _: () = assert!(size_of::<usbdevfs_ioctl>() == 16);

/// struct usbdevfs_disconnect_claim
#[repr(C)]
pub struct usbdevfs_disconnect_claim {
    pub interface: u32,
    pub flags: u32,
    pub driver: [u8; USBDEVFS_MAXDRIVERNAME + 1],
}
const _: () = assert!(size_of::<usbdevfs_disconnect_claim>() == 264);

pub const USBDEVFS_DISCONNECT_CLAIM_IF_DRIVER: u32 = 0x01;
pub const USBDEVFS_DISCONNECT_CLAIM_EXCEPT_DRIVER: u32 = 0x02;

// Capability bits (USBDEVFS_CAP_*).
pub const USBDEVFS_CAP_ZERO_PACKET: u32 = 0x01;
pub const USBDEVFS_CAP_BULK_CONTINUATION: u32 = 0x02;
pub const USBDEVFS_CAP_NO_PACKET_SIZE_LIM: u32 = 0x04;
pub const USBDEVFS_CAP_BULK_SCATTER_GATHER: u32 = 0x08;
pub const USBDEVFS_CAP_REAP_AFTER_DISCONNECT: u32 = 0x10;
pub const USBDEVFS_CAP_MMAP: u32 = 0x20;
pub const USBDEVFS_CAP_DROP_PRIVILEGES: u32 = 0x40;
pub const USBDEVFS_CAP_CONNINFO_EX: u32 = 0x80;
pub const USBDEVFS_CAP_SUSPEND: u32 = 0x100;

// ioctl numbers, each with the struct whose size the kernel encodes in it.
pub const USBDEVFS_CONTROL: u64 = iowr(0, size_of::<usbdevfs_ctrltransfer>());
pub const USBDEVFS_RESETEP: u64 = ior(3, size_of::<u32>());
pub const USBDEVFS_SETINTERFACE: u64 = ior(4, size_of::<usbdevfs_setinterface>());
pub const USBDEVFS_SETCONFIGURATION: u64 = ior(5, size_of::<u32>());
pub const USBDEVFS_GETDRIVER: u64 = iow(8, size_of::<usbdevfs_getdriver>());
pub const USBDEVFS_SUBMITURB: u64 = ior(10, size_of::<usbdevfs_urb>());
pub const USBDEVFS_DISCARDURB: u64 = io(11);
pub const USBDEVFS_REAPURB: u64 = iow(12, size_of::<*mut u8>());
pub const USBDEVFS_REAPURBNDELAY: u64 = iow(13, size_of::<*mut u8>());
pub const USBDEVFS_CLAIMINTERFACE: u64 = ior(15, size_of::<u32>());
pub const USBDEVFS_RELEASEINTERFACE: u64 = ior(16, size_of::<u32>());
pub const USBDEVFS_IOCTL: u64 = iowr(18, size_of::<usbdevfs_ioctl>());
pub const USBDEVFS_RESET: u64 = io(20);
pub const USBDEVFS_CLEAR_HALT: u64 = ior(21, size_of::<u32>());
pub const USBDEVFS_DISCONNECT: u64 = io(22);
pub const USBDEVFS_CONNECT: u64 = io(23);
pub const USBDEVFS_GET_CAPABILITIES: u64 = ior(26, size_of::<u32>());
pub const USBDEVFS_DISCONNECT_CLAIM: u64 = ior(27, size_of::<usbdevfs_disconnect_claim>());
pub const USBDEVFS_GET_SPEED: u64 = io(31);
pub const fn usbdevfs_conninfo_ex(len: usize) -> u64 {
    ior(32, len)
}

/// The kernel's limit on packets per iso URB (devio.c, proc_do_submiturb:
/// "if (number_of_packets > 128) return -EINVAL").
pub const MAX_ISO_PACKETS: usize = 128;

// Spot checks against values printed by a C program including the header.
const _: () = assert!(USBDEVFS_SUBMITURB == 0x8038550a);
const _: () = assert!(USBDEVFS_REAPURBNDELAY == 0x4008550d);
const _: () = assert!(USBDEVFS_GET_CAPABILITIES == 0x8004551a);
const _: () = assert!(USBDEVFS_DISCONNECT_CLAIM == 0x8108551b);
const _: () = assert!(USBDEVFS_CONTROL == 0xc0185500);
const _: () = assert!(USBDEVFS_IOCTL == 0xc0105512);
