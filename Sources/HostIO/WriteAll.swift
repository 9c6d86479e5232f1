import Glibc

/// Writes every byte to `fd`: short writes are continued, EINTR retried, EAGAIN (a
/// non-blocking descriptor inherited from the caller) waited out with poll. Returns false
/// when the descriptor stops taking bytes (closed pipe, EBADF, full disk): callers that
/// forward guest output keep the guest running in that case rather than fail.
@discardableResult
public func writeAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
    bytes.withUnsafeBytes { writeAll($0, to: fd) }
}

/// One byte (the serial console's unit), without building an array for it.
@discardableResult
public func writeAll(byte: UInt8, to fd: Int32) -> Bool {
    withUnsafeBytes(of: byte) { writeAll($0, to: fd) }
}

/// The loop behind both: `buf` is written in full or the descriptor has stopped taking bytes.
@discardableResult
public func writeAll(_ buf: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
    var done = 0
    while done < buf.count {
        let n = write(fd, buf.baseAddress! + done, buf.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            if errno == EAGAIN {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, -1)
                continue
            }
            return false
        }
        if n == 0 { return false }
        done += n
    }
    return true
}
