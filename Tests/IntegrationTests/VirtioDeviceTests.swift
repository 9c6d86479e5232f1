import Glibc
import XCTest

/// One Linux boot exercising every virtio device through the real svm binary:
/// virtio-blk (ext4 read, write read back on the host, a read-only disk refusing writes),
/// virtio-net (a TAP in a network namespace this test makes: ping and a TCP transfer with
/// checksums on both ends), virtio-rng (/dev/hwrng) and virtio-console (the whole session
/// runs on hvc0). Needs /dev/kvm and root (for the namespace and TAP).
final class VirtioDeviceTests: XCTestCase {
    let transferBytes = 4 << 20

    func testBlockNetRngAndConsoleInOneBoot() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        try XCTSkipUnless(getuid() == 0, "needs root for a network namespace and a TAP device")
        let kernel = try LinuxBootTests.artifact("vmlinux")
        let initrd = try LinuxBootTests.artifact("initramfs.cpio")

        // Disks: an ext4 image holding a file with a known checksum, and a read-only one.
        let dir = "/tmp/svm-virtio-test-\(getpid())"
        mustRun(["mkdir", "-p", "\(dir)/rw", "\(dir)/ro"])
        defer { hostCommand(["rm", "-rf", dir]) }
        mustRun(["dd", "if=/dev/urandom", "of=\(dir)/rw/data.bin", "bs=4096", "count=64", "status=none"])
        let sum = hostCommand(["sha256sum", "\(dir)/rw/data.bin"]).output.prefix(64)
        // What the guest sends over TCP comes from the disk too: /dev/urandom in the guest
        // runs in its (emulated) kernel, about 12 KiB/s here.
        mustRun(["dd", "if=/dev/urandom", "of=\(dir)/rw/tcp.bin", "bs=\(transferBytes)", "count=1", "status=none"])
        let tcpSum = hostCommand(["sha256sum", "\(dir)/rw/tcp.bin"]).output.prefix(64)
        mustRun(["sh", "-c", "echo read-only-content > \(dir)/ro/hello.txt"])
        mustRun(["truncate", "-s", "64M", "\(dir)/rw.img"])
        mustRun(["mke2fs", "-q", "-t", "ext4", "-d", "\(dir)/rw", "\(dir)/rw.img"])
        mustRun(["truncate", "-s", "16M", "\(dir)/ro.img"])
        mustRun(["mke2fs", "-q", "-t", "ext4", "-d", "\(dir)/ro", "\(dir)/ro.img"])
        let roBefore = hostCommand(["sha256sum", "\(dir)/ro.img"]).output

        // Network: a namespace with a TAP addressed 10.213.0.1/24; svm runs inside it.
        let ns = "svmtest\(getpid())"
        let tap = "svmtap\(getpid() % 100_000)"
        mustRun(["ip", "netns", "add", ns])
        defer { hostCommand(["ip", "netns", "del", ns]) }
        mustRun(["ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr"])
        mustRun(["ip", "-n", ns, "addr", "add", "10.213.0.1/24", "dev", tap])
        mustRun(["ip", "-n", ns, "link", "set", tap, "up"])
        mustRun(["ip", "-n", ns, "link", "set", "lo", "up"])

        // The host end of the TCP transfer: counts and hashes what arrives.
        let resultFile = "\(dir)/tcp-result"
        let listener = """
        import socket, hashlib, time
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("10.213.0.1", 5555)); s.listen(1); s.settimeout(600)
        c, _ = s.accept(); c.settimeout(300); h = hashlib.sha256(); n = 0; start = time.monotonic()
        while n < \(transferBytes):
            d = c.recv(65536)
            if not d: break
            h.update(d); n += len(d)
        open("\(resultFile)", "w").write(h.hexdigest() + " " + str(n) + " " + str(time.monotonic() - start))
        """
        let listenerProcess = try SVMProcess(arguments: [], prefix: ["ip", "netns", "exec", ns, "python3", "-c", listener, "--"])
        _ = listenerProcess

