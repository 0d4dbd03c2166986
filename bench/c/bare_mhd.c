// bare_mhd: the limit for bpfdepot's HTTP path (bench/service.sh). A libmicrohttpd daemon with
// the flags and options of Sources/DepotHTTP/HTTPServer.swift that answers every request with one
// static body and the header fields bpfdepot sends on a live-variable read (Content-Type, ETag,
// X-Request-Id; MHD adds Content-Length and Date itself).
//
//   bare_mhd PORT BODY_FILE ETAG [STATUS [THREADS]]
//
// PORT 0 picks a free port. Prints "port N" on stdout once listening, then serves until SIGINT
// or SIGTERM. STATUS defaults to 200; with 304 the answer has no body (BODY_FILE is ignored),
// like bpfdepot's answer to a matching If-None-Match. THREADS defaults to the online cores
// (HTTPServerConfiguration.onlineCores).
//
// Like bpfdepot's ServerCore, the response is queued on the second access-handler call of a
// request (the first one only sees the head), so both keep connections alive the same way.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <microhttpd.h>

static struct MHD_Response *response;
static unsigned status = MHD_HTTP_OK;
static int head_seen;  // address used as the "head seen" marker in *con_cls

static enum MHD_Result handler(void *cls, struct MHD_Connection *connection, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
    (void)cls; (void)url; (void)method; (void)version; (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &head_seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(connection, status, response);
}

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(buf, cap);
            if (!p) { free(buf); fclose(f); return NULL; }
            buf = p;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *size = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bare_mhd PORT BODY_FILE ETAG [STATUS [THREADS]]\n");
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]);
    size_t size;
    char *body = read_file(argv[2], &size);
    if (!body) { perror(argv[2]); return 2; }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (argc > 4) status = (unsigned)atoi(argv[4]);
    unsigned threads = argc > 5 ? (unsigned)atoi(argv[5]) : (unsigned)(cores > 0 ? cores : 1);

    response = MHD_create_response_from_buffer(status == MHD_HTTP_NOT_MODIFIED ? 0 : size, body,
                                               MHD_RESPMEM_PERSISTENT);
    if (!response) { fprintf(stderr, "bare_mhd: cannot create the response\n"); return 1; }
    if (status != MHD_HTTP_NOT_MODIFIED) MHD_add_response_header(response, "Content-Type", "application/json");
    MHD_add_response_header(response, "ETag", argv[3]);
    MHD_add_response_header(response, "X-Request-Id", "5eed5eed00000001");

    // Blocked before MHD starts its threads, so only sigwait below sees them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    // HTTPServer.swift: the same flags; THREAD_POOL_SIZE, CONNECTION_LIMIT and CONNECTION_TIMEOUT
    // as bpfdepot serve's defaults (MHD's limit is ConnectionGuard.hardLimit(forSoft: 1024) =
    // 1024 + 128; 60 s); bound to 127.0.0.1.
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
        handler, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(1024 + 128),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_END);
    if (!daemon) { perror("bare_mhd: MHD_start_daemon"); return 1; }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("port %u\n", info ? info->port : port);
    fflush(stdout);

    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(daemon);
    MHD_destroy_response(response);
    free(body);
    return 0;
}
