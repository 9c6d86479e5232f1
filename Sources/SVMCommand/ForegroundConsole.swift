import Glibc
import Host
import Machine

/// The console of a VM on this terminal, for `svm boot` in the foreground: the caller's
/// thread waits on the VM's end, the terminating signals and the input descriptor at once.
/// On a terminal the input is raw and Ctrl-A x quits; from a pipe bytes pass unchanged,
/// and the end of input leaves the guest running.
enum ForegroundConsole {
    static func run(_ machine: Machine, input: Int32?, signalFD: Int32) -> MachineExit {
        let interactive = input.map { isatty($0) == 1 } ?? false
        var escape = ConsoleEscape()
        var fds = [pollfd(fd: machine.endedDescriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: input ?? -1, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !machine.hasEnded {
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                machine.end(.hostFailure("poll: \(String(cString: strerror(errno)))"))
                break
            }
            if fds[1].revents != 0, let signo = Signals.readSignal(from: signalFD) {
                machine.end(.interrupted(signal: signo))
            }
            guard fds[2].revents != 0, let fd = input else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 {
                fds[2].fd = -1  // end of input: the guest keeps running
                continue
            }
            let bytes = Array(buffer[0..<n])
            guard interactive else {
                machine.sendConsoleInput(bytes)
                continue
            }
            switch escape.feed(bytes) {
            case let .forward(out):
                if !out.isEmpty { machine.sendConsoleInput(out) }
            case let .quit(first), let .detach(first):
                if !first.isEmpty { machine.sendConsoleInput(first) }
                machine.end(.userQuit)
            }
        }
        return machine.wait()
    }
}
