// libbpf_dump: the oracle for LibbpfOracleTests.
//
// Opens a BPF ELF object with real libbpf (`bpf_object__open_file`, no options, so libbpf
// names the object by its default rule) and prints, as one JSON object on stdout, what
// libbpf's public API reports before load, in the shape of `bpfdepot inspect --json`:
//
//   {"libbpfVersion":"v1.6","name":...,
//    "maps":[{"name","type","keySize","valueSize","maxEntries","flags","mapExtra",
//             "initialValueSize"}],
//    "programs":[{"name","section","type","attachType","instructions","autoload"}]}
//
// "type"/"attachType" are libbpf's own libbpf_bpf_*_str names ("unknown(N)" when this libbpf
// has no name for N). "attachType" is bpf_program__expected_attach_type, which is 0
// (cgroup_inet_ingress) when the section definition sets none; callers compare it only where
// the other side knows one. On an open error it prints {"error":...,"errno":N} and exits 2.
//
// Only API present in libbpf 1.1's headers is used, so the same file builds against Debian's
// libbpf-dev and against the newer libbpf inside the pylibbpf wheel (see build-oracle.sh).
// libbpf's own messages go to stderr (debug level only with LIBBPF_DUMP_DEBUG set).
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list args) {
    if (level == LIBBPF_DEBUG && !getenv("LIBBPF_DUMP_DEBUG"))
        return 0;
    return vfprintf(stderr, fmt, args);
}

static void json_string(const char *s) {
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

// A libbpf enum name, or "unknown(N)" when this libbpf version has none.
static void json_enum_name(const char *name, unsigned value) {
    char buf[32];
    if (!name) {
        snprintf(buf, sizeof(buf), "unknown(%u)", value);
        name = buf;
    }
    json_string(name);
}

// An errno or one of libbpf's own LIBBPF_ERRNO__* codes as text. (Not libbpf_strerror: the
// libbpf inside the pylibbpf wheel does not export it.)
static void err_name(int e, char *buf, size_t size) {
    static const char *const names[] = {
        "LIBELF", "FORMAT", "KVERSION", "ENDIAN", "INTERNAL", "RELOC", "LOAD",
        "VERIFY", "PROG2BIG", "KVER", "PROGTYPE", "WRNGPID", "INVSEQ", "NLPARSE",
    };
    int i = e - __LIBBPF_ERRNO__START;
    if (i >= 0 && i < (int)(sizeof(names) / sizeof(names[0])))
        snprintf(buf, size, "LIBBPF_ERRNO__%s", names[i]);
    else
        snprintf(buf, size, "%s", strerror(e));
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s\n", libbpf_version_string());
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s OBJECT.o | --version\n", argv[0]);
        return 64;
    }
    libbpf_set_print(print_fn);

    // libbpf 1.x returns NULL and sets errno on failure.
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (!obj) {
        int e = errno;
        char msg[64];
        err_name(e, msg, sizeof(msg));
        printf("{\"libbpfVersion\":");
        json_string(libbpf_version_string());
        printf(",\"error\":");
        json_string(msg);
        printf(",\"errno\":%d}\n", e);
        return 2;
    }

    printf("{\"libbpfVersion\":");
    json_string(libbpf_version_string());
    printf(",\"name\":");
    json_string(bpf_object__name(obj));

    printf(",\"maps\":[");
    bool first = true;
    struct bpf_map *map;
    bpf_object__for_each_map(map, obj) {
        size_t init_size = 0;
        if (!bpf_map__initial_value(map, &init_size))
            init_size = 0;
        printf("%s{\"name\":", first ? "" : ",");
        json_string(bpf_map__name(map));
        printf(",\"type\":");
        json_enum_name(libbpf_bpf_map_type_str(bpf_map__type(map)), bpf_map__type(map));
        printf(",\"keySize\":%u,\"valueSize\":%u,\"maxEntries\":%u,\"flags\":%u,"
               "\"mapExtra\":%llu,\"initialValueSize\":%zu}",
               bpf_map__key_size(map), bpf_map__value_size(map), bpf_map__max_entries(map),
               bpf_map__map_flags(map), (unsigned long long)bpf_map__map_extra(map), init_size);
        first = false;
    }

    printf("],\"programs\":[");
    first = true;
    struct bpf_program *prog;
    bpf_object__for_each_program(prog, obj) { // entry programs only, in libbpf's order
        printf("%s{\"name\":", first ? "" : ",");
        json_string(bpf_program__name(prog));
        printf(",\"section\":");
        json_string(bpf_program__section_name(prog));
        printf(",\"type\":");
        json_enum_name(libbpf_bpf_prog_type_str(bpf_program__type(prog)), bpf_program__type(prog));
        printf(",\"attachType\":");
        json_enum_name(libbpf_bpf_attach_type_str(bpf_program__expected_attach_type(prog)),
                       bpf_program__expected_attach_type(prog));
        printf(",\"instructions\":%zu,\"autoload\":%s}", bpf_program__insn_cnt(prog),
               bpf_program__autoload(prog) ? "true" : "false");
        first = false;
    }
    printf("]}\n");

    bpf_object__close(obj);
    return 0;
}
