import Glibc

/// Errors opening a disk image. The descriptions are meant for the person running svm.
public enum DiskError: Error, Equatable, CustomStringConvertible {
    case openFailed(path: String, errno: Int32)
    case inUse(path: String)
    case lockFailed(path: String, errno: Int32)
    case sizeFailed(path: String, errno: Int32)
    case sizeNotMultipleOfSector(path: String, bytes: UInt64)

    public var description: String {
        switch self {
        case let .openFailed(path, err):
            return "cannot open disk \(path): \(String(cString: strerror(err)))"
        case let .inUse(path):
            return "disk \(path) is in use by another svm"
        case let .lockFailed(path, err):
            return "cannot lock disk \(path): \(String(cString: strerror(err)))"
        case let .sizeFailed(path, err):
            return "cannot find the size of disk \(path): \(String(cString: strerror(err)))"
        case let .sizeNotMultipleOfSector(path, bytes):
            return "disk \(path) is \(bytes) bytes, not a multiple of 512-byte sectors"
        }
    }
}

/// An I/O error of the storage behind a block device (errno of the failed call, or 0 for
/// an unexpected end of file).
public struct BlockIOError: Error, Equatable {
    public let errno: Int32
    public init(errno: Int32) { self.errno = errno }
}

/// Where a virtio-blk device keeps its sectors. Offsets and lengths are in bytes, already
/// checked against `byteCount` by the caller.
public protocol BlockStorage: AnyObject, Sendable {
    /// Size in bytes, a multiple of 512.
    var byteCount: UInt64 { get }
    var isReadOnly: Bool { get }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockIOError)
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockIOError)
    /// Makes written data durable (fdatasync).
    func flush() throws(BlockIOError)
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
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw .openFailed(path: path, errno: errno) }
        var failure: DiskError?
        if flock(fd, (readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            let err = errno
            failure = err == EWOULDBLOCK ? .inUse(path: path) : .lockFailed(path: path, errno: err)
        }
        // SEEK_END works for regular files and block devices alike (st_size does not).
        let end = failure == nil ? lseek(fd, 0, SEEK_END) : 0
        if failure == nil, end < 0 { failure = .sizeFailed(path: path, errno: errno) }
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

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockIOError) {
        var done = 0
        while done < buffer.count {
            let n = pread(fileDescriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n > 0 { done += n; continue }
            if n < 0, errno == EINTR { continue }
            // 0: the file shrank under us; report it like any other I/O failure.
            throw BlockIOError(errno: n == 0 ? 0 : errno)
        }
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockIOError) {
        guard !isReadOnly else { throw BlockIOError(errno: EROFS) }
        var done = 0
        while done < buffer.count {
            let n = pwrite(fileDescriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n > 0 { done += n; continue }
            if n < 0, errno == EINTR { continue }
            throw BlockIOError(errno: n == 0 ? ENOSPC : errno)
        }
    }

    public func flush() throws(BlockIOError) {
        while fdatasync(fileDescriptor) != 0 {
            guard errno == EINTR else { throw BlockIOError(errno: errno) }
        }
    }
}
