import Glibc

/// Reads MemAvailable from /proc/meminfo, so that `--mem` larger than the host can give
/// is refused with a clear message instead of the OOM killer ending svm mid-boot.
enum HostMemoryCheck {
    static func availableBytes() -> UInt64? {
        guard let f = fopen("/proc/meminfo", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if s.hasPrefix("MemAvailable:") {
                let digits = s.dropFirst("MemAvailable:".count).filter { $0.isNumber }
                if let kb = UInt64(digits) { return kb * 1024 }
            }
        }
        return nil
    }
}
