/* The FUSE server's node and file handle tables (see internal.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuse/internal.h"

#define BUCKETS_MIN 1024u

static uint32_t hash_key(uint32_t share, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull;
	h ^= ((uint64_t)dev + ((uint64_t)share << 40)) * 0xc2b2ae3d27d4eb4full;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

int fs_tables_init(struct fuse_server *s)
{
	s->nbuckets = BUCKETS_MIN;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets)
		return -ENOMEM;
	/* Slot 0 is never used (0 ends the lists); slot 1 is the root. */
	s->nused = ROOT_SLOT + 1;
	s->nchunk[0] = calloc(CHUNK_SIZE, sizeof(struct fuse_node));
	if (!s->nchunk[0])
		return -ENOMEM;
	s->nslots = CHUNK_SIZE;
	for (uint32_t i = 0; i < CHUNK_SIZE; i++)
		s->nchunk[0][i].fd = -1;
	struct fuse_node *root = &s->nchunk[0][ROOT_SLOT];
	root->kind = NODE_ROOT;
	root->pinned = true;
	root->gen = 0;
	s->nnodes = 1;
	s->hused = 1; /* handle slot 0 unused too */
	return 0;
}

struct fuse_node *fs_node_at(const struct fuse_server *s, uint32_t slot)
{
	return &s->nchunk[slot >> CHUNK_SHIFT][slot & (CHUNK_SIZE - 1)];
}

uint64_t fs_node_id(const struct fuse_server *s, uint32_t slot)
{
	if (slot == ROOT_SLOT)
		return 1;
	return ((uint64_t)fs_node_at(s, slot)->gen << 32) | slot;
}

struct fuse_node *fs_node_get(const struct fuse_server *s, uint64_t nodeid, uint32_t *slotp)
{
	uint32_t slot = (uint32_t)nodeid;
	uint32_t gen = (uint32_t)(nodeid >> 32);
	if (nodeid == 1)
		slot = ROOT_SLOT;
	else if (slot == ROOT_SLOT || gen == 0)
		return NULL;
	if (slot == 0 || slot >= s->nused)
		return NULL;
	struct fuse_node *n = fs_node_at(s, slot);
	if (n->kind == NODE_FREE || n->gen != gen)
		return NULL;
	if (slotp)
		*slotp = slot;
	return n;
}

int fs_node_alloc(struct fuse_server *s, uint32_t *slotp)
{
	uint32_t slot;
	if (s->node_free) {
		slot = s->node_free;
		s->node_free = fs_node_at(s, slot)->hnext;
	} else {
		if (s->nused >= NODE_MAX)
			return -ENFILE;
		if (s->nused >= s->nslots) {
			struct fuse_node *chunk = calloc(CHUNK_SIZE, sizeof(*chunk));
			if (!chunk)
				return -ENOMEM;
			for (uint32_t i = 0; i < CHUNK_SIZE; i++)
				chunk[i].fd = -1;
			s->nchunk[s->nslots >> CHUNK_SHIFT] = chunk;
			s->nslots += CHUNK_SIZE;
		}
		slot = s->nused++;
	}
	struct fuse_node *n = fs_node_at(s, slot);
	uint32_t gen = n->gen + 1;
	if (gen == 0)
		gen = 1;
	memset(n, 0, sizeof(*n));
	n->gen = gen;
	n->fd = -1;
	s->nnodes++;
	*slotp = slot;
	return 0;
}

static void unhash(struct fuse_server *s, uint32_t slot)
{
	struct fuse_node *n = fs_node_at(s, slot);
	uint32_t *pp = &s->buckets[hash_key(n->idx, n->dev, n->ino) & (s->nbuckets - 1)];
	while (*pp) {
		if (*pp == slot) {
			*pp = n->hnext;
			n->hnext = 0;
			return;
		}
		pp = &fs_node_at(s, *pp)->hnext;
	}
}

void fs_node_free(struct fuse_server *s, uint32_t slot)
{
	struct fuse_node *n = fs_node_at(s, slot);
	if (n->kind == NODE_HOST)
		unhash(s, slot);
	if (n->fd >= 0) {
		close(n->fd);
		s->nfds--;
	}
	uint32_t gen = n->gen;
	memset(n, 0, sizeof(*n));
	n->gen = gen; /* bumped on reuse */
	n->fd = -1;
	n->kind = NODE_FREE;
	n->hnext = s->node_free;
	s->node_free = slot;
	s->nnodes--;
}

uint32_t fs_node_find(const struct fuse_server *s, uint32_t share, dev_t dev, ino_t ino)
{
	uint32_t slot = s->buckets[hash_key(share, dev, ino) & (s->nbuckets - 1)];
	while (slot) {
		const struct fuse_node *n = fs_node_at(s, slot);
		if (n->idx == share && n->dev == dev && n->ino == ino)
			return slot;
		slot = n->hnext;
	}
	return 0;
}

