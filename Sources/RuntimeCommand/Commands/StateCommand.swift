import Control

/// `state`: the OCI state as JSON (runtime-spec runtime.md; runc's layout).
enum StateCommand {
    static let command = RuntimeCommand.Command(name: "state", summary: "print a container's state as JSON", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let id = try RuntimeCommand.containerID(try ArgumentScanner(valued: [], boolean: []).scan(arguments).positional, command: "state")
        let state = try context.store.state(of: id)
        print(String(decoding: JSONText.encode(state.json), as: UTF8.self))
        return 0
    }
}
