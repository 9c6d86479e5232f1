import Glibc

public enum TapError: Error, Equatable, CustomStringConvertible {
    case invalidName(String)
    case openFailed(errno: Int32)
    case attachFailed(name: String, errno: Int32)
    case configureFailed(name: String, what: String, errno: Int32)
    case ioFailed(name: String, errno: Int32)

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
        case let .ioFailed(name, err):
            return "I/O on TAP interface \(name) failed: \(String(cString: strerror(err)))"
        }
    }
}

/// A TAP interface as a `NetBackend`: non-blocking, IFF_NO_PI, with IFF_VNET_HDR and a
/// 12-byte header (TUNSETVNETHDRSZ) so offloads can be turned on later; for now all
/// offloads are off (TUNSETOFFLOAD 0) and the header is written as zeros and skipped on
/// read. The Machine polls `fileDescriptor` for input and calls
/// `VirtioNet.processBackendInput()`.
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
    static let headerSize = 12

    public let fileDescriptor: Int32
    public let interfaceName: String

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
        var headerSize = Int32(Self.headerSize)
        if failure == nil, ioctl(fd, Self.TUNSETVNETHDRSZ, &headerSize) != 0 {
            failure = .configureFailed(name: name, what: "TUNSETVNETHDRSZ", errno: errno)
        }
        if failure == nil, ioctl(fd, Self.TUNSETOFFLOAD, CInt(0)) != 0 {
            failure = .configureFailed(name: name, what: "TUNSETOFFLOAD", errno: errno)
        }
        if let failure {
            close(fd)
            throw failure
        }
        self.fileDescriptor = fd
        self.interfaceName = name
    }

    deinit {
        close(fileDescriptor)
    }

    public func send(_ frame: [UInt8]) throws {
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        let n = header.withUnsafeMutableBytes { h in
            frame.withUnsafeBytes { f in
                var iov = [iovec(iov_base: h.baseAddress, iov_len: h.count),
                           iovec(iov_base: UnsafeMutableRawPointer(mutating: f.baseAddress), iov_len: f.count)]
                var n: Int
                repeat { n = writev(fileDescriptor, &iov, 2) } while n < 0 && errno == EINTR
                return n
            }
        }
        if n < 0 { throw TapError.ioFailed(name: interfaceName, errno: errno) }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        let n = header.withUnsafeMutableBytes { h in
            var iov = [iovec(iov_base: h.baseAddress, iov_len: h.count),
                       iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)]
            var n: Int
            repeat { n = readv(fileDescriptor, &iov, 2) } while n < 0 && errno == EINTR
            return n
        }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
            throw TapError.ioFailed(name: interfaceName, errno: errno)
        }
        return max(0, n - Self.headerSize)
    }
}
