/*
 * svm-init: PID 1 of an `svm run` guest. See PROTOCOL.md beside this file.
 *
 * It mounts the basic file systems, reads /svm/job, bind-mounts the volumes, runs the
 * program with pipes for its streams and copies them to the virtio consoles:
 *   /dev/hvc0  program stdout (guest -> host)
 *   /dev/hvc1  program stderr (guest -> host)
 *   /dev/hvc2  control frames: stdin 'I'/'E', window size 'W' and stop 'S' (host -> guest),
 *              'R' ready, 'X' exit status, 'F' init failure (guest -> host)
 * then syncs and resets the VM, which the VMM takes as the end of the run.
 *
 * Guest kernel code is emulated and slow on svm's hosts, so every system call counts:
 * no shell, one fork, 64 KiB buffers, poll with no timeouts while the program runs (but
 * for the grace period of a stop request).
 *
 * Built with -DSVM_INIT_HOST_TEST it runs on the host for tests instead: no mounts,
 * volumes, identity change or reboot; fd 1/2 stand for hvc0/hvc1, fd 3 is the control
 * input and fd 4 the control output; `--dump-job FILE` prints a parsed job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "container.h"

#define BUF_SIZE (64u << 10)
#define MAX_FRAME (1u << 20) /* ControlFrame.maxPayload */
#define MAX_JOB (16u << 20) /* JobWriter.maxSize */
#define JOB_VERSION 1u
#define FLAG_HAS_STDIN 1u
#define FLAG_TTY 2u
/* svm-runtime: the container section follows the volumes (container.c). */
#define FLAG_CONTAINER 4u
#define VOL_READ_ONLY 1u
/* A live share: virtio-fs with tag "svm-vol-N", served by a virtiofsd on the host, not a
 * copy in the initramfs; it needs no copy-out (writes are on the host as they happen). */
#define VOL_LIVE 2u
/* Grace between SIGTERM and SIGKILL for an 'S' frame without the u32 that says it. */
#define STOP_DEFAULT_GRACE_MS 10000u
/* Where the consoles are; a namespace test points this at pty slaves bound elsewhere. */
#ifndef HVC
#define HVC "/dev/hvc"
#endif

struct job {
	uint32_t flags, uid, gid, rows, cols, nvol;
	char **argv, **env, *workdir;
	char **vol_path;
	uint32_t *vol_flags;
	struct container *container; /* FLAG_CONTAINER only */
};

struct reader;
static const char *parse_container(struct reader *r, struct container *c);
static void container_child_enter(const struct job *j, const struct container *c, int errpipe);
static void exec_lookup(char **argv, char **env, int errpipe);
/* exec.c (svm-runtime exec), included further down. */
struct stdin_state;
static void exec_start(const struct job *j, const uint8_t *p, size_t len);
static struct stdin_state *exec_stdin_of(uint32_t id);
static void exec_stdin_eof(uint32_t id);
static void exec_signal(uint32_t id, uint32_t sig);

static int out_fd = -1, err_fd = -1;     /* hvc0, hvc1 (or the console) */
static int ctl_in = -1, ctl_out = -1;    /* hvc2 both ways; -1 in console mode */
static int console_mode;                 /* no virtio consoles: text on /dev/console */
static int failed;                       /* host test: exit status 1 after fail() */
static int copy_fd = -1;                 /* hvc3: copy-out archive of rw volumes */

/* ---- output helpers ---------------------------------------------------- */

/* Writes everything: retries partial writes, EINTR, and EAGAIN (after poll). */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd w = { .fd = fd, .events = POLLOUT };
				poll(&w, 1, -1);
				continue;
			}
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One frame on the control channel, in a single write so frames never interleave. */
static void send_frame(uint8_t type, const void *payload, uint32_t len)
{
	uint8_t frame[5 + 1024];
	if (ctl_out < 0 || len > sizeof frame - 5)
		return;
	frame[0] = type;
	put_le32(frame + 1, len);
	if (len)
		memcpy(frame + 5, payload, len);
	write_all(ctl_out, frame, 5 + len);
}

/* Ends the run. The VMM takes the guest's reset as the end (power-off is not used). */
static _Noreturn void finish(void)
{
	/* Make sure the host has every byte before the VM disappears. */
	tcdrain(out_fd);
	tcdrain(err_fd);
	if (copy_fd >= 0)
		tcdrain(copy_fd);
	if (ctl_out >= 0)
		tcdrain(ctl_out);
#ifdef SVM_INIT_HOST_TEST
	exit(failed);
#else
	sync();
	reboot(RB_AUTOBOOT);
	_exit(1); /* PID 1 exiting panics the kernel, which (panic=N) also resets */
#endif
}

