import XCTest
@testable import Boot
import Memory

final class BzImageLoaderTests: XCTestCase {
    private let zp: UInt64 = 0x7000

    func testDetectsFormatsByContent() throws {
        XCTAssertEqual(try detectKernelFormat(BzImageFixture().bytes()), .bzImage)
        XCTAssertEqual(try detectKernelFormat(ElfFixture().bytes()), .elfPVH)
        XCTAssertEqual(assertBootError { () throws(BootError) in try detectKernelFormat([UInt8](repeating: 0x90, count: 8192)) },
                       .unknownKernelFormat)
        XCTAssertEqual(assertBootError { () throws(BootError) in try detectKernelFormat([]) }, .unknownKernelFormat)
    }

    func testLoadsAndFillsTheZeroPage() throws {
        let mem = try GuestMemory(size: 64 << 20)
        let fx = BzImageFixture()
        let kernel = fx.bytes()
        let initrd = [UInt8](repeating: 0xA5, count: 12345)
        let entry = try loadLinux(params(kernel, initrd: initrd, cmdline: "console=ttyS0 quiet", cpus: 2), into: mem)

        XCTAssertEqual(entry.mode, .long64(pml4: 0x9000))
        XCTAssertEqual(entry.rip, 0x10_0200)
        XCTAssertEqual(entry.rsi, 0x7000)
        XCTAssertEqual(entry.rsp, 0x8FF0)
        XCTAssertEqual(entry.gdtBase, 0x500)
        XCTAssertEqual(entry.gdtLimit, 31)
        XCTAssertEqual(try mem.u64(0x500 + 0x10), 0x00AF_9B00_0000_FFFF)
        XCTAssertEqual(try mem.u64(0x500 + 0x18), 0x00CF_9300_0000_FFFF)

        // Zero page fields at the offsets bootparam.h gives them.
        XCTAssertEqual(try mem.readBytes(at: zp + 0x202, count: 4), Array("HdrS".utf8))  // header copied
        XCTAssertEqual(try mem.u16(zp + 0x206), 0x020F)
        XCTAssertEqual(try mem.u8(zp + 0x1F1), 1)                      // setup_sects copied
        XCTAssertEqual(try mem.u16(zp + 0x1FA), 0xFFFF)                // vid_mode
        XCTAssertEqual(try mem.u8(zp + 0x210), 0xFF)                   // type_of_loader
        XCTAssertEqual(try mem.u8(zp + 0x211), 0x81)                   // LOADED_HIGH | CAN_USE_HEAP
        XCTAssertEqual(try mem.u16(zp + 0x224), 0xFE00)                // heap_end_ptr
        XCTAssertEqual(try mem.u32(zp + 0x228), 0x2_0000)              // cmd_line_ptr
        let ramdisk = UInt64(try mem.u32(zp + 0x218))
        XCTAssertEqual(try mem.u32(zp + 0x21C), 12345)                 // ramdisk_size
        XCTAssertEqual(try mem.readBytes(at: ramdisk, count: initrd.count), initrd)
        XCTAssertEqual(try mem.u8(zp + 0x1EF), 0, "sentinel must stay 0: only the header is copied")

        // e820 table: count at 0x1E8, packed 20-byte entries at 0x2D0.
        let expected = E820.map(for: mem.regions)
        XCTAssertEqual(Int(try mem.u8(zp + 0x1E8)), expected.count)
        for (i, e) in expected.enumerated() {
            let at = zp + 0x2D0 + UInt64(i) * 20
            XCTAssertEqual(try mem.u64(at), e.address)
            XCTAssertEqual(try mem.u64(at + 8), e.size)
            XCTAssertEqual(try mem.u32(at + 16), e.kind.rawValue)
        }

        XCTAssertEqual(try mem.readBytes(at: 0x2_0000, count: 20), Array("console=ttyS0 quiet\0".utf8))
        XCTAssertEqual(try mem.readBytes(at: 0x10_0000, count: fx.kernelSize), Array(kernel[fx.setupBytes...]))

        // Identity page tables: PML4[0] -> PDPT, PDPT[3] -> 4th PD, last 2 MiB page of 4 GiB.
        XCTAssertEqual(try mem.u64(0x9000), 0xA003)
        XCTAssertEqual(try mem.u64(0xA000 + 3 * 8), 0xE003)
        XCTAssertEqual(try mem.u64(0xB000), 0x83)
        XCTAssertEqual(try mem.u64(0xE000 + 511 * 8), 0xFFE0_0000 | 0x83)
        XCTAssertEqual(try mem.u64(0x9000 + 8), 0)

        // Common structures: MP table in the EBDA and the BDA pointer to it.
        XCTAssertEqual(try mem.readBytes(at: 0x9_FC00, count: 4), Array("_MP_".utf8))
        XCTAssertEqual(try mem.u16(0x40E), 0x9FC0)
    }

