/// Frames on the control channel (/dev/hvc2 in the guest), both directions:
/// 1 byte type, u32 little-endian payload length, payload. See firmware/init/PROTOCOL.md.
public enum ControlFrame {
    public static let headerSize = 5
    /// Largest payload either side sends; a longer length is a protocol error.
    public static let maxPayload = 1 << 20

    // Host → guest
    public static let stdinData: UInt8 = UInt8(ascii: "I")
    public static let stdinEOF: UInt8 = UInt8(ascii: "E")
    public static let windowSize: UInt8 = UInt8(ascii: "W")
    public static let stop: UInt8 = UInt8(ascii: "S")
    public static let start: UInt8 = UInt8(ascii: "G")
    public static let signal: UInt8 = UInt8(ascii: "K")
    public static let network: UInt8 = UInt8(ascii: "N")
    /// Exec (svm-runtime exec): start a process, its stdin, its end of stdin, a signal.
    public static let execStart: UInt8 = UInt8(ascii: "P")
    public static let execStdin: UInt8 = UInt8(ascii: "i")
    public static let execStdinEOF: UInt8 = UInt8(ascii: "e")
    public static let execSignal: UInt8 = UInt8(ascii: "k")
    // Guest → host
    public static let ready: UInt8 = UInt8(ascii: "R")
    public static let exit: UInt8 = UInt8(ascii: "X")
    public static let failure: UInt8 = UInt8(ascii: "F")
    public static let exitedKind: UInt8 = UInt8(ascii: "e")
    public static let signalledKind: UInt8 = UInt8(ascii: "s")
    /// Exec: an exec'd process's output, its end, why it could not start.
    public static let execOutput: UInt8 = UInt8(ascii: "o")
    public static let execExit: UInt8 = UInt8(ascii: "x")
    public static let execFailure: UInt8 = UInt8(ascii: "f")

    /// One frame; `payload.count` must not exceed `maxPayload`.
    public static func encode(type: UInt8, payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= maxPayload, "control frame payload over \(maxPayload) bytes")
        let n = UInt32(payload.count)
        return [type, UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + payload
    }
}

/// What the host sends to the guest init.
public enum HostFrame: Equatable, Sendable {
    /// Bytes for the program's stdin (empty data is allowed and ignored by the init).
    case stdin([UInt8])
    /// The program's stdin reached end of file: the init closes the pipe.
    case stdinEOF
    /// The host terminal was resized (tty jobs): the init sets it on /dev/hvc0.
    case windowSize(rows: UInt16, columns: UInt16)
    /// Stop the program (`svm stop`): the init sends SIGTERM to its process group, SIGKILL
    /// if it is still there after `graceMilliseconds`, then reports its end (`X`) and ends
    /// the run as after any program. Read in order with the other frames: stdin data the
    /// program is not reading holds it back, so the host still needs its own timeout.
    case stop(graceMilliseconds: UInt32)
    /// Containers: start the process (the init waits for this after setting up the root).
    case start
    /// Containers: deliver `signal` to the process, or with `all` to every process but the init.
    case signal(Int32, all: Bool)
    /// Containers, before `start`: the address to put on eth0.
    case network(GuestNetwork)
    /// Exec: start another process in the container (ExecFrames.swift).
    case execStart(ExecProcess)
    /// Exec: bytes for process `id`'s stdin (at most `ExecProcess.maximumStdinChunk` a frame).
    case execStdin(id: UInt32, [UInt8])
    /// Exec: process `id`'s stdin ended.
    case execStdinEOF(id: UInt32)
    /// Exec: deliver a signal to process `id`.
    case execSignal(id: UInt32, Int32)

    /// The init's grace period for a stop request that does not say (an empty 'S' frame).
    public static let defaultStopGraceMilliseconds: UInt32 = 10_000

    /// The wire bytes; stdin data over `ControlFrame.maxPayload` becomes several frames.
    public func encoded() -> [UInt8] {
        switch self {
        case let .stdin(data):
            if data.count <= ControlFrame.maxPayload { return ControlFrame.encode(type: ControlFrame.stdinData, payload: data) }
            var out: [UInt8] = []
            out.reserveCapacity(data.count + (data.count / ControlFrame.maxPayload + 1) * ControlFrame.headerSize)
            var i = 0
            while i < data.count {
                let end = min(i + ControlFrame.maxPayload, data.count)
                out += ControlFrame.encode(type: ControlFrame.stdinData, payload: Array(data[i..<end]))
                i = end
            }
            return out
        case .stdinEOF:
            return ControlFrame.encode(type: ControlFrame.stdinEOF, payload: [])
        case let .windowSize(rows, columns):
            return ControlFrame.encode(type: ControlFrame.windowSize, payload: [
                UInt8(rows & 0xff), UInt8(rows >> 8), UInt8(columns & 0xff), UInt8(columns >> 8),
            ])
        case let .stop(grace):
            return ControlFrame.encode(type: ControlFrame.stop, payload: Self.le32(grace))
        case .start:
            return ControlFrame.encode(type: ControlFrame.start, payload: [])
        case let .signal(number, all):
            return ControlFrame.encode(type: ControlFrame.signal, payload: Self.le32(UInt32(bitPattern: number)) + Self.le32(all ? 1 : 0))
        case let .network(config):
            return ControlFrame.encode(type: ControlFrame.network, payload: config.payload)
        case let .execStart(process):
            return ControlFrame.encode(type: ControlFrame.execStart, payload: process.payload)
        case let .execStdin(id, data):
            return ControlFrame.encode(type: ControlFrame.execStdin, payload: Self.le32(id) + data)
        case let .execStdinEOF(id):
            return ControlFrame.encode(type: ControlFrame.execStdinEOF, payload: Self.le32(id))
        case let .execSignal(id, number):
            return ControlFrame.encode(type: ControlFrame.execSignal, payload: Self.le32(id) + Self.le32(UInt32(bitPattern: number)))
        }
    }

