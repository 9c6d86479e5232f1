import CKVM
import Glibc
import Synchronization

/// Something that owns descriptors the event loop watches: a virtio queue's ioeventfd, a
/// TAP, a vhost-user socket, a control connection. It registers its own fds and handles
/// their readiness; the loop knows nothing of what they are.
public protocol EventSource: AnyObject, Sendable {
    /// `fd` (one this source registered) is ready: `events` holds EPOLLIN/EPOLLOUT/EPOLLHUP/
    /// EPOLLERR bits. Runs on the loop's thread; must not block.
    func handleEvent(fd: Int32, events: UInt32)
}

/// An epoll loop on a thread of its own. Sources are added, changed and removed from any
/// thread, also while the loop runs; an event for a source removed meanwhile is dropped
/// (registrations are named by a token, never by the fd, so a reused fd number cannot
/// reach the old source).
///
/// Sendable invariant: the epoll fd is used concurrently (epoll_ctl and epoll_wait are
/// thread-safe); the token table is behind a Mutex; the thread is started and joined by
/// one owner.
public final class EventLoop: @unchecked Sendable {
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: EPOLLIN.rawValue)
        public static let writable = Events(rawValue: EPOLLOUT.rawValue)
        /// The peer closed its end (EPOLLRDHUP); hang-ups and errors are always reported.
        public static let peerClosed = Events(rawValue: EPOLLRDHUP.rawValue)
    }

    private struct Registration {
        let token: UInt64
        let fd: Int32
        let source: EventSource
    }

    /// A VM registers a handful of fds (its queues, a TAP, timers, a listener): a short
    /// array searched in order beats two dictionaries, whose generic metadata every VM's
    /// start-up would otherwise build.
    private struct Table {
        var nextToken: UInt64 = 1
        var registrations: [Registration] = []

        func registration(token: UInt64) -> Registration? { registrations.first { $0.token == token } }
        func token(of fd: Int32) -> UInt64? { registrations.first { $0.fd == fd }?.token }
        mutating func remove(token: UInt64) { registrations.removeAll { $0.token == token } }
    }

    private let epollFD: Int32
    private let wake: EventFD
    private let table = Mutex(Table())
    private let stopping = Atomic<Bool>(false)
    private var thread: HostThread?
    private let name: String

    public init(name: String = "svm-events") throws(HostError) {
        self.name = name
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .last("epoll_create1") }
        epollFD = fd
        wake = try EventFD()
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: 0))
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, wake.fd, &event) == 0 else {
            let e = HostError.last("epoll_ctl ADD (wake eventfd)")
            close(fd)
            throw e
        }
    }

    deinit {
        stop()
        close(epollFD)
    }

    /// Watches `fd` for `events` on behalf of `source`. An fd is registered at most once.
    public func add(fd: Int32, events: Events = .readable, source: EventSource) throws(HostError) {
        let token = try table.withLock { (t) throws(HostError) -> UInt64 in
            guard t.token(of: fd) == nil else { throw HostError("event loop: add fd \(fd) (already registered)", errno: EEXIST) }
            let token = t.nextToken
            t.nextToken += 1
            t.registrations.append(Registration(token: token, fd: fd, source: source))
            return token
        }
        var event = epoll_event(events: events.rawValue, data: epoll_data_t(u64: token))
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            let e = HostError.last("epoll_ctl ADD fd \(fd)")
            table.withLock { $0.remove(token: token) }
            throw e
        }
    }

    /// Changes what `fd` is watched for; an empty set pauses it (a TAP while its device has
    /// no receive buffers) without forgetting the source.
    public func modify(fd: Int32, events: Events) throws(HostError) {
        guard let token = table.withLock({ $0.token(of: fd) }) else {
            throw HostError("event loop: modify fd \(fd) (not registered)", errno: ENOENT)
        }
        var event = epoll_event(events: events.rawValue, data: epoll_data_t(u64: token))
        guard epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) == 0 else { throw .last("epoll_ctl MOD fd \(fd)") }
    }

    /// Stops watching `fd`. After this returns, no new event for it is dispatched (one being
    /// handled on the loop thread at this moment may still finish).
    public func remove(fd: Int32) {
        let found = table.withLock { t -> Bool in
            guard let token = t.token(of: fd) else { return false }
            t.remove(token: token)
            return true
        }
        if found { _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) }
    }

    public var registeredCount: Int { table.withLock { $0.registrations.count } }

    /// Starts the loop's thread.
    public func start() throws(HostError) {
        precondition(thread == nil, "EventLoop started twice")
        let t = HostThread(name: name) { [self] in self.run() }
        try t.start()
        thread = t
    }

    /// Ends the loop's thread and waits for it. Safe to call more than once.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        thread?.join()
        thread = nil
    }

    /// Runs on the calling thread until `stop()`.
    public func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while !stopping.load(ordering: .acquiring) {
            let n = events.withUnsafeMutableBufferPointer { epoll_wait(epollFD, $0.baseAddress, Int32($0.count), -1) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            for i in 0..<Int(n) {
                let token = events[i].data.u64
                if token == 0 {
                    wake.drain()
                    continue
                }
                guard let registration = table.withLock({ $0.registration(token: token) }) else { continue }
                registration.source.handleEvent(fd: registration.fd, events: events[i].events)
            }
        }
    }
}

/// An event source made of a closure, for small jobs that need no type of their own.
public final class EventHandler: EventSource, @unchecked Sendable {
    // Sendable invariant: the closure is only called on the loop's thread.
    private let body: (Int32, UInt32) -> Void
    public init(_ body: @escaping (Int32, UInt32) -> Void) { self.body = body }
    public func handleEvent(fd: Int32, events: UInt32) { body(fd, events) }
}
