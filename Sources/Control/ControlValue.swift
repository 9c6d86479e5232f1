/// A JSON value: what `JSONParser` reads and `JSONText` writes. Control requests and
/// replies are flat objects of these; config.json and exit.json are objects too. Codable
/// only so tests can check both against Foundation's JSON as an oracle.
public enum ControlValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ControlValue])
    case object([String: ControlValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ControlValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ControlValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }

    public var string: String? { if case let .string(s) = self { s } else { nil } }
    public var int: Int? {
        switch self {
        case let .int(i): i
        case let .double(d) where d == d.rounded() && abs(d) < 1e15: Int(d)
        default: nil
        }
    }
    public var double: Double? {
        switch self {
        case let .double(d): d
        case let .int(i): Double(i)
        default: nil
        }
    }
    public var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var array: [ControlValue]? { if case let .array(a) = self { a } else { nil } }
    public var object: [String: ControlValue]? { if case let .object(o) = self { o } else { nil } }

    public subscript(key: String) -> ControlValue? { object?[key] }
}
