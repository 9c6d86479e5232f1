import Glibc

public enum TapError: Error, Equatable, CustomStringConvertible {
    case invalidName(String)
    case openFailed(errno: Int32)
    case attachFailed(name: String, errno: Int32)
    case configureFailed(name: String, what: String, errno: Int32)
    case ioFailed(name: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .invalidName(name):
            return "invalid TAP interface name \"\(name)\" (1 to 15 bytes, no '/' or NUL)"
        case let .openFailed(err):
            return "cannot open /dev/net/tun: \(String(cString: strerror(err)))"
        case let .attachFailed(name, err):
            return "cannot attach to TAP interface \(name): \(String(cString: strerror(err)))"
                + (err == EPERM || err == EBUSY
                    ? " (create it for this user with `ip tuntap add \(name) mode tap vnet_hdr user $USER`, and check nothing else holds it)"
                    : "")
        case let .configureFailed(name, what, err):
            return "cannot configure TAP interface \(name) (\(what)): \(String(cString: strerror(err)))"
        case let .ioFailed(name, operation, err):
            return "\(operation) on TAP interface \(name) failed: \(String(cString: strerror(err)))"
        }
    }
}

/// A TAP interface as a `NetBackend`: non-blocking, IFF_NO_PI, IFF_VNET_HDR with a 12-byte
/// header (TUNSETVNETHDRSZ: the VERSION_1 virtio_net_hdr, so packets pass between guest
/// and TAP unchanged). Which offloads the TAP can deliver is probed once at open
/// (TUNSETOFFLOAD fails with EINVAL for flags the kernel does not know); delivery starts
/// with none and follows the driver's features from `setReceiveOffloads`.
/// `VirtioNet` registers `fileDescriptor` with the event loop and reads it when readable.
public final class TapBackend: NetBackend {
    // From <linux/if_tun.h>; Glibc does not export the _IOW macros.
    static let TUNSETIFF: UInt = 0x4004_54ca
    static let TUNSETOFFLOAD: UInt = 0x4004_54d0
    static let TUNSETVNETHDRSZ: UInt = 0x4004_54d8
    static let IFF_TAP: Int16 = 0x0002
    static let IFF_NO_PI: Int16 = 0x1000
    static let IFF_VNET_HDR: Int16 = 0x4000
    static let ifreqSize = 40
    static let interfaceNameSize = 16

    public let fileDescriptor: Int32
    public var pollDescriptor: Int32? { fileDescriptor }
    public let interfaceName: String
    public let supportedOffloads: NetOffloads

    public init(interfaceName name: String) throws(TapError) {
        let nameBytes = Array(name.utf8)
        guard !nameBytes.isEmpty, nameBytes.count < Self.interfaceNameSize,
              !nameBytes.contains(0), !nameBytes.contains(UInt8(ascii: "/")) else {
            throw .invalidName(name)
        }
        let fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw .openFailed(errno: errno) }

        // struct ifreq: char ifr_name[16]; then a union whose first member we use is
        // short ifr_flags. 40 bytes on x86-64.
        var ifr = [UInt8](repeating: 0, count: Self.ifreqSize)
        ifr.replaceSubrange(0..<nameBytes.count, with: nameBytes)
        let flags = Self.IFF_TAP | Self.IFF_NO_PI | Self.IFF_VNET_HDR
        ifr[16] = UInt8(truncatingIfNeeded: flags)
        ifr[17] = UInt8(truncatingIfNeeded: flags >> 8)
        var failure: TapError?
        if ifr.withUnsafeMutableBytes({ ioctl(fd, Self.TUNSETIFF, $0.baseAddress!) }) != 0 {
            failure = .attachFailed(name: name, errno: errno)
        }
        var headerSize = Int32(VirtioNetHeader.size)
        if failure == nil, ioctl(fd, Self.TUNSETVNETHDRSZ, &headerSize) != 0 {
            failure = .configureFailed(name: name, what: "TUNSETVNETHDRSZ \(headerSize)", errno: errno)
        }
        var supported: NetOffloads = []
        if failure == nil {
            supported = NetOffloads.probe { Self.setOffloads(fd, $0) == 0 }
            // Nothing is offloaded until a driver says what it can take.
            if Self.setOffloads(fd, []) != 0 {
                failure = .configureFailed(name: name, what: "TUNSETOFFLOAD none", errno: errno)
            }
        }
        if let failure {
            close(fd)
            throw failure
        }
        self.fileDescriptor = fd
        self.interfaceName = name
        self.supportedOffloads = supported
    }

    deinit {
        close(fileDescriptor)
    }

    /// TUNSETOFFLOAD; returns ioctl's result (errno set on -1).
    private static func setOffloads(_ fd: Int32, _ offloads: NetOffloads) -> Int32 {
        // The argument is the flags themselves (an unsigned long), not a pointer to them.
        ioctl(fd, TUNSETOFFLOAD, CInt(bitPattern: offloads.rawValue))
    }

    public func setReceiveOffloads(_ offloads: NetOffloads) throws {
        if Self.setOffloads(fileDescriptor, offloads) != 0 {
            throw TapError.configureFailed(name: interfaceName, what: "TUNSETOFFLOAD \(offloads)", errno: errno)
        }
    }

    public func send(_ packet: [UInt8]) throws {
        let n = packet.withUnsafeBytes { p in
            var n: Int
            repeat { n = write(fileDescriptor, p.baseAddress, p.count) } while n < 0 && errno == EINTR
            return n
        }
        if n < 0 { throw TapError.ioFailed(name: interfaceName, operation: "write", errno: errno) }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        var n: Int
        repeat { n = read(fileDescriptor, buffer.baseAddress, buffer.count) } while n < 0 && errno == EINTR
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
            throw TapError.ioFailed(name: interfaceName, operation: "read", errno: errno)
        }
        return n
    }
}
