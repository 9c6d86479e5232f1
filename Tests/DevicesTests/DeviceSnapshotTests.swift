import Glibc
import Snapshot
import XCTest
@testable import Devices

/// Each port device's state survives save and restore into a fresh device: what the guest
/// reads afterwards is what it would have read from the original.
final class DeviceSnapshotTests: XCTestCase {
    func roundTrip<D: Snapshottable>(_ original: D, into fresh: D) throws {
        var w = StateWriter()
        original.saveState(to: &w)
        var r = StateReader(w.bytes)
        try fresh.restoreState(from: &r)
        try r.finish()
    }

    func testUARTRegistersInputAndInterruptLine() throws {
        let before = UARTRecorder(), after = UARTRecorder()
        let uart = before.makeUART()
        uart.write(offset: Reg.lcr, value: 0x80)        // DLAB: divisor 3 (38400 baud)
        uart.write(offset: Reg.dll, value: 3)
        uart.write(offset: Reg.lcr, value: 0x03)        // 8N1
        uart.write(offset: Reg.fcr, value: 0x01)
        uart.write(offset: Reg.mcr, value: 0x0B)        // DTR RTS OUT2
        uart.write(offset: Reg.ier, value: 0x01)        // RX interrupts
        uart.write(offset: Reg.scr, value: 0x5A)
        uart.receive(Array("abc".utf8))
        XCTAssertEqual(uart.read(offset: Reg.rbr), UInt8(ascii: "a"))
        XCTAssertTrue(uart.interruptLevel)

        let restored = after.makeUART()
        try roundTrip(uart, into: restored)
        XCTAssertEqual(after.levels, [true], "the raised line was not raised again in the new VM")
        for offset in [Reg.ier, Reg.lcr, Reg.mcr, Reg.scr, Reg.lsr, Reg.iir] {
            XCTAssertEqual(restored.read(offset: offset), uart.read(offset: offset), "register \(offset)")
        }
        restored.write(offset: Reg.lcr, value: 0x83)
        XCTAssertEqual(restored.read(offset: Reg.dll), 3, "divisor")
        restored.write(offset: Reg.lcr, value: 0x03)
        XCTAssertEqual(restored.read(offset: Reg.rbr), UInt8(ascii: "b"))
        XCTAssertEqual(restored.read(offset: Reg.rbr), UInt8(ascii: "c"))
        XCTAssertEqual(restored.pendingInput, 0)
        XCTAssertFalse(restored.interruptLevel)
    }

    func testUARTRefusesTruncatedState() {
        var w = StateWriter()
        UARTRecorder().makeUART().saveState(to: &w)
        var r = StateReader(Array(w.bytes.dropLast()))
        XCTAssertThrowsError(try UARTRecorder().makeUART().restoreState(from: &r))
    }

    func testI8042PendingResponseAndCommandByte() throws {
        let kbd = I8042(reset: {})
        kbd.write(port: 0x64, value: 0x60)     // write command byte …
        kbd.write(port: 0x60, value: 0x47)     // … = 0x47
        kbd.write(port: 0x64, value: 0x20)     // read command byte: response waits
        let restored = I8042(reset: {})
        try roundTrip(kbd, into: restored)
        XCTAssertEqual(restored.read(port: 0x64), kbd.read(port: 0x64))
        XCTAssertEqual(restored.read(port: 0x60), 0x47)
        XCTAssertEqual(restored.read(port: 0x64) & 0x01, 0, "output buffer empty after the read")
    }

    func testCMOSRAMAndIndex() throws {
        let cmos = CMOS(now: { 1_700_000_000 })
        cmos.write(port: 0x70, value: 0x40)
        cmos.write(port: 0x71, value: 0x99)
        cmos.write(port: 0x70, value: 0x0B)
        cmos.write(port: 0x71, value: 0x06)    // binary, 24-hour
        cmos.write(port: 0x70, value: 0x40)
        let restored = CMOS(now: { 1_700_000_000 })
        try roundTrip(cmos, into: restored)
        XCTAssertEqual(restored.read(port: 0x71), 0x99, "the index register was not restored")
        restored.write(port: 0x70, value: 0x0B)
        XCTAssertEqual(restored.read(port: 0x71), 0x06)
        restored.write(port: 0x70, value: 0x04)
        cmos.write(port: 0x70, value: 0x04)
        XCTAssertEqual(restored.read(port: 0x71), cmos.read(port: 0x71), "hours, in the saved format")
    }
}
