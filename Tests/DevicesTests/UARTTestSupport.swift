import Glibc
import Synchronization
@testable import Devices

/// Captures what a UART hands to the host: transmitted bytes and interrupt-line changes.
final class UARTRecorder: Sendable {
    private struct Log {
        var output: [UInt8] = []
        var outputCalls = 0
        var levels: [Bool] = []
    }
    private let log = Mutex(Log())

    var output: [UInt8] { log.withLock { $0.output } }
    var outputCalls: Int { log.withLock { $0.outputCalls } }
    var levels: [Bool] { log.withLock { $0.levels } }
    /// Number of low-to-high transitions seen (what an edge-triggered ISA IRQ delivers).
    var risingEdges: Int { log.withLock { $0.levels.filter { $0 }.count } }

    func makeUART(inputCapacity: Int = Serial16550.defaultInputCapacity) -> Serial16550 {
        Serial16550(
            output: { byte in self.log.withLock { $0.output.append(byte); $0.outputCalls += 1 } },
            interrupt: { level in self.log.withLock { $0.levels.append(level) } },
            inputCapacity: inputCapacity)
    }
}

/// Register offsets, as the tests spell them.
enum Reg {
    static let rbr: UInt16 = 0, thr: UInt16 = 0, dll: UInt16 = 0, dlm: UInt16 = 1
    static let ier: UInt16 = 1, iir: UInt16 = 2, fcr: UInt16 = 2, lcr: UInt16 = 3
    static let mcr: UInt16 = 4, lsr: UInt16 = 5, msr: UInt16 = 6, scr: UInt16 = 7
}

/// Runs `body(i)` for i in 0..<iterations on that many threads at once (pthreads: the tests
/// avoid Foundation and Dispatch).
enum DispatchQueueless {
    private final class Job: @unchecked Sendable {   // read-only after init
        let index: Int
        let body: @Sendable (Int) -> Void
        init(index: Int, body: @escaping @Sendable (Int) -> Void) { self.index = index; self.body = body }
    }

    static func concurrentPerform(iterations: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var threads: [pthread_t] = []
        for i in 0..<iterations {
            let job = Unmanaged.passRetained(Job(index: i, body: body)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.body(job.index)
                return nil
            }, job)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
        for thread in threads { pthread_join(thread, nil) }
    }
}
