/*
 * listener.h - one control connection per database: LISTEN backfilld.
 *
 * Owns a connection that does nothing but LISTEN on channel "backfilld", where backfillctl
 * NOTIFYs a job name (or "*") after it changes requested_state. Each notification is handed
 * to the daemon, which pokes the matching jobs so they act within a second. A lost connection
 * is retried with backoff; the daemon's slow poll covers notifications lost meanwhile.
 */
#ifndef BACKFILLD_LISTENER_H
#define BACKFILLD_LISTENER_H

#include <ev.h>

typedef struct bf_listener bf_listener;

/* `payload` is a job name or "*". */
typedef void (*bf_listener_cb)(bf_listener *l, const char *database, const char *payload,
                               void *owner);

bf_listener *bf_listener_new(struct ev_loop *loop, const char *database, bf_listener_cb cb,
                             void *owner);
void bf_listener_free(bf_listener *l);
const char *bf_listener_database(const bf_listener *l);

#endif
