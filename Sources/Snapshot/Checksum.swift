import CKVM

/// The 64-bit corruption check of snapshot files (not cryptographic: it catches damage and
/// edits by mistake, not an attacker, who could as well write a new snapshot).
public struct Checksum: Equatable, Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        let whole = bytes.count & ~7
        if whole > 0 { value = ckvm_hash_words(value, bytes.baseAddress, whole) }
        if whole < bytes.count {
            var tail: UInt64 = UInt64(bytes.count - whole) << 56
            for (i, b) in bytes[whole...].enumerated() { tail |= UInt64(b) << (8 * UInt64(i)) }
            withUnsafeBytes(of: tail) { value = ckvm_hash_words(value, $0.baseAddress, 8) }
        }
    }

    public mutating func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { add($0) } }

    public mutating func add(_ word: UInt64) { withUnsafeBytes(of: word.littleEndian) { add($0) } }

    public static func of(_ bytes: [UInt8]) -> Checksum {
        var c = Checksum()
        c.add(bytes)
        return c
    }

    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
