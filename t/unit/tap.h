/*
 * A minimal TAP producer for the C unit tests, run by prove.
 */

#ifndef _FAMCALL_TAP_H_INCLUDED_
#define _FAMCALL_TAP_H_INCLUDED_

#include <stdio.h>
#include <string.h>

static int  tap_n, tap_failed;

#define ok(cond, ...)                                                         \
    do {                                                                      \
        int  ok_ = (cond) ? 1 : 0;  /* evaluated once: it may have effects */ \
        tap_n++;                                                              \
        if (!ok_) {                                                           \
            tap_failed++;                                                     \
            printf("not ok %d - ", tap_n);                                    \
        } else {                                                              \
            printf("ok %d - ", tap_n);                                        \
        }                                                                     \
        printf(__VA_ARGS__);                                                  \
        printf("\n");                                                         \
        if (!ok_) {                                                           \
            printf("#   failed at %s line %d\n", __FILE__, __LINE__);         \
        }                                                                     \
    } while (0)

#define is_str(got, want, name)                                               \
    do {                                                                      \
        const char *g_ = (got), *w_ = (want);                                 \
        ok(g_ != NULL && strcmp(g_, w_) == 0, "%s", name);                    \
        if (g_ == NULL || strcmp(g_, w_) != 0) {                              \
            printf("#   got: '%s'\n#   expected: '%s'\n",                    \
                   g_ ? g_ : "(null)", w_);                                   \
        }                                                                     \
    } while (0)

static int
done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* _FAMCALL_TAP_H_INCLUDED_ */
