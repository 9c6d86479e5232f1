/// The container part of a job (`svm-runtime`): the guest init mounts the bundle's root
/// file system from the virtio-fs share `svm-root`, makes the container's mounts under
/// it, waits for the host's start frame (`G`), and runs the process chrooted there.
/// Encoded after the volumes when the job's container flag is set (PROTOCOL.md).
public struct ContainerJob: Sendable, Equatable {
    /// One mount the init makes, destination relative to the container's root.
    public struct Mount: Sendable, Equatable {
        public enum Source: Sendable, Equatable {
            /// A file system the guest kernel makes (proc, sysfs, tmpfs, devpts, mqueue,
            /// cgroup2): the type's name.
            case fileSystem(String)
            /// A host directory: the virtio-fs share with this tag.
            case share(tag: String)
            /// A host file copied into the initramfs at this path, bind-mounted.
            case initramfsFile(String)
        }

        public var source: Source
        public var destination: String
        /// MS_* flags (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, ...).
        public var flags: UInt32
        /// File-system options the kernel parses ("mode=755,size=65536k").
        public var data: String

        public init(source: Source, destination: String, flags: UInt32 = 0, data: String = "") {
            self.source = source
            self.destination = destination
            self.flags = flags
            self.data = data
        }
    }

    public struct ResourceLimit: Sendable, Equatable {
        /// RLIMIT_* number.
        public var resource: UInt32
        public var soft: UInt64
        public var hard: UInt64

        public init(resource: UInt32, soft: UInt64, hard: UInt64) {
            self.resource = resource
            self.soft = soft
            self.hard = hard
        }
    }

    /// Capability sets as bit masks (bit N = capability N); nil leaves the process's.
    public struct Capabilities: Sendable, Equatable {
        public var bounding: UInt64
        public var effective: UInt64
        public var permitted: UInt64
        public var inheritable: UInt64
        public var ambient: UInt64

        public init(bounding: UInt64, effective: UInt64, permitted: UInt64, inheritable: UInt64, ambient: UInt64) {
            self.bounding = bounding
            self.effective = effective
            self.permitted = permitted
            self.inheritable = inheritable
            self.ambient = ambient
        }
    }

    /// The virtio-fs tag of the container's root file system.
    public static let rootTag = "svm-root"
    /// The virtio-fs tag of directory mount N (in the order of the bundle's mounts).
    public static func mountTag(index: Int) -> String { "svm-mnt-\(index)" }

    public var hostname: String
    public var readOnlyRoot: Bool
    public var noNewPrivileges: Bool
    public var umask: UInt32?
    public var additionalGroups: [UInt32]
    public var rlimits: [ResourceLimit]
    public var capabilities: Capabilities?
    public var mounts: [Mount]

    public init(hostname: String = "", readOnlyRoot: Bool = false, noNewPrivileges: Bool = false, umask: UInt32? = nil,
                additionalGroups: [UInt32] = [], rlimits: [ResourceLimit] = [], capabilities: Capabilities? = nil,
                mounts: [Mount] = []) {
        self.hostname = hostname
        self.readOnlyRoot = readOnlyRoot
        self.noNewPrivileges = noNewPrivileges
        self.umask = umask
        self.additionalGroups = additionalGroups
        self.rlimits = rlimits
        self.capabilities = capabilities
        self.mounts = mounts
    }
}
