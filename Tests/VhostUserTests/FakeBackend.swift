import CKVM
import Glibc
import Host
@testable import VhostUser

/// A vhost-user backend that follows a script: it listens on a socket in a temporary
/// directory, accepts one frontend, records every message (request, flags, payload, how
/// many fds came with it) and answers with whatever `respond` returns — the truth, a lie,
/// or nothing. `hangUp()` closes the connection, as a dying virtiofsd would.
final class FakeBackend: @unchecked Sendable {
    struct Received: Equatable {
        let request: UInt32
        let flags: UInt32
        let payload: [UInt8]
        let descriptors: Int
    }
    enum Answer {
        case none
        case bytes([UInt8])
        case close
    }

    let directory: String
    let path: String
    private let listener: Int32
    private var connection: Int32 = -1
    private var thread: HostThread?
    private let lock = NSLockLite()
    private var received: [Received] = []
    private let respond: @Sendable (Received) -> Answer

    init(respond: @escaping @Sendable (Received) -> Answer) throws {
        var template = Array("/tmp/svm-vhost-test.XXXXXX".utf8CString)
        guard let d = mkdtemp(&template) else { throw HostError.last("mkdtemp") }
        directory = String(cString: d)
        path = directory + "/backend.sock"
        listener = try UnixSocket.listen(path: path)
        self.respond = respond
        let t = HostThread(name: "fake-backend") { [unowned self] in self.serve() }
        try t.start()
        thread = t
    }

    var messages: [Received] { lock.locked { received } }
    var requests: [UInt32] { messages.map(\.request) }

    /// Waits until `count` messages arrived (or 5 s passed).
    func waitFor(_ count: Int) -> Bool {
        for _ in 0..<500 {
            if messages.count >= count { return true }
            usleep(10_000)
        }
        return false
    }

    func hangUp() {
        lock.locked { if connection >= 0 { shutdown(connection, Int32(SHUT_RDWR)) } }
    }

    private func serve() {
        guard let fd = try? UnixSocket.accept(listener) else { return }
        lock.locked { connection = fd }
        while true {
            guard let header = read(12) else { break }
            let size = Int(UInt32(header.bytes[8]) | UInt32(header.bytes[9]) << 8 | UInt32(header.bytes[10]) << 16 | UInt32(header.bytes[11]) << 24)
            guard size <= 4096, let payload = size == 0 ? ([], 0) : read(size) else { break }
            let m = Received(request: LittleEndian.read(UInt32.self, header.bytes, at: 0),
                             flags: LittleEndian.read(UInt32.self, header.bytes, at: 4),
                             payload: payload.bytes, descriptors: header.fds + payload.fds)
            lock.locked { received.append(m) }
            switch respond(m) {
            case .none: break
            case let .bytes(b): _ = b.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            case .close: shutdown(fd, Int32(SHUT_RDWR)); return
            }
        }
    }

    private func read(_ count: Int) -> (bytes: [UInt8], fds: Int)? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0, fds = 0
        let fd = lock.locked { connection }
        while got < count {
            var received = [Int32](repeating: -1, count: 8)
            var n: Int32 = 0
            let r = out.withUnsafeMutableBufferPointer { b in
                received.withUnsafeMutableBufferPointer { ckvm_recv_with_fds(fd, b.baseAddress! + got, count - got, $0.baseAddress, 8, &n) }
            }
            for i in 0..<Int(min(n, 8)) where received[i] >= 0 { close(received[i]) }
            fds += Int(n)
            guard r > 0 else { return nil }
            got += r
        }
        return (out, fds)
    }

    deinit {
        hangUp()
        shutdown(listener, Int32(SHUT_RDWR)) // wakes an accept that never got a frontend
        close(listener)
        thread?.join()
        if connection >= 0 { close(connection) }
        unlink(path)
        rmdir(directory)
    }

    // MARK: Answers

    static func reply(_ request: VhostUserRequest, _ payload: [UInt8], flags: UInt32 = VhostUserFlags.version | VhostUserFlags.reply) -> [UInt8] {
        var m = VhostUserMessage(request, flags: flags, payload: payload)
        m.flags = flags
        return m.bytes
    }

    static func u64(_ v: UInt64) -> [UInt8] {
        var b: [UInt8] = []
        LittleEndian.append(v, to: &b)
        return b
    }
}

/// A pthread mutex for the test's shared arrays.
final class NSLockLite: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return body()
    }
}
