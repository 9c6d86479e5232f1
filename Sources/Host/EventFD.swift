import CKVM
import Glibc

/// An eventfd: a counter other threads (or KVM, for irqfd/ioeventfd) signal and a poller waits on.
public final class EventFD: @unchecked Sendable {
    public let fd: Int32

    public init(nonBlocking: Bool = true) throws(HostError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC) | (nonBlocking ? Int32(EFD_NONBLOCK) : 0))
        guard fd >= 0 else { throw HostError("eventfd", errno: errno) }
        self.fd = fd
    }

    deinit { close(fd) }

    public func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Reads and resets the counter; 0 when nothing was signalled (non-blocking fd).
    @discardableResult
    public func drain() -> UInt64 {
        var value: UInt64 = 0
        return read(fd, &value, 8) == 8 ? value : 0
    }
}
