/// `svm kill NAME`: ends the VM at once (its record says 137, as a SIGKILLed process).
enum KillCommand {
    static let command = SVMCommand.Command(name: "kill", summary: "end a VM at once", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        switch NamedVMCommand.name(arguments, command: "kill", help: HelpText.kill) {
        case let .failure(box): return box.value
        case let .success(name):
            let vms = ManagedVMs(environment: context.environment)
            switch kill(name, vms: vms) {
            case .success: return 0
            case let .failure(f): return f.report()
            }
        }
    }

    static func kill(_ name: String, vms: ManagedVMs) -> Result<Void, CommandFailure> {
        vms.find(name).flatMap { vms.ask($0, .kill) }.flatMap { _ in
            vms.waitUntilGone(name, timeout: 10) ? .success(())
                : .failure(CommandFailure("VM \(name) did not end within 10 s of being killed", status: .hostFailure))
        }
    }
}
