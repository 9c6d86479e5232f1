import XCTest
@testable import Boot
import Memory

final class MPTableTests: XCTestCase {
    private func sum(_ b: ArraySlice<UInt8>) -> UInt8 { b.reduce(0, &+) }
    private func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    private func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }

    func testChecksumsAndProcessorEntries() throws {
        for cpus in [1, 2, 4, 7, MPTable.maxCPUs] {
            let t = try MPTable.bytes(cpuCount: cpus)
            // Floating pointer: "_MP_", 16 bytes summing to 0, pointing just after itself.
            XCTAssertEqual(Array(t[0..<4]), Array("_MP_".utf8))
            XCTAssertEqual(sum(t[0..<16]), 0)
            XCTAssertEqual(t[8], 1)
            XCTAssertEqual(t[9], 4)
            XCTAssertEqual(u32(t, 4), 0x9_FC00 + 16)
            // Configuration table.
            let config = Array(t[16...])
            XCTAssertEqual(Array(config[0..<4]), Array("PCMP".utf8))
            let length = u16(config, 4)
            XCTAssertEqual(length, config.count)
            XCTAssertEqual(sum(config[0..<length]), 0)
            XCTAssertEqual(config[6], 4)
            XCTAssertEqual(Array(config[8..<16]), Array("SVM     ".utf8))
            XCTAssertEqual(u32(config, 36), 0xFEE0_0000)
            // Walk the entries by type.
            var o = 44, processors = 0, ioints = 0, lints = 0, count = 0
            var bsp = 0
            while o < length {
                count += 1
                switch config[o] {
                case 0:
                    XCTAssertEqual(Int(config[o + 1]), processors)     // APIC id = index
                    XCTAssertEqual(config[o + 2], 0x14)
                    XCTAssertEqual(config[o + 3] & 1, 1)                // enabled
                    if config[o + 3] & 2 != 0 { bsp += 1; XCTAssertEqual(processors, 0) }
                    processors += 1; o += 20
                case 1:
                    XCTAssertEqual(Array(config[o + 2..<o + 8]), Array("ISA   ".utf8)); o += 8
                case 2:
                    XCTAssertEqual(Int(config[o + 1]), cpus)           // I/O APIC id
                    XCTAssertEqual(config[o + 2], 0x11)
                    XCTAssertEqual(u32(config, o + 4), 0xFEC0_0000); o += 8
                case 3:
                    XCTAssertEqual(config[o + 5], config[o + 7])       // ISA IRQ n -> pin n
                    XCTAssertEqual(Int(config[o + 6]), cpus)
                    ioints += 1; o += 8
                case 4:
                    XCTAssertEqual(config[o + 6], 0xFF)
                    XCTAssertEqual(config[o + 7], config[o + 1] == 3 ? 0 : 1) // ExtINT->LINT0, NMI->LINT1
                    lints += 1; o += 8
                default:
                    XCTFail("unknown entry type \(config[o])"); return
                }
            }
            XCTAssertEqual(processors, cpus)
            XCTAssertEqual(bsp, 1)
            XCTAssertEqual(ioints, 16)
            XCTAssertEqual(lints, 2)
            XCTAssertEqual(u16(config, 34), count)
            XCTAssertLessThanOrEqual(0x9_FC00 + t.count, 0xA_0000, "fits below 640 KiB")
        }
    }

    func testCPUCountLimits() throws {
        XCTAssertGreaterThanOrEqual(MPTable.maxCPUs, 32)
        XCTAssertEqual(maximumBootCPUCount, MPTable.maxCPUs)
        // One more processor entry would not fit below 0xA0000.
        XCTAssertGreaterThan(0x9_FC00 + MPTable.fixedSize + 20 * (MPTable.maxCPUs + 1), 0xA_0000)
        for bad in [0, -1, MPTable.maxCPUs + 1, Int.max] {
            let e = assertBootError { () throws(BootError) in try MPTable.bytes(cpuCount: bad) }
            XCTAssertEqual(e, .invalidCPUCount(bad, maximum: MPTable.maxCPUs))
        }
        // loadLinux checks it before writing anything.
        let mem = try GuestMemory(size: 64 << 20)
        XCTAssertEqual(assertBootError { () throws(BootError) in
            try loadLinux(params(BzImageFixture().bytes(), cpus: 0), into: mem)
        }, .invalidCPUCount(0, maximum: MPTable.maxCPUs))
        XCTAssertEqual(try mem.u64(0x10_0000), 0, "kernel not loaded")
    }
}
