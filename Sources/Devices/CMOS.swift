import Glibc
import Synchronization

/// The MC146818-style RTC/CMOS at ports 0x70 (index; bit 7 is the NMI mask, ignored) and
/// 0x71 (data). The clock registers read the host's current UTC time from `now`; there is
/// no update cycle (status A's UIP bit is never set) and no interrupt (IRQ 8 is never raised).
///
/// - 0x00/0x02/0x04 seconds/minutes/hours, 0x06 weekday (1 = Sunday), 0x07 day, 0x08 month,
///   0x09 year in the century, 0x32 century: BCD, 24-hour, unless the guest clears those
///   bits in status B (binary mode / 12-hour mode are honoured). Writes to them are ignored.
/// - 0x0A status A: divider bits as written (initially 0x26), UIP clear.
/// - 0x0B status B: as written (initially 0x02: 24-hour, BCD).
/// - 0x0C status C: 0 (no interrupt flags). 0x0D status D: 0x80 (battery good, time valid).
/// - Every other index reads back the last byte written there (128 bytes of CMOS RAM).
///
/// The time is sampled once per second of reading: a read of seconds or status A takes a
/// fresh sample, other clock registers reuse it unless it is over a second old, so a reader
/// that checks UIP and then reads the fields in a row gets one consistent time.
public final class CMOS: Sendable {
    public static let indexPort: UInt16 = 0x70
    public static let dataPort: UInt16 = 0x71

    private let now: @Sendable () -> time_t
    let state = Mutex(State())

    struct State: Sendable {
        var index: UInt8 = 0
        var ram = [UInt8](repeating: 0, count: 128)
        var sampleTime: time_t = 0
        var sample: ClockSample?

        init() {
            ram[Register.statusA] = 0x26
            ram[Register.statusB] = Register.bHour24
        }
    }

    /// The fields of one broken-down UTC time (`tm` itself holds a pointer, so is not Sendable).
    struct ClockSample: Sendable {
        var second = 0, minute = 0, hour = 0, weekday = 0, day = 0, month = 0, year = 0
    }

    enum Register {
        static let seconds = 0x00, minutes = 0x02, hours = 0x04, weekday = 0x06
        static let day = 0x07, month = 0x08, year = 0x09, century = 0x32
        static let statusA = 0x0A, statusB = 0x0B, statusC = 0x0C, statusD = 0x0D
        static let bHour24: UInt8 = 0x02, bBinary: UInt8 = 0x04
    }

    public init(now: @escaping @Sendable () -> time_t = { time(nil) }) {
        self.now = now
    }

    /// `port` is the absolute port (0x70 or 0x71). The index port is write-only (reads 0xFF).
    public func read(port: UInt16) -> UInt8 {
        guard port == CMOS.dataPort else { return 0xFF }
        return state.withLock { s in
            let index = Int(s.index)
            switch index {
            case Register.seconds, Register.minutes, Register.hours, Register.weekday,
                 Register.day, Register.month, Register.year, Register.century:
                return clockRegister(index, &s)
            case Register.statusA:
                _ = currentTime(&s, fresh: true)
                return s.ram[index] & 0x7F
            case Register.statusC:
                return 0
            case Register.statusD:
                return 0x80
            default:
                return s.ram[index]
            }
        }
    }

    public func write(port: UInt16, value: UInt8) {
        state.withLock { s in
            switch port {
            case CMOS.indexPort:
                s.index = value & 0x7F
            case CMOS.dataPort:
                switch Int(s.index) {
                case Register.seconds, Register.minutes, Register.hours, Register.weekday,
                     Register.day, Register.month, Register.year, Register.century,
                     Register.statusC, Register.statusD:
                    break   // the clock follows the host; C and D are read-only
                case Register.statusA:
                    s.ram[Register.statusA] = value & 0x7F
                default:
                    s.ram[Int(s.index)] = value
                }
            default:
                break
            }
        }
    }

    /// The UTC time to report: resampled when `fresh` and the second has changed, or when the
    /// sample is more than a second old.
    private func currentTime(_ s: inout State, fresh: Bool) -> ClockSample {
        let t = now()
        let age = t &- s.sampleTime
        if let sample = s.sample, age == 0 || (!fresh && age == 1) {
            return sample
        }
        var seconds = t
        var broken = tm()
        gmtime_r(&seconds, &broken)
        let sample = ClockSample(second: Int(broken.tm_sec), minute: Int(broken.tm_min),
                                 hour: Int(broken.tm_hour), weekday: Int(broken.tm_wday) + 1,
                                 day: Int(broken.tm_mday), month: Int(broken.tm_mon) + 1,
                                 year: Int(broken.tm_year) + 1900)
        s.sampleTime = t
        s.sample = sample
        return sample
    }

    private func clockRegister(_ index: Int, _ s: inout State) -> UInt8 {
        let time = currentTime(&s, fresh: index == Register.seconds)
        let b = s.ram[Register.statusB]
        var pm = false
        let value: Int
        switch index {
        case Register.seconds: value = time.second
        case Register.minutes: value = time.minute
        case Register.hours:
            if b & Register.bHour24 != 0 {
                value = time.hour
            } else {
                pm = time.hour >= 12
                value = time.hour % 12 == 0 ? 12 : time.hour % 12
            }
        case Register.weekday: value = time.weekday
        case Register.day: value = time.day
        case Register.month: value = time.month
        case Register.year: value = time.year % 100
        default: value = time.year / 100 % 100
        }
        let encoded = b & Register.bBinary != 0 ? UInt8(value) : CMOS.bcd(value)
        return pm ? encoded | 0x80 : encoded
    }

    /// Two-digit packed BCD of 0...99.
    static func bcd(_ value: Int) -> UInt8 {
        UInt8((value / 10) << 4 | value % 10)
    }
}
