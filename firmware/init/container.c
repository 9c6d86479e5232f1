/*
 * svm-init's container mode (svm-runtime): the job's container section, the container's
 * root and mounts, the wait for the host's start frame, and what the process's child does
 * before execve (chroot, groups, rlimits, capabilities, umask, no_new_privs, PATH lookup).
 *
 * Included by svm-init.c (one translation unit, so every build of the init stays one gcc
 * call on one file); it uses that file's helpers: fail, mkdir_p, child_fail, rd_*.
 * See PROTOCOL.md, "Containers".
 */
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "network.c"

static int rd_u64(struct reader *r, uint64_t *v)
{
	uint32_t lo, hi;
	if (rd_u32(r, &lo) || rd_u32(r, &hi))
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

/* A path inside the container: absolute, no ".." component (the host checks too). */
static int safe_dest(const char *p)
{
	if (p[0] != '/')
		return 0;
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/'))
			return 0;
	return 1;
}

/* Returns NULL on success, else what is wrong. Counts are checked against what is left
 * so a corrupt count cannot cause a huge allocation. */
static const char *parse_container(struct reader *r, struct container *c)
{
	if (rd_str(r, &c->hostname) || rd_u32(r, &c->cflags) || rd_u32(r, &c->umask))
		return "bad container header";
	if (rd_u32(r, &c->ngroups) || c->ngroups > r->left / 4 || c->ngroups > 65536)
		return "bad group count";
	if (!(c->groups = calloc((size_t)c->ngroups + 1, sizeof *c->groups)))
		return "out of memory";
	for (uint32_t i = 0; i < c->ngroups; i++)
		if (rd_u32(r, &c->groups[i]))
			return "bad groups";
	if (rd_u32(r, &c->nrlimit) || c->nrlimit > r->left / 20)
		return "bad rlimit count";
	if (!(c->rlimits = calloc((size_t)c->nrlimit + 1, sizeof *c->rlimits)))
		return "out of memory";
	for (uint32_t i = 0; i < c->nrlimit; i++)
		if (rd_u32(r, &c->rlimits[i].resource) || rd_u64(r, &c->rlimits[i].soft) ||
		    rd_u64(r, &c->rlimits[i].hard))
			return "bad rlimit";
	for (int i = 0; i < 5; i++)
		if (rd_u64(r, &c->caps[i]))
			return "bad capabilities";
	if (rd_u32(r, &c->nmount) || c->nmount > r->left / 20)
		return "bad mount count";
	if (!(c->mounts = calloc((size_t)c->nmount + 1, sizeof *c->mounts)))
		return "out of memory";
	for (uint32_t i = 0; i < c->nmount; i++) {
		struct cmount *m = &c->mounts[i];
		if (rd_u32(r, &m->kind) || m->kind > MOUNT_FILE || rd_str(r, &m->source) || rd_str(r, &m->dest) ||
		    !safe_dest(m->dest) || rd_u32(r, &m->flags) || rd_str(r, &m->data))
			return "bad mount";
	}
	return NULL;
}

#ifndef SVM_INIT_HOST_TEST
/* Where a mount goes: under the container's root. A symlink on the way is followed by
 * the kernel inside the guest only (the guest is the container's whole world). */
static void container_path(char *out, size_t size, const char *dest)
{
	if ((size_t)snprintf(out, size, "%s%s", CONTAINER_ROOT, strcmp(dest, "/") ? dest : "") >= size)
		fail("mount destination %s: path too long", dest);
}

/* A file to bind over must exist: created empty (with its directories) if missing. */
static void make_file(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0)
		return;
	char dir[4200];
	if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir)
		fail("mount point %s: path too long", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir_p(dir, 0755);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("create mount point %s: %s", path, strerror(errno));
	close(fd);
}

/* The devices every container has on a tmpfs /dev (as runc makes them), and the links;
 * with a terminal, the guest's terminal (hvc0) bound on /dev/console as runc binds its
 * pty there, so that ttyname() inside the container finds it. */
