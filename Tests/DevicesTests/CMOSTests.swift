import Glibc
import Synchronization
import XCTest
@testable import Devices

final class CMOSTests: XCTestCase {
    /// 2026-11-29 10:27:05 UTC, a Sunday.
    static let fixed: time_t = 1_795_948_025

    private func read(_ cmos: CMOS, _ index: UInt8) -> UInt8 {
        cmos.write(port: 0x70, value: index)
        return cmos.read(port: 0x71)
    }

    func testFixedTimeInBCD() {
        let cmos = CMOS(now: { CMOSTests.fixed })
        XCTAssertEqual(read(cmos, 0x00), 0x05)
        XCTAssertEqual(read(cmos, 0x02), 0x27)
        XCTAssertEqual(read(cmos, 0x04), 0x10)
        XCTAssertEqual(read(cmos, 0x06), 0x01, "Sunday is 1")
        XCTAssertEqual(read(cmos, 0x07), 0x29)
        XCTAssertEqual(read(cmos, 0x08), 0x11)
        XCTAssertEqual(read(cmos, 0x09), 0x26)
        XCTAssertEqual(read(cmos, 0x32), 0x20)
    }

    func testNMIMaskBitIsIgnored() {
        let cmos = CMOS(now: { CMOSTests.fixed })
        XCTAssertEqual(read(cmos, 0x80 | 0x02), 0x27)
    }

    func testStatusRegisters() {
        let cmos = CMOS(now: { CMOSTests.fixed })
        XCTAssertEqual(read(cmos, 0x0A), 0x26, "divider bits, UIP clear")
        XCTAssertEqual(read(cmos, 0x0B), 0x02, "24-hour, BCD")
        XCTAssertEqual(read(cmos, 0x0C), 0x00)
        XCTAssertEqual(read(cmos, 0x0D), 0x80, "valid RAM and time")
        cmos.write(port: 0x70, value: 0x0A)
        cmos.write(port: 0x71, value: 0xA6)
        XCTAssertEqual(read(cmos, 0x0A), 0x26, "UIP never reads as set")
        cmos.write(port: 0x70, value: 0x0D)
        cmos.write(port: 0x71, value: 0x00)
        XCTAssertEqual(read(cmos, 0x0D), 0x80, "D is read-only")
    }

    func testRAMStoresOtherIndicesAndIgnoresClockWrites() {
        let cmos = CMOS(now: { CMOSTests.fixed })
        cmos.write(port: 0x70, value: 0x40)
        cmos.write(port: 0x71, value: 0x5A)
        cmos.write(port: 0x70, value: 0x7F)
        cmos.write(port: 0x71, value: 0xA5)
        XCTAssertEqual(read(cmos, 0x40), 0x5A)
        XCTAssertEqual(read(cmos, 0x7F), 0xA5)
        XCTAssertEqual(read(cmos, 0x41), 0x00)
        cmos.write(port: 0x70, value: 0x00)
        cmos.write(port: 0x71, value: 0x59)
        XCTAssertEqual(read(cmos, 0x00), 0x05, "clock follows the host")
        XCTAssertEqual(cmos.read(port: 0x70), 0xFF, "index port is write-only")
    }

    func testBinaryAnd12HourModes() {
        let cmos = CMOS(now: { CMOSTests.fixed + 3 * 3600 })   // 13:27:08
        cmos.write(port: 0x70, value: 0x0B)
        cmos.write(port: 0x71, value: 0x06)                   // binary, 24-hour
        XCTAssertEqual(read(cmos, 0x04), 13)
        XCTAssertEqual(read(cmos, 0x02), 27)
        XCTAssertEqual(read(cmos, 0x09), 26)
        cmos.write(port: 0x70, value: 0x0B)
        cmos.write(port: 0x71, value: 0x00)                   // BCD, 12-hour
        XCTAssertEqual(read(cmos, 0x04), 0x80 | 0x01, "1 PM")
    }

    func testOneConsistentSampleAcrossASecondBoundary() {
        // 10:59:59 ticks to 11:00:00 between the seconds and the hours reads: the hours must
        // still belong to the sample the seconds came from.
        let clock = Mutex<time_t>(CMOSTests.fixed + 32 * 60 + 54)   // 10:59:59
        let cmos = CMOS(now: { clock.withLock { $0 } })
        XCTAssertEqual(read(cmos, 0x0A), 0x26)
        XCTAssertEqual(read(cmos, 0x00), 0x59)
        clock.withLock { $0 += 1 }
        XCTAssertEqual(read(cmos, 0x02), 0x59)
        XCTAssertEqual(read(cmos, 0x04), 0x10)
        XCTAssertEqual(read(cmos, 0x00), 0x00, "a new seconds read resamples")
        XCTAssertEqual(read(cmos, 0x04), 0x11)
        clock.withLock { $0 += 65 }                                // 11:01:05
        XCTAssertEqual(read(cmos, 0x02), 0x01, "a stale sample is refreshed")
        XCTAssertEqual(read(cmos, 0x00), 0x05)
    }

    func testBCDHelper() {
        XCTAssertEqual(CMOS.bcd(0), 0x00)
        XCTAssertEqual(CMOS.bcd(9), 0x09)
        XCTAssertEqual(CMOS.bcd(42), 0x42)
        XCTAssertEqual(CMOS.bcd(99), 0x99)
    }
}
