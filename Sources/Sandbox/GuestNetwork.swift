/// The address a container's engine gave it, as the guest init puts it on eth0 (the
/// `N` frame, firmware/init/PROTOCOL.md): the veth's MAC, its IPv4 address and prefix,
/// the default gateway and the MTU.
public struct GuestNetwork: Sendable, Equatable {
    public var mac: [UInt8]
    /// IPv4, most significant byte first.
    public var address: [UInt8]
    public var prefixLength: UInt8
    /// nil: no default route.
    public var gateway: [UInt8]?
    /// 0: leave the interface's.
    public var mtu: UInt32

    public init(mac: [UInt8], address: [UInt8], prefixLength: UInt8, gateway: [UInt8]?, mtu: UInt32) {
        self.mac = mac
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.mtu = mtu
    }

    public var isValid: Bool {
        mac.count == 6 && address.count == 4 && prefixLength <= 32 && (gateway?.count ?? 4) == 4
    }

    /// The 19-byte payload: mac[6], addr[4], prefix, gateway[4] (zero: none), u32 mtu.
    public var payload: [UInt8] {
        precondition(isValid, "GuestNetwork with malformed fields")
        return mac + address + [prefixLength] + (gateway ?? [0, 0, 0, 0])
            + [UInt8(mtu & 0xff), UInt8(mtu >> 8 & 0xff), UInt8(mtu >> 16 & 0xff), UInt8(mtu >> 24)]
    }
}
