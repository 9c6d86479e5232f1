import Sandbox

/// After the program ended: checks the archive the guest sent for the read-write volumes
/// and applies it to their host directories (see CopyOutApplier). Returns nil when all
/// went through (skipped entries are reported through `note`), else the one line that
/// says why the volumes were not, or only partly, updated.
enum VolumeCopyOut {
    static func apply(collector: CopyOutCollector, volumes: [RunRequest.Volume], copiedIn: [Set<String>],
                      guestFailure: String?, note: (String) -> Void) -> String? {
        let unchanged = "host directories unchanged"
        if let failure = guestFailure { return "volume copy-out failed in the guest (\(failure)); \(unchanged)" }
        if let failure = collector.failure { return "volume copy-out refused: \(failure); \(unchanged)" }
        let writable = Set(volumes.indices.filter { !volumes[$0].readOnly })
        let archive: CopyOutArchive
        do { archive = try CopyOutArchive(fd: collector.fd, volumes: writable) } catch {
            return "volume copy-out refused: \(error); \(unchanged)"
        }
        if archive.skipped > 0 { note("copy-out: skipped \(archive.skipped) entries whose names are not UTF-8") }
        var applier = CopyOutApplier(archiveFD: collector.fd)
        for index in writable.sorted() {
            let entries = archive.entries.filter { $0.volume == index }
            do {
                try applier.apply(entries, copiedIn: copiedIn[index], hostRoot: volumes[index].hostPath)
            } catch {
                return "volume copy-out to \(volumes[index].hostPath) failed part way: \(error)"
            }
        }
        for line in applier.notes { note("copy-out: \(line)") }
        return nil
    }
}
