/// `exec`: a second process in a running container needs the guest agent to start
/// processes on request, which the init does not do yet: refused with one line.
enum ExecCommand {
    static let command = RuntimeCommand.Command(name: "exec", summary: "run another process in the container (not supported yet)", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        throw RuntimeFailure("exec is not supported yet: the guest init runs the container's one process", .failed)
    }
}

/// `run`: engines call create and start; runc's one-shot form is not offered.
enum RunCommandStub {
    static let command = RuntimeCommand.Command(name: "run", summary: "not supported: use create and start", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        throw RuntimeFailure("run is not supported: call create, then start", .usage)
    }
}
