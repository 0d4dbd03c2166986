// SPDX-License-Identifier: GPL-2.0
/*
 * globals.bpf.c - global data in every kind of data section, several
 * programs sharing one section, static/global subprograms and a bpf_loop
 * callback.
 *
 * FACTS (clang 21 -target bpf -O2 -g; read back with llvm-objdump/readelf)
 *
 * Sections (type, flags, size, alignment); there is no .maps section:
 *   .data          PROGBITS WA  72 (0x48)  align 8
 *   .rodata        PROGBITS A   25 (0x19)  align 8
 *   .data.custom   PROGBITS WA   4         align 4
 *   .rodata.cfg    PROGBITS A    4         align 4
 *   .bss           NOBITS   WA  40 (0x28)  align 8
 *   .bss.extra     NOBITS   WA   4         align 4
 *   license        PROGBITS WA   4  "GPL\0"
 *
 * Variables: section @offset, size, initial value (STB_GLOBAL STT_OBJECT
 * with default visibility unless noted):
 *   .data @0    data_int        4  1234 (0x4d2)
 *   .data @4    data_str       16  "bpfdepot-data", NUL padded
 *   .data @20   data_point     20  struct gl_point { x=-5, y=17,
 *                                  short grid[2][3]={{1,2,3},{4,5,6}} }
 *   .data @40   data_flag       1  true (0x01)
 *   .data @44   data_color      4  GL_BLUE = 7 (enum gl_color)
 *   .data @48   data_bits       4  { a:3=5, b:5=19, c:24=0xABCDEF }
 *                                  = bytes 9d ef cd ab (u32 0xABCDEF9D)
 *   .data @56   data_word       8  union gl_word, .wide=0x1122334455667788
 *   .data @64   hidden_global   4  11, STV_HIDDEN
 *   .data @68   hidden_counter  4  9, STB_LOCAL (file-local static)
 *   .rodata @0  ro_u32          4  0xDEADBEEF        (const volatile)
 *   .rodata @8  ro_s64          8  -42               (const volatile)
 *   .rodata @16 ro_flag         1  true              (const volatile)
 *   .rodata @17 ro_name         8  "ro-name\0"       (const volatile)
 *   .bss @0     bss_int         4  0
 *   .bss @8     bss_arr        32  __u64[4], zero
 *   .data.custom @0  custom_val 4  42
 *   .rodata.cfg  @0  cfg_limit  4  100 (const volatile)
 *   .bss.extra   @0  extra_zero 4  0
 * BTF has one DATASEC per section above plus 'license'. In the .o the
 * DATASEC sizes are 0 and every global VAR has offset 0 (the loader fills
 * them in from the symbol table); only the static hidden_counter already
 * carries its real offset (68).
 *
 * Programs (section / function, instructions = st_size / 8):
 *   syscall                        sys_first  @0x000  46 insns
 *   syscall                        sys_second @0x170  33 insns
 *   xdp                            xdp_prog           15 insns
 *   tc                             tc_prog            20 insns
 *   ?tp/syscalls/sys_enter_getpid  tp_getpid          12 insns (autoload off)
 * Subprograms in .text (section size 0x108 = 33 insns):
 *   global_sub @0x00  10 insns  STB_GLOBAL  (global __noinline)
 *   loop_cb    @0x50  16 insns  STB_LOCAL   (bpf_loop callback)
 *   static_sub @0xd0   7 insns  STB_LOCAL   (static __noinline)
 *
 * Relocations (entries: .relsyscall 16, .rel.text 4, .relxdp 3, .reltc 3,
 * .rel?tp/syscalls/sys_enter_getpid 2). Instruction numbers are section
 * indexes:
 *   syscall #6   R_BPF_64_64 vs section symbol .text, ld_imm64 imm=80
 *                -> loop_cb (becomes a BPF_PSEUDO_FUNC load)
 *   syscall #14  R_BPF_64_32 vs section symbol .text, call src_reg=1
 *                imm=25 -> .text insn 26 = static_sub (sys_first)
 *   syscall #71  same, static_sub call from sys_second
 *   syscall #17  R_BPF_64_32 vs global_sub, call src_reg=1 imm=-1
 *   .text   #26  R_BPF_64_64 vs section symbol .data, ld_imm64 imm=68
 *                -> hidden_counter (static vars are not referenced by name)
 *   every other data access: R_BPF_64_64 against the variable's own
 *   symbol with imm=0 (.data, .rodata, .bss, .data.custom, .rodata.cfg,
 *   .bss.extra all referenced).
 *
 * Runtime (fresh load, .rodata unchanged, BPF_PROG_TEST_RUN without ctx):
 *   sys_first  -> 1399; then bss_int=1399, bss_arr={1,2,3,4},
 *                 hidden_counter=10, data_point.x=1, data_int=1192
 *   sys_second (next) -> 267; then custom_val=43, data_color=2,
 *                 data_flag=false, hidden_counter=11, hidden_global=11
 */
