import Machine

/// svm's exit statuses. Each failure class has its own, so scripts can tell them apart.
public enum ExitStatus: Int32, Sendable {
    /// The guest rebooted or powered off (or the user quit with Ctrl-A x).
    case success = 0
    /// The guest kernel panicked or the guest crashed.
    case guestFailure = 1
    /// Usage error or bad input: flags, kernel, initrd, sizes, no usable /dev/kvm.
    case badInput = 2
    /// A host-side failure while building or running the VM.
    case hostFailure = 3
    /// `--timeout` expired and svm killed the VM (as timeout(1) does).
    case timedOut = 124

    /// 128 + N for a terminating signal N, as shells report it.
    public static func interrupted(signal: Int32) -> Int32 { 128 + signal }

    public static func status(for exit: MachineExit) -> Int32 {
        switch exit {
        case .reset, .powerOff, .userQuit: return success.rawValue
        case .panic, .crashed: return guestFailure.rawValue
        case .timedOut: return timedOut.rawValue
        case let .interrupted(signal): return interrupted(signal: signal)
        case .hostFailure: return hostFailure.rawValue
        }
    }
}
