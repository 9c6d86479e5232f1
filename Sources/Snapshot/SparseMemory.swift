import CKVM
import Glibc

/// Guest RAM as one sparse file: byte N of the file is byte N of the RAM mapping, and pages
/// the guest never touched (or left all zero) are holes, so a 512 MiB guest at its prompt
/// costs only what it uses. The checksum covers every non-zero page with its offset, so a
/// reader that finds data segments holding zero pages (file systems allocate in blocks)
/// still computes the same value.
public enum SparseMemory {
    public static let pageSize = 4096
    // <unistd.h> defines these only under _GNU_SOURCE, which the Glibc module lacks.
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    public struct Written: Equatable, Sendable {
        public var checksum: Checksum
        /// Bytes of pages actually written (the rest are holes).
        public var dataBytes: UInt64
    }

    /// Writes `size` bytes at `base` (page-aligned) into the empty file `fd`, which ends up
    /// `size` bytes long. Pages not resident in the host (never touched) are skipped
    /// without reading them (mincore), resident pages that are all zero too.
    public static func write(_ base: UnsafeRawPointer, size: Int, to fd: Int32) throws(SnapshotError) -> Written {
        precondition(size % pageSize == 0 && Int(bitPattern: base) % pageSize == 0)
        let pages = size / pageSize
        var resident = [UInt8](repeating: 1, count: pages)
        // Without mincore (never expected), every page is looked at.
        _ = resident.withUnsafeMutableBufferPointer { mincore(UnsafeMutableRawPointer(mutating: base), size, $0.baseAddress) }
        var checksum = Checksum()
        var data: UInt64 = 0
        var page = 0
        while page < pages {
            guard resident[page] & 1 != 0, ckvm_is_zero(base + page * pageSize, pageSize) == 0 else {
                page += 1
                continue
            }
            // A run of non-zero pages goes out in one write.
            var end = page
            while end < pages, resident[end] & 1 != 0, ckvm_is_zero(base + end * pageSize, pageSize) == 0 {
                checksum.add(UInt64(end * pageSize))
                checksum.add(UnsafeRawBufferPointer(start: base + end * pageSize, count: pageSize))
                end += 1
            }
            try writeAll(fd, base + page * pageSize, count: (end - page) * pageSize, at: page * pageSize)
            data += UInt64((end - page) * pageSize)
            page = end
        }
        guard ftruncate(fd, off_t(size)) == 0 else { throw .last("ftruncate of the memory file") }
        return Written(checksum: checksum, dataBytes: data)
    }

    /// The checksum of a memory file: its data segments (SEEK_DATA/seekHole) read
    /// through `mapping` (the file mapped, `size` bytes), zero pages skipped as `write` does.
    public static func checksum(fd: Int32, mapping: UnsafeRawPointer, size: Int) throws(SnapshotError) -> Checksum {
        var checksum = Checksum()
        var offset = 0
        while offset < size {
            let data = lseek(fd, off_t(offset), seekData)
            if data < 0 {
                if errno == ENXIO { break }   // no data after offset
                throw .last("lseek SEEK_DATA in the memory file")
            }
            let hole = lseek(fd, data, seekHole)
            guard hole >= 0 else { throw .last("lseek SEEK_HOLE in the memory file") }
            var page = Int(data) / pageSize * pageSize
            let end = min(Int(hole), size)
            while page < end {
                if ckvm_is_zero(mapping + page, pageSize) == 0 {
                    checksum.add(UInt64(page))
                    checksum.add(UnsafeRawBufferPointer(start: mapping + page, count: pageSize))
                }
                page += pageSize
            }
            offset = max(end, page)
        }
        return checksum
    }

    static func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, count: Int, at offset: Int) throws(SnapshotError) {
        var done = 0
        while done < count {
            let n = pwrite(fd, p + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .last("write of the memory file")
            }
            done += n
        }
    }
}