/* The init itself failed: report it ('F' frame, or text on the console) and end. */
static _Noreturn void fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	failed = 1;
	if (ctl_out >= 0) {
		send_frame('F', msg, (uint32_t)n);
	} else {
		/* Before the channels are open (or in console mode), text on the console. */
#ifdef SVM_INIT_HOST_TEST
		int fd = 2;
#else
		int fd = err_fd >= 0 ? err_fd : open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
#endif
		if (fd < 0)
			fd = 2;
		write_all(fd, "svm-init: ", 10);
		write_all(fd, msg, (size_t)n);
		write_all(fd, "\n", 1);
	}
	finish();
}

/* ---- the job file ------------------------------------------------------- */

struct reader {
	const uint8_t *p;
	size_t left;
};

static int rd_u32(struct reader *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = get_le32(r->p);
	r->p += 4;
	r->left -= 4;
	return 0;
}

/* A length-prefixed string, copied out NUL-terminated; an embedded NUL is an error. */
static int rd_str(struct reader *r, char **s)
{
	uint32_t len;
	if (rd_u32(r, &len) || len > r->left || memchr(r->p, 0, len))
		return -1;
	if (!(*s = malloc((size_t)len + 1)))
		return -1;
	memcpy(*s, r->p, len);
	(*s)[len] = 0;
	r->p += len;
	r->left -= len;
	return 0;
}

/* A NULL-terminated string array; the count is checked against what is left (every
 * string takes at least 4 bytes) so a corrupt count cannot cause a huge allocation. */
static int rd_strv(struct reader *r, char ***v)
{
	uint32_t n;
	if (rd_u32(r, &n) || n > r->left / 4)
		return -1;
	if (!(*v = calloc((size_t)n + 1, sizeof **v)))
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (rd_str(r, &(*v)[i]))
			return -1;
	return 0;
}

/* Returns NULL on success, else what is wrong. */
static const char *parse_job(const uint8_t *buf, size_t len, struct job *j)
{
	struct reader r = { buf, len };
	uint32_t version;
	if (len < 4 || memcmp(buf, "SVMJ", 4))
		return "bad magic";
	r.p += 4;
	r.left -= 4;
	if (rd_u32(&r, &version) || version != JOB_VERSION)
		return "unsupported version";
	if (rd_u32(&r, &j->flags) || rd_u32(&r, &j->uid) || rd_u32(&r, &j->gid) ||
	    rd_u32(&r, &j->rows) || rd_u32(&r, &j->cols))
		return "truncated header";
	/* A container's argv[0] may be a name looked up on PATH in its root. */
	if (rd_strv(&r, &j->argv) || !j->argv[0] || !j->argv[0][0] ||
	    (j->argv[0][0] != '/' && !(j->flags & FLAG_CONTAINER)))
		return "bad argv (argv[0] must be an absolute path)";
	if (rd_strv(&r, &j->env))
		return "bad env";
	if (rd_str(&r, &j->workdir) || j->workdir[0] != '/')
		return "bad workdir";
	if (rd_u32(&r, &j->nvol) || j->nvol > r.left / 8)
		return "bad volume count";
	j->vol_path = calloc((size_t)j->nvol + 1, sizeof *j->vol_path);
	j->vol_flags = calloc((size_t)j->nvol + 1, sizeof *j->vol_flags);
	if (!j->vol_path || !j->vol_flags)
		return "out of memory";
	for (uint32_t i = 0; i < j->nvol; i++)
		if (rd_str(&r, &j->vol_path[i]) || j->vol_path[i][0] != '/' || rd_u32(&r, &j->vol_flags[i]))
			return "bad volume";
	if (j->flags & FLAG_CONTAINER) {
		const char *err;
		if (!(j->container = calloc(1, sizeof *j->container)))
			return "out of memory";
		if ((err = parse_container(&r, j->container)))
			return err;
	}
	if (r.left)
		return "trailing bytes";
	return NULL;
}

static void read_job(const char *path, struct job *j)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		fail("open %s: %s", path, strerror(errno));
	if (st.st_size <= 0 || st.st_size > (off_t)MAX_JOB)
		fail("%s: size %lld out of range", path, (long long)st.st_size);
	size_t len = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(len);
	if (!buf)
		fail("%s: out of memory", path);
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("read %s: %s", path, n < 0 ? strerror(errno) : "short file");
		got += (size_t)n;
	}
	close(fd);
	const char *err = parse_job(buf, len, j);
	if (err)
		fail("%s: %s", path, err);
	free(buf);
}

/* ---- file systems ------------------------------------------------------- */

/* mkdir -p; returns 1 if the last component was created here. */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);
	int created = 0;
	if (len >= sizeof buf)
		fail("mkdir %s: path too long", path);
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		buf[i] = 0;
		created = mkdir(buf, mode) == 0;
		if (!created && errno != EEXIST)
			fail("mkdir %s: %s", buf, strerror(errno));
		buf[i] = path[i];
	}
	return created;
}

