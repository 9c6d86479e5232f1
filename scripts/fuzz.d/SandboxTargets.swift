// What the guest's init sends back (Sources/Sandbox): control frames on /dev/hvc2, read by
// svm run and svm-runtime (Sources/Runner's ControlChannel feeds ControlFrameDecoder), and
// the copy-out archive of read-write volumes.
import CKVM
import Glibc
import Host
@testable import Sandbox

enum GuestFramesTarget {
    static let target = FuzzTarget(
        name: "guest-frames",
        covers: "ControlFrameDecoder + ExecFrames (the guest agent's frames): the same frames or error whether the bytes come whole or in pieces",
        seeds: { [
            [UInt8(ascii: "R"), 0, 0, 0, 0, UInt8(ascii: "X"), 5, 0, 0, 0, UInt8(ascii: "e"), 7, 0, 0, 0],
            [UInt8(ascii: "o"), 7, 0, 0, 0, 1, 0, 0, 0, 1, UInt8(ascii: "h"), UInt8(ascii: "i"),
             UInt8(ascii: "x"), 9, 0, 0, 0, 1, 0, 0, 0, UInt8(ascii: "s"), 9, 0, 0, 0],
            ControlFrame.encode(type: ControlFrame.failure, payload: Array("execve /prog: No such file".utf8)),
            ControlFrame.encode(type: ControlFrame.execFailure, payload: [2, 0, 0, 0] + Array("nope".utf8)),
        ] },
        run: { bytes in
            // The first byte chooses where the stream is cut: as reads from the console would.
            let cut = bytes.first.map { Int($0) } ?? 1
            let stream = Array(bytes.dropFirst())
            let small = 1 << 12  // a small limit too, so the length check is reached
            for limit in [ControlFrame.maxPayload, small] {
                var whole = ControlFrameDecoder(maxPayload: limit)
                let all = Result { try whole.feed(stream) }
                var pieces = ControlFrameDecoder(maxPayload: limit)
                var frames: [GuestFrame] = []
                var failure: ControlFrameError?
                var i = 0
                let step = max(1, cut % 23)
                while i < stream.count {
                    let end = min(stream.count, i + step)
                    do { frames += try pieces.feed(stream[i..<end]) } catch {
                        failure = error as? ControlFrameError
                        break
                    }
                    i = end
                }
                switch all {
                case let .success(f):
                    fuzzCheck(failure == nil && f == frames, "whole \(f) but in pieces \(frames) / \(String(describing: failure))")
                    fuzzCheck(whole.bufferedCount == pieces.bufferedCount && whole.bufferedCount < ControlFrame.headerSize + limit,
                              "buffers \(whole.bufferedCount) vs \(pieces.bufferedCount) bytes")
                case let .failure(e):
                    fuzzCheck(failure == (e as? ControlFrameError), "whole: \(e), in pieces: \(String(describing: failure))")
                    fuzzCheck(!"\(e)".isEmpty, "an error without a message")
                    // After an error the stream stays refused.
                    fuzzCheck((try? whole.feed([UInt8(ascii: "R"), 0, 0, 0, 0])) == nil, "decoder accepted bytes after an error")
                }
                for case let .execOutput(_, _, data) in frames {
                    fuzzCheck(data.count <= limit, "exec output of \(data.count) bytes beyond the limit \(limit)")
                }
            }
        })
}

enum CopyOutTarget {
    /// A volume and a sibling the archive must never reach, per fuzzing process.
    nonisolated(unsafe) static var base = ""

