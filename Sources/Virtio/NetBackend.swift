/// Where a virtio-net device sends and receives packets. A packet is a 12-byte
/// virtio_net_hdr (`VirtioNetHeader`) followed by an Ethernet frame, which is what a TAP
/// with IFF_VNET_HDR reads and writes, so the device passes headers through. The TAP
/// backend is the real one; tests use a fake.
public protocol NetBackend: AnyObject, Sendable {
    /// The offloads the backend can deliver on receive, found once when it was opened;
    /// the device offers only the features these make possible.
    var supportedOffloads: NetOffloads { get }
    /// From now on, deliver frames with these offloads (a subset of `supportedOffloads`):
    /// partial checksums, unsegmented TCP. Called when a driver activates the device.
    func setReceiveOffloads(_ offloads: NetOffloads) throws
    /// Sends one packet (header and frame). Errors (the host queue is full, the interface
    /// is down, the kernel refused the header) drop it.
    func send(_ packet: [UInt8]) throws
    /// Reads one waiting packet (header and frame) into `buffer` and returns its length,
    /// or nil if none is waiting. A packet longer than `buffer` may be truncated.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int?
    /// A descriptor that is readable while packets wait (a TAP's), for the event loop;
    /// nil for backends that are not polled (test fakes).
    var pollDescriptor: Int32? { get }
}

extension NetBackend {
    public var pollDescriptor: Int32? { nil }
}

/// A 48-bit Ethernet address.
public struct MACAddress: Equatable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        bytes = [b0, b1, b2, b3, b4, b5]
    }

    /// Parses "52:54:00:12:34:56"; nil unless it is six hex bytes separated by colons.
    public init?(_ string: String) {
        let parts = string.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var b: [UInt8] = []
        for p in parts {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        bytes = b
    }

    /// A random locally administered unicast address (first byte xxxxxx10).
    public static func random() -> MACAddress {
        var g = SystemRandomNumberGenerator()
        let r = (0..<6).map { _ in UInt8.random(in: 0...255, using: &g) }
        return MACAddress((r[0] & 0xfc) | 0x02, r[1], r[2], r[3], r[4], r[5])
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
