import Boot
import Host
import Memory
import Snapshot
import Virtio

/// Why a VM could not be built or started. `isBadInput` separates the caller's mistakes
/// from host failures. Messages name what was wrong, never a command-line flag: the
/// command line maps `cpuCount`, `memoryExceedsHost`, `disk` and `network` to its flags.
public enum MachineError: Error, CustomStringConvertible {
    case badInput(String)
    case cpuCount(requested: Int, maximum: Int)
    case memoryExceedsHost(requested: UInt64, available: UInt64)
    case disk(path: String, reason: String)
    case network(tap: String, reason: String)
    case sharedFolder(tag: String, reason: String)
    case badMAC(String)
    case tooManyDevices(count: Int, maximum: Int)
    case kvmUnavailable(HostError)
    case kvm(HostError)
    case memory(MemoryError)
    case boot(BootError)
    case host(HostError)
    /// A snapshot could not be written, or read back into a VM.
    case snapshot(SnapshotError)

    public var description: String {
        switch self {
        case let .badInput(message): message
        case let .cpuCount(n, max): "\(n) vCPUs: must be between 1 and \(max)"
        case let .memoryExceedsHost(requested, available):
            "\(requested >> 20) MiB of guest RAM: the host has only \(available >> 20) MiB available"
        case let .disk(path, reason): "disk \(path): \(reason)"
        case let .network(tap, reason): "TAP \(tap): \(reason)"
        case let .sharedFolder(tag, reason): "shared folder \(tag): \(reason)"
        case let .badMAC(text): "\(text): not a MAC address"
        case let .tooManyDevices(count, max): "too many virtio devices (\(count)); svm supports \(max)"
        case let .kvmUnavailable(e): "cannot use KVM: \(e) — svm needs /dev/kvm with read-write permission"
        case let .kvm(e): "\(e)"
        case let .memory(e): "\(e)"
        case let .boot(e): "\(e)"
        case let .host(e): "\(e)"
        case let .snapshot(e): "\(e)"
        }
    }

    /// Problems with what the caller handed svm, as opposed to failures of the host.
    public var isBadInput: Bool {
        switch self {
        case .badInput, .cpuCount, .memoryExceedsHost, .disk, .network, .sharedFolder, .badMAC, .tooManyDevices, .boot, .kvmUnavailable:
            true
        case .memory(.invalidSize): true
        default: false
        }
    }
}
