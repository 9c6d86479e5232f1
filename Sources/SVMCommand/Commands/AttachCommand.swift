import Control
import Glibc
import Host

/// `svm attach NAME`: the VM's console on this terminal, raw, as in the foreground: the
/// output from now on, and what is typed goes to the guest. Ctrl-A d detaches and leaves
/// the VM running; Ctrl-A x ends the VM; Ctrl-A Ctrl-A sends a Ctrl-A.
enum AttachCommand {
    static let command = SVMCommand.Command(name: "attach", summary: "connect this terminal to a VM's console", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        let name: String
        switch NamedVMCommand.name(arguments, command: "attach", help: HelpText.attach) {
        case let .failure(box): return box.value
        case let .success(n): name = n
        }
        let vms = ManagedVMs(environment: context.environment)
        let record: VMRecord
        switch vms.find(name) {
        case let .success(r): record = r
        case let .failure(f): return f.report()
        }
        guard record.live else { return CommandFailure("VM \(name) is not running", status: .badInput).report() }
        let connection: Int32
        do {
            let (reply, fd) = try ControlClient.send(.attach, to: record.controlSocketPath, timeout: 5)
            guard reply.ok, let fd else {
                return CommandFailure("VM \(name): \(reply.error ?? "attach refused")", status: .badInput).report()
            }
            connection = fd
        } catch {
            return CommandFailure("VM \(name): \(error)", status: .hostFailure).report()
        }
        defer { close(connection) }
        let signalFD: Int32
        do { signalFD = try Signals.blockTerminatingSignals() } catch {
            return CommandFailure("\(error)", status: .hostFailure).report()
        }
        let terminal = TerminalMode(fd: 0)
        terminal?.enterRaw()
        defer { terminal?.restore() }
        let interactive = terminal != nil
        var escape = ConsoleEscape(allowDetach: true)
        var fds = [pollfd(fd: connection, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: 0, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            if poll(&fds, 3, -1) < 0 {
                if errno == EINTR { continue }
                return CommandFailure("poll: \(String(cString: strerror(errno)))", status: .hostFailure).report()
            }
            if fds[2].revents != 0 {
                // A signal detaches: the VM is not this terminal's to end.
                terminal?.restore()
                return ExitCode.interrupted(signal: Signals.readSignal(from: signalFD) ?? SIGTERM)
            }
            if fds[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                if n <= 0 && !(n < 0 && errno == EINTR) {
                    terminal?.restore()
                    SVMCommand.printErr("VM \(name) ended")
                    return 0
                }
                if n > 0 { _ = buffer.withUnsafeBytes { writeAll(UnsafeRawBufferPointer(rebasing: $0.prefix(n)), to: 1) } }
            }
            if fds[1].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n <= 0 {
                    if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                    fds[1].fd = -1  // end of input: keep showing output until the VM ends
                    continue
                }
                var bytes = Array(buffer[0..<n])
                if interactive {
                    switch escape.feed(bytes) {
                    case let .forward(out): bytes = out
                    case let .detach(first):
                        if !first.isEmpty { _ = writeAll(first, to: connection) }
                        return 0
                    case let .quit(first):
                        if !first.isEmpty { _ = writeAll(first, to: connection) }
                        terminal?.restore()
                        if case let .failure(f) = KillCommand.kill(name, vms: vms) { return f.report() }
                        return 0
                    }
                }
                if !bytes.isEmpty, !writeAll(bytes, to: connection) { return 0 }
            }
        }
    }
}
