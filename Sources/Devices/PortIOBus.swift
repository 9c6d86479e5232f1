import Synchronization

/// Dispatches guest port I/O (KVM_EXIT_IO) to devices by port range.
///
/// Two kinds of handler:
/// - byte devices (`register`): get one call per byte; a 2- or 4-byte access is split into
///   byte accesses at consecutive ports, little-endian (lowest port = lowest byte), each byte
///   routed on its own, so an access may straddle devices or unclaimed ports;
/// - sized devices (`registerSized`): get the whole access (port, size, value) when it starts
///   inside their range (for registers that must be accessed whole, such as PCI's 0xCF8).
///
/// Unclaimed ports read as all ones (0xFF per byte) and ignore writes; such accesses are
/// counted in `stats`. Ranges may not overlap.
///
/// Threading: the table and counters live under one internal lock, held only for the lookup
/// (binary search, no allocation); handlers run after it is released, so they can be slow
/// and several vCPUs can be inside different (or the same) devices at once. Handlers must
/// therefore be thread-safe themselves, as all devices in this module are. Registering while
/// vCPUs run is safe but meant for setup time.
public final class PortIOBus: Sendable {
    public typealias ByteRead = @Sendable (_ port: UInt16) -> UInt8
    public typealias ByteWrite = @Sendable (_ port: UInt16, _ value: UInt8) -> Void
    public typealias SizedRead = @Sendable (_ port: UInt16, _ size: Int) -> UInt32
    public typealias SizedWrite = @Sendable (_ port: UInt16, _ size: Int, _ value: UInt32) -> Void

    public enum RegistrationError: Error, Equatable, CustomStringConvertible {
        /// `range` (for `name`) overlaps `existing`, already registered for `owner`.
        case overlap(name: String, range: ClosedRange<UInt16>, owner: String, existing: ClosedRange<UInt16>)

        public var description: String {
            switch self {
            case let .overlap(name, range, owner, existing):
                return "port range \(hex(range)) for \(name) overlaps \(hex(existing)) of \(owner)"
            }
        }

        private func hex(_ r: ClosedRange<UInt16>) -> String {
            "0x\(String(r.lowerBound, radix: 16))-0x\(String(r.upperBound, radix: 16))"
        }
    }

    /// Accesses that hit no device.
    public struct Stats: Equatable, Sendable {
        /// Unclaimed byte ports read / written (a 4-byte access to nothing counts 4).
        public var unknownReads: UInt64 = 0
        public var unknownWrites: UInt64 = 0
        /// The most recent unclaimed port touched, if any.
        public var lastUnknownPort: UInt16?
    }

    enum Handler: Sendable {
        case bytes(ByteRead, ByteWrite)
        case sized(SizedRead, SizedWrite)
    }

    struct Entry: Sendable {
        let range: ClosedRange<UInt16>
        let name: String
        let handler: Handler
    }

    struct Table: Sendable {
        /// Sorted by lower bound, non-overlapping.
        var entries: [Entry] = []
        var stats = Stats()

        /// The range and handler claiming `port` (no name: nothing more is copied per access).
        func find(_ port: UInt16) -> (range: ClosedRange<UInt16>, handler: Handler)? {
            var low = 0, high = entries.count
            while low < high {
                let mid = (low + high) / 2
                let range = entries[mid].range
                if port < range.lowerBound {
                    high = mid
                } else if port > range.upperBound {
                    low = mid + 1
                } else {
                    return (range, entries[mid].handler)
                }
            }
            return nil
        }
    }

    private let table = Mutex(Table())

    public init() {}

    /// Claims `range` for a byte-wide device; `read`/`write` receive the absolute port.
    public func register(_ range: ClosedRange<UInt16>, name: String = "",
                         read: @escaping ByteRead, write: @escaping ByteWrite) throws {
        try insert(Entry(range: range, name: name, handler: .bytes(read, write)))
    }

    /// Claims `range` for a device that takes 1-, 2- and 4-byte accesses whole.
    public func registerSized(_ range: ClosedRange<UInt16>, name: String = "",
                              read: @escaping SizedRead, write: @escaping SizedWrite) throws {
        try insert(Entry(range: range, name: name, handler: .sized(read, write)))
    }

