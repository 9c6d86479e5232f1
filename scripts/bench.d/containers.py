"""Containers: podman with svm-runtime against podman with runc on the same local image,
in the same run (imported by scripts/bench for `--only containers` and `--all`).

- `podman run --rm IMAGE /bin/true`, end to end (median of N);
- `podman run -d -p 127.0.0.1:PORT:80 IMAGE httpd ...` until the page answers (median of N);
- host memory of one idle container (the httpd one, once it answers): RSS and PSS from
  /proc/PID/smaps_rollup of svm-runtime's VM process plus its virtiofsds, and of the
  container's processes under runc (conmon left out on both sides: it is the engine's).
"""
import os, shutil, statistics, subprocess, tempfile, time, urllib.request

IMAGE = "localhost/svm-bench-busybox:1"


def _run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def build_image(log):
    """A busybox image with /www/index.html, imported locally (no registry here)."""
    root = tempfile.mkdtemp(prefix="svm-bench-image-")
    try:
        for d in ("bin", "etc", "tmp", "www"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
        for applet in _run(["/bin/busybox", "--list"]).stdout.split():
            link = os.path.join(root, "bin", applet)
            if not os.path.exists(link):
                os.symlink("busybox", link)
        open(os.path.join(root, "etc/passwd"), "w").write("root:x:0:0:root:/root:/bin/sh\n")
        open(os.path.join(root, "etc/group"), "w").write("root:x:0:\n")
        open(os.path.join(root, "www/index.html"), "w").write("svm bench page\n")
        tar = root + ".tar"
        subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
        subprocess.run(["podman", "import", "-q", tar, IMAGE], check=True, capture_output=True)
        os.unlink(tar)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"  image {IMAGE} imported")


def run_true(runtime, log):
    t0 = time.monotonic()
    p = _run(["podman", "--runtime", runtime, "run", "--rm", IMAGE, "/bin/true"])
    if p.returncode != 0:
        log(f"  podman run --rm ({runtime}) failed: {p.returncode} {p.stderr.strip()[-300:]}")
        return None
    return time.monotonic() - t0


def stream(runtime, stdin_bytes, stdout_bytes, log):
    """Seconds for `podman run --rm -i IMAGE sh -c 'cat; head -c N /dev/zero'` with
    `stdin_bytes` piped in and all of it plus `stdout_bytes` read back; None on failure."""
    data = os.urandom(stdin_bytes)
    t0 = time.monotonic()
    p = subprocess.run(["podman", "--runtime", runtime, "run", "--rm", "-i", IMAGE, "sh", "-c",
                        f"cat; head -c {stdout_bytes} /dev/zero"], input=data, capture_output=True, timeout=3600)
    elapsed = time.monotonic() - t0
    if p.returncode != 0 or len(p.stdout) != stdin_bytes + stdout_bytes or p.stdout[:stdin_bytes] != data:
        log(f"  stream ({runtime}) failed: status {p.returncode}, {len(p.stdout)} bytes back")
        return None
    return elapsed


