import Boot
import Glibc

/// Opens user-supplied files (kernel, initrd, firmware) with errors that name the file.
enum FileLoader {
    /// Opens a kernel or initrd for loading with pread (see BootImage): nothing is read yet.
    static func open(_ path: String, what: String, limit: UInt64) throws(MachineError) -> BootImage {
        let (fd, size) = try openRegularFile(path, what: what, limit: limit)
        return BootImage(fileDescriptor: fd, size: size)
    }

    /// Reads a small file (a flat firmware image) whole.
    static func read(_ path: String, what: String, limit: UInt64) throws(MachineError) -> [UInt8] {
        let (fd, size) = try openRegularFile(path, what: what, limit: limit)
        defer { close(fd) }
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

    /// A descriptor for a non-empty regular file of at most `limit` bytes, and its size.
    private static func openRegularFile(_ path: String, what: String, limit: UInt64) throws(MachineError) -> (Int32, UInt64) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .badInput("\(what) \(path): \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw .badInput("\(what) \(path): \(String(cString: strerror(e)))")
        }
        let size = UInt64(st.st_size)
        let problem: String? =
            (st.st_mode & S_IFMT) != S_IFREG ? "not a regular file"
            : size == 0 ? "file is empty"
            : size > limit ? "\(size >> 20) MiB is larger than the \(limit >> 20) MiB svm accepts"
            : nil
        if let problem {
            close(fd)
            throw .badInput("\(what) \(path): \(problem)")
        }
        return (fd, size)
    }
}
