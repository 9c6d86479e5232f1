/// What `svm-runtime exec` asks the guest init to start in a running container (the `P`
/// frame, firmware/init/PROTOCOL.md "Exec"). The process gets the container's set-up
/// (root, rlimits, umask) with this identity, environment, directory and capabilities.
public struct ExecProcess: Sendable, Equatable {
    /// Chosen by the host; names the process in every later frame about it.
    public var id: UInt32
    /// argv[0] may be a name: the init looks it up on the env's PATH in the container.
    public var argv: [String]
    public var env: [String]
    public var cwd: String
    public var uid: UInt32
    public var gid: UInt32
    public var additionalGids: [UInt32]
    /// Whether stdin frames follow (else the process reads /dev/null).
    public var hasStdin: Bool
    public var noNewPrivileges: Bool
    /// nil: the init's own sets, as for a container without process.capabilities.
    public var capabilities: ContainerJob.Capabilities?

    /// The largest `P` payload the host sends. The control console holds 64 KiB for the
    /// guest and the container's stdin forwarder may take half of it at any moment; an exec
    /// request waits for room, so it must fit in what is left.
    public static let maximumPayload = 24 << 10
    /// Stdin bytes per `i` frame, for the same reason.
    public static let maximumStdinChunk = 16 << 10

    static let hasStdinFlag: UInt32 = 1
    static let noNewPrivilegesFlag: UInt32 = 2
    static let capabilitiesFlag: UInt32 = 4

    public init(id: UInt32, argv: [String], env: [String] = [], cwd: String = "/", uid: UInt32 = 0, gid: UInt32 = 0,
                additionalGids: [UInt32] = [], hasStdin: Bool = false, noNewPrivileges: Bool = false,
                capabilities: ContainerJob.Capabilities? = nil) {
        self.id = id
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
        self.additionalGids = additionalGids
        self.hasStdin = hasStdin
        self.noNewPrivileges = noNewPrivileges
        self.capabilities = capabilities
    }

    /// u32 id, u32 flags, u32 uid, u32 gid, u32 ngroups × u32, argv and env as string
    /// lists, string cwd, then 5 × u64 capability masks when flag bit 2 is set.
    public var payload: [UInt8] {
        var out = HostFrame.le32(id)
        var flags: UInt32 = 0
        if hasStdin { flags |= Self.hasStdinFlag }
        if noNewPrivileges { flags |= Self.noNewPrivilegesFlag }
        if capabilities != nil { flags |= Self.capabilitiesFlag }
        out += HostFrame.le32(flags) + HostFrame.le32(uid) + HostFrame.le32(gid)
        out += HostFrame.le32(UInt32(additionalGids.count))
        for g in additionalGids { out += HostFrame.le32(g) }
        func string(_ s: String) -> [UInt8] { HostFrame.le32(UInt32(s.utf8.count)) + Array(s.utf8) }
        out += HostFrame.le32(UInt32(argv.count)) + argv.flatMap(string)
        out += HostFrame.le32(UInt32(env.count)) + env.flatMap(string)
        out += string(cwd)
        if let c = capabilities {
            for mask in [c.bounding, c.effective, c.permitted, c.inheritable, c.ambient] {
                out += HostFrame.le32(UInt32(truncatingIfNeeded: mask)) + HostFrame.le32(UInt32(truncatingIfNeeded: mask >> 32))
            }
        }
        return out
    }

    /// Why the init would refuse this request, or nil: it must be sendable as one frame
    /// and every string must be one the init can pass to execve.
    public var problem: String? {
        guard let first = argv.first, !first.isEmpty else { return "args is empty" }
        guard cwd.hasPrefix("/") else { return "cwd \(cwd) is not absolute" }
        for s in argv + env + [cwd] where s.utf8.contains(0) { return "\(s.debugDescription) contains a NUL byte" }
        let size = payload.count
        if size > Self.maximumPayload { return "the process's args and env take \(size) bytes, more than \(Self.maximumPayload)" }
        return nil
    }
}

/// Which stream of an exec'd process an `o` frame carries.
public enum ExecStream: UInt8, Sendable, Equatable {
    case stdout = 1
    case stderr = 2
}

/// Decoding of the guest's exec frames: `o` (u32 id, u8 stream, bytes), `x` (u32 id, u8
/// kind, u32 number), `f` (u32 id, text).
enum ExecFrames {
    static func decode(type: UInt8, payload: ArraySlice<UInt8>) throws -> GuestFrame {
        guard payload.count >= 4 else {
            throw ControlFrameError.badPayload(type: type, reason: "\(payload.count) bytes, no process id")
        }
        let b = payload.startIndex
        let id = UInt32(payload[b]) | UInt32(payload[b + 1]) << 8 | UInt32(payload[b + 2]) << 16 | UInt32(payload[b + 3]) << 24
        let rest = payload[(b + 4)...]
        switch type {
        case ControlFrame.execOutput:
            guard let first = rest.first, let stream = ExecStream(rawValue: first) else {
                throw ControlFrameError.badPayload(type: type, reason: "no stream or an unknown one")
            }
            return .execOutput(id: id, stream, Array(rest.dropFirst()))
        case ControlFrame.execExit:
            return .execExit(id: id, try ControlFrameDecoder.exitStatus(type: type, rest))
        default:
            return .execFailure(id: id, String(decoding: rest, as: UTF8.self))
        }
    }
}
