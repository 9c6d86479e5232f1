import Control
import OCI

/// `kill [--all] ID [SIGNAL]`: through the VM process to the container's process (or
/// every process of the guest with --all); before start, a terminating signal ends the VM.
enum KillCommand {
    static let command = RuntimeCommand.Command(name: "kill", summary: "send a signal to the container's process", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let args = try ArgumentScanner(valued: ["signal", "s"], boolean: ["all", "a"]).scan(arguments)
        guard (1...2).contains(args.positional.count) else {
            throw RuntimeFailure("kill takes a container ID and optionally a signal", .usage)
        }
        let id = args.positional[0]
        let name = args.positional.count == 2 ? args.positional[1] : args.values["signal"] ?? args.values["s"] ?? "TERM"
        guard let number = SignalNames.parse(name) else { throw RuntimeFailure("\(name): not a signal", .usage) }
        let state = try context.store.state(of: id)
        guard state.status != "stopped" else { throw RuntimeFailure("container \(id) is not running", .wrongState) }
        _ = try context.store.send(.signal(number, all: args.flags.contains("all") || args.flags.contains("a")), to: id)
        return 0
    }
}
