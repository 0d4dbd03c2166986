#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>
#include "cmhd.h"

struct MHD_Daemon *cmhd_start_daemon(unsigned int flags,
                                     MHD_AccessHandlerCallback handler, void *handler_cls,
                                     MHD_RequestCompletedCallback completed, void *completed_cls,
                                     void *(*uri_logger)(void *cls, const char *uri,
                                                         struct MHD_Connection *connection),
                                     void *uri_logger_cls,
                                     MHD_NotifyConnectionCallback notify_connection,
                                     void *notify_connection_cls,
                                     const struct MHD_OptionItem *options) {
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                            MHD_OPTION_URI_LOG_CALLBACK, uri_logger, uri_logger_cls,
                            MHD_OPTION_NOTIFY_CONNECTION, notify_connection, notify_connection_cls,
                            MHD_OPTION_ARRAY, options,
                            MHD_OPTION_END);
}

uint16_t cmhd_daemon_bind_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

const struct sockaddr *cmhd_connection_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info ? info->client_addr : NULL;
}

int cmhd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

void *cmhd_connection_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

void cmhd_connection_no_timeout(struct MHD_Connection *connection) {
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int) 0);
}

#include <string.h>
#include <strings.h>

static enum MHD_Result cmhd_scan_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void) kind;
    struct cmhd_head *head = cls;
    head->fields++;
    if (key == NULL) return MHD_YES;
    const char *v = value ? value : "";
    /* Dispatch on the length first: most fields match none of these. */
    switch (strlen(key)) {
    case 12:
        if (head->request_id == NULL && strcasecmp(key, "X-Request-Id") == 0) head->request_id = v;
        break;
    case 13:
        if (head->authorization == NULL && strcasecmp(key, "Authorization") == 0) head->authorization = v;
        break;
    case 14:
        if (head->content_length == NULL && strcasecmp(key, "Content-Length") == 0) head->content_length = v;
        break;
    case 17:
        if (strcasecmp(key, "Transfer-Encoding") == 0) head->transfer_encodings++;
        break;
    }
    return MHD_YES;
}

void cmhd_scan_head(struct MHD_Connection *connection, struct cmhd_head *head) {
    memset(head, 0, sizeof *head);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, cmhd_scan_field, head);
}

struct cmhd_lookup {
    const char *name;
    const char *first;
    unsigned count;
};

static enum MHD_Result cmhd_lookup_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void) kind;
    struct cmhd_lookup *l = cls;
    if (key != NULL && strcasecmp(key, l->name) == 0) {
        if (l->count++ == 0) l->first = value ? value : "";
    }
    return MHD_YES;
}

const char *cmhd_header(struct MHD_Connection *connection, const char *name, unsigned *count) {
    struct cmhd_lookup l = { name, NULL, 0 };
    MHD_get_connection_values(connection, MHD_HEADER_KIND, cmhd_lookup_field, &l);
    if (count) *count = l.count;
    return l.first;
}

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

static void cmhd_copy_datum(char *out, size_t cap, const gnutls_datum_t *d) {
    if (cap == 0) return;
    size_t n = d->size < cap - 1 ? d->size : cap - 1;
    memcpy(out, d->data, n);
    out[n] = 0;
}

int cmhd_peer_certificate(struct MHD_Connection *connection, char *subject, size_t subject_cap,
                          char *reason, size_t reason_cap) {
    if (subject_cap) subject[0] = 0;
    if (reason_cap) reason[0] = 0;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (info == NULL || info->tls_session == NULL) return CMHD_PEER_NOT_TLS;
    gnutls_session_t session = (gnutls_session_t) info->tls_session;
    unsigned int count = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &count);
    if (chain == NULL || count == 0) return CMHD_PEER_NONE;

    /* The chain up to the configured CA, validity dates, and the purpose: a certificate whose
       extended key usage does not allow TLS client authentication is refused. */
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *) GNUTLS_KP_TLS_WWW_CLIENT, .size = 0,
    };
    unsigned int status = 0;
    int rc = gnutls_certificate_verify_peers(session, &purpose, 1, &status);
    if (rc < 0) {
        if (reason_cap) snprintf(reason, reason_cap, "%s", gnutls_strerror(rc));
        return CMHD_PEER_INVALID;
    }
    if (status != 0) {
        gnutls_datum_t text = {NULL, 0};
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
            cmhd_copy_datum(reason, reason_cap, &text);
            gnutls_free(text.data);
        }
        return CMHD_PEER_INVALID;
    }

    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) return CMHD_PEER_INVALID;
    int result = CMHD_PEER_INVALID;
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0) {
        gnutls_datum_t dn = {NULL, 0};
        if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
            if (dn.size < subject_cap) {
                cmhd_copy_datum(subject, subject_cap, &dn);
                result = CMHD_PEER_VERIFIED;
            } else if (reason_cap) {
                snprintf(reason, reason_cap, "a subject of %u bytes (at most %zu)", dn.size, subject_cap - 1);
            }
            gnutls_free(dn.data);
        }
    }
    gnutls_x509_crt_deinit(crt);
    return result;
}

struct cmhd_kept {
    _Atomic(pthread_t) owner[CMHD_KEPT_THREADS];
    _Atomic(struct MHD_Response *) response[CMHD_KEPT_THREADS];
};

struct cmhd_kept *cmhd_kept_new(void) {
    return calloc(1, sizeof(struct cmhd_kept));
}

void cmhd_kept_free(struct cmhd_kept *kept) {
    if (!kept) return;
    for (int i = 0; i < CMHD_KEPT_THREADS; i++) {
        struct MHD_Response *r = atomic_load(&kept->response[i]);
        if (r) MHD_destroy_response(r);
    }
    free(kept);
}

struct MHD_Response *cmhd_kept_get(struct cmhd_kept *kept) {
    pthread_t self = pthread_self();
    for (int i = 0; i < CMHD_KEPT_THREADS; i++) {
        pthread_t owner = atomic_load_explicit(&kept->owner[i], memory_order_acquire);
        if (owner == 0) return NULL;  /* slots are claimed in order: no later one is ours */
        if (pthread_equal(owner, self)) return atomic_load_explicit(&kept->response[i], memory_order_relaxed);
    }
    return NULL;
}

int cmhd_kept_put(struct cmhd_kept *kept, struct MHD_Response *response) {
    pthread_t self = pthread_self();
    for (int i = 0; i < CMHD_KEPT_THREADS; i++) {
        pthread_t expected = 0;
        if (atomic_compare_exchange_strong(&kept->owner[i], &expected, self) || pthread_equal(expected, self)) {
            /* Only this thread writes its slot; a response it kept before is replaced. */
            struct MHD_Response *old = atomic_exchange(&kept->response[i], response);
            if (old) MHD_destroy_response(old);
            return 1;
        }
    }
    return 0;
}

int cmhd_response_replace_header(struct MHD_Response *response, const char *name, const char *value) {
    const char *old = MHD_get_response_header(response, name);
    size_t n = strlen(value);
    if (old && strlen(old) == n) {
        /* The field's own copy of its value (made by MHD_add_response_header, freed only with
           the field): a value of the same length is written over it. */
        memcpy((char *)old, value, n);
        return 1;
    }
    if (old && MHD_del_response_header(response, name, old) != MHD_YES) return 0;
    return MHD_add_response_header(response, name, value) == MHD_YES;
}
