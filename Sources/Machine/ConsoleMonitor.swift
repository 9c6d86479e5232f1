import Devices
import Host
import Synchronization

/// Reads the guest's kernel console as it goes by and tells the Machine what the guest
/// said about its own end: a panic line (printed even with `quiet`), the power-off line,
/// and on hosts that leave system calls half done, the segfault a stock kernel's init dies
/// of. The scanner keeps bounded state whatever the guest prints.
final class ConsoleMonitor: Sendable {
    static let halfDoneSyscallWatch = "half-done-syscall"

    enum Verdict: Equatable {
        case panicSeen(String)
        case poweredOff
    }

    private struct State {
        var scanner = ConsoleEventScanner()
        var panicReason: String?
        var syscallLikelyBroken = false
    }

    private let state: Mutex<State>

    init(watchHalfDoneSyscalls: Bool) {
        var s = State()
        if watchHalfDoneSyscalls {
            // A stock kernel's first system call from /init faults at the kernel's syscall
            // entry (error 0x15: user instruction fetch) and init dies.
            s.scanner.watch(LineWatch(name: Self.halfDoneSyscallWatch, allOf: ["[1]: segfault at ffffffff", " error 15"]))
        }
        state = Mutex(s)
    }

    /// Feeds console bytes; returns what they revealed, if anything.
    func scan(_ bytes: some Sequence<UInt8>) -> [Verdict] {
        state.withLock { s in
            var verdicts: [Verdict] = []
            for event in s.scanner.feed(bytes) {
                switch event {
                case let .panic(reason):
                    if s.panicReason == nil {
                        s.panicReason = reason
                        verdicts.append(.panicSeen(reason))
                    }
                case .powerOff, .halted:
                    verdicts.append(.poweredOff)
                case let .matched(needle, _) where needle == Self.halfDoneSyscallWatch:
                    s.syscallLikelyBroken = true
                case .restarting, .matched:
                    break
                }
            }
            return verdicts
        }
    }

    var panicReason: String? { state.withLock { $0.panicReason } }
    var syscallLikelyBroken: Bool { state.withLock { $0.syscallLikelyBroken } }
}
