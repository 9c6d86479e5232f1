import Glibc

/// Writes every byte to `fd`, retrying after EINTR and short writes. Returns false when
/// the descriptor stops taking bytes (closed pipe, full disk): callers that forward guest
/// output keep the guest running in that case rather than fail.
@discardableResult
public func writeAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
    bytes.withUnsafeBytes { buf in
        var done = 0
        while done < buf.count {
            let n = write(fd, buf.baseAddress! + done, buf.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }
}
