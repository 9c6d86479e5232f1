import Glibc
import Host
import Synchronization

/// A managed VM's console log, bounded: bytes are appended to `console.log`; once it holds
/// `limit` bytes it becomes `console.log.1` (replacing the older one) and a new file
/// starts, so at most 2 × `limit` bytes are kept (16 MiB by default) however much the
/// guest prints. Appends come from vCPU and device threads and are serialized here.
public final class ConsoleLog: Sendable {
    public static let defaultLimit = 8 << 20

    public let path: String
    public let limit: Int
    private struct State {
        var fd: Int32
        var size: Int
    }
    private let state: Mutex<State>

    public init(path: String, limit: Int = ConsoleLog.defaultLimit) throws(HostError) {
        self.path = path
        self.limit = max(1, limit)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .last("open \(path)") }
        var st = stat()
        fstat(fd, &st)
        state = Mutex(State(fd: fd, size: Int(st.st_size)))
    }

    deinit { state.withLock { close($0.fd) } }

    /// Appends `bytes`; a full disk or any write error loses them, never the guest's time.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        state.withLock { s in
            var rest = bytes
            while !rest.isEmpty {
                let room = limit - s.size
                if room <= 0 {
                    rotate(&s)
                    continue
                }
                let chunk = UnsafeRawBufferPointer(rebasing: rest.prefix(room))
                guard (try? FileIO.write(s.fd, chunk, what: "write \(path)")) != nil else { return }
                s.size += chunk.count
                rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(chunk.count))
            }
        }
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    private func rotate(_ s: inout State) {
        rename(path, path + ".1")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd >= 0 {
            close(s.fd)
            s.fd = fd
        }
        s.size = 0
    }
}

/// Reads a console log the way `svm logs` shows it: the older file, then the current one.
public struct ConsoleLogReader: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    /// Everything kept, oldest first.
    public func all() -> [UInt8] {
        let limit = 64 << 20
        return ((try? FileIO.readFile(path + ".1", limit: limit)) ?? []) + ((try? FileIO.readFile(path, limit: limit)) ?? [])
    }

    /// The last `lines` lines of what is kept (a last line without its newline counts).
    public func tail(lines: Int) -> [UInt8] {
        Self.lastLines(all(), lines)
    }

    public static func lastLines(_ bytes: [UInt8], _ n: Int) -> [UInt8] {
        guard n > 0 else { return [] }
        var end = bytes.count
        if end > 0 && bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        var seen = 0
        var i = end
        while i > 0 {
            if bytes[i - 1] == UInt8(ascii: "\n") {
                seen += 1
                if seen == n { return Array(bytes[i...]) }
            }
            i -= 1
        }
        return bytes
    }

    /// Writes new bytes to `output` as they arrive, starting after `offset` bytes of the
    /// current file, until `alive` says the VM has ended and everything is written. A
    /// rotation (the current file renamed to `.1`) is followed without losing or repeating
    /// bytes: the rest of the renamed file first, then the new one from its start.
    public func follow(from offset: Int, output: (UnsafeRawBufferPointer) -> Bool, alive: () -> Bool,
                       interval: Double = 0.1) {
        var fd = open(path, O_RDONLY | O_CLOEXEC)
        var position = offset
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        defer { if fd >= 0 { close(fd) } }
        /// Writes what `fd` holds past `position`; false if the output refused it.
        func drain() -> Bool {
            guard fd >= 0 else { return true }
            while true {
                let n = buffer.withUnsafeMutableBytes { b in pread(fd, b.baseAddress, b.count, off_t(position)) }
                guard n > 0 else { return true }
                position += n
                guard buffer.withUnsafeBytes({ output(UnsafeRawBufferPointer(rebasing: $0.prefix(n))) }) else { return false }
            }
        }
        while true {
            let stillAlive = alive()
            guard drain() else { return }
            // Rotated? The file at `path` is another one than the one we read: finish the
            // old one (the writer may have appended between our read and its rename).
            var now = stat(), ours = stat()
            if stat(path, &now) == 0, fd < 0 || (fstat(fd, &ours) == 0 && (now.st_ino != ours.st_ino || now.st_dev != ours.st_dev)) {
                guard drain() else { return }
                if fd >= 0 { close(fd) }
                fd = open(path, O_RDONLY | O_CLOEXEC)
                position = 0
                continue
            }
            if !stillAlive { return }
            usleep(UInt32(interval * 1e6))
        }
    }

    /// Everything kept, and the length of the current file's part of it: where `follow`
    /// starts after showing these bytes.
    public func snapshot() -> (bytes: [UInt8], currentLength: Int) {
        let older = (try? FileIO.readFile(path + ".1", limit: 64 << 20)) ?? []
        let current = (try? FileIO.readFile(path, limit: 64 << 20)) ?? []
        return (older + current, current.count)
    }

    /// The size of the current file.
    public var currentSize: Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }
}
