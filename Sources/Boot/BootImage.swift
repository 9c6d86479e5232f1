import Glibc
import Host
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
    /// `path` names the file in read errors.
    public init(fileDescriptor fd: Int32, size: UInt64, path: String = "") {
        storage = .file(OpenFile(fd, path: path))
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
            guard let out = try? FileIO.pread(file.fd, count: Int(length), at: offset), out.count == Int(length) else {
                return nil
            }
            return out
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
            do {
                try memory.withMutableBytes(at: address, length: length) { try file.readFully(into: $0, at: offset) }
            } catch let e as HostError {
                throw .readFailed(what: what, e)
            } catch let e as MemoryError {
                throw .guestMemory(e)
            } catch {
                throw .guestMemory(.outOfRange(address: address, length: length))
            }
        }
    }
}

/// An owned file descriptor, closed when the last BootImage holding it is gone.
final class OpenFile: Sendable {
    let fd: Int32
    /// The file's path, for messages.
    let path: String

    init(_ fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Fills `buffer` from `offset`. A file that ends early (it was truncated after svm
    /// checked its size) fails with EIO.
    func readFully(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(HostError) {
        let name = path.isEmpty ? "read" : "read \(path)"
        let n = try FileIO.pread(fd, into: buffer, at: offset, what: name)
        if n < buffer.count {
            throw HostError("\(name) (the file ended at byte \(offset + UInt64(n)): it changed while svm read it)", errno: EIO)
        }
    }
}
