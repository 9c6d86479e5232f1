import Foundation
import Glibc
import XCTest

/// Volumes (copied back, and live) and `--tty`, through the real binary: one boot each.
extension SVMRunTests {
    /// The guest has only the program and its libraries, so the work is done by the static
    /// busybox that scripts/setup installs (busybox-static) for the guest initramfs anyway.
    static let busybox = "/bin/busybox"

    /// One run: in the read-write volume the program creates, changes and deletes files
    /// and directories, and plants symlinks to a host directory outside the volume (one
    /// replacing a copied-in directory) and writes through them in the guest; it also
    /// tries the read-only volume. Afterwards the rw volume on the host is what the guest
    /// had, the ro volume and the outside directory are unchanged, and svm left nothing.
    func testReadWriteVolumeComesBackReadOnlyDoesNotAndSymlinksStayInside() throws {
        try requireGuest()
        try XCTSkipUnless(access(Self.busybox, X_OK) == 0, "needs \(Self.busybox) (apt-get install busybox-static)")
        let rw = tmpdir + "/rw", ro = tmpdir + "/ro", outside = tmpdir + "/outside"
        mustRun(["/bin/mkdir", "-p", rw + "/sub", rw + "/keepdir", rw + "/movedir", ro, outside])
        mustRun(["/bin/sh", "-c", """
            echo keep > \(rw)/keep.txt; echo old > \(rw)/mod.txt; echo bye > \(rw)/del.txt
            echo x > \(rw)/sub/gone.txt; echo ro > \(ro)/r.txt; echo secret > \(outside)/target.txt
            echo tomove > \(rw)/tomove.txt; echo inner > \(rw)/movedir/inner.txt
            chmod 777 \(outside) \(outside)/target.txt
            """])
        let snapshot = "cd \(tmpdir) && find ro outside | sort && cat ro/r.txt outside/target.txt && ls -lA ro outside | grep -v '^total'"
        let before = hostCommand(["/bin/sh", "-c", snapshot]).output
        var keptBefore = stat()
        XCTAssertEqual(lstat(rw + "/keep.txt", &keptBefore), 0)

        let bb = Self.busybox
        let script = """
        set -e
        echo new > /data/new.txt
        echo changed > /data/mod.txt
        chmod 600 /data/mod.txt
        \(bb) rm /data/del.txt
        \(bb) rm -r /data/sub
        \(bb) mkdir -p /data/d1/d2
        echo deep > /data/d1/d2/f
        \(bb) chmod 4755 /data/d1/d2/f
        \(bb) mkdir -p \(outside)
        \(bb) ln -s \(outside) /data/evil
        echo pwned > /data/evil/target.txt
        echo pwned > /data/evil/planted.txt
        \(bb) ln -s \(outside)/target.txt /data/evil2
        echo pwned > /data/evil2
        \(bb) mv /data/tomove.txt /data/moved.txt
        \(bb) mv /data/movedir /data/renamed
        \(bb) rm -r /data/keepdir
        \(bb) ln -s \(outside) /data/keepdir
        if (echo x > /ro/x) 2>/dev/null; then echo ro-writable; else echo ro-denied; fi
        echo done
        """
        // The copy path (what a user other than root gets); live shares are tested below.
        let r = try svmRun(["--copy-volumes", "--volume", "\(rw):/data", "--volume", "\(ro):/ro:ro", "--", bb, "sh", "-c", script])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "ro-denied\ndone\n")
        XCTAssertEqual(r.err, "")

