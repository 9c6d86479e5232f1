import Control
import Glibc
import Host
import Machine

/// What the lifecycle commands share: the state directory, finding a VM by name, asking
/// its control socket, and waiting for it to be gone.
struct ManagedVMs {
    let directory: StateDirectory

    init(environment: [String: String]) {
        directory = StateDirectory(root: StateDirectory.root(environment: environment))
    }

    /// The record of VM `name`, or the one line for a missing one.
    func find(_ name: String) -> Result<VMRecord, CommandFailure> {
        guard let record = directory.record(of: name) else {
            return .failure(CommandFailure("no VM named \(name) (svm ps -a lists them)", status: .badInput))
        }
        return .success(record)
    }

    /// Sends `request` to a live VM.
    func ask(_ record: VMRecord, _ request: ControlRequest, timeout: Double = 10) -> Result<ControlReply, CommandFailure> {
        guard record.live else { return .failure(CommandFailure("VM \(record.name) is not running", status: .badInput)) }
        do {
            let (reply, _) = try ControlClient.send(request, to: record.controlSocketPath, timeout: timeout)
            guard reply.ok else { return .failure(CommandFailure("VM \(record.name): \(reply.error ?? "request refused")", status: .badInput)) }
            return .success(reply)
        } catch {
            return .failure(CommandFailure("VM \(record.name): \(error)", status: .hostFailure))
        }
    }

    /// Waits until VM `name` no longer holds its lock; false after `timeout` seconds.
    func waitUntilGone(_ name: String, timeout: Double) -> Bool {
        let end = MonotonicClock.now() + timeout
        while MonotonicClock.now() < end {
            if directory.record(of: name)?.live != true { return true }
            usleep(50_000)
        }
        return directory.record(of: name)?.live != true
    }

    /// The saved options of VM `name` (what restart boots again).
    static func savedOptions(_ record: VMRecord) -> BootOptions? {
        guard let bytes = record.config else { return nil }
        return BootOptions(configJSON: bytes)
    }

    static func encode(_ options: BootOptions) -> [UInt8] {
        JSONText.encode(options.controlValue) + [UInt8(ascii: "\n")]
    }
}

/// A command that could not do what it was asked: its line and status.
struct CommandFailure: Error {
    let message: String
    let status: ExitCode
    init(_ message: String, status: ExitCode) {
        self.message = message
        self.status = status
    }

    func report() -> Int32 {
        SVMCommand.printErr(message)
        return status.rawValue
    }
}
