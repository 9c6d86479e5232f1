import Host
import Sandbox
import Synchronization

/// The host end of the control console (guest /dev/hvc2): decodes the init's frames as
/// they arrive on the device thread and keeps what they said. `R` signals `readyEvent`
/// (the stdin forwarder waits for it: nothing may be sent before). After a protocol
/// error the rest of the stream is ignored.
final class ControlChannel: Sendable {
    struct Report: Equatable, Sendable {
        var readyAt: Double?
        var exit: ExitStatus?
        var exitAt: Double?
        var failure: String?
        var protocolError: String?
    }

    private struct State {
        var decoder = ControlFrameDecoder()
        var report = Report()
        var broken = false
    }

    private let state = Mutex(State())
    let readyEvent: EventFD
    /// A container's exec frames go there (outside the lock, in order); a protocol error
    /// ends its execs.
    private let execs: ContainerExecs?

    init(execs: ContainerExecs? = nil) throws(RunError) {
        self.execs = execs
        do { readyEvent = try EventFD() } catch { throw RunError("\(error)") }
    }

    var report: Report { state.withLock { $0.report } }

    /// Called with each piece of hvc2 output, in order.
    func receive(_ bytes: [UInt8]) {
        let now = RunTimings.now()
        var execFrames: [GuestFrame] = []
        var brokenNow: String?
        let becameReady = state.withLock { s -> Bool in
            guard !s.broken else { return false }
            let frames: [GuestFrame]
            do { frames = try s.decoder.feed(bytes) } catch {
                s.broken = true
                s.report.protocolError = "\(error)"
                brokenNow = "\(error)"
                return false
            }
            var ready = false
            for frame in frames {
                switch frame {
                case .ready:
                    if s.report.readyAt == nil {
                        s.report.readyAt = now
                        ready = true
                    }
                case let .exit(status):
                    if s.report.exit == nil {
                        s.report.exit = status
                        s.report.exitAt = now
                    }
                case let .failure(message):
                    if s.report.failure == nil { s.report.failure = message }
                case .execOutput, .execExit, .execFailure:
                    execFrames.append(frame)
                }
            }
            return ready
        }
        if becameReady { readyEvent.signal() }
        // Called here, on the console's thread, so the order of output and end holds.
        for frame in execFrames { execs?.receive(frame) }
        if let brokenNow { execs?.endAll(brokenNow) }
    }
}
