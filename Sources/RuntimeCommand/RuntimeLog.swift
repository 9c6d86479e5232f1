import Glibc
import Control

/// Where svm-runtime's messages go: stderr always ("svm-runtime: ..."), and the file of
/// `--log` when given, as text or, with `--log-format json`, one
/// `{"level":"error","msg":"...","time":"..."}` object per line (containerd's shim shows
/// the last error line of that file to the user; conmon reads it too).
struct RuntimeLog {
    enum Format: String { case text, json }

    var path: String?
    var format: Format = .text
    var debug = false

    func error(_ message: String) { write("error", message, toStderr: true) }
    func warning(_ message: String) { write("warning", message, toStderr: false) }
    func debugMessage(_ message: String) { if debug { write("debug", message, toStderr: false) } }

    private func write(_ level: String, _ message: String, toStderr: Bool) {
        if toStderr {
            let line = Array("svm-runtime: \(message)\n".utf8)
            _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        }
        guard let path else { return }
        let line: [UInt8]
        switch format {
        case .json:
            line = JSONText.encode(.object(["level": .string(level), "msg": .string(message), "time": .string(Self.timestamp())])) + [0x0A]
        case .text:
            line = Array("\(Self.timestamp()) \(level): \(message)\n".utf8)
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// RFC 3339 in UTC with nanoseconds, as runc's logs and state have it.
    static func timestamp(_ at: timespec? = nil) -> String {
        var ts = at ?? timespec()
        if at == nil { clock_gettime(CLOCK_REALTIME, &ts) }
        var t = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &t)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let nanos = String(ts.tv_nsec)
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)).\(String(repeating: "0", count: 9 - nanos.count))\(nanos)Z"
    }
}
