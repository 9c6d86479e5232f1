import Glibc
import Host
import Machine
import Runner
import Snapshot

/// The `svm` program: a table of subcommands, one file each under Commands/. Each turns
/// its outcome into at most one line on stderr and an exit status (`ExitCode`).
public enum SVMCommand {
    public static let version = "svm 0.2.0"

    /// One subcommand: its name, the line `svm --help` shows, and what runs it.
    struct Command: Sendable {
        let name: String
        let summary: String
        let run: @Sendable (_ arguments: [String], _ context: CommandContext) -> Int32
    }

    static let commands: [Command] = [
        BootCommand.command, RunCommand.command, PsCommand.command, LogsCommand.command,
        AttachCommand.command, PauseCommand.command, ResumeCommand.command, StopCommand.command,
        KillCommand.command, RestartCommand.command, RmCommand.command, SnapshotCommand.command,
        RestoreCommand.command, VMProcessCommand.command,
    ]

    public static func main(_ arguments: [String]) -> Int32 {
        let context = CommandContext(start: MonotonicClock.now(), environment: DefaultGuest.processEnvironment)
        guard let name = arguments.first else {
            printErr(HelpText.main, raw: true)
            return ExitCode.badInput.rawValue
        }
        switch name {
        case "--help", "-h", "help":
            print(HelpText.main, terminator: "")
            return 0
        case "--version", "-V":
            print(version)
            return 0
        default:
            break
        }
        guard let command = commands.first(where: { $0.name == name }) else {
            printErr("unknown command '\(name)' (try svm --help)")
            return ExitCode.badInput.rawValue
        }
        fillStandardDescriptors()
        return command.run(Array(arguments.dropFirst()), context)
    }

    static func printErr(_ message: String, raw: Bool = false) {
        let text = raw ? message : "svm: \(message)\n"
        writeAll(Array(text.utf8), to: 2)
    }

    /// A closed stdin, stdout or stderr would be reused by the next open(), and guest
    /// output could land in a file svm opened: point closed ones at /dev/null.
    static func fillStandardDescriptors() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) < 0 && errno == EBADF {
            let n = open("/dev/null", O_RDWR)
            if n >= 0 && n != fd {
                dup2(n, fd)
                close(n)
            }
        }
    }
}

/// What every command gets: when svm started, and its environment.
struct CommandContext: Sendable {
    let start: Double
    let environment: [String: String]
}
