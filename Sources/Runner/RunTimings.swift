import Host

/// Where the time of one `svm run` went, for `--verbose`: svm's set-up (program lookup,
/// image, VM creation) until the VM starts, the guest's boot until its init says ready,
/// the program until its exit status arrives, and the guest's shutdown after that.
public struct RunTimings: Equatable, Sendable {
    public var start: Double
    public var vmStarted: Double?
    public var ready: Double?
    public var exited: Double?
    public var ended: Double?

    public init(start: Double) { self.start = start }

    /// Host's one monotonic clock (kept as RunTimings.now for its callers).
    public static func now() -> Double { MonotonicClock.now() }

    public var setUp: Double? { vmStarted.map { $0 - start } }
    public var boot: Double? { vmStarted.flatMap { v in ready.map { $0 - v } } }
    public var program: Double? { ready.flatMap { r in exited.map { $0 - r } } }
    public var shutdown: Double? { exited.flatMap { x in ended.map { $0 - x } } }
    public var total: Double? { ended.map { $0 - start } }

    /// "set-up 0.08 s, boot 44.10 s, program 0.31 s, shutdown 0.52 s, total 45.01 s";
    /// phases that did not happen are left out.
    public var summary: String {
        let parts: [(String, Double?)] = [("set-up", setUp), ("boot", boot), ("program", program),
                                          ("shutdown", shutdown), ("total", total)]
        return parts.compactMap { name, value in value.map { "\(name) \(Self.format($0)) s" } }
            .joined(separator: ", ")
    }

    static func format(_ seconds: Double) -> String {
        let hundredths = Int((max(0, seconds) * 100).rounded())
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}
