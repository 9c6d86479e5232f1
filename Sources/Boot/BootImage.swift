import Glibc
import Memory

/// A kernel or initrd to load: either bytes already in memory (tests, generated images) or
/// an open file that is read with `pread` — headers a few bytes at a time, segments
/// straight into guest RAM. The file form is what svm uses: a 17 MiB vmlinux never sits in
/// svm's own heap beside the guest RAM it is copied into (that copy was most of the VMM's
/// memory peak), and parsing the headers twice costs a few small reads, not a second pass
/// over the whole image.
public struct BootImage: Sendable {
    enum Storage: Sendable {
        case bytes([UInt8])
        case file(OpenFile)
    }

    let storage: Storage
    /// Size in bytes, fixed when the image was opened.
    public let count: UInt64

    public init(bytes: [UInt8]) {
        storage = .bytes(bytes)
        count = UInt64(bytes.count)
    }

    /// Takes ownership of `fd` (closed when the last copy of the image goes away). `size`
    /// is the file's size at open; a file that shrinks later makes loading fail cleanly.
    public init(fileDescriptor fd: Int32, size: UInt64) {
        storage = .file(OpenFile(fd))
        count = size
    }

    /// `length` bytes at `offset`, or nil if the range is outside the image or cannot be read.
    func bytes(at offset: UInt64, length: UInt64) -> [UInt8]? {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= count, length <= UInt64(Int.max) else { return nil }
        switch storage {
        case let .bytes(array):
            return Array(array[Int(offset)..<Int(end)])
        case let .file(file):
            var out = [UInt8](repeating: 0, count: Int(length))
            let ok = out.withUnsafeMutableBytes { file.readFully(into: $0, at: offset) } == 0
            return ok ? out : nil
        }
    }

    /// Copies `[offset, offset+length)` of the image into guest RAM at `address`. For a file
    /// the bytes go from the page cache into guest RAM without a stop in svm's heap.
    func copy(offset: UInt64, length: UInt64, into memory: GuestMemory, at address: UInt64,
              what: String) throws(BootError) {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= count else {
            throw .kernelTruncated(what: what, needed: overflow ? UInt64.max : end, size: count)
        }
        switch storage {
        case let .bytes(array):
            try memory.store(array[Int(offset)..<Int(end)], at: address)
        case let .file(file):
            let error: Int32
            do {
                error = try memory.withMutableBytes(at: address, length: length) { file.readFully(into: $0, at: offset) }
            } catch let e as MemoryError {
                throw .guestMemory(e)
            } catch {
                throw .guestMemory(.outOfRange(address: address, length: length))
            }
            guard error == 0 else { throw .readFailed(what: what, errno: error) }
        }
    }
}

/// An owned file descriptor, closed when the last BootImage holding it is gone.
final class OpenFile: Sendable {
    let fd: Int32

    init(_ fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Fills `buffer` from `offset`: 0 on success, the errno of a failed read, or EIO if
    /// the file ends early (it was truncated after svm checked its size).
    func readFully(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Int32 {
        var done = 0
        while done < buffer.count {
            // Large reads in pieces: pread returns at most ~2 GiB at once anyway.
            let chunk = min(buffer.count - done, 1 << 30)
            let n = pread(fd, buffer.baseAddress! + done, chunk, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            done += n
        }
        return 0
    }
}
