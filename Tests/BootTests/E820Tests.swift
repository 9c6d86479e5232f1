import XCTest
@testable import Boot
import Memory

final class E820Tests: XCTestCase {
    private let hole: Range<UInt64> = 0xC000_0000..<0x1_0000_0000
    private let lowReserved: UInt64 = 0x10_0000 - 0x9_FC00

    private func checkInvariants(_ map: [E820Entry], size: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        for (a, b) in zip(map, map.dropFirst()) {
            XCTAssertLessThanOrEqual(a.end, b.address, "sorted and non-overlapping", file: file, line: line)
        }
        for e in map {
            XCTAssertGreaterThan(e.size, 0, file: file, line: line)
            XCTAssertFalse((e.address..<e.end).overlaps(hole), "entry \(e) overlaps the MMIO hole", file: file, line: line)
        }
        let ram = map.filter { $0.kind == .ram }.reduce(0) { $0 + $1.size }
        XCTAssertEqual(ram, size - lowReserved, "all RAM but the legacy area is usable", file: file, line: line)
        XCTAssertLessThanOrEqual(map.count, 128, file: file, line: line)
    }

    private func map(_ size: UInt64) -> [E820Entry] { E820.map(for: GuestMemory.layout(size: size)) }

    func test128MiB() {
        let m = map(128 << 20)
        XCTAssertEqual(m, [
            .init(address: 0, size: 0x9_FC00, kind: .ram),
            .init(address: 0x9_FC00, size: 0x6_0400, kind: .reserved),
            .init(address: 0x10_0000, size: (128 << 20) - 0x10_0000, kind: .ram),
        ])
        checkInvariants(m, size: 128 << 20)
    }

    func test512MiB() {
        let m = map(512 << 20)
        XCTAssertEqual(m.count, 3)
        XCTAssertEqual(m.last, .init(address: 0x10_0000, size: (512 << 20) - 0x10_0000, kind: .ram))
        checkInvariants(m, size: 512 << 20)
    }

    func testExactly3GiBEndsAtTheHole() {
        let m = map(3 << 30)
        XCTAssertEqual(m.count, 3)
        XCTAssertEqual(m.last?.end, 0xC000_0000)
        checkInvariants(m, size: 3 << 30)
    }

    func test3GiBPlus1MiBPutsTheRestAbove4GiB() {
        let m = map((3 << 30) + (1 << 20))
        XCTAssertEqual(m.count, 4)
        XCTAssertEqual(m[2].end, 0xC000_0000)
        XCTAssertEqual(m[3], .init(address: 0x1_0000_0000, size: 1 << 20, kind: .ram))
        checkInvariants(m, size: (3 << 30) + (1 << 20))
    }

    func test8GiB() {
        let m = map(8 << 30)
        XCTAssertEqual(m.count, 4)
        XCTAssertEqual(m[3], .init(address: 0x1_0000_0000, size: 5 << 30, kind: .ram))
        checkInvariants(m, size: 8 << 30)
    }

    func testEncodings() {
        let e = [E820Entry(address: 0x1122_3344_5566_7788, size: 0x10, kind: .reserved)]
        XCTAssertEqual(E820.zeroPageBytes(e), [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                               0x10, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0])
        XCTAssertEqual(E820.pvhBytes(e).count, 24)
        XCTAssertEqual(Array(E820.pvhBytes(e)[16..<24]), [2, 0, 0, 0, 0, 0, 0, 0])
    }
}
