import Glibc

/// Reads a user-supplied file (kernel, initrd) whole, with errors that name the file.
enum FileLoader {
    static func read(_ path: String, what: String, limit: UInt64) throws(MachineError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .badInput("\(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw .badInput("\(what) \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw .badInput("\(what) \(path): not a regular file")
        }
        let size = UInt64(st.st_size)
        guard size > 0 else { throw .badInput("\(what) \(path): file is empty") }
        guard size <= limit else {
            throw .badInput("\(what) \(path): \(size >> 20) MiB is larger than the \(limit >> 20) MiB svm accepts")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf in
                Glibc.read(fd, buf.baseAddress! + done, buf.count - done)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw .badInput("\(what) \(path): read failed: \(n == 0 ? "unexpected end of file" : String(cString: strerror(errno)))")
            }
            done += n
        }
        return bytes
    }
}
