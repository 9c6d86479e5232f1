/// `svm resume NAME`: the paused vCPUs run again.
enum ResumeCommand {
    static let command = SVMCommand.Command(name: "resume", summary: "resume a paused VM", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        switch NamedVMCommand.name(arguments, command: "resume", help: HelpText.resume) {
        case let .failure(box): return box.value
        case let .success(name):
            let vms = ManagedVMs(environment: context.environment)
            switch vms.find(name).flatMap({ vms.ask($0, .resume) }) {
            case .success: return 0
            case let .failure(f): return f.report()
            }
        }
    }
}
