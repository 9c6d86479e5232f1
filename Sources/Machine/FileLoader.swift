import Boot
import Glibc
import Host

/// Opens user-supplied files (kernel, initrd, firmware) with errors that name the file.
enum FileLoader {
    /// Opens a kernel or initrd for loading with pread (see BootImage): nothing is read yet.
    static func open(_ path: String, what: String, limit: UInt64) throws(MachineError) -> BootImage {
        let (fd, size) = try openRegularFile(path, what: what, limit: limit)
        return BootImage(fileDescriptor: fd, size: size, path: path)
    }

    /// Reads a small file (a flat firmware image) whole.
    static func read(_ path: String, what: String, limit: UInt64) throws(MachineError) -> [UInt8] {
        let (fd, size) = try openRegularFile(path, what: what, limit: limit)
        defer { close(fd) }
        let bytes: [UInt8]
        do { bytes = try FileIO.readFully(fd, count: Int(size)) } catch { throw .badInput("\(what) \(path): \(error)") }
        guard bytes.count == Int(size) else { throw .badInput("\(what) \(path): read failed: unexpected end of file") }
        return bytes
    }

    /// A descriptor for a non-empty regular file of at most `limit` bytes, and its size.
    private static func openRegularFile(_ path: String, what: String, limit: UInt64) throws(MachineError) -> (Int32, UInt64) {
        // O_NONBLOCK: opening a FIFO would otherwise wait for a writer for good, with the
        // terminating signals already blocked (svm boot takes them through a signalfd).
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw .badInput("\(what) \(path): \(HostError.last("open"))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = HostError.last("fstat")
            close(fd)
            throw .badInput("\(what) \(path): \(e)")
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
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, size)
    }
}
