import XCTest
@testable import Boot
import Memory

final class ElfLoaderTests: XCTestCase {
    private func load(_ f: ElfFixture, _ mem: GuestMemory, initrd: [UInt8]? = nil) -> BootError? {
        assertBootError { () throws(BootError) in try loadLinux(params(f.bytes(), initrd: initrd), into: mem) }
    }

    func testLoadsSegmentsAndWritesStartInfo() throws {
        let mem = try GuestMemory(size: 64 << 20)
        // Dirty the .bss area to see that memsz beyond filesz is zeroed.
        try mem.write([UInt8](repeating: 0xCC, count: 0x3000), at: 0x100_0000)
        let f = ElfFixture()
        let initrd = [UInt8](repeating: 0x5A, count: 3 << 20)
        let entry = try loadLinux(params(f.bytes(), initrd: initrd, cmdline: "console=hvc0", cpus: 3), into: mem)

        XCTAssertEqual(entry.mode, .protected32)
        XCTAssertEqual(entry.rip, 0x100_0100)
        XCTAssertEqual(entry.rbx, 0x6000)
        XCTAssertEqual(entry.gdtBase, 0x500)
        XCTAssertEqual(try mem.u64(0x500 + 0x10), 0x00CF_9B00_0000_FFFF)

        XCTAssertEqual(try mem.readBytes(at: 0x100_0000, count: 0x100), BzImageFixture.kernelBody(count: 0x100))
        XCTAssertEqual(try mem.readBytes(at: 0x100_0200, count: 0x2E00), [UInt8](repeating: 0, count: 0x2E00))

        // struct hvm_start_info, offsets from start_info.h.
        let si: UInt64 = 0x6000
        XCTAssertEqual(try mem.u32(si + 0), 0x336E_C578)
        XCTAssertEqual(try mem.u32(si + 4), 1)
        XCTAssertEqual(try mem.u32(si + 8), 0)
        XCTAssertEqual(try mem.u32(si + 12), 1)
        let modlist = try mem.u64(si + 16)
        XCTAssertEqual(try mem.u64(si + 24), 0x2_0000)
        XCTAssertEqual(try mem.u64(si + 32), 0)
        let memmap = try mem.u64(si + 40)
        let entries = try mem.u32(si + 48)
        XCTAssertEqual(try mem.u32(si + 52), 0)
        XCTAssertEqual(try mem.readBytes(at: 0x2_0000, count: 13), Array("console=hvc0\0".utf8))

        // Module list: the initrd, page-aligned at the top of RAM, after the kernel.
        let initrdAddr = try mem.u64(modlist)
        XCTAssertEqual(try mem.u64(modlist + 8), UInt64(initrd.count))
        XCTAssertEqual(try mem.u64(modlist + 16), 0)
        XCTAssertEqual(initrdAddr % 4096, 0)
        XCTAssertGreaterThanOrEqual(initrdAddr, 0x100_3000)
        XCTAssertEqual(initrdAddr + UInt64(initrd.count), 64 << 20)
        XCTAssertEqual(try mem.readBytes(at: initrdAddr, count: 16), Array(initrd[0..<16]))

        // Memory map: hvm_memmap_table_entry, 24 bytes each, RAM = 1, reserved = 2.
        let expected = E820.map(for: mem.regions)
        XCTAssertEqual(Int(entries), expected.count)
        for (i, e) in expected.enumerated() {
            let at = memmap + UInt64(i) * 24
            XCTAssertEqual(try mem.u64(at), e.address)
            XCTAssertEqual(try mem.u64(at + 8), e.size)
            XCTAssertEqual(try mem.u32(at + 16), e.kind == .ram ? 1 : 2)
            XCTAssertEqual(try mem.u32(at + 20), 0)
        }
        XCTAssertEqual(try mem.readBytes(at: 0x9_FC00, count: 4), Array("_MP_".utf8))
    }

    func testStartInfoWithoutInitrdHasNoModules() throws {
        let mem = try GuestMemory(size: 64 << 20)
        _ = try loadLinux(params(ElfFixture().bytes()), into: mem)
        XCTAssertEqual(try mem.u32(0x6000 + 12), 0)
        XCTAssertEqual(try mem.u64(0x6000 + 16), 0)
        XCTAssertEqual(PVHStartInfo.bytes(moduleCount: 0, moduleList: 0, commandLine: 0, memoryMap: 0, memoryMapEntries: 0).count, 56)
        XCTAssertEqual(PVHStartInfo.moduleEntry(address: 0, size: 0).count, 32)
    }

