import Glibc
import Host

/// Why a TAP interface cannot be used. Host failures carry the failed call and its errno.
public enum TapError: Error, Equatable, CustomStringConvertible {
    case invalidName(String)
    case openFailed(HostError)
    case attachFailed(name: String, HostError)
    case configureFailed(name: String, HostError)
    case ioFailed(name: String, HostError)

    public var description: String {
        switch self {
        case let .invalidName(name):
            return "invalid TAP interface name \"\(name)\" (1 to 15 bytes, no '/' or NUL)"
        case let .openFailed(error):
            return "cannot use TAP interfaces: \(error)"
        case let .attachFailed(name, error):
            return "cannot attach to TAP interface \(name): \(error)"
                + (error.errno == EPERM || error.errno == EBUSY
                    ? " (create it for this user with `ip tuntap add \(name) mode tap vnet_hdr user $USER`, and check nothing else holds it)"
                    : "")
        case let .configureFailed(name, error):
            return "cannot configure TAP interface \(name): \(error)"
        case let .ioFailed(name, error):
            return "TAP interface \(name): \(error)"
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
        guard fd >= 0 else { throw .openFailed(.last("open /dev/net/tun")) }

        // struct ifreq: char ifr_name[16]; then a union whose first member we use is
        // short ifr_flags. 40 bytes on x86-64.
        var ifr = [UInt8](repeating: 0, count: Self.ifreqSize)
        ifr.replaceSubrange(0..<nameBytes.count, with: nameBytes)
        let flags = Self.IFF_TAP | Self.IFF_NO_PI | Self.IFF_VNET_HDR
        ifr[16] = UInt8(truncatingIfNeeded: flags)
        ifr[17] = UInt8(truncatingIfNeeded: flags >> 8)
        var failure: TapError?
        if ifr.withUnsafeMutableBytes({ ioctl(fd, Self.TUNSETIFF, $0.baseAddress!) }) != 0 {
            failure = .attachFailed(name: name, .last("TUNSETIFF"))
        }
        var headerSize = Int32(VirtioNetHeader.size)
        if failure == nil, ioctl(fd, Self.TUNSETVNETHDRSZ, &headerSize) != 0 {
            failure = .configureFailed(name: name, .last("TUNSETVNETHDRSZ \(headerSize)"))
        }
        var supported: NetOffloads = []
        if failure == nil {
            supported = NetOffloads.probe { Self.setOffloads(fd, $0) == 0 }
            // Nothing is offloaded until a driver says what it can take.
            if Self.setOffloads(fd, []) != 0 {
                failure = .configureFailed(name: name, .last("TUNSETOFFLOAD none"))
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
            throw TapError.configureFailed(name: interfaceName, .last("TUNSETOFFLOAD \(offloads)"))
        }
    }

    /// One packet per write: a TAP write takes the whole packet or fails.
    public func send(_ packet: [UInt8]) throws {
        do { try FileIO.write(fileDescriptor, packet) } catch { throw TapError.ioFailed(name: interfaceName, error) }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        do { return try FileIO.readSome(fileDescriptor, into: buffer) } catch { throw TapError.ioFailed(name: interfaceName, error) }
    }
}
