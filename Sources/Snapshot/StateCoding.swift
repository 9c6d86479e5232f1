/// The binary encoding of saved state: little-endian integers, length-prefixed byte
/// strings, and named sections so a reader that meets the wrong thing says what it found.
/// Kernel structures (`kvm_regs`, …) are stored as their bytes with their size in front:
/// a build whose headers give them another size refuses the file instead of misreading it.
public struct StateWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    public mutating func put(_ value: Bool) { put(UInt8(value ? 1 : 0)) }

    public mutating func put(bytes b: [UInt8]) {
        put(UInt64(b.count))
        bytes += b
    }

    public mutating func put(_ string: String) { put(bytes: Array(string.utf8)) }

    /// A plain C structure's bytes (no pointers inside), with its size.
    public mutating func putRaw<T>(_ value: T) {
        precondition(_isPOD(T.self), "putRaw of a non-trivial type")
        withUnsafeBytes(of: value) { put(bytes: Array($0)) }
    }

    /// A named part; its length comes first, so a reader can check it was read whole.
    public mutating func section(_ name: String, _ body: (inout StateWriter) -> Void) {
        var inner = StateWriter()
        body(&inner)
        put(name)
        put(bytes: inner.bytes)
    }
}

public struct StateReader {
    let bytes: [UInt8]
    var position = 0
    /// What is being read, for messages.
    let context: String

    public init(_ bytes: [UInt8], context: String = "state") {
        self.bytes = bytes
        self.context = context
    }

    public var isAtEnd: Bool { position == bytes.count }

    mutating func take(_ count: Int, _ what: String) throws(SnapshotError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else { throw .truncated("\(context): \(what)") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    public mutating func get<T: FixedWidthInteger>(_ type: T.Type, _ what: String = "an integer") throws(SnapshotError) -> T {
        let slice = try take(MemoryLayout<T>.size, what)
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: slice) }
        return T(littleEndian: value)
    }

    public mutating func getBool(_ what: String = "a flag") throws(SnapshotError) -> Bool {
        switch try get(UInt8.self, what) {
        case 0: return false
        case 1: return true
        default: throw .malformed("\(context): \(what) is not 0 or 1")
        }
    }

    public mutating func getBytes(_ what: String = "bytes", limit: Int = 1 << 30) throws(SnapshotError) -> [UInt8] {
        let count = try get(UInt64.self, what)
        guard count <= UInt64(limit) else { throw .malformed("\(context): \(what) of \(count) bytes") }
        return Array(try take(Int(count), what))
    }

    public mutating func getString(_ what: String = "a string") throws(SnapshotError) -> String {
        let b = try getBytes(what, limit: 1 << 20)
        guard let s = String(validating: b, as: UTF8.self) else { throw .malformed("\(context): \(what) is not UTF-8") }
        return s
    }

    /// A structure written by `putRaw`; its stored size must be this build's.
    public mutating func getRaw<T>(_ type: T.Type, _ what: String) throws(SnapshotError) -> T {
        precondition(_isPOD(T.self), "getRaw of a non-trivial type")
        let b = try getBytes(what, limit: 1 << 20)
        guard b.count == MemoryLayout<T>.size else {
            throw .malformed("\(context): \(what) has \(b.count) bytes, this build's has \(MemoryLayout<T>.size)")
        }
        return b.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    /// The section `name`, which must come next; the returned reader covers exactly it.
    public mutating func section(_ name: String) throws(SnapshotError) -> StateReader {
        let found = try getString("section name")
        guard found == name else { throw .malformed("\(context): expected section '\(name)', found '\(found)'") }
        return StateReader(try getBytes("section \(name)"), context: "\(context)/\(name)")
    }

    /// Refuses leftover bytes: a section read whole is a section understood whole.
    public func finish() throws(SnapshotError) {
        guard isAtEnd else { throw .malformed("\(context): \(bytes.count - position) unexpected bytes at the end") }
    }
}

/// A device or machine part whose state goes into a snapshot. Each implements its own
/// save and restore; the Machine walks them without knowing their types.
public protocol Snapshottable: AnyObject {
    /// Writes the state; called while nothing runs (vCPUs paused, device loop parked).
    func saveState(to writer: inout StateWriter)
    /// Loads a state written by `saveState` into a freshly built, not yet running device.
    func restoreState(from reader: inout StateReader) throws(SnapshotError)
}
