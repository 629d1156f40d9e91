/* vmlink.h - many byte streams over one byte channel: the link between a
 * microVM's supervisor (vm-relay.c) and the VM's init (envd-vm.c), carried
 * by a single virtio-serial port. Guest base: pure C and poll(2), no event
 * library, so that both ends drive it from their own loops.
 *
 * A frame is a 12-byte header, big-endian,
 *   [type u8][flags u8][reserved u16][stream u32][length u32]
 * and `length` bytes of payload, at most E2B_VMLINK_MAX_PAYLOAD.
 *
 * Stream 0 carries the link's own messages; one longer than a frame goes
 * in several, each but the last flagged E2B_VMLINK_F_MORE:
 *   HELLO   guest -> host   init is up and reads the link (JSON {"version":1})
 *   CONFIG  host -> guest   the sandbox's settings and envd's /init body
 *                           (JSON): secrets never go on the kernel command
 *                           line, which any process in the guest can read
 *   READY   guest -> host   envd listens ("") or why the guest cannot start
 *   LOG     guest -> host   what envd and init write (the sandbox's log)
 *   SUSPEND    host -> guest  the VM is about to be stopped and saved: drop
 *                             every stream, then SUSPENDED and silence
 *   SUSPENDED  guest -> host  nothing more comes from the guest until RESUME
 *   RESUME     host -> guest  the VM runs again, maybe as another sandbox
 *                             restored from a snapshot (JSON: CONFIG's keys
 *                             that can change, and the host's clock);
 *                             READY answers it
 * SUSPEND and SUSPENDED leave the channel without half a frame either way
 * (each side stops writing after its word and reads up to the other's), so
 * a VM saved then has nothing of the link in flight and its restore talks
 * to a new host end from a clean start: both ends drop their streams, and
 * ids count from 1 again.
 * Every other stream is one connection, opened by the host (ids counted up
 * from 1, never reused, so a late frame of an ended stream is dropped):
 *   OPEN         host -> guest  payload: the guest's TCP port (u32);
 *                               E2B_VMLINK_PORT_ENVD is envd itself
 *   OPENED       guest -> host  connected
 *   OPEN_FAILED  guest -> host  payload: errno (u32) and the reason's text
 *   DATA         either way     bytes of the connection
 *   FIN          either way     no more DATA this way (a half close)
 *   RST          either way     the stream is gone; no more frames for it
 *   CREDIT       either way     payload u32: that many more DATA bytes may
 *                               come (the peer wrote them out)
 * Flow control: each end of a stream may have at most E2B_VMLINK_WINDOW
 * bytes on the way to the other (sent, not yet credited back), so one big
 * upload never holds the channel for the others and a reader that stops
 * stops only its own stream. DATA beyond the credit resets the stream.
 * The host sends a stream's DATA right after its OPEN, without waiting for
 * OPENED (the guest takes frames in order, and drops DATA for a stream
 * whose OPEN failed): a connection costs no round trip over the link.
 */
#ifndef E2B_VMLINK_H
#define E2B_VMLINK_H

#include "error.h"

#include <poll.h>

#define E2B_VMLINK_HEADER      12
#define E2B_VMLINK_MAX_PAYLOAD (64 * 1024)
#define E2B_VMLINK_WINDOW      (256 * 1024)
#define E2B_VMLINK_MAX_MESSAGE (4 * 1024 * 1024) /* a whole stream-0 message */
#define E2B_VMLINK_PORT_ENVD   49983
#define E2B_VMLINK_F_MORE      0x01

enum e2b_vmlink_type {
    E2B_VMLINK_HELLO = 1,
    E2B_VMLINK_CONFIG,
    E2B_VMLINK_READY,
    E2B_VMLINK_LOG,
    E2B_VMLINK_OPEN,
    E2B_VMLINK_OPENED,
    E2B_VMLINK_OPEN_FAILED,
    E2B_VMLINK_DATA,
    E2B_VMLINK_FIN,
    E2B_VMLINK_RST,
    E2B_VMLINK_CREDIT,
    E2B_VMLINK_SUSPEND, /* stream-0 messages, like HELLO .. LOG */
    E2B_VMLINK_SUSPENDED,
    E2B_VMLINK_RESUME,
};

struct e2b_vmlink;

struct e2b_vmlink_ops {
    /* A whole stream-0 message (HELLO, CONFIG, READY, LOG). < 0 ends the
     * link (with *err set). */
    int (*message)(void *ud, int type, const char *payload, size_t len, struct e2b_error **err);
    /* Guest: the host asks for a connection to port. A connected socket
     * (the link makes it nonblocking and owns it), or -errno. NULL (the
     * host): an OPEN from the peer breaks the protocol. */
    int (*open)(void *ud, uint32_t port);
    /* Host: a stream it opened to port could not connect. fd is the
     * caller's again (to tell its client, and close). NULL: the link
     * closes it. */
    void (*open_failed)(void *ud, int fd, uint32_t port, int errnum, const char *reason);
};

/* A link over fd (a socket or a character device; made nonblocking, owned
 * from here). */
struct e2b_vmlink *e2b_vmlink_new(int fd, const struct e2b_vmlink_ops *ops, void *ud);
/* Closes the channel and every stream's socket. */
void e2b_vmlink_free(struct e2b_vmlink *l);

/* Queue a stream-0 message (split into frames as needed). */
void e2b_vmlink_send(struct e2b_vmlink *l, int type, const void *payload, size_t len);
/* Host: relay fd (a connected socket, owned from here) to port in the
 * guest. greeting, if not NULL, is written to fd first once the guest has
 * connected. Returns the stream's id. */
uint32_t e2b_vmlink_open(struct e2b_vmlink *l, uint32_t port, int fd, const char *greeting);

/* One turn of the owner's loop: poll the link's channel and streams and
 * the caller's `extra` fds (whose revents are filled in for the caller),
 * for at most timeout_ms (-1: no limit), then move what is ready. < 0: the
 * link is over (the channel closed or the peer broke the protocol). */
int e2b_vmlink_poll(struct e2b_vmlink *l, struct pollfd *extra, size_t n_extra, int timeout_ms,
                    struct e2b_error **err);
/* Write what is queued for the channel, waiting at most timeout_ms for it
 * to take it (a last message before the end). 0 once all is out. */
int e2b_vmlink_flush(struct e2b_vmlink *l, int timeout_ms);

/* Drop every stream (their sockets closed, the peer not told) and count
 * stream ids from 1 again: SUSPEND and SUSPENDED, on both ends. */
void e2b_vmlink_reset(struct e2b_vmlink *l);

/* Bytes queued for the channel: the owner reads its own sources (logs)
 * only while this is small. */
size_t e2b_vmlink_backlog(const struct e2b_vmlink *l);
/* Open streams, and the bytes they hold that their sockets have not taken
 * yet (tests; at most E2B_VMLINK_WINDOW a stream). */
size_t e2b_vmlink_streams(const struct e2b_vmlink *l);
size_t e2b_vmlink_buffered(const struct e2b_vmlink *l);

#endif
