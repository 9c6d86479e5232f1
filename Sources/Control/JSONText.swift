/// Writes a `ControlValue` as compact JSON with sorted keys, without Foundation.
///
/// Why not JSONEncoder: every `svm boot` writes config.json and exit.json, and the first
/// use of Foundation's encoder instantiates its generic machinery and faults in its code
/// — about a tenth of a reset guest's whole start-up CPU. Parsing stays with Foundation's
/// JSONDecoder (the one place svm reads JSON it did not write).
public enum JSONText {
    public static func encode(_ value: ControlValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, to: &out)
        return out
    }

    static func write(_ value: ControlValue, to out: inout [UInt8]) {
        switch value {
        case .null: out += Array("null".utf8)
        case let .bool(b): out += Array((b ? "true" : "false").utf8)
        case let .int(i): out += Array(String(i).utf8)
        case let .double(d):
            // JSON has no NaN or infinity. Swift prints the shortest text that reads back
            // as the same double, always with a '.' or an exponent, so it stays a double.
            if !d.isFinite { out += Array("null".utf8) }
            else { out += Array(String(d).utf8) }
        case let .string(s): writeString(s, to: &out)
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(fields):
            out.append(UInt8(ascii: "{"))
            for (i, key) in fields.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(fields[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// RFC 8259 §7: quote, backslash and control characters escaped; everything else
    /// (valid UTF-8, since it comes from a Swift String) as is.
    static func writeString(_ s: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
