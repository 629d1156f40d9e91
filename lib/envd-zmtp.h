/* envd-zmtp.h - the ZeroMQ wire protocol (ZMTP 3.0, NULL mechanism) on
 * libevent, for the client side of Jupyter's five channels.
 *
 * Why not libzmq: the guest binary is linked statically, and Debian's
 * libzmq.a cannot be: it needs MIT Kerberos' GSSAPI (Debian ships no static
 * libgssapi_krb5), libstdc++, libsodium, OpenPGM and NORM. A kernel's
 * sockets are bound by the kernel (ROUTER, PUB, REP) and we only connect to
 * them over loopback with the NULL mechanism, so the part of ZeroMQ needed
 * here is small: the greeting, the READY handshake with Socket-Type and
 * Identity, PING/PONG, and frames. One peer per socket, no threads: a
 * socket is a bufferevent on the caller's loop.
 *
 * Socket types: DEALER (shell, control, stdin: messages go out as given),
 * SUB (iopub: subscribes to everything at each handshake) and REQ
 * (heartbeat: the empty delimiter frame is added on send and taken off on
 * receive). A connection that fails or drops is tried again, 10 ms after
 * the first failure and up to every 200 ms, until e2b_zmtp_free; messages
 * sent meanwhile wait and go out once the peer's READY came.
 */
#ifndef E2B_ENVD_ZMTP_H
#define E2B_ENVD_ZMTP_H

#include "error.h"

#include <sys/uio.h>

struct event_base;
struct e2b_zmtp;

enum e2b_zmtp_type { E2B_ZMTP_DEALER, E2B_ZMTP_SUB, E2B_ZMTP_REQ };

/* Messages larger than this are refused and the connection dropped. */
#define E2B_ZMTP_MAX_MSG ((size_t)1 << 30)

struct e2b_zmtp_frame {
    const uint8_t *data;
    size_t len;
};

/* A whole message (all its frames); frames are valid during the call, which
 * must not free z (defer that to the loop). */
typedef void (*e2b_zmtp_msg_fn)(struct e2b_zmtp *z, const struct e2b_zmtp_frame *frames, size_t n,
                                void *arg);

/* identity: the Identity property sent in READY (may be NULL). */
struct e2b_zmtp *e2b_zmtp_new(struct event_base *base, enum e2b_zmtp_type type,
                              const char *identity, e2b_zmtp_msg_fn on_msg, void *arg);
/* Connect (and reconnect) to "tcp://IP:PORT" or "ipc://PATH". */
int e2b_zmtp_connect(struct e2b_zmtp *z, const char *endpoint, struct e2b_error **err);
/* Send one message of n frames (queued until the handshake is done). */
void e2b_zmtp_send(struct e2b_zmtp *z, const struct iovec *frames, size_t n);
/* The peer's READY came on the current connection. */
bool e2b_zmtp_ready(const struct e2b_zmtp *z);
void e2b_zmtp_free(struct e2b_zmtp *z);


#endif
