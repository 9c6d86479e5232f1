import CKVM
import Glibc

/// A one-shot timer on CLOCK_MONOTONIC as a descriptor, so deadlines (a VM's --timeout, a
/// stop request's grace period, a panic that never resets) are events in the event loop
/// rather than a thread that wakes up every so often to look at the clock.
public final class TimerFD: @unchecked Sendable {
    // Sendable invariant: timerfd_settime and read are safe from any thread.
    public let fd: Int32

    public init() throws(HostError) {
        let fd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_CLOEXEC | TFD_NONBLOCK))
        guard fd >= 0 else { throw .last("timerfd_create") }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Fires once, `seconds` from now (at least a nanosecond: 0 would disarm it).
    public func arm(after seconds: Double) {
        let clamped = max(seconds, 1e-9)
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(clamped)
        spec.it_value.tv_nsec = max(1, Int((clamped - Double(Int(clamped))) * 1e9))
        _ = timerfd_settime(fd, 0, &spec, nil)
    }

    public func disarm() {
        var spec = itimerspec()
        _ = timerfd_settime(fd, 0, &spec, nil)
    }

    /// Clears the expiry so the descriptor stops being readable.
    public func acknowledge() {
        var expirations: UInt64 = 0
        _ = read(fd, &expirations, 8)
    }
}
