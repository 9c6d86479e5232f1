/// Parses JSON text (RFC 8259) into a `ControlValue`, without Foundation.
///
/// Everything it reads may be hostile: control requests from a socket peer, config.json
/// and exit.json from a directory other processes can write (as the same user). So:
/// nesting is bounded, strings must be valid UTF-8 with no raw control characters,
/// duplicate keys are an error (a second "request" must not override the first), and any
/// bytes after the value other than white space are an error. Callers bound the length.
public enum JSONParser {
    public static let maximumDepth = 64

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> ControlValue {
        var p = Cursor(bytes: bytes)
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw p.fail("trailing bytes after the value") }
        return value
    }

    struct Cursor {
        let bytes: [UInt8]
        var i = 0

        func fail(_ reason: String) -> Failure { Failure(offset: i, reason: reason) }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 }
        }

        mutating func expect(_ literal: String, _ value: ControlValue) throws(Failure) -> ControlValue {
            let l = Array(literal.utf8)
            guard i + l.count <= bytes.count, Array(bytes[i..<i + l.count]) == l else { throw fail("expected \(literal)") }
            i += l.count
            return value
        }

        mutating func value(depth: Int) throws(Failure) -> ControlValue {
            guard depth < JSONParser.maximumDepth else { throw fail("nested deeper than \(JSONParser.maximumDepth)") }
            guard let b = peek else { throw fail("unexpected end") }
            switch b {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw fail("unexpected byte 0x\(String(b, radix: 16))")
            }
        }

        mutating func object(depth: Int) throws(Failure) -> ControlValue {
            i += 1
            var fields: [String: ControlValue] = [:]
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return .object(fields) }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let keyAt = i
                let key = try string()
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skipSpace()
                let v = try value(depth: depth + 1)
                guard fields.updateValue(v, forKey: key) == nil else {
                    throw Failure(offset: keyAt, reason: "duplicate key \"\(key)\"")
                }
                skipSpace()
                switch peek {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "}"): i += 1; return .object(fields)
                default: throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) -> ControlValue {
            i += 1
            var items: [ControlValue] = []
            skipSpace()
            if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                switch peek {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "]"): i += 1; return .array(items)
                default: throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard i + 4 <= bytes.count else { throw fail("short \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: throw fail("bad hex digit in \\u escape")
                }
                v = v << 4 | UInt32(d)
                i += 1
            }
            return v
        }

        mutating func string() throws(Failure) -> String {
            i += 1 // opening quote
            var out: [UInt8] = []
            while true {
                guard let b = peek else { throw fail("unterminated string") }
                switch b {
                case UInt8(ascii: "\""):
                    i += 1
                    guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                    return s
                case UInt8(ascii: "\\"):
                    i += 1
                    guard let e = peek else { throw fail("unterminated escape") }
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            // A high surrogate must be followed by an escaped low one.
                            guard i + 2 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                                throw fail("unpaired surrogate")
                            }
                            i += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw fail("unpaired surrogate") }
                        out += Array(String(Character(u)).utf8)
                    default: throw fail("unknown escape")
                    }
                case 0..<0x20: throw fail("control character in a string")
                default:
                    out.append(b)
                    i += 1
                }
            }
        }

        /// An integer that fits Int becomes `.int`; anything with a fraction or exponent,
        /// or too large, becomes `.double`.
        mutating func number() throws(Failure) -> ControlValue {
            let start = i
            var integral = true
            if peek == UInt8(ascii: "-") { i += 1 }
            func digits(_ c: inout Cursor) -> Int {
                let s = c.i
                while let d = c.peek, d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") { c.i += 1 }
                return c.i - s
            }
            let intStart = i
            let n = digits(&self)
            guard n > 0 else { throw fail("expected a digit") }
            guard !(n > 1 && bytes[intStart] == UInt8(ascii: "0")) else { throw Failure(offset: intStart, reason: "leading zero") }
            if peek == UInt8(ascii: ".") {
                integral = false
                i += 1
                guard digits(&self) > 0 else { throw fail("expected a digit after '.'") }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                integral = false
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard digits(&self) > 0 else { throw fail("expected a digit in the exponent") }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if integral, let v = Int(text) { return .int(v) }
            guard let d = Double(text), d.isFinite else { throw Failure(offset: start, reason: "number out of range") }
            return .double(d)
        }
    }
}
