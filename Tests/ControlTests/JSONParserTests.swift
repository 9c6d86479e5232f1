import FoundationEssentials
import TestSupport
import XCTest
@testable import Control

final class JSONParserTests: XCTestCase {
    func parse(_ text: String) throws(JSONParser.Failure) -> ControlValue { try JSONParser.parse(Array(text.utf8)) }

    func testValues() throws {
        XCTAssertEqual(try parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d"}} "#),
                       .object(["a": .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null]),
                                "b": .object(["c": .string("d")])]))
        XCTAssertEqual(try parse(#""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#), .string("\"\\/\u{8}\u{c}\n\r\té\u{1F600}"))
        XCTAssertEqual(try parse("9223372036854775807"), .int(Int.max))
        XCTAssertEqual(try parse("9223372036854775808"), .double(9223372036854775808))
        XCTAssertEqual(try parse("-0"), .int(0))
        XCTAssertEqual(try parse("[]"), .array([]))
        XCTAssertEqual(try parse("{}"), .object([:]))
    }

    func testMalformedIsRejectedWithAnOffset() {
        let bad = ["", " ", "{", "}", "[1,]", "[1 2]", #"{"a" 1}"#, #"{"a":1,}"#, #"{a:1}"#, "01", "1.", ".5", "1e",
                   "-", "+1", "tru", "nul", "[true false]", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
                   "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"a\u{01}b\"", "1 2", "{} x", "1e999", "NaN", "[\"a\"]]",
                   #"{"request":"status","request":"kill"}"#]
        for text in bad {
            XCTAssertThrowsError(try parse(text), text) { error in
                XCTAssertTrue("\(error)".hasPrefix("invalid JSON at byte "), "\(error)")
            }
        }
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]), "invalid UTF-8")
    }

    func testNestingIsBounded() throws {
        let ok = String(repeating: "[", count: JSONParser.maximumDepth) + String(repeating: "]", count: JSONParser.maximumDepth)
        XCTAssertNoThrow(try parse(ok))
        let deep = String(repeating: "[", count: 100_000)
        XCTAssertThrowsError(try parse(deep))
        XCTAssertThrowsError(try parse(String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)))
    }

    /// Random values written by JSONText read back as themselves, here and in Foundation.
    func testRoundTripAgainstFoundation() throws {
        let seed = fuzzSeed(default: 0x4A53_4F4E)
        var rng = SplitMix64(seed: seed)
        func randomString() -> String {
            let scalars: [UInt32] = [0x22, 0x5C, 0x2F, 0x0A, 0x00, 0x1F, 0x41, 0x7A, 0xE9, 0x4E2D, 0x1F600, 0x20]
            return String(String.UnicodeScalarView((0..<Int(rng.next() % 8)).map { _ in
                Unicode.Scalar(scalars[Int(rng.next() % UInt64(scalars.count))])!
            }))
        }
        func randomValue(_ depth: Int) -> ControlValue {
            switch rng.next() % (depth > 4 ? 5 : 7) {
            case 0: return .null
            case 1: return .bool(rng.next() % 2 == 0)
            case 2: return .int(Int(truncatingIfNeeded: rng.next()) >> Int(rng.next() % 64))
            case 3: return .double(Double(Int(truncatingIfNeeded: rng.next() % 1_000_000)) / 64 + 0.5)
            case 4: return .string(randomString())
            case 5: return .array((0..<Int(rng.next() % 4)).map { _ in randomValue(depth + 1) })
            default:
                var o: [String: ControlValue] = [:]
                for _ in 0..<Int(rng.next() % 4) { o[randomString()] = randomValue(depth + 1) }
                return .object(o)
            }
        }
        for _ in 0..<500 {
            let v = randomValue(0)
            let bytes = JSONText.encode(v)
            XCTAssertEqual(try JSONParser.parse(bytes), v, "seed \(seed): \(String(decoding: bytes, as: UTF8.self))")
            // ControlValue's Decodable tries Int before Double, so Foundation reads "949.0"
            // as 949: compare numbers by value there.
            XCTAssertEqual(integral(try JSONDecoder().decode(ControlValue.self, from: Data(bytes))), integral(v), "seed \(seed)")
        }
    }

    func integral(_ v: ControlValue) -> ControlValue {
        switch v {
        case let .double(d) where d == d.rounded() && abs(d) < 1e15: .int(Int(d))
        case let .array(a): .array(a.map(integral))
        case let .object(o): .object(o.mapValues(integral))
        default: v
        }
    }

    /// Mutated JSON never crashes or hangs the parser, and whatever it accepts it writes
    /// back as text that parses to the same value.
    func testMutatedInputNeverCrashes() {
        let seed = fuzzSeed(default: 0xBAD_0150)
        var rng = SplitMix64(seed: seed)
        let corpus = [#"{"request":"stop","timeout":10}"#, #"{"a":[1,2.5e-3,{"b":"\u00e9\n"}],"c":null,"d":true}"#,
                      #"[[[[]]],{},"",-0.0]"#]
        let alphabet = Array(#"{}[]",:\u0123456789.eE+-truefalsn "#.utf8) + [0x00, 0x1F, 0x80, 0xFF]
        var accepted = 0
        for _ in 0..<20_000 {
            var bytes = Array(corpus[Int(rng.next() % UInt64(corpus.count))].utf8)
            for _ in 0..<Int(rng.next() % 4 + 1) {
                let at = Int(rng.next() % UInt64(bytes.count + 1))
                switch rng.next() % 3 {
                case 0 where at < bytes.count: bytes.remove(at: at)
                case 1 where at < bytes.count: bytes[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                }
            }
            guard let v = try? JSONParser.parse(bytes) else { continue }
            accepted += 1
            XCTAssertEqual(try? JSONParser.parse(JSONText.encode(v)), v, "seed \(seed): \(bytes)")
        }
        XCTAssertGreaterThan(accepted, 0, "the mutations never produced valid JSON: the test tests nothing")
    }
}
