// libbpf_bench: libbpf's side of bpfdepot-bench (bench/run.sh).
//
//   libbpf_bench --version
//   libbpf_bench parse FIXTURE.o NAME ITERATIONS WARMUP
//       bpf_object__open_mem + bpf_object__close on bytes already in memory.
//   libbpf_bench load FIXTURE.o NAME ITERATIONS WARMUP PIN_ROOT
//       bpf_object__open_mem + bpf_object__load + bpf_object__close.
//   libbpf_bench vmlinux - NAME ITERATIONS WARMUP
//       btf__load_vmlinux_btf + one btf__find_by_name_kind (a kfunc) + btf__free: what
//       bpf_object__load does on every load that needs kernel BTF.
//   libbpf_bench callgrind-parse FIXTURE.o NAME ITERATIONS
//       one untimed warm-up, then ITERATIONS opens through measured_parse(), the function
//       run.sh hands to `valgrind --tool=callgrind --toggle-collect=measured_parse`.
//
// Prints one tab-separated line in the format bpfdepot-bench prints for our side:
//   IMPL  OP  NAME  N  COLD_US  MEDIAN_US  P90_US  MIN_US
// IMPL is "libbpf-" plus libbpf_version_string(). COLD_US is the first (warm-up 0) iteration
// in this fresh process: for load it includes libbpf's one-time kernel feature probes.
// Iterations after WARMUP are the sample. Between load iterations, anything left pinned under
// PIN_ROOT (maps.bpf.c's PIN_BY_NAME map) is removed, outside the timed region, so every
// iteration creates the map, as ours does.
//
// Only libbpf 1.1 API is used, so one file builds against Debian's libbpf-dev (1.1.2) and the
// libbpf 1.6 linked into the pylibbpf wheel (same ABI; see Tests/Oracle/build-oracle.sh).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

static int quiet;

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list args) {
    if (level == LIBBPF_DEBUG || quiet)
        return 0;
    return vfprintf(stderr, fmt, args);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Nearest-rank percentile of a sorted sample (p in 0...100).
static double percentile(const double *v, int n, double p) {
    int rank = (int)(p / 100.0 * n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? n : 1);
    if (fread(buf, 1, n, f) != (size_t)n) { perror(path); exit(1); }
    fclose(f);
    *size = n;
    return buf;
}

static void clear_pins(const char *root) {
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", root, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static struct bpf_object *open_obj(const void *buf, size_t size, const char *name, const char *pin_root) {
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name, .pin_root_path = pin_root);
    struct bpf_object *obj = bpf_object__open_mem(buf, size, &opts);
    if (!obj) {
        fprintf(stderr, "libbpf_bench: open %s: %s\n", name, strerror(errno));
        exit(2);
    }
    return obj;
}

__attribute__((noinline)) void measured_parse(const void *buf, size_t size, const char *name) {
    bpf_object__close(open_obj(buf, size, name, NULL));
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s\n", libbpf_version_string());
        return 0;
    }
    if (argc < 5) {
        fprintf(stderr, "usage: %s parse|load|vmlinux|callgrind-parse OBJ NAME ITERATIONS [WARMUP [PIN_ROOT]]\n", argv[0]);
        return 64;
    }
    libbpf_set_print(print_fn);
    const char *op = argv[1], *path = argv[2], *name = argv[3];
    int iters = atoi(argv[4]);
    int warmup = argc > 5 ? atoi(argv[5]) : 0;
    const char *pin_root = argc > 6 ? argv[6] : NULL;
    if (strcmp(op, "vmlinux") == 0) {
        if (warmup < 1) warmup = 1;
        double *sample = calloc(iters, sizeof(double)), cold = 0;
        for (int i = 0; i < warmup + iters; i++) {
            double t0 = now_us();
            struct btf *btf = btf__load_vmlinux_btf();
            if (!btf) { fprintf(stderr, "libbpf_bench: vmlinux BTF: %s\n", strerror(errno)); return 3; }
            if (btf__find_by_name_kind(btf, "bpf_arena_alloc_pages", BTF_KIND_FUNC) <= 0) {
                fprintf(stderr, "libbpf_bench: bpf_arena_alloc_pages not in vmlinux BTF\n");
                return 3;
            }
            btf__free(btf);
            double t = now_us() - t0;
            if (i == 0) cold = t;
            if (i >= warmup) sample[i - warmup] = t;
        }
        qsort(sample, iters, sizeof(double), cmp_double);
        printf("libbpf-%s\tvmlinux\t%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\n", libbpf_version_string(), name, iters, cold,
               percentile(sample, iters, 50), percentile(sample, iters, 90), sample[0]);
        return 0;
    }
    size_t size;
    void *buf = read_file(path, &size);

    if (strcmp(op, "callgrind-parse") == 0) {
        bpf_object__close(open_obj(buf, size, name, NULL));
        for (int i = 0; i < iters; i++)
            measured_parse(buf, size, name);
        printf("libbpf-%s\tcallgrind-parse\t%s\t%d\n", libbpf_version_string(), name, iters);
        return 0;
    }
    int is_load = strcmp(op, "load") == 0;
    if (!is_load && strcmp(op, "parse") != 0) {
        fprintf(stderr, "libbpf_bench: unknown operation %s\n", op);
        return 64;
    }
    if (warmup < 1) warmup = 1;
    double *sample = calloc(iters, sizeof(double));
    double cold = 0;
    for (int i = 0; i < warmup + iters; i++) {
        double t0 = now_us(), t1;
        if (is_load) {
            struct bpf_object *obj = open_obj(buf, size, name, pin_root);
            int err = bpf_object__load(obj);
            if (err) {
                fprintf(stderr, "libbpf_bench: load %s: %s\n", name, strerror(-err));
                return 3;
            }
            bpf_object__close(obj);
            t1 = now_us();
            if (pin_root) clear_pins(pin_root);
        } else {
            bpf_object__close(open_obj(buf, size, name, NULL));
            t1 = now_us();
        }
        if (i == 0) { cold = t1 - t0; quiet = 1; }
        if (i >= warmup) sample[i - warmup] = t1 - t0;
    }
    qsort(sample, iters, sizeof(double), cmp_double);
    printf("libbpf-%s\t%s\t%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\n", libbpf_version_string(), op, name, iters, cold,
           percentile(sample, iters, 50), percentile(sample, iters, 90), sample[0]);
    return 0;
}
