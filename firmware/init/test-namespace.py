#!/usr/bin/env python3
"""Runs the real (not host-test) svm-init as PID 1 of a pid+mount namespace, chrooted into
a small initramfs-like tree, with pty slaves bind-mounted where the hvc consoles would be
(built with -DHVC='"/hvc/"'). Checks mounts, volumes (ro and rw), the identity change,
the created workdir, raw stdin (a ^C byte passes through), tty mode, F frames, the stop
frame (SIGTERM, a trap, SIGKILL after the grace period) and that the reboot ends the run.
Needs root, unshare, gcc and busybox-static; not run by swift test.
"""
import os, select, shutil, struct, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
busybox = "/bin/busybox"


def s(x):
    b = x.encode()
    return struct.pack("<I", len(b)) + b


def job(argv, env=(), workdir="/", uid=65534, gid=65534, flags=0, rows=0, cols=0, vols=()):
    out = b"SVMJ" + struct.pack("<IIIIII", 1, flags, uid, gid, rows, cols)
    out += struct.pack("<I", len(argv)) + b"".join(s(a) for a in argv)
    out += struct.pack("<I", len(env)) + b"".join(s(e) for e in env)
    out += s(workdir) + struct.pack("<I", len(vols))
    for p, ro in vols:
        out += s(p) + struct.pack("<I", 1 if ro else 0)
    return out


def frame(t, payload=b""):
    return t + struct.pack("<I", len(payload)) + payload


def run(tmp, init, jobbytes, stdin_frames=b"", after=None):
    """Sends stdin_frames after R, and with `after` only once the program has printed it.
    Returns what came on each console and how long the run took."""
    root = os.path.join(tmp, "root")
    shutil.rmtree(root, ignore_errors=True)
    for d in ["bin", "svm/volumes/0", "svm/volumes/1", "hvc"]:
        os.makedirs(f"{root}/{d}")
    shutil.copy(init, f"{root}/init")
    shutil.copy(busybox, f"{root}/bin/busybox")
    open(f"{root}/svm/volumes/0/hello.txt", "w").write("vol0\n")
    os.chmod(f"{root}/svm/volumes/1", 0o777)
    open(f"{root}/svm/job", "wb").write(jobbytes)
    masters, names = [], []
    for i in range(4):  # hvc0-2, and hvc3 for the copy-out of rw volumes
        m, sl = os.openpty()
        masters.append(m)
        names.append(os.ttyname(sl))
        open(f"{root}/hvc/{i}", "w").close()
    binds = " ".join(f"mount --bind {names[i]} {root}/hvc/{i};" for i in range(4))
    p = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--propagation", "private",
                          "sh", "-c", f"{binds} exec chroot {root} /init"])
    got, sent, started = [b"", b"", b"", b""], False, time.time()
    deadline = started + 30
    while time.time() < deadline:
        r, _, _ = select.select(masters, [], [], 0.2)
        for i, m in enumerate(masters):
            if m in r:
                try:
                    got[i] += os.read(m, 65536)
                except OSError:
                    pass
        # Nothing may be sent before R: until then the tty could echo it back.
        if not sent and got[2].startswith(frame(b"R")) and (after is None or after in got[0]):
            os.write(masters[2], stdin_frames)
            sent = True
        if p.poll() is not None and not r:
            break
    else:
        p.kill()
        sys.exit("FAIL: timeout")
    return got, time.time() - started


def check(name, got, want):
    if got != want:
        sys.exit(f"FAIL {name}:\n got  {got!r}\n want {want!r}")
    print(f"ok {name}")


def main():
    if os.geteuid() != 0 or not os.path.exists(busybox):
        print("skipped: needs root and busybox-static")
        return
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "svm-init")
        subprocess.check_call(["gcc", "-static", "-Os", "-Wall", "-Wextra", "-Werror", '-DHVC="/hvc/"',
                               "-o", init, os.path.join(here, "svm-init.c")])
        B = "/bin/busybox"
        script = ('B=/bin/busybox; $B id -u; $B id -g; $B pwd; $B cat /data/hello.txt; '
                  '$B touch /data/x 2>/dev/null || echo ro-ok; $B touch /scratch/y && echo rw-ok; '
                  '$B cat; echo to-err >&2; $B grep -c " /tmp tmpfs" /proc/mounts; $B stat -c %a /tmp; '
                  '[ -t 1 ] || echo not-a-tty; exit 3')
        got, _ = run(tmp, init, job([B, "sh", "-c", script], ["PATH=/bin"], "/work", flags=1,
                                 vols=[("/data", True), ("/scratch", False)]),
                  frame(b"I", b"line1\nline2\n\x03") + frame(b"E"))
        check("pipes: stdout", got[0], b"65534\n65534\n/work\nvol0\nro-ok\nrw-ok\nline1\nline2\n\x031\n1777\nnot-a-tty\n")
        check("pipes: stderr", got[1], b"to-err\n")
        check("pipes: copy-out has the rw volume's new file", b"1/y\0" in got[3] and got[3].endswith(b"TRAILER!!!\0\0\0\0"), True)
        check("pipes: control", got[2], frame(b"R") + frame(b"X", b"e" + struct.pack("<I", 3)))

        got, _ = run(tmp, init, job([B, "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo isatty; /bin/busybox stty size; kill -TERM $$"],
                                 uid=0, gid=0, flags=2, rows=40, cols=100))
        check("tty: terminal output (cooked: \\r\\n)", got[0], b"isatty\r\n40 100\r\n")
        check("tty: control", got[2], frame(b"R") + frame(b"X", b"s" + struct.pack("<I", 15)))

        got, _ = run(tmp, init, job(["/nonexistent"]))
        check("exec failure", got[2], frame(b"R") + frame(b"F", b"execve /nonexistent: No such file or directory"))

        got, _ = run(tmp, init, job([B, "true"], vols=[("/v", False), ("/w", False), ("/x", False)]))
        check("missing volume", got[2], frame(b"R") + frame(b"F", b"bind mount /svm/volumes/2 on /x: No such file or directory"))

        # Stop, sent once the program runs ("ready"): SIGTERM to its process group.
        def stop(script, grace_ms):
            return run(tmp, init, job([B, "sh", "-c", script]), frame(b"S", struct.pack("<I", grace_ms)), after=b"ready")
        got, secs = stop(f"echo ready; exec {B} sleep 30", 10000)
        check("stop: SIGTERM", got[2], frame(b"R") + frame(b"X", b"s" + struct.pack("<I", 15)))
        check("stop: SIGTERM without waiting for the grace period", secs < 10, True)
        # The background sleep is in the group too: without its SIGTERM, wait would last 30 s.
        got, secs = stop(f"trap 'exit 42' TERM; {B} sleep 30 & echo ready; wait", 10000)
        check("stop: a trap decides the status", got[2], frame(b"R") + frame(b"X", b"e" + struct.pack("<I", 42)))
        check("stop: the whole group got SIGTERM", secs < 10, True)
        got, secs = stop(f"trap '' TERM; echo ready; exec {B} sleep 30", 1000)
        check("stop: SIGKILL after the grace period", got[2], frame(b"R") + frame(b"X", b"s" + struct.pack("<I", 9)))
        check("stop: not before it", 1 <= secs < 10, True)


main()