static void rehash(struct fuse_server *s)
{
	uint32_t nb = s->nbuckets * 2;
	uint32_t *b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (uint32_t i = 0; i < s->nbuckets; i++) {
		uint32_t slot = s->buckets[i];
		while (slot) {
			struct fuse_node *n = fs_node_at(s, slot);
			uint32_t next = n->hnext;
			uint32_t *head = &b[hash_key(n->idx, n->dev, n->ino) & (nb - 1)];
			n->hnext = *head;
			*head = slot;
			slot = next;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

int fs_node_hash(struct fuse_server *s, uint32_t slot)
{
	if (s->nnodes > s->nbuckets && s->nbuckets < NODE_MAX)
		rehash(s);
	struct fuse_node *n = fs_node_at(s, slot);
	uint32_t *head = &s->buckets[hash_key(n->idx, n->dev, n->ino) & (s->nbuckets - 1)];
	n->hnext = *head;
	*head = slot;
	return 0;
}

void fs_node_forget(struct fuse_server *s, uint64_t nodeid, uint64_t count)
{
	uint32_t slot;
	struct fuse_node *n = fs_node_get(s, nodeid, &slot);
	if (!n)
		return;
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	if (n->nlookup == 0 && !n->pinned)
		fs_node_free(s, slot);
}

static struct fuse_handle *handle_at(const struct fuse_server *s, uint32_t slot)
{
	return &s->hchunk[slot >> CHUNK_SHIFT][slot & (CHUNK_SIZE - 1)];
}

uint64_t fs_handle_id(const struct fuse_server *s, uint32_t slot)
{
	return ((uint64_t)handle_at(s, slot)->gen << 32) | slot;
}

struct fuse_handle *fs_handle_get(const struct fuse_server *s, uint64_t fh)
{
	uint32_t slot = (uint32_t)fh;
	if (slot == 0 || slot >= s->hused)
		return NULL;
	struct fuse_handle *h = handle_at(s, slot);
	if (h->kind == HANDLE_FREE || h->gen != (uint32_t)(fh >> 32))
		return NULL;
	return h;
}

int fs_handle_alloc(struct fuse_server *s, uint8_t kind, uint64_t *fh, struct fuse_handle **hp)
{
	uint32_t slot;
	if (s->handle_free) {
		slot = s->handle_free;
		s->handle_free = handle_at(s, slot)->next;
	} else {
		if (s->hused >= HANDLE_MAX)
			return -ENFILE;
		if (s->hused >= s->hslots) {
			struct fuse_handle *chunk = calloc(CHUNK_SIZE, sizeof(*chunk));
			if (!chunk)
				return -ENOMEM;
			for (uint32_t i = 0; i < CHUNK_SIZE; i++)
				chunk[i].fd = -1;
			s->hchunk[s->hslots >> CHUNK_SHIFT] = chunk;
			s->hslots += CHUNK_SIZE;
		}
		slot = s->hused++;
	}
	struct fuse_handle *h = handle_at(s, slot);
	uint32_t gen = h->gen + 1;
	if (gen == 0)
		gen = 1;
	memset(h, 0, sizeof(*h));
	h->gen = gen;
	h->fd = -1;
	h->kind = kind;
	s->nhandles++;
	*fh = fs_handle_id(s, slot);
	*hp = h;
	return 0;
}

static void handle_release(struct fuse_server *s, uint32_t slot)
{
	struct fuse_handle *h = handle_at(s, slot);
	if (h->fd >= 0) {
		close(h->fd);
		s->nfds--;
	}
	uint32_t gen = h->gen;
	memset(h, 0, sizeof(*h));
	h->gen = gen;
	h->fd = -1;
	h->kind = HANDLE_FREE;
	h->next = s->handle_free;
	s->handle_free = slot;
	s->nhandles--;
}

void fs_handle_free(struct fuse_server *s, uint64_t fh)
{
	if (fs_handle_get(s, fh))
		handle_release(s, (uint32_t)fh);
}

void fs_tables_reset(struct fuse_server *s)
{
	for (uint32_t slot = ROOT_SLOT + 1; slot < s->nused; slot++) {
		struct fuse_node *n = fs_node_at(s, slot);
		if (n->kind == NODE_FREE)
			continue;
		if (n->pinned)
			n->nlookup = 0;
		else
			fs_node_free(s, slot);
	}
	fs_node_at(s, ROOT_SLOT)->nlookup = 0;
	for (uint32_t slot = 1; slot < s->hused; slot++)
		if (handle_at(s, slot)->kind != HANDLE_FREE)
			handle_release(s, slot);
}

void fs_tables_free(struct fuse_server *s)
{
	for (uint32_t slot = ROOT_SLOT; slot < s->nused; slot++) {
		const struct fuse_node *n = fs_node_at(s, slot);
		if (n->fd >= 0)
			close(n->fd);
	}
	for (uint32_t slot = 1; slot < s->hused; slot++) {
		const struct fuse_handle *h = handle_at(s, slot);
		if (h->fd >= 0)
			close(h->fd);
	}
	for (uint32_t i = 0; i < NODE_CHUNKS; i++)
		free(s->nchunk[i]);
	for (uint32_t i = 0; i < HANDLE_CHUNKS; i++)
		free(s->hchunk[i]);
	free(s->buckets);
}
