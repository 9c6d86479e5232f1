/// `svm rm [-f] NAME`: removes an exited VM's state directory; `-f` ends a live one first.
enum RmCommand {
    static let command = SVMCommand.Command(name: "rm", summary: "remove an exited VM", run: run)

    struct Options {
        var force = false
        var help = false
    }

    static let options: [Option<Options>] = [
        .flag("--force", "-f") { $0.force = true },
        .flag("--help", "-h") { $0.help = true },
    ]

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        var o = Options()
        var status: Int32 = 0
        guard let name = NamedVMCommand.parse(arguments, into: &o, options: options, command: "rm",
                                              help: HelpText.rm, wantsHelp: { $0.help }, status: &status) else { return status }
        let vms = ManagedVMs(environment: context.environment)
        if o.force, vms.directory.record(of: name)?.live == true, case let .failure(f) = KillCommand.kill(name, vms: vms) {
            return f.report()
        }
        do { try vms.directory.remove(name) } catch {
            return CommandFailure("\(error)", status: .badInput).report()
        }
        return 0
    }
}
