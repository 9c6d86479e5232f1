import Control

/// The shape most lifecycle commands share: options, then exactly one VM name.
enum NamedVMCommand {
    struct NoOptions { var help = false }

    static let helpOnly: [Option<NoOptions>] = [.flag("--help", "-h") { $0.help = true }]

    /// Parses `arguments` into `options` and returns the one name; nil after printing the
    /// usage error or the help text (the status is then in `status`).
    static func parse<O>(_ arguments: [String], into o: inout O, options: [Option<O>], command: String,
                         help: String, wantsHelp: (O) -> Bool, status: inout Int32) -> String? {
        do {
            let rest = try OptionParser.parse(arguments, into: &o, options: options, command: command)
            if wantsHelp(o) {
                print(help, terminator: "")
                status = 0
                return nil
            }
            guard rest.count == 1 else {
                throw UsageError(rest.isEmpty ? "svm \(command) needs a VM name" : "svm \(command) takes one VM name")
            }
            return rest[0]
        } catch {
            SVMCommand.printErr("\(error)")
            status = ExitCode.badInput.rawValue
            return nil
        }
    }

    /// For commands with no options but --help: the name, or the status to exit with.
    static func name(_ arguments: [String], command: String, help: String) -> Result<String, Int32Box> {
        var o = NoOptions()
        var status: Int32 = 0
        if let name = parse(arguments, into: &o, options: helpOnly, command: command, help: help,
                            wantsHelp: { $0.help }, status: &status) {
            return .success(name)
        }
        return .failure(Int32Box(status))
    }

    struct Int32Box: Error { let value: Int32; init(_ v: Int32) { value = v } }

    /// A command that is one control request to the VM it names (pause, resume).
    static func send(_ request: ControlRequest, _ arguments: [String], _ context: CommandContext,
                     command: String, help: String) -> Int32 {
        switch name(arguments, command: command, help: help) {
        case let .failure(box): return box.value
        case let .success(name):
            let vms = ManagedVMs(environment: context.environment)
            switch vms.find(name).flatMap({ vms.ask($0, request) }) {
            case .success: return 0
            case let .failure(f): return f.report()
            }
        }
    }
}
