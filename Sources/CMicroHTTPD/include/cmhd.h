#ifndef CMHD_H
#define CMHD_H

// The few libmicrohttpd calls Swift cannot make: MHD_start_daemon, MHD_get_daemon_info and
// MHD_get_connection_info are variadic. Options are built in Swift
// (Sources/DepotHTTP/MHDDaemonOptions.swift) and passed through MHD_OPTION_ARRAY. Beside them,
// two loops over a request's header fields that run on every request, cheaper in C than through
// a Swift closure per field, and responses kept per thread (C11 atomics).

#include <stdint.h>
#include <sys/socket.h>
#include <microhttpd.h>

// MHD_start_daemon(flags, port 0, no accept policy, handler, ...) with the two callbacks that
// take a pair of arguments given by name, then `options` (terminated by MHD_OPTION_END).
// The bind address comes from MHD_OPTION_SOCK_ADDR inside `options`.
struct MHD_Daemon *cmhd_start_daemon(unsigned int flags,
                                     MHD_AccessHandlerCallback handler, void *handler_cls,
                                     MHD_RequestCompletedCallback completed, void *completed_cls,
                                     void *(*uri_logger)(void *cls, const char *uri,
                                                         struct MHD_Connection *connection),
                                     void *uri_logger_cls,
                                     MHD_NotifyConnectionCallback notify_connection,
                                     void *notify_connection_cls,
                                     const struct MHD_OptionItem *options);

// MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT); 0 when unavailable.
uint16_t cmhd_daemon_bind_port(struct MHD_Daemon *daemon);

// MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS); NULL when unavailable.
const struct sockaddr *cmhd_connection_client_address(struct MHD_Connection *connection);

// MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD); -1 when unavailable.
int cmhd_connection_fd(struct MHD_Connection *connection);

/* MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT): what the connection
   notification stored for this connection; NULL when unavailable. */
void *cmhd_connection_socket_context(struct MHD_Connection *connection);

/* Turns off the idle timeout of one connection (a long-lived event stream). */
void cmhd_connection_no_timeout(struct MHD_Connection *connection);

/* The client certificate of a TLS connection (libmicrohttpd with GnuTLS and
   MHD_OPTION_HTTPS_MEM_TRUST). CMHD_PEER_VERIFIED: the chain verifies against the trusted CA,
   is within its dates and may authenticate a TLS client; `subject` holds its subject DN in
   RFC 4514 form. CMHD_PEER_INVALID: `reason` says why (GnuTLS's words). */
enum { CMHD_PEER_NOT_TLS = -2, CMHD_PEER_INVALID = -1, CMHD_PEER_NONE = 0, CMHD_PEER_VERIFIED = 1 };
int cmhd_peer_certificate(struct MHD_Connection *connection, char *subject, size_t subject_cap,
                          char *reason, size_t reason_cap);

/* What admitting a request needs of its header fields, in one pass: the first value of each
   field below (NULL when absent; valid until the request completes) and how many fields there
   are with each of these names. */
struct cmhd_head {
    const char *request_id;        /* X-Request-Id */
    const char *content_length;    /* Content-Length */
    const char *authorization;     /* Authorization */
    unsigned transfer_encodings;   /* Transfer-Encoding fields */
    unsigned fields;               /* all header fields */
};
void cmhd_scan_head(struct MHD_Connection *connection, struct cmhd_head *head);

/* The first value of header field `name` (ASCII case ignored), or NULL; `*count` gets how many
   fields have that name. */
const char *cmhd_header(struct MHD_Connection *connection, const char *name, unsigned *count);

/* Responses kept per thread: one MHD response per MHD thread that sends it, so a response made
   once can be queued again with only its per-request field replaced. MHD builds a response's
   header block right after the access handler that queued it returns, on that handler's thread,
   and never reads the fields again; so a response used by one thread only may have a field
   replaced before each queueing. At most CMHD_KEPT_THREADS threads; beyond them the caller makes
   a response per request. */
enum { CMHD_KEPT_THREADS = 16 };
struct cmhd_kept;
struct cmhd_kept *cmhd_kept_new(void);
/* Destroys every kept response (MHD keeps each alive until its last connection is done). */
void cmhd_kept_free(struct cmhd_kept *kept);
/* This thread's response, or NULL when it has none yet. */
struct MHD_Response *cmhd_kept_get(struct cmhd_kept *kept);
/* Keeps `response` (the caller's reference passes to `kept`) as this thread's; 0 when every slot
   belongs to another thread (the caller keeps its reference). */
int cmhd_kept_put(struct cmhd_kept *kept, struct MHD_Response *response);
/* Replaces the value of field `name` (added when absent): a value as long as the one it replaces
   is copied over it in place (a request id), others are removed and added. 0 when MHD refused. */
int cmhd_response_replace_header(struct MHD_Response *response, const char *name, const char *value);

#endif
