/// `start`: the process that waits in the booted guest runs (as soon as the guest is
/// ready, if it is still booting).
enum StartCommand {
    static let command = RuntimeCommand.Command(name: "start", summary: "run the created container's process", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let id = try RuntimeCommand.containerID(try ArgumentScanner(valued: [], boolean: []).scan(arguments).positional, command: "start")
        let state = try context.store.state(of: id)
        guard state.status == "created" else {
            throw RuntimeFailure("cannot start container \(id): it is \(state.status), not created", .wrongState)
        }
        _ = try context.store.send(.start, to: id)
        // A failing poststart hook is a warning: the container runs (runtime-spec).
        if let hooks = CreateCommand.hooks(bundle: state.record.bundle), hooks["poststart"] != nil {
            var running = state
            running.status = "running"
            do { try HookRunner.run("poststart", of: hooks, state: running) } catch { context.log.warning("\(error)") }
        }
        return 0
    }
}
