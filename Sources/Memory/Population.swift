import Glibc

/// Faults in guest RAM before the VM starts: the "allocated up front" promise. Two things
/// make it fast: transparent huge pages (asked for with MADV_HUGEPAGE: 512 times fewer
/// faults) and several threads, each populating its own slice (page zeroing is the cost
/// and it scales with cores). MADV_POPULATE_WRITE reports ENOMEM instead of letting the
/// OOM killer end svm later, so a VM that cannot have its memory does not start.
enum Population {
    static let madvPopulateWrite: Int32 = 23  // Linux 5.14; older kernels: EINVAL → touch pages
    /// Below this, one thread is fastest (thread start-up costs more than it saves).
    static let bytesPerThread: UInt64 = 256 << 20

    static func threadCount(for size: UInt64) -> Int {
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return max(1, min(cores, Int(size / bytesPerThread)))
    }

    /// Populates `[base, base+size)`; returns the errno of the first slice that failed, or 0.
    static func populate(_ base: UnsafeMutableRawPointer, size: UInt64) -> Int32 {
        let threads = threadCount(for: size)
        // Slices aligned to 2 MiB so no huge page is split between two threads.
        let align: UInt64 = 2 << 20
        let slice = ((size / UInt64(threads)) + align - 1) / align * align
        var jobs: [Slice] = []
        var offset: UInt64 = 0
        while offset < size {
            let length = min(slice, size - offset)
            jobs.append(Slice(start: base + Int(offset), length: Int(length)))
            offset += length
        }
        // The calling thread takes the first slice; the others get a thread each.
        var handles: [pthread_t] = []
        for job in jobs.dropFirst() {
            var handle: pthread_t = 0
            let box = Unmanaged.passRetained(job)
            if pthread_create(&handle, nil, { arg in
                let job = Unmanaged<Slice>.fromOpaque(arg!).takeRetainedValue()
                job.run()
                return nil
            }, box.toOpaque()) == 0 {
                handles.append(handle)
            } else {
                box.release()
                job.run()
            }
        }
        jobs[0].run()
        for h in handles { pthread_join(h, nil) }
        return jobs.first(where: { $0.error != 0 })?.error ?? 0
    }

    final class Slice: @unchecked Sendable {
        let start: UnsafeMutableRawPointer
        let length: Int
        var error: Int32 = 0

        init(start: UnsafeMutableRawPointer, length: Int) {
            self.start = start
            self.length = length
        }

        func run() {
            if madvise(start, length, madvPopulateWrite) == 0 { return }
            let e = errno
            guard e == EINVAL else {
                error = e
                return
            }
            // No MADV_POPULATE_WRITE: write to every page (faults it in, like MAP_POPULATE).
            var p = 0
            while p < length {
                (start + p).storeBytes(of: 0, as: UInt8.self)
                p += 4096
            }
        }
    }
}
