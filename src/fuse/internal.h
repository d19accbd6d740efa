/* The FUSE server's private state: top-level entries, callback files, the
 * node table (node ids the guest holds) and the file handle table; a
 * request being served, and the helpers and operations the files of
 * src/fuse/ share. Only src/fuse/ includes this.
 *
 * Node ids: node id 1 is the virtual root. Every other id is
 * (generation << 32) | slot, with slot < NODE_MAX and a generation that
 * changes whenever the slot is freed, so an id of a forgotten node (or a
 * forged one) never reaches the slot's next occupant: it gets ESTALE.
 * File handles are built the same way (EBADF when unknown).
 *
 * Nodes and handles live in fixed-size chunks that never move, so a
 * pointer to one stays valid while others are allocated. */
#ifndef VMP_FUSE_INTERNAL_H
#define VMP_FUSE_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "fuse/server.h"

#define NODE_MAX       (1u << 20) /* nodes at once: beyond, ENFILE */
#define HANDLE_MAX     (1u << 16) /* open file handles at once: beyond, ENFILE */
#define CHUNK_SHIFT    12
#define CHUNK_SIZE     (1u << CHUNK_SHIFT)
#define NODE_CHUNKS    (NODE_MAX / CHUNK_SIZE)
#define HANDLE_CHUNKS  (HANDLE_MAX / CHUNK_SIZE)
#define ROOT_SLOT      1u
#define FUSE_ENTRY_MAX 1024u /* top-level entries */
#define FUSE_CB_MAX    4096u /* callback files */
/* Pieces of READ or WRITE data moved in one request: preadv's limit
 * (UIO_MAXIOV); data in pieces beyond is not moved (a short transfer). */
#define FUSE_IOV_MAX 1024u

/* Request scratch: the header and arguments of any request but WRITE's
 * data (the longest is SYMLINK: two names, the target up to PATH_MAX). */
#define IN_MAX (64u + 2u * (NAME_MAX + 1u) + PATH_MAX)
/* Reply scratch for everything but READ data (READDIR replies are capped
 * at OUT_MAX - header; the guest asks a page). */
#define OUT_MAX  (128u * 1024u)
#define DENT_MAX (32u * 1024u) /* getdents64 buffer */

enum node_kind {
	NODE_FREE = 0,
	NODE_ROOT, /* the virtual root, node id 1 */
	NODE_VDIR, /* a virtual directory: holds callback files */
	NODE_HOST, /* a host file of a share (fd is O_PATH) */
	NODE_CB,   /* a callback file */
};

struct fuse_node {
	uint32_t gen;
	uint8_t kind;
	bool pinned;    /* root, vdirs, share roots, callback files: never freed by FORGET */
	bool has_cb;    /* NODE_HOST directory holding callback files */
	uint32_t idx;   /* NODE_VDIR: entry index; NODE_CB: callback file index;
	                 * NODE_HOST: share (entry) index */
	uint32_t hnext; /* hash chain, or free list (slot index, 0 = none) */
	mode_t type;    /* NODE_HOST: st_mode & S_IFMT */
	int fd;         /* NODE_HOST: O_PATH|O_NOFOLLOW fd, else -1 */
	dev_t dev;      /* NODE_HOST */
	ino_t ino;      /* NODE_HOST */
	uint64_t nlookup;
};

enum handle_kind {
	HANDLE_FREE = 0,
	HANDLE_FILE, /* a host regular file */
	HANDLE_DIR,  /* a host directory */
	HANDLE_VDIR, /* the root or a virtual directory */
	HANDLE_CB,   /* a callback file */
};

struct fuse_handle {
	uint32_t gen;
	uint8_t kind;
	bool ro;       /* on a read-only share */
	bool readable; /* HANDLE_CB */
	bool writable; /* HANDLE_CB */
	bool has_cb;   /* HANDLE_DIR: the directory holds callback files */
	uint32_t idx;  /* FILE/DIR: share; CB: callback file; VDIR: node slot */
	uint32_t next; /* free list */
	int fd;
	dev_t dev; /* FILE/DIR: the host inode */
	ino_t ino;
};

enum entry_kind { ENTRY_SHARE, ENTRY_VDIR };

struct fuse_entry {
	char name[NAME_MAX + 1];
	uint8_t kind;
	bool ro;       /* ENTRY_SHARE */
	uint32_t slot; /* its pinned node */
};