    func testNoteVariants() throws {
        var f = ElfFixture(); f.descriptorSize = 4
        XCTAssertEqual(try ElfImage(FileBytes(f.bytes())).pvhEntry, 0x100_0100)
        f = ElfFixture(); f.noteInSectionOnly = true
        XCTAssertEqual(try ElfImage(FileBytes(f.bytes())).pvhEntry, 0x100_0100)
        let mem = try GuestMemory(size: 64 << 20)
        f = ElfFixture(); f.noteType = 17
        XCTAssertEqual(load(f, mem), .noPVHEntry)
        f = ElfFixture(); f.noteName = Array("GNU\0".utf8)
        XCTAssertEqual(load(f, mem), .noPVHEntry)
        XCTAssertEqual(assertBootError { () throws(BootError) in try detectKernelFormat(f.bytes()) }, .noPVHEntry)
        f = ElfFixture(); f.descriptorSize = 2
        guard case .invalidELF = load(f, mem) else { return XCTFail("2-byte descriptor") }
        f = ElfFixture(); f.entry = 0x200_0000
        guard case .invalidELF = load(f, mem) else { return XCTFail("entry outside segments") }
    }

    func testRejectsBadHeaders() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var f = ElfFixture(); f.machine = 3
        guard case .invalidELF = load(f, mem) else { return XCTFail("i386") }
        f = ElfFixture(); f.elfClass = 1
        guard case .invalidELF = load(f, mem) else { return XCTFail("ELF32") }
        f = ElfFixture(); f.phnum = 0
        guard case .invalidELF = load(f, mem) else { return XCTFail("no phdrs") }
        f = ElfFixture(); f.phoff = 0x10_0000
        guard case .kernelTruncated = load(f, mem) else { return XCTFail("phoff outside the file") }
        f = ElfFixture(); f.phoff = UInt64.max - 8
        guard case .invalidELF = load(f, mem) else { return XCTFail("phoff overflow") }
        f = ElfFixture(); f.phnum = 0xFFFF
        guard case .kernelTruncated = load(f, mem) else { return XCTFail("phnum beyond the file") }
        var bytes = ElfFixture().bytes()
        bytes.put(UInt16(8), at: 54)   // e_phentsize too small
        guard case .invalidELF = assertBootError({ () throws(BootError) in try loadLinux(params(bytes), into: mem) })
        else { return XCTFail("phentsize") }
    }

    func testRejectsBadSegments() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var f = ElfFixture(); f.loadAddress = 0x1000_0000; f.entry = 0x1000_0000
        XCTAssertEqual(load(f, mem), .kernelTooLarge(end: 0x1000_3000, ramEnd: 64 << 20))
        f = ElfFixture(); f.loadAddress = 0x8000; f.entry = 0x8000
        XCTAssertEqual(load(f, mem), .segmentOutsideRAM(address: 0x8000, size: 0x3000), "over svm's boot data")
        f = ElfFixture(); f.memorySize = 0x1_0000_0000
        XCTAssertEqual(load(f, mem), .segmentOutsideRAM(address: 0x100_0000, size: 0x1_0000_0000), "into the MMIO hole")
        f = ElfFixture(); f.loadAddress = 0xFFFF_FFFF_FFFF_F000; f.entry = 0xFFFF_F000
        guard case .invalidELF = load(f, mem) else { return XCTFail("wrapping segment cannot hold the entry") }
        f = ElfFixture(); f.loadOffset = UInt64.max - 0x10
        guard case .invalidELF = load(f, mem) else { return XCTFail("p_offset + p_filesz overflows") }
        f = ElfFixture(); f.fileSize = 0x100_0000; f.memorySize = 0x100_0000
        guard case .kernelTruncated = load(f, mem) else { return XCTFail("filesz beyond the file") }
        f = ElfFixture(); f.fileSize = 0x400; f.memorySize = 0x200
        guard case .invalidELF = load(f, mem) else { return XCTFail("filesz > memsz") }
        f = ElfFixture(); f.memorySize = UInt64.max
        XCTAssertEqual(load(f, mem), .segmentOutsideRAM(address: 0x100_0000, size: UInt64.max))
    }

    func testSegmentOverflowingRAMEndDirectly() throws {
        // A segment whose paddr + memsz overflows UInt64 is refused before any write.
        let mem = try GuestMemory(size: 64 << 20)
        var f = ElfFixture(); f.memorySize = UInt64.max - 0x100
        XCTAssertEqual(load(f, mem), .segmentOutsideRAM(address: 0x100_0000, size: UInt64.max - 0x100))
    }

    func testCommandLineLimitIsCOMMAND_LINE_SIZE() throws {
        let mem = try GuestMemory(size: 64 << 20)
        let k = ElfFixture().bytes()
        XCTAssertNoThrow(try loadLinux(params(k, cmdline: String(repeating: "x", count: 2047)), into: mem))
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try loadLinux(params(k, cmdline: String(repeating: "x", count: 2048)), into: mem)
        }, .commandLineTooLong(length: 2048, limit: 2047))
    }
}
