//! USB/IP local attach: the system calls src/usbip/attach.ts needs to hand
//! one end of a stream connection to the kernel's vhci_hcd.
//!
//! Deno cannot adopt a raw file descriptor, so the connection is made the
//! other way round: the helper listens on a unix socket in a private
//! directory, JavaScript connects to it (and keeps that end as a
//! `Deno.Conn`), the helper accepts, and the accepted descriptor is written
//! to vhci_hcd's `attach` file as "port sockfd devid speed"
//! (drivers/usb/usbip/vhci_sysfs.c attach_store). The kernel takes its own
//! reference to the socket (sockfd_lookup), so the helper then closes its
//! descriptor, as the usbip tool does when it exits.
//!
//! Every function returns a descriptor or 0 on success, -errno on failure.

use core::ffi::{c_char, c_void};

use crate::sys;

fn neg_errno() -> i32 {
    -sys::errno()
}

/// Creates a unix stream socket listening at `path` (a NUL-terminated path
/// of at most 107 bytes; backlog 1, close-on-exec). Returns its fd.
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn usbkit_usbip_listen(path: *const c_char) -> i32 {
    let mut addr = sys::sockaddr_un {
        sun_family: sys::AF_UNIX as u16,
        sun_path: [0; 108],
    };
    let bytes = core::ffi::CStr::from_ptr(path).to_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() {
        return -sys::ENAMETOOLONG;
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as c_char;
    }
    let fd = sys::socket(sys::AF_UNIX, sys::SOCK_STREAM | sys::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return neg_errno();
    }
    let len = core::mem::size_of::<sys::sockaddr_un>() as u32;
    if sys::bind(fd, &addr as *const sys::sockaddr_un as *const c_void, len) < 0
        || sys::listen(fd, 1) < 0
    {
        let e = neg_errno();
        sys::close(fd);
        return e;
    }
    fd
}

/// Waits up to `timeout_ms` for a connection on `listener` and accepts it.
/// The peer must be this very process (SO_PEERCRED), so nobody else can slip
/// a connection in between; otherwise -EPERM. Returns the accepted fd.
#[no_mangle]
pub extern "C" fn usbkit_usbip_accept(listener: i32, timeout_ms: i32) -> i32 {
    // SAFETY: plain system calls on descriptors; pointers are to locals.
    unsafe {
        let mut pfd = sys::pollfd {
            fd: listener,
            events: sys::POLLIN,
            revents: 0,
        };
        loop {
            let r = sys::poll(&mut pfd, 1, timeout_ms);
            if r > 0 {
                break;
            }
            if r == 0 {
                return -sys::ETIMEDOUT;
            }
            if sys::errno() != sys::EINTR {
                return neg_errno();
            }
        }
        let fd = loop {
            let fd = sys::accept4(
                listener,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                sys::SOCK_CLOEXEC,
            );
            if fd >= 0 || sys::errno() != sys::EINTR {
                break fd;
            }
        };
        if fd < 0 {
            return neg_errno();
        }
        let mut cred = sys::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = core::mem::size_of::<sys::ucred>() as u32;
        let r = sys::getsockopt(
            fd,
            sys::SOL_SOCKET,
            sys::SO_PEERCRED,
            &mut cred as *mut sys::ucred as *mut c_void,
            &mut len,
        );
        if r < 0 || cred.pid != sys::getpid() {
            let e = if r < 0 { neg_errno() } else { -sys::EPERM };
            sys::close(fd);
            return e;
        }
        fd
    }
}

/// Writes `len` bytes at `text` to the file `path` in a single write(2), as
/// a sysfs attribute needs (vhci_hcd's `attach` and `detach`). A short write
/// is -EIO.
///
/// # Safety
/// `path` must point to a NUL-terminated string, `text` to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn usbkit_usbip_write_file(
    path: *const c_char,
    text: *const u8,
    len: u32,
) -> i32 {
    let fd = sys::open(path, sys::O_WRONLY | sys::O_CLOEXEC);
    if fd < 0 {
        return neg_errno();
    }
    let n = sys::write(fd, text as *const c_void, len as usize);
    let r = if n < 0 {
        neg_errno()
    } else if n as usize != len as usize {
        -sys::EIO
    } else {
        0
    };
    sys::close(fd);
    r
}

/// Closes a descriptor made by the functions above.
#[no_mangle]
pub extern "C" fn usbkit_usbip_close(fd: i32) -> i32 {
    if unsafe { sys::close(fd) } < 0 {
        neg_errno()
    } else {
        0
    }
}
