/// `svm pause NAME`: every vCPU leaves KVM_RUN; the guest executes nothing until resumed.
enum PauseCommand {
    static let command = SVMCommand.Command(name: "pause", summary: "pause a VM's vCPUs") { arguments, context in
        NamedVMCommand.send(.pause, arguments, context, command: "pause", help: HelpText.pause)
    }
}
