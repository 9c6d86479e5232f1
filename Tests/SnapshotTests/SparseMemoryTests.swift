import Glibc
import XCTest
@testable import Snapshot

final class SparseMemoryTests: XCTestCase {
    let size = 8 << 20
    var directory = ""

    override func setUp() {
        directory = "/tmp/svm-sparse-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(directory, 0o700)
    }

    override func tearDown() {
        SnapshotFiles.abandon(directory)
    }

    func anonymous() -> UnsafeMutableRawPointer {
        mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
    }

    /// Pages written with data, a page written with zeros, the rest never touched.
    func fill(_ p: UnsafeMutableRawPointer) {
        memset(p + 0, 0x11, 4096)
        memset(p + 4096 * 3, 0x22, 4096 * 2)
        (p + 4096 * 100 + 17).storeBytes(of: 0x5a, as: UInt8.self)
        memset(p + 4096 * 200, 0, 4096)   // touched but zero: a hole too
        memset(p + size - 4096, 0x33, 4096)
    }

    func testWritesOnlyNonZeroPagesAndTheChecksumMatchesTheFile() throws {
        let p = anonymous()
        defer { munmap(p, size) }
        fill(p)
        let fd = try SnapshotFiles.create(directory, SnapshotFiles.memory)
        defer { close(fd) }
        let written = try SparseMemory.write(p, size: size, to: fd)
        XCTAssertEqual(written.dataBytes, 5 * 4096)
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(Int(st.st_size), size)
        XCTAssertLessThanOrEqual(Int(st.st_blocks) * 512, 64 * 4096, "holes were written")

        let file = open("\(directory)/memory", O_RDONLY)
        defer { close(file) }
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, file, 0)!
        defer { munmap(mapped, size) }
        XCTAssertEqual(memcmp(mapped, p, size), 0, "the file is not the memory")
        XCTAssertEqual(try SparseMemory.checksum(fd: file, mapping: mapped, size: size), written.checksum)

        // A byte changed anywhere, in data or in a hole, changes the checksum.
        for offset in [17, 4096 * 4 + 9, 4096 * 50, size - 1] {
            let old = mapped.load(fromByteOffset: offset, as: UInt8.self)
            mapped.storeBytes(of: old ^ 0x40, toByteOffset: offset, as: UInt8.self)
            // Through the private mapping: the checksum reads what the guest would see.
            var c = Checksum()
            for page in stride(from: 0, to: size, by: 4096) where ckvmNonZero(mapped + page) {
                c.add(UInt64(page))
                c.add(UnsafeRawBufferPointer(start: mapped + page, count: 4096))
            }
            XCTAssertNotEqual(c, written.checksum, "change at \(offset) not seen")
            mapped.storeBytes(of: old, toByteOffset: offset, as: UInt8.self)
        }
    }

    func ckvmNonZero(_ p: UnsafeRawPointer) -> Bool {
        UnsafeRawBufferPointer(start: p, count: 4096).contains { $0 != 0 }
    }

    func testAllZeroMemoryIsAllHole() throws {
        let p = anonymous()
        defer { munmap(p, size) }
        memset(p, 0, size)   // resident, but zero
        let fd = try SnapshotFiles.create(directory, SnapshotFiles.memory)
        defer { close(fd) }
        let written = try SparseMemory.write(p, size: size, to: fd)
        XCTAssertEqual(written.dataBytes, 0)
        XCTAssertEqual(try SparseMemory.checksum(fd: fd, mapping: p, size: size), written.checksum)
    }

    func testSnapshotDirectoryAppearsOnlyWhenCommitted() throws {
        let target = directory + "/snap"
        let partial = try SnapshotFiles.beginWriting(target)
        XCTAssertNotEqual(access(target, F_OK), 0)
        try SnapshotFiles.write(Array("x".utf8), to: partial, SnapshotFiles.state)
        try SnapshotFiles.commit(partial, as: target)
        XCTAssertEqual(try SnapshotFiles.read(target, SnapshotFiles.state), Array("x".utf8))
        XCTAssertThrowsError(try SnapshotFiles.beginWriting(target), "an existing directory was reused")
        XCTAssertThrowsError(try SnapshotFiles.read(target, SnapshotFiles.manifest)) { error in
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
        unlink(target + "/state")
        rmdir(target)
    }
}