#ifndef SVM_INIT_HOST_TEST
static void mount_fs(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
	if (mkdir(dst, 0755) && errno != EEXIST)
		fail("mkdir %s: %s", dst, strerror(errno));
	/* EBUSY: already mounted (e.g. a kernel with DEVTMPFS_MOUNT). */
	if (mount(src, dst, type, flags, data) && errno != EBUSY)
		fail("mount %s on %s: %s", type, dst, strerror(errno));
}

/* Volume N was packed by the host under /svm/volumes/N; bind it where the job wants it.
 * A live volume is the virtio-fs share "svm-vol-N" instead (read-only ones are read-only
 * on the host too: the guest's flag here is a courtesy, not the protection). */
static void mount_volumes(const struct job *j)
{
	char src[64];
	for (uint32_t i = 0; i < j->nvol; i++) {
		const char *dst = j->vol_path[i];
		mkdir_p(dst, 0755);
		if (j->vol_flags[i] & VOL_LIVE) {
			snprintf(src, sizeof src, "svm-vol-%u", i);
			unsigned long flags = MS_NOSUID | MS_NODEV | ((j->vol_flags[i] & VOL_READ_ONLY) ? MS_RDONLY : 0);
			if (mount(src, dst, "virtiofs", flags, NULL))
				fail("mount virtiofs %s on %s: %s", src, dst, strerror(errno));
			continue;
		}
		snprintf(src, sizeof src, "/svm/volumes/%u", i);
		if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL))
			fail("bind mount %s on %s: %s", src, dst, strerror(errno));
		/* A bind mount ignores MS_RDONLY; read-only takes a second, remounting call. */
		if ((j->vol_flags[i] & VOL_READ_ONLY) &&
		    mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL))
			fail("remount %s read-only: %s", dst, strerror(errno));
	}
}

/* Raw mode: no echo (stdin bytes echoed on hvc2 would corrupt the frames going back),
 * no output processing (\n must not become \r\n), no signals from ^C bytes, no XON/XOFF,
 * and reads that return whatever has arrived. */
static void make_raw(int fd)
{
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
}

/* Opens the three virtio consoles; without them, falls back to text on /dev/console.
 * hvc0 is made raw later, once the job says whether it is the program's terminal. */
static void open_channels(void)
{
	ctl_in = open(HVC "2", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ctl_in < 0) {
		/* ENOENT: no hvc driver; ENODEV: the minor exists but no port backs it. */
		console_mode = 1;
		out_fd = err_fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
		if (out_fd < 0)
			out_fd = err_fd = 2;
		return;
	}
	ctl_out = ctl_in;
	make_raw(ctl_in);
	out_fd = open(HVC "0", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (out_fd < 0)
		fail("open " HVC "0: %s", strerror(errno));
	err_fd = open(HVC "1", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (err_fd < 0)
		fail("open " HVC "1: %s", strerror(errno));
	make_raw(err_fd);
}
#endif

/* ---- copy-out of read-write volumes (PROTOCOL.md, "Copy-out") ------------- */
#ifndef SVM_INIT_HOST_TEST

/* What the rw volumes held before the program ran: regular files by inode and path. A
 * file is sent without its data ("unchanged", check = 1) only if it is still the same
 * inode at the same path and its ctime, which every write, chmod, link and rename
 * updates, is older than `started` (taken just before the program starts). */
struct inventory_entry {
	ino_t ino;
	char *path;
};
static struct inventory_entry *inventory;
static size_t inventory_len, inventory_cap;
static struct timespec started;

static void inventory_add(ino_t ino, const char *path)
{
	if (inventory_len == inventory_cap) {
		inventory_cap = inventory_cap ? 2 * inventory_cap : 256;
		inventory = realloc(inventory, inventory_cap * sizeof *inventory);
		if (!inventory)
			fail("inventory: out of memory");
	}
	inventory[inventory_len].ino = ino;
	if (!(inventory[inventory_len++].path = strdup(path)))
		fail("inventory: out of memory");
}

static int inventory_order(const void *a, const void *b)
{
	ino_t x = ((const struct inventory_entry *)a)->ino, y = ((const struct inventory_entry *)b)->ino;
	return x < y ? -1 : x > y;
}

static int unchanged(const struct stat *st, const char *path)
{
	if (st->st_ctim.tv_sec > started.tv_sec ||
	    (st->st_ctim.tv_sec == started.tv_sec && st->st_ctim.tv_nsec >= started.tv_nsec))
		return 0;
	struct inventory_entry key = { .ino = st->st_ino };
	struct inventory_entry *e = bsearch(&key, inventory, inventory_len, sizeof key, inventory_order);
	return e && !strcmp(e->path, path);
}

struct archive {
	char *buf;
	size_t used;
	uint32_t ino;
};

static void ar_flush(struct archive *a)
{
	if (a->used && write_all(copy_fd, a->buf, a->used))
		fail("copy-out: write " HVC "3: %s", strerror(errno));
	a->used = 0;
}

static void ar_put(struct archive *a, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		size_t take = BUF_SIZE - a->used < n ? BUF_SIZE - a->used : n;
		memcpy(a->buf + a->used, c, take);
		a->used += take;
		c += take;
		n -= take;
		if (a->used == BUF_SIZE)
			ar_flush(a);
	}
}

static void ar_pad(struct archive *a, size_t n)
{
	static const char zeros[4];
	ar_put(a, zeros, (4 - (n & 3)) & 3);
}

/* A newc header and its name (ownership, times and links are not sent: the host ignores
 * them); `check` 1 marks an unchanged regular file, sent without data. */
static void ar_header(struct archive *a, const char *name, uint32_t mode, uint32_t size, uint32_t check)
{
	char hdr[111];
	size_t namesize = strlen(name) + 1;
	snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 ++a->ino, mode, 0u, 0u, 1u, 0u, size, 0u, 0u, 0u, 0u, (uint32_t)namesize, check);
	ar_put(a, hdr, 110);
	ar_put(a, name, namesize);
	ar_pad(a, 110 + namesize);
}

