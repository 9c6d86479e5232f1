import Glibc
import Host
import Machine
import Synchronization

/// Consoles attached over the control socket (`svm attach`): each gets the guest's console
/// output as it is produced, and what it sends goes to the guest's console input. A client
/// that stops reading is dropped rather than allowed to stall the vCPU that writes.
final class AttachedClients: @unchecked Sendable {
    // Sendable invariant: `clients` and the lazily made loop are behind Mutexes; the loop
    // itself is thread-safe.
    private let clients = Mutex<[Int32]>([])
    private let loop = Mutex<EventLoop?>(nil)
    private unowned(unsafe) let machine: Machine

    init(machine: Machine) {
        self.machine = machine
    }

    func stop() {
        loop.withLock { $0 }?.stop()
        for fd in clients.withLock({ c in defer { c = [] }; return c }) { close(fd) }
    }

    /// The loop that reads attached clients, made on the first attach: a VM nobody attaches
    /// to never pays for its thread.
    private func inputLoop() throws(HostError) -> EventLoop {
        try loop.withLock { (l) throws(HostError) -> EventLoop in
            if let l { return l }
            let made = try EventLoop(name: "svm-attach")
            try made.start()
            l = made
            return made
        }
    }

    /// Takes over `fd` (a connected control socket after an `attach` reply).
    func add(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        clients.withLock { $0.append(fd) }
        do {
            try inputLoop().add(fd: fd, source: EventHandler { [weak self] fd, _ in self?.input(from: fd) })
        } catch {
            drop(fd)
        }
    }

    var count: Int { clients.withLock { $0.count } }

    /// Console output for every attached client. A full socket buffer drops that client
    /// (the bytes are still in the log): the guest never waits for a slow terminal.
    func broadcast(_ bytes: UnsafeRawBufferPointer) {
        let stuck = clients.withLock { fds -> [Int32] in
            var stuck: [Int32] = []
            for fd in fds {
                var done = 0
                while done < bytes.count {
                    let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    if n > 0 { done += n; continue }
                    if n < 0 && errno == EINTR { continue }
                    stuck.append(fd)
                    break
                }
            }
            return stuck
        }
        for fd in stuck { drop(fd) }
    }

    private func input(from fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            machine.sendConsoleInput(Array(buffer[0..<n]))
        } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
            drop(fd)
        }
    }

    private func drop(_ fd: Int32) {
        let found = clients.withLock { c -> Bool in
            guard let i = c.firstIndex(of: fd) else { return false }
            c.remove(at: i)
            return true
        }
        guard found else { return }
        loop.withLock { $0 }?.remove(fd: fd)
        close(fd)
    }
}
