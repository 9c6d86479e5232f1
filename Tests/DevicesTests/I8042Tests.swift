import Synchronization
import XCTest
@testable import Devices

final class I8042Tests: XCTestCase {
    private final class Counter: Sendable {
        private let value = Mutex(0)
        var count: Int { value.withLock { $0 } }
        func increment() { value.withLock { $0 += 1 } }
    }

    func testResetCommandCallsResetOnce() {
        let resets = Counter()
        let kbd = I8042(reset: { resets.increment() })
        kbd.write(port: 0x64, value: 0xFE)
        XCTAssertEqual(resets.count, 1)
    }

    func testOtherCommandsAndDataDoNotReset() {
        let resets = Counter()
        let kbd = I8042(reset: { resets.increment() })
        for command: UInt8 in [0x20, 0xAA, 0xAB, 0xAD, 0xAE, 0xA7, 0xA8, 0xFF, 0xD4, 0x01] {
            kbd.write(port: 0x64, value: command)
            _ = kbd.read(port: 0x60)
        }
        for data: UInt8 in [0xFE, 0xFF, 0xF4, 0x00] { kbd.write(port: 0x60, value: data) }
        XCTAssertEqual(resets.count, 0)
    }

    func testStatusHasNoDataPendingAndInputBufferEmpty() {
        let kbd = I8042(reset: {})
        let status = kbd.read(port: 0x64)
        XCTAssertEqual(status & 0x01, 0, "output buffer empty")
        XCTAssertEqual(status & 0x02, 0, "input buffer empty: kb_wait() ends")
        XCTAssertEqual(status & 0x04, 0x04, "system flag: POST passed")
        XCTAssertEqual(kbd.read(port: 0x60), 0)
    }

    func testCommandByteReadAndWrite() {
        let kbd = I8042(reset: {})
        kbd.write(port: 0x64, value: 0x60)
        XCTAssertEqual(kbd.read(port: 0x64) & 0x08, 0x08, "last write was a command")
        kbd.write(port: 0x60, value: 0x65)
        kbd.write(port: 0x64, value: 0x20)
        XCTAssertEqual(kbd.read(port: 0x64) & 0x01, 0x01, "response pending")
        XCTAssertEqual(kbd.read(port: 0x60), 0x65)
        XCTAssertEqual(kbd.read(port: 0x64) & 0x01, 0, "consumed")
        XCTAssertEqual(kbd.read(port: 0x60), 0)
    }

    func testSelfTestAnswers55() {
        let kbd = I8042(reset: {})
        kbd.write(port: 0x64, value: 0xAA)
        XCTAssertEqual(kbd.read(port: 0x60), 0x55)
    }

    func testOutputPortWriteWithResetBitClearResets() {
        let resets = Counter()
        let kbd = I8042(reset: { resets.increment() })
        kbd.write(port: 0x64, value: 0xD1)
        kbd.write(port: 0x60, value: 0xDF)       // A20 on, reset line high: no reset
        XCTAssertEqual(resets.count, 0)
        kbd.write(port: 0x64, value: 0xD1)
        kbd.write(port: 0x60, value: 0xDE)
        XCTAssertEqual(resets.count, 1)
    }
}
