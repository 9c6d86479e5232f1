import Glibc
import Host
import Machine
import Runner

/// `svm run`: usage errors and every failure of svm exit 125, like `docker run`, so that
/// any other status is the program's own.
enum RunCommand {
    static let command = SVMCommand.Command(name: "run", summary: "run a host program in a throwaway VM", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        let options: RunOptions
        do { options = try RunOptions.parse(arguments) } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.runFailure.rawValue
        }
        if options.help {
            print(HelpText.run, terminator: "")
            return 0
        }
        // The process-wide parts, which the library leaves to its caller: SIGWINCH and the
        // terminating signals blocked before any thread starts (threads inherit the mask),
        // and the vCPU kick handler.
        Signals.block([SIGWINCH])
        let signalFD: Int32
        do { signalFD = try Signals.blockTerminatingSignals() } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.runFailure.rawValue
        }
        defer { close(signalFD) }
        let session = RunSession(request: options.request, environment: context.environment,
                                 io: RunIO(input: 0, output: 1, error: 2), kick: VCPUKick.install(),
                                 start: context.start)
        let outcome = session.run(signalFD: signalFD)
        if let message = outcome.message { SVMCommand.printErr(message) }
        if options.request.verbose { SVMCommand.printErr("timings: \(session.timings.summary)") }
        return ExitCode.status(for: outcome)
    }
}
