//! Events on standard output without the risk of SIGPIPE.
//!
//! A C host such as gst-launch-1.0 keeps SIGPIPE's default action, which kills the process
//! when its standard output is a pipe whose reader went away. The write blocks SIGPIPE in the
//! writing thread and takes back a SIGPIPE that the write raised, so a closed reader is an
//! `EPIPE` error for the element to report, and the rest of the pipeline keeps running.

use std::io;

/// Writes all of `bytes` to file descriptor 1, unbuffered: nothing is left behind in a buffer
/// for a later write (or the exit of a Rust program) to push into a closed pipe.
fn write_all_to_stdout(mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid slice to a file descriptor.
        let n = unsafe { libc::write(libc::STDOUT_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// Writes `line` and a newline to standard output, in one write where the system allows (a
/// pipe takes up to 4 KiB at once without interleaving).
pub fn write_line(line: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    // SAFETY: plain POSIX signal-mask calls on sets owned by this frame.
    unsafe {
        let mut sigpipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut sigpipe);
        libc::sigaddset(&mut sigpipe, libc::SIGPIPE);
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &sigpipe, &mut previous);
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        let already_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        let result = write_all_to_stdout(&bytes);
        if !already_pending && matches!(&result, Err(e) if e.kind() == io::ErrorKind::BrokenPipe) {
            let no_wait = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&sigpipe, std::ptr::null_mut(), &no_wait);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        result
    }
}
