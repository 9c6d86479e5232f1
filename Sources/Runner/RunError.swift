import Host

/// Why `svm run` could not run the program: one line for stderr (without the "svm: "
/// prefix). Every one of these ends svm with status 125, like `docker run`, except an
/// interruption by a signal while preparing (128 + the signal).
public struct RunError: Error, Equatable, CustomStringConvertible {
    public let description: String
    /// Set when a terminating signal stopped the preparation.
    public let signal: Int32?
    /// The failed host call (operation + errno), when one is the reason.
    public let hostError: HostError?

    public init(_ description: String) {
        self.description = description
        signal = nil
        hostError = nil
    }

    /// "`context`: `operation` failed: `errno text` (errno N)"; `context` names the file.
    public init(_ context: String, _ error: HostError) {
        description = "\(context): \(error)"
        signal = nil
        hostError = error
    }

    public static func interrupted(signal: Int32) -> RunError { RunError(signal: signal) }

    private init(signal: Int32) {
        description = "stopped by signal \(signal)"
        self.signal = signal
        hostError = nil
    }
}
