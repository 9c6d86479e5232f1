/*
 * svm-init's exec agent (svm-runtime exec): more processes in a running container, on
 * the host's request. PROTOCOL.md, "Exec".
 *
 *   'P' (host)   start a process: id, flags, identity, argv, env, cwd, capabilities
 *   'i' / 'e'    its stdin data / end of file        'k'  a signal for it
 *   'o' (guest)  its stdout or stderr bytes          'x'  its end       'f'  it could not start
 *
 * Each exec'd process is set up like the container's process (container_child_enter:
 * chroot, rlimits, umask, groups, identity, capabilities, no_new_privs) with the identity,
 * groups, capabilities, environment and directory the request gives. Its streams are
 * pipes the run loop in svm-init.c polls beside the main process's.
 *
 * Everything here comes from the host: a malformed request is answered with an 'f'
 * frame (or ignored when it has not even an id), frames for unknown ids are dropped.
 *
 * Included by svm-init.c after the stdin helpers (one translation unit).
 */

#define MAX_EXECS 64
#define EXEC_MAX_REQUEST (1u << 20) /* ControlFrame.maxPayload */
#define EXEC_HAS_STDIN 1u
#define EXEC_NO_NEW_PRIVS 2u
#define EXEC_CAPS 4u
#define EXEC_STDOUT 1
#define EXEC_STDERR 2
/* Reads of a finished process's pipes: what it left is there at once; a background
 * child that keeps writing must not hold the run loop. */
#define EXEC_DRAIN_READS 16

struct exec_request {
	uint32_t id, flags, uid, gid, ngroups;
	uint32_t *groups;
	char **argv, **env, *cwd;
	uint64_t caps[5];
};

struct exec_proc {
	uint32_t id;
	pid_t pid;              /* 0: the slot is free */
	int out, err;           /* read ends of its stdout/stderr pipes, -1 at end of file */
	struct stdin_state in;  /* write end of its stdin pipe and what waits for it */
};

static struct exec_proc execs[MAX_EXECS];
static sigset_t exec_mask;  /* the init's signal mask before run() blocked SIGCHLD */
static int exec_devnull = -1;
static uint8_t *exec_frame;  /* 9 header bytes + one pipe read */

static void exec_init(const sigset_t *mask, int devnull)
{
	exec_mask = *mask;
	exec_devnull = devnull;
	for (int i = 0; i < MAX_EXECS; i++)
		execs[i].out = execs[i].err = execs[i].in.fd = -1;
	if (!(exec_frame = malloc(10 + BUF_SIZE)))
		fail("exec: out of memory");
}

/* One guest -> host frame: type, length, u32 id, then `extra` (0 or 1 byte) and data. */
static void exec_send(uint8_t type, uint32_t id, const uint8_t *extra, size_t nextra, const void *data, size_t len)
{
	if (ctl_out < 0 || len > BUF_SIZE)
		return;
	uint32_t payload = (uint32_t)(4 + nextra + len);
	exec_frame[0] = type;
	put_le32(exec_frame + 1, payload);
	put_le32(exec_frame + 5, id);
	if (nextra)
		memcpy(exec_frame + 9, extra, nextra);
	if (len)
		memcpy(exec_frame + 9 + nextra, data, len);
	write_all(ctl_out, exec_frame, 5 + payload);
}

static void exec_fail(uint32_t id, const char *msg)
{
	exec_send('f', id, NULL, 0, msg, strlen(msg));
}

static struct exec_proc *exec_find(uint32_t id)
{
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i].pid > 0 && execs[i].id == id)
			return &execs[i];
	return NULL;
}

/* Where an 'i' frame's data goes: the process's pending stdin, or nowhere. */
static struct stdin_state *exec_stdin_of(uint32_t id)
{
	struct exec_proc *e = exec_find(id);
	return e && e->in.fd >= 0 && !e->in.eof ? &e->in : NULL;
}

/* Control input is read only while no exec's stdin has bytes waiting (the same
 * back-pressure as the main process's stdin), so one read always fits a buffer. */
static int exec_stdin_pending(void)
{
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i].pid > 0 && execs[i].in.start < execs[i].in.end)
			return 1;
	return 0;
}

static void exec_stdin_eof(uint32_t id)
{
	struct exec_proc *e = exec_find(id);
	if (e) {
		e->in.eof = 1;
		flush_stdin(&e->in);
	}
}

static void exec_signal(uint32_t id, uint32_t sig)
{
	struct exec_proc *e = exec_find(id);
	if (e && sig > 0 && sig < 65)
		kill(e->pid, (int)sig);
}

