import Glibc
import Host

/// Where the guest's serial console goes when it is not shown: a non-blocking pipe with a
/// large buffer that nobody reads while the VM runs (kernel messages never reach the
/// user's stdout or stderr). Afterwards its contents explain a run that ended without
/// the program's exit status (the init prints "svm-init: ..." there when it cannot use
/// the control channel). A guest that prints more than the pipe holds loses the rest —
/// the writer is never blocked — which only costs diagnostics.
final class ConsoleTail {
    let writeFD: Int32
    private let readFD: Int32
    private var closed = false

    init() throws(RunError) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw RunError("cannot capture the guest console", .last("pipe"))
        }
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        _ = fcntl(writeFD, Self.setPipeSize, Int32(1 << 20))  // best effort; 64 KiB otherwise
    }

    /// F_SETPIPE_SZ (F_LINUX_SPECIFIC_BASE + 7), which Glibc's Swift module does not export.
    static let setPipeSize: Int32 = 1031

    deinit { close() }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(readFD)
        Glibc.close(writeFD)
    }

    /// Everything buffered so far, as text (the pipe is non-blocking: up to the first
    /// read that finds it empty).
    func drain() -> String {
        var out: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        while !closed, let n = try? FileIO.readSome(readFD, into: buffer), n > 0 {
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The last line the guest init printed on the console ("svm-init: …"), if any.
    static func lastInitMessage(in text: String) -> String? {
        let marker = Array("svm-init: ".utf8)
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).reversed() {
            let bytes = Array(line.utf8)
            guard bytes.count >= marker.count else { continue }
            for start in 0...(bytes.count - marker.count) where Array(bytes[start..<start + marker.count]) == marker {
                return String(decoding: bytes[start...], as: UTF8.self)
            }
        }
        return nil
    }
}
