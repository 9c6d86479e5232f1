/// `pause ID` / `resume ID`: every vCPU of the container's VM leaves or re-enters KVM_RUN.
enum PauseCommands {
    static let pause = RuntimeCommand.Command(name: "pause", summary: "pause the container's VM", run: { a, c throws(RuntimeFailure) in
        try run(a, c, request: .pause, name: "pause")
    })
    static let resume = RuntimeCommand.Command(name: "resume", summary: "resume a paused container's VM", run: { a, c throws(RuntimeFailure) in
        try run(a, c, request: .resume, name: "resume")
    })

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context, request: ControlRequestName, name: String) throws(RuntimeFailure) -> Int32 {
        let id = try RuntimeCommand.containerID(try ArgumentScanner(valued: [], boolean: []).scan(arguments).positional, command: name)
        _ = try context.store.send(request == .pause ? .pause : .resume, to: id)
        return 0
    }

    enum ControlRequestName { case pause, resume }
}
