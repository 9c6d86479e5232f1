import XCTest
@testable import Sandbox

/// The exec frames of PROTOCOL.md "Exec": the host's P/i/e/k byte for byte, the guest's
/// o/x/f decoded, and malformed guest frames as protocol errors.
final class ExecFrameTests: XCTestCase {
    func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    func str(_ s: String) -> [UInt8] { le32(UInt32(s.utf8.count)) + Array(s.utf8) }

    func testStartFrameLayout() {
        let p = ExecProcess(id: 7, argv: ["sh", "-c"], env: ["A=1"], cwd: "/w", uid: 1000, gid: 100, additionalGids: [5, 6],
                            hasStdin: true, noNewPrivileges: true)
        let expected: [UInt8] = le32(7) + le32(3) + le32(1000) + le32(100) + le32(2) + le32(5) + le32(6)
            + le32(2) + str("sh") + str("-c") + le32(1) + str("A=1") + str("/w")
        XCTAssertEqual(HostFrame.execStart(p).encoded(), [UInt8(ascii: "P")] + le32(UInt32(expected.count)) + expected)
        var c = p
        c.hasStdin = false
        c.noNewPrivileges = false
        c.capabilities = .init(bounding: 1 << 40 | 1, effective: 2, permitted: 3, inheritable: 0, ambient: 4)
        let payload = c.payload
        XCTAssertEqual(Array(payload[4..<8]), le32(4), "flags: capabilities only")
        XCTAssertEqual(Array(payload.suffix(40)), le32(1) + le32(1 << 8) + le32(2) + le32(0) + le32(3) + le32(0)
                       + le32(0) + le32(0) + le32(4) + le32(0))
    }

    func testStdinEOFAndSignalFrames() {
        XCTAssertEqual(HostFrame.execStdin(id: 2, [9, 8]).encoded(), [UInt8(ascii: "i")] + le32(6) + le32(2) + [9, 8])
        XCTAssertEqual(HostFrame.execStdinEOF(id: 3).encoded(), [UInt8(ascii: "e")] + le32(4) + le32(3))
        XCTAssertEqual(HostFrame.execSignal(id: 4, 15).encoded(), [UInt8(ascii: "k")] + le32(8) + le32(4) + le32(15))
    }

    func testGuestExecFramesDecodeInPieces() throws {
        let bytes = ControlFrame.encode(type: UInt8(ascii: "o"), payload: le32(5) + [1] + Array("out".utf8))
            + ControlFrame.encode(type: UInt8(ascii: "o"), payload: le32(5) + [2])
            + ControlFrame.encode(type: UInt8(ascii: "x"), payload: le32(5) + [UInt8(ascii: "s")] + le32(9))
            + ControlFrame.encode(type: UInt8(ascii: "f"), payload: le32(6) + Array("execve x: nope".utf8))
            + ControlFrame.encode(type: UInt8(ascii: "X"), payload: [UInt8(ascii: "e")] + le32(0))
        var decoder = ControlFrameDecoder()
        var frames: [GuestFrame] = []
        for b in bytes { frames += try decoder.feed([b]) }
        XCTAssertEqual(frames, [.execOutput(id: 5, .stdout, Array("out".utf8)), .execOutput(id: 5, .stderr, []),
                                .execExit(id: 5, .signalled(9)), .execFailure(id: 6, "execve x: nope"), .exit(.exited(0))])
    }

    func testMalformedGuestExecFramesAreProtocolErrors() {
        let bad: [[UInt8]] = [
            ControlFrame.encode(type: UInt8(ascii: "o"), payload: [1, 2, 3]),              // no id
            ControlFrame.encode(type: UInt8(ascii: "o"), payload: le32(1)),                // no stream
            ControlFrame.encode(type: UInt8(ascii: "o"), payload: le32(1) + [3, 0]),       // unknown stream
            ControlFrame.encode(type: UInt8(ascii: "x"), payload: le32(1) + [UInt8(ascii: "e")]), // short status
            ControlFrame.encode(type: UInt8(ascii: "x"), payload: le32(1) + [UInt8(ascii: "q")] + le32(0)),
            ControlFrame.encode(type: UInt8(ascii: "f"), payload: []),
            ControlFrame.encode(type: UInt8(ascii: "P"), payload: le32(1)),                // host-only type
        ]
        for b in bad {
            var decoder = ControlFrameDecoder()
            XCTAssertThrowsError(try decoder.feed(b), "\(b)")
            XCTAssertThrowsError(try decoder.feed([]), "stays broken")
        }
    }

    func testProblemsTheInitWouldRefuse() {
        XCTAssertNil(ExecProcess(id: 1, argv: ["ls"]).problem)
        XCTAssertEqual(ExecProcess(id: 1, argv: []).problem, "args is empty")
        XCTAssertEqual(ExecProcess(id: 1, argv: [""]).problem, "args is empty")
        XCTAssertEqual(ExecProcess(id: 1, argv: ["ls"], cwd: "rel").problem, "cwd rel is not absolute")
        XCTAssertNotNil(ExecProcess(id: 1, argv: ["a\u{0}b"]).problem)
        let big = ExecProcess(id: 1, argv: ["ls"], env: ["X=" + String(repeating: "y", count: ExecProcess.maximumPayload)])
        XCTAssertTrue(big.problem?.contains("more than") ?? false, "\(big.problem ?? "nil")")
    }
}
