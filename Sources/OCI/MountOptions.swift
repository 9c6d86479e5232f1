/// OCI mount options (mount(8) words) as MS_* flags plus the file-system data string,
/// the way runc splits them. Propagation words and runc's own extensions mean nothing
/// inside a VM and are dropped; `key=value` words are the file system's options.
public enum MountOptions {
    public static let readOnly: UInt32 = 1        // MS_RDONLY
    public static let noSUID: UInt32 = 2          // MS_NOSUID
    public static let noDev: UInt32 = 4           // MS_NODEV
    public static let noExec: UInt32 = 8          // MS_NOEXEC
    public static let synchronous: UInt32 = 16    // MS_SYNCHRONOUS
    public static let mandatoryLock: UInt32 = 64  // MS_MANDLOCK
    public static let dirSync: UInt32 = 128       // MS_DIRSYNC
    public static let noAtime: UInt32 = 1024      // MS_NOATIME
    public static let noDirAtime: UInt32 = 2048   // MS_NODIRATIME
    public static let relatime: UInt32 = 1 << 21  // MS_RELATIME
    public static let strictAtime: UInt32 = 1 << 24 // MS_STRICTATIME

    /// Words that set a flag, and words that clear one.
    public static let setting: [String: UInt32] = [
        "ro": readOnly, "nosuid": noSUID, "nodev": noDev, "noexec": noExec, "sync": synchronous,
        "mand": mandatoryLock, "dirsync": dirSync, "noatime": noAtime, "nodiratime": noDirAtime,
        "relatime": relatime, "strictatime": strictAtime,
    ]
    public static let clearing: [String: UInt32] = [
        "rw": readOnly, "suid": noSUID, "dev": noDev, "exec": noExec, "async": synchronous,
        "nomand": mandatoryLock, "atime": noAtime, "diratime": noDirAtime, "norelatime": relatime,
        "nostrictatime": strictAtime,
    ]
    /// Meaningless in the guest: propagation (the guest's mounts reach no other
    /// namespace), bind itself (the mount kind says it), SELinux relabelling and runc's
    /// extensions (tmpcopyup: podman's /run and /tmp start empty in the guest, as they
    /// would from a fresh image).
    public static let ignored: Set<String> = [
        "bind", "rbind", "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
        "runbindable", "defaults", "remount", "tmpcopyup", "notmpcopyup", "copy-symlink", "z", "Z", "U",
        "idmap", "ridmap", "nosymfollow", "loud", "silent", "_netdev", "auto", "noauto", "user", "nouser",
    ]

    public struct Parsed: Equatable, Sendable {
        public var flags: UInt32 = 0
        public var data: [String] = []
        public var isBind = false
        public var readOnly: Bool { flags & MountOptions.readOnly != 0 }
        public var dataString: String { data.joined(separator: ",") }
    }

    public static func parse(_ options: [String]) -> Parsed {
        var p = Parsed()
        for word in options {
            if let f = setting[word] { p.flags |= f }
            else if let f = clearing[word] { p.flags &= ~f }
            else if word == "bind" || word == "rbind" { p.isBind = true }
            else if ignored.contains(word) { continue }
            else if !word.isEmpty { p.data.append(word) }
        }
        return p
    }
}
