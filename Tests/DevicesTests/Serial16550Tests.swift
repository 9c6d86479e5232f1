import XCTest
@testable import Devices

final class Serial16550Tests: XCTestCase {
    func testScratchRegisterRoundTrip() {
        let uart = UARTRecorder().makeUART()
        for value: UInt8 in [0xA5, 0x5A, 0x00, 0xFF] {
            uart.write(offset: Reg.scr, value: value)
            XCTAssertEqual(uart.read(offset: Reg.scr), value)
        }
    }

    func testDivisorLatchIsBehindDLAB() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        uart.write(offset: Reg.ier, value: 0x05)
        uart.write(offset: Reg.lcr, value: 0x83)            // DLAB | 8N1
        uart.write(offset: Reg.dll, value: 0x01)
        uart.write(offset: Reg.dlm, value: 0x02)
        XCTAssertEqual(uart.read(offset: Reg.dll), 0x01)
        XCTAssertEqual(uart.read(offset: Reg.dlm), 0x02)
        uart.write(offset: Reg.lcr, value: 0x03)
        XCTAssertEqual(uart.read(offset: Reg.lcr), 0x03)
        XCTAssertEqual(uart.read(offset: Reg.ier), 0x05, "IER must not be clobbered by DLM")
        XCTAssertEqual(recorder.output, [], "a DLL write is not a transmission")
        uart.write(offset: Reg.lcr, value: 0x80)
        XCTAssertEqual(uart.read(offset: Reg.dll), 0x01)
        XCTAssertEqual(uart.read(offset: Reg.dlm), 0x02)
    }

    func testLSRAfterTHRWriteShowsTransmitterEmpty() {
        let uart = UARTRecorder().makeUART()
        XCTAssertEqual(uart.read(offset: Reg.lsr), 0x60)
        uart.write(offset: Reg.thr, value: 0x41)
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x61, 0x60, "THRE|TEMT set, no data ready")
    }

    func testTransmittedBytesReachOutputInOrder() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        let text = Array("Linux version 6.1\r\n".utf8)
        for byte in text { uart.write(offset: Reg.thr, value: byte) }
        XCTAssertEqual(recorder.output, text)
        XCTAssertEqual(recorder.outputCalls, text.count)
        XCTAssertEqual(uart.bytesOutput, UInt64(text.count))
    }

    func testReceivedBytesAreReadInOrderAndDRClears() {
        let uart = UARTRecorder().makeUART()
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x01, 0)
        XCTAssertEqual(uart.receive(Array("ab".utf8)), 2)
        uart.receive([UInt8(ascii: "c")])
        XCTAssertEqual(uart.pendingInput, 3)
        var got: [UInt8] = []
        while uart.read(offset: Reg.lsr) & 0x01 != 0 {
            got.append(uart.read(offset: Reg.rbr))
            XCTAssertLessThanOrEqual(got.count, 3)
        }
        XCTAssertEqual(got, Array("abc".utf8))
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x01, 0)
        XCTAssertEqual(uart.pendingInput, 0)
    }

    func testRXInterruptNeedsERBFIAndOUT2AndDropsWhenRead() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        uart.receive([0x31])
        XCTAssertEqual(recorder.levels, [], "no IRQ with IER = 0")
        uart.write(offset: Reg.ier, value: 0x01)
        XCTAssertEqual(recorder.levels, [], "no IRQ without OUT2")
        XCTAssertEqual(uart.read(offset: Reg.iir) & 0x0F, 0x04, "but IIR shows it pending")
        uart.write(offset: Reg.mcr, value: 0x08)
        XCTAssertEqual(recorder.levels, [true])
        XCTAssertEqual(uart.read(offset: Reg.rbr), 0x31)
        XCTAssertEqual(recorder.levels, [true, false])
        uart.receive([0x32, 0x33])
        XCTAssertEqual(recorder.levels, [true, false, true], "new data raises a new edge")
        _ = uart.read(offset: Reg.rbr)
        XCTAssertEqual(recorder.levels, [true, false, true], "still data left")
        _ = uart.read(offset: Reg.rbr)
        XCTAssertEqual(recorder.levels, [true, false, true, false])
        XCTAssertFalse(uart.interruptLevel)
    }

    func testClearingOUT2LowersTheLine() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        uart.write(offset: Reg.mcr, value: 0x0B)
        uart.write(offset: Reg.ier, value: 0x01)
        uart.receive([1])
        XCTAssertEqual(recorder.levels, [true])
        uart.write(offset: Reg.mcr, value: 0x03)
        XCTAssertEqual(recorder.levels, [true, false])
    }

    func testTHREInterruptAckedByIIRAndRearmedByTHRWrite() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        uart.write(offset: Reg.mcr, value: 0x08)
        uart.write(offset: Reg.ier, value: 0x02)
        XCTAssertEqual(recorder.levels, [true], "enabling ETBEI with THR empty raises THRE")
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x02)
        XCTAssertEqual(recorder.levels, [true, false], "IIR read acknowledges THRE")
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x01)
        uart.write(offset: Reg.thr, value: 0x21)
        XCTAssertEqual(recorder.levels, [true, false, true], "THR drained again: re-raised")
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x02)
        uart.write(offset: Reg.thr, value: 0x22)
        uart.write(offset: Reg.ier, value: 0x00)
        XCTAssertEqual(recorder.levels, [true, false, true, false, true, false])
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x01)
    }

    func testTHREReassertsWhenETBEIIsToggled() {
        // Linux's startup THRE test: IER=THRI, read IIR, IER=0, IER=THRI, read IIR again.
        let uart = UARTRecorder().makeUART()
        uart.write(offset: Reg.ier, value: 0x02)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x02)
        uart.write(offset: Reg.ier, value: 0x00)
        uart.write(offset: Reg.ier, value: 0x02)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x02)
        uart.write(offset: Reg.ier, value: 0x02)   // no edge: stays acknowledged
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x01)
    }

    func testIIRIdentificationWithFIFOs() {
        let uart = UARTRecorder().makeUART()
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x01, "FIFOs off: no FIFO bits")
        uart.write(offset: Reg.fcr, value: 0x01)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0xC1)
        uart.write(offset: Reg.ier, value: 0x03)
        uart.receive([0x41])
        XCTAssertEqual(uart.read(offset: Reg.iir), 0xC4, "RX data outranks THRE")
        XCTAssertEqual(uart.read(offset: Reg.iir), 0xC4, "reading IIR does not ack RX data")
        _ = uart.read(offset: Reg.rbr)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0xC2)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0xC1)
        uart.write(offset: Reg.fcr, value: 0x00)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x01)
    }

    func testIERKeepsOnlyTheFourStandardBits() {
        let uart = UARTRecorder().makeUART()
        uart.write(offset: Reg.ier, value: 0xFF)
        XCTAssertEqual(uart.read(offset: Reg.ier), 0x0F)
    }

    func testLoopbackReflectsModemControlAndLoopsBytes() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        XCTAssertEqual(uart.read(offset: Reg.msr) & 0xF0, 0xB0, "outside loopback: DCD, DSR, CTS")
        uart.write(offset: Reg.mcr, value: 0x10 | 0x0A)           // LOOP | RTS | OUT2
        XCTAssertEqual(uart.read(offset: Reg.msr) & 0xF0, 0x90, "CTS from RTS, DCD from OUT2")
        uart.write(offset: Reg.mcr, value: 0x10 | 0x05)           // LOOP | DTR | OUT1
        let msr = uart.read(offset: Reg.msr)
        XCTAssertEqual(msr & 0xF0, 0x60, "DSR from DTR, RI from OUT1")
        XCTAssertEqual(msr & 0x0F, 0x0B, "delta CTS, DSR, DCD since the last MSR read")
        XCTAssertEqual(uart.read(offset: Reg.msr) & 0x0F, 0, "deltas clear on read")
        uart.write(offset: Reg.mcr, value: 0x10)
        XCTAssertEqual(uart.read(offset: Reg.msr) & 0x0F, 0x06, "RI trailing edge, DSR delta")

        uart.receive([0xEE])                                      // host input waits while looping
        uart.write(offset: Reg.fcr, value: 0x01)                  // FIFO mode: room for both bytes
        uart.write(offset: Reg.thr, value: 0x55)
        uart.write(offset: Reg.thr, value: 0xAA)
        XCTAssertEqual(recorder.output, [], "looped bytes are not transmitted")
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x01, 0x01)
        XCTAssertEqual(uart.read(offset: Reg.rbr), 0x55)
        XCTAssertEqual(uart.read(offset: Reg.rbr), 0xAA)
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x01, 0, "host byte not visible in loopback")
        uart.write(offset: Reg.mcr, value: 0x00)
        XCTAssertEqual(uart.read(offset: Reg.rbr), 0xEE)
        XCTAssertEqual(recorder.levels, [], "no IRQ in loopback or without OUT2")
    }

    func testLoopbackWithoutFIFOHoldsOneByte() {
        let uart = UARTRecorder().makeUART()
        uart.write(offset: Reg.mcr, value: 0x10)
        uart.write(offset: Reg.thr, value: 1)
        uart.write(offset: Reg.thr, value: 2)
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x03, 0x03, "second byte overran the RBR")
        XCTAssertEqual(uart.read(offset: Reg.rbr), 1)
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x01, 0)
    }

    func testLoopbackFIFOHoldsSixteenBytesThenOverruns() {
        let uart = UARTRecorder().makeUART()
        uart.write(offset: Reg.fcr, value: 0x07)
        uart.write(offset: Reg.mcr, value: 0x10)
        for byte in 0..<40 { uart.write(offset: Reg.thr, value: UInt8(byte)) }
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x03, 0x03, "data ready and overrun")
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x02, 0, "OE clears on LSR read")
        var count = 0
        while uart.read(offset: Reg.lsr) & 0x01 != 0 {
            XCTAssertEqual(uart.read(offset: Reg.rbr), UInt8(count))
            count += 1
            if count > 40 { break }
        }
        XCTAssertEqual(count, 16)
    }

    func testFIFOResetClearsLoopbackDataButNotHostInput() {
        let uart = UARTRecorder().makeUART()
        uart.write(offset: Reg.fcr, value: 0x01)
        uart.receive([0x42])
        uart.write(offset: Reg.mcr, value: 0x10)
        uart.write(offset: Reg.thr, value: 0x99)
        uart.write(offset: Reg.fcr, value: 0x07)
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x01, 0)
        uart.write(offset: Reg.mcr, value: 0x00)
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x01, 1)
        XCTAssertEqual(uart.read(offset: Reg.rbr), 0x42)
    }

    func testInputCapDropsAndCountsAndSignalsOverrun() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        let big = [UInt8](repeating: 0x61, count: Serial16550.defaultInputCapacity + 100)
        XCTAssertEqual(uart.receive(big), Serial16550.defaultInputCapacity)
        XCTAssertEqual(uart.receive([1, 2, 3]), 0)
        XCTAssertEqual(uart.inputDropped, 103)
        XCTAssertEqual(uart.pendingInput, Serial16550.defaultInputCapacity)
        XCTAssertEqual(uart.inputSpace, 0)
        uart.write(offset: Reg.mcr, value: 0x08)
        uart.write(offset: Reg.ier, value: 0x05)
        XCTAssertEqual(uart.read(offset: Reg.iir) & 0x0F, 0x06, "line status (overrun) first")
        XCTAssertEqual(uart.read(offset: Reg.lsr) & 0x03, 0x03)
        XCTAssertEqual(uart.read(offset: Reg.iir) & 0x0F, 0x04)
        _ = uart.read(offset: Reg.rbr)
        XCTAssertEqual(uart.receive([7, 8]), 1, "room for exactly the byte just read")
    }

    func testSmallInputCapacity() {
        let uart = UARTRecorder().makeUART(inputCapacity: 4)
        XCTAssertEqual(uart.receive(Array(1...6)), 4)
        XCTAssertEqual(uart.inputDropped, 2)
        XCTAssertEqual((0..<4).map { _ in uart.read(offset: Reg.rbr) }, [1, 2, 3, 4])
    }

    func testModemStatusInterrupt() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        uart.write(offset: Reg.mcr, value: 0x08)
        uart.write(offset: Reg.ier, value: 0x08)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x01)
        uart.write(offset: Reg.mcr, value: 0x18)        // loopback: CTS/DSR drop, line gated off
        uart.write(offset: Reg.mcr, value: 0x08)        // back: deltas pending, line on
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x00, "modem status is pending")
        XCTAssertTrue(uart.interruptLevel)
        _ = uart.read(offset: Reg.msr)
        XCTAssertEqual(uart.read(offset: Reg.iir), 0x01)
        XCTAssertFalse(uart.interruptLevel)
    }

    func testConcurrentWritersAndReceiverKeepCounts() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        uart.write(offset: Reg.mcr, value: 0x08)
        uart.write(offset: Reg.ier, value: 0x03)
        DispatchQueueless.concurrentPerform(iterations: 4) { worker in
            for i in 0..<2_000 {
                if worker == 0 {
                    uart.receive([UInt8(truncatingIfNeeded: i)])
                } else {
                    uart.write(offset: Reg.thr, value: UInt8(worker))
                    _ = uart.read(offset: Reg.iir)
                }
            }
        }
        XCTAssertEqual(uart.bytesOutput, 6_000)
        XCTAssertEqual(recorder.output.count, 6_000)
        XCTAssertEqual(uart.pendingInput, 2_000)
        // The reported level sequence alternates and ends at the device's real level.
        let levels = recorder.levels
        for (a, b) in zip(levels, levels.dropFirst()) { XCTAssertNotEqual(a, b) }
        XCTAssertEqual(levels.last, uart.interruptLevel)
        XCTAssertTrue(uart.interruptLevel, "RX data is pending")
    }
}
