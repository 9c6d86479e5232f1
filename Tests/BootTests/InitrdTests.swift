import XCTest
@testable import Boot
import Memory

final class InitrdTests: XCTestCase {
    func testPlacementIsHighestPageAlignedBelowTheLimit() throws {
        let a = try InitrdPlacement.address(size: 0x1234, kernelEnd: 0x200_0000, limit: 0x400_0000)
        XCTAssertEqual(a % 4096, 0)
        XCTAssertLessThanOrEqual(a + 0x1234, 0x400_0000)
        XCTAssertEqual(a, 0x400_0000 - 0x2000)
        // Unaligned limit is rounded down, unaligned kernel end rounded up.
        let b = try InitrdPlacement.address(size: 0x1000, kernelEnd: 0x1001, limit: 0x3FFF)
        XCTAssertEqual(b, 0x2000)
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try InitrdPlacement.address(size: 0x1001, kernelEnd: 0x1001, limit: 0x3FFF)
        }, .initrdTooLarge(size: 0x1001, available: 0x1000))
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try InitrdPlacement.address(size: 1, kernelEnd: 0x5000, limit: 0x4000)
        }, .initrdTooLarge(size: 1, available: 0))
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try InitrdPlacement.address(size: 0, kernelEnd: 0, limit: 0x4000)
        }, .initrdEmpty)
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try InitrdPlacement.address(size: 1, kernelEnd: UInt64.max, limit: 0x4000)
        }, .initrdTooLarge(size: 1, available: 0))
    }

    func testBzImageInitrdRespectsInitrdAddrMaxAndKernelEnd() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var f = BzImageFixture(); f.initrdAddrMax = 0x2FF_FFFF   // highest usable byte: 48 MiB - 1
        let initrd = [UInt8](repeating: 7, count: 5 << 20)
        _ = try loadLinux(params(f.bytes(), initrd: initrd), into: mem)
        let addr = UInt64(try mem.u32(0x7000 + 0x218))
        XCTAssertEqual(addr % 4096, 0)
        XCTAssertLessThanOrEqual(addr + UInt64(initrd.count) - 1, 0x2FF_FFFF)
        XCTAssertGreaterThanOrEqual(addr, 32 << 20, "above the kernel's init_size area (16 MiB + 16 MiB)")
        XCTAssertEqual(addr, alignDown(0x300_0000 - UInt64(initrd.count), to: 4096))

        // 16 MiB free between 32 MiB and 48 MiB: one byte more does not fit.
        XCTAssertNoThrow(try loadLinux(params(f.bytes(), initrd: [UInt8](repeating: 1, count: 16 << 20)), into: mem))
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try loadLinux(params(f.bytes(), initrd: [UInt8](repeating: 1, count: (16 << 20) + 1)), into: mem)
        }, .initrdTooLarge(size: (16 << 20) + 1, available: 16 << 20))
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try loadLinux(params(f.bytes(), initrd: []), into: mem)
        }, .initrdEmpty)
    }

    func testInitrdBelowLowRAMEndWhenAddrMaxIsHigher() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var f = BzImageFixture(); f.initrdAddrMax = 0xFFFF_FFFF    // + 1 must not overflow
        _ = try loadLinux(params(f.bytes(), initrd: [1, 2, 3]), into: mem)
        XCTAssertEqual(try mem.u32(0x7000 + 0x218), UInt32((64 << 20) - 4096))
    }
}
