/// Signal names and numbers as `kill` takes them: "TERM", "SIGTERM", "15"; x86-64 numbers.
public enum SignalNames {
    public static let numbers: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
        "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16,
        "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23,
        "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30,
        "SYS": 31,
    ]
    public static let realtimeMinimum: Int32 = 34
    public static let realtimeMaximum: Int32 = 64

    /// nil for anything else than a known name or a number from 1 to 64.
    public static func parse(_ text: String) -> Int32? {
        if let n = Int32(text) { return (1...realtimeMaximum).contains(n) ? n : nil }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let n = numbers[name] { return n }
        if name.hasPrefix("RTMIN") || name.hasPrefix("RTMAX") {
            let base = name.hasPrefix("RTMIN") ? realtimeMinimum : realtimeMaximum
            let rest = name.dropFirst(5)
            if rest.isEmpty { return base }
            guard let offset = Int32(rest), (realtimeMinimum...realtimeMaximum).contains(base + offset) else { return nil }
            return base + offset
        }
        return nil
    }
}
