import Glibc
import Machine
@testable import Runner
import Sandbox
import SVMCommand
import XCTest

final class RunOutcomeTests: XCTestCase {
    typealias Report = ControlChannel.Report

    func decide(_ exit: MachineExit, _ report: Report = Report(), timeout: Double? = nil) -> RunOutcome {
        RunOutcome.decide(machineExit: exit, report: report, timeout: timeout, consoleHint: "HINT")
    }

    func testStatuses() {
        XCTAssertEqual(ExitCode.status(for: RunOutcome.program(.exited(0))), 0)
        XCTAssertEqual(ExitCode.status(for: RunOutcome.program(.exited(7))), 7)
        XCTAssertEqual(ExitCode.status(for: RunOutcome.program(.exited(255))), 255)
        XCTAssertEqual(ExitCode.status(for: RunOutcome.program(.signalled(9))), 137)
        XCTAssertEqual(ExitCode.status(for: RunOutcome.timedOut(seconds: 5)), 124)
        XCTAssertEqual(ExitCode.status(for: RunOutcome.interrupted(signal: SIGINT)), 130)
        XCTAssertEqual(ExitCode.status(for: RunOutcome.interrupted(signal: SIGTERM)), 143)
        XCTAssertEqual(ExitCode.status(for: RunOutcome.failed("x")), 125)
        XCTAssertNil(RunOutcome.program(.signalled(9)).message)
        XCTAssertEqual(RunOutcome.timedOut(seconds: 90).message, "timed out after 90 s")
        XCTAssertEqual(RunOutcome.timedOut(seconds: 2.5).message, "timed out after 2.5 s")
    }

    func testTheProgramsStatusWinsOnceItArrived() {
        let done = Report(readyAt: 1, exit: .exited(3), exitAt: 2)
        XCTAssertEqual(decide(.reset, done), .program(.exited(3)))
        XCTAssertEqual(decide(.timedOut, done, timeout: 9), .program(.exited(3)))
        XCTAssertEqual(decide(.interrupted(signal: SIGINT), done), .program(.exited(3)))
    }

    func testEndingsWithoutAnExitFrame() {
        XCTAssertEqual(decide(.timedOut, Report(readyAt: 1), timeout: 90), .timedOut(seconds: 90))
        XCTAssertEqual(decide(.interrupted(signal: SIGTERM)), .interrupted(signal: SIGTERM))
        XCTAssertEqual(decide(.reset, Report(readyAt: 1, failure: "execve /p: Permission denied")),
                       .failed("guest init: execve /p: Permission denied"))
        XCTAssertEqual(decide(.reset, Report(protocolError: "guest control channel: unknown frame type 0x51")),
                       .failed("guest control channel: unknown frame type 0x51"))
        XCTAssertEqual(decide(.panic("Attempted to kill init!")), .failed("guest kernel panicked: Attempted to kill init!"))
        XCTAssertEqual(decide(.crashed("triple fault")), .failed("guest crashed: triple fault"))
        XCTAssertEqual(decide(.hostFailure("KVM_RUN failed")), .failed("KVM_RUN failed"))
        XCTAssertEqual(decide(.reset), .failed("the VM ended before its init was ready (HINT)"))
        XCTAssertEqual(decide(.powerOff, Report(readyAt: 1)),
                       .failed("the VM ended before the program's exit status came back (HINT)"))
    }

    func testControlChannelDecodesFramesInPieces() throws {
        let channel = try ControlChannel()
        let ready = ControlFrame.encode(type: ControlFrame.ready, payload: [])
        let exit = ControlFrame.encode(type: ControlFrame.exit, payload: [ControlFrame.signalledKind, 9, 0, 0, 0])
        let stream = ready + exit
        for byte in stream { channel.receive([byte]) }
        let report = channel.report
        XCTAssertNotNil(report.readyAt)
        XCTAssertEqual(report.exit, .signalled(9))
        XCTAssertNotNil(report.exitAt)
        XCTAssertNil(report.protocolError)
        XCTAssertEqual(channel.readyEvent.drain(), 1, "R wakes the stdin forwarder once")

        let bad = try ControlChannel()
        bad.receive(ControlFrame.encode(type: ControlFrame.failure, payload: Array("mount /proc: EPERM".utf8)))
        bad.receive([0x51, 0, 0, 0, 0])
        bad.receive(exit)  // ignored after the error
        XCTAssertEqual(bad.report.failure, "mount /proc: EPERM")
        XCTAssertNotNil(bad.report.protocolError)
        XCTAssertNil(bad.report.exit)
    }

    func testTimingsSummary() {
        var t = RunTimings(start: 100)
        XCTAssertEqual(t.summary, "")
        t.vmStarted = 100.084
        t.ready = 144.2
        XCTAssertEqual(t.summary, "set-up 0.08 s, boot 44.12 s")
        t.exited = 144.5
        t.ended = 145.0
        XCTAssertEqual(t.summary, "set-up 0.08 s, boot 44.12 s, program 0.30 s, shutdown 0.50 s, total 45.00 s")
    }

    func testInitMessageFromTheConsole() {
        let text = "[    1.0] Run /init\r\nsvm-init: first\r\n[    2.0] x\nsvm-init: open /svm/job: No such file\n[ 3.0] reboot: Restarting\n"
        XCTAssertEqual(ConsoleTail.lastInitMessage(in: text), "svm-init: open /svm/job: No such file")
        XCTAssertNil(ConsoleTail.lastInitMessage(in: "[ 1.0] nothing\n"))
    }

    func testConsoleTailNeverBlocksTheWriter() throws {
        let tail = try ConsoleTail()
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 16)
        for _ in 0..<40 { _ = chunk.withUnsafeBytes { write(tail.writeFD, $0.baseAddress, $0.count) } }
        _ = "svm-init: late\n".withCString { write(tail.writeFD, $0, strlen($0)) }
        XCTAssertFalse(tail.drain().isEmpty)
        tail.close()
    }
}