static void exec_request_free(struct exec_request *r)
{
	for (char **p = r->argv; p && *p; p++)
		free(*p);
	for (char **p = r->env; p && *p; p++)
		free(*p);
	free(r->argv);
	free(r->env);
	free(r->cwd);
	free(r->groups);
}

/* Returns NULL on success, else what is wrong (the id is read first, always). */
static const char *exec_parse(const uint8_t *p, size_t len, struct exec_request *r)
{
	struct reader rd = { p, len };
	if (rd_u32(&rd, &r->flags) || rd_u32(&rd, &r->uid) || rd_u32(&rd, &r->gid))
		return "truncated header";
	if (rd_u32(&rd, &r->ngroups) || r->ngroups > rd.left / 4 || r->ngroups > 65536)
		return "bad group count";
	if (!(r->groups = calloc((size_t)r->ngroups + 1, sizeof *r->groups)))
		return "out of memory";
	for (uint32_t i = 0; i < r->ngroups; i++)
		if (rd_u32(&rd, &r->groups[i]))
			return "bad groups";
	if (rd_strv(&rd, &r->argv) || !r->argv[0] || !r->argv[0][0])
		return "bad argv";
	if (rd_strv(&rd, &r->env))
		return "bad env";
	if (rd_str(&rd, &r->cwd) || r->cwd[0] != '/')
		return "bad cwd (must be absolute)";
	if (r->flags & EXEC_CAPS)
		for (int i = 0; i < 5; i++)
			if (rd_u64(&rd, &r->caps[i]))
				return "bad capabilities";
	if (rd.left)
		return "trailing bytes";
	return NULL;
}

