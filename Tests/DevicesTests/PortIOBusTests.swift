import Synchronization
import XCTest
@testable import Devices

final class PortIOBusTests: XCTestCase {
    /// A byte device that logs accesses and reads back (port low byte ^ 0x80).
    private final class LoggingDevice: Sendable {
        private let log = Mutex<[String]>([])
        var entries: [String] { log.withLock { $0 } }
        func read(_ port: UInt16) -> UInt8 {
            log.withLock { $0.append("r \(String(port, radix: 16))") }
            return UInt8(truncatingIfNeeded: port) ^ 0x80
        }
        func write(_ port: UInt16, _ value: UInt8) {
            log.withLock { $0.append("w \(String(port, radix: 16))=\(String(value, radix: 16))") }
        }
    }

    private func bus(with devices: [(ClosedRange<UInt16>, LoggingDevice)]) throws -> PortIOBus {
        let bus = PortIOBus()
        for (range, device) in devices {
            try bus.register(range, name: "dev\(range.lowerBound)",
                             read: { device.read($0) }, write: { device.write($0, $1) })
        }
        return bus
    }

    func testDispatchToTheRightRange() throws {
        let a = LoggingDevice(), b = LoggingDevice(), c = LoggingDevice()
        let bus = try bus(with: [(0x3F8...0x3FF, a), (0x70...0x71, b), (0x60...0x60, c)])
        XCTAssertEqual(bus.read(port: 0x3FD, size: 1), 0x7D)
        bus.write(port: 0x71, size: 1, value: 0x12)
        bus.write(port: 0x60, size: 1, value: 0xAB)
        XCTAssertEqual(a.entries, ["r 3fd"])
        XCTAssertEqual(b.entries, ["w 71=12"])
        XCTAssertEqual(c.entries, ["w 60=ab"])
        XCTAssertEqual(bus.stats, PortIOBus.Stats())
        XCTAssertEqual(bus.registrations.map(\.range), [0x60...0x60, 0x70...0x71, 0x3F8...0x3FF])
    }

    func testUnknownPortsReadAllOnesForEachSizeAndCount() throws {
        let bus = try bus(with: [(0x3F8...0x3FF, LoggingDevice())])
        XCTAssertEqual(bus.read(port: 0x80, size: 1), 0xFF)
        XCTAssertEqual(bus.read(port: 0x80, size: 2), 0xFFFF)
        XCTAssertEqual(bus.read(port: 0xCFC, size: 4), 0xFFFF_FFFF)
        bus.write(port: 0x80, size: 1, value: 0)
        bus.write(port: 0xCF8, size: 4, value: 0x8000_0000)
        let stats = bus.stats
        XCTAssertEqual(stats.unknownReads, 1 + 2 + 4)
        XCTAssertEqual(stats.unknownWrites, 1 + 4)
        XCTAssertEqual(stats.lastUnknownPort, 0xCFB)
    }

    func testTwoByteAccessIsSplitLittleEndian() throws {
        let dev = LoggingDevice()
        let bus = try bus(with: [(0x3F8...0x3FF, dev)])
        XCTAssertEqual(bus.read(port: 0x3F8, size: 2), 0x79_78)     // 0x3F8 -> 0x78, 0x3F9 -> 0x79
        bus.write(port: 0x3FA, size: 2, value: 0xBEEF)
        bus.write(port: 0x3FC, size: 4, value: 0x4433_2211)
        XCTAssertEqual(dev.entries, ["r 3f8", "r 3f9", "w 3fa=ef", "w 3fb=be",
                                     "w 3fc=11", "w 3fd=22", "w 3fe=33", "w 3ff=44"])
    }

    func testAccessStraddlingADeviceEdge() throws {
        let dev = LoggingDevice()
        let bus = try bus(with: [(0x3F8...0x3FF, dev)])
        XCTAssertEqual(bus.read(port: 0x3FE, size: 4), 0xFFFF_7F7E)
        XCTAssertEqual(dev.entries, ["r 3fe", "r 3ff"])
        XCTAssertEqual(bus.stats.unknownReads, 2)
        XCTAssertEqual(bus.read(port: 0x3F6, size: 4), 0x79_78_FF_FF)
    }