        let svm = try SVMProcess(
            arguments: ["boot", "--kernel", kernel, "--initrd", initrd, "--mem", "256M",
                        "--disk", "\(dir)/rw.img", "--disk", "\(dir)/ro.img,readonly",
                        "--net", "tap=\(tap),mac=52:54:00:12:34:56", "--console", "virtio"],
            prefix: ["ip", "netns", "exec", ns])
        guard svm.waitForLine(containing: "svm-init: ready", timeout: LinuxBootTests.bootTimeout) != nil else {
            return XCTFail("no init line; stdout tail:\n\(svm.stdoutText.suffix(3000))\nstderr:\n\(svm.stderrText)")
        }
        // `S''UM` in the typed line, `SUM` in the output: the echo of the command never matches.
        let script = [
            "mkdir -p /mnt /ro",
            "mount /dev/vda /mnt && echo S''UM $(sha256sum /mnt/data.bin)",
            "echo written-by-guest > /mnt/new.txt && sync && umount /mnt && echo W''ROTE",
            "mount -o ro /dev/vdb /ro && echo R''O $(cat /ro/hello.txt)",
            "dd if=/dev/zero of=/dev/vdb bs=512 count=1 oflag=direct 2>/dev/null && echo R''OWRITE-ALLOWED || echo R''OWRITE-REFUSED",
            "echo R''NG $(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \\n')",
            "echo M''AC $(cat /sys/class/net/eth0/address)",
            // The negotiated feature bits of the virtio-net device (device id 1), bit 0 first.
            "for d in /sys/bus/virtio/devices/*; do [ $(cat $d/device) = 0x0001 ] && echo F''EATURES $(cat $d/features); done",
            "ip link set eth0 up && ip addr add 10.213.0.2/24 dev eth0",
            "ping -c 2 -W 10 10.213.0.1 >/dev/null && echo P''ING-OK || echo P''ING-FAILED",
            "mount -o ro /dev/vda /mnt && echo T''X $(sha256sum /mnt/tcp.bin)",
            // dd writes 64 KiB at a time straight into the socket (nc -e hands it over), so the
            // guest can send TSO frames; `nc < file` writes 1 KiB at a time, a packet each.
            "nc 10.213.0.1 5555 -e dd if=/mnt/tcp.bin bs=65536 status=none; echo N''C-DONE",
        ]
        XCTAssertTrue(svm.waitForText(SVMProcess.shellPrompt, timeout: 120), "no shell prompt")
        for command in script { svm.send(command + "\n") }

        func field(_ tag: String, timeout: Double = 180) -> String? {
            guard let line = svm.waitForLine(containing: tag + " ", timeout: timeout) else { return nil }
            guard let r = line.range(of: tag + " ") else { return nil }
            return String(line[r.upperBound...].drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
        }
        XCTAssertEqual(field("SUM")?.prefix(64), sum, "checksum of the file read through virtio-blk")
        XCTAssertNotNil(svm.waitForLine(containing: "WROTE", timeout: 120))
        XCTAssertEqual(field("RO"), "read-only-content")
        XCTAssertNotNil(svm.waitForLine(containing: "ROWRITE-REFUSED", timeout: 120), svm.stdoutText.suffix(2000).description)
        let rng = field("RNG") ?? ""
        XCTAssertEqual(rng.count, 64, "32 bytes from /dev/hwrng: \(rng)")
        XCTAssertNotEqual(rng, String(repeating: "0", count: 64))
        XCTAssertEqual(field("MAC"), "52:54:00:12:34:56")
        // Offloads the host's TAP supports were offered and Linux took them all.
        let features = Array(field("FEATURES") ?? "")
        for (bit, name) in [(0, "CSUM"), (1, "GUEST_CSUM"), (7, "GUEST_TSO4"), (8, "GUEST_TSO6"),
                            (11, "HOST_TSO4"), (12, "HOST_TSO6"), (15, "MRG_RXBUF")] {
            XCTAssertEqual(features.count > bit ? features[bit] : "?", "1", "VIRTIO_NET_F_\(name) negotiated: \(String(features))")
        }
        XCTAssertNotNil(svm.waitForLine(containing: "PING-OK", timeout: 120), svm.stdoutText.suffix(2000).description)
        let sent = field("TX")?.prefix(64)
        XCTAssertEqual(sent, tcpSum, "the guest read the file to send intact")
        XCTAssertNotNil(svm.waitForLine(containing: "NC-DONE", timeout: 300), svm.stdoutText.suffix(2000).description)
        // nc's exit in the guest does not mean the host has read the last bytes: wait for the
        // listener's result before the guest (and its end of the connection) goes away.
        for _ in 0..<600 where access(resultFile, F_OK) != 0 { usleep(100_000) }

        svm.send("reboot -f\n")
        XCTAssertEqual(svm.waitForExit(timeout: 120), 0, svm.stderrText)

        // The host side of the transfer saw every byte, with the same checksum.
        let received = hostCommand(["cat", resultFile]).output.split(separator: " ")
        XCTAssertEqual(received.count, 3, "listener result: \(received)")
        if received.count == 3 {
            XCTAssertEqual(received[0], sent.map(Substring.init))
            XCTAssertEqual(Int(received[1]), transferBytes)
            // From accept to the last byte: the guest's TCP send path, for the record.
            if let seconds = Double(received[2]), seconds > 0 {
                print("virtio-net guest→host TCP: \(transferBytes) bytes in \(seconds) s, \(Int(Double(transferBytes) / seconds / 1024)) KiB/s")
            }
        }
        // The guest's write reached the image; the read-only image is byte-identical.
        XCTAssertEqual(hostCommand(["debugfs", "-R", "cat /new.txt", "\(dir)/rw.img"]).output
                        .split(separator: "\n").first(where: { $0.hasPrefix("written") }), "written-by-guest")
        XCTAssertEqual(hostCommand(["sha256sum", "\(dir)/ro.img"]).output, roBefore)
    }
}
