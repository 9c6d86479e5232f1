import XCTest
@testable import Control

final class ControlProtocolTests: XCTestCase {
    func parse(_ text: String) throws(ControlProtocolError) -> ControlRequest {
        try ControlRequest.parse(Array(text.utf8))
    }

    func testEveryRequestParses() throws {
        XCTAssertEqual(try parse(#"{"request":"status"}"#), .status)
        XCTAssertEqual(try parse(#"{"request":"pause"}"#), .pause)
        XCTAssertEqual(try parse(#"{"request":"resume"}"#), .resume)
        XCTAssertEqual(try parse(#"{"request":"kill"}"#), .kill)
        XCTAssertEqual(try parse(#"{"request":"attach"}"#), .attach)
        XCTAssertEqual(try parse(#"{"request":"stop"}"#), .stop(timeout: 10))
        XCTAssertEqual(try parse(#"{"request":"stop","timeout":2.5}"#), .stop(timeout: 2.5))
        XCTAssertEqual(try parse(#" {"timeout":0,"request":"stop","extra":[1,{"a":null}]} "#), .stop(timeout: 0))
        XCTAssertEqual(try parse(#"{"request":"snapshot","path":"/tmp/s"}"#), .snapshot(path: "/tmp/s", resume: false))
        XCTAssertEqual(try parse(#"{"request":"snapshot","path":"/tmp/s","resume":true}"#), .snapshot(path: "/tmp/s", resume: true))
    }

    func testSnapshotNeedsAnAbsolutePath() {
        for text in [#"{"request":"snapshot"}"#, #"{"request":"snapshot","path":"rel/dir"}"#,
                     #"{"request":"snapshot","path":5}"#] {
            XCTAssertThrowsError(try parse(text)) { XCTAssertEqual($0 as? ControlProtocolError, .badField("path", "an absolute path")) }
        }
        XCTAssertThrowsError(try parse(#"{"request":"snapshot","path":"/s","resume":"yes"}"#))
    }

    func testEncodedRequestsRoundTrip() throws {
        for r in [ControlRequest.status, .pause, .resume, .kill, .attach, .stop(timeout: 7), .snapshot(path: "/a b/c", resume: true)] {
            let line = r.encoded()
            XCTAssertEqual(line.last, UInt8(ascii: "\n"))
            XCTAssertEqual(try ControlRequest.parse(Array(line.dropLast())), r)
        }
    }

    func testBadRequestsSayWhatIsWrong() {
        let cases: [(String, ControlProtocolError)] = [
            ("", .malformed),
            ("not json", .malformed),
            ("[1,2]", .malformed),
            ("\"status\"", .malformed),
            (#"{"request":"status""#, .malformed),
            ("{}", .missingRequest),
            (#"{"request":5}"#, .badField("request", "a string")),
            (#"{"request":"reboot"}"#, .unknownRequest("reboot")),
            (#"{"request":"stop","timeout":-1}"#, .badField("timeout", "a number of seconds from 0 to 86400")),
            (#"{"request":"stop","timeout":"10"}"#, .badField("timeout", "a number of seconds from 0 to 86400")),
            (#"{"request":"stop","timeout":1e300}"#, .badField("timeout", "a number of seconds from 0 to 86400")),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try parse(text), text) { error in
                XCTAssertEqual(error as? ControlProtocolError, expected, text)
            }
        }
    }

    func testOversizedLineIsRefusedBeforeParsing() {
        let big = [UInt8](repeating: UInt8(ascii: " "), count: ControlRequest.maximumLineLength + 1)
        XCTAssertThrowsError(try ControlRequest.parse(big)) { error in
            XCTAssertEqual(error as? ControlProtocolError, .tooLong(big.count))
        }
    }

    func testRepliesRoundTrip() throws {
        let ok = ControlReply.ok(["state": .string("running"), "pid": .int(42), "uptime": .double(1.5),
                                  "shares": .array([]), "attached": .bool(false)])
        let line = ok.encoded()
        XCTAssertEqual(try ControlReply.parse(Array(line.dropLast())), ok)
        let text = String(decoding: line, as: UTF8.self)
        XCTAssertTrue(text.contains(#""ok":true"#), text)
        let failure = ControlReply.failure("nope")
        XCTAssertEqual(try ControlReply.parse(Array(failure.encoded().dropLast())), failure)
        XCTAssertThrowsError(try ControlReply.parse(Array(#"{"state":"x"}"#.utf8)))
    }

    func testRandomBytesNeverCrashTheParser() {
        var seed: UInt64 = 0x5EED
        for _ in 0..<2000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let n = Int(seed >> 58)
            var bytes: [UInt8] = []
            for i in 0..<n { bytes.append(UInt8(truncatingIfNeeded: seed >> (UInt64(i % 8) * 8))) }
            _ = try? ControlRequest.parse(Array(#"{"request":""#.utf8) + bytes)
            _ = try? ControlRequest.parse(bytes)
        }
    }

    func testNames() {
        for good in ["a", "web-1", "svm-0123abcd", "A.b_c", String(repeating: "x", count: 64)] {
            XCTAssertTrue(VMNames.isValid(good), good)
        }
        for bad in ["", "-a", ".x", "_x", "a/b", "..", "a b", "ä", String(repeating: "x", count: 65), "a\0"] {
            XCTAssertFalse(VMNames.isValid(bad), bad)
        }
        let generated = VMNames.generate()
        XCTAssertTrue(VMNames.isValid(generated))
        XCTAssertEqual(generated.count, 12)
        XCTAssertTrue(generated.hasPrefix("svm-"))
    }

    func testExecRequestCarriesTheProcessAndHandsOverTheConnection() throws {
        let process = ControlValue.object(["args": .array([.string("sh")]), "cwd": .string("/")])
        let r = ControlRequest.exec(process: process)
        XCTAssertEqual(try ControlRequest.parse(Array(r.encoded().dropLast())), r)
        XCTAssertTrue(r.handsOverConnection)
        XCTAssertTrue(ControlRequest.attach.handsOverConnection)
        XCTAssertFalse(ControlRequest.status.handsOverConnection)
        XCTAssertThrowsError(try parse(#"{"request":"exec"}"#)) { XCTAssertEqual($0 as? ControlProtocolError, .badField("process", "an object")) }
        XCTAssertThrowsError(try parse(#"{"request":"exec","process":[1]}"#))
    }
}
