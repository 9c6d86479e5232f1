/// What the guest init runs: the `/svm/job` file of the initramfs (format in
/// firmware/init/PROTOCOL.md).
public struct SandboxJob: Sendable, Equatable {
    /// A host directory packed under `/svm/volumes/N/` (N = index in `volumes`) and
    /// bind-mounted by the init at `guestPath`.
    public struct Volume: Sendable, Equatable {
        public var guestPath: String
        public var readOnly: Bool
        /// Mounted from the virtio-fs share `svm-vol-N` instead of the initramfs copy.
        public var live: Bool

        public init(guestPath: String, readOnly: Bool, live: Bool = false) {
            self.guestPath = guestPath
            self.readOnly = readOnly
            self.live = live
        }

        /// The virtio-fs tag of live volume `index`.
        public static func shareTag(index: Int) -> String { "svm-vol-\(index)" }
    }

    /// uid/gid 65534 ("nobody"): the default identity of the program.
    public static let nobody: UInt32 = 65534

    /// argv[0] is the absolute guest path that is executed (no PATH search in the guest).
    public var argv: [String]
    /// "KEY=VALUE" strings, passed to execve exactly (the init adds nothing).
    public var env: [String]
    public var workdir: String
    public var uid: UInt32
    public var gid: UInt32
    /// The host forwards stdin as 'I'/'E' frames; otherwise the program's stdin is /dev/null.
    public var hasStdin: Bool
    /// The program gets /dev/hvc0 as its controlling terminal (stdin, stdout and stderr).
    public var tty: Bool
    /// Initial terminal size for `tty` (0 = unknown).
    public var terminalRows: UInt16
    public var terminalColumns: UInt16
    public var volumes: [Volume]
    /// A container's root, mounts and process settings; argv[0] may then be a name the
    /// init looks up on the job's PATH inside the container's root.
    public var container: ContainerJob?

    public init(argv: [String], env: [String] = [], workdir: String = "/", uid: UInt32 = nobody,
                gid: UInt32 = nobody, hasStdin: Bool = false, tty: Bool = false,
                terminalRows: UInt16 = 0, terminalColumns: UInt16 = 0, volumes: [Volume] = [],
                container: ContainerJob? = nil) {
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.uid = uid
        self.gid = gid
        self.hasStdin = hasStdin
        self.tty = tty
        self.terminalRows = terminalRows
        self.terminalColumns = terminalColumns
        self.volumes = volumes
        self.container = container
    }
}

public enum JobError: Error, Equatable, CustomStringConvertible {
    case emptyArgv
    /// A path that must be absolute is not (argv[0], workdir, a volume's guest path).
    case notAbsolute(field: String, value: String)
    /// Strings become C strings in the guest.
    case containsNUL(field: String)
    case invalidEnvironment(String)
    case invalidVolumePath(String)
    case tooLarge(bytes: Int)

    public var description: String {
        switch self {
        case .emptyArgv: return "svm run: no program given"
        case let .notAbsolute(field, value): return "\(field) \(value.debugDescription) must be an absolute guest path"
        case let .containsNUL(field): return "\(field) contains a NUL byte"
        case let .invalidEnvironment(s): return "environment entry \(s.debugDescription) is not KEY=VALUE"
        case let .invalidVolumePath(p): return "volume guest path \(p.debugDescription) is not usable (\"/\" or a \"..\" component)"
        case let .tooLarge(n): return "job is \(n) bytes, more than the init accepts (\(JobWriter.maxSize))"
        }
    }
}

/// Encodes `/svm/job`. All integers are u32 little-endian; a string is its u32 byte length
/// followed by its UTF-8 bytes (no terminator):
///
///     "SVMJ" u32 version(1) u32 flags(bit0 has_stdin, bit1 tty) u32 uid u32 gid
///     u32 rows u32 cols
///     u32 argc  argc × string
///     u32 envc  envc × string
///     string workdir
///     u32 nvol  nvol × (string guest_path, u32 flags(bit0 read_only, bit1 live share))
///
/// With flag bit 2 (container) the container section follows (ContainerJob):
///
///     string hostname
///     u32 cflags(bit0 read-only root, bit1 no_new_privs, bit2 umask set, bit3 capabilities set)
///     u32 umask
///     u32 ngroups  ngroups × u32 gid
///     u32 nrlimit  nrlimit × (u32 resource, u64 soft, u64 hard)
///     5 × u64      capability sets: bounding, effective, permitted, inheritable, ambient
///     u32 nmount   nmount × (u32 kind(0 fs, 1 virtio-fs tag, 2 initramfs file),
///                            string source, string destination, u32 ms_flags, string data)
public enum JobWriter {
    public static let magic: [UInt8] = Array("SVMJ".utf8)
    public static let version: UInt32 = 1
    public static let flagHasStdin: UInt32 = 1 << 0
    public static let flagTTY: UInt32 = 1 << 1
    public static let flagContainer: UInt32 = 1 << 2
    public static let volumeReadOnly: UInt32 = 1 << 0
    public static let volumeLive: UInt32 = 1 << 1
    /// The init refuses larger jobs.
    public static let maxSize = 16 << 20