/* Sends one regular file: exactly st_size bytes (zeros if it shrank meanwhile). */
static void ar_file(struct archive *a, int dirfd, const char *name, const char *path, const struct stat *st)
{
	if (st->st_size > (off_t)UINT32_MAX)
		fail("copy-out: %s: larger than 4 GiB", path);
	if (unchanged(st, path)) {
		ar_header(a, path, (uint32_t)st->st_mode, 0, 1);
		return;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fail("copy-out: open %s: %s", path, strerror(errno));
	uint32_t size = (uint32_t)st->st_size, left = size;
	ar_header(a, path, (uint32_t)st->st_mode, size, 0);
	while (left > 0) {
		if (a->used == BUF_SIZE)
			ar_flush(a);
		size_t want = BUF_SIZE - a->used < left ? BUF_SIZE - a->used : left;
		ssize_t n = read(fd, a->buf + a->used, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("copy-out: read %s: %s", path, strerror(errno));
		if (n == 0) {
			memset(a->buf + a->used, 0, want);
			n = (ssize_t)want;
		}
		a->used += (size_t)n;
		left -= (uint32_t)n;
	}
	close(fd);
	ar_pad(a, size);
}

/* Every entry below `dirfd` (directories before what they hold), named "path/NAME",
 * sent to `a`; with no archive, the regular files go into the inventory instead.
 * Nothing may be left out silently: the host deletes what it copied in and does not
 * see again, so whatever cannot be sent fails the copy-out. */
static void ar_walk(struct archive *a, int dirfd, char *path, size_t len)
{
	DIR *d = fdopendir(dirfd);
	if (!d)
		fail("copy-out: opendir %s: %s", path, strerror(errno));
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		const char *name = e->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		size_t nlen = strlen(name);
		if (len + 1 + nlen >= 4096)
			fail("copy-out: %s/%s: path too long", path, name);
		path[len] = '/';
		memcpy(path + len + 1, name, nlen + 1);
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
			fail("copy-out: stat %s: %s", path, strerror(errno));
		switch (st.st_mode & S_IFMT) {
		case S_IFDIR: {
			if (a)
				ar_header(a, path, (uint32_t)st.st_mode, 0, 0);
			int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				fail("copy-out: open %s: %s", path, strerror(errno));
			ar_walk(a, sub, path, len + 1 + nlen);
			break;
		}
		case S_IFREG:
			if (a)
				ar_file(a, dirfd, name, path, &st);
			else
				inventory_add(st.st_ino, path);
			break;
		case S_IFLNK: {
			if (!a)
				break;
			char target[4096];
			ssize_t n = readlinkat(dirfd, name, target, sizeof target);
			if (n < 0 || n >= (ssize_t)sizeof target)
				fail("copy-out: readlink %s: %s", path, n < 0 ? strerror(errno) : "too long");
			ar_header(a, path, (uint32_t)st.st_mode, (uint32_t)n, 0);
			ar_put(a, target, (size_t)n);
			ar_pad(a, (size_t)n);
			break;
		}
		default:
			break; /* FIFOs, sockets, devices: never copied in, never copied out */
		}
		path[len] = 0;
	}
	if (errno)
		fail("copy-out: readdir %s: %s", path, strerror(errno));
	closedir(d);
}

static int has_rw_volume(const struct job *j)
{
	for (uint32_t i = 0; i < j->nvol; i++)
		if (!(j->vol_flags[i] & (VOL_READ_ONLY | VOL_LIVE)))
			return 1;
	return 0;
}

/* Walks every read-write volume, names "N/PATH" for volume N, into `a` or the inventory.
 * It walks the initramfs copy (/svm/volumes/N), not the bind mount, so nothing a --root
 * program mounted on the guest path is taken. */
static void walk_volumes(const struct job *j, struct archive *a)
{
	char *path = malloc(4096);
	if (!path)
		fail("copy-out: out of memory");
	for (uint32_t i = 0; i < j->nvol; i++) {
		if (j->vol_flags[i] & (VOL_READ_ONLY | VOL_LIVE))
			continue;
		char root[64];
		snprintf(root, sizeof root, "/svm/volumes/%u", i);
		int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fail("copy-out: open %s: %s", root, strerror(errno));
		ar_walk(a, fd, path, (size_t)snprintf(path, 4096, "%u", i));
	}
	free(path);
}

/* Before the program runs: the inventory, then the time that splits old from new. */
static void take_inventory(const struct job *j)
{
	if (!has_rw_volume(j))
		return;
	walk_volumes(j, NULL);
	qsort(inventory, inventory_len, sizeof *inventory, inventory_order);
	/* Coarse, like the ctime the kernel stamps, so no change is dated before it. */
	clock_gettime(CLOCK_REALTIME_COARSE, &started);
}

/* Streams every read-write volume to hvc3 as one newc archive, then the trailer. */
static void copy_out(const struct job *j)
{
	if (!has_rw_volume(j) || console_mode)
		return;
	copy_fd = open(HVC "3", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (copy_fd < 0)
		fail("copy-out: open " HVC "3: %s", strerror(errno));
	make_raw(copy_fd);
	struct archive a = { .buf = malloc(BUF_SIZE) };
	if (!a.buf)
		fail("copy-out: out of memory");
	walk_volumes(j, &a);
	ar_header(&a, "TRAILER!!!", 0, 0, 0);
	ar_flush(&a);
}
#else
static void copy_out(const struct job *j) { (void)j; } /* no volumes in host tests */
#endif

/* ---- running the program ------------------------------------------------ */

static volatile sig_atomic_t got_sigchld;
static void on_sigchld(int sig) { (void)sig; got_sigchld = 1; }

/* In the child: report why the program could not be started and exit. */
static _Noreturn void child_fail(int fd, const char *what, const char *arg)
{
	char msg[1024];
	int n = snprintf(msg, sizeof msg, "%s %s: %s", what, arg, strerror(errno));
	if (n > 0)
		write_all(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	_exit(127);
}

#include "container.c"

static void child(const struct job *j, const sigset_t *mask, int tty, int in, int out, int err, int errpipe)
{
	sigprocmask(SIG_SETMASK, mask, NULL);
	signal(SIGPIPE, SIG_DFL); /* an ignored signal would stay ignored across execve */
	setsid();
	if (tty) {
		if (ioctl(out, TIOCSCTTY, 0))
			child_fail(errpipe, "ioctl TIOCSCTTY", HVC "0");
	}
	/* fds 0-2 are always in use in the init (see main), so dup2 never hits its own fd. */
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		child_fail(errpipe, "dup2", "stdio");
	if (j->container) {
		container_child_enter(j, j->container, errpipe);
		if (chdir(j->workdir))
			child_fail(errpipe, "chdir", j->workdir);
		exec_lookup(j->argv, j->env, errpipe);
	}
	if (chdir(j->workdir))
		child_fail(errpipe, "chdir", j->workdir);
#ifndef SVM_INIT_HOST_TEST
	if (j->uid || j->gid) {
		if (setgroups(0, NULL))
			child_fail(errpipe, "setgroups", "[]");
		if (setgid(j->gid))
			child_fail(errpipe, "setgid", "job gid");
		if (setuid(j->uid))
			child_fail(errpipe, "setuid", "job uid");
	}
#endif
	execve(j->argv[0], j->argv, j->env);
	child_fail(errpipe, "execve", j->argv[0]);
}

/* Console mode: mark every line so program output stands out from kernel messages. */
static void write_prefixed(int fd, const char *prefix, int *at_start, const char *p, size_t n)
{
	while (n > 0) {
		if (*at_start)
			write_all(fd, prefix, strlen(prefix));
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) + 1 : n;
		write_all(fd, p, len);
		*at_start = nl != NULL;
		p += len;
		n -= len;
	}
}

/* Host -> guest control frames, parsed as bytes arrive (frames may span reads). */
struct ctl_parser {
	uint8_t hdr[5], arg[8]; /* arg: the first payload bytes of a 'W', 'S', 'K', 'i', 'e' or 'k' frame */
	uint32_t hdr_len, left, alen;
	uint8_t *body;          /* a whole 'P' frame (exec.c), NULL if too large or no memory */
	uint32_t blen;
	int stop;               /* an 'S' frame came: the run loop terminates the program */
	uint32_t stop_grace_ms;
	int signal_pending, signal_all; /* a 'K' frame came: deliver signal_no */
	int signal_no;
};

struct stdin_state {
	int fd;            /* write end of the program's stdin pipe, -1 once closed */
	int eof;           /* 'E' seen: close once pending data is written */
	char *buf;
	size_t start, end; /* pending bytes not yet taken by the pipe */
};

static void frame_done(struct ctl_parser *c, struct stdin_state *s, const struct job *j)
{
	uint8_t type = c->hdr[0];
	if (type == 'E') {
		s->eof = 1;
	} else if (type == 'W' && c->alen == 4 && (j->flags & FLAG_TTY)) {
		struct winsize ws = { .ws_row = (unsigned short)(c->arg[0] | c->arg[1] << 8),
				      .ws_col = (unsigned short)(c->arg[2] | c->arg[3] << 8) };
		ioctl(out_fd, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH */
	} else if (type == 'S' && !c->stop) {
		/* Only the first counts: a repeated request must not restart the grace period. */
		c->stop = 1;
		c->stop_grace_ms = get_le32(c->hdr + 1) == 4 ? get_le32(c->arg) : STOP_DEFAULT_GRACE_MS;
	} else if (type == 'K' && c->alen == 8 && j->container) {
		c->signal_pending = 1;
		c->signal_no = (int)get_le32(c->arg);
		c->signal_all = get_le32(c->arg + 4) != 0;
	} else if (type == 'P' && c->body) {
		exec_start(j, c->body, c->blen);
	} else if (type == 'e' && c->alen == 4) {
		exec_stdin_eof(get_le32(c->arg));
	} else if (type == 'k' && c->alen == 8) {
		exec_signal(get_le32(c->arg), get_le32(c->arg + 4));
	}
	free(c->body);
	c->body = NULL;
	c->hdr_len = 0;
}

static void parse_ctl(struct ctl_parser *c, struct stdin_state *s, const struct job *j, const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (c->hdr_len < 5) {
			c->hdr[c->hdr_len++] = p[i++];
			if (c->hdr_len == 5) {
				c->left = get_le32(c->hdr + 1);
				c->alen = 0;
				c->blen = 0;
				/* An exec request is parsed whole; an oversized one is skipped unanswered. */
				if (c->hdr[0] == 'P' && c->left <= MAX_FRAME && j->container)
					c->body = malloc(c->left ? c->left : 1);
				if (c->left == 0)
					frame_done(c, s, j);
			}
			continue;
		}
		size_t take = n - i < c->left ? n - i : c->left;
		if (c->hdr[0] == 'I' && s->fd >= 0) {
			/* Fits: control input is only read while nothing is pending. */
			memcpy(s->buf + s->end, p + i, take);
			s->end += take;
		} else if (c->hdr[0] == 'W' || c->hdr[0] == 'S' || c->hdr[0] == 'K' || c->hdr[0] == 'e' ||
			   c->hdr[0] == 'k') {
			for (size_t k = 0; k < take && c->alen < sizeof c->arg; k++)
				c->arg[c->alen++] = p[i + k];
		} else if (c->hdr[0] == 'P' && c->body) {
			memcpy(c->body + c->blen, p + i, take);
			c->blen += (uint32_t)take;
		} else if (c->hdr[0] == 'i') {
			/* u32 id, then data for that exec's stdin. Fits, as for 'I': control
			 * input is only read while no exec's stdin has bytes waiting. */
			size_t k = 0;
			while (k < take && c->alen < 4)
				c->arg[c->alen++] = p[i + k++];
			struct stdin_state *t = c->alen == 4 && k < take ? exec_stdin_of(get_le32(c->arg)) : NULL;
			if (t) {
				memcpy(t->buf + t->end, p + i + k, take - k);
				t->end += take - k;
			}
		} /* other types: skipped, so newer hosts can add frames */
		i += take;
		c->left -= (uint32_t)take;
		if (c->left == 0)
			frame_done(c, s, j);
	}
}

static void close_stdin(struct stdin_state *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->start = s->end = 0;
}

/* Moves pending stdin into the pipe without blocking (the program may not be reading). */
static void flush_stdin(struct stdin_state *s)
{
	while (s->fd >= 0 && s->start < s->end) {
		ssize_t n = write(s->fd, s->buf + s->start, s->end - s->start);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) { /* EPIPE: the program closed its stdin; drop the rest */
			close_stdin(s);
			return;
		}
		s->start += (size_t)n;
	}
	s->start = s->end = 0;
	if (s->eof)
		close_stdin(s);
}

/* Copies one readable pipe to its channel; returns 0 at EOF. */
static int pump(int from, int to, const char *prefix, int *at_start, char *buf)
{
	ssize_t n = read(from, buf, BUF_SIZE);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return 0;
	if (console_mode)
		write_prefixed(to, prefix, at_start, buf, (size_t)n);
	else
		write_all(to, buf, (size_t)n); /* on error keep draining so the program is not stuck */
	return 1;
}

#include "exec.c"

static void run(const struct job *j, int devnull)
{
	int tty = (j->flags & FLAG_TTY) && !console_mode;
	int has_stdin = (j->flags & FLAG_HAS_STDIN) && !console_mode && !tty && ctl_in >= 0;
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 }, ipipe[2] = { -1, -1 }, errpipe[2];
	sigset_t block, orig;

	/* SIGCHLD stays blocked except inside ppoll, so a child exit always wakes the loop. */
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &orig);
	struct sigaction sa = { .sa_handler = on_sigchld };
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (j->container)
		exec_init(&orig, devnull);

	if (pipe2(errpipe, O_CLOEXEC) ||
	    (!tty && (pipe2(opipe, O_CLOEXEC) || pipe2(epipe, O_CLOEXEC))) ||
	    (has_stdin && pipe2(ipipe, O_CLOEXEC)))
		fail("pipe: %s", strerror(errno));

	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		if (tty)
			child(j, &orig, 1, out_fd, out_fd, out_fd, errpipe[1]);
		child(j, &orig, 0, has_stdin ? ipipe[0] : devnull, opipe[1], epipe[1], errpipe[1]);
	}
	close(errpipe[1]);
	if (!tty) {
		close(opipe[1]);
		close(epipe[1]);
	}
	if (has_stdin) {
		close(ipipe[0]);
		fcntl(ipipe[1], F_SETFL, O_NONBLOCK);
	}

	/* The error pipe closes on a successful execve; anything in it is why exec failed. */
	char msg[1024];
	ssize_t n, got = 0;
	while ((n = read(errpipe[0], msg + got, sizeof msg - 1 - (size_t)got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += n;
	}
	close(errpipe[0]);
	if (got > 0) {
		msg[got] = 0;
		waitpid(pid, NULL, 0);
		fail("%s", msg);
	}

	char *buf = malloc(BUF_SIZE), *cbuf = malloc(BUF_SIZE);
	struct stdin_state in = { .fd = has_stdin ? ipipe[1] : -1, .buf = malloc(BUF_SIZE) };
	struct ctl_parser cp = { 0 };
	int out_open = !tty, err_open = !tty, out_line = 1, err_line = 1, reaped = 0, status = 0;
	int term_sent = 0, kill_sent = 0;
	int64_t kill_at = 0; /* CLOCK_MONOTONIC ns: SIGKILL if the program is still there */
	if (!buf || !cbuf || !in.buf)
		fail("out of memory");

	for (;;) {
		/* As PID 1 the init also inherits orphans: reap them all, keep the program's status. */
		pid_t w;
		int st;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0 || (w < 0 && errno == EINTR))
			if (w == pid) {
				reaped = 1;
				status = st;
			} else if (j->container) {
				exec_reaped(w, st, buf);
			}
		if (reaped && !out_open && !err_open)
			break;
		/* Stop ('S'): SIGTERM to the program's process group (it is a session leader, see
		 * child()), SIGKILL when the grace period is over. SIGCONT too, or a stopped job
		 * would sit out the whole grace period. */
		struct timespec left, *timeout = NULL;
		if (cp.stop && !reaped && !kill_sent) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
			if (!term_sent) {
				kill(-pid, SIGTERM);
				kill(-pid, SIGCONT);
				term_sent = 1;
				kill_at = now_ns + (int64_t)cp.stop_grace_ms * 1000000;
			}
			if (now_ns >= kill_at) {
				kill(-pid, SIGKILL);
				kill_sent = 1;
			} else {
				left.tv_sec = (time_t)((kill_at - now_ns) / 1000000000);
				left.tv_nsec = (long)((kill_at - now_ns) % 1000000000);
				timeout = &left;
			}
		}
		struct pollfd fds[4 + 3 * MAX_EXECS] = {
			{ .fd = out_open ? opipe[0] : -1, .events = POLLIN },
			{ .fd = err_open ? epipe[0] : -1, .events = POLLIN },
			/* Read control input only when pending stdin has gone into the pipe:
			 * that is the back-pressure towards the host. Not after the program
			 * ended: only its output is still wanted then. */
			{ .fd = ctl_in >= 0 && in.start == in.end && !exec_stdin_pending() && !reaped ? ctl_in : -1,
			  .events = POLLIN },
			{ .fd = in.fd >= 0 && in.start < in.end ? in.fd : -1, .events = POLLOUT },
		};
		/* Once the program is gone, take only what is already there: a background
		 * process still holding the pipes must not keep the VM alive. */
		struct timespec zero = { 0, 0 };
		/* The execs' streams (exec.c) after the main process's: they end with the VM. */
		if (j->container)
			exec_poll_fill(fds + 4);
		int r = ppoll(fds, j->container ? 4 + 3 * MAX_EXECS : 4, reaped ? &zero : timeout, &orig);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("ppoll: %s", strerror(errno));
		}
		if (r == 0 && reaped)
			break;
		if (fds[0].revents && !pump(opipe[0], out_fd, "[stdout] ", &out_line, buf))
			out_open = 0;
		if (fds[1].revents && !pump(epipe[0], err_fd, "[stderr] ", &err_line, buf))
			err_open = 0;
		if (fds[2].revents) {
			n = read(ctl_in, cbuf, BUF_SIZE);
			if (n > 0)
				parse_ctl(&cp, &in, j, (uint8_t *)cbuf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				ctl_in = -1; /* control input gone: stdin can get no more data */
				in.eof = 1;
			}
			flush_stdin(&in);
			exec_flush_all();
		}
		if (fds[3].revents)
			flush_stdin(&in);
		if (j->container)
			exec_poll_handle(fds + 4, buf);
		/* 'K' (svm-runtime kill): to the container's process, or with --all to every
		 * process but the init (kill(-1) from PID 1 spares the caller). */
		if (cp.signal_pending && !reaped) {
			kill(cp.signal_all ? -1 : pid, cp.signal_no);
			cp.signal_pending = 0;
		}
	}

	uint8_t x[5];
	if (WIFSIGNALED(status)) {
		x[0] = 's';
		put_le32(x + 1, (uint32_t)WTERMSIG(status));
	} else {
		x[0] = 'e';
		put_le32(x + 1, (uint32_t)WEXITSTATUS(status));
	}
	if (console_mode) {
		char line[64];
		int len = snprintf(line, sizeof line, "svm-init: program %s %u\n",
				   x[0] == 's' ? "killed by signal" : "exited with status", get_le32(x + 1));
		write_all(out_fd, line, (size_t)len);
	}
	/* X first: the host knows the program's status even if the copy-out fails ('F'). */
	send_frame('X', x, sizeof x);
	copy_out(j);
	finish();
}

