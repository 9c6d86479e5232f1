/// Why a virtio_net_hdr was refused (the frame it came with is dropped and counted).
public enum NetHeaderProblem: Error, Equatable, Sendable, CustomStringConvertible {
    /// Flag bits other than those the direction allows.
    case unknownFlags(UInt8)
    /// NEEDS_CSUM without the checksum feature of that direction (CSUM / GUEST_CSUM).
    case checksumNotNegotiated
    /// csum_start + csum_offset + 2 goes past the end of the frame.
    case checksumOutsideFrame(start: UInt16, offset: UInt16, frameLength: Int)
    /// A gso_type the direction's features do not allow (UDP, ECN, or TSO not negotiated).
    case segmentationNotNegotiated(gsoType: UInt8)
    /// A segmentation type that is not in the spec at all.
    case unknownSegmentationType(UInt8)
    /// TSO without NEEDS_CSUM (virtio 1.x §5.1.6.2: the driver must set both).
    case segmentationWithoutChecksum
    /// TSO with gso_size 0.
    case zeroSegmentSize
    /// hdr_len beyond the end of the frame.
    case headerLengthOutsideFrame(headerLength: UInt16, frameLength: Int)

    public var description: String {
        switch self {
        case let .unknownFlags(f): return "virtio_net_hdr flags 0x\(String(f, radix: 16)) not allowed"
        case .checksumNotNegotiated: return "NEEDS_CSUM without the checksum feature"
        case let .checksumOutsideFrame(start, offset, length):
            return "checksum at \(start)+\(offset) is outside a \(length)-byte frame"
        case let .segmentationNotNegotiated(t): return "gso_type 0x\(String(t, radix: 16)) was not negotiated"
        case let .unknownSegmentationType(t): return "unknown gso_type 0x\(String(t, radix: 16))"
        case .segmentationWithoutChecksum: return "TSO frame without NEEDS_CSUM"
        case .zeroSegmentSize: return "TSO frame with gso_size 0"
        case let .headerLengthOutsideFrame(h, length): return "hdr_len \(h) is beyond a \(length)-byte frame"
        }
    }
}

extension VirtioNetHeader {
    /// Checks a header the driver wrote in front of a `frameLength`-byte frame, for a device
    /// that negotiated `features`. The TAP's kernel checks these fields again, but the
    /// device must not hand on offloads it never agreed to, and a problem caught here is
    /// counted as a drop rather than surfacing as a write error.
    public func transmitProblem(frameLength: Int, negotiated features: UInt64) -> NetHeaderProblem? {
        // DATA_VALID and RSC_INFO are the device's to set (virtio 1.x §5.1.6.2.1).
        if flags & ~Flag.needsChecksum != 0 { return .unknownFlags(flags) }
        let needsChecksum = flags & Flag.needsChecksum != 0
        if needsChecksum, features & VirtioNetFeature.checksum == 0 { return .checksumNotNegotiated }
        if let p = checksumProblem(frameLength: frameLength) { return p }
        return segmentationProblem(frameLength: frameLength, tcp4: features & VirtioNetFeature.hostTSO4 != 0,
                                   tcp6: features & VirtioNetFeature.hostTSO6 != 0)
    }

    /// The header to give the driver for a frame the TAP delivered, or the reason the frame
    /// cannot go to a driver that negotiated `features`. The TAP is set to offload only what
    /// the driver can take, but frames queued before a reset may still carry the previous
    /// driver's offloads. DATA_VALID is only cleared when GUEST_CSUM is off: the TAP sets it
    /// whatever its offloads, and the spec wants flags zero then (§5.1.6.4.1).
    public func forReceive(frameLength: Int, negotiated features: UInt64) -> Result<VirtioNetHeader, NetHeaderProblem> {
        var header = self
        let guestChecksum = features & VirtioNetFeature.guestChecksum != 0
        if !guestChecksum { header.flags &= ~Flag.dataValid }
        if header.flags & ~(Flag.needsChecksum | Flag.dataValid) != 0 { return .failure(.unknownFlags(flags)) }
        if header.flags & Flag.needsChecksum != 0, !guestChecksum { return .failure(.checksumNotNegotiated) }
        if let p = header.checksumProblem(frameLength: frameLength)
            ?? header.segmentationProblem(frameLength: frameLength,
                                          tcp4: features & VirtioNetFeature.guestTSO4 != 0,
                                          tcp6: features & VirtioNetFeature.guestTSO6 != 0) {
            return .failure(p)
        }
        return .success(header)
    }

    private func checksumProblem(frameLength: Int) -> NetHeaderProblem? {
        guard flags & Flag.needsChecksum != 0 else { return nil }
        // The 16-bit checksum field itself must lie inside the frame.
        guard Int(checksumStart) + Int(checksumOffset) + 2 <= frameLength else {
            return .checksumOutsideFrame(start: checksumStart, offset: checksumOffset, frameLength: frameLength)
        }
        return nil
    }

    private func segmentationProblem(frameLength: Int, tcp4: Bool, tcp6: Bool) -> NetHeaderProblem? {
        // ECN is never negotiated (see VirtioNetFeature), so the bit is refused outright.
        if gsoType & GSOType.ecnBit != 0 { return .segmentationNotNegotiated(gsoType: gsoType) }
        switch gsoType {
        case GSOType.none: return nil
        case GSOType.tcp4: if !tcp4 { return .segmentationNotNegotiated(gsoType: gsoType) }
        case GSOType.tcp6: if !tcp6 { return .segmentationNotNegotiated(gsoType: gsoType) }
        case GSOType.udp: return .segmentationNotNegotiated(gsoType: gsoType)
        default: return .unknownSegmentationType(gsoType)
        }
        if flags & Flag.needsChecksum == 0 { return .segmentationWithoutChecksum }
        if gsoSize == 0 { return .zeroSegmentSize }
        // Linux drivers put the linear part's length here, which may exceed the protocol
        // headers; all that can be checked is that it stays inside the frame.
        if Int(headerLength) > frameLength {
            return .headerLengthOutsideFrame(headerLength: headerLength, frameLength: frameLength)
        }
        return nil
    }
}
