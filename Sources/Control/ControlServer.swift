import Glibc
import Host
import Synchronization

/// What a VM does with control requests. `handle` runs on a connection's thread; it must
/// not block for long (a stop request starts the shutdown and returns).
public protocol ControlHandler: AnyObject, Sendable {
    func handle(_ request: ControlRequest) -> ControlReply
    /// After an ok reply to `attach`: the connection is the handler's from now on (it
    /// carries console bytes both ways) and the handler closes it.
    func attach(connection fd: Int32)
    /// After an ok reply to a request that hands the connection over (`attach`, `exec`):
    /// the handler owns `fd` from now on and closes it. By default, `attach`.
    func takeOver(connection fd: Int32, after request: ControlRequest)
    /// After the reply was sent and the connection closed: for what must not happen before
    /// the client has its answer (a VM that ends after a snapshot: its process may exit
    /// once it has ended, and the reply would be lost). By default, nothing.
    func didReply(to request: ControlRequest, with reply: ControlReply)
}

extension ControlHandler {
    public func takeOver(connection fd: Int32, after request: ControlRequest) {
        if request == .attach { attach(connection: fd) } else { close(fd) }
    }

    public func didReply(to request: ControlRequest, with reply: ControlReply) {}
}

/// Serves a VM's control socket from an event loop the caller owns (a VM's device loop:
/// a listener costs one registration there, not a thread and an epoll of its own, which
/// every VM would pay at start-up). Each connection is one request
/// and one reply (`attach` hands the connection over instead). Only the socket's owner
/// (and root) may connect: the socket is 0600 and the peer's uid is checked with
/// SO_PEERCRED. A malformed, oversized or unknown request gets an error reply and the
/// connection closes; the VM is unaffected. A client that sends nothing is cut off after
/// `requestTimeout` on its own thread, so it never holds up another client.
public final class ControlServer: @unchecked Sendable {
    // Sendable invariant: the listener fd is fixed; threads and counters behind locks.
    public let path: String
    private let listener: Int32
    private let handler: ControlHandler
    /// Accepts run here; requests are served on threads of their own, so the loop's
    /// other sources (a VM's queues) never wait for a client.
    private let loop: EventLoop
    private let connections = Atomic<Int>(0)
    private let allowedUID: uid_t

    public static let requestTimeout = 5.0
    /// Connections served at once; more are refused with an error reply.
    public static let maximumConnections = 16

    /// Binds the socket. Nothing is accepted before `start`; `loop` may be started before
    /// or after that.
    public init(path: String, handler: ControlHandler, loop: EventLoop) throws(HostError) {
        self.path = path
        self.handler = handler
        self.loop = loop
        allowedUID = geteuid()
        listener = try UnixSocket.listen(path: path)
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK)
    }

    deinit { stop() }

    public func start() throws(HostError) {
        try loop.add(fd: listener, source: EventHandler { [weak self] _, _ in self?.acceptAll() })
    }

    private let stopped = Atomic<Bool>(false)

    /// Stops accepting and removes the socket file. Connections being served finish.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.remove(fd: listener)
        close(listener)
        unlink(path)
    }

    private func acceptAll() {
        while let fd = try? UnixSocket.accept(listener) {
            guard connections.add(1, ordering: .relaxed).newValue <= Self.maximumConnections else {
                connections.subtract(1, ordering: .relaxed)
                reply(.failure("too many control connections"), to: fd)
                close(fd)
                continue
            }
            let thread = HostThread(name: "svm-control-conn") { [self] in
                serve(fd)
                connections.subtract(1, ordering: .relaxed)
            }
            do { try thread.start() } catch {
                connections.subtract(1, ordering: .relaxed)
                close(fd)
            }
        }
    }

    /// One connection: check the peer, read a line, answer.
    func serve(_ fd: Int32) {
        UnixSocket.setTimeout(fd, seconds: Self.requestTimeout)
        guard let peer = try? UnixSocket.peerCredentials(fd), peer.uid == allowedUID || peer.uid == 0 else {
            reply(.failure("permission denied: only the VM's owner may use its control socket"), to: fd)
            close(fd)
            return
        }
        let request: ControlRequest
        switch ControlLineReader.readLine(fd, limit: ControlRequest.maximumLineLength) {
        case let .line(bytes):
            do { request = try ControlRequest.parse(bytes) } catch {
                reply(.failure("\(error)"), to: fd)
                close(fd)
                return
            }
        case .tooLong:
            reply(.failure("\(ControlProtocolError.tooLong(ControlRequest.maximumLineLength + 1))"), to: fd)
            close(fd)
            return
        case .closed:
            close(fd)
            return
        }
        let answer = handler.handle(request)
        reply(answer, to: fd)
        if request.handsOverConnection, answer.ok {
            UnixSocket.setTimeout(fd, seconds: 0)
            handler.takeOver(connection: fd, after: request)
        } else {
            close(fd)
            handler.didReply(to: request, with: answer)
        }
    }

    private func reply(_ reply: ControlReply, to fd: Int32) {
        let bytes = reply.encoded()
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}

/// Reads one newline-terminated line a byte at a time, so that nothing after the newline
/// (console bytes after an attach) is consumed.
public enum ControlLineReader {
    public enum Result: Equatable { case line([UInt8]), tooLong, closed }

    public static func readLine(_ fd: Int32, limit: Int) -> Result {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { return .closed }
            if byte == UInt8(ascii: "\n") { return .line(line) }
            guard line.count < limit else { return .tooLong }
            line.append(byte)
        }
    }
}
