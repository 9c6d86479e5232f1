/// How the guest announced its end (or another line a caller watches for).
public enum ConsoleEvent: Equatable, Sendable {
    /// `Kernel panic - not syncing: <reason>`.
    case panic(reason: String)
    /// `reboot: Power down` (poweroff).
    case powerOff
    /// `reboot: System halted` (halt).
    case halted
    /// `reboot: Restarting system` (reboot).
    case restarting
    /// A line containing every string of the watch named `needle` (see `LineWatch`).
    case matched(needle: String, line: String)
}

/// A caller-defined line pattern: matches a line that contains all of `allOf`.
public struct LineWatch: Equatable, Sendable {
    public let name: String
    public let allOf: [String]
    let needles: [[UInt8]]

    public init(name: String, allOf: [String]) {
        precondition(!allOf.isEmpty && allOf.allSatisfy { !$0.isEmpty }, "a LineWatch needs non-empty strings")
        self.name = name
        self.allOf = allOf
        self.needles = allOf.map { Array($0.utf8) }
    }

    /// A watch for lines containing `needle`, named after it.
    public init(_ needle: String) {
        self.init(name: needle, allOf: [needle])
    }
}

/// Scans the guest console byte stream, fed in chunks of any size, for whole lines that
/// announce how the guest ends. The kernel prints these at KERN_EMERG, so they appear even
/// with `quiet`. Only complete lines (ended by '\n') are examined, so a partial line never
/// matches; '\r' is ignored; a line is kept to its first `maximumLineLength` bytes.
///
/// The panic's closing marker (`---[ end Kernel panic - not syncing: ... ]---`) is reported
/// as a panic only if the opening line was not (e.g. it was lost), so one panic gives one event.
/// Per byte the work is a compare and an append into a buffer allocated once; lines are
/// searched only when they end.
public struct ConsoleEventScanner: Sendable {
    public static let maximumLineLength = 1024
    public static let maximumReasonLength = 200

    private static let panicNeedle = Array("Kernel panic - not syncing:".utf8)
    private static let panicEndNeedle = Array("---[ end Kernel panic - not syncing:".utf8)
    private static let endings: [([UInt8], ConsoleEvent)] = [
        (Array("reboot: Power down".utf8), .powerOff),
        (Array("reboot: System halted".utf8), .halted),
        (Array("reboot: Restarting system".utf8), .restarting),
    ]

    private var line: [UInt8] = []
    private var panicReported = false
    public private(set) var watches: [LineWatch]

    public init(watches: [LineWatch] = []) {
        self.watches = watches
        line.reserveCapacity(Self.maximumLineLength)
    }

    /// Adds a caller-defined pattern, reported as `.matched(needle: watch.name, line:)`.
    public mutating func watch(_ watch: LineWatch) {
        watches.append(watch)
    }

    /// Consumes console output; returns the events of the lines it completed, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [ConsoleEvent] {
        var events: [ConsoleEvent] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n"):
                scanLine(into: &events)
                line.removeAll(keepingCapacity: true)
            case UInt8(ascii: "\r"):
                continue
            default:
                if line.count < Self.maximumLineLength { line.append(byte) }
            }
        }
        return events
    }

    /// Treats a pending unterminated line as complete (for when the guest has stopped).
    public mutating func flush() -> [ConsoleEvent] {
        guard !line.isEmpty else { return [] }
        var events: [ConsoleEvent] = []
        scanLine(into: &events)
        line.removeAll(keepingCapacity: true)
        return events
    }

    /// Forgets the partial line and the panic already seen (e.g. after a guest reboot).
    public mutating func reset() {
        line.removeAll(keepingCapacity: true)
        panicReported = false
    }

    private mutating func scanLine(into events: inout [ConsoleEvent]) {
        if let end = Self.find(Self.panicNeedle, in: line[...]) {
            let isEndMarker = Self.find(Self.panicEndNeedle, in: line[...]) != nil
            if !isEndMarker || !panicReported {
                var reason = line[end...]
                if isEndMarker, let close = Self.find(Array("]---".utf8), in: reason) {
                    reason = reason[..<(close - 4)]
                }
                events.append(.panic(reason: Self.printable(reason, limit: Self.maximumReasonLength)))
                panicReported = true
            }
        }
        for (needle, event) in Self.endings where Self.find(needle, in: line[...]) != nil {
            events.append(event)
        }
        for watch in watches where watch.needles.allSatisfy({ Self.find($0, in: line[...]) != nil }) {
            events.append(.matched(needle: watch.name, line: Self.printable(line[...], limit: Self.maximumLineLength)))
        }
    }

    /// Index just past the first occurrence of `needle` in `hay`, or nil.
    static func find(_ needle: [UInt8], in hay: ArraySlice<UInt8>) -> Int? {
        guard let first = needle.first, hay.count >= needle.count else { return nil }
        let lastStart = hay.endIndex - needle.count
        var i = hay.startIndex
        while i <= lastStart {
            if hay[i] == first {
                var j = 1
                while j < needle.count && hay[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i + needle.count }
            }
            i += 1
        }
        return nil
    }

    /// Printable ASCII of `bytes` (tabs become spaces, other control bytes and non-ASCII are
    /// dropped), trimmed of surrounding spaces and capped at `limit` characters.
    static func printable(_ bytes: ArraySlice<UInt8>, limit: Int) -> String {
        var kept: [UInt8] = []
        kept.reserveCapacity(min(bytes.count, limit))
        for byte in bytes {
            let b = byte == UInt8(ascii: "\t") ? UInt8(ascii: " ") : byte
            guard b >= 0x20 && b < 0x7F else { continue }
            if b == UInt8(ascii: " ") && kept.isEmpty { continue }
            kept.append(b)
        }
        if kept.count > limit { kept.removeLast(kept.count - limit) }
        while kept.last == UInt8(ascii: " ") { kept.removeLast() }
        return String(decoding: kept, as: UTF8.self)
    }
}
