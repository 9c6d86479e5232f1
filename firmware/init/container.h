/*
 * The container section of a job (container.c, PROTOCOL.md "Containers"), declared before
 * struct job uses it.
 */
#define CONTAINER_ROOT "/svm/root"
#define CFLAG_READONLY_ROOT 1u
#define CFLAG_NO_NEW_PRIVS 2u
#define CFLAG_UMASK 4u
#define CFLAG_CAPS 8u
#define MOUNT_FS 0u
#define MOUNT_SHARE 1u
#define MOUNT_FILE 2u

struct cmount {
	uint32_t kind, flags;
	char *source, *dest, *data;
};

struct crlimit {
	uint32_t resource;
	uint64_t soft, hard;
};

struct container {
	char *hostname;
	uint32_t cflags, umask, ngroups, nrlimit, nmount;
	uint32_t *groups;
	struct crlimit *rlimits;
	uint64_t caps[5]; /* bounding, effective, permitted, inheritable, ambient */
	struct cmount *mounts;
};