#include <stdbool.h>
#include "bpfdepot_common.h"

/* ---- types ------------------------------------------------------------- */

enum gl_color {
	GL_RED = 1,
	GL_GREEN = 2,
	GL_BLUE = 7,
};

struct gl_point {
	int x;
	int y;
	short grid[2][3];
};

struct gl_bits {
	unsigned int a : 3;
	unsigned int b : 5;
	unsigned int c : 24;
};

union gl_word {
	__u64 wide;
	__u32 half[2];
	unsigned char bytes[8];
};

struct gl_loop_ctx {
	int sum;
	int step;
};

/* ---- .data ------------------------------------------------------------- */

int data_int = 1234;
char data_str[16] = "bpfdepot-data";
struct gl_point data_point = {
	.x = -5,
	.y = 17,
	.grid = { { 1, 2, 3 }, { 4, 5, 6 } },
};
bool data_flag = true;
enum gl_color data_color = GL_BLUE;
struct gl_bits data_bits = { .a = 5, .b = 19, .c = 0xABCDEF };
union gl_word data_word = { .wide = 0x1122334455667788ULL };

/* file-local and hidden-visibility data */
static int hidden_counter = 9;
__attribute__((visibility("hidden"))) int hidden_global = 11;

/* ---- .rodata ----------------------------------------------------------- */

const volatile __u32 ro_u32 = 0xDEADBEEF;
const volatile __s64 ro_s64 = -42;
const volatile bool ro_flag = true;
const volatile char ro_name[8] = "ro-name";

/* ---- .bss -------------------------------------------------------------- */

int bss_int;
__u64 bss_arr[4];

/* ---- custom data sections ---------------------------------------------- */

SEC(".data.custom") int custom_val = 42;
SEC(".rodata.cfg") const volatile int cfg_limit = 100;
SEC(".bss.extra") int extra_zero;

/* ---- subprograms (.text) ----------------------------------------------- */

/* file-local subprogram: bumps the static counter */
static __noinline int static_sub(int x)
{
	hidden_counter += 1;
	return x + hidden_counter;
}

/* global subprogram: verified on its own, touches .data.custom and .rodata */
__noinline int global_sub(int x)
{
	if (x > cfg_limit)
		x = cfg_limit;
	return x + custom_val;
}

/* bpf_loop callback: referenced by ld_imm64 (BPF_PSEUDO_FUNC) */
static int loop_cb(__u32 idx, void *arg)
{
	struct gl_loop_ctx *lc = arg;

	lc->sum += lc->step;
	if (idx < 4)
		bss_arr[idx] += idx + 1;
	return 0;
}

/* ---- programs ---------------------------------------------------------- */

SEC("syscall")
int sys_first(void *ctx)
{
	struct gl_loop_ctx lc = { .sum = 0, .step = 3 };

	bpf_loop(4, loop_cb, &lc, 0);
	bss_int = data_int + static_sub(1) + global_sub(200) + lc.sum;
	data_point.x += data_point.grid[1][2];
	if (ro_flag)
		data_int += (int)ro_s64;
	return bss_int;
}

SEC("syscall")
int sys_second(void *ctx)
{
	custom_val += 1;
	data_color = GL_GREEN;
	data_flag = !data_flag;
	hidden_global += extra_zero;
	return static_sub(data_point.y) + (int)(ro_u32 & 0xff);
}

SEC("xdp")
int xdp_prog(struct xdp_md *ctx)
{
	data_word.half[1] ^= 0xFFFFFFFFU;
	bss_arr[0] += (unsigned char)data_str[0];
	return XDP_PASS;
}

SEC("tc")
int tc_prog(struct __sk_buff *skb)
{
	data_bits.b = 3;
	bss_arr[1] += data_bits.c;
	return ro_name[0] == 'r' ? 0 /* TC_ACT_OK */ : 2 /* TC_ACT_SHOT */;
}

SEC("?tp/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	extra_zero += 1;
	hidden_global += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
