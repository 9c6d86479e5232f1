/// Why a bundle or a runtime request cannot be carried out: one line for the engine (the
/// shim shows the last error line of the log to the user).
public struct OCIError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
