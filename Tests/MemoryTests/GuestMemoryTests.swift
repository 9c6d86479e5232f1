import Glibc
import XCTest
@testable import Memory

final class GuestMemoryTests: XCTestCase {
    func testLayoutBelowHoleIsOneRegion() {
        let r = GuestMemory.layout(size: 512 << 20)
        XCTAssertEqual(r, [.init(guestAddress: 0, size: 512 << 20, hostOffset: 0)])
    }

    func testLayoutExactlyAtHoleIsOneRegion() {
        XCTAssertEqual(GuestMemory.layout(size: GuestMemory.mmioHoleStart).count, 1)
    }

    func testLayoutAboveHoleSplitsAt3GiBAndResumesAt4GiB() {
        let r = GuestMemory.layout(size: 4 << 30)
        XCTAssertEqual(r.count, 2)
        XCTAssertEqual(r[0].end, 0xC000_0000)
        XCTAssertEqual(r[1].guestAddress, 0x1_0000_0000)
        XCTAssertEqual(r[1].size, 1 << 30)
        XCTAssertEqual(r[1].hostOffset, 0xC000_0000)
    }

    func testReadWriteRoundTrip() throws {
        let m = try GuestMemory(size: 2 << 20)
        try m.write(UInt32(0xdead_beef), at: 0x1000)
        XCTAssertEqual(try m.read(UInt32.self, at: 0x1000), 0xdead_beef)
        XCTAssertEqual(try m.readBytes(at: 0x1000, count: 4), [0xef, 0xbe, 0xad, 0xde])
    }

    func testAccessesPastTheEndAreRefused() throws {
        let m = try GuestMemory(size: 2 << 20)
        XCTAssertThrowsError(try m.write(UInt64(1), at: (2 << 20) - 4))
        XCTAssertThrowsError(try m.readBytes(at: UInt64.max - 2, count: 8))
        XCTAssertThrowsError(try m.write([1, 2, 3], at: UInt64.max))
        XCTAssertFalse(m.contains(0, length: UInt64.max))
        XCTAssertTrue(m.contains((2 << 20) - 1, length: 1))
        XCTAssertTrue(m.contains(2 << 20, length: 0))
    }

    func testAddressesInTheHoleAreRefused() throws {
        // Only the layout matters here; 4 GiB of MAP_NORESERVE costs nothing until touched.
        let m = try GuestMemory(size: 4 << 30)
        XCTAssertFalse(m.contains(0xC000_0000, length: 1))
        XCTAssertFalse(m.contains(0xBFFF_FFFF, length: 2))
        XCTAssertTrue(m.contains(0x1_0000_0000, length: 4096))
        try m.write(UInt8(7), at: 0x1_0000_0000)
        XCTAssertEqual(try m.read(UInt8.self, at: 0x1_0000_0000), 7)
    }

    func testInvalidSizesAreRefused() {
        XCTAssertThrowsError(try GuestMemory(size: 0))
        XCTAssertThrowsError(try GuestMemory(size: (1 << 20) + 1))
        XCTAssertThrowsError(try GuestMemory(size: 1 << 50))
    }
}

final class PopulationTests: XCTestCase {
    func testPopulatedMemoryIsResidentAndZero() throws {
        let size: UInt64 = 600 << 20  // more than one slice: several threads
        let m = try GuestMemory(size: size, populate: true)
        XCTAssertEqual(try m.read(UInt64.self, at: 0), 0)
        XCTAssertEqual(try m.read(UInt64.self, at: size - 8), 0)
        // Every page is resident before anything touched it (mincore).
        let pages = Int(size / 4096)
        var vec = [UInt8](repeating: 0, count: pages)
        XCTAssertEqual(mincore(m.hostBase, Int(size), &vec), 0)
        XCTAssertEqual(vec.filter { $0 & 1 == 0 }.count, 0, "pages not resident after populate")
    }

    func testThreadCountGrowsWithSizeButNotBeyondCores() {
        XCTAssertEqual(Population.threadCount(for: 16 << 20), 1)
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        XCTAssertEqual(Population.threadCount(for: 64 << 30), cores)
    }
}

/// Shareable guest RAM: a sealed memfd behind a MAP_SHARED mapping, so another process
/// (a vhost-user backend) that maps the fd sees the guest's bytes.
final class ShareableMemoryTests: XCTestCase {
    func testTheMemfdHoldsTheGuestsBytesAndCannotChangeSize() throws {
        let memory = try GuestMemory(size: 4 << 20, backing: .shareable)
        let fd = try XCTUnwrap(memory.memfd)
        try memory.write([1, 2, 3, 4], at: 0x2000)
        var bytes = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(pread(fd, &bytes, 4, 0x2000), 4)
        XCTAssertEqual(bytes, [1, 2, 3, 4])
        // A second mapping of the fd (what a backend does) sees writes both ways.
        let other = try XCTUnwrap(mmap(nil, 4 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))
        defer { munmap(other, 4 << 20) }
        XCTAssertEqual(other.load(fromByteOffset: 0x2001, as: UInt8.self), 2)
        other.storeBytes(of: 0x77, toByteOffset: 0x3000, as: UInt8.self)
        XCTAssertEqual(try memory.read(UInt8.self, at: 0x3000), 0x77)
        // Sealed: neither shrinking nor growing, and no more seals can be changed.
        XCTAssertNotEqual(ftruncate(fd, 1 << 20), 0)
        XCTAssertEqual(errno, EPERM)
        XCTAssertNotEqual(ftruncate(fd, 8 << 20), 0)
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(st.st_size, 4 << 20)
        XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
    }

    func testAnonymousMemoryHasNoMemfd() throws {
        XCTAssertNil(try GuestMemory(size: 1 << 20).memfd)
    }

    func testRegionsAreOffsetsIntoTheMemfdAroundTheHole() {
        let regions = GuestMemory.layout(size: 5 << 30)
        XCTAssertEqual(regions.count, 2)
        XCTAssertEqual(regions[1].guestAddress, GuestMemory.highMemoryStart)
        XCTAssertEqual(regions[1].hostOffset, GuestMemory.mmioHoleStart)
    }
}
