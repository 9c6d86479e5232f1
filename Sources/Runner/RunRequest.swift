import Machine

/// Everything `svm run` was asked to do, checked for form by the command line (paths are
/// checked against the file system when the image is built).
public struct RunRequest: Sendable, Equatable {
    /// A host directory copied into the guest at `guestPath`.
    public struct Volume: Sendable, Equatable {
        public var hostPath: String
        public var guestPath: String
        public var readOnly: Bool

        public init(hostPath: String, guestPath: String, readOnly: Bool = false) {
            self.hostPath = hostPath
            self.guestPath = guestPath
            self.readOnly = readOnly
        }
    }

    /// The program as the user named it: a path, or a name looked up on the host PATH.
    public var program: String
    public var arguments: [String]
    /// The user's `KEY=VALUE` entries, in order; they override svm's defaults (PATH, …).
    public var environment: [String]
    /// The program's working directory in the guest (created if missing).
    public var workdir: String
    public var volumes: [Volume]
    public var memory: UInt64
    public var cpus: Int
    /// Seconds from svm's start until the VM is stopped (exit status 124).
    public var timeout: Double?
    public var networks: [NetworkConfig]
    /// nil: the kernel built by scripts/build-guest-kernel.
    public var kernel: String?
    /// Run the program as root (uid 0) instead of nobody (65534).
    public var root: Bool
    /// The guest's serial console on stderr, and timings at the end.
    public var verbose: Bool
    /// `--tty`: give the program a terminal even when svm's stdin and stdout are not
    /// both terminals (when they are, it gets one anyway).
    public var tty: Bool = false
    /// `--user UID[:GID]`: the program's identity instead of nobody (65534:65534).
    public var userID: UInt32?
    public var groupID: UInt32?
    /// `--copy-volumes`: copy volumes in and read-write ones back at the end (the path
    /// taken anyway where live shares cannot be: not root, or no virtiofsd).
    public var copyVolumes = false

    /// /tmp is a tmpfs the program can write to whoever it runs as; "/" is the initramfs
    /// root, which belongs to root.
    public static let defaultWorkdir = "/tmp"
    public static let defaultMemory: UInt64 = 256 << 20
    public static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    public init(program: String, arguments: [String] = [], environment: [String] = [],
                workdir: String = RunRequest.defaultWorkdir, volumes: [Volume] = [],
                memory: UInt64 = RunRequest.defaultMemory, cpus: Int = 1, timeout: Double? = nil,
                networks: [NetworkConfig] = [], kernel: String? = nil, root: Bool = false, verbose: Bool = false) {
        self.program = program
        self.arguments = arguments
        self.environment = environment
        self.workdir = workdir
        self.volumes = volumes
        self.memory = memory
        self.cpus = cpus
        self.timeout = timeout
        self.networks = networks
        self.kernel = kernel
        self.root = root
        self.verbose = verbose
    }
}
