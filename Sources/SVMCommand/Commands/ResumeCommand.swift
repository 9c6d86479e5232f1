/// `svm resume NAME`: the paused vCPUs run again.
enum ResumeCommand {
    static let command = SVMCommand.Command(name: "resume", summary: "resume a paused VM") { arguments, context in
        NamedVMCommand.send(.resume, arguments, context, command: "resume", help: HelpText.resume)
    }
}
