/// `svm pause NAME`: every vCPU leaves KVM_RUN; the guest executes nothing until resumed.
enum PauseCommand {
    static let command = SVMCommand.Command(name: "pause", summary: "pause a VM's vCPUs", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        switch NamedVMCommand.name(arguments, command: "pause", help: HelpText.pause) {
        case let .failure(box): return box.value
        case let .success(name):
            let vms = ManagedVMs(environment: context.environment)
            switch vms.find(name).flatMap({ vms.ask($0, .pause) }) {
            case .success: return 0
            case let .failure(f): return f.report()
            }
        }
    }
}