    static func le32(_ v: UInt32) -> [UInt8] {
        [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
    }
}

/// How the program ended.
public enum ExitStatus: Equatable, Sendable {
    case exited(Int32)
    case signalled(Int32)
}

/// What the guest init sends back.
public enum GuestFrame: Equatable, Sendable {
    /// The init has put the control channel in raw mode: the host must not send control
    /// frames (or tty input on hvc0) before this, or the guest tty would echo them back.
    case ready
    /// The program ended; the init then syncs and resets the VM.
    case exit(ExitStatus)
    /// The init itself failed before the program could start (message like
    /// "execve /prog: No such file or directory"); it resets the VM next.
    case failure(String)
    /// Exec: bytes process `id` wrote to its stdout or stderr.
    case execOutput(id: UInt32, ExecStream, [UInt8])
    /// Exec: process `id` ended (the agent has sent all its output before this).
    case execExit(id: UInt32, ExitStatus)
    /// Exec: process `id` could not be started ("execve nope: No such file or directory",
    /// or a refused request); no other frame for `id` follows.
    case execFailure(id: UInt32, String)
}

public enum ControlFrameError: Error, Equatable, CustomStringConvertible {
    case unknownType(UInt8)
    case payloadTooLarge(type: UInt8, length: UInt32)
    case badPayload(type: UInt8, reason: String)

    public var description: String {
        switch self {
        case let .unknownType(t):
            return "guest control channel: unknown frame type 0x\(String(t, radix: 16))"
        case let .payloadTooLarge(t, n):
            return "guest control channel: frame '\(Character(Unicode.Scalar(t)))' of \(n) bytes exceeds \(ControlFrame.maxPayload)"
        case let .badPayload(t, reason):
            return "guest control channel: bad '\(Character(Unicode.Scalar(t)))' frame: \(reason)"
        }
    }
}

/// Decodes guest → host frames from a byte stream read in arbitrary pieces. After an error
/// the stream is out of step for good: every later `feed` throws the same error.
public struct ControlFrameDecoder: Sendable {
    public let maxPayload: Int
    private var pending: [UInt8] = []
    private var error: ControlFrameError?

    public init(maxPayload: Int = ControlFrame.maxPayload) {
        self.maxPayload = maxPayload
    }

    /// Bytes buffered in an incomplete frame.
    public var bufferedCount: Int { pending.count }

    /// Adds bytes and returns every frame they complete, in order.
    public mutating func feed<C: Collection>(_ bytes: C) throws -> [GuestFrame] where C.Element == UInt8 {
        if let error { throw error }
        pending.append(contentsOf: bytes)
        var frames: [GuestFrame] = []
        var start = 0
        defer { pending.removeFirst(start) }
        while pending.count - start >= ControlFrame.headerSize {
            let type = pending[start]
            let length = (0..<4).reduce(UInt32(0)) { $0 | UInt32(pending[start + 1 + $1]) << (8 * UInt32($1)) }
            do {
                guard Self.knownTypes.contains(type) else {
                    throw ControlFrameError.unknownType(type)
                }
                guard length <= UInt32(maxPayload) else { throw ControlFrameError.payloadTooLarge(type: type, length: length) }
            } catch let e as ControlFrameError {
                error = e
                throw e
            }
            let total = ControlFrame.headerSize + Int(length)
            guard pending.count - start >= total else { break }
            let payload = pending[(start + ControlFrame.headerSize)..<(start + total)]
            start += total
            do {
                frames.append(try Self.decode(type: type, payload: payload))
            } catch let e as ControlFrameError {
                error = e
                throw e
            }
        }
        return frames
    }

    static let knownTypes: Set<UInt8> = [ControlFrame.exit, ControlFrame.failure, ControlFrame.ready,
                                         ControlFrame.execOutput, ControlFrame.execExit, ControlFrame.execFailure]

    static func decode(type: UInt8, payload: ArraySlice<UInt8>) throws -> GuestFrame {
        if [ControlFrame.execOutput, ControlFrame.execExit, ControlFrame.execFailure].contains(type) {
            return try ExecFrames.decode(type: type, payload: payload)
        }
        if type == ControlFrame.failure {
            return .failure(String(decoding: payload, as: UTF8.self))
        }
        if type == ControlFrame.ready {
            guard payload.isEmpty else { throw ControlFrameError.badPayload(type: type, reason: "\(payload.count) bytes, expected 0") }
            return .ready
        }
        return .exit(try exitStatus(type: type, payload))
    }

    /// u8 kind (`e` exited, `s` signalled), u32 number: the payload of `X`, the tail of `x`.
    static func exitStatus(type: UInt8, _ payload: ArraySlice<UInt8>) throws -> ExitStatus {
        guard payload.count == 5 else {
            throw ControlFrameError.badPayload(type: type, reason: "\(payload.count) bytes, expected 5")
        }
        let b = Array(payload)
        let code = Int32(bitPattern: UInt32(b[1]) | UInt32(b[2]) << 8 | UInt32(b[3]) << 16 | UInt32(b[4]) << 24)
        switch b[0] {
        case ControlFrame.exitedKind: return .exited(code)
        case ControlFrame.signalledKind: return .signalled(code)
        default: throw ControlFrameError.badPayload(type: type, reason: "unknown exit kind 0x\(String(b[0], radix: 16))")
        }
    }
}
