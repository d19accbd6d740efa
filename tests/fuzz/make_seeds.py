#!/usr/bin/env python3
"""Seed corpora of the fuzz targets in tests/fuzz/, kept as text.

    tests/fuzz/make_seeds.py            rewrites tests/fuzz/corpus/*/*.hex:
                                        fuse (fuzz_virtiofs), blk, ports, mmio
    tests/fuzz/make_seeds.py --bin DIR HEX...
                                        converts .hex seeds to binary files in
                                        DIR (the build does this, into build/)

Each seed is described below with the helpers that follow the harness's input
format (documented at the top of each fuzz_<target>.c, and for the records the
device targets share, of fuzz_guest.h): a header byte, then records.
fuzz_virtiofs's come first; FUSE requests are built from <linux/fuse.h> (7.38) layouts.
Node ids and file handles the server hands out are not known in advance:
requests name them with patches (NODE(k) is the k-th most recent node id a
reply handed out, FH(k) the k-th most recent file handle).
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Header bits.
H_INIT = 1
H_RESET_AT_END = 2
# REQUEST flags.
F_FIXLEN, F_UNIQUE, F_HIPRIO = 1, 2, 4
# Patch sources.
def NODE(k=0): return 0x00 | k
def FH(k=0): return 0x10 | k
def FORGED(k=0): return 0x20 | k
def NEXTSLOT(k=0): return 0x30 | k
ROOT, ALLONES = 0x40, 0x50

NODEID_OFF = 16  # fuse_in_header.nodeid
ARG = 40         # sizeof(struct fuse_in_header)

# Opcodes (<linux/fuse.h>).
LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK = 1, 2, 3, 4, 5, 6
MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ, WRITE = 8, 9, 10, 11, 12, 13, 14, 15, 16
STATFS, RELEASE, FSYNC, SETXATTR, GETXATTR, FLUSH, INIT = 17, 18, 20, 21, 22, 25, 26
OPENDIR, READDIR, RELEASEDIR, FSYNCDIR, GETLK, ACCESS, CREATE = 27, 28, 29, 30, 31, 34, 35
INTERRUPT, DESTROY, IOCTL, POLL, BATCH_FORGET, FALLOCATE = 36, 38, 39, 40, 42, 43
READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE, SETUPMAPPING, SYNCFS, TMPFILE = (
    44, 45, 46, 47, 48, 50, 51)

# Linux open flags and modes.
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC = 0, 1, 2, 0o100, 0o200, 0o1000
O_DIRECTORY, O_NOFOLLOW = 0o200000, 0o400000
S_IFREG, S_IFDIR, S_IFIFO, S_IFCHR = 0o100000, 0o40000, 0o10000, 0o20000
# fuse_setattr_in.valid
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE = 1, 2, 4, 8
FATTR_ATIME, FATTR_MTIME, FATTR_FH, FATTR_ATIME_NOW, FATTR_MTIME_NOW = 16, 32, 64, 128, 256

# fuse_init_in.flags the Linux 6.1 driver sends (and FUSE_INIT_EXT).
INIT_FLAGS = 0x7ffff7ff | (1 << 30)

RAW_GPA = 0x10000
REP_GPA = 0x40000  # free guest memory for raw chains' reply buffers


def u8(v): return struct.pack("<B", v & 0xff)
def u16(v): return struct.pack("<H", v & 0xffff)
def u32(v): return struct.pack("<I", v & 0xffffffff)
def u64(v): return struct.pack("<Q", v & 0xffffffffffffffff)
def name(s): return s.encode() + b"\0" if isinstance(s, str) else s


def fuse(opcode, nodeid=1, args=b"", unique=0, length=None, uid=0, gid=0, pid=1):
    """A FUSE request: fuse_in_header then args. length: in.len as given
    (else the real length; REQUEST's F_FIXLEN sets it anyway)."""
    n = ARG + len(args) if length is None else length
    return (u32(n) + u32(opcode) + u64(unique) + u64(nodeid) + u32(uid) + u32(gid) +
            u32(pid) + u16(0) + u16(0) + args)


def request(req, flags=F_FIXLEN | F_UNIQUE, pieces=(), writes=(4096,), patches=()):
    """REQUEST record: req split into len(pieces)+1 readable buffers (pieces:
    lengths of all but the last), writable buffers of sizes writes, patches:
    (offset, source) pairs."""
    assert len(pieces) < 8 and len(writes) <= 8 and len(patches) <= 4
    r = u8(0) + u8(flags) + u8(len(pieces))
    r += b"".join(u16(p) for p in pieces)
    r += u8(len(writes)) + b"".join(u16(w) for w in writes)
    r += u8(len(patches)) + b"".join(u16(o) + u8(s) for o, s in patches)
    return r + u16(len(req)) + req


def op(opcode, args=b"", node=None, **kw):
    """A REQUEST for opcode on node (a patch source, or ROOT by default)."""
    patches = list(kw.pop("patches", ()))
    if node is not None:
        patches.insert(0, (NODEID_OFF, node))
    return request(fuse(opcode, 1, args), patches=patches, **kw)


def desc(slot, addr, length, flags=0, nxt=0):
    return u8(slot) + u64(addr) + u32(length) + u16(flags) + u16(nxt)


def raw(notify, descs=(), heads=(), skew=0, data=b""):
    """RAW record: descriptors and avail entries as given, data at RAW_GPA."""
    return (u8(1) + u8(notify) + u8(len(descs)) + b"".join(descs) + u8(len(heads)) +
            b"".join(u16(h) for h in heads) + u16(skew) + u16(len(data)) + data)


def mmio(off, val, write=True, width=4):
    return u8(2) + u16(off) + u32(val) + u8((1 if write else 0) | {4: 0, 1: 2, 2: 4, 8: 6}[width] )


def reset(init=True):
    return u8(3) + u8(1 if init else 0)


def seed(*records, header=H_INIT):
    return u8(header) + b"".join(records)


# Argument layouts.
def init_in(major=7, minor=38, readahead=131072, flags=INIT_FLAGS, flags2=0):
    return u32(major) + u32(minor) + u32(readahead) + u32(flags) + u32(flags2) + bytes(44)
def getattr_in(fh=0, flags=0): return u32(flags) + u32(0) + u64(fh)
def open_in(flags=O_RDONLY): return u32(flags) + u32(0)
def read_in(off=0, size=4096, fh=0): return u64(fh) + u64(off) + u32(size) + u32(0) + u64(0) + u32(0) + u32(0)
def write_in(off, size, fh=0): return u64(fh) + u64(off) + u32(size) + u32(0) + u64(0) + u32(0) + u32(0)
def release_in(fh=0, flags=0): return u64(fh) + u32(flags) + u32(0) + u64(0)
def flush_in(fh=0): return u64(fh) + u32(0) + u32(0) + u64(0)
def fsync_in(fh=0, datasync=0): return u64(fh) + u32(datasync) + u32(0)
def create_in(nm, flags=O_RDWR | O_CREAT, mode=S_IFREG | 0o644, umask=0o022):
    return u32(flags) + u32(mode) + u32(umask) + u32(0) + name(nm)
def mkdir_in(nm, mode=0o755, umask=0o022): return u32(mode) + u32(umask) + name(nm)
def mknod_in(nm, mode, rdev=0): return u32(mode) + u32(rdev) + u32(0o022) + u32(0) + name(nm)
def rename_in(old, new, newdir=1): return u64(newdir) + name(old) + name(new)
def rename2_in(old, new, newdir=1, flags=0): return u64(newdir) + u32(flags) + u32(0) + name(old) + name(new)
def link_in(newname, oldnode=1): return u64(oldnode) + name(newname)
def symlink_in(nm, target): return name(nm) + name(target)
def forget_in(n=1): return u64(n)
def batch_forget_in(items): return u32(len(items)) + u32(0) + b"".join(u64(a) + u64(b) for a, b in items)
def setattr_in(valid, size=0, mode=0, uid=0, gid=0, atime=0, mtime=0, fh=0):
    return (u32(valid) + u32(0) + u64(fh) + u64(size) + u64(0) + u64(atime) + u64(mtime) +
            u64(0) + u32(0) + u32(0) + u32(0) + u32(mode) + u32(0) + u32(uid) + u32(gid) + u32(0))
def lseek_in(off, whence, fh=0): return u64(fh) + u64(off) + u32(whence) + u32(0)
def fallocate_in(off, length, mode=0, fh=0): return u64(fh) + u64(off) + u64(length) + u32(mode) + u32(0)
def copy_in(off_in, off_out, length, fh_in=0, node_out=0, fh_out=0):
    return u64(fh_in) + u64(off_in) + u64(node_out) + u64(fh_out) + u64(off_out) + u64(length) + u64(0)
def access_in(mask): return u32(mask) + u32(0)
def interrupt_in(unique): return u64(unique)

# Offsets of file handles in arguments, for patches.
FH_AT_0 = ARG        # read, write, release, flush, fsync, lseek, fallocate, copy (fh_in)
FH_GETATTR = ARG + 8
FH_SETATTR = ARG + 8


def lookup(nm, node=ROOT, **kw):
    return op(LOOKUP, name(nm), node, **kw)


def with_fh(opcode, args, node=NODE(0), fh=FH(0), at=FH_AT_0, **kw):
    return op(opcode, args, node, patches=[(at, fh)], **kw)


SEEDS = {}

SEEDS["init"] = seed(request(fuse(INIT, 0, init_in()), writes=(80,)), header=0)
SEEDS["init_old_minor"] = seed(
    request(fuse(INIT, 0, init_in(minor=26, flags=0)), writes=(80,)),
    op(GETATTR, getattr_in()), header=0)
SEEDS["no_init_getattr"] = seed(op(GETATTR, getattr_in()), lookup("rw"), header=0)
SEEDS["lookup"] = seed(lookup("rw"), lookup("hello", NODE(0)), lookup("sub", NODE(1)),
                       lookup("inner", NODE(0)), lookup("missing", NODE(2)))
SEEDS["getattr"] = seed(op(GETATTR, getattr_in()), lookup("rw"), op(GETATTR, getattr_in(), NODE(0)),
                        lookup("hello", NODE(0)), op(GETATTR, getattr_in(), NODE(0)),
                        op(STATFS, b"", NODE(0)), op(ACCESS, access_in(4), NODE(0)))
SEEDS["open_read"] = seed(
    lookup("rw"), lookup("big", NODE(0)), op(OPEN, open_in(O_RDONLY), NODE(0)),
    with_fh(READ, read_in(100, 8192), writes=(16, 4000, 5000)),
    with_fh(READ, read_in(8990, 4096), writes=(4096 + 16,)),
    with_fh(READ, read_in(1 << 62, 0xffffffff), writes=(65535, 65535)),
    with_fh(LSEEK, lseek_in(0, 3)),
    with_fh(FLUSH, flush_in()),
    with_fh(RELEASE, release_in()))
SEEDS["create_write_release"] = seed(
    lookup("rw"), op(CREATE, create_in("new"), NODE(0), writes=(16 + 128 + 16,)),
    with_fh(WRITE, write_in(0, 24) + b"written by the guest...\n", pieces=(30, 20, 10)),
    with_fh(WRITE, write_in(4096, 4) + b"abcd", writes=(16 + 8,)),
    with_fh(FSYNC, fsync_in()),
    with_fh(FALLOCATE, fallocate_in(0, 8192)),
    with_fh(READ, read_in(0, 100)),
    with_fh(RELEASE, release_in()),
    op(SETATTR, setattr_in(FATTR_SIZE, size=10), NODE(0)),
    op(UNLINK, name("new"), NODE(1)))
SEEDS["mkdir"] = seed(
    lookup("rw"),                                                    # N0 rw
    op(MKDIR, mkdir_in("d"), NODE(0)),                               # N0 d, N1 rw
    op(MKDIR, mkdir_in("e", 0o700), NODE(0)),                        # N0 e, N1 d, N2 rw
    op(MKNOD, mknod_in("f", S_IFREG | 0o600), NODE(2)),              # N0 f .. N3 rw
    op(MKNOD, mknod_in("fifo", S_IFIFO | 0o600), NODE(3)),           # N0 fifo .. N4 rw
    op(MKNOD, mknod_in("dev", S_IFCHR | 0o600, (1 << 8) | 3), NODE(4)),
    op(RMDIR, name("d"), NODE(4)), op(RMDIR, name("e"), NODE(3)), op(RMDIR, name("d"), NODE(4)))
SEEDS["readdirplus"] = seed(
    op(OPENDIR, open_in(O_RDONLY | O_DIRECTORY)),
    with_fh(READDIRPLUS, read_in(0, 4096), node=ROOT),
    lookup("rw"), op(OPENDIR, open_in(O_RDONLY | O_DIRECTORY), NODE(0)),
    with_fh(READDIRPLUS, read_in(0, 4096), writes=(100, 900, 3096)),
    with_fh(READDIR, read_in(0, 4096), node=NODE(3)),
    with_fh(READDIR, read_in(3, 200), node=NODE(3)),
    with_fh(FSYNCDIR, fsync_in(), node=NODE(3)),
    with_fh(RELEASEDIR, release_in(), node=NODE(3)))
SEEDS["rename"] = seed(
    lookup("rw"), lookup("sub", NODE(0)),
    op(RENAME, rename_in("hello", "hello2"), NODE(1), patches=[(ARG, NODE(1))]),
    op(RENAME, rename_in("big", "moved"), NODE(1), patches=[(ARG, NODE(0))]),
    op(RENAME2, rename2_in("exec", "inlink", flags=2), NODE(1), patches=[(ARG, NODE(1))]),
    op(RENAME2, rename2_in("sub", "x", flags=1), NODE(1), patches=[(ARG, NODE(0))]),
    lookup("ro"), op(RENAME, rename_in("hello", "y"), NODE(0), patches=[(ARG, NODE(2))]))
SEEDS["setattr"] = seed(
    lookup("rw"), lookup("hello", NODE(0)),
    op(SETATTR, setattr_in(FATTR_MODE, mode=0o4777), NODE(0)),
    op(SETATTR, setattr_in(FATTR_SIZE, size=3), NODE(0)),
    op(SETATTR, setattr_in(FATTR_ATIME | FATTR_MTIME, atime=1, mtime=2), NODE(0)),
    op(SETATTR, setattr_in(FATTR_ATIME_NOW | FATTR_MTIME_NOW | FATTR_UID | FATTR_GID, uid=1, gid=1), NODE(0)),
    op(SETATTR, setattr_in(FATTR_SIZE, size=1 << 63), NODE(0)),
    lookup("ro"), lookup("hello", NODE(0)),
    op(SETATTR, setattr_in(FATTR_SIZE, size=0), NODE(0)))
SEEDS["forget"] = seed(
    lookup("rw"), lookup("hello", NODE(0)), lookup("hello", NODE(1)),
    op(FORGET, forget_in(1), NODE(0)), op(GETATTR, getattr_in(), NODE(0)),
    op(FORGET, forget_in(5), NODE(0), flags=F_FIXLEN | F_UNIQUE | F_HIPRIO),
    op(GETATTR, getattr_in(), NODE(0)),
    op(BATCH_FORGET, batch_forget_in([(0, 1), (0, 1), (1, 1)]), None,
       patches=[(ARG + 8, NODE(0)), (ARG + 24, NODE(1)), (ARG + 40, FORGED(1))],
       flags=F_FIXLEN | F_UNIQUE | F_HIPRIO),
    op(BATCH_FORGET, batch_forget_in([(5, 1)]) [:8], None),
    op(GETATTR, getattr_in(), NODE(1)))
SEEDS["callback_files"] = seed(
    lookup("cb"), lookup("rw", NODE(0)), op(OPEN, open_in(O_RDWR), NODE(0)),
    with_fh(READ, read_in(0, 4096), writes=(16, 5, 4096)),
    with_fh(WRITE, write_in(4090, 10) + b"0123456789"),
    with_fh(WRITE, write_in(1 << 40, 4) + b"abcd"),
    op(SETATTR, setattr_in(FATTR_SIZE, size=2), NODE(0)),
    op(SETATTR, setattr_in(FATTR_SIZE | FATTR_FH, size=1 << 20), NODE(0), patches=[(FH_SETATTR, FH(0))]),
    with_fh(RELEASE, release_in()),
    lookup("ro", NODE(1)), op(OPEN, open_in(O_WRONLY | O_TRUNC), NODE(0)),
    lookup("rw"), lookup("shadowed", NODE(0)), op(OPEN, open_in(O_RDWR | O_TRUNC), NODE(0)),
    with_fh(WRITE, write_in(0, 3) + b"xyz"))
SEEDS["readonly_share"] = seed(
    lookup("ro"), op(CREATE, create_in("nope"), NODE(0)), op(MKDIR, mkdir_in("nope"), NODE(0)),
    lookup("escape", NODE(0)), op(READLINK, b"", NODE(0)), op(OPEN, open_in(O_RDONLY), NODE(0)),
    lookup("fifo", NODE(1)), op(OPEN, open_in(O_RDONLY), NODE(0)),
    lookup("hello", NODE(2)), op(OPEN, open_in(O_RDWR), NODE(0)), op(OPEN, open_in(O_RDONLY), NODE(0)),
    with_fh(WRITE, write_in(0, 1) + b"!"), with_fh(READ, read_in(0, 64)),
    lookup("sub", NODE(3)), lookup("cbfile", NODE(0)), op(OPEN, open_in(O_RDWR), NODE(0)))
SEEDS["links"] = seed(
    lookup("rw"), op(SYMLINK, symlink_in("s", "/etc/passwd"), NODE(0)),
    op(SYMLINK, symlink_in("t", "../../secret"), NODE(1)), op(READLINK, b"", NODE(0)),
    lookup("hello", NODE(2)), op(LINK, link_in("hl"), NODE(3), patches=[(ARG, NODE(0))]),
    lookup("up", NODE(4)), op(LINK, link_in("secretlink"), NODE(5), patches=[(ARG, NODE(0))]),
    op(UNLINK, name("hl"), NODE(5)), op(UNLINK, name("sub"), NODE(5)),
    op(TMPFILE, create_in("", flags=O_RDWR), NODE(5)))
SEEDS["misc_ops"] = seed(
    lookup("rw"), lookup("big", NODE(0)), op(OPEN, open_in(O_RDWR), NODE(0)),
    op(COPY_FILE_RANGE, copy_in(0, 100, 1000), NODE(0), patches=[(ARG, FH(0)), (ARG + 16, NODE(0)), (ARG + 24, FH(0))]),
    with_fh(LSEEK, lseek_in(1 << 62, 4)),
    op(GETXATTR, u32(100) + u32(0) + name("user.x"), NODE(0)),
    op(SETXATTR, u32(1) + u32(0) + u32(0) + u32(0) + name("user.x") + b"v", NODE(0)),
    op(GETLK, bytes(48), NODE(0)), op(IOCTL, bytes(32), NODE(0)), op(POLL, bytes(24), NODE(0)),
    op(SETUPMAPPING, bytes(40), NODE(0)), op(SYNCFS, bytes(8), NODE(0)),
    op(INTERRUPT, interrupt_in(3), None, flags=F_FIXLEN | F_UNIQUE | F_HIPRIO),
    op(DESTROY), op(GETATTR, getattr_in()))

# Malformed requests.
SEEDS["bad_lengths"] = seed(
    request(fuse(GETATTR, 1, getattr_in())[:20]),
    request(fuse(GETATTR, 1, getattr_in(), length=0xffffffff), flags=F_UNIQUE),
    request(fuse(GETATTR, 1, getattr_in(), length=12), flags=F_UNIQUE),
    request(fuse(LOOKUP, 1, name("rw"), length=41), flags=F_UNIQUE),
    request(fuse(WRITE, 1, write_in(0, 0xffffffff) + b"short"), patches=[(FH_AT_0, FH(0))]),
    request(fuse(READ, 1, read_in(0, 100)[:20])),
    request(b""), request(fuse(LOOKUP, 1, name("rw")), writes=(8,)),
    request(fuse(LOOKUP, 1, name("rw")), writes=()),
    request(fuse(LOOKUP, 1, name("rw")), writes=(0, 0, 16, 0)))
SEEDS["bad_opcodes"] = seed(
    op(9999), op(0), op(0xffffffff), op(41), op(7), op(52), op(4096),
    op(INIT, init_in()), op(INIT, init_in(major=8)), header=H_INIT)
SEEDS["bad_nodes"] = seed(
    lookup("rw"), lookup("hello", NODE(0)),
    op(GETATTR, getattr_in(), FORGED(0)), op(GETATTR, getattr_in(), NEXTSLOT(0)),
    op(GETATTR, getattr_in(), ALLONES), op(LOOKUP, name("hello"), FORGED(1)),
    op(LOOKUP, name("x"), NODE(0)), op(OPEN, open_in(), NEXTSLOT(1)),
    with_fh(READ, read_in(0, 10), fh=ALLONES), with_fh(RELEASE, release_in(), fh=NODE(0)),
    op(FORGET, forget_in(1 << 63), FORGED(0)), op(FORGET, forget_in(1), ROOT))
SEEDS["bad_names"] = seed(
    lookup("rw"), lookup("../secret", NODE(0)), lookup("..", NODE(0)), lookup(".", NODE(0)),
    lookup("sub/inner", NODE(0)), lookup(b"hel\0lo\0", NODE(0)), lookup(b"hello", NODE(0)),
    lookup("x" * 300, NODE(0)), lookup("", NODE(0)), lookup("..", ROOT),
    op(CREATE, create_in("a/b"), NODE(0)), op(MKDIR, mkdir_in(".."), NODE(0)),
    op(RENAME, rename_in("hello", "../x"), NODE(0), patches=[(ARG, NODE(0))]),
    op(SYMLINK, symlink_in("l", "x" * 5000), NODE(0)))
SEEDS["huge_offsets"] = seed(
    lookup("rw"), lookup("hello", NODE(0)), op(OPEN, open_in(O_RDWR), NODE(0)),
    with_fh(READ, read_in((1 << 64) - 1, 0xffffffff), writes=(65535,) * 8),
    with_fh(WRITE, write_in((1 << 63) - 2, 4) + b"abcd"),
    with_fh(WRITE, write_in(1 << 30, 4) + b"abcd"),
    with_fh(FALLOCATE, fallocate_in((1 << 63) - 1, 1 << 63)),
    with_fh(LSEEK, lseek_in((1 << 64) - 1, 2)),
    op(SETATTR, setattr_in(FATTR_SIZE, size=(1 << 64) - 1), NODE(0)),
    with_fh(READ, read_in(0, 0)))
# Descriptor chains and the transport.
INIT_REQ = fuse(INIT, 0, init_in(), unique=1)
SEEDS["raw_init"] = seed(
    raw(1, [desc(0, RAW_GPA, len(INIT_REQ), 1, 1), desc(1, REP_GPA, 80, 2, 0)], [0], data=INIT_REQ),
    raw(1, [desc(0, RAW_GPA, 20, 1, 1), desc(1, RAW_GPA + 20, len(INIT_REQ) - 20, 1, 2),
            desc(2, REP_GPA, 40, 3, 3), desc(3, REP_GPA + 40, 40, 2, 0)], [0], data=INIT_REQ),
    header=0)
SEEDS["raw_bad"] = seed(
    raw(1, [desc(0, RAW_GPA, 40, 1, 0)], [0]),                      # a loop
    raw(1, [desc(0, RAW_GPA, 40, 4, 0)], [0]),                      # indirect
    raw(1, [desc(0, 1 << 40, 40, 0, 0)], [0]),                      # outside memory
    raw(1, [desc(0, (1 << 20) - 8, 16, 0, 0)], [0]),                # straddles the end
    raw(1, [desc(0, REP_GPA, 16, 3, 1), desc(1, RAW_GPA, 40, 0, 0)], [0]),  # read after write
    raw(1, [desc(0, RAW_GPA, 40, 1, 300)], [0]),                    # next out of range
    raw(1, [], [300]),                                              # head out of range
    raw(1, [desc(0, RAW_GPA, 40, 0, 0)], [0], skew=1000),           # avail index jump
    raw(0x85, [desc(0, RAW_GPA, 40, 0, 0)], [0]),                   # notify a bad queue
    raw(0, [desc(0, RAW_GPA, 0, 2, 0)], [0]))
SEEDS["raw_indirect_table"] = seed(
    raw(1, [desc(0, RAW_GPA + 4096, 32, 4, 0)], [0],
        data=INIT_REQ + bytes(4096 - len(INIT_REQ)) + u64(RAW_GPA) + u32(len(INIT_REQ)) + u16(1) + u16(1) +
        u64(REP_GPA) + u32(80) + u16(2) + u16(0)),
    lookup("rw"))
SEEDS["mmio_reset"] = seed(
    lookup("rw"), mmio(0x70, 0), lookup("rw"), reset(True), lookup("rw"),
    mmio(0x30, 1), mmio(0x44, 0), mmio(0x44, 1), mmio(0x50, 7), mmio(0x100, 0, write=False),
    mmio(0x124, 0, write=False), mmio(0x50, 1, width=8), reset(False), lookup("rw"),
    header=H_INIT | H_RESET_AT_END)

SEEDS["mmio_queue_setup"] = seed(
    mmio(0x30, 1), mmio(0x44, 0), mmio(0x38, 3), mmio(0x44, 1),           # size 3
    mmio(0x30, 1), mmio(0x44, 0), mmio(0x38, 16), mmio(0x80, 8), mmio(0x44, 1),  # misaligned
    mmio(0x30, 1), mmio(0x44, 0), mmio(0x84, 1), mmio(0x44, 1),           # outside memory
    mmio(0x30, 0), mmio(0x44, 0), mmio(0x38, 8), mmio(0x80, RAW_GPA), mmio(0x90, RAW_GPA + 0x100),
    mmio(0xa0, RAW_GPA + 0x200), mmio(0x44, 1),                           # queue 0 in RAW_GPA
    raw(0, [desc(0, RAW_GPA + 0x1000, 40, 0, 0)], [0]),
    lookup("rw"))


# --- the device targets (fuzz_blk, fuzz_ports, fuzz_mmio) ----------------
# Records of fuzz_guest.h: a target's own kinds are 0-3, these 4-7.

def g_raw(dev, queue, descs=(), heads=(), skew=0, data=b""):
    return (u8(4) + u8(dev) + u8(queue) + u8(len(descs)) + b"".join(descs) + u8(len(heads)) +
            b"".join(u16(h) for h in heads) + u16(skew) + u16(len(data)) + data)


def g_mmio(dev, off, val, write=True, width=4):
    return u8(5) + u8(dev) + u16(off) + u32(val) + u8((1 if write else 0) | {4: 0, 1: 2, 2: 4, 8: 6}[width])


# fz_hostile_gpa's choices
STD, MISALIGN, END, PAST, OVER_RINGS, IN_RAW, HIGH, TOP, HOLE, RAWVAL = range(10)


def g_setup(dev, queue=0, size=None, where=(STD, STD, STD), extra=0):
    """size None: a plain reset and setup; an int: queue set up with that
    size (a power of two up to 256 goes as its log, anything else as is)."""
    if size is None:
        return u8(6) + u8(dev) + u8(0) + u8(0) + u16(0) + bytes(3) + u32(0)
    pow2 = size and size & (size - 1) == 0 and size <= 256
    flags = 1 | (0 if pow2 else 2)
    enc = size.bit_length() - 1 if pow2 else size
    return u8(6) + u8(dev) + u8(flags) + u8(queue) + u16(enc) + bytes(where) + u32(extra)


def g_notify(dev, queue, rounds=0, reset=False, setup=False, republish=False):
    mode = rounds | (8 if reset else 0) | (16 if setup else 0) | (32 if republish else 0)
    return u8(7) + u8(dev) + u8(queue) + u8(mode)


def dseed(*records, header=0):
    return u8(header) + b"".join(records)


BLK = {}
T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 2, 3  # tsel values
RW, RO = 0, 1
S_EXACT, S_END_MINUS, S_END_PLUS, S_RAW = range(4)


def blk(dev=RW, tsel=T_IN, sector=0, smode=S_EXACT, split=0, segs=(), direction=0, status=0,
        fill=0, traw=0):
    """segs: lengths in bytes; whole sectors up to 16 go as counts."""
    enc = []
    for n in segs:
        enc.append(n // 512 if n % 512 == 0 and n // 512 <= 16 else 0x8000 | n)
    return (u8(0) + u8(dev) + u8(tsel) + u32(traw) + u8(smode) + u64(sector) + u8(split) +
            u8(len(segs)) + b"".join(u16(e) for e in enc) + u8(direction) + u8(status) + u8(fill))


BLK["read_write"] = dseed(
    blk(segs=(512,)), blk(tsel=T_OUT, sector=3, segs=(1024,), fill=9),
    blk(sector=3, segs=(512, 512)), blk(sector=2, segs=(2048, 512), split=5),
    blk(tsel=T_OUT, sector=127, segs=(512,), fill=1), blk(sector=126, segs=(1024,)))
BLK["edges"] = dseed(
    blk(smode=S_END_MINUS, sector=1, segs=(512,)), blk(smode=S_END_MINUS, sector=0, segs=(512,)),
    blk(smode=S_END_PLUS, sector=1, segs=(0,)), blk(smode=S_END_MINUS, sector=0, segs=()),
    blk(tsel=T_OUT, smode=S_END_MINUS, sector=1, segs=(1024,)),
    blk(smode=S_RAW, sector=(1 << 64) - 1, segs=(512,)),
    blk(smode=S_RAW, sector=1 << 55, segs=(512,)), blk(segs=(511,)), blk(segs=(513, 511)),
    blk(tsel=T_OUT, segs=(100,)), blk(segs=(32767, 32767, 32767, 32767, 32767)))
BLK["types"] = dseed(
    blk(tsel=T_FLUSH), blk(tsel=T_GET_ID, segs=(20,)), blk(tsel=T_GET_ID, segs=(5,)),
    blk(tsel=T_GET_ID, segs=(4096,)), blk(tsel=4, traw=11, segs=(512,)),
    blk(tsel=4, traw=0xffffffff), blk(dev=RO, tsel=T_OUT, segs=(512,)),
    blk(dev=RO, segs=(512,)), blk(dev=RO, tsel=T_FLUSH), blk(dev=RO, tsel=T_GET_ID, segs=(20,)))
BLK["odd_chains"] = dseed(
    blk(status=1), blk(direction=1, segs=(512,)), blk(direction=2, tsel=T_OUT, segs=(512,)),
    blk(status=2, segs=(512,)), blk(status=3 | (40 << 2)), blk(split=15, segs=(512,)),
    blk(tsel=T_IN, direction=1, segs=()), blk(segs=(0, 0, 512)))
BLK["batch_more"] = dseed(
    blk(segs=(512,)), g_raw(RW, 0, heads=[0] * 8, skew=8), g_notify(RW, 0, rounds=3),
    blk(segs=(512,)), g_raw(RW, 0, heads=[0] * 8, skew=8), g_notify(RW, 0, rounds=0, republish=True),
    g_notify(RW, 0, rounds=2), blk(segs=(512,)), g_raw(RW, 0, heads=[0] * 8, skew=8),
    g_notify(RW, 0, reset=True, setup=True), blk(segs=(512,)))
BLK["raw_bad"] = dseed(
    g_raw(RW, 0, [desc(0, RAW_GPA, 16, 1, 0)], [0]),
    g_raw(RW, 0, [desc(0, RAW_GPA, 16, 4, 0)], [0]),
    g_raw(RW, 0, [desc(0, 1 << 40, 16, 0, 0)], [0]),
    g_raw(RW, 0, [desc(0, (512 << 10) - 8, 16, 1, 1), desc(1, 0x30000, 1, 2, 0)], [0]),
    g_raw(RW, 0, [desc(0, 0x30000, 1, 3, 1), desc(1, RAW_GPA, 16, 0, 0)], [0]),
    g_raw(RW, 0, [desc(0, RAW_GPA, 16, 1, 200)], [0]), g_raw(RW, 0, [], [300]),
    g_raw(RW, 0, [], [0], skew=1000), g_raw(RW, 0x85, [], [0]), blk(segs=(512,)),
    g_raw(RW, 0, [desc(0, RAW_GPA, 16, 1, 1), desc(1, 0x30000, 512, 3, 2), desc(2, 0x31000, 1, 2, 0)],
          [0], data=u32(1) + u32(0) + u64(5)),
    blk(sector=5, segs=(512,)))
BLK["hostile_setup"] = dseed(
    g_setup(RW, 0, 3), g_setup(RW, 0, 256), g_setup(RW, 0, 16, (MISALIGN, STD, STD), 1),
    g_setup(RW, 0, 16, (END, STD, STD), 0x80), g_setup(RW, 0, 16, (PAST, STD, STD)),
    g_setup(RW, 0, 16, (STD, STD, OVER_RINGS), 0x0), blk(segs=(512,)),
    g_setup(RW, 0, 16, (IN_RAW, IN_RAW, IN_RAW), 0x100), blk(segs=(512,)),
    g_setup(RW, 0, 16, (HIGH, STD, STD), 1), g_setup(RW, 0, 16, (TOP, STD, STD)),
    g_setup(RW, 0, 16, (STD, STD, HOLE)), g_setup(RW), blk(segs=(512,)))
BLK["mmio"] = dseed(
    g_mmio(RW, 0x70, 0), blk(segs=(512,)), g_setup(RW), g_mmio(RW, 0x30, 0), g_mmio(RW, 0x44, 0),
    blk(segs=(512,)), g_mmio(RW, 0x100, 0, write=False, width=8), g_mmio(RW, 0x114, 0, write=False),
    g_mmio(RW, 0x50, 0), g_mmio(RW, 0x50, 1), g_mmio(RW, 0x38, 8), g_setup(RW), blk(segs=(512,)),
    blk(segs=(512,)), g_mmio(RW, 0x44, 1), blk(segs=(512,)))  # QueueReady=1 on a live queue

PORTS = {}
EV_DEVICE_READY, EV_PORT_ADD, EV_PORT_REMOVE, EV_PORT_READY = 0, 1, 2, 3
EV_CONSOLE_PORT, EV_RESIZE, EV_PORT_OPEN, EV_PORT_NAME = 4, 5, 6, 7
P_CTL, P_STDIN, P_STDOUT, P_STDERR = 0, 1, 2, 3
MSG_EXEC_FAILED, MSG_EXITED = 32, 33
PORTS_DEV = 0


def p_ctrl(event, port=0, value=1, nrx=0, raw_id=None):
    idsel = 0x80 if raw_id is not None else port
    return u8(0) + u8(nrx) + u8(event) + u8(idsel) + u32(raw_id or 0) + u16(value)


def p_data(port, data, pieces=()):
    assert len(pieces) <= 3
    return u8(1) + u8(port) + u8(len(pieces)) + b"".join(u16(p) for p in pieces) + u16(len(data)) + data


def p_rx(which, sizes):
    """which: 'ctrl' or a port; sizes: one receive chain each (up to 4)."""
    w = 0 if which == "ctrl" else which + 1
    return u8(2) + u8(w) + u8(len(sizes) - 1) + b"".join(u8(s) for s in sizes)


def p_send(port, data):
    return u8(3) + u8(port << 2) + u16(len(data)) + data


def p_open(port, is_open):
    return u8(3) + u8(1 | (2 if is_open else 0) | port << 2)


def msg(mtype, payload):
    return u32(mtype) + u32(len(payload)) + payload


# What Linux's virtio_console does at probe, then each port opened.
LINUX_PROBE = (p_rx("ctrl", [64] * 4) + p_ctrl(EV_DEVICE_READY, raw_id=0xffffffff, nrx=2) +
               b"".join(p_ctrl(EV_PORT_READY, p, nrx=2) for p in range(4)) +
               b"".join(p_ctrl(EV_PORT_OPEN, p) for p in range(4)) + p_rx("ctrl", [64] * 4))

PORTS["probe"] = dseed(LINUX_PROBE)
PORTS["exited"] = dseed(
    LINUX_PROBE, p_data(P_CTL, msg(99, b"") + msg(MSG_EXITED, u32(7 << 8)), pieces=(3, 5, 1)),
    p_data(P_CTL, msg(MSG_EXEC_FAILED, u32(2)) + msg(MSG_EXITED, b"xy") + msg(12345, bytes(16))))
PORTS["oversized"] = dseed(
    LINUX_PROBE, p_data(P_CTL, u32(MSG_EXITED) + u32(1 << 30) + bytes(60), pieces=(4, 4)),
    p_data(P_CTL, msg(MSG_EXITED, u32(0))), p_data(P_CTL, u32(1) + u32(65) + bytes(65)))
PORTS["stdin"] = dseed(
    LINUX_PROBE, p_rx(P_STDIN, [16, 100, 255]), p_send(P_STDIN, b"hello, guest\n" * 20),
    p_send(P_STDIN, b"more"), p_rx(P_STDIN, [8]), p_send(P_STDIN, b"x" * 30), p_open(P_STDIN, False),
    p_open(P_STDIN, True), p_ctrl(EV_PORT_OPEN, P_STDIN, 0), p_send(P_STDIN, b"closed"),
    p_send(7, b"nope"), p_open(6, True))
PORTS["stdout_stderr"] = dseed(
    LINUX_PROBE, p_data(P_STDOUT, b"out" * 300, pieces=(100, 1000)), p_data(P_STDERR, b"err" * 300),
    p_data(P_STDOUT, b"O" * 3000), p_data(P_STDERR, b"E" * 2000), p_data(P_STDIN, b"ignored"),
    p_data(P_STDOUT, b"after the cut"), header=0)
PORTS["stderr_modes"] = dseed(LINUX_PROBE, p_data(P_STDERR, b"e" * 2500), p_data(P_STDERR, b"e"),
                              header=1)
PORTS["broken_rx"] = dseed(
    LINUX_PROBE, p_rx(P_STDIN, [0]), p_send(P_STDIN, b"data"), p_ctrl(EV_PORT_OPEN, P_STDIN, 1))
PORTS["broken_ctrl_rx"] = dseed(
    p_ctrl(EV_DEVICE_READY, raw_id=0xffffffff), p_ctrl(EV_PORT_READY, P_STDIN),
    g_raw(PORTS_DEV, 0x82, [desc(0, RAW_GPA, 64, 2 | 4, 0)], [0]), p_open(P_STDIN, False),
    p_ctrl(EV_PORT_READY, P_STDOUT))
PORTS["ctrl_odd"] = dseed(
    p_ctrl(EV_DEVICE_READY, value=0), p_ctrl(EV_DEVICE_READY, nrx=3), p_ctrl(EV_DEVICE_READY),
    p_ctrl(EV_PORT_READY, 5, nrx=2), p_ctrl(EV_PORT_READY, raw_id=1 << 31),
    p_ctrl(EV_PORT_READY, 1, value=0), p_ctrl(EV_PORT_READY, 1), p_ctrl(EV_PORT_READY, 1),
    p_ctrl(EV_PORT_OPEN, raw_id=0xffffffff), p_ctrl(EV_RESIZE, 0), p_ctrl(EV_PORT_NAME, 2),
    p_ctrl(EV_CONSOLE_PORT, 3), p_ctrl(EV_PORT_REMOVE, 2), p_rx("ctrl", [4, 8, 0, 255]),
    g_notify(PORTS_DEV, 2))
PORTS["reset_midway"] = dseed(
    LINUX_PROBE, p_rx(P_STDIN, [64]), g_notify(PORTS_DEV, 3, reset=True), p_send(P_STDIN, b"lost"),
    g_setup(PORTS_DEV), LINUX_PROBE, p_rx(P_STDIN, [64]), p_send(P_STDIN, b"found"),
    g_raw(PORTS_DEV, 3, heads=[0] * 8, skew=24), g_notify(PORTS_DEV, 3, rounds=3))

MMIO = {}
CON, DISK, MPORTS, CON2 = 0, 1, 2, 3


def m_chain(dev, queue, reads=(), writes=()):
    return (u8(0) + u8(dev) + u8(queue) + u8(len(reads)) + u8(len(writes)) +
            b"".join(u16(n) for n in reads + writes))


def m_console(data, rx=(), second=False):
    return u8(1) + u8(1 if second else 0) + u8(len(rx)) + b"".join(u8(n) for n in rx) + u16(len(data)) + data


def m_features(dev, features, statuses):
    return u8(2) + u8(dev) + u64(features) + u8(len(statuses) - 1) + b"".join(u8(s) for s in statuses)


def m_reset(dev, setup=True):
    return u8(3) + u8(dev) + u8(1 if setup else 0)


V1 = 1 << 32
MMIO["console"] = dseed(
    m_console(b"hello from the host", rx=(8, 64)), m_console(b"", rx=(0, 255)),
    m_console(b"x" * 600, second=True, rx=(200, 200, 200)), m_chain(CON, 1, (10, 20), (30,)),
    m_chain(CON, 0, (), (40,)), m_chain(CON2, 1, (5000,)))
MMIO["console_broken_rx"] = dseed(
    g_raw(CON, 0x80, [desc(0, RAW_GPA, 64, 2 | 4, 0)], [0]), m_console(b"input"),
    m_console(b"more", rx=(16,)))
MMIO["all_devices"] = dseed(
    m_chain(DISK, 0, (16,), (512, 1)), m_chain(MPORTS, 3, (8,)), m_chain(MPORTS, 5, (100,)),
    m_chain(MPORTS, 2, (), (64,)), m_chain(CON, 1, (3,)), m_chain(CON2, 1, (4,)))
MMIO["features"] = dseed(
    m_features(CON, V1, (1, 3, 11, 15)), m_features(CON, V1 | 1 << 5, (1, 3, 11)),
    m_features(DISK, 0, (1, 3, 11)), m_features(MPORTS, V1 | 2, (0, 11, 15, 0x4f)),
    m_features(CON2, ~0, (8, 0x80, 0)), g_mmio(CON, 0x14, 1), g_mmio(CON, 0x10, 0, write=False),
    g_mmio(CON, 0x24, 7), g_mmio(CON, 0x20, 0xffffffff))
MMIO["registers"] = dseed(*(g_mmio(d, off, val, write=w)
                            for d in (CON, DISK, MPORTS)
                            for off, val, w in ((0x0, 0, False), (0x8, 0, False), (0x30, 99, True),
                                                (0x34, 0, False), (0x44, 1, True), (0x38, 3, True),
                                                (0x30, 1, True), (0x44, 0, True), (0x38, 8, True),
                                                (0x44, 1, True), (0x60, 0, False), (0x64, 1, True),
                                                (0xfc, 0, False), (0x100, 0, False), (0x1ff, 0, False),
                                                (0xffc, 0, False), (0x52, 0, True))))
MMIO["hostile_rings"] = dseed(
    g_setup(CON, 1, 16, (OVER_RINGS, OVER_RINGS, OVER_RINGS), 0x4000), m_console(b"abc", rx=(8,)),
    g_setup(DISK, 0, 16, (STD, STD, OVER_RINGS), 0x200), m_chain(DISK, 0, (16,), (1,)),
    g_setup(MPORTS, 3, 64, (IN_RAW, IN_RAW, IN_RAW), 0x0), g_setup(MPORTS, 3, 8, (END, END, END), 0x800),
    g_setup(CON2, 0, 2, (PAST, STD, STD)), g_setup(CON2, 1, 65535), g_setup(CON2, 1, 0),
    g_setup(CON), g_setup(DISK), g_setup(MPORTS), g_setup(CON2))
MMIO["more_and_reset"] = dseed(
    m_chain(CON, 1, (10,)), g_raw(CON, 1, heads=[0] * 8, skew=8), g_notify(CON, 1, rounds=1),
    g_notify(CON, 1, rounds=0, reset=True), m_chain(CON, 1, (10,)), m_reset(CON),
    m_chain(CON, 1, (10,)), g_raw(CON, 1, heads=[0] * 8, skew=8), g_notify(CON, 1, reset=True, setup=True),
    m_chain(MPORTS, 3, (8,)), g_raw(MPORTS, 3, heads=[0] * 8, skew=8),
    g_notify(MPORTS, 3, rounds=4, republish=True), m_reset(DISK, False), m_chain(DISK, 0, (16,), (1,)))

CORPORA = {"fuse": SEEDS, "blk": BLK, "ports": PORTS, "mmio": MMIO}


def to_hex(b):
    h = b.hex()
    return "\n".join(h[i:i + 64] for i in range(0, len(h), 64)) + "\n"


def main(argv):
    if len(argv) >= 2 and argv[1] == "--bin":
        outdir = argv[2]
        os.makedirs(outdir, exist_ok=True)
        for path in argv[3:]:
            with open(path) as f:
                data = bytes.fromhex(f.read())
            base = os.path.splitext(os.path.basename(path))[0]
            with open(os.path.join(outdir, base), "wb") as f:
                f.write(data)
        return 0
    for corpus, seeds in CORPORA.items():
        out = os.path.join(CORPUS, corpus)
        os.makedirs(out, exist_ok=True)
        for old in os.listdir(out):
            if old.endswith(".hex") and old[:-4] not in seeds:
                os.remove(os.path.join(out, old))
        for nm, data in sorted(seeds.items()):
            with open(os.path.join(out, nm + ".hex"), "w") as f:
                f.write(to_hex(data))
        print(f"make_seeds: {len(seeds)} seeds in {os.path.relpath(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
