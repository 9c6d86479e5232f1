/// virtio-net feature bits (virtio 1.x §5.1.3) that svm offers.
public enum VirtioNetFeature {
    /// VIRTIO_NET_F_CSUM (0): the device takes frames with a partial checksum (NEEDS_CSUM).
    public static let checksum: UInt64 = 1 << 0
    /// VIRTIO_NET_F_GUEST_CSUM (1): the driver takes frames with a partial checksum.
    public static let guestChecksum: UInt64 = 1 << 1
    /// VIRTIO_NET_F_MAC (5): config space holds the MAC address.
    public static let mac: UInt64 = 1 << 5
    /// VIRTIO_NET_F_GUEST_TSO4/6 (7, 8): the driver takes TCP segments up to 64 KiB.
    public static let guestTSO4: UInt64 = 1 << 7
    public static let guestTSO6: UInt64 = 1 << 8
    /// VIRTIO_NET_F_HOST_TSO4/6 (11, 12): the device takes TCP segments up to 64 KiB.
    public static let hostTSO4: UInt64 = 1 << 11
    public static let hostTSO6: UInt64 = 1 << 12
    /// VIRTIO_NET_F_MRG_RXBUF (15): one received packet may span several receive chains.
    public static let mergeableReceiveBuffers: UInt64 = 1 << 15
    /// VIRTIO_NET_F_STATUS (16): config space holds the link status.
    public static let status: UInt64 = 1 << 16

    // Not offered: GUEST_ECN/HOST_ECN (9, 13) would need TUN_F_TSO_ECN too and buy
    // nothing measurable here; GUEST_UFO/HOST_UFO (10, 14) are gone from Linux since 4.14
    // (a TAP accepts TUN_F_UFO only for old guests' sake), so UDP GSO headers are refused.

    /// The offload features to offer on top of a TAP that accepts `offloads` (see
    /// `NetOffloads.probe`). Each feature pairs with the TAP offload that makes it work:
    /// GUEST_* features need the TAP to hand us such frames (TUNSETOFFLOAD), and HOST_*
    /// features are tied to the same flags because a kernel whose TAP knows an offload is
    /// one whose TAP also accepts such frames from us. The spec's dependencies (TSO needs
    /// the checksum feature of its direction) follow from the kernel's own rule that
    /// TUN_F_TSO* is refused without TUN_F_CSUM.
    public static func offloadFeatures(for offloads: NetOffloads) -> UInt64 {
        guard offloads.contains(.checksum) else { return 0 }
        var features = checksum | guestChecksum
        if offloads.contains(.tcp4Segmentation) { features |= guestTSO4 | hostTSO4 }
        if offloads.contains(.tcp6Segmentation) { features |= guestTSO6 | hostTSO6 }
        return features
    }
}

/// What a TAP may hand to its reader (TUNSETOFFLOAD's TUN_F_* bits, <linux/if_tun.h>):
/// frames with a partial checksum, and TCP frames up to 64 KiB that still need
/// segmenting. Frames written to the TAP may use any of these whatever is set here.
public struct NetOffloads: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// TUN_F_CSUM.
    public static let checksum = NetOffloads(rawValue: 0x01)
    /// TUN_F_TSO4.
    public static let tcp4Segmentation = NetOffloads(rawValue: 0x02)
    /// TUN_F_TSO6.
    public static let tcp6Segmentation = NetOffloads(rawValue: 0x04)

    public static let all: NetOffloads = [.checksum, .tcp4Segmentation, .tcp6Segmentation]

    /// The TAP offloads for a driver that negotiated `features`: only what its GUEST_*
    /// bits say it can receive. TSO without GUEST_CSUM (a driver breaking the spec's
    /// dependency) gets neither, as the TAP would refuse it anyway.
    public static func forReceive(negotiated features: UInt64) -> NetOffloads {
        guard features & VirtioNetFeature.guestChecksum != 0 else { return [] }
        var offloads: NetOffloads = .checksum
        if features & VirtioNetFeature.guestTSO4 != 0 { offloads.insert(.tcp4Segmentation) }
        if features & VirtioNetFeature.guestTSO6 != 0 { offloads.insert(.tcp6Segmentation) }
        return offloads
    }

    /// Which of `candidates` a backend takes, asking it one at a time (`trySet` is
    /// TUNSETOFFLOAD; a kernel that does not know a flag refuses the whole call with
    /// EINVAL, so flags are tried on top of the checksum, which every TSO flag needs).
    static func probe(_ trySet: (NetOffloads) -> Bool) -> NetOffloads {
        guard trySet(.checksum) else { return [] }
        var accepted: NetOffloads = .checksum
        for flag in [NetOffloads.tcp4Segmentation, .tcp6Segmentation] where trySet([.checksum, flag]) {
            accepted.insert(flag)
        }
        return accepted
    }

    public var description: String {
        let names: [(NetOffloads, String)] = [(.checksum, "csum"), (.tcp4Segmentation, "tso4"),
                                              (.tcp6Segmentation, "tso6")]
        let present = names.filter { contains($0.0) }.map(\.1)
        return present.isEmpty ? "none" : present.joined(separator: ",")
    }
}
