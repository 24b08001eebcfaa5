/*
 * Unit tests: ngx_famcall_gw_index.c (the node's user -> worker slots
 * table).  Random operations are checked against a plain array of what
 * every user's mask should be, with users crowded onto a few home entries
 * (runs that collide, and wrap around the table's end), so that every
 * deletion has entries to move back.
 */

#include <stdlib.h>

#include "tap.h"
#include "ngx_famcall_gw_index.h"


#define CAPACITY  4096
#define USERS     2000

static unsigned char   ids[USERS][16];
static uint64_t        model[USERS];
static unsigned long   seed = 424242;


static unsigned
rnd(void)
{
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    return (unsigned) (seed >> 33);
}


static ngx_famcall_index_t *
new_index(size_t capacity)
{
    void  *mem = calloc(1, ngx_famcall_index_size(capacity));

    return ngx_famcall_index_init(mem, capacity);
}


/* user i's id: its home among `homes` entries around the table's end */
static void
make_ids(unsigned homes)
{
    unsigned  i, k;
    uint64_t  h;

    for (i = 0; i < USERS; i++) {
        h = (uint64_t) ((CAPACITY - homes / 2 + rnd() % homes) % CAPACITY)
            | ((uint64_t) rnd() << 32);            /* high bits: not home */
        memcpy(ids[i], &h, 8);

        for (k = 8; k < 16; k++) {
            ids[i][k] = (unsigned char) rnd();
        }

        ids[i][15] = (unsigned char) i;            /* distinct */
        ids[i][14] = (unsigned char) (i >> 8);
        model[i] = 0;
    }
}


/* every user's mask is the model's; the count is the users with a bit */
static int
agrees(ngx_famcall_index_t *ix)
{
    size_t    i, n;

    for (i = 0, n = 0; i < USERS; i++) {
        if (ngx_famcall_index_get(ix, ids[i]) != model[i]) {
            return 0;
        }

        n += (model[i] != 0);
    }

    return ngx_famcall_index_count(ix) == n;
}


int
main(void)
{
    int                   all;
    unsigned              i, k, slot, op;
    unsigned char         stranger[16];
    ngx_famcall_index_t  *ix;

    /* one user, two workers */
    ix = new_index(CAPACITY);
    make_ids(CAPACITY);

    ok(ngx_famcall_index_get(ix, ids[0]) == 0, "an unknown user: no worker");
    ok(ngx_famcall_index_set(ix, ids[0], 0, 1) == 0, "worker 0 has user 0");
    ok(ngx_famcall_index_set(ix, ids[0], 63, 1) == 0, "worker 63 too");
    ok(ngx_famcall_index_get(ix, ids[0]) == (1 | (uint64_t) 1 << 63),
       "both bits");
    ok(ngx_famcall_index_count(ix) == 1, "one user");
    ngx_famcall_index_set(ix, ids[0], 0, 0);
    ok(ngx_famcall_index_get(ix, ids[0]) == (uint64_t) 1 << 63,
       "worker 0's last socket closed: worker 63 left");
    ngx_famcall_index_set(ix, ids[0], 63, 0);
    ok(ngx_famcall_index_get(ix, ids[0]) == 0
       && ngx_famcall_index_count(ix) == 0,
       "and then nobody: the entry is gone");
    ok(ngx_famcall_index_set(ix, ids[1], 5, 0) == 0
       && ngx_famcall_index_count(ix) == 0,
       "clearing an absent user adds nothing");
    free(ix);

    /* crowded runs that wrap: random sets and clears against the model */
    ix = new_index(CAPACITY);
    make_ids(24);
    all = 1;

    for (op = 0; op < 200000; op++) {
        i = rnd() % USERS;
        slot = rnd() % 8;

        if (rnd() % 2) {
            ngx_famcall_index_set(ix, ids[i], slot, 1);
            model[i] |= (uint64_t) 1 << slot;

        } else {
            ngx_famcall_index_set(ix, ids[i], slot, 0);
            model[i] &= ~((uint64_t) 1 << slot);
        }

        if (op % 997 == 0 && !agrees(ix)) {
            all = 0;
            break;
        }
    }

    ok(all && agrees(ix), "200,000 random changes, users crowded on 24 homes "
       "around the table's end: every mask as it should be");

    /* a dead worker's bits go, others stay */
    ngx_famcall_index_clear_slot(ix, 3);
    for (i = 0; i < USERS; i++) {
        model[i] &= ~((uint64_t) 1 << 3);
    }
    ok(agrees(ix), "slot 3 cleared: its bits gone, users with no other "
       "worker gone, every other mask kept");

    for (k = 0; k < 8; k++) {
        ngx_famcall_index_clear_slot(ix, k);
    }
    ok(ngx_famcall_index_count(ix) == 0, "every slot cleared: empty");
    ok(!ngx_famcall_index_full(ix), "never full meanwhile");
    free(ix);

    /* full: never past 3/4 */
    ix = new_index(CAPACITY);
    make_ids(CAPACITY);
    all = 1;

    for (i = 0; i < CAPACITY * 3 / 4 && i < USERS; i++) {
        all &= (ngx_famcall_index_set(ix, ids[i], 1, 1) == 0);
    }

    for (k = 0; i < CAPACITY * 3 / 4; i++, k++) {
        memcpy(stranger, ids[k], 16);
        stranger[0] ^= 0x5a;
        stranger[13] = 0xee;
        all &= (ngx_famcall_index_set(ix, stranger, 1, 1) == 0);
    }

    ok(all && ngx_famcall_index_count(ix) == CAPACITY * 3 / 4,
       "3/4 of the entries taken");
    memset(stranger, 0xab, 16);
    ok(ngx_famcall_index_set(ix, stranger, 1, 1) == -1
       && ngx_famcall_index_get(ix, stranger) == 0,
       "one more user is refused");
    ok(ngx_famcall_index_full(ix), "and the index says it is full");
    ok(ngx_famcall_index_set(ix, ids[0], 2, 1) == 0
       && ngx_famcall_index_get(ix, ids[0]) == 6,
       "a user already there still gets another worker");
    free(ix);

    return done_testing();
}
