import Machine
import Sandbox

/// How one `svm run` ended, and the stderr line that goes with it (the command line maps
/// it to an exit status: `ExitStatus.status(for:)` in SVMCommand).
public enum RunOutcome: Equatable, Sendable {
    /// The program ended and the guest init reported how: its status, or 128 + its signal.
    case program(ExitStatus)
    /// `--timeout` passed first: 124, as timeout(1).
    case timedOut(seconds: Double)
    /// svm received SIGINT/SIGTERM/SIGHUP/SIGQUIT: 128 + the signal, as shells report it.
    case interrupted(signal: Int32)
    /// svm, the VM or the guest init failed; the program's status is unknown: 125.
    case failed(String)

    /// The program's status as a shell would show it ("7", or "137 (signal 9)").
    public var programStatusText: String {
        switch self {
        case let .program(.exited(n)): "\(n & 0xff)"
        case let .program(.signalled(s)): "\(128 + s) (signal \(s))"
        default: "unknown"
        }
    }

    /// The line for stderr (without "svm: "); nil when the program's own status says it all.
    public var message: String? {
        switch self {
        case .program: return nil
        case let .timedOut(seconds): return "timed out after \(Self.formatSeconds(seconds)) s"
        case let .interrupted(signal): return "stopped by signal \(signal)"
        case let .failed(reason): return reason
        }
    }

    /// Decides the outcome once the VM has ended. The program's exit frame wins over
    /// everything (it ended, and that is what the user asked about), then an interruption
    /// or the timeout, then what went wrong, most specific first.
    /// - Parameter consoleHint: the init's last console message, or advice where to look.
    static func decide(machineExit: MachineExit, report: ControlChannel.Report, timeout: Double?,
                       consoleHint: String) -> RunOutcome {
        if let exit = report.exit { return .program(exit) }
        switch machineExit {
        case let .interrupted(signal): return .interrupted(signal: signal)
        case .timedOut: return .timedOut(seconds: timeout ?? 0)
        default: break
        }
        if let failure = report.failure { return .failed("guest init: \(failure)") }
        if let error = report.protocolError { return .failed(error) }
        switch machineExit {
        case let .panic(reason): return .failed("guest kernel panicked: \(reason)")
        case let .crashed(reason): return .failed("guest crashed: \(reason)")
        case let .hostFailure(reason): return .failed(reason)
        default:
            let stage = report.readyAt == nil ? "before its init was ready" : "before the program's exit status came back"
            return .failed("the VM ended \(stage) (\(consoleHint))")
        }
    }

    static func formatSeconds(_ s: Double) -> String {
        s == s.rounded() && s < 1e15 ? String(Int(s)) : String(s)
    }
}
