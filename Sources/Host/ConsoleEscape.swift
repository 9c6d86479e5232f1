/// The console's escape key, as in QEMU: Ctrl-A then `x` quits; Ctrl-A Ctrl-A sends one
/// literal Ctrl-A; Ctrl-A followed by anything else sends both bytes on. Where detaching
/// means something (`svm attach`), Ctrl-A then `d` detaches.
public struct ConsoleEscape: Sendable {
    public static let escapeByte: UInt8 = 0x01

    public enum Action: Equatable, Sendable {
        case forward([UInt8])
        case quit(forwardFirst: [UInt8])
        case detach(forwardFirst: [UInt8])
    }

    private var pendingEscape = false
    private let allowDetach: Bool

    public init(allowDetach: Bool = false) {
        self.allowDetach = allowDetach
    }

    /// Filters bytes typed by the user. Bytes before a quit are still forwarded.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> Action {
        var out: [UInt8] = []
        for b in bytes {
            if pendingEscape {
                pendingEscape = false
                switch b {
                case UInt8(ascii: "x"), UInt8(ascii: "X"): return .quit(forwardFirst: out)
                case UInt8(ascii: "d"), UInt8(ascii: "D") where allowDetach: return .detach(forwardFirst: out)
                case Self.escapeByte: out.append(Self.escapeByte)
                default: out.append(Self.escapeByte); out.append(b)
                }
            } else if b == Self.escapeByte {
                pendingEscape = true
            } else {
                out.append(b)
            }
        }
        return .forward(out)
    }
}
