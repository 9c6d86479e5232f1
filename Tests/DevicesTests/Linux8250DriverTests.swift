import XCTest
@testable import Devices

/// Replays, register access by register access, what Linux 6.1's 8250 driver
/// (drivers/tty/serial/8250/8250_port.c) does to a port: autoconfig() with the full
/// autoconfig_16550a() variant probing and size_fifo(), serial8250_do_startup()'s THRE and
/// TXEN tests, set_termios, then the interrupt handler for RX and TX.
private final class Linux8250Driver {
    let uart: Serial16550
    var ier: UInt8 = 0
    var received: [UInt8] = []
    var transmitQueue: [UInt8] = []
    var bugs: [String] = []

    init(_ uart: Serial16550) { self.uart = uart }

    func inb(_ offset: UInt16) -> UInt8 { uart.read(offset: offset) }
    func outb(_ offset: UInt16, _ value: UInt8) { uart.write(offset: offset, value: value) }

    func clearFIFOs() {
        outb(Reg.fcr, 0x01)
        outb(Reg.fcr, 0x07)
        outb(Reg.fcr, 0x00)
    }

    /// autoconfig(): the detected port type, or why detection failed.
    func autoconfig() -> String {
        // IER existence test.
        let scratch = inb(Reg.ier)
        outb(Reg.ier, 0)
        let scratch2 = inb(Reg.ier) & 0x0F
        outb(Reg.ier, 0x0F)
        let scratch3 = inb(Reg.ier) & 0x0F
        outb(Reg.ier, scratch)
        if scratch2 != 0 || scratch3 != 0x0F { return "IER test failed" }

        let saveMCR = inb(Reg.mcr)
        let saveLCR = inb(Reg.lcr)

        // Loopback test (skipped for COM1-4 by UPF_SKIP_TEST, but it must pass anyway).
        outb(Reg.mcr, 0x10 | 0x0A)
        let status1 = inb(Reg.msr) & 0xF0
        outb(Reg.mcr, saveMCR)
        if status1 != 0x90 { return "LOOP test failed" }

        outb(Reg.lcr, 0xBF)
        outb(Reg.fcr, 0)          // EFR
        outb(Reg.lcr, 0)
        outb(Reg.fcr, 0x01)
        let iir = inb(Reg.iir)
        let type: String
        switch iir >> 6 {
        case 0: type = autoconfig8250()
        case 1: type = "unknown"
        case 2: type = "16550"
        default: type = autoconfig16550A()
        }
        outb(Reg.lcr, saveLCR)

        // Reset the UART.
        outb(Reg.mcr, saveMCR)
        clearFIFOs()
        _ = inb(Reg.rbr)
        outb(Reg.ier, 0)
        return type
    }

    func autoconfig8250() -> String {
        let scratch = inb(Reg.scr)
        outb(Reg.scr, 0xA5)
        let s1 = inb(Reg.scr)
        outb(Reg.scr, 0x5A)
        let s2 = inb(Reg.scr)
        outb(Reg.scr, scratch)
        return s1 == 0xA5 && s2 == 0x5A ? "16450" : "8250"
    }

    func autoconfig16550A() -> String {
        // EFR under LCR 0xBF-with-DLAB (ST16C650V1).
        outb(Reg.lcr, 0x80)
        if inb(Reg.iir) == 0 { return "16650 (EFRv1)" }
        outb(Reg.lcr, 0xBF)
        if inb(Reg.iir) == 0 { return "EFRv2" }

        // National Semiconductor SuperIO.
        outb(Reg.lcr, 0)
        let mcr = inb(Reg.mcr)
        outb(Reg.lcr, 0xE0)
        var excr1 = inb(Reg.iir)
        if (excr1 ^ mcr) & 0x10 == 0 {
            outb(Reg.lcr, 0)
            outb(Reg.mcr, mcr ^ 0x10)
            outb(Reg.lcr, 0xE0)
            excr1 = inb(Reg.iir)
            outb(Reg.lcr, 0)
            outb(Reg.mcr, mcr)
            if (excr1 ^ mcr) & 0x10 != 0 { return "NS16550A" }
        }

        // TI16750: 64-byte FIFO bit.
        outb(Reg.lcr, 0)
        outb(Reg.fcr, 0x21)
        let st1 = inb(Reg.iir) >> 5
        outb(Reg.fcr, 0x01)
        outb(Reg.lcr, 0x80)
        outb(Reg.fcr, 0x21)
        let st2 = inb(Reg.iir) >> 5
        outb(Reg.fcr, 0x01)
        outb(Reg.lcr, 0)
        if st1 == 6 && st2 == 7 { return "16750" }

        // XScale UUE bit.
        let iersave = inb(Reg.ier)
        outb(Reg.ier, iersave & ~0x40)
        if inb(Reg.ier) & 0x40 == 0 {
            outb(Reg.ier, iersave | 0x40)
            if inb(Reg.ier) & 0x40 != 0 { return "XScale" }
        }
        outb(Reg.ier, iersave)

        return sizeFIFO() == 64 ? "U6_16550A" : "16550A"
    }

