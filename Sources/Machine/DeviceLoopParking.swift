import Host

/// Parks the device event loop between two events, so that no queue is being processed
/// and no device state changes while a snapshot is read: `park()` returns once the loop
/// thread waits inside this source's handler, `unpark()` lets it go on.
///
/// If a caller ever runs on the loop thread itself (a control request served there), the
/// loop is by definition between events: `park` must not be called from it.
final class DeviceLoopParking: EventSource, @unchecked Sendable {
    // Sendable invariant: EventFD and Gate are thread-safe.
    private let event: EventFD
    private let gate = Gate()

    init() throws(HostError) {
        event = try EventFD()
    }

    func register(with loop: EventLoop) throws(HostError) {
        try loop.add(fd: event.fd, source: self)
    }

    func handleEvent(fd: Int32, events: UInt32) {
        event.drain()
        gate.pass()
    }

    /// Returns true once the loop waits here; false if `abandon` became true first.
    func park(abandon: () -> Bool) -> Bool {
        gate.close()
        event.signal()
        return gate.waitForWaiters(1, abandon: abandon)
    }

    func unpark() { gate.reopen() }
}
