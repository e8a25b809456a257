#ifndef GRAFT_FILES_H
#define GRAFT_FILES_H

/// The temporary files this process is writing, kept where a signal handler can reach them: a fixed table of
/// paths that `graft_temporaries_remove_all` walks with nothing but atomic loads, memcpy and unlink, all
/// async-signal-safe. Swift's GraftFiles module registers every temporary file here before creating it.

/// Records `path` (at most 4,095 bytes); returns its slot, or -1 when the table is full or the path too long (the
/// file is then only removed by the next run's sweep of stale temporaries).
int graft_temporaries_register(const char *path);

/// Forgets slot `slot` (after the file was renamed into place or removed). -1 is ignored.
void graft_temporaries_unregister(int slot);

/// Unlinks every registered path. Safe inside a signal handler.
void graft_temporaries_remove_all(void);

/// SIGINT, SIGTERM and SIGHUP remove the registered temporaries and then end the process as the signal would have.
/// Unblocks the three in the calling thread (call it before starting threads) and leaves ignored ones ignored.
void graft_temporaries_remove_on_signals(void);

#endif