static void populate_dev(const char *dev, int tty)
{
	static const struct { const char *name; unsigned major, minor; } nodes[] = {
		{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 },
		{ "urandom", 1, 9 }, { "tty", 5, 0 },
	};
	static const struct { const char *name, *target; } links[] = {
		{ "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
		{ "stderr", "/proc/self/fd/2" }, { "ptmx", "pts/ptmx" }, { "core", "/proc/kcore" },
	};
	char path[4300];
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dev, nodes[i].name);
		if (mknod(path, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) && errno != EEXIST)
			fail("mknod %s: %s", path, strerror(errno));
		chmod(path, 0666); /* mknod's mode went through the umask */
	}
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dev, links[i].name);
		if (symlink(links[i].target, path) && errno != EEXIST)
			fail("symlink %s: %s", path, strerror(errno));
	}
	if (tty) {
		snprintf(path, sizeof path, "%s/console", dev);
		make_file(path);
		if (mount(HVC "0", path, NULL, MS_BIND, NULL))
			fail("bind %s on %s: %s", HVC "0", path, strerror(errno));
	}
}

/* File systems a small guest kernel may lack (cgroups, POSIX message queues): the
 * container runs without them, as it would on a kernel configured so. */
static int optional_fs(const struct cmount *m)
{
	return m->kind == MOUNT_FS && (!strcmp(m->source, "cgroup2") || !strcmp(m->source, "mqueue"));
}

/* The container's root from the share, then its mounts in the bundle's order; an
 * optional file system the kernel lacks is left out with a line on the console. */
