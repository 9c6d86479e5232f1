import Boot
import Host

/// Everything needed to build one VM. The command line validates what the user typed; the
/// Machine re-checks what could hurt (sizes, counts) because it is also a library. No
/// field here names a descriptor the library would read or write on its own: output goes
/// to the closures the caller hands in, input comes through `Machine.sendConsoleInput`.
public struct MachineConfig: Sendable {
    public var memorySize: UInt64 = 512 << 20
    public var cpuCount: Int = 1
    public var kernelPath: String
    /// Treat `kernelPath` as a flat binary loaded at `flatImageAddress` and entered in
    /// 16-bit real mode at 0000:8000 (tiny test guests and benchmarks; like QEMU's -bios).
    public var flatImage = false
    public static let flatImageAddress: UInt64 = 0x8000
    public static let flatImageMaximumSize = 0x9_0000 - 0x8000
    public var initrdPath: String?
    /// The user's part of the kernel command line; svm adds what it needs in front.
    public var commandLine: String = "console=ttyS0"
    /// Seconds before the VM is ended (`MachineExit.timedOut`); nil = no limit.
    public var timeout: Double?
    /// Fault in all guest RAM before the first instruction. Off by default: RAM is reserved
    /// up front (mapped, and checked against MemAvailable) and faulted in as the guest
    /// touches it, so a 512 MiB VM starts in milliseconds instead of spending ~100 ms of
    /// CPU zeroing pages the guest may never use.
    public var populateMemory: Bool = false
    /// Back guest RAM with a sealed memfd (MAP_SHARED) that vhost-user backends can map.
    /// Off unless a vhost-user device needs it: anonymous RAM can use transparent huge
    /// pages, shmem cannot on our hosts (docs/design.md, "Memory").
    public var shareableMemory: Bool = false
    /// Receives what the guest writes on its serial port, a byte or a few at a time, on
    /// the vCPU thread that wrote them. It must not block for long: the vCPU waits.
    public var serialOutput: @Sendable (UnsafeRawBufferPointer) -> Void = { _ in }

    /// virtio-blk disks, in order: /dev/vda, /dev/vdb, …
    public var disks: [DiskConfig] = []
    /// virtio-net interfaces backed by host TAP devices.
    public var networks: [NetworkConfig] = []
    /// virtio-console devices (hvc0, hvc1, … in this order), each with a role by which the
    /// caller finds it again (`Machine.console(role:)`) and where its output goes.
    public var virtioConsoles: [VirtioConsoleConfig] = []
    /// A virtio-rng device, so guests do not wait for entropy.
    public var entropyDevice = true
    /// Where `Machine.sendConsoleInput` delivers: the serial port, or the virtio console
    /// with this role.
    public var consoleInput: ConsoleRole? = nil
    /// Add the agent port: a virtio console (role `.agent`) announced to the guest as
    /// `svm.agent=/dev/hvcN`, on which `Machine.requestShutdown` asks the guest's init to
    /// stop its program and power off (firmware/initramfs/init, firmware/init).
    public var agentPort = false

    /// Shared folders: a virtio-fs device per entry, served by the vhost-user backend
    /// (virtiofsd, started by the caller) listening at `socketPath`. Makes guest RAM
    /// shareable.
    public var sharedFolders: [SharedFolderConfig] = []
    /// One line when a device fails while the VM runs (a vhost-user backend that died or
    /// lied), on whichever thread saw it. The VM goes on; the device needs a reset.
    public var deviceFailure: @Sendable (String) -> Void = { _ in }

    public init(kernelPath: String) {
        self.kernelPath = kernelPath
    }

    /// As many as the MP table svm writes below 640 KiB can list.
    public static let maximumCPUs = maximumBootCPUCount
}

public struct DiskConfig: Sendable, Equatable, Codable {
    public var path: String
    public var readOnly: Bool
    public init(path: String, readOnly: Bool = false) {
        self.path = path
        self.readOnly = readOnly
    }
}

public struct NetworkConfig: Sendable, Equatable, Codable {
    public var tapName: String
    /// "52:54:00:…"; nil picks a random locally administered address.
    public var mac: String?
    public init(tapName: String, mac: String? = nil) {
        self.tapName = tapName
        self.mac = mac
    }
}

/// What a virtio console is for, so callers find devices by role and never by position.
public struct ConsoleRole: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public init(_ name: String) { self.name = name }
    public var description: String { name }

    /// The user's console (`svm boot --console virtio`).
    public static let user = ConsoleRole("user")
    /// The agent port: host requests to the guest's init.
    public static let agent = ConsoleRole("agent")
}

public struct VirtioConsoleConfig: Sendable {
    public var role: ConsoleRole
    /// Receives what the guest writes on this console (called on the device event loop).
    public var output: @Sendable ([UInt8]) -> Void
    /// Watch this console for the guest's panic and power-off lines (as the serial console
    /// always is): set it for the console the kernel prints to.
    public var scanForGuestEvents: Bool
    public init(role: ConsoleRole, scanForGuestEvents: Bool = false, output: @escaping @Sendable ([UInt8]) -> Void) {
        self.role = role
        self.output = output
        self.scanForGuestEvents = scanForGuestEvents
    }
}

public struct SharedFolderConfig: Sendable, Equatable {
    /// What the guest mounts: `mount -t virtiofs TAG /mnt` (1 to 36 bytes).
    public var tag: String
    public var socketPath: String
    public init(tag: String, socketPath: String) {
        self.tag = tag
        self.socketPath = socketPath
    }
}
