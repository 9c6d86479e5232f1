import Glibc
import Host
import XCTest
@testable import Machine
import KVM

/// Runs tiny real-mode guests (flat binaries assembled by hand below) through the whole
/// Machine: KVM setup, vCPU thread, port I/O dispatch, serial output, i8042 reset, timeout,
/// and instruction completion. Needs /dev/kvm; skips only when it is absent.
final class TinyGuestTests: XCTestCase {
    // Real-mode code fragments.
    static let serialData: [UInt8] = [0xBA, 0xF8, 0x03]                // mov dx, 0x3f8
    static func putChar(_ c: Character) -> [UInt8] {                     // mov al, c; out dx, al
        [0xB0, c.asciiValue!, 0xEE]
    }
    static let reset: [UInt8] = [0xB0, 0xFE, 0xE6, 0x64, 0xF4]         // mov al,0xfe; out 0x64,al; hlt

    struct Run {
        let exit: MachineExit
        let bytes: [UInt8]
        let fixups: Int
        let mmioExits: UInt64
        let diedAtFirstSystemCall: Bool
        var output: String { String(decoding: bytes, as: UTF8.self) }
    }

    static func runGuest(_ code: [UInt8], timeout: Double? = 20, cpus: Int = 1) throws -> Run {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        let path = "/tmp/svm-tiny-guest-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
        defer { unlink(path) }
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        _ = code.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)

        var pipeFDs: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeFDs), 0)
        var config = MachineConfig(kernelPath: path)
        config.flatImage = true
        config.memorySize = 16 << 20
        config.cpuCount = cpus
        config.timeout = timeout
        let writeEnd = pipeFDs[1]
        config.serialOutput = { bytes in writeAll(bytes, to: writeEnd) }
        let machine = try Machine(config: config)
        let exit = try machine.runToEnd()
        close(pipeFDs[1])
        var output: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(pipeFDs[0], &buf, buf.count)
            if n <= 0 { break }
            output += buf[0..<n]
        }
        close(pipeFDs[0])
        return Run(exit: exit, bytes: output, fixups: machine.instructionsCompleted,
                   mmioExits: machine.exitCounts.mmio, diedAtFirstSystemCall: machine.diedAtFirstSystemCall)
    }

    func testSerialOutputThenResetEndsWithReset() throws {
        let r = try Self.runGuest(Self.serialData + Self.putChar("O") + Self.putChar("K") + Self.reset)
        XCTAssertEqual(r.exit, .reset)
        XCTAssertEqual(r.output, "OK")
    }

    func testUnknownPortsReadAllOnes() throws {
        // in al, 0x99 ; out dx, al  -> 0xFF on the console.
        let r = try Self.runGuest(Self.serialData + [0xE4, 0x99, 0xEE] + Self.reset)
        XCTAssertEqual(r.exit, .reset)
        XCTAssertEqual(r.bytes, [0xFF])
    }

    func testSerialScratchRegisterRoundTrip() throws {
        // mov dx,0x3ff; mov al,'S'; out dx,al; in al,dx; mov dx,0x3f8; out dx,al
        let code: [UInt8] = [0xBA, 0xFF, 0x03, 0xB0, 0x53, 0xEE, 0xEC, 0xBA, 0xF8, 0x03, 0xEE] + Self.reset
        let r = try Self.runGuest(code)
        XCTAssertEqual(r.output, "S")
    }

    func testTimeoutStopsASpinningGuest() throws {
        let start = MonotonicClock.now()
        let r = try Self.runGuest([0xEB, 0xFE], timeout: 0.5)  // jmp $
        XCTAssertEqual(r.exit, .timedOut)
        XCTAssertLessThan(MonotonicClock.now() - start, 10)
    }

    func testTwoVCPUsStopCleanly() throws {
        // The AP waits for SIPI forever; the BSP resets. Both threads must end.
        let r = try Self.runGuest(Self.serialData + Self.putChar("2") + Self.reset, cpus: 2)
        XCTAssertEqual(r.exit, .reset)
        XCTAssertEqual(r.output, "2")
    }

    func testInt3IsDeliveredToTheGuestHandler() throws {
        // IVT[3] = 0000:handler. The handler prints 'B' and returns; then 'A' and reset.
        // Where KVM emulates real mode and fails on int3, svm completes it (injects #BP).
        var code: [UInt8] = []
        let handlerOffset = 0x40
        code += [0x31, 0xC0, 0x8E, 0xD8]                                   // xor ax,ax; mov ds,ax
        code += [0xC7, 0x06, 0x0C, 0x00] + le16(0x8000 + handlerOffset)    // mov word [0x0c], handler
        code += [0xC7, 0x06, 0x0E, 0x00, 0x00, 0x00]                      // mov word [0x0e], 0
        code += Self.serialData
        code += [0xCC]                                                     // int3
        code += Self.putChar("A") + Self.reset
        code += [UInt8](repeating: 0x90, count: handlerOffset - code.count)
        code += [0xB0, 0x42, 0xEE, 0xCF]                                   // mov al,'B'; out dx,al; iret
        let r = try Self.runGuest(code)
        XCTAssertEqual(r.exit, .reset)
        XCTAssertEqual(r.output, "BA")
    }

    func testFwaitIsExecutedOrCompleted() throws {
        let r = try Self.runGuest(Self.serialData + [0x9B] + Self.putChar("W") + Self.reset)
        XCTAssertEqual(r.exit, .reset)
        XCTAssertEqual(r.output, "W")
        // Where KVM emulates real-mode code, its emulator cannot run fwait: svm completes it.
        if KVMSystem.hostEmulatesGuestKernel { XCTAssertEqual(r.fixups, 1) }
    }

    func testMissingFirmwareIsBadInput() {
        var config = MachineConfig(kernelPath: "/nonexistent/svm-test")
        config.flatImage = true
        config.memorySize = 16 << 20
        XCTAssertThrowsError(try Machine(config: config)) { error in
            guard let e = error as? MachineError else { return XCTFail("\(error)") }
            XCTAssertTrue(e.isBadInput)
            XCTAssertTrue(e.description.contains("/nonexistent/svm-test"))
        }
    }

    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }

    /// A guest that prints `text` on the serial port, then resets.
    static func printing(_ text: String) -> [UInt8] {
        let messageAddress = 0x8000 + 19
        var code: [UInt8] = serialData                                          // 0: mov dx,0x3f8
        code += [0xBE, UInt8(messageAddress & 0xFF), UInt8(messageAddress >> 8)] // 3: mov si,msg
        code += [0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8]                  // 6: lodsb; test; jz; out; jmp 6
        code += reset                                                            // 14: reset
        return code + Array(text.utf8) + [0]                                     // 19: msg
    }

    func testPanicLineThenResetIsAPanicNotAReboot() throws {
        let r = try Self.runGuest(Self.printing("[    9.0] Kernel panic - not syncing: tiny guest gave up\r\n"))
        XCTAssertEqual(r.exit, .panic("tiny guest gave up"))
    }

    func testPowerDownLineEndsTheVMCleanly() throws {
        let r = try Self.runGuest(Self.printing("[    9.0] reboot: Power down\r\n") + [0xEB, 0xFE])
        XCTAssertEqual(r.exit, .powerOff)
    }

    func testStockKernelDyingAtItsFirstSystemCallIsRecognised() throws {
        let line = "[   40.1] init[1]: segfault at ffffffff81400040 ip ffffffff81400040 sp 00007ffd0f3c2e58 error 15\r\n"
        let r = try Self.runGuest(Self.printing(line))
        XCTAssertEqual(r.exit, .reset)
        // Only hosts whose KVM leaves system calls half done get the hint.
        XCTAssertEqual(r.diedAtFirstSystemCall, KVMSystem.hostEmulatesGuestKernel)
    }
}

