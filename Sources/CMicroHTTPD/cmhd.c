#include <stdio.h>
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
