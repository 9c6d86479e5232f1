import XCTest
@testable import Boot

final class LayoutTests: XCTestCase {
    /// svm's low-memory structures must not overlap each other or the kernel at 1 MiB.
    func testBootStructuresDoNotOverlap() {
        let L = BootLayout.self
        let ranges: [(String, Range<UInt64>)] = [
            ("BDA EBDA pointer", L.biosEBDASegmentPointer..<L.biosEBDASegmentPointer + 2),
            ("GDT", L.gdt..<L.gdt + 4 * 8),
            ("PVH start info", L.pvhStartInfo..<L.pvhStartInfo + UInt64(PVHStartInfo.size)),
            ("PVH modules", L.pvhModuleList..<L.pvhModuleList + UInt64(PVHStartInfo.moduleEntrySize)),
            ("PVH memmap", L.pvhMemoryMap..<L.pvhMemoryMap + UInt64(PVHStartInfo.maxMemoryMapEntries * 24)),
            ("zero page", L.zeroPage..<L.zeroPage + 0x1000),
            ("stack page", 0x8000..<0x9000),
            ("page tables", L.pml4..<L.pageDirectories + 4 * 0x1000),
            ("command line", L.commandLine..<L.commandLine + L.commandLineCapacity),
            ("MP table", L.mpTable..<L.ebdaEnd),
        ]
        for (i, a) in ranges.enumerated() {
            XCTAssertLessThanOrEqual(a.1.upperBound, L.kernelLoad, a.0)
            for b in ranges[(i + 1)...] {
                XCTAssertFalse(a.1.overlaps(b.1), "\(a.0) overlaps \(b.0)")
            }
        }
        XCTAssertTrue((0x8000..<0x9000).contains(L.stackPointer))
        XCTAssertEqual(L.stackPointer % 16, 0)
    }

    func testGDTDescriptors() {
        XCTAssertEqual(GDT.entries(for: .long64(pml4: 0x9000)), [0, 0, 0x00AF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF])
        XCTAssertEqual(GDT.entries(for: .protected32), [0, 0, 0x00CF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF])
        // Selector 0x10 / 0x18 are entries 2 / 3.
        XCTAssertEqual(BootEntry.codeSelector >> 3, 2)
        XCTAssertEqual(BootEntry.dataSelector >> 3, 3)
    }

    func testErrorDescriptionsAreOneLineAndNameTheProblem() {
        XCTAssertEqual(BootError.unknownKernelFormat.description,
                       "kernel: not a bzImage or ELF vmlinux (no HdrS magic, no ELF header)")
        XCTAssertEqual(BootError.unsupportedBootProtocol(0x0205).description.contains("2.05"), true)
        XCTAssertTrue(BootError.noPVHEntry.description.contains("CONFIG_PVH=y"))
        XCTAssertTrue(BootError.initrdTooLarge(size: 32 << 20, available: 16 << 20).description.contains("32 MiB"))
        let all: [BootError] = [
            .unknownKernelFormat, .kernelTruncated(what: "x", needed: 2, size: 1), .unsupportedBootProtocol(0x200),
            .invalidSetupHeader("x"), .notLoadedHigh, .not64BitKernel, .invalidELF("x"), .noPVHEntry,
            .kernelTooLarge(end: 1, ramEnd: 0), .segmentOutsideRAM(address: 0, size: 1),
            .commandLineTooLong(length: 3, limit: 2), .commandLineContainsNUL, .initrdEmpty,
            .initrdTooLarge(size: 1, available: 0), .invalidCPUCount(0, maximum: 1),
            .memoryMapTooLarge(entries: 200, maximum: 128), .guestMemory(.outOfRange(address: 1, length: 1)),
        ]
        for e in all {
            XCTAssertFalse(e.description.contains("\n"))
            XCTAssertTrue(e.description.contains(":"), "names what it is about: \(e)")
        }
    }
}
