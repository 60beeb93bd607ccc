//! The libc functions the helper calls, declared by hand (std only: no libc
//! crate is reachable). Values come from the x86_64 glibc headers named beside
//! each constant.

#![allow(non_camel_case_types, dead_code)]

use core::ffi::{c_char, c_int, c_long, c_ulong, c_void};

pub type size_t = usize;
pub type ssize_t = isize;
pub type off_t = i64;

#[repr(C)]
pub struct pollfd {
    pub fd: c_int,
    pub events: i16,
    pub revents: i16,
}

#[repr(C)]
pub struct timespec {
    pub tv_sec: i64,
    pub tv_nsec: c_long,
}

/// struct sockaddr_un (<sys/un.h>)
#[repr(C)]
pub struct sockaddr_un {
    pub sun_family: u16,
    pub sun_path: [c_char; 108],
}

/// struct ucred (<bits/socket.h>), read with SO_PEERCRED
#[repr(C)]
pub struct ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

extern "C" {
    pub fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    pub fn close(fd: c_int) -> c_int;
    pub fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    pub fn poll(fds: *mut pollfd, nfds: c_ulong, timeout: c_int) -> c_int;
    pub fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t;
    pub fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t;
    pub fn eventfd(initval: u32, flags: c_int) -> c_int;
    pub fn mmap(
        addr: *mut c_void,
        len: size_t,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: off_t,
    ) -> *mut c_void;
    pub fn munmap(addr: *mut c_void, len: size_t) -> c_int;
    pub fn clock_gettime(clk: c_int, ts: *mut timespec) -> c_int;
    pub fn __errno_location() -> *mut c_int;
    pub fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    pub fn bind(fd: c_int, addr: *const c_void, len: u32) -> c_int;
    pub fn listen(fd: c_int, backlog: c_int) -> c_int;
    pub fn accept4(fd: c_int, addr: *mut c_void, len: *mut u32, flags: c_int) -> c_int;
    pub fn getsockopt(fd: c_int, lvl: c_int, opt: c_int, v: *mut c_void, n: *mut u32) -> c_int;
    pub fn getpid() -> c_int;
    pub fn sched_yield() -> c_int;
}

// <bits/fcntl-linux.h>
pub const O_RDONLY: c_int = 0;
pub const O_WRONLY: c_int = 1;
pub const O_RDWR: c_int = 2;
pub const O_CLOEXEC: c_int = 0o2000000;
pub const O_NONBLOCK: c_int = 0o4000;
// <sys/eventfd.h>
pub const EFD_CLOEXEC: c_int = 0o2000000;
pub const EFD_NONBLOCK: c_int = 0o4000;
// <bits/poll.h>
pub const POLLIN: i16 = 0x001;
pub const POLLOUT: i16 = 0x004;
pub const POLLERR: i16 = 0x008;
pub const POLLHUP: i16 = 0x010;
// <bits/mman-linux.h>
pub const PROT_READ: c_int = 1;
pub const PROT_WRITE: c_int = 2;
pub const MAP_SHARED: c_int = 1;
pub const MAP_FAILED: *mut c_void = !0usize as *mut c_void;
// <bits/socket.h>, <asm-generic/socket.h>
pub const AF_UNIX: c_int = 1;
pub const SOCK_STREAM: c_int = 1;
pub const SOCK_CLOEXEC: c_int = 0o2000000;
pub const SOL_SOCKET: c_int = 1;
pub const SO_PEERCRED: c_int = 17;
// <bits/time.h>
pub const CLOCK_MONOTONIC: c_int = 1;
// <asm-generic/errno-base.h>, <asm-generic/errno.h>
pub const EINTR: c_int = 4;
pub const EAGAIN: c_int = 11;
pub const ENODEV: c_int = 19;
pub const EINVAL: c_int = 22;
pub const EBADF: c_int = 9;
pub const EPERM: c_int = 1;
pub const EIO: c_int = 5;
pub const ENAMETOOLONG: c_int = 36;
pub const ETIMEDOUT: c_int = 110;

pub fn errno() -> c_int {
    unsafe { *__errno_location() }
}

/// Milliseconds on CLOCK_MONOTONIC, as f64 (JS reads it without BigInt).
pub fn now_ms() -> f64 {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1.0e6
}
