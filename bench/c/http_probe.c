// http_probe: the client side of bench/service.sh where wrk does not fit: one keep-alive
// connection on 127.0.0.1 sending requests one after another and timing each, uploads of many
// distinct objects, and the start-up clock of `bpfdepot serve`.
//
//   http_probe req METHOD PORT PATH COUNT WARMUP STATUS [-H 'Name: value'] [-b BODY] [-o FILE]
//       COUNT timed requests after WARMUP untimed ones, each answered with STATUS (else exit 1).
//       A %d in PATH or BODY becomes the request's sequence number (warm-up ones included), so
//       every PATCH can write a new value. -o writes the last response body to FILE.
//   http_probe upload PORT FILE COUNT NAME [FIRST_SEED]
//       COUNT POSTs of FILE to /v1/objects?name=NAME-i, each a distinct object: the first 8-byte
//       occurrence of 0x5eed5eed5eed5eed (little endian; `bench_seed` in the bench fixtures)
//       becomes FIRST_SEED + i (FIRST_SEED defaults to 1) before each upload. Every answer must
//       be 201 (a new object).
//   http_probe startup PORT TIMEOUT_MS CMD [ARG...]
//       fork + exec CMD, then GET /healthz every 0.2 ms until a 200 (connection refused counts
//       as not yet). Prints "startup MS pid PID" and leaves CMD running; with PROBE_LOG set in
//       the environment, CMD's stdout and stderr go to that file.
//
// req and upload print one line: "N MEDIAN_US P90_US P99_US MIN_US MAX_US" (nearest-rank
// percentiles, as libbpf_bench.c). Only what bpfdepot and MHD send is understood: a status
// line, header fields and a Content-Length body (no chunked encoding).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what) {
    fprintf(stderr, "http_probe: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(1);
}

static int connect_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

// One response on a keep-alive connection. Reads into *buf (grown as needed); returns the
// status, or -1 when the peer closed before a complete response. *body points into *buf.
struct response {
    int status;
    char *body;
    size_t body_len;
    int closes;  // "Connection: close"
};

static char *rbuf;
static size_t rcap, rlen;  // bytes buffered (a pipelined surplus would stay here; we never pipeline)

static int read_response(int fd, struct response *r) {
    size_t head_end = 0;
    long content_length = -1;
    for (;;) {
        if (!head_end) {
            char *e = rlen >= 4 ? memmem(rbuf, rlen, "\r\n\r\n", 4) : NULL;
            if (e) {
                head_end = (size_t)(e - rbuf) + 4;
                if (sscanf(rbuf, "HTTP/1.%*d %d", &r->status) != 1) return -1;
                r->closes = 0;
                for (char *line = strstr(rbuf, "\r\n") + 2; line < rbuf + head_end - 2;) {
                    char *next = strstr(line, "\r\n");
                    if (!strncasecmp(line, "Content-Length:", 15)) content_length = strtol(line + 15, NULL, 10);
                    if (!strncasecmp(line, "Connection:", 11) && strcasestr(line, "close") && strcasestr(line, "close") < next)
                        r->closes = 1;
                    line = next + 2;
                }
                if (content_length < 0) content_length = 0;
            }
        }
        if (head_end && rlen >= head_end + (size_t)content_length) {
            r->body = rbuf + head_end;
            r->body_len = (size_t)content_length;
            return r->status;
        }
        if (rlen == rcap) {
            rcap = rcap ? rcap * 2 : 1 << 16;
            rbuf = realloc(rbuf, rcap + 1);
            if (!rbuf) die("realloc");
        }
        ssize_t n = read(fd, rbuf + rlen, rcap - rlen);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        rlen += (size_t)n;
        rbuf[rlen] = 0;
    }
}

static void consume_response(const struct response *r) {
    size_t used = (size_t)(r->body - rbuf) + r->body_len;
    memmove(rbuf, rbuf + used, rlen - used);
    rlen -= used;
}