static void container_mounts(const struct container *c, int tty)
{
	mkdir_p(CONTAINER_ROOT, 0755);
	/* Read-write until the mounts are made (their mount points may need creating), then
	 * read-only with root.readonly, as runc does it. */
	if (mount("svm-root", CONTAINER_ROOT, "virtiofs", 0, NULL))
		fail("mount the container's root (virtio-fs svm-root): %s", strerror(errno));
	char path[4200];
	for (uint32_t i = 0; i < c->nmount; i++) {
		const struct cmount *m = &c->mounts[i];
		container_path(path, sizeof path, m->dest);
		int bind_file = 0;
		if (m->kind == MOUNT_FILE) {
			make_file(path);
			bind_file = 1;
		} else if (optional_fs(m)) {
			/* e.g. /sys/fs/cgroup on a read-only sysfs whose kernel has no cgroups */
			struct stat st;
			if (stat(path, &st) && mkdir(path, 0755)) {
				dprintf(2, "svm-init: %s on %s left out: %s\n", m->source, m->dest, strerror(errno));
				continue;
			}
		} else {
			mkdir_p(path, 0755);
		}
		int r;
		if (m->kind == MOUNT_FS)
			r = mount(m->source, path, m->source, m->flags, m->data[0] ? m->data : NULL);
		else if (m->kind == MOUNT_SHARE)
			r = mount(m->source, path, "virtiofs", m->flags, NULL);
		else
			r = mount(m->source, path, NULL, MS_BIND, NULL);
		if (r && optional_fs(m) && errno == ENODEV) {
			dprintf(2, "svm-init: %s on %s left out: the guest kernel has no %s\n", m->source, m->dest, m->source);
			continue;
		}
		if (r)
			fail("mount %s on %s: %s", m->source, m->dest, strerror(errno));
		/* A bind mount ignores the flags of its first call: read-only and the rest take a
		 * remount. */
		if (bind_file && (m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)) &&
		    mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | (m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)), NULL))
			fail("remount %s: %s", m->dest, strerror(errno));
		if (m->kind == MOUNT_FS && !strcmp(m->dest, "/dev") && !strcmp(m->source, "tmpfs"))
			populate_dev(path, tty);
	}
	if ((c->cflags & CFLAG_READONLY_ROOT) &&
	    mount(NULL, CONTAINER_ROOT, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
		fail("remount the container's root read-only: %s", strerror(errno));
	if (c->hostname[0] && sethostname(c->hostname, strlen(c->hostname)))
		fail("sethostname %s: %s", c->hostname, strerror(errno));
}
#endif

/* Reads exactly n bytes of control input (never more: what follows belongs to the run
 * loop). Returns 0, or -1 when the channel ended. */
static int read_exact(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t got = read(fd, p, n);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return -1;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

/* The process must not run before the engine says start: frames until 'G' are read;
 * 'N' configures the network (the engine may have made it only after create), anything
 * else is skipped. */
static void wait_for_start(void)
{
	uint8_t hdr[5], skip[256];
	loopback_up();
	for (;;) {
		if (ctl_in < 0 || read_exact(ctl_in, hdr, 5))
			fail("control channel closed before the start request");
		uint32_t left = get_le32(hdr + 1);
		if (hdr[0] == 'G' && left == 0)
			return;
		if (hdr[0] == 'N') {
			uint8_t net[NET_PAYLOAD_SIZE];
			if (left != NET_PAYLOAD_SIZE)
				fail("network frame of %u bytes (expected %d)", left, NET_PAYLOAD_SIZE);
			if (read_exact(ctl_in, net, sizeof net))
				fail("control channel closed before the start request");
			configure_network(net);
			continue;
		}
		while (left > 0) {
			uint32_t n = left < sizeof skip ? left : (uint32_t)sizeof skip;
			if (read_exact(ctl_in, skip, n))
				fail("control channel closed before the start request");
			left -= n;
		}
	}
}

/* Like execvpe: a name without '/' is looked up on the job's PATH, inside the root. */
static void exec_lookup(char **argv, char **env, int errpipe)
{
	const char *name = argv[0];
	if (strchr(name, '/')) {
		execve(name, argv, env);
		child_fail(errpipe, "execve", name);
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (char **e = env; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	int saved = ENOENT;
	char full[4096];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int len = (int)(end - p);
		if (snprintf(full, sizeof full, "%.*s%s%s", len, p, len ? "/" : "", name) < (int)sizeof full) {
			execve(full, argv, env);
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		if (!*end)
			break;
		p = end;
	}
	errno = saved;
	child_fail(errpipe, "execve", name);
}

/* In the child, before the identity change: into the root, limits, groups. */
static void container_child_enter(const struct job *j, const struct container *c, int errpipe)
{
#ifndef SVM_INIT_HOST_TEST
	if (chroot(CONTAINER_ROOT))
		child_fail(errpipe, "chroot", CONTAINER_ROOT);
	struct stat st;
	if (stat(j->workdir, &st))
		mkdir_p(j->workdir, 0755);
#else
	(void)j;
#endif
	for (uint32_t i = 0; i < c->nrlimit; i++) {
		struct rlimit rl = { .rlim_cur = c->rlimits[i].soft, .rlim_max = c->rlimits[i].hard };
		if (setrlimit((int)c->rlimits[i].resource, &rl))
			child_fail(errpipe, "setrlimit", "of the bundle's process.rlimits");
	}
	if (c->cflags & CFLAG_UMASK)
		umask((mode_t)c->umask);
#ifndef SVM_INIT_HOST_TEST
	if (setgroups(c->ngroups, c->groups))
		child_fail(errpipe, "setgroups", "process.user.additionalGids");
	if (c->cflags & CFLAG_CAPS) {
		/* Bounding set first (needs CAP_SETPCAP, which the init has), and keep the
		 * permitted set across setuid so capset can set what the bundle asks. */
		for (int cap = 0; cap < 64; cap++)
			if (!(c->caps[0] >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
				child_fail(errpipe, "prctl", "PR_CAPBSET_DROP");
		prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
	}
	if (setgid(j->gid))
		child_fail(errpipe, "setgid", "process.user.gid");
	if (setuid(j->uid))
		child_fail(errpipe, "setuid", "process.user.uid");
	if (c->cflags & CFLAG_CAPS) {
		struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct d[2];
		for (int k = 0; k < 2; k++) {
			d[k].effective = (uint32_t)(c->caps[1] >> (32 * k));
			d[k].permitted = (uint32_t)(c->caps[2] >> (32 * k));
			d[k].inheritable = (uint32_t)(c->caps[3] >> (32 * k));
		}
		if (syscall(SYS_capset, &h, d))
			child_fail(errpipe, "capset", "process.capabilities");
		/* An ambient capability must be permitted and inheritable: engines ask for some
		 * that are not (buildah's RUN steps), and runc warns and goes on; so do we. */
		for (int cap = 0; cap < 64; cap++)
			if (c->caps[4] >> cap & 1)
				(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
	}
#endif
	if ((c->cflags & CFLAG_NO_NEW_PRIVS) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		child_fail(errpipe, "prctl", "PR_SET_NO_NEW_PRIVS");
}
