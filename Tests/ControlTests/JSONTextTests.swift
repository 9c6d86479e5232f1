import FoundationEssentials
import XCTest
@testable import Control

final class JSONTextTests: XCTestCase {
    func text(_ v: ControlValue) -> String { String(decoding: JSONText.encode(v), as: UTF8.self) }

    func testCompactSortedOutput() {
        XCTAssertEqual(text(.object(["b": .int(2), "a": .array([.null, .bool(true), .bool(false)]), "c": .double(1.5)])),
                       #"{"a":[null,true,false],"b":2,"c":1.5}"#)
        XCTAssertEqual(text(.double(1796226330)), "1796226330.0")
        XCTAssertEqual(text(.double(-0.0)), "-0.0")
        XCTAssertEqual(text(.double(1e20)), "1e+20")
        XCTAssertEqual(text(.double(.nan)), "null")
        XCTAssertEqual(text(.int(-7)), "-7")
    }

    func testStringsAreEscaped() {
        XCTAssertEqual(text(.string("a\"b\\c\nd\r\te\u{01}\u{1f}/é")), #""a\"b\\c\nd\r\te\u0001\u001f/é""#)
    }

    /// Whatever JSONText writes, Foundation's parser reads back as the same value.
    func testRoundTripThroughJSONDecoder() throws {
        var samples: [ControlValue] = [
            .object([:]), .array([]), .string(""), .string("\u{0}\u{7f}ünï\u{1F600}\"\\"),
            .object(["nested": .object(["x": .array([.int(Int.max), .int(Int.min), .double(0.1), .double(-2.5e-7)])])]),
        ]
        // Every control character and a spread of code points as keys and values.
        for c in 0..<0x80 {
            let s = String(UnicodeScalar(UInt8(c)))
            samples.append(.object([s: .string(s + "x" + s)]))
        }
        for v in samples {
            let decoded = try JSONDecoder().decode(ControlValue.self, from: Data(JSONText.encode(v)))
            XCTAssertEqual(decoded, v, text(v))
        }
    }

    func testExitRecordReadsBack() throws {
        let r = ExitRecord(status: 137, reason: "killed \"now\"", endedAt: 1796226330.25)
        XCTAssertEqual(try JSONDecoder().decode(ExitRecord.self, from: Data(JSONText.encode(r.controlValue))), r)
    }
}
