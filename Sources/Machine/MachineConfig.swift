import Boot

/// Everything needed to build one VM. Validated by the CLI; the Machine re-checks what
/// could hurt (sizes, counts) because it is also a library.
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
    /// Seconds before the VM is killed (exit 124); nil = no limit.
    public var timeout: Double?
    /// Fault in all guest RAM before the first instruction (`--prefault`). Off by default:
    /// RAM is reserved up front (mapped, and checked against MemAvailable) and faulted in as
    /// the guest touches it, so a 512 MiB VM starts in milliseconds instead of spending
    /// ~100 ms of CPU zeroing pages the guest may never use.
    public var populateMemory: Bool = false
    /// Where guest serial output goes, and whether host input is forwarded.
    public var consoleOutputFD: Int32 = 1
    public var consoleInputFD: Int32? = 0

    /// virtio-blk disks, in order: /dev/vda, /dev/vdb, …
    public var disks: [DiskConfig] = []
    /// virtio-net interfaces backed by host TAP devices.
    public var networks: [NetworkConfig] = []
    /// virtio-console devices (hvc0, hvc1, …), each with where its output goes.
    public var virtioConsoles: [VirtioConsoleConfig] = []
    /// A virtio-rng device, so guests do not wait for entropy.
    public var entropyDevice = true
    /// Host input goes to the first virtio console instead of the serial port.
    public var inputToVirtioConsole = false

    public init(kernelPath: String) {
        self.kernelPath = kernelPath
    }

    /// As many as the MP table svm writes below 640 KiB can list.
    public static let maximumCPUs = maximumBootCPUCount
}

public struct DiskConfig: Sendable, Equatable {
    public var path: String
    public var readOnly: Bool
    public init(path: String, readOnly: Bool = false) {
        self.path = path
        self.readOnly = readOnly
    }
}

public struct NetworkConfig: Sendable, Equatable {
    public var tapName: String
    /// "52:54:00:…"; nil picks a random locally administered address.
    public var mac: String?
    public init(tapName: String, mac: String? = nil) {
        self.tapName = tapName
        self.mac = mac
    }
}

public struct VirtioConsoleConfig: Sendable {
    /// Receives what the guest writes on this console (called on the device event loop).
    public var output: @Sendable ([UInt8]) -> Void
    /// Watch this console for the guest's panic and power-off lines (as the serial console
    /// always is): set it for the console the kernel prints to.
    public var scanForGuestEvents: Bool
    public init(scanForGuestEvents: Bool = false, output: @escaping @Sendable ([UInt8]) -> Void) {
        self.output = output
        self.scanForGuestEvents = scanForGuestEvents
    }
}
