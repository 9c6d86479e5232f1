import Glibc

/// Writes bytes to a host descriptor exactly as given: partial writes are continued,
/// EINTR retried, EAGAIN (a non-blocking descriptor inherited from the caller) waited out
/// with poll. Returns false when the descriptor is gone (EPIPE, EBADF, …): the rest is
/// dropped, and the guest keeps running (SIGPIPE is ignored by svm).
enum FDWriter {
    @discardableResult
    static func writeAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
        bytes.withUnsafeBytes { buf in
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
    }

    /// One line on stderr, prefixed "svm: ".
    static func message(_ text: String) {
        writeAll(Array("svm: \(text)\n".utf8), to: 2)
    }
}
