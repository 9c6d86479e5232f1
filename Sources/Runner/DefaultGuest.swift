import Glibc

/// Where the project's scripts put the guest kernel, initramfs and `svm run` init they
/// build (scripts/build-guest-kernel, scripts/build-initramfs and scripts/build-init use
/// the same rule). `svm boot` and `svm run` both look here when no path is given.
public enum DefaultGuest {
    public static func cacheDirectory(environment: [String: String]) -> String {
        if let d = environment["SVM_CACHE_DIR"], !d.isEmpty { return d }
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { return x + "/svm" }
        return (environment["HOME"] ?? "/root") + "/.cache/svm"
    }

    public static func kernel(environment: [String: String]) -> String? {
        let dir = cacheDirectory(environment: environment) + "/default"
        // vmlinux first: the PVH entry skips the bzImage's decompression, which is slow
        // where guest kernel code is emulated.
        for name in ["vmlinux", "bzImage"] where access(dir + "/" + name, R_OK) == 0 {
            return dir + "/" + name
        }
        return nil
    }

    public static func initramfs(environment: [String: String]) -> String? {
        let path = cacheDirectory(environment: environment) + "/default/initramfs.cpio"
        return access(path, R_OK) == 0 ? path : nil
    }

    /// The static guest init of `svm run` (firmware/init/svm-init.c, built by scripts/build-init).
    public static func initBinary(environment: [String: String]) -> String? {
        let path = cacheDirectory(environment: environment) + "/default/svm-init"
        return access(path, R_OK) == 0 ? path : nil
    }

    public static var processEnvironment: [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                env[String(s[..<eq])] = String(s[s.index(after: eq)...])
            }
            p += 1
        }
        return env
    }
}
