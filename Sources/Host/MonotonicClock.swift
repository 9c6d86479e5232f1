import Glibc

/// Seconds on CLOCK_MONOTONIC: the one clock svm measures durations, deadlines and
/// timings with (never the wall clock, which the user or NTP may move).
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
