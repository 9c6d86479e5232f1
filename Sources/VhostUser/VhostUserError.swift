import Host

/// What went wrong talking to a vhost-user backend. Every case is one line that names the
/// request; the device turns any of them into NEEDS_RESET, never into a crash.
public enum VhostUserError: Error, Equatable, CustomStringConvertible {
    /// The socket failed (EPIPE, ECONNRESET, a timeout: errno EAGAIN).
    case host(HostError)
    /// The backend closed the connection.
    case disconnected(during: VhostUserRequest)
    case shortReply(VhostUserRequest, got: Int)
    case oversizedReply(VhostUserRequest, size: Int)
    case wrongRequest(expected: VhostUserRequest, got: UInt32)
    case notAReply(VhostUserRequest, flags: UInt32)
    case wrongPayloadSize(VhostUserRequest, expected: Int, got: Int)
    case unexpectedDescriptors(VhostUserRequest, count: Int)
    /// A REPLY_ACK with a non-zero status.
    case refused(VhostUserRequest, status: UInt64)
    case wrongVring(VhostUserRequest, expected: UInt32, got: UInt32)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .host(e): "vhost-user: \(e)"
        case let .disconnected(r): "vhost-user backend closed the connection during \(r)"
        case let .shortReply(r, n): "vhost-user reply to \(r) ended after \(n) bytes"
        case let .oversizedReply(r, n): "vhost-user reply to \(r) claims a \(n)-byte payload (at most \(VhostUserMessage.maximumPayload))"
        case let .wrongRequest(e, g): "vhost-user reply for request \(g) while waiting for \(e)"
        case let .notAReply(r, f): "vhost-user message for \(r) without the reply flag (flags 0x\(String(f, radix: 16)))"
        case let .wrongPayloadSize(r, e, g): "vhost-user reply to \(r) has \(g) payload bytes, not \(e)"
        case let .unexpectedDescriptors(r, n): "vhost-user reply to \(r) carried \(n) file descriptors, none expected"
        case let .refused(r, s): "vhost-user backend refused \(r) (status \(s))"
        case let .wrongVring(r, e, g): "vhost-user reply to \(r) is for vring \(g), not \(e)"
        case let .unsupported(what): "vhost-user backend \(what)"
        }
    }
}

/// Checks one reply's header against what was asked (pure, so tests can feed it lies).
public enum VhostUserReplyCheck {
    /// The payload size the reply's header claims, after checking request, flags, size
    /// and descriptors.
    public static func payloadSize(header: [UInt8], descriptorCount: Int, for request: VhostUserRequest,
                                   expectedSize: Int) throws(VhostUserError) -> Int {
        guard header.count == VhostUserMessage.headerSize else { throw .shortReply(request, got: header.count) }
        let code = LittleEndian.read(UInt32.self, header, at: 0)
        let flags = LittleEndian.read(UInt32.self, header, at: 4)
        let size = Int(LittleEndian.read(UInt32.self, header, at: 8))
        guard descriptorCount == 0 else { throw .unexpectedDescriptors(request, count: descriptorCount) }
        guard code == request.rawValue else { throw .wrongRequest(expected: request, got: code) }
        guard flags & VhostUserFlags.reply != 0, flags & VhostUserFlags.versionMask == VhostUserFlags.version else {
            throw .notAReply(request, flags: flags)
        }
        guard size <= VhostUserMessage.maximumPayload else { throw .oversizedReply(request, size: size) }
        guard size == expectedSize else { throw .wrongPayloadSize(request, expected: expectedSize, got: size) }
        return size
    }
}
