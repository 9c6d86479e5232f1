import XCTest
@testable import Sandbox

final class JobWriterTests: XCTestCase {
    func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    func str(_ s: String) -> [UInt8] { le(UInt32(s.utf8.count)) + Array(s.utf8) }

    func testExactBytes() throws {
        let job = SandboxJob(argv: ["/bin/ls", "-l"], env: ["PATH=/bin"], workdir: "/tmp", uid: 0, gid: 0,
                             hasStdin: true, tty: false, volumes: [.init(guestPath: "/data", readOnly: true)])
        var expected = Array("SVMJ".utf8) + le(1) + le(1) + le(0) + le(0) + le(0) + le(0)
        expected += le(2) + str("/bin/ls") + str("-l")
        expected += le(1) + str("PATH=/bin")
        expected += str("/tmp")
        expected += le(1) + str("/data") + le(1)
        XCTAssertEqual(try JobWriter.encode(job), expected)
    }

    func testDefaultsAreNobodyNoStdinRoot() throws {
        let b = try JobWriter.encode(SandboxJob(argv: ["/p"]))
        // flags, uid, gid, rows, cols
        XCTAssertEqual(Array(b[8..<28]), le(0) + le(65534) + le(65534) + le(0) + le(0))
        let t = try JobWriter.encode(SandboxJob(argv: ["/p"], tty: true, terminalRows: 50, terminalColumns: 132))
        XCTAssertEqual(Array(t[8..<12]), le(2))
        XCTAssertEqual(Array(t[20..<28]), le(50) + le(132))
    }

    func testInvalidJobsAreRefused() {
        func error(_ j: SandboxJob) -> JobError? {
            do { _ = try JobWriter.encode(j); return nil } catch { return error as? JobError }
        }
        XCTAssertEqual(error(SandboxJob(argv: [])), .emptyArgv)
        XCTAssertEqual(error(SandboxJob(argv: ["ls"])), .notAbsolute(field: "program", value: "ls"))
        XCTAssertEqual(error(SandboxJob(argv: ["/p"], workdir: "tmp")), .notAbsolute(field: "workdir", value: "tmp"))
        XCTAssertEqual(error(SandboxJob(argv: ["/p", "a\u{0}b"])), .containsNUL(field: "argument"))
        XCTAssertEqual(error(SandboxJob(argv: ["/p"], env: ["NOEQUALS"])), .invalidEnvironment("NOEQUALS"))
        XCTAssertEqual(error(SandboxJob(argv: ["/p"], env: ["=x"])), .invalidEnvironment("=x"))
        XCTAssertEqual(error(SandboxJob(argv: ["/p"], volumes: [.init(guestPath: "/", readOnly: false)])), .invalidVolumePath("/"))
        XCTAssertEqual(error(SandboxJob(argv: ["/p"], volumes: [.init(guestPath: "/a/../b", readOnly: false)])), .invalidVolumePath("/a/../b"))
        XCTAssertEqual(error(SandboxJob(argv: ["/p"], volumes: [.init(guestPath: "rel", readOnly: false)])), .notAbsolute(field: "volume", value: "rel"))
        XCTAssertNil(error(SandboxJob(argv: ["/p", ""], env: ["E="])))
    }
}

