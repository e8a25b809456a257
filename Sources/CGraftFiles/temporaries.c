#include "graft_files.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

enum { SLOTS = 256, PATH_BYTES = 4096 };
enum { FREE = 0, WRITING = 1, LIVE = 2 };

// Each state word holds a generation (upper bits) and FREE/WRITING/LIVE (lowest two bits). A handler copies a LIVE
// slot's path and unlinks the copy only if the word is unchanged afterwards, so a slot reused meanwhile is skipped.
static _Atomic unsigned long states[SLOTS];
static char paths[SLOTS][PATH_BYTES];

int graft_temporaries_register(const char *path) {
    size_t n = strlen(path);
    if (n == 0 || n >= PATH_BYTES) return -1;
    for (int i = 0; i < SLOTS; i++) {
        unsigned long s = atomic_load(&states[i]);
        if ((s & 3) != FREE) continue;
        if (!atomic_compare_exchange_strong(&states[i], &s, (s & ~3UL) | WRITING)) continue;
        memcpy(paths[i], path, n + 1);
        atomic_store(&states[i], (s & ~3UL) | LIVE);
        return i;
    }
    return -1;
}

void graft_temporaries_unregister(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    unsigned long s = atomic_load(&states[slot]);
    atomic_store(&states[slot], (s & ~3UL) + 4);   // next generation, FREE
}

void graft_temporaries_remove_all(void) {
    char copy[PATH_BYTES];
    for (int i = 0; i < SLOTS; i++) {
        unsigned long s = atomic_load(&states[i]);
        if ((s & 3) != LIVE) continue;
        memcpy(copy, paths[i], PATH_BYTES);
        copy[PATH_BYTES - 1] = 0;
        if (atomic_load(&states[i]) != s) continue;
        unlink(copy);
    }
}

static void remove_and_die(int sig) {
    graft_temporaries_remove_all();
    signal(sig, SIG_DFL);
    raise(sig);   // delivered when this handler returns: the process ends as the signal's default would end it
}

void graft_temporaries_remove_on_signals(void) {
    const int signals[] = {SIGINT, SIGTERM, SIGHUP};
    // A parent may start us with these signals blocked (the mask is inherited: Foundation's Process does this):
    // unblock them in this thread, and so in every thread started after it.
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaddset(&set, signals[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction old;
        if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;   // nohup and the like
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = remove_and_die;
        sigemptyset(&sa.sa_mask);
        sigaction(signals[i], &sa, NULL);
    }
}