/// Guest RAM is faulted in lazily unless the config asks for it up front (`--prefault`):
/// checked with mincore on the Machine's own mapping after a guest that resets at once.
final class MemoryPopulationTests: XCTestCase {
    private func residentPages(prefault: Bool) throws -> (resident: Int, total: Int) {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        let path = "/tmp/svm-prefault-\(getpid())-\(prefault).bin"
        defer { unlink(path) }
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        _ = TinyGuestTests.reset.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        var config = MachineConfig(kernelPath: path)
        config.flatImage = true
        config.memorySize = 64 << 20
        config.populateMemory = prefault
        let machine = try Machine(config: config)
        XCTAssertEqual(try machine.runToEnd(), .reset)
        let pages = Int(config.memorySize / 4096)
        var vec = [UInt8](repeating: 0, count: pages)
        XCTAssertEqual(mincore(machine.memory.hostBase, Int(config.memorySize), &vec), 0)
        return (vec.filter { $0 & 1 == 1 }.count, pages)
    }

    func testRAMIsFaultedInLazilyByDefault() throws {
        let r = try residentPages(prefault: false)
        // The reset guest touches its code page and svm's boot area at most: far from all.
        XCTAssertLessThan(r.resident, r.total / 4, "\(r.resident) of \(r.total) pages resident")
    }

    func testPrefaultMakesAllRAMResidentBeforeTheGuestRuns() throws {
        let r = try residentPages(prefault: true)
        XCTAssertEqual(r.resident, r.total)
    }
}

extension Machine {
    /// Starts the VM and waits for its end, as a program would.
    func runToEnd() throws -> MachineExit {
        try start(kick: VCPUKick.install())
        return wait()
    }
}
