/* bpfvm's C API: load an eBPF program, register helpers, compile it for an engine and run it.
 *
 * Every function returns a bpfvm_status; BPFVM_OK is 0. On failure bpfvm_last_error() gives a
 * message that names what and where (file, section, instruction). Bad input never aborts.
 *
 * Thread safety: a bpfvm_program is set up (load, register helpers, engine, budget, compile)
 * from one thread at a time. Once bpfvm_compile() has succeeded, bpfvm_run() may be called on
 * the same handle from any number of threads at once: each run has its own registers and
 * stack, and reports its outcome only through its bpfvm_result (never through
 * bpfvm_last_error). Helpers registered by the embedder must then be safe to call concurrently.
 * A setup call must not overlap a run; one that changes the program, its helpers or its engine
 * drops the compiled form, and bpfvm_run() then returns BPFVM_ERR_STATE until the next compile.
 * Distinct handles are independent. bpfvm_destroy() must not race with anything on its handle.
 */
#ifndef BPFVM_H
#define BPFVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bpfvm_status {
  BPFVM_OK = 0,
  BPFVM_ERR_ARGUMENT = 1, /* a null handle or pointer, an unknown engine name, ... */
  BPFVM_ERR_LOAD = 2,     /* the file or bytes are not a program, or the section is missing */
  BPFVM_ERR_COMPILE = 3,  /* the engine refused the program */
  BPFVM_ERR_STATE = 4,    /* wrong order: run before compile, load twice, ... */
  BPFVM_ERR_TRAP = 5,     /* the run stopped on a trap: see bpfvm_result.trap */
  BPFVM_ERR_INTERNAL = 6, /* a bug in bpfvm (or out of memory) */
  BPFVM_ERR_REJECTED = 7, /* the verifier rejected the program: bpfvm_last_error() says why */
} bpfvm_status;

/* A program and its settings. Opaque. */
typedef struct bpfvm_program bpfvm_program;

/* A helper: receives r1..r5 and returns r0. `user` is the pointer given at registration. */
typedef uint64_t (*bpfvm_helper_fn)(void* user, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                    uint64_t r5);

/* Why a run stopped early. */
typedef struct bpfvm_trap {
  char kind[32];     /* e.g. "out_of_bounds", "budget_exhausted" */
  uint64_t pc;       /* the instruction index */
  uint64_t address;  /* the address accessed, when the trap is about memory */
  uint32_t size;     /* the access size in bytes, when it is about memory */
  char region[64];   /* the memory region the access missed or violated ("" when none) */
  char message[256]; /* the whole trap as one sentence */
} bpfvm_trap;

typedef struct bpfvm_result {
  uint64_t r0;     /* the program's result, when it exited normally */
  int trapped;     /* non-zero when the run stopped on a trap */
  bpfvm_trap trap; /* valid when trapped */
} bpfvm_result;

/* Creates an empty program handle (engine "interp"). Returns NULL only when out of memory. */
bpfvm_program* bpfvm_create(void);
/* Frees the handle and everything it owns. NULL is allowed. */
void bpfvm_destroy(bpfvm_program* program);

/* The message of the last failed setup call on this handle ("" when none). Valid until the
 * next call on the handle. */
const char* bpfvm_last_error(const bpfvm_program* program);

/* Loads a program: an ELF object (clang -target bpf), raw instruction bytes or assembly text,
 * told apart by their content. `section` picks one program of an object holding several (a
 * section or function name); NULL or "" picks the only one. */
bpfvm_status bpfvm_load_bytes(bpfvm_program* program, const void* bytes, size_t size, const char* section);
bpfvm_status bpfvm_load_file(bpfvm_program* program, const char* path, const char* section);

/* Registers a helper under a call number and a name (programs from ELF objects may call it by
 * either). Before bpfvm_compile(). Replaces a helper of the same id. */
bpfvm_status bpfvm_register_helper(bpfvm_program* program, uint32_t id, const char* name, bpfvm_helper_fn fn,
                                   void* user);

/* Chooses the engine ("interp"; "jit" when this build has one). Before bpfvm_compile(). */
bpfvm_status bpfvm_set_engine(bpfvm_program* program, const char* engine);
/* Limits each run to `instructions` executed instructions (0: the default limit). Before
 * bpfvm_compile(). BPFVM_NO_BUDGET: no limit and no counting, for a verified program only (the
 * verifier proved that every loop ends; bpfvm_compile() refuses an unverified one). */
