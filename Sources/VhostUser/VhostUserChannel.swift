import CKVM
import Glibc
import Host

/// The frontend's end of one vhost-user socket: whole messages out (with their fds),
/// checked replies in. Blocking, with a receive timeout, so a backend that hangs costs
/// the caller `timeout` seconds, not the VM.
///
/// Not thread-safe: its owner (the device) serializes every exchange under its own lock.
public final class VhostUserChannel: @unchecked Sendable {
    public let fd: Int32
    public static let replyTimeout = 5.0

    public init(connectingTo path: String) throws(VhostUserError) {
        do { fd = try UnixSocket.connect(path: path) } catch { throw .host(error) }
        UnixSocket.setTimeout(fd, seconds: Self.replyTimeout)
    }

    /// Over an already connected socket (tests use a socketpair).
    public init(socket: Int32) {
        fd = socket
        UnixSocket.setTimeout(fd, seconds: Self.replyTimeout)
    }

    deinit { close(fd) }

    public func send(_ message: VhostUserMessage) throws(VhostUserError) {
        let bytes = message.bytes
        precondition(message.descriptors.count <= VhostUserMessage.maximumDescriptors)
        var sent = 0
        while sent < bytes.count {
            // The fds go with the first byte only.
            let fds = sent == 0 ? message.descriptors : []
            let n = bytes.withUnsafeBufferPointer { b in
                fds.withUnsafeBufferPointer { f in
                    ckvm_send_with_fds(fd, b.baseAddress! + sent, b.count - sent, f.baseAddress, Int32(f.count))
                }
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .host(.last("sendmsg \(message.request) to the vhost-user backend"))
            }
            sent += n
        }
    }

    /// Reads exactly `count` bytes; fds that arrive with them are closed and counted.
    private func receive(_ count: Int, for request: VhostUserRequest, descriptors: inout Int) throws(VhostUserError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            var fds = [Int32](repeating: -1, count: VhostUserMessage.maximumDescriptors)
            var nfds: Int32 = 0
            let n = buffer.withUnsafeMutableBufferPointer { b in
                fds.withUnsafeMutableBufferPointer { f in
                    ckvm_recv_with_fds(fd, b.baseAddress! + got, count - got, f.baseAddress, Int32(f.count), &nfds)
                }
            }
            for i in 0..<Int(max(nfds, 0)) where fds[i] >= 0 { close(fds[i]) }
            descriptors += Int(max(nfds, 0))
            if n < 0 {
                if errno == EINTR { continue }
                throw .host(.last("recvmsg reply to \(request) from the vhost-user backend"))
            }
            if n == 0 {
                if got == 0 { throw .disconnected(during: request) }
                throw .shortReply(request, got: got)
            }
            got += n
        }
        return buffer
    }

    /// The reply to `request`, its payload exactly `payloadSize` bytes.
    public func reply(to request: VhostUserRequest, payloadSize: Int) throws(VhostUserError) -> [UInt8] {
        var descriptors = 0
        let header = try receive(VhostUserMessage.headerSize, for: request, descriptors: &descriptors)
        let size = try VhostUserReplyCheck.payloadSize(header: header, descriptorCount: descriptors, for: request,
                                                       expectedSize: payloadSize)
        let payload = size == 0 ? [] : try receive(size, for: request, descriptors: &descriptors)
        guard descriptors == 0 else { throw .unexpectedDescriptors(request, count: descriptors) }
        return payload
    }

    public func replyU64(to request: VhostUserRequest) throws(VhostUserError) -> UInt64 {
        LittleEndian.read(UInt64.self, try reply(to: request, payloadSize: 8), at: 0)
    }
}
