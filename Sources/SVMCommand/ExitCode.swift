import Machine
import Runner

/// svm's exit statuses, for every command: the one place outcomes become numbers. Each
/// failure class has its own, so scripts can tell them apart.
public enum ExitCode: Int32, Sendable {
    /// The guest rebooted or powered off (or the user quit with Ctrl-A x); a command did
    /// what it was asked.
    case success = 0
    /// The guest kernel panicked or the guest crashed.
    case guestFailure = 1
    /// Usage error or bad input: flags, kernel, initrd, sizes, no usable /dev/kvm, a name
    /// in use or unknown.
    case badInput = 2
    /// A host-side failure while building or running the VM.
    case hostFailure = 3
    /// `svm restore` refused a snapshot: damaged (a checksum or size does not match),
    /// from another svm version or format, for other CPU features, or its disks changed.
    case snapshotRefused = 4
    /// `--timeout` expired and svm ended the VM (as timeout(1) does).
    case timedOut = 124
    /// `svm run` could not run the program or learn its status (as `docker run`'s 125).
    case runFailure = 125

    /// 128 + N for a terminating signal N, as shells report it.
    public static func interrupted(signal: Int32) -> Int32 { 128 + signal }

    /// A VM that the host ended (`svm kill`, or a stop the guest did not complete in time)
    /// reports what a SIGKILLed process would.
    public static let killed: Int32 = 128 + 9

    public static func status(for exit: MachineExit) -> Int32 {
        switch exit {
        case .reset, .powerOff, .userQuit, .savedToSnapshot: success.rawValue
        case .panic, .crashed: guestFailure.rawValue
        case .timedOut: timedOut.rawValue
        case let .interrupted(signal): interrupted(signal: signal)
        case .killed: killed
        case .hostFailure: hostFailure.rawValue
        }
    }

    /// `svm run`'s statuses, as `docker run` has them, so that anything else is the
    /// program's own: its status, 128+N for its signal, 124, 128+N for svm's signal, 125.
    public static func status(for outcome: RunOutcome) -> Int32 {
        switch outcome {
        case let .program(.exited(n)): n & 0xff
        case let .program(.signalled(s)): 128 + s
        case .timedOut: timedOut.rawValue
        case let .interrupted(signal): interrupted(signal: signal)
        case .failed: runFailure.rawValue
        }
    }
}