    public static func encode(_ job: SandboxJob) throws -> [UInt8] {
        guard let program = job.argv.first, !program.isEmpty else { throw JobError.emptyArgv }
        guard program.hasPrefix("/") || job.container != nil else { throw JobError.notAbsolute(field: "program", value: program) }
        guard job.workdir.hasPrefix("/") else { throw JobError.notAbsolute(field: "workdir", value: job.workdir) }
        for e in job.env {
            guard let eq = e.firstIndex(of: "="), eq != e.startIndex else { throw JobError.invalidEnvironment(e) }
        }
        for v in job.volumes {
            guard v.guestPath.hasPrefix("/") else { throw JobError.notAbsolute(field: "volume", value: v.guestPath) }
            let parts = v.guestPath.split(separator: "/")
            guard !parts.isEmpty, !parts.contains("..") else { throw JobError.invalidVolumePath(v.guestPath) }
        }

        var out = magic
        func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        func string(_ s: String, _ field: String) throws {
            let b = Array(s.utf8)
            guard !b.contains(0) else { throw JobError.containsNUL(field: field) }
            guard b.count <= maxSize else { throw JobError.tooLarge(bytes: b.count) }
            u32(UInt32(b.count))
            out += b
        }
        u32(version)
        u32((job.hasStdin ? flagHasStdin : 0) | (job.tty ? flagTTY : 0) | (job.container != nil ? flagContainer : 0))
        u32(job.uid)
        u32(job.gid)
        u32(UInt32(job.terminalRows))
        u32(UInt32(job.terminalColumns))
        u32(UInt32(job.argv.count))
        for a in job.argv { try string(a, "argument") }
        u32(UInt32(job.env.count))
        for e in job.env { try string(e, "environment entry") }
        try string(job.workdir, "workdir")
        u32(UInt32(job.volumes.count))
        for v in job.volumes {
            try string(v.guestPath, "volume path")
            u32((v.readOnly ? volumeReadOnly : 0) | (v.live ? volumeLive : 0))
        }
        if let c = job.container {
            func u64(_ v: UInt64) { u32(UInt32(truncatingIfNeeded: v)); u32(UInt32(truncatingIfNeeded: v >> 32)) }
            try string(c.hostname, "hostname")
            u32((c.readOnlyRoot ? 1 : 0) | (c.noNewPrivileges ? 2 : 0) | (c.umask != nil ? 4 : 0) | (c.capabilities != nil ? 8 : 0))
            u32(c.umask ?? 0)
            u32(UInt32(c.additionalGroups.count))
            for g in c.additionalGroups { u32(g) }
            u32(UInt32(c.rlimits.count))
            for r in c.rlimits { u32(r.resource); u64(r.soft); u64(r.hard) }
            let caps = c.capabilities
            for set in [caps?.bounding, caps?.effective, caps?.permitted, caps?.inheritable, caps?.ambient] { u64(set ?? 0) }
            u32(UInt32(c.mounts.count))
            for m in c.mounts {
                guard m.destination.hasPrefix("/") else { throw JobError.notAbsolute(field: "mount destination", value: m.destination) }
                guard !m.destination.split(separator: "/").contains("..") else { throw JobError.invalidVolumePath(m.destination) }
                switch m.source {
                case let .fileSystem(type): u32(0); try string(type, "mount type")
                case let .share(tag): u32(1); try string(tag, "mount tag")
                case let .initramfsFile(path): u32(2); try string(path, "mount source")
                }
                try string(m.destination, "mount destination")
                u32(m.flags)
                try string(m.data, "mount options")
            }
        }
        guard out.count <= maxSize else { throw JobError.tooLarge(bytes: out.count) }
        return out
    }
}