    static let target = FuzzTarget(
        name: "copyout",
        covers: "CopyOutArchive (newc cpio from the guest) and CopyOutApplier: entries stay inside the volume, nothing outside it changes",
        seeds: {
            var a = NewcArchive()
            a.directory("0/d")
            a.file("0/d/f", "data\n")
            a.symlink("0/d/up", to: "../../outside")
            a.file("0/d/up/target.txt", "pwned\n")
            a.entry("0/same", mode: 0o100644, check: 1)
            a.file("1/x", "other volume\n")
            a.trailer()
            var b = NewcArchive()
            b.symlink("0/evil", to: "/tmp")
            b.file("0/evil/x", "pwned\n")
            b.trailer()
            return [a.bytes, b.bytes]
        },
        run: { bytes in
            if base.isEmpty { base = makeSandbox() }
            let fd = ckvm_memfd_create("svm-fuzz-copyout")
            fuzzCheck(fd >= 0, "memfd_create: errno \(errno)")
            defer { close(fd) }
            let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            fuzzCheck(written == bytes.count, "pwrite to the memfd")
            guard let archive = try? CopyOutArchive(fd: fd, volumes: [0, 1]) else { return }
            for e in archive.entries {
                fuzzCheck([0, 1].contains(e.volume), "entry in volume \(e.volume)")
                fuzzCheck(!e.components.isEmpty, "entry without a path")
                for c in e.components {
                    fuzzCheck(!c.isEmpty && c != "." && c != ".." && !c.utf8.contains(UInt8(ascii: "/")) && !c.utf8.contains(0),
                              "component \(c.debugDescription) of \(e.path.debugDescription)")
                }
                fuzzCheck(e.permissions & ~0o1777 == 0, "permissions \(String(e.permissions, radix: 8))")
                if case let .file(offset, size) = e.kind {
                    fuzzCheck(offset <= UInt64(bytes.count) && size <= UInt64(bytes.count) - offset, "data outside the archive")
                }
            }
            var applier = CopyOutApplier(archiveFD: fd)
            try? applier.apply(archive.entries.filter { $0.volume == 0 }, copiedIn: ["d", "d/f", "gone"], hostRoot: base + "/vol")
            fuzzCheck(listing(base + "/outside") == ["target.txt"] && contents(base + "/outside/target.txt") == "secret\n",
                      "the archive changed a directory outside the volume")
            fuzzCheck(listing(base) == ["outside", "vol"], "the archive made \(listing(base)) next to the volume")
            removeContents(base + "/vol")
        })

    static func makeSandbox() -> String {
        var template = Array("/tmp/svm-fuzz-copyout-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("mkdtemp: errno \(errno)")
        }
        let dir = String(cString: UnsafePointer(made))
        mkdir(dir + "/vol", 0o755)
        mkdir(dir + "/outside", 0o755)
        let fd = open(dir + "/outside/target.txt", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        _ = Array("secret\n".utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        atexit { CopyOutTarget.removeContents(CopyOutTarget.base); rmdir(CopyOutTarget.base) }
        return dir
    }

    static func listing(_ path: String) -> [String] {
        guard let d = opendir(path) else { return ["<unreadable>"] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func contents(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return "<unreadable>" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, buffer.count)
        return String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self)
    }

    /// rm -r of what is inside `path`, without following symlinks.
    static func removeContents(_ path: String) {
        chmod(path, 0o700)
        for name in listing(path) where name != "<unreadable>" {
            let child = path + "/" + name
            var st = stat()
            guard lstat(child, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                removeContents(child)
                rmdir(child)
            } else {
                unlink(child)
            }
        }
    }
}

/// Writes newc cpio entries as svm-init does (names "VOLUME/PATH").
struct NewcArchive {
    var bytes: [UInt8] = []

    mutating func entry(_ name: String, mode: UInt32, data: [UInt8] = [], check: UInt32 = 0) {
        let nameBytes = Array(name.utf8) + [0]
        let fields: [UInt32] = [1, mode, 0, 0, 1, 0, UInt32(data.count), 0, 0, 0, 0, UInt32(nameBytes.count), check]
        bytes += Array("070701".utf8)
        let hex = Array("0123456789ABCDEF".utf8)
        for f in fields { for shift in stride(from: 28, through: 0, by: -4) { bytes.append(hex[Int(f >> UInt32(shift) & 0xF)]) } }
        bytes += nameBytes
        pad()
        bytes += data
        pad()
    }
    mutating func file(_ name: String, _ text: String) { entry(name, mode: 0o100644, data: Array(text.utf8)) }
    mutating func directory(_ name: String) { entry(name, mode: 0o040755) }
    mutating func symlink(_ name: String, to target: String) { entry(name, mode: 0o120777, data: Array(target.utf8)) }
    mutating func trailer() { entry("TRAILER!!!", mode: 0) }
    private mutating func pad() { while bytes.count % 4 != 0 { bytes.append(0) } }
}
