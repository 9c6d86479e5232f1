/// struct virtio_net_hdr in its VERSION_1 layout (virtio 1.x §5.1.6), 12 bytes,
/// little-endian: flags u8, gso_type u8, hdr_len u16, gso_size u16, csum_start u16,
/// csum_offset u16, num_buffers u16. It is also exactly what a TAP with IFF_VNET_HDR and
/// TUNSETVNETHDRSZ 12 reads and writes in front of each frame (the TAP ignores, and leaves
/// untouched, the last two bytes), so the device passes it through rather than rebuilding it.
public struct VirtioNetHeader: Equatable, Sendable {
    public static let size = 12

    /// `flags` bits.
    public enum Flag {
        /// The frame's checksum is to be completed: 16-bit ones'-complement sum from
        /// csum_start to the end, stored at csum_start + csum_offset.
        public static let needsChecksum: UInt8 = 1
        /// Receive only: the checksum was already verified.
        public static let dataValid: UInt8 = 2
    }

    /// `gso_type` values.
    public enum GSOType {
        public static let none: UInt8 = 0
        public static let tcp4: UInt8 = 1
        public static let udp: UInt8 = 3
        public static let tcp6: UInt8 = 4
        /// Or'ed into the type: the TCP segments carry ECN's CWR.
        public static let ecnBit: UInt8 = 0x80
    }

    public var flags: UInt8 = 0
    public var gsoType: UInt8 = GSOType.none
    public var headerLength: UInt16 = 0
    public var gsoSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0
    public var bufferCount: UInt16 = 0

    public init(flags: UInt8 = 0, gsoType: UInt8 = GSOType.none, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, bufferCount: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.bufferCount = bufferCount
    }

    /// Decodes the first 12 bytes of `bytes`; nil if there are fewer.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count >= Self.size else { return nil }
        let b = Array(bytes.prefix(Self.size))
        func u16(_ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
        self.init(flags: b[0], gsoType: b[1], headerLength: u16(2), gsoSize: u16(4),
                  checksumStart: u16(6), checksumOffset: u16(8), bufferCount: u16(10))
    }

    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b[0] = flags
        b[1] = gsoType
        for (i, v) in [headerLength, gsoSize, checksumStart, checksumOffset, bufferCount].enumerated() {
            b[2 + 2 * i] = UInt8(truncatingIfNeeded: v)
            b[3 + 2 * i] = UInt8(truncatingIfNeeded: v >> 8)
        }
        return b
    }

    /// Stores `count` as num_buffers into a packet that starts with a header.
    static func setBufferCount(_ count: UInt16, in packet: inout [UInt8]) {
        guard packet.count >= size else { return }
        packet[10] = UInt8(truncatingIfNeeded: count)
        packet[11] = UInt8(truncatingIfNeeded: count >> 8)
    }
}
