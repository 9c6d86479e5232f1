import Boot
import KVM
import Memory
import Host

/// How a VM ended. The CLI maps each case to an exit status.
public enum MachineExit: Equatable, Sendable {
    /// The guest rebooted (i8042 reset): a clean end for a one-shot VM.
    case reset
    /// The guest powered off or halted.
    case powerOff
    /// The guest kernel panicked; the reason is the rest of its panic line.
    case panic(String)
    /// The guest crashed in a way the kernel could not report (triple fault, an
    /// instruction svm cannot complete, a vCPU stuck in an unrecoverable state).
    case crashed(String)
    /// `timeout` seconds passed.
    case timedOut
    /// svm received a terminating signal.
    case interrupted(signal: Int32)
    /// The user pressed Ctrl-A x.
    case userQuit
    /// A host-side failure while running (a KVM ioctl failed).
    case hostFailure(String)
}

/// Why a VM could not be built. `isBadInput` separates the user's mistakes (exit 2)
/// from host failures.
public enum MachineError: Error, CustomStringConvertible {
    case badInput(String)
    case kvmUnavailable(HostError)
    case kvm(HostError)
    case memory(MemoryError)
    case boot(BootError)
    case host(HostError)

    public var description: String {
        switch self {
        case let .badInput(message): return message
        case let .kvmUnavailable(e):
            return "cannot use KVM: \(e) — svm needs /dev/kvm with read-write permission"
        case let .kvm(e): return "\(e)"
        case let .memory(e): return "\(e)"
        case let .boot(e): return "\(e)"
        case let .host(e): return "\(e)"
        }
    }

    /// Problems with what the user handed svm, as opposed to failures of the host.
    public var isBadInput: Bool {
        switch self {
        case .badInput, .boot, .kvmUnavailable: return true
        case .memory(.invalidSize): return true
        default: return false
        }
    }
}