    func testLoaderOwnedFieldsAreClearedWhateverTheFileSays() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var kernel = BzImageFixture().bytes()
        kernel.put(UInt64(0xDEAD_BEEF_0000), at: 0x250)   // setup_data
        kernel.put(UInt32(0x1234_5000), at: 0x218)        // ramdisk_image
        kernel.put(UInt32(0x1000), at: 0x21C)             // ramdisk_size
        kernel.put(UInt32(2), at: 0x23C)                  // hardware_subarch (Xen PV)
        _ = try loadLinux(params(kernel), into: mem)
        XCTAssertEqual(try mem.u64(zp + 0x250), 0)
        XCTAssertEqual(try mem.u32(zp + 0x218), 0)
        XCTAssertEqual(try mem.u32(zp + 0x21C), 0)
        XCTAssertEqual(try mem.u32(zp + 0x23C), 0)
    }

    func testZeroPageListsRAMAbove4GiB() throws {
        let mem = try GuestMemory(size: (3 << 30) + (64 << 20))
        _ = try loadLinux(params(BzImageFixture().bytes()), into: mem)
        XCTAssertEqual(try mem.u8(zp + 0x1E8), 4)
        let last = zp + 0x2D0 + 3 * 20
        XCTAssertEqual(try mem.u64(last), 0x1_0000_0000)
        XCTAssertEqual(try mem.u64(last + 8), 64 << 20)
        XCTAssertEqual(try mem.u32(last + 16), 1)
    }

    func testRejectsBadHeaders() throws {
        let mem = try GuestMemory(size: 64 << 20)
        func load(_ f: BzImageFixture) -> BootError? {
            assertBootError { () throws(BootError) in try loadLinux(params(f.bytes()), into: mem) }
        }
        var f = BzImageFixture(); f.magic = 0x5372_6449
        XCTAssertEqual(load(f), .unknownKernelFormat)
        f = BzImageFixture(); f.version = 0x020B
        XCTAssertEqual(load(f), .unsupportedBootProtocol(0x020B))
        f = BzImageFixture(); f.loadflags = 0
        XCTAssertEqual(load(f), .notLoadedHigh)
        f = BzImageFixture(); f.xloadflags = 0x2
        XCTAssertEqual(load(f), .not64BitKernel)
        f = BzImageFixture(); f.kernelAlignment = 0x30_0000
        guard case .invalidSetupHeader = load(f) else { return XCTFail("alignment not a power of two") }
        f = BzImageFixture(); f.kernelAlignment = 0
        guard case .invalidSetupHeader = load(f) else { return XCTFail("alignment 0") }
        f = BzImageFixture(); f.headerEndByte = 0x10
        guard case .invalidSetupHeader = load(f) else { return XCTFail("header too short for init_size") }
        f = BzImageFixture(); f.initSize = 0
        guard case .invalidSetupHeader = load(f) else { return XCTFail("init_size 0") }
        f = BzImageFixture(); f.prefAddress = UInt64.max - 0x1000
        guard case .invalidSetupHeader = load(f) else { return XCTFail("pref_address overflow") }
    }

    func testBogusSetupSectsIsATruncatedFile() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var f = BzImageFixture(); f.kernelSize = 0
        var kernel = f.bytes()
        kernel[0x1F1] = 255            // claims 128 KiB of setup, file has 1 KiB
        guard case .kernelTruncated = assertBootError({ () throws(BootError) in
            try loadLinux(params(kernel), into: mem)
        }) else { return XCTFail() }
        // setup_sects 0 means 4: 1024 + 1000 bytes then stop inside the setup code.
        var short = BzImageFixture(); short.kernelSize = 1000
        kernel = short.bytes()
        kernel[0x1F1] = 0
        guard case .kernelTruncated = assertBootError({ () throws(BootError) in
            try loadLinux(params(kernel), into: mem)
        }) else { return XCTFail() }
        // An empty protected-mode kernel is refused.
        XCTAssertEqual(assertBootError { () throws(BootError) in try loadLinux(params(f.bytes()), into: mem) },
                       .kernelTruncated(what: "1 setup sectors and a protected-mode kernel", needed: 1025, size: 1024))
    }

    func testInitSizeMustFitInRAM() throws {
        // Relocatable: runs at max(align_up(1 MiB, 2 MiB), 16 MiB) and needs 16 MiB from there.
        let small = try GuestMemory(size: 24 << 20)
        XCTAssertEqual(assertBootError { () throws(BootError) in try loadLinux(params(BzImageFixture().bytes()), into: small) },
                       .kernelTooLarge(end: 32 << 20, ramEnd: 24 << 20))
        let mem = try GuestMemory(size: 32 << 20)
        XCTAssertNoThrow(try loadLinux(params(BzImageFixture().bytes()), into: mem))
        // A kernel whose image alone does not fit.
        let big = BzImageFixture().bytes() + [UInt8](repeating: 0, count: (40 << 20) - 4096)
        let e = assertBootError { () throws(BootError) in try loadLinux(params(big), into: mem) }
        XCTAssertEqual(e, .kernelTooLarge(end: 0x10_0000 + (40 << 20), ramEnd: 32 << 20))
    }

    func testNonRelocatableRunsAtPrefAddress() throws {
        var f = BzImageFixture(); f.relocatable = 0; f.kernelAlignment = 0; f.prefAddress = 0x200_0000
        let end = try BzImageLoader.footprintEnd(try SetupHeader(FileBytes(f.bytes())), kernelSize: 4096, load: 0x10_0000)
        XCTAssertEqual(end, 0x200_0000 + 0x100_0000)
    }

    func testCommandLineLimitComesFromTheHeader() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var f = BzImageFixture(); f.cmdlineSize = 16
        XCTAssertNoThrow(try loadLinux(params(f.bytes(), cmdline: String(repeating: "a", count: 16)), into: mem))
        XCTAssertEqual(try mem.u8(0x2_0000 + 16), 0, "NUL-terminated")
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try loadLinux(params(f.bytes(), cmdline: String(repeating: "a", count: 17)), into: mem)
        }, .commandLineTooLong(length: 17, limit: 16))
        // A header allowing more than svm reserves is capped at svm's area.
        f.cmdlineSize = 0xFFFF_FFFF
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try loadLinux(params(f.bytes(), cmdline: String(repeating: "a", count: 0x1_0000)), into: mem)
        }, .commandLineTooLong(length: 0x1_0000, limit: 0xFFFF))
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try loadLinux(params(f.bytes(), cmdline: "a\0b"), into: mem)
        }, .commandLineContainsNUL)
    }
}