struct fuse_cbfile {
	char name[NAME_MAX + 1];
	uint32_t entry; /* the share or vdir it is in */
	bool in_share;
	dev_t dev; /* in_share: the host directory */
	ino_t ino;
	unsigned mode; /* permission bits, r/w dropped where ops lacks them */
	vmproc_file_ops ops;
	void *userdata;
	uint32_t slot; /* its pinned node */
};

struct fuse_server {
	bool session;
	uint32_t minor;     /* negotiated */
	struct timespec t0; /* times of the virtual nodes */

	struct fuse_entry *entries;
	uint32_t nentries;
	struct fuse_cbfile *cbs;
	uint32_t ncbs;

	struct fuse_node *nchunk[NODE_CHUNKS];
	uint32_t nslots;    /* slots allocated (chunks * CHUNK_SIZE) */
	uint32_t nused;     /* slots ever handed out (high-water mark) */
	uint32_t node_free; /* free list head (0 = empty) */
	uint32_t nnodes;    /* live nodes */
	/* Host fds held for the guest (nodes' O_PATH fds, open files and
	 * directories) and the most it may hold: past it, what would take
	 * another gets ENFILE, so one guest cannot use up the process's fds. */
	uint32_t nfds, max_fds;
	uint32_t *buckets; /* hash of NODE_HOST nodes by (share, dev, ino) */
	uint32_t nbuckets; /* power of two */

	struct fuse_handle *hchunk[HANDLE_CHUNKS];
	uint32_t hslots, hused, handle_free, nhandles;

	uint8_t in[IN_MAX];
	uint8_t out[OUT_MAX];
	char dents[DENT_MAX];
	char path[64];
	struct iovec iov[FUSE_IOV_MAX];
};

/* nodes.c */
int fs_tables_init(struct fuse_server *s);
void fs_tables_free(struct fuse_server *s);
/* Drops every node but the pinned ones (whose nlookup goes to 0) and every
 * handle. */
void fs_tables_reset(struct fuse_server *s);
uint64_t fs_node_id(const struct fuse_server *s, uint32_t slot);
struct fuse_node *fs_node_at(const struct fuse_server *s, uint32_t slot);
/* The live node for a guest's node id, or NULL (slot, if not NULL, gets its
 * slot). */
struct fuse_node *fs_node_get(const struct fuse_server *s, uint64_t nodeid, uint32_t *slot);
/* -ENFILE if n more host fds would pass the server's budget, else 0. */
static inline int fs_fd_budget(const struct fuse_server *s, unsigned n)
{
	return s->nfds + n > s->max_fds ? -ENFILE : 0;
}

/* A new node (fields zero, fd -1) or -ENFILE / -ENOMEM. */
int fs_node_alloc(struct fuse_server *s, uint32_t *slot);
/* Closes the node's fd, unhashes and frees the slot. */
void fs_node_free(struct fuse_server *s, uint32_t slot);
uint32_t fs_node_find(const struct fuse_server *s, uint32_t share, dev_t dev, ino_t ino);
int fs_node_hash(struct fuse_server *s, uint32_t slot);
/* Decrements nlookup by n (clamped), freeing an unpinned node at 0. */
void fs_node_forget(struct fuse_server *s, uint64_t nodeid, uint64_t n);

uint64_t fs_handle_id(const struct fuse_server *s, uint32_t slot);
struct fuse_handle *fs_handle_get(const struct fuse_server *s, uint64_t fh);
/* A new handle of kind (other fields zero, fd -1) or -ENFILE / -ENOMEM. */
int fs_handle_alloc(struct fuse_server *s, uint8_t kind, uint64_t *fh, struct fuse_handle **hp);
/* Closes the handle's fd and frees it. */
void fs_handle_free(struct fuse_server *s, uint64_t fh);

#define HDR_IN  ((uint32_t)sizeof(struct fuse_in_header))
#define HDR_OUT ((uint32_t)sizeof(struct fuse_out_header))

/* A request being served. */
struct req {
	struct fuse_server *s;
	const struct iovec *in; /* the request */
	unsigned nin;
	const struct iovec *out; /* room for the reply */
	unsigned nout;
	struct fuse_in_header h;
	const uint8_t *arg; /* the arguments, copied into s->in */
	uint32_t arglen;    /* bytes of them in s->in */
	uint32_t reqlen;    /* h.len */
	uint32_t wlen;      /* writable bytes (capped at UINT32_MAX) */
	bool noreply;
	bool direct; /* the payload is already in out[] after the header */
};