int main(int argc, char **argv)
{
	struct job job = { 0 };
	int devnull;
#ifdef SVM_INIT_HOST_TEST
	if (argc == 3 && !strcmp(argv[1], "--dump-job")) {
		read_job(argv[2], &job);
		printf("flags=%u uid=%u gid=%u rows=%u cols=%u\n", job.flags, job.uid, job.gid, job.rows, job.cols);
		for (char **a = job.argv; *a; a++)
			printf("arg=%s\n", *a);
		for (char **e = job.env; *e; e++)
			printf("env=%s\n", *e);
		printf("workdir=%s\n", job.workdir);
		for (uint32_t i = 0; i < job.nvol; i++)
			printf("volume=%s ro=%u live=%u\n", job.vol_path[i], job.vol_flags[i] & VOL_READ_ONLY,
			       (job.vol_flags[i] & VOL_LIVE) != 0);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s JOB | --dump-job JOB\n", argv[0]);
		return 2;
	}
	out_fd = 1;
	err_fd = 2;
	/* Close-on-exec like the real channels, so the program does not inherit them. */
	if (fcntl(3, F_SETFD, FD_CLOEXEC) == 0)
		ctl_in = 3;
	if (fcntl(4, F_SETFD, FD_CLOEXEC) == 0)
		ctl_out = 4;
	send_frame('R', NULL, 0);
	read_job(argv[1], &job);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
#else
	(void)argc;
	(void)argv;
	/* /dev first: the consoles live there, and failures after this point can be reported. */
	mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL);
	/* Without /dev/console in the initramfs the kernel leaves fds 0-2 closed; fill them so
	 * no later descriptor lands there (dup2 onto itself would keep O_CLOEXEC). */
	while ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && devnull <= 2)
		fcntl(devnull, F_SETFD, 0);
	if (devnull < 0)
		fail("open /dev/null: %s", strerror(errno));
	open_channels();
	/* Ready: hvc2 is raw, so the host may send control frames from now on. */
	send_frame('R', NULL, 0);
	read_job("/svm/job", &job);
	if (job.container) {
		/* The container's own /proc, /sys, /dev/shm come from its mounts, in its root. */
		container_mounts(job.container, (job.flags & FLAG_TTY) != 0);
	} else {
		mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
		mount_fs("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	}
	mount_volumes(&job);
	take_inventory(&job);
	if (!(job.flags & FLAG_TTY)) {
		make_raw(out_fd);
	} else if (job.rows || job.cols) {
		/* With a tty, hvc0 is the program's terminal and stays cooked like any terminal. */
		struct winsize ws = { .ws_row = (unsigned short)job.rows, .ws_col = (unsigned short)job.cols };
		ioctl(out_fd, TIOCSWINSZ, &ws);
	}
#endif
	/* A container waits here, set up, until the engine starts it; its workdir is made in
	 * its root by the child. */
	if (job.container)
		wait_for_start();
	/* A missing workdir is created (owned by the program's user), as container runtimes do. */
	struct stat st;
	if (!job.container && stat(job.workdir, &st) && mkdir_p(job.workdir, 0755) && (job.uid || job.gid))
		if (chown(job.workdir, job.uid, job.gid))
			fail("chown %s: %s", job.workdir, strerror(errno));
	run(&job, devnull);
}
