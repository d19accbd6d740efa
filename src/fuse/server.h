/* The FUSE server behind vmproc's virtio-fs device: it answers the guest
 * kernel's FUSE requests (protocol: <linux/fuse.h>, 7.x) from host
 * directories and from host callbacks, in the caller's process.
 *
 * The tree the guest mounts is a virtual root directory (node 1, read-only)
 * whose entries are added before the guest mounts:
 *
 *   - host directories (fuse_server_add_dir), optionally read-only;
 *   - virtual directories (fuse_server_add_vdir), holding callback files;
 *   - callback files (fuse_server_add_file), placed in a virtual directory
 *     or in a directory of a share, where they shadow a host file of the
 *     same name.
 *
 * Confinement: the guest reaches host files only through file descriptors
 * the server opened beneath a share's root, one name at a time, never
 * following a symlink on the host (O_PATH|O_NOFOLLOW) and never resolving
 * "." or "..". Symlink targets are text for the guest kernel to resolve in
 * the guest. Device nodes are never opened and never created; set-user-ID
 * and set-group-ID bits are never set on the host. A read-only share
 * refuses every change with EROFS, whatever the guest's mount flags.
 *
 * Every request is parsed defensively: lengths, node ids, file handles,
 * names (no '/', no NUL inside, no "." or "..", at most NAME_MAX bytes),
 * offsets and sizes are checked; a bad request gets a FUSE error reply
 * (or none, for requests that take none) and never touches host state.
 *
 * Locks (GETLK/SETLK/SETLKW, flock) are answered ENOSYS, so the guest
 * kernel keeps POSIX and flock locks locally: they work between guest
 * processes and are not seen by the host. Extended attributes: ENOSYS
 * (the guest sees EOPNOTSUPP).
 *
 * Threading: one server per VM, no global state. fuse_server_handle is
 * not reentrant: its caller (the virtio-fs device, through the backend
 * table the VMM gives it) calls it from one thread at a time. The add
 * functions are called before the guest runs.
 *
 * The server knows nothing of virtio: a request arrives as host iovecs. */
#ifndef VMP_FUSE_SERVER_H
#define VMP_FUSE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/error.h"
#include "vmproc.h"

struct fuse_server;

int fuse_server_new(struct fuse_server **out, struct vmp_error *err);
/* Closes every host fd and releases everything (NULL is fine). */
void fuse_server_free(struct fuse_server *s);
/* The most host fds the server holds for the guest at once: an O_PATH fd
 * per file the guest has looked up and not forgotten, one per open file
 * or directory (default VMPROC_FD_LIMIT_DEFAULT). Past it LOOKUP, OPEN,
 * CREATE and OPENDIR get ENFILE. The shares' own roots count too. */
void fuse_server_set_fd_limit(struct fuse_server *s, unsigned max_fds);

/* Adds the top-level entry name (one path component) exposing the host
 * directory host_dir (opened now; -ENOTDIR / -ENOENT / -EACCES with a
 * message if it cannot be). -EEXIST if name is taken. */
int fuse_server_add_dir(struct fuse_server *s, const char *name, const char *host_dir,
                        bool read_only, struct vmp_error *err);
/* Adds the top-level entry name as an empty virtual directory (mode
 * 0755, owned by uid/gid 0). The guest cannot create files in it. */
int fuse_server_add_vdir(struct fuse_server *s, const char *name, struct vmp_error *err);
/* Adds the callback file `name` (one component) with permission bits
 * mode (07777 is masked to 0777) in directory rel_dir of the top-level
 * entry `entry`. rel_dir is "" for the entry itself or a relative path
 * of components separated by '/'; for a share it is resolved now, beneath
 * the share without following symlinks, and the file appears in that
 * host directory (identified by device and inode); for a virtual
 * directory it must be "". ops and userdata are kept (ops is copied);
 * the callbacks run on the thread that calls fuse_server_handle. */
int fuse_server_add_file(struct fuse_server *s, const char *entry, const char *rel_dir,
                         const char *name, unsigned mode, const vmproc_file_ops *ops,
                         void *userdata, struct vmp_error *err);

/* Serves one request. The buffers in[0..nin) hold the request (struct
 * fuse_in_header, its arguments, write data), the buffers out[0..nout)
 * take the reply (struct fuse_out_header, then the reply, read data
 * written straight into them: host files are read with preadv and
 * written with pwritev on these buffers, callback files get iovecs into
 * them). Both come from the guest: every length in them is checked.
 * Returns the number of bytes written into out[]: 0 for requests that
 * take no reply (FORGET, BATCH_FORGET, INTERRUPT) and when there is no
 * room for even a fuse_out_header. Never fails otherwise: errors go to
 * the guest as the reply's error field. */
uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
                            const struct iovec *out, unsigned nout);

/* Whether the guest has sent FUSE_INIT (a session exists). A snapshot
 * may only be taken of a device without a session. */
bool fuse_server_session_active(const struct fuse_server *s);
/* Forgets the session (the guest reset the device): every node and file
 * handle is dropped; the entries stay. */
void fuse_server_reset(struct fuse_server *s);

#endif