/* A directory in which names are looked up. */
struct dir_ref {
	uint32_t share;
	bool has_cb;
	dev_t dev;
	ino_t ino;
	int fd;
};

/* server.c */
/* A negative errno (from the host or a callback) as a reply's error:
 * -1..-511 pass, anything else becomes -EIO. */
int fs_clamp_err(long e);
/* The NUL-terminated name at argument offset off; if last, it must end
 * exactly at the end of the request. *next: the offset after its NUL. */
int fs_arg_name(const struct req *r, uint32_t off, bool last, const char **name, uint32_t *next);

/* lookup.c */
/* One path component: no '/', no NUL, not "." or "..", 1..NAME_MAX bytes. */
bool fs_name_ok(const char *p, size_t len);
/* The index of the callback file name in the host directory (dev, ino)
 * of share, or UINT32_MAX. */
uint32_t fs_cb_find(const struct fuse_server *s, uint32_t share, dev_t dev, ino_t ino,
                    const char *name);
/* "/proc/self/fd/<fd>", in s->path. */
const char *fs_proc_path(struct fuse_server *s, int fd);
/* The node for a host O_PATH fd (taken over: closed if a node exists). */
int fs_host_node(struct fuse_server *s, uint32_t share, int fd, const struct stat *st,
                 uint32_t *slotp);
/* Looks name up in a host directory: callback files first. */
int fs_host_lookup(struct fuse_server *s, const struct dir_ref *d, const char *name,
                   struct fuse_entry_out *e);
struct dir_ref fs_node_dir(const struct fuse_node *n);
int fs_lookup_in(struct fuse_server *s, const struct fuse_node *parent, const char *name,
                 struct fuse_entry_out *e);
bool fs_share_ro(const struct fuse_server *s, uint32_t share);
/* The parent of a change: a writable host directory. */
int fs_change_dir(struct fuse_server *s, uint64_t nodeid, struct fuse_node **out);
bool fs_is_cb_name(const struct fuse_server *s, const struct fuse_node *dir, const char *name);
/* After a host object was created as name in dir: its entry. */
int fs_created_entry(struct fuse_server *s, const struct fuse_node *dir, const char *name,
                     mode_t type, mode_t perm, struct fuse_entry_out *e);

/* attr.c */
void fs_attr_from_stat(struct fuse_attr *a, const struct stat *st);
/* A node's attributes (st: the host inode's, if the caller has them) and
 * how long the guest may cache them. */
int fs_node_attr(struct fuse_server *s, uint32_t slot, const struct stat *st, struct fuse_attr *a,
                 uint64_t *valid);
/* Fills an entry for node slot, counting one lookup. */
int fs_entry_for(struct fuse_server *s, uint32_t slot, const struct stat *st,
                 struct fuse_entry_out *e);

/* The operations: each returns the reply's length in s->out (or, with
 * r->direct, in out[] after the header) or a negative errno. */
/* ops_entry.c */
long fs_op_lookup(struct req *r);
long fs_op_getattr(struct req *r);
long fs_op_setattr(struct req *r);
long fs_op_readlink(struct req *r);
long fs_op_symlink(struct req *r);
long fs_op_mknod(struct req *r);
long fs_op_mkdir(struct req *r);
long fs_op_unlink(struct req *r);
long fs_op_rmdir(struct req *r);
long fs_op_rename(struct req *r);
long fs_op_rename2(struct req *r);
long fs_op_link(struct req *r);
/* ops_file.c */
long fs_op_open(struct req *r);
long fs_op_create(struct req *r);
long fs_op_read(struct req *r);
long fs_op_write(struct req *r);
long fs_op_release(struct req *r); /* and RELEASEDIR */
long fs_op_flush(struct req *r);
long fs_op_fsync(struct req *r); /* and FSYNCDIR */
long fs_op_fallocate(struct req *r);
long fs_op_lseek(struct req *r);
/* ops_dir.c */
long fs_op_opendir(struct req *r);
long fs_op_readdir(struct req *r); /* and READDIRPLUS */

#endif