    func sizeFIFO() -> Int {
        let oldLCR = inb(Reg.lcr)
        outb(Reg.lcr, 0)
        let oldFCR = inb(Reg.fcr)
        let oldMCR = inb(Reg.mcr)
        outb(Reg.fcr, 0x07)
        outb(Reg.mcr, 0x10)
        outb(Reg.lcr, 0x80)
        let oldDLL = inb(Reg.dll), oldDLM = inb(Reg.dlm)
        outb(Reg.dll, 1)
        outb(Reg.dlm, 0)
        outb(Reg.lcr, 0x03)
        for count in 0..<256 { outb(Reg.thr, UInt8(count)) }
        var count = 0
        while inb(Reg.lsr) & 0x01 != 0 && count < 256 {
            _ = inb(Reg.rbr)
            count += 1
        }
        outb(Reg.fcr, oldFCR)
        outb(Reg.mcr, oldMCR)
        outb(Reg.lcr, 0x80)
        outb(Reg.dll, oldDLL)
        outb(Reg.dlm, oldDLM)
        outb(Reg.lcr, oldLCR)
        return count
    }

    /// serial8250_do_startup() for a port with an IRQ, then set_termios (115200 8N1, FIFO
    /// trigger 8) and the RX interrupt enable.
    func startup() -> Bool {
        clearFIFOs()
        _ = inb(Reg.lsr); _ = inb(Reg.rbr); _ = inb(Reg.iir); _ = inb(Reg.msr)
        if inb(Reg.lsr) == 0xFF { return false }

        // THRE re-assertion test.
        var spins = 0
        while inb(Reg.lsr) & 0x20 == 0 { spins += 1; if spins > 1000 { return false } }
        outb(Reg.ier, 0x02)
        let iir1 = inb(Reg.iir)
        outb(Reg.ier, 0)
        outb(Reg.ier, 0x02)
        let iir = inb(Reg.iir)
        outb(Reg.ier, 0)
        if iir1 & 0x01 == 0 && iir & 0x01 != 0 { bugs.append("THRE") }

        outb(Reg.lcr, 0x03)
        outb(Reg.mcr, 0x08 | 0x03)        // OUT2 | RTS | DTR

        // TX interrupt test.
        outb(Reg.ier, 0x02)
        let lsr = inb(Reg.lsr)
        let iir2 = inb(Reg.iir)
        outb(Reg.ier, 0)
        if lsr & 0x40 != 0 && iir2 & 0x01 != 0 { bugs.append("TXEN") }

        _ = inb(Reg.lsr); _ = inb(Reg.rbr); _ = inb(Reg.iir); _ = inb(Reg.msr)

        // set_termios.
        outb(Reg.lcr, 0x83)
        outb(Reg.dll, 1)
        outb(Reg.dlm, 0)
        outb(Reg.lcr, 0x03)
        outb(Reg.fcr, 0x81)
        ier = 0x05                        // RLSI | RDI
        outb(Reg.ier, ier)
        return true
    }

    /// uart_write -> serial8250_start_tx.
    func write(_ bytes: [UInt8]) {
        transmitQueue += bytes
        if ier & 0x02 == 0 {
            ier |= 0x02
            outb(Reg.ier, ier)
        }
    }

    /// serial8250_interrupt: call handle_irq until the port reports no interrupt.
    func interruptHandler() {
        var passes = 0
        while passes < 512 {
            passes += 1
            let iir = inb(Reg.iir)
            if iir & 0x01 != 0 { return }
            var lsr = inb(Reg.lsr)
            if lsr & 0x01 != 0 {
                var max = 256
                repeat {
                    received.append(inb(Reg.rbr))
                    lsr = inb(Reg.lsr)
                    max -= 1
                } while lsr & 0x01 != 0 && max > 0
            }
            _ = inb(Reg.msr)
            if lsr & 0x20 != 0 && ier & 0x02 != 0 { transmitChars() }
        }
        XCTFail("too much work for irq")
    }