// Sends one request (head and body in one or two writes) and reads the answer.
static int exchange(int fd, const char *method, const char *path, const char *header, const void *body,
                    size_t body_len, const char *content_type, struct response *r) {
    char head[4096];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
    if (header) n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", header);
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n", content_type,
                      body_len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if ((size_t)n >= sizeof head) die("request head too long");
    if (body && body_len < 65536) {
        char *all = malloc((size_t)n + body_len);
        if (!all) die("malloc");
        memcpy(all, head, (size_t)n);
        memcpy(all + n, body, body_len);
        write_all(fd, all, (size_t)n + body_len);
        free(all);
    } else {
        write_all(fd, head, (size_t)n);
        if (body) write_all(fd, body, body_len);
    }
    return read_response(fd, r);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *v, int n, double p) {
    int rank = (int)(p / 100.0 * n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

static void print_stats(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("%d %.1f %.1f %.1f %.1f %.1f\n", n, percentile(v, n, 50), percentile(v, n, 90), percentile(v, n, 99), v[0],
           v[n - 1]);
}

// Replaces the first "%d" in tmpl by i (at most one).
static char *expand(const char *tmpl, long i) {
    const char *p = strstr(tmpl, "%d");
    char *out;
    if (!p) return strdup(tmpl);
    if (asprintf(&out, "%.*s%ld%s", (int)(p - tmpl), tmpl, i, p + 2) < 0) die("asprintf");
    return out;
}

static int cmd_req(int argc, char **argv) {
    if (argc < 8) die("usage: req METHOD PORT PATH COUNT WARMUP STATUS [-H h] [-b body] [-o file]");
    const char *method = argv[2], *path = argv[4];
    int port = atoi(argv[3]), count = atoi(argv[5]), warmup = atoi(argv[6]), want = atoi(argv[7]);
    const char *header = NULL, *body = NULL, *out = NULL;
    for (int i = 8; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-H")) header = argv[i + 1];
        else if (!strcmp(argv[i], "-b")) body = argv[i + 1];
        else if (!strcmp(argv[i], "-o")) out = argv[i + 1];
        else die("unknown option");
    }
    double *lat = calloc((size_t)count, sizeof *lat);
    int fd = connect_port(port);
    if (fd < 0) die("connect");
    struct response r = {0};
    for (int i = 0; i < warmup + count; i++) {
        char *p = expand(path, i), *b = body ? expand(body, i) : NULL;
        double t0 = now_us();
        int status = exchange(fd, method, p, header, b, b ? strlen(b) : 0, "application/json", &r);
        double t1 = now_us();
        if (status != want) {
            fprintf(stderr, "http_probe: %s %s: expected %d, got %d: %.*s\n", method, p, want, status,
                    status < 0 ? 0 : (int)(r.body_len > 400 ? 400 : r.body_len), status < 0 ? "" : r.body);
            return 1;
        }
        if (i >= warmup) lat[i - warmup] = t1 - t0;
        if (out && i == warmup + count - 1) {
            FILE *f = fopen(out, "wb");
            if (!f || fwrite(r.body, 1, r.body_len, f) != r.body_len || fclose(f)) die(out);
        }
        int closes = r.closes;
        consume_response(&r);
        if (closes) {
            close(fd);
            rlen = 0;
            if ((fd = connect_port(port)) < 0) die("reconnect");
        }
        free(p);
        free(b);
    }
    close(fd);
    print_stats(lat, count);
    return 0;
}

static int cmd_upload(int argc, char **argv) {
    if (argc < 6) die("usage: upload PORT FILE COUNT NAME [FIRST_SEED]");
    int port = atoi(argv[2]), count = atoi(argv[4]);
    uint64_t first_seed = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;
    const char *name = argv[5];
    FILE *f = fopen(argv[3], "rb");
    if (!f) die(argv[3]);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *elf = malloc((size_t)size);
    if (!elf || fread(elf, 1, (size_t)size, f) != (size_t)size) die("read");
    fclose(f);
    static const unsigned char marker[8] = {0xed, 0x5e, 0xed, 0x5e, 0xed, 0x5e, 0xed, 0x5e};
    unsigned char *seed = memmem(elf, (size_t)size, marker, 8);
    if (!seed) { errno = 0; die("no 0x5eed5eed5eed5eed marker (bench_seed) in the object"); }
    double *lat = calloc((size_t)count, sizeof *lat);
    int fd = connect_port(port);
    if (fd < 0) die("connect");
    struct response r = {0};
    for (int i = 0; i < count; i++) {
        uint64_t v = first_seed + (uint64_t)i;
        memcpy(seed, &v, 8);
        char path[512];
        snprintf(path, sizeof path, "/v1/objects?name=%s-%d", name, i);
        double t0 = now_us();
        int status = exchange(fd, "POST", path, NULL, elf, (size_t)size, "application/octet-stream", &r);
        lat[i] = now_us() - t0;
        if (status != 201) {
            fprintf(stderr, "http_probe: upload %d: expected 201, got %d: %.*s\n", i, status,
                    status < 0 ? 0 : (int)(r.body_len > 400 ? 400 : r.body_len), status < 0 ? "" : r.body);
            return 1;
        }
        int closes = r.closes;
        consume_response(&r);
        if (closes) {
            close(fd);
            rlen = 0;
            if ((fd = connect_port(port)) < 0) die("reconnect");
        }
    }
    close(fd);
    print_stats(lat, count);
    return 0;
}

static int cmd_startup(int argc, char **argv) {
    if (argc < 5) die("usage: startup PORT TIMEOUT_MS CMD [ARG...]");
    int port = atoi(argv[2]);
    double timeout = atof(argv[3]) * 1000;
    double t0 = now_us();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        const char *log = getenv("PROBE_LOG");
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
        }
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    struct response r = {0};
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) { errno = 0; die("the server exited during start-up"); }
        if (now_us() - t0 > timeout) {
            kill(pid, SIGTERM);
            errno = 0;
            die("no 200 on /healthz before the timeout");
        }
        int fd = connect_port(port);
        if (fd >= 0) {
            rlen = 0;
            int s = exchange(fd, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
            close(fd);
            if (s == 200) break;
        }
        usleep(200);
    }
    printf("startup %.2f pid %d\n", (now_us() - t0) / 1000, (int)pid);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "req")) return cmd_req(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "upload")) return cmd_upload(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "startup")) return cmd_startup(argc, argv);
    fprintf(stderr, "usage: http_probe req|upload|startup ... (see the comment at the top of http_probe.c)\n");
    return 2;
}
