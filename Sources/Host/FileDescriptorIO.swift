import Glibc

/// Whole-buffer reads and writes on host descriptors: the one place that continues short
/// transfers, retries EINTR and waits out EAGAIN on a non-blocking descriptor.

/// Writes every byte to `fd`. Returns false when the descriptor stops taking bytes (closed
/// pipe, EBADF, full disk): callers that forward guest output keep the guest running in that
/// case rather than fail.
@discardableResult
public func writeAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
    bytes.withUnsafeBytes { writeAll($0, to: fd) }
}

/// One byte (the serial console's unit), without building an array for it.
@discardableResult
public func writeAll(byte: UInt8, to fd: Int32) -> Bool {
    withUnsafeBytes(of: byte) { writeAll($0, to: fd) }
}

@discardableResult
public func writeAll(_ buf: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
    (try? FileIO.write(fd, buf)) != nil
}

public enum FileIO {
    /// Writes all of `buf`, waiting for room on a non-blocking descriptor.
    public static func write(_ fd: Int32, _ buf: UnsafeRawBufferPointer, what: @autoclosure () -> String = "write") throws(HostError) {
        _ = try transfer(buf.count, ifNone: EPIPE, onEAGAIN: { waitWritable(fd) }, what: what) { done in
            Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
        }
    }

    public static func write(_ fd: Int32, _ bytes: [UInt8], what: @autoclosure () -> String = "write") throws(HostError) {
        let text = what()
        var failure: HostError?
        bytes.withUnsafeBytes { b in
            do throws(HostError) { try write(fd, b, what: text) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Reads up to `buf.count` bytes, as many as arrive before end of file: returns how many.
    /// Waits on a non-blocking descriptor.
    public static func readFully(_ fd: Int32, into buf: UnsafeMutableRawBufferPointer,
                                 what: @autoclosure () -> String = "read") throws(HostError) -> Int {
        try transfer(buf.count, ifNone: nil, onEAGAIN: { waitReadable(fd) }, what: what) { done in
            Glibc.read(fd, buf.baseAddress! + done, buf.count - done)
        }
    }

    /// One read of at most `buf.count` bytes, retrying EINTR: 0 at end of file, nil when a
    /// non-blocking descriptor has nothing now.
    public static func readSome(_ fd: Int32, into buf: UnsafeMutableRawBufferPointer,
                                what: @autoclosure () -> String = "read") throws(HostError) -> Int? {
        while true {
            let n = Glibc.read(fd, buf.baseAddress, buf.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
            throw .last(what())
        }
    }

    /// Reads `buf.count` bytes at `offset`, or fewer at end of file: returns how many.
    public static func pread(_ fd: Int32, into buf: UnsafeMutableRawBufferPointer, at offset: UInt64,
                             what: @autoclosure () -> String = "pread") throws(HostError) -> Int {
        try transfer(buf.count, ifNone: nil, onEAGAIN: nil, what: what) { done in
            Glibc.pread(fd, buf.baseAddress! + done, buf.count - done, off_t(offset) + off_t(done))
        }
    }

    /// Up to `count` bytes read from `fd` (fewer only at end of file), as a new array.
    public static func readFully(_ fd: Int32, count: Int, what: @autoclosure () -> String = "read") throws(HostError) -> [UInt8] {
        let text = what()
        return try filled(count) { b throws(HostError) in try readFully(fd, into: b, what: text) }
    }

    /// Up to `count` bytes at `offset` (fewer only at end of file), as a new array.
    public static func pread(_ fd: Int32, count: Int, at offset: UInt64,
                             what: @autoclosure () -> String = "pread") throws(HostError) -> [UInt8] {
        let text = what()
        return try filled(count) { b throws(HostError) in try pread(fd, into: b, at: offset, what: text) }
    }

    /// An array of `count` bytes that `read` fills, cut to the length it returns.
    private static func filled(_ count: Int, _ read: (UnsafeMutableRawBufferPointer) throws(HostError) -> Int) throws(HostError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var failure: HostError?
        let n = out.withUnsafeMutableBytes { b -> Int in
            do throws(HostError) { return try read(b) } catch { failure = error; return 0 }
        }
        if let failure { throw failure }
        out.removeSubrange(n...)
        return out
    }

    /// Writes all of `buf` at `offset`.
    public static func pwrite(_ fd: Int32, _ buf: UnsafeRawBufferPointer, at offset: UInt64,
                              what: @autoclosure () -> String = "pwrite") throws(HostError) {
        _ = try transfer(buf.count, ifNone: EIO, onEAGAIN: nil, what: what) { done in
            Glibc.pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(offset) + off_t(done))
        }
    }

    /// The one transfer loop: calls `step(done)` until `count` bytes have moved, retrying
    /// EINTR and, with `onEAGAIN`, waiting out EAGAIN. A step that moves nothing is end of
    /// file for a read (`ifNone` nil: returns what moved so far) and the error `ifNone`
    /// for a write. Returns how many bytes moved.
    private static func transfer(_ count: Int, ifNone: Int32?, onEAGAIN: (() -> Void)?, what: () -> String,
                                 _ step: (_ done: Int) -> Int) throws(HostError) -> Int {
        var done = 0
        while done < count {
            let n = step(done)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN, let onEAGAIN { onEAGAIN(); continue }
                throw .last(what())
            }
            if n == 0 {
                if let ifNone { throw HostError(what(), errno: ifNone) }
                break
            }
            done += n
        }
        return done
    }

    /// The whole of a small file (config, pid and state files), at most `limit` bytes.
    public static func readFile(_ path: String, limit: Int = 1 << 20) throws(HostError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        var out: [UInt8] = []
        let chunk = 16 << 10
        while out.count <= limit {
            let piece = try readFully(fd, count: chunk, what: "read \(path)")
            out += piece
            if piece.count < chunk { return out }
        }
        throw HostError("read \(path) (larger than \(limit) bytes)", errno: EFBIG)
    }

    /// Writes a small file atomically: a temporary name in the same directory, fsync'd
    /// unless `durable` is false, then renamed over `path`.
    public static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600,
                                           durable: Bool = false) throws(HostError) {
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .last("open \(temporary)") }
        do {
            try write(fd, bytes, what: "write \(temporary)")
            if durable { _ = fsync(fd) }
        } catch {
            close(fd); unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let e = HostError.last("rename \(temporary) to \(path)")
            unlink(temporary)
            throw e
        }
    }

    static func waitWritable(_ fd: Int32) {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        _ = poll(&p, 1, -1)
    }

    static func waitReadable(_ fd: Int32) {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, -1)
    }
}
