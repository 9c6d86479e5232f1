/// svm-runtime's exit statuses. Engines only test for non-zero (runc exits 1 for every
/// error); the distinct values are for people and scripts. The container's VM process
/// (the pid in --pid-file) exits with the container process's status instead.
public enum RuntimeExit: Int32, Sendable {
    case success = 0
    /// The operation failed (the VM did not start, a request was refused).
    case failed = 1
    /// Bad command line.
    case usage = 2
    /// The bundle cannot be run: config.json missing, malformed or asking for what a VM
    /// cannot give.
    case badBundle = 3
    /// No container with that ID.
    case notFound = 4
    /// The container is not in a state that allows it (start twice, kill a stopped one,
    /// delete a running one without --force, an ID in use).
    case wrongState = 5
}

/// An error with the status it ends the command with.
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    let exit: RuntimeExit
    init(_ description: String, _ exit: RuntimeExit = .failed) {
        self.description = description
        self.exit = exit
    }
}