        func read(_ path: String) -> String? {
            let fd = open(path, O_RDONLY | O_NOFOLLOW)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = Glibc.read(fd, &buf, buf.count)
            return n >= 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
        }
        func mode(_ path: String) -> mode_t {
            var st = stat()
            return lstat(path, &st) == 0 ? st.st_mode : 0
        }
        func link(_ path: String) -> String? {
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink(path, &buf, buf.count - 1)
            return n >= 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
        }
        XCTAssertEqual(read(rw + "/new.txt"), "new\n")
        XCTAssertEqual(read(rw + "/mod.txt"), "changed\n")
        XCTAssertEqual(mode(rw + "/mod.txt") & 0o7777, 0o600)
        XCTAssertEqual(read(rw + "/keep.txt"), "keep\n")
        var keptAfter = stat()
        XCTAssertEqual(lstat(rw + "/keep.txt", &keptAfter), 0)
        XCTAssertEqual(keptAfter.st_ino, keptBefore.st_ino, "an untouched file is left in place")
        XCTAssertEqual(read(rw + "/moved.txt"), "tomove\n", "a renamed file comes back with its data")
        XCTAssertEqual(read(rw + "/renamed/inner.txt"), "inner\n", "so do the files of a renamed directory")
        XCTAssertEqual(read(rw + "/d1/d2/f"), "deep\n")
        XCTAssertEqual(mode(rw + "/d1/d2/f") & 0o7777, 0o755, "setuid is dropped")
        XCTAssertEqual(access(rw + "/del.txt", F_OK), -1)
        XCTAssertEqual(access(rw + "/sub", F_OK), -1)
        XCTAssertEqual(link(rw + "/evil"), outside, "symlinks come back as symlinks")
        XCTAssertEqual(link(rw + "/evil2"), outside + "/target.txt")
        XCTAssertEqual(link(rw + "/keepdir"), outside)
        let after = hostCommand(["/bin/sh", "-c", snapshot]).output
        XCTAssertEqual(after, before, "the read-only volume or the directory outside the volume changed")
        let left = hostCommand(["/bin/sh", "-c", "LC_ALL=C /bin/ls -A \(rw)"]).output
        XCTAssertEqual(left, "d1\nevil\nevil2\nkeep.txt\nkeepdir\nmod.txt\nmoved.txt\nnew.txt\nrenamed\n")
        assertNothingLeftBehind()
    }

    /// `svm run --tty` under a pty made by python3: the program sees a terminal of the
    /// pty's size, typed input and a resize reach it, its exit status comes back, and the
    /// terminal's settings are the same afterwards (svm made it raw meanwhile).
    func testTTYGivesTheProgramATerminalAndRestoresOurs() throws {
        try requireGuest()
        try XCTSkipUnless(access("/usr/bin/python3", X_OK) == 0, "needs python3 for its pty module")
        try XCTSkipUnless(access(Self.busybox, X_OK) == 0, "needs \(Self.busybox) (apt-get install busybox-static)")
        let scratch = tmpdir + "/svm-tmp"
        mkdir(scratch, 0o700)
        let driver = tmpdir + "/pty-driver.py"
        let python = """
        import fcntl, json, os, pty, select, signal, struct, subprocess, sys, termios, time
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        def stty():
            return subprocess.run(["stty", "-g"], stdin=slave, capture_output=True, text=True).stdout.strip()
        before = stty()
        env = dict(os.environ, TMPDIR=sys.argv[2])
        bb = "\(Self.busybox)"
        # The resize (a W frame) and the typed line travel apart: the program waits up to
        # 30 s for the new size instead of the driver guessing how long it takes.
        script = (bb + " tty; test -t 0 && echo TTY-OK; echo size: $(" + bb + " stty size); read line; "
                  + "echo got:$line; i=0; while [ \\"$(" + bb + " stty size)\\" = \\"33 101\\" ] && [ $i -lt 300 ]; do "
                  + bb + " usleep 100000; i=$((i+1)); done; echo size: $(" + bb + " stty size); exit 3")
        cmd = [sys.argv[1], "run", "--tty", "--", bb, "sh", "-c", script]
        p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env)
        out = b""
        typed = False
        deadline = time.time() + 600
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            elif p.poll() is not None:
                break
            if not typed and b"size: 33 101" in out:
                # Resize (svm is not in the pty's session, so signal it as a shell would),
                # then type a line at once: the program waits for the size to change.
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
                p.send_signal(signal.SIGWINCH)
                os.write(master, b"hello\\r")
                typed = True
        if p.poll() is None:
            p.kill()
        status = p.wait()
        after = stty()
        # The other ways out restore the terminal too: a signal to svm, and --timeout
        # (both within seconds, during the guest's boot).
        q = subprocess.Popen([sys.argv[1], "run", "--tty", "--", bb, "sleep", "1000"],
                             stdin=slave, stdout=slave, stderr=slave, env=env)
        time.sleep(3)
        q.send_signal(signal.SIGTERM)
        signalled = q.wait(timeout=60)
        after_signal = stty()
        timed_out = subprocess.run([sys.argv[1], "run", "--tty", "--timeout", "3", "--", bb, "sleep", "1000"],
                                   stdin=slave, stdout=slave, stderr=slave, env=env, timeout=60).returncode
        after_timeout = stty()
        # As a shell would start it: svm leads the pty's foreground process group, so ^C
        # typed during the boot (terminal not raw yet) is a SIGINT to svm: 130. Then a run
        # whose program is up (raw terminal, ^C belongs to the program) left with Ctrl-A x.
        def controlled():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        c = subprocess.Popen([sys.argv[1], "run", "--tty", "--", bb, "sleep", "1000"], stdin=slave, stdout=slave,
                             stderr=slave, env=env, start_new_session=True, preexec_fn=controlled)
        time.sleep(3)
        os.write(master, b"\\x03")
        interrupted_in_boot = c.wait(timeout=60)
        after_boot_interrupt = stty()
        e = subprocess.Popen([sys.argv[1], "run", "--tty", "--", bb, "sh", "-c", "echo UP; exec " + bb + " sleep 1000"],
                             stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, preexec_fn=controlled)
        seen = b""
        deadline = time.time() + 600
        while b"UP" not in seen and time.time() < deadline and e.poll() is None:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                seen += os.read(master, 65536)
        time.sleep(1)
        # Only Ctrl-A x can end this run within the wait below: the program sleeps 1000 s.
        os.write(master, b"\\x01x")
        escaped = e.wait(timeout=60)
        after_escape = stty()
        print(json.dumps({"status": status, "out": out.decode("utf-8", "replace"), "before": before, "after": after,
                          "signalled": signalled, "after_signal": after_signal,
                          "timed_out": timed_out, "after_timeout": after_timeout,
                          "interrupted_in_boot": interrupted_in_boot, "after_boot_interrupt": after_boot_interrupt,
                          "escaped": escaped, "after_escape": after_escape}))
        """
        mustRun(["/bin/sh", "-c", "cat > \(driver) <<'EOF'\n\(python)\nEOF"])
        let r = hostCommand(["/usr/bin/python3", driver, SVMProcess.binary, scratch])
        XCTAssertEqual(r.status, 0, r.output)
        guard let data = r.output.data(using: .utf8),
              let result = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return XCTFail("driver output: \(r.output)")
        }
        let out = result["out"] as? String ?? ""
        XCTAssertEqual(result["status"] as? Int, 3, out)
        XCTAssertTrue(out.contains("TTY-OK"), out)
        XCTAssertTrue(out.contains("/dev/hvc0"), out)
        XCTAssertFalse(out.contains("not a tty"), out)
        XCTAssertTrue(out.contains("size: 33 101"), "the guest terminal starts with the host's size: \(out)")
        XCTAssertTrue(out.contains("hello\r\n"), "the guest terminal echoes what is typed: \(out)")
        XCTAssertTrue(out.contains("got:hello"), "typed input reaches the program: \(out)")
        XCTAssertTrue(out.contains("size: 40 120"), "a resize reaches the guest terminal: \(out)")
        XCTAssertEqual(result["before"] as? String, result["after"] as? String, "terminal mode not restored")
        XCTAssertEqual(result["signalled"] as? Int, 143)
        XCTAssertEqual(result["before"] as? String, result["after_signal"] as? String, "not restored after SIGTERM")
        XCTAssertEqual(result["timed_out"] as? Int, 124)
        XCTAssertEqual(result["before"] as? String, result["after_timeout"] as? String, "not restored after --timeout")
        XCTAssertEqual(result["interrupted_in_boot"] as? Int, 130, "^C during the boot interrupts svm")
        XCTAssertEqual(result["before"] as? String, result["after_boot_interrupt"] as? String, "not restored after ^C")
        XCTAssertEqual(result["escaped"] as? Int, 130, "Ctrl-A x stops the VM as ^C to svm would")
        XCTAssertEqual(result["before"] as? String, result["after_escape"] as? String, "not restored after Ctrl-A x")
        assertNothingLeftBehind()
    }
}