/* The exec'd process: the container's set-up with the request's identity and sets. */
static _Noreturn void exec_child(const struct job *j, const struct exec_request *r, int in, int out, int err, int errpipe)
{
	sigprocmask(SIG_SETMASK, &exec_mask, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		child_fail(errpipe, "dup2", "stdio");
	struct job ej = *j;
	ej.uid = r->uid;
	ej.gid = r->gid;
	ej.workdir = r->cwd;
	struct container ec = *j->container;
	ec.groups = r->groups;
	ec.ngroups = r->ngroups;
	ec.cflags &= ~(CFLAG_NO_NEW_PRIVS | CFLAG_CAPS);
	if (r->flags & EXEC_NO_NEW_PRIVS)
		ec.cflags |= CFLAG_NO_NEW_PRIVS;
	if (r->flags & EXEC_CAPS) {
		ec.cflags |= CFLAG_CAPS;
		memcpy(ec.caps, r->caps, sizeof ec.caps);
	}
	container_child_enter(&ej, &ec, errpipe);
	if (chdir(r->cwd))
		child_fail(errpipe, "chdir", r->cwd);
	exec_lookup(r->argv, r->env, errpipe);
	_exit(127); /* not reached: exec_lookup execs or fails */
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A 'P' frame: start the process, or say why not ('f'). */
static void exec_start(const struct job *j, const uint8_t *p, size_t len)
{
	struct exec_request r = { 0 };
	if (len < 4)
		return; /* not even an id to answer to */
	r.id = get_le32(p);
	const char *err = exec_parse(p + 4, len - 4, &r);
	struct exec_proc *slot = NULL;
	for (int i = 0; i < MAX_EXECS && !slot; i++)
		if (execs[i].pid == 0)
			slot = &execs[i];
	if (!err && exec_find(r.id))
		err = "exec id already in use";
	if (!err && !slot)
		err = "too many processes started by exec (64 at once)";
	if (!err && !j->container)
		err = "exec needs a container";
	/* A stdin buffer per slot, made on first use and kept (most containers never exec). */
	if (!err && !slot->in.buf && !(slot->in.buf = malloc(BUF_SIZE)))
		err = "exec: out of memory";
	if (err) {
		char msg[128];
		snprintf(msg, sizeof msg, "malformed exec request: %s", err);
		exec_fail(r.id, strstr(err, "exec") ? err : msg);
		exec_request_free(&r);
		return;
	}
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 }, ipipe[2] = { -1, -1 }, errpipe[2] = { -1, -1 };
	int has_stdin = (r.flags & EXEC_HAS_STDIN) != 0;
	if (pipe2(errpipe, O_CLOEXEC) || pipe2(opipe, O_CLOEXEC) || pipe2(epipe, O_CLOEXEC) ||
	    (has_stdin && pipe2(ipipe, O_CLOEXEC))) {
		char msg[128];
		snprintf(msg, sizeof msg, "pipe: %s", strerror(errno));
		exec_fail(r.id, msg);
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		char msg[128];
		snprintf(msg, sizeof msg, "fork: %s", strerror(errno));
		exec_fail(r.id, msg);
		goto out;
	}
	if (pid == 0)
		exec_child(j, &r, has_stdin ? ipipe[0] : exec_devnull, opipe[1], epipe[1], errpipe[1]);
	close_fd(&errpipe[1]);
	/* The error pipe closes on a successful execve; anything in it is why it failed. */
	char msg[1024];
	ssize_t n, got = 0;
	while ((n = read(errpipe[0], msg + got, sizeof msg - 1 - (size_t)got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	if (got > 0) {
		/* It exits 127 at once; the run loop reaps it as an orphan. */
		exec_send('f', r.id, NULL, 0, msg, (size_t)got);
		goto out;
	}
	slot->id = r.id;
	slot->pid = pid;
	slot->out = opipe[0];
	slot->err = epipe[0];
	opipe[0] = epipe[0] = -1;
	fcntl(slot->out, F_SETFL, O_NONBLOCK);
	fcntl(slot->err, F_SETFL, O_NONBLOCK);
	slot->in.fd = -1;
	slot->in.eof = 0;
	slot->in.start = slot->in.end = 0;
	if (has_stdin) {
		slot->in.fd = ipipe[1];
		ipipe[1] = -1;
		fcntl(slot->in.fd, F_SETFL, O_NONBLOCK);
	}
out:
	for (int k = 0; k < 2; k++) {
		close_fd(&opipe[k]);
		close_fd(&epipe[k]);
		close_fd(&ipipe[k]);
		close_fd(&errpipe[k]);
	}
	exec_request_free(&r);
}

/* One read of a pipe into an 'o' frame; returns 0 at end of file (or on an error). */
static int exec_pump(struct exec_proc *e, int *fd, uint8_t stream, char *buf)
{
	ssize_t n = read(*fd, buf, BUF_SIZE);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n <= 0) {
		close_fd(fd);
		return 0;
	}
	exec_send('o', e->id, &stream, 1, buf, (size_t)n);
	return 1;
}

/* Three poll slots per exec, at fixed places: stdout, stderr, stdin (when bytes wait). */
static void exec_poll_fill(struct pollfd *fds)
{
	for (int i = 0; i < MAX_EXECS; i++) {
		struct exec_proc *e = &execs[i];
		int live = e->pid > 0;
		fds[3 * i] = (struct pollfd){ .fd = live ? e->out : -1, .events = POLLIN };
		fds[3 * i + 1] = (struct pollfd){ .fd = live ? e->err : -1, .events = POLLIN };
		fds[3 * i + 2] = (struct pollfd){ .fd = live && e->in.fd >= 0 && e->in.start < e->in.end ? e->in.fd : -1,
						  .events = POLLOUT };
	}
}

static void exec_poll_handle(const struct pollfd *fds, char *buf)
{
	for (int i = 0; i < MAX_EXECS; i++) {
		struct exec_proc *e = &execs[i];
		if (e->pid <= 0)
			continue;
		if (fds[3 * i].revents && fds[3 * i].fd == e->out)
			exec_pump(e, &e->out, EXEC_STDOUT, buf);
		if (fds[3 * i + 1].revents && fds[3 * i + 1].fd == e->err)
			exec_pump(e, &e->err, EXEC_STDERR, buf);
		if (fds[3 * i + 2].revents)
			flush_stdin(&e->in);
	}
}

static void exec_flush_all(void)
{
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i].pid > 0)
			flush_stdin(&execs[i].in);
}

/* What a finished process left in a pipe (non-blocking: stops when it is empty). */
static void exec_drain(struct exec_proc *e, int fd, uint8_t stream, char *buf)
{
	for (int k = 0; k < EXEC_DRAIN_READS && fd >= 0; k++) {
		ssize_t n = read(fd, buf, BUF_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		exec_send('o', e->id, &stream, 1, buf, (size_t)n);
	}
}

/* A reaped child: if it is an exec'd process, send what its pipes hold, then its end. */
static void exec_reaped(pid_t pid, int status, char *buf)
{
	for (int i = 0; i < MAX_EXECS; i++) {
		struct exec_proc *e = &execs[i];
		if (e->pid != pid)
			continue;
		exec_drain(e, e->out, EXEC_STDOUT, buf);
		exec_drain(e, e->err, EXEC_STDERR, buf);
		close_fd(&e->out);
		close_fd(&e->err);
		close_stdin(&e->in);
		e->in.eof = 0;
		uint8_t x[5];
		x[0] = WIFSIGNALED(status) ? 's' : 'e';
		put_le32(x + 1, (uint32_t)(WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)));
		exec_send('x', e->id, x, sizeof x, NULL, 0);
		e->pid = 0;
		return;
	}
}
