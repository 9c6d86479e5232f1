/// The kernel command line svm hands the guest: what svm needs for the machine it
/// emulates, then the user's part (later parameters win, so the user can override).
public enum GuestCommandLine {
    /// Always: reboot through the i8042 (the only reset svm emulates), reboot at once on
    /// panic (svm reports the panic itself), no ACPI (svm provides an MP table instead), no
    /// PCI probing (no PCI devices yet), no port-0x80 delays, no PS/2 keyboard or mouse.
    public static let base = "reboot=k panic=-1 acpi=off pci=off io_delay=none i8042.nokbd i8042.noaux"

    /// On hosts whose KVM emulates guest kernel code: hide features its emulator cannot
    /// execute, skip the cpuidle poll loop, turn off KVM paravirtual features (with them
    /// a 2-vCPU guest hangs during SMP bring-up there), and let TCP build big TSO frames
    /// (`tcpSegmentsPerFrame`).
    public static let emulatingHost =
        "noxsave clearcpuid=\(hiddenFeatures) cpuidle.off=1 nopv sysctl.net.ipv4.tcp_min_tso_segs=\(tcpSegmentsPerFrame)"

    /// TCP sizes a TSO frame to about 1 ms of its pacing rate, at least
    /// `tcp_min_tso_segs` (2) segments. An emulated guest kernel sends slowly, so its rate
    /// stays low and its frames stay at 2 segments, while its cost is per frame: measured
    /// over virtio-net with offloads, 118 KiB/s guest→host with the default (2.8 KB frames)
    /// and 514 KiB/s with this (25 KB frames on average; 44 segments is the 64 KiB TSO limit).
    public static let tcpSegmentsPerFrame = 44

    /// Linux 6.1 reads at most 127 characters of `clearcpuid=`, so this list is ordered by
    /// what matters: instructions the emulator cannot execute in kernel code (smap's
    /// clac/stac, xsave, popcnt, fsgsbase, rdrand/rdseed, rdpid, pku), string copies done a
    /// byte per emulated iteration (erms/fsrm make memcpy use `rep movsb`), then the rest.
    /// CPUID hides the same features and more (see CPUIDSetup).
    public static let hiddenFeatures =
        "smap,xsave,popcnt,fsgsbase,rdrand,rdseed,erms,fsrm,rdpid,pku,umip,x2apic,tsc_deadline_timer,invpcid,pcid,rdtscp,abm,bmi1,bmi2"

    public static func build(user: String, emulatingHost: Bool, devices: [String] = []) -> String {
        var parts = [base]
        parts += devices
        if emulatingHost { parts.append(Self.emulatingHost) }
        let trimmed = user.trimmingWhitespace()
        if !trimmed.isEmpty { parts.append(trimmed) }
        return parts.joined(separator: " ")
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }),
              let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
