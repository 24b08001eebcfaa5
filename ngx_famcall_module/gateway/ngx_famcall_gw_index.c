/*
 * famcall: which workers of the node hold sockets of a user, in the node's
 * shared memory (ngx_famcall_gw_node.c owns the zone and its lock).  The
 * leader routes each line of a notification to those workers only: every
 * worker reading every line cost 8 workers about 3 s of CPU per 20 s at
 * 10,000 messages/s over what 2 workers spent.
 *
 * An open-addressing table of (user id, mask of worker slots), linear
 * probing from the id's first bytes (ids are random UUIDs), deletion by
 * shifting the following entries back, so no tombstones.  A mask of 0 is
 * an empty entry.  The table is never filled past 3/4: an add that would
 * is refused and the index marks itself full, and the leader then sends
 * every line to every worker, as before the index.  A bit that stays set
 * for a worker that no longer has the user costs that worker a line to
 * read, never an event lost; a bit missing would lose events.
 *
 * Plain C, no nginx types: t/unit/gw_index.c tests it as it is.
 */

#include <string.h>

#include "ngx_famcall_gw_index.h"


typedef struct {
    unsigned char                  id[16];
    uint64_t                       mask;         /* 0: empty */
} ngx_famcall_index_entry_t;


struct ngx_famcall_index_s {
    size_t                         capacity;     /* a power of 2 */
    size_t                         count;
    int                            full;         /* an add was refused */
    ngx_famcall_index_entry_t      entries[1];
};


static size_t ngx_famcall_index_home(ngx_famcall_index_t *ix,
    const unsigned char *id);
static int ngx_famcall_index_find(ngx_famcall_index_t *ix,
    const unsigned char *id, size_t *at);
static void ngx_famcall_index_delete(ngx_famcall_index_t *ix, size_t i);


size_t
ngx_famcall_index_size(size_t capacity)
{
    return offsetof(ngx_famcall_index_t, entries)
           + capacity * sizeof(ngx_famcall_index_entry_t);
}


/* mem: ngx_famcall_index_size(capacity) zeroed bytes */
ngx_famcall_index_t *
ngx_famcall_index_init(void *mem, size_t capacity)
{
    ngx_famcall_index_t  *ix = mem;

    ix->capacity = capacity;

    return ix;
}


int
ngx_famcall_index_full(ngx_famcall_index_t *ix)
{
    return ix->full;
}


size_t
ngx_famcall_index_count(ngx_famcall_index_t *ix)
{
    return ix->count;
}


/* see ngx_famcall_gw_index.h */
int
ngx_famcall_index_set(ngx_famcall_index_t *ix, const unsigned char *id,
    unsigned slot, int on)
{
    size_t      i;
    uint64_t    bit = (uint64_t) 1 << slot;

    if (ngx_famcall_index_find(ix, id, &i) == 0) {
        if (on) {
            ix->entries[i].mask |= bit;

        } else if ((ix->entries[i].mask &= ~bit) == 0) {
            ngx_famcall_index_delete(ix, i);
        }

        return 0;
    }

    if (!on) {
        return 0;
    }

    if ((ix->count + 1) * 4 > ix->capacity * 3) {
        ix->full = 1;
        return -1;
    }

    memcpy(ix->entries[i].id, id, 16);
    ix->entries[i].mask = bit;
    ix->count++;

    return 0;
}


uint64_t
ngx_famcall_index_get(ngx_famcall_index_t *ix, const unsigned char *id)
{
    size_t  i;

    if (ngx_famcall_index_find(ix, id, &i) != 0) {
        return 0;
    }

    return ix->entries[i].mask;
}


/*
 * A worker took a slot another worker had (it died): that worker's bits go.
 * A deletion moves entries back along their run: the one moved into i is
 * looked at again, the others land where the scan is still to go or,
 * past the table's end, where it has been already.
 */
void
ngx_famcall_index_clear_slot(ngx_famcall_index_t *ix, unsigned slot)
{
    size_t      i;
    uint64_t    bit = (uint64_t) 1 << slot;

    for (i = 0; i < ix->capacity; /* void */) {
        if ((ix->entries[i].mask & bit) == 0) {
            i++;
            continue;
        }

        if ((ix->entries[i].mask &= ~bit) == 0) {
            ngx_famcall_index_delete(ix, i);
            continue;
        }

        i++;
    }
}


static size_t
ngx_famcall_index_home(ngx_famcall_index_t *ix, const unsigned char *id)
{
    uint64_t  h;

    memcpy(&h, id, sizeof(h));

    return (size_t) (h & (ix->capacity - 1));
}


/* 0: the entry of id is at *at; else *at is the empty entry it would take */
static int
ngx_famcall_index_find(ngx_famcall_index_t *ix, const unsigned char *id,
    size_t *at)
{
    size_t  i, m = ix->capacity - 1;

    for (i = ngx_famcall_index_home(ix, id);
         ix->entries[i].mask != 0;
         i = (i + 1) & m)
    {
        if (memcmp(ix->entries[i].id, id, 16) == 0) {
            *at = i;
            return 0;
        }
    }

    *at = i;
    return -1;
}


/*
 * Empty entry i, then move back each following entry of the run that may
 * no longer be found past the hole (its home is not cyclically in (i, j]).
 */
static void
ngx_famcall_index_delete(ngx_famcall_index_t *ix, size_t i)
{
    size_t  j, k, m = ix->capacity - 1;

    for (j = (i + 1) & m; ix->entries[j].mask != 0; j = (j + 1) & m) {
        k = ngx_famcall_index_home(ix, ix->entries[j].id);

        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }

        ix->entries[i] = ix->entries[j];
        i = j;
    }

    ix->entries[i].mask = 0;
    ix->count--;
}
