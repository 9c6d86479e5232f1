import Glibc

/// `svm-runtime`: an OCI runtime with runc's command line, whose containers each run in
/// an svm microVM. See docs/oci-runtime.md for what each engine calls and why.
public enum RuntimeCommand {
    /// What every command gets: the global flags and the environment.
    struct Context {
        var store: ContainerStore
        var root: String
        var log: RuntimeLog
        var environment: [String: String]
        /// The global flags as given, for the VM process `create` starts.
        var globalArguments: [String]
    }

    struct Command: Sendable {
        let name: String
        let summary: String
        let run: @Sendable ([String], Context) throws(RuntimeFailure) -> Int32
    }

    static let commands: [Command] = [
        CreateCommand.command, StartCommand.command, StateCommand.command, KillCommand.command,
        DeleteCommand.command, ListCommand.command, PsCommand.command, PauseCommands.pause, PauseCommands.resume,
        ExecCommand.command, UpdateCommand.command, FeaturesCommand.command, RunCommandStub.command,
    ]

    static let globalScanner = ArgumentScanner(
        valued: ["root", "log", "log-format", "criu", "rootless"],
        boolean: ["debug", "systemd-cgroup", "help", "h", "version", "v"])

    public static func main(_ arguments: [String], environment: [String: String]) -> Int32 {
        // The VM process `create` starts and the host process of a detached exec: not
        // commands for users (hence the underscore). Only in the command's place: an
        // exec'd command may well have "_vm" among its arguments.
        if let global = try? globalScanner.scan(arguments, stopAtFirstPositional: true),
           let name = global.positional.first, name.hasPrefix("_") {
            let flags = Array(arguments[..<(arguments.count - global.positional.count)])
            let rest = Array(global.positional.dropFirst())
            if name == ContainerProcess.commandName { return ContainerProcess.main(flags, rest, environment: environment) }
            if name == ExecHostProcess.commandName { return ExecHostProcess.main(flags, rest, environment: environment) }
        }
        var log = RuntimeLog()
        do throws(RuntimeFailure) {
            let global = try globalScanner.scan(arguments, stopAtFirstPositional: true)
            if let path = global.values["log"] { log.path = path }
            if let format = global.values["log-format"] {
                guard let f = RuntimeLog.Format(rawValue: format) else {
                    throw RuntimeFailure("--log-format \(format): not text or json", .usage)
                }
                log.format = f
            }
            log.debug = global.flags.contains("debug")
            if global.flags.contains("version") || global.flags.contains("v") {
                print(HelpText.version, terminator: "")
                return 0
            }
            guard let name = global.positional.first, !global.flags.contains("help"), !global.flags.contains("h") else {
                print(HelpText.usage, terminator: "")
                return global.positional.isEmpty && !(global.flags.contains("help") || global.flags.contains("h")) ? RuntimeExit.usage.rawValue : 0
            }
            if name == "help" {
                print(HelpText.usage, terminator: "")
                return 0
            }
            guard let command = commands.first(where: { $0.name == name }) else {
                throw RuntimeFailure("unknown command \(name) (svm-runtime --help lists them)", .usage)
            }
            let root = global.values["root"] ?? ContainerStore.defaultRoot
            let consumed = arguments.count - global.positional.count
            let context = Context(store: ContainerStore(root: root), root: root, log: log, environment: environment,
                                  globalArguments: Array(arguments[..<consumed]))
            let rest = Array(global.positional.dropFirst())
            if rest.contains("--help") || rest.contains("-h") {
                print(HelpText.help(for: command), terminator: "")
                return 0
            }
            return try command.run(rest, context)
        } catch {
            log.error(error.description)
            return error.exit.rawValue
        }
    }

    /// The one ID argument of most commands.
    static func containerID(_ positional: [String], command: String) throws(RuntimeFailure) -> String {
        guard positional.count == 1, let id = positional.first else {
            throw RuntimeFailure("\(command) takes one container ID (got \(positional.count) arguments)", .usage)
        }
        return id
    }
}