    func transmitChars() {
        if transmitQueue.isEmpty {
            ier &= ~0x02                  // __stop_tx
            outb(Reg.ier, ier)
            return
        }
        for _ in 0..<16 {
            guard !transmitQueue.isEmpty else { break }
            outb(Reg.thr, transmitQueue.removeFirst())
        }
        if transmitQueue.isEmpty {
            ier &= ~0x02
            outb(Reg.ier, ier)
        }
    }
}

final class Linux8250DriverTests: XCTestCase {
    func testAutoconfigDetects16550AWithFIFO() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        let driver = Linux8250Driver(uart)
        XCTAssertEqual(driver.autoconfig(), "16550A")
        XCTAssertEqual(driver.sizeFIFO(), 16)
        XCTAssertEqual(recorder.output, [], "probing must not leak bytes to the console")
        XCTAssertEqual(recorder.levels, [], "IRQs stay quiet while probing")
    }

    func testStartupFindsNoTHREOrTXENBug() {
        let uart = UARTRecorder().makeUART()
        let driver = Linux8250Driver(uart)
        XCTAssertEqual(driver.autoconfig(), "16550A")
        XCTAssertTrue(driver.startup())
        XCTAssertEqual(driver.bugs, [])
        XCTAssertEqual(uart.read(offset: Reg.iir) & 0xC0, 0xC0, "FIFOs enabled")
        XCTAssertFalse(uart.interruptLevel, "nothing pending after startup")
    }

    func testInterruptDrivenTransmitAndReceive() {
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        let driver = Linux8250Driver(uart)
        _ = driver.autoconfig()
        XCTAssertTrue(driver.startup())
        let edgesBefore = recorder.risingEdges

        // TX: a shell prompt longer than the 16-byte load size.
        let prompt = Array("root@svm:~# echo interrupt-driven\r\n".utf8)
        driver.write(prompt)
        XCTAssertEqual(recorder.risingEdges, edgesBefore + 1, "enabling THRI raises the IRQ")
        var rounds = 0
        while uart.interruptLevel && rounds < 10 {
            driver.interruptHandler()
            rounds += 1
        }
        XCTAssertEqual(recorder.output, prompt)
        XCTAssertFalse(uart.interruptLevel)
        XCTAssertEqual(driver.ier & 0x02, 0, "TX stopped once the queue drained")

        // RX: keystrokes from the host arrive while the line is idle.
        let edges = recorder.risingEdges
        uart.receive(Array("ls -l\r".utf8))
        XCTAssertEqual(recorder.risingEdges, edges + 1)
        driver.interruptHandler()
        XCTAssertEqual(driver.received, Array("ls -l\r".utf8))
        XCTAssertFalse(uart.interruptLevel)

        // Both at once: echo while more input arrives.
        driver.write(Array("ls -l\r\n".utf8))
        uart.receive(Array("x".utf8))
        driver.interruptHandler()
        XCTAssertEqual(driver.received, Array("ls -l\rx".utf8))
        XCTAssertEqual(recorder.output, prompt + Array("ls -l\r\n".utf8))
        XCTAssertFalse(uart.interruptLevel)
    }

    func testConsoleWriteWithIERSavedAndRestored() {
        // serial8250_console_write: save IER, clear it, poll THRE per byte, restore IER.
        let recorder = UARTRecorder()
        let uart = recorder.makeUART()
        let driver = Linux8250Driver(uart)
        _ = driver.autoconfig()
        XCTAssertTrue(driver.startup())
        let saved = uart.read(offset: Reg.ier)
        uart.write(offset: Reg.ier, value: 0)
        for byte in Array("[    0.000000] printk\r\n".utf8) {
            while uart.read(offset: Reg.lsr) & 0x20 == 0 {}
            uart.write(offset: Reg.thr, value: byte)
        }
        while uart.read(offset: Reg.lsr) & 0x60 != 0x60 {}
        uart.write(offset: Reg.ier, value: saved)
        XCTAssertEqual(recorder.output, Array("[    0.000000] printk\r\n".utf8))
        XCTAssertFalse(uart.interruptLevel, "only RX enabled and nothing received")
    }
}