def _page(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.read().decode()
    except Exception:
        return ""


def smaps(pid):
    """RSS and PSS in KiB of one process, from smaps_rollup."""
    rss = pss = 0
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            children = open(f"/proc/{p}/task/{p}/children").read().split()
        except OSError:
            children = []
        todo += [int(c) for c in children]
    return out


def detached_web(runtime, port, log, measure_memory=False):
    """Seconds from `podman run -d -p` to the page answering; with measure_memory, also
    (rss KiB, pss KiB, processes) of the idle container once it answers."""
    name = f"svm-bench-web-{port}"
    _run(["podman", "rm", "-f", name])
    t0 = time.monotonic()
    p = _run(["podman", "--runtime", runtime, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80",
              IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"])
    answered = None
    memory = None
    if p.returncode != 0:
        log(f"  podman run -d ({runtime}) failed: {p.returncode} {p.stderr.strip()[-300:]}")
    else:
        deadline = t0 + 600
        while time.monotonic() < deadline:
            if "svm bench page" in _page(port):
                answered = time.monotonic() - t0
                break
            time.sleep(0.2)
        if answered is None:
            log(f"  {runtime}: the page never answered on port {port}")
        if measure_memory and answered is not None:
            time.sleep(5)  # idle
            pid = int(_run(["podman", "inspect", "-f", "{{.State.Pid}}", name]).stdout.strip() or 0)
            pids = _descendants(pid) if pid else []
            if "svm-runtime" in runtime:
                # virtiofsd runs beside the VM process (started by it, then reparented
                # to conmon when its sandbox forks): found by the container's id.
                cid = _run(["podman", "inspect", "-f", "{{.Id}}", name]).stdout.strip()
                pids += [int(x) for x in _run(["pgrep", "-f", f"virtiofsd.*{cid}"]).stdout.split() if int(x) not in pids]
            figures = [smaps(x) for x in pids]
            memory = (sum(r for r, _ in figures), sum(s for _, s in figures), len(pids))
    _run(["podman", "rm", "-f", "-t", "2", name])
    return answered, memory


def measure(svm_runtime, runs, log):
    build_image(log)
    rows = {"true": {}, "web": {}, "memory": {}}
    for runtime in (svm_runtime, "runc"):
        label = "svm-runtime" if runtime != "runc" else "runc"
        log(f"  {label}: podman run --rm /bin/true x{runs} ...")
        rows["true"][label] = [t for t in (run_true(runtime, log) for _ in range(runs)) if t is not None]
        log(f"  {label}: podman run -d -p until the page answers x{runs} ...")
        web = []
        for i in range(runs):
            t, mem = detached_web(runtime, 18400 + i, log, measure_memory=(i == 0))
            if t is not None:
                web.append(t)
            if mem:
                rows["memory"][label] = mem
        rows["web"][label] = web
        # Streams: 1 MiB through stdin and back, then 8 MiB of stdout; the rate is over the
        # time beyond a /bin/true run (the boot), so it measures the bytes, not the boot.
        log(f"  {label}: 1 MiB in and out, then 8 MiB out ...")
        rows.setdefault("stream", {})[label] = stream(runtime, 1 << 20, 8 << 20, log)
    _run(["podman", "rmi", "-f", IMAGE])
    return rows


def section(rows, facts, runs):
    def med(xs):
        return statistics.median(xs) if xs else None

    def fmt(v, unit="s"):
        return f"{v:.2f} {unit}" if v is not None else "failed"

    L = ["## Containers (svm-runtime against runc)",
         f"Measured {facts['date']} at {facts['commit']} on {facts['cpu']}, {facts['cores']} cores, Linux {facts['kernel']}.",
         f"Podman {_run(['podman', '--version']).stdout.split()[-1]} with `--runtime` svm-runtime (release build) and runc,",
         f"a local busybox image, median of {runs}. Every svm-runtime container boots its own kernel: on this",
         "host guest kernel code is emulated (about a minute per boot), which is the whole difference here.\n",
         "| | svm-runtime | runc | svm / runc |", "| --- | ---: | ---: | ---: |"]
    for key, title in (("true", "`podman run --rm IMAGE /bin/true`"),
                       ("web", "`podman run -d -p` until the page answers")):
        s, r = med(rows[key].get("svm-runtime", [])), med(rows[key].get("runc", []))
        ratio = f"{s / r:.0f}" if s and r else ""
        L.append(f"| {title} | {fmt(s)} | {fmt(r)} | {ratio} |")
    L += ["", "Streams: `podman run --rm -i IMAGE sh -c 'cat; head -c 8M /dev/zero'` with 1 MiB piped in (10 MiB",
          "through the container's stdio in all: 1 MiB in, 9 MiB out), end to end, and the rate over the time beyond",
          "the `/bin/true` run above (so the boot is not counted). On this host the guest's kernel code, tty layer",
          "included, runs emulated: every byte crosses it.\n",
          "| | seconds | beyond /bin/true | MiB/s |", "| --- | ---: | ---: | ---: |"]
    for label in ("svm-runtime", "runc"):
        t = rows.get("stream", {}).get(label)
        base = med(rows["true"].get(label, []))
        if t is None or base is None:
            L.append(f"| {label} | failed | | |")
        else:
            extra = max(t - base, 0.001)
            L.append(f"| {label} | {t:.1f} | {extra:.1f} | {10 / extra:.2f} |")
    L += ["", "Host memory of one idle container (busybox httpd, after it answered), RSS and PSS summed over",
          "the container's host processes: svm-runtime's VM process (guest RAM it touched included) and its",
          "virtiofsd; under runc, the container's own processes. conmon, the engine's, is left out of both.\n",
          "| | processes | RSS MiB | PSS MiB |", "| --- | ---: | ---: | ---: |"]
    for label in ("svm-runtime", "runc"):
        m = rows["memory"].get(label)
        L.append(f"| {label} | {m[2]} | {m[0] / 1024:.1f} | {m[1] / 1024:.1f} |" if m else f"| {label} | | failed | |")
    L.append("")
    return L
