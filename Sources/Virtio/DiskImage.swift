import Glibc
import Host

/// Errors opening a disk image. The descriptions are meant for the person running svm;
/// host failures carry the failed call and its errno.
public enum DiskError: Error, Equatable, CustomStringConvertible {
    case openFailed(path: String, HostError)
    case inUse(path: String)
    case lockFailed(path: String, HostError)
    case sizeFailed(path: String, HostError)
    case sizeNotMultipleOfSector(path: String, bytes: UInt64)
    /// A directory, FIFO, socket or character device: only files and block devices hold sectors.
    case notAnImage(path: String, kind: String)

    public var description: String {
        switch self {
        case let .openFailed(path, error):
            return "cannot open disk \(path): \(error)"
        case let .inUse(path):
            return "disk \(path) is in use by another svm"
        case let .lockFailed(path, error):
            return "cannot lock disk \(path): \(error)"
        case let .sizeFailed(path, error):
            return "cannot find the size of disk \(path): \(error)"
        case let .sizeNotMultipleOfSector(path, bytes):
            return "disk \(path) is \(bytes) bytes, not a multiple of 512-byte sectors"
        case let .notAnImage(path, kind):
            return "disk \(path) is \(kind), not a disk image file or block device"
        }
    }
}

/// Where a virtio-blk device keeps its sectors. Offsets and lengths are in bytes, already
/// checked against `byteCount` by the caller. A failure is the host call that failed; the
/// guest only sees VIRTIO_BLK_S_IOERR.
public protocol BlockStorage: AnyObject, Sendable {
    /// Size in bytes, a multiple of 512.
    var byteCount: UInt64 { get }
    var isReadOnly: Bool { get }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(HostError)
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(HostError)
    /// Makes written data durable (fdatasync).
    func flush() throws(HostError)
}

/// A raw disk image file (or block device) on the host, locked against a second svm.
///
/// The lock is an advisory `flock` on the open file: exclusive for read-write, shared for
/// read-only, so several VMs may share a read-only image but never a writable one. It is
/// released when the descriptor is closed (deinit, or process exit).
public final class DiskImage: BlockStorage {
    public let path: String
    public let fileDescriptor: Int32
    public let byteCount: UInt64
    public let isReadOnly: Bool

    public init(path: String, readOnly: Bool) throws(DiskError) {
        // O_NONBLOCK so that a FIFO given as a disk is refused below instead of waiting
        // for a writer for good; cleared again for the image's I/O.
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let error = HostError.last("open")
            // A directory opened for writing fails with EISDIR: say what it is.
            if error.errno == EISDIR { throw .notAnImage(path: path, kind: "a directory") }
            throw .openFailed(path: path, error)
        }
        var failure: DiskError?
        var st = stat()
        if fstat(fd, &st) != 0 {
            failure = .sizeFailed(path: path, .last("fstat"))
        } else {
            switch st.st_mode & S_IFMT {
            case S_IFREG, S_IFBLK: _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            case S_IFDIR: failure = .notAnImage(path: path, kind: "a directory")
            case S_IFIFO: failure = .notAnImage(path: path, kind: "a FIFO")
            case S_IFSOCK: failure = .notAnImage(path: path, kind: "a socket")
            default: failure = .notAnImage(path: path, kind: "a character device")
            }
        }
        if failure == nil, flock(fd, (readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            let error = HostError.last(readOnly ? "flock LOCK_SH" : "flock LOCK_EX")
            failure = error.errno == EWOULDBLOCK ? .inUse(path: path) : .lockFailed(path: path, error)
        }
        // SEEK_END works for regular files and block devices alike (st_size does not).
        let end = failure == nil ? lseek(fd, 0, SEEK_END) : 0
        if failure == nil, end < 0 { failure = .sizeFailed(path: path, .last("lseek SEEK_END")) }
        if failure == nil, end % 512 != 0 {
            failure = .sizeNotMultipleOfSector(path: path, bytes: UInt64(end))
        }
        if let failure {
            close(fd)
            throw failure
        }
        self.path = path
        self.fileDescriptor = fd
        self.byteCount = UInt64(end)
        self.isReadOnly = readOnly
    }

    deinit {
        close(fileDescriptor)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(HostError) {
        let n = try FileIO.pread(fileDescriptor, into: buffer, at: offset, what: "read \(path)")
        // Short: the file shrank under us; report it like any other I/O failure.
        if n < buffer.count { throw HostError("read \(path) at byte \(offset + UInt64(n)) (end of file)", errno: EIO) }
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(HostError) {
        guard !isReadOnly else { throw HostError("write \(path)", errno: EROFS) }
        try FileIO.pwrite(fileDescriptor, buffer, at: offset, what: "write \(path)")
    }

    public func flush() throws(HostError) {
        _ = try check("fdatasync \(path)") { fdatasync(fileDescriptor) }
    }
}