#define BPFVM_NO_BUDGET UINT64_MAX
bpfvm_status bpfvm_set_budget(bpfvm_program* program, uint64_t instructions);

/* Verifies the loaded program for a program type: "raw" (r1 = memory of exactly `mem_size`
 * bytes and r2 = mem_size; a negative mem_size: any size, r2 bounds it), "xdp",
 * "socket_filter" or "sched_cls" (mem_size ignored). BPFVM_ERR_REJECTED when it is not proven
 * safe, with the diagnostic (instruction, check, registers, source line) in bpfvm_last_error().
 * Once it is accepted, bpfvm_compile() compiles the verified form: the accesses the verifier
 * proved run without checks, and a run whose entry differs from what was verified (another
 * memory size, a packet of another type) stops at once with an "entry mismatch" trap. Loading
 * another program drops the verification. */
bpfvm_status bpfvm_verify(bpfvm_program* program, const char* type, int64_t mem_size);

/* Prepares the loaded program for runs on the chosen engine (the verified form after a
 * successful bpfvm_verify()). */
bpfvm_status bpfvm_compile(bpfvm_program* program);

/* Runs the program with r1 = `memory` and r2 = `size` (memory may be NULL when size is 0); the
 * program may read and write those bytes. Returns BPFVM_OK with result->r0 set, or
 * BPFVM_ERR_TRAP with result->trap filled in. A null argument (BPFVM_ERR_ARGUMENT) or a program
 * not compiled yet (BPFVM_ERR_STATE) is reported by the status alone. */
bpfvm_status bpfvm_run(const bpfvm_program* program, void* memory, size_t size, bpfvm_result* result);

/* ---- Maps, the Linux helpers and packet contexts ------------------------------------------
 * A program's maps (from its ELF object's maps / .maps / .data / .rodata / .bss sections) are
 * created by bpfvm_create_maps() or bpfvm_compile(). The map functions below may be called
 * while runs are going on, from any thread. They return 0 or a negative errno as bpf(2) does:
 * -ENOENT (no such key), -EEXIST, -E2BIG (full), -EINVAL (bad flags, an unknown map name, a
 * NULL pointer, or a program with no maps created yet). Per-CPU maps read and write one value
 * per CPU slot (64 slots, value_size rounded up to 8 each): see bpfvm_map_info.value_bytes. */

/* Registers the Linux helpers (map_lookup_elem, trace_printk, ring buffers, tail calls, ...). */
bpfvm_status bpfvm_add_linux_helpers(bpfvm_program* program);
bpfvm_status bpfvm_create_maps(bpfvm_program* program);

typedef struct bpfvm_map_info {
  char name[64];
  uint32_t type; /* enum bpf_map_type */
  uint32_t key_size;
  uint32_t value_size;
  uint32_t max_entries;
  size_t value_bytes; /* what lookup and update read and write: value_size, or all CPUs' values */
} bpfvm_map_info;

size_t bpfvm_map_count(const bpfvm_program* program);
bpfvm_status bpfvm_map_info_at(const bpfvm_program* program, size_t index, bpfvm_map_info* info);

/* flags: 0 BPF_ANY, 1 BPF_NOEXIST, 2 BPF_EXIST. next_key: key NULL gives the first key. */
int bpfvm_map_lookup(bpfvm_program* program, const char* map, const void* key, void* value);
int bpfvm_map_update(bpfvm_program* program, const char* map, const void* key, const void* value,
                     uint64_t flags);
int bpfvm_map_delete(bpfvm_program* program, const char* map, const void* key);
int bpfvm_map_next_key(bpfvm_program* program, const char* map, const void* key, void* next_key);

/* Hands every record the programs submitted to a ring buffer map to `fn`, in order; returns how
 * many, or a negative errno. */
typedef void (*bpfvm_ringbuf_fn)(void* user, const void* data, size_t size);
long bpfvm_ringbuf_consume(bpfvm_program* program, const char* map, bpfvm_ringbuf_fn fn, void* user);

/* Runs the program on a packet: `type` is "xdp" (r1 = struct xdp_md), "socket_filter" or
 * "sched_cls" (r1 = struct __sk_buff). result->r0 is the verdict (XDP_PASS = 2, ...). */
bpfvm_status bpfvm_run_packet(const bpfvm_program* program, const char* type, const void* packet, size_t size,
                              bpfvm_result* result);

/* Text for a status ("ok", "invalid argument", ...). */
const char* bpfvm_status_string(bpfvm_status status);

#ifdef __cplusplus
}
#endif

#endif /* BPFVM_H */
