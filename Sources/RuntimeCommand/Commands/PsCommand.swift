import Control

/// `ps [--format json] ID`: the host processes of the container. Its processes live in
/// the guest; on the host there is the VM process (the container's pid).
enum PsCommand {
    static let command = RuntimeCommand.Command(name: "ps", summary: "list the container's host processes", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let args = try ArgumentScanner(valued: ["format", "f"], boolean: []).scan(arguments.filter { $0 != "--" })
        guard let id = args.positional.first else { throw RuntimeFailure("ps takes a container ID", .usage) }
        let state = try context.store.state(of: id)
        let pids = state.pid > 0 && state.status != "stopped" ? [Int(state.pid)] : []
        if (args.values["format"] ?? args.values["f"]) == "json" {
            print(String(decoding: JSONText.encode(.array(pids.map { .int($0) })), as: UTF8.self))
        } else {
            print("PID")
            for p in pids { print(p) }
        }
        return 0
    }
}