    private func insert(_ entry: Entry) throws {
        try table.withLock { t in
            if let clash = t.entries.first(where: { $0.range.overlaps(entry.range) }) {
                throw RegistrationError.overlap(name: entry.name, range: entry.range,
                                                owner: clash.name, existing: clash.range)
            }
            let at = t.entries.firstIndex { $0.range.lowerBound > entry.range.upperBound } ?? t.entries.count
            t.entries.insert(entry, at: at)
        }
    }

    /// The names and ranges registered, in port order (for diagnostics).
    public var registrations: [(name: String, range: ClosedRange<UInt16>)] {
        table.withLock { t in t.entries.map { ($0.name, $0.range) } }
    }

    public var stats: Stats { table.withLock { $0.stats } }

    /// A guest `in` of `size` (1, 2 or 4) bytes at `port`. Unused high bits are zero.
    public func read(port: UInt16, size: Int) -> UInt32 {
        precondition(size == 1 || size == 2 || size == 4, "port I/O size must be 1, 2 or 4")
        switch route(port, size: size, isWrite: false) {
        case let .whole(.sized(read, _)):
            return read(port, size)
        case let .whole(.bytes(read, _)):
            var value: UInt32 = 0
            for i in 0..<size { value |= UInt32(read(port &+ UInt16(i))) << (8 * i) }
            return value
        case .bytewise:
            var value: UInt32 = 0
            for i in 0..<size { value |= UInt32(readByte(port &+ UInt16(i))) << (8 * i) }
            return value
        case .unclaimed:
            return 0xFF
        }
    }

    /// A guest `out` of the low `size` (1, 2 or 4) bytes of `value` to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) {
        precondition(size == 1 || size == 2 || size == 4, "port I/O size must be 1, 2 or 4")
        switch route(port, size: size, isWrite: true) {
        case let .whole(.sized(_, write)):
            write(port, size, size == 4 ? value : value & ((1 << (8 * UInt32(size))) - 1))
        case let .whole(.bytes(_, write)):
            for i in 0..<size { write(port &+ UInt16(i), UInt8(truncatingIfNeeded: value >> (8 * i))) }
        case .bytewise:
            for i in 0..<size { writeByte(port &+ UInt16(i), UInt8(truncatingIfNeeded: value >> (8 * i))) }
        case .unclaimed:
            break
        }
    }

    /// Where an access goes: whole to the device claiming its first port (a byte device only
    /// if it claims every byte), byte by byte, or nowhere (a 1-byte miss, counted here).
    private enum Route {
        case whole(Handler)
        case bytewise
        case unclaimed
    }

    private func route(_ port: UInt16, size: Int, isWrite: Bool) -> Route {
        table.withLock { t in
            if let claim = t.find(port) {
                if case .bytes = claim.handler, !claim.range.contains(port &+ UInt16(size - 1)) {
                    return .bytewise
                }
                return .whole(claim.handler)
            }
            if size > 1 { return .bytewise }
            if isWrite { t.stats.unknownWrites &+= 1 } else { t.stats.unknownReads &+= 1 }
            t.stats.lastUnknownPort = port
            return .unclaimed
        }
    }

    /// One byte of a split access: a byte device's handler, the low byte of a sized
    /// device's 1-byte access, or 0xFF for an unclaimed port.
    private func readByte(_ port: UInt16) -> UInt8 {
        switch route(port, size: 1, isWrite: false) {
        case let .whole(.bytes(read, _)): return read(port)
        case let .whole(.sized(read, _)): return UInt8(truncatingIfNeeded: read(port, 1))
        case .bytewise, .unclaimed: return 0xFF
        }
    }

    private func writeByte(_ port: UInt16, _ value: UInt8) {
        switch route(port, size: 1, isWrite: true) {
        case let .whole(.bytes(_, write)): write(port, value)
        case let .whole(.sized(_, write)): write(port, 1, UInt32(value))
        case .bytewise, .unclaimed: break
        }
    }
}