    func testSizedDeviceGetsWholeAccess() throws {
        let seen = Mutex<[String]>([])
        let bus = PortIOBus()
        try bus.registerSized(0xCF8...0xCFB, name: "pci-addr",
                              read: { port, size in
                                  seen.withLock { $0.append("r \(port) \(size)") }
                                  return 0x8000_0000
                              },
                              write: { port, size, value in
                                  seen.withLock { $0.append("w \(port) \(size) \(String(value, radix: 16))") }
                              })
        XCTAssertEqual(bus.read(port: 0xCF8, size: 4), 0x8000_0000)
        bus.write(port: 0xCF8, size: 4, value: 0x8000_1234)
        bus.write(port: 0xCFA, size: 2, value: 0xFFFF_5678)
        XCTAssertEqual(seen.withLock { $0 }, ["r 3320 4", "w 3320 4 80001234", "w 3322 2 5678"])
    }

    func testOverlappingRegistrationIsRejected() throws {
        let bus = PortIOBus()
        try bus.register(0x70...0x71, name: "cmos", read: { _ in 0 }, write: { _, _ in })
        XCTAssertThrowsError(try bus.register(0x71...0x72, name: "other", read: { _ in 0 }, write: { _, _ in })) { error in
            XCTAssertEqual(error as? PortIOBus.RegistrationError,
                           .overlap(name: "other", range: 0x71...0x72, owner: "cmos", existing: 0x70...0x71))
        }
        XCTAssertNoThrow(try bus.register(0x72...0x72, name: "next", read: { _ in 1 }, write: { _, _ in }))
        XCTAssertEqual(bus.read(port: 0x72, size: 1), 1)
    }

    func testLookupAmongManyRanges() throws {
        let bus = PortIOBus()
        for base in stride(from: UInt16(0x100), to: 0x200, by: 0x10) {
            try bus.register(base...(base + 3), read: { _ in UInt8(truncatingIfNeeded: base >> 4) },
                             write: { _, _ in })
        }
        for base in stride(from: UInt16(0x100), to: 0x200, by: 0x10) {
            XCTAssertEqual(bus.read(port: base + 2, size: 1), UInt32(UInt8(truncatingIfNeeded: base >> 4)))
            XCTAssertEqual(bus.read(port: base + 4, size: 1), 0xFF)
        }
        XCTAssertEqual(bus.read(port: 0xFFFF, size: 1), 0xFF)
        XCTAssertEqual(bus.read(port: 0, size: 1), 0xFF)
    }

    func testStandardDeviceWiring() throws {
        let recorder = UARTRecorder()
        let serial = recorder.makeUART()
        let bus = PortIOBus()
        try bus.register(serial: serial)
        try bus.register(cmos: CMOS(now: { CMOSTests.fixed }))
        let resets = Mutex(0)
        try bus.register(i8042: I8042(reset: { resets.withLock { $0 += 1 } }))
        bus.write(port: 0x3FF, size: 1, value: 0x5A)
        XCTAssertEqual(serial.read(offset: 7), 0x5A)
        bus.write(port: 0x3F8, size: 1, value: 0x41)
        XCTAssertEqual(recorder.output, [0x41])
        bus.write(port: 0x70, size: 1, value: 0x09)
        XCTAssertEqual(bus.read(port: 0x71, size: 1), 0x26)
        XCTAssertEqual(bus.read(port: 0x64, size: 1) & 0x02, 0)
        XCTAssertEqual(bus.read(port: 0x61, size: 1), 0xFF, "port 0x61 is not the i8042's")
        bus.write(port: 0x64, size: 1, value: 0xFE)
        XCTAssertEqual(resets.withLock { $0 }, 1)
        XCTAssertThrowsError(try bus.register(serial: serial))
    }
}