final class ControlFrameTests: XCTestCase {
    func testHostFrameBytes() {
        XCTAssertEqual(HostFrame.stdin([0x41, 0x00, 0xff]).encoded(), [0x49, 3, 0, 0, 0, 0x41, 0x00, 0xff])
        XCTAssertEqual(HostFrame.stdin([]).encoded(), [0x49, 0, 0, 0, 0])
        XCTAssertEqual(HostFrame.stdinEOF.encoded(), [0x45, 0, 0, 0, 0])
        XCTAssertEqual(HostFrame.windowSize(rows: 0x0132, columns: 80).encoded(), [0x57, 4, 0, 0, 0, 0x32, 0x01, 80, 0])
        XCTAssertEqual(HostFrame.stop(graceMilliseconds: 10_000).encoded(), [0x53, 4, 0, 0, 0, 0x10, 0x27, 0, 0])
        XCTAssertEqual(HostFrame.stop(graceMilliseconds: 0).encoded(), [0x53, 4, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(HostFrame.stop(graceMilliseconds: 0xdead_beef).encoded(), [0x53, 4, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde])
    }

    func testLargeStdinIsSplitAtTheCap() {
        let data = (0..<(ControlFrame.maxPayload * 2 + 10)).map { UInt8(truncatingIfNeeded: $0) }
        let wire = HostFrame.stdin(data).encoded()
        XCTAssertEqual(wire.count, data.count + 3 * 5)
        var off = 0, payload: [UInt8] = [], sizes: [Int] = []
        while off < wire.count {
            XCTAssertEqual(wire[off], 0x49)
            let n = Int(wire[off + 1]) | Int(wire[off + 2]) << 8 | Int(wire[off + 3]) << 16 | Int(wire[off + 4]) << 24
            sizes.append(n)
            payload += wire[(off + 5)..<(off + 5 + n)]
            off += 5 + n
        }
        XCTAssertEqual(sizes, [ControlFrame.maxPayload, ControlFrame.maxPayload, 10])
        XCTAssertEqual(payload, data)
    }

    let stream: [UInt8] = [0x52, 0, 0, 0, 0]                                      // R
        + [0x46, 5, 0, 0, 0] + Array("oops!".utf8)                                // F
        + [0x58, 5, 0, 0, 0, 0x65, 3, 0, 0, 0]                                    // X exited 3
        + [0x58, 5, 0, 0, 0, 0x73, 9, 0, 0, 0]                                    // X signalled 9
    let frames: [GuestFrame] = [.ready, .failure("oops!"), .exit(.exited(3)), .exit(.signalled(9))]

    func testDecoderHandlesAnySplit() throws {
        for chunk in 1...stream.count {
            var d = ControlFrameDecoder()
            var got: [GuestFrame] = []
            var i = 0
            while i < stream.count {
                got += try d.feed(stream[i..<min(i + chunk, stream.count)])
                i += chunk
            }
            XCTAssertEqual(got, frames, "chunk \(chunk)")
            XCTAssertEqual(d.bufferedCount, 0)
        }
        var d = ControlFrameDecoder()
        XCTAssertEqual(try d.feed(stream.prefix(7)), [.ready])
        XCTAssertEqual(d.bufferedCount, 2)
    }

    func testProtocolErrors() throws {
        var d = ControlFrameDecoder()
        XCTAssertThrowsError(try d.feed([0x46, 0x01, 0x00, 0x10, 0x00])) {  // 1 MiB + 1
            XCTAssertEqual($0 as? ControlFrameError, .payloadTooLarge(type: 0x46, length: (1 << 20) + 1))
        }
        XCTAssertThrowsError(try d.feed([0x52, 0, 0, 0, 0]))  // stays failed
        var e = ControlFrameDecoder()
        XCTAssertThrowsError(try e.feed([0x49, 0, 0, 0, 0])) { XCTAssertEqual($0 as? ControlFrameError, .unknownType(0x49)) }
        var f = ControlFrameDecoder()
        XCTAssertThrowsError(try f.feed([0x58, 4, 0, 0, 0, 0x65, 0, 0, 0])) {
            XCTAssertEqual($0 as? ControlFrameError, .badPayload(type: 0x58, reason: "4 bytes, expected 5"))
        }
        var g = ControlFrameDecoder()
        XCTAssertThrowsError(try g.feed([0x58, 5, 0, 0, 0, 0x71, 0, 0, 0, 0]))
        var h = ControlFrameDecoder(maxPayload: 4)
        XCTAssertThrowsError(try h.feed([0x46, 5, 0, 0, 0]))
        // The cap is checked from the header alone, before the payload arrives.
        var k = ControlFrameDecoder()
        XCTAssertThrowsError(try k.feed([0x46, 0xff, 0xff, 0xff, 0xff]))
    }
}
