/*
 * notify.h - the systemd notification protocol (sd_notify), without libsystemd.
 *
 * Owns the datagram to $NOTIFY_SOCKET: READY=1, STATUS=..., WATCHDOG=1, RELOADING=1,
 * STOPPING=1. Outside systemd (no NOTIFY_SOCKET) every call is a quiet no-op, so the daemon
 * calls it unconditionally.
 */
#ifndef BACKFILLD_NOTIFY_H
#define BACKFILLD_NOTIFY_H

#include <stdint.h>

#include "backfilld/util.h"

/* Send one message ("READY=1\nSTATUS=..."). Returns 0, or -1 when a socket was given and the
 * message could not be sent (logged by the caller if it matters). */
int bf_notify(const char *fmt, ...) BF_PRINTF(1, 2);

/* The watchdog interval systemd expects pings within, in ms; 0 when off. */
int64_t bf_notify_watchdog_ms(void);

#endif
