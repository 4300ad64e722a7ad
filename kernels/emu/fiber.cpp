// Fiber scheduler of the CUDA emulator (see fiber.h for the model).
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

// x86-64 switches fibers with a few instructions of its own (emu_switch); elsewhere, or with EMU_USE_UCONTEXT,
// with ucontext (portable, but a system call per switch).
#if defined(__x86_64__) && !defined(EMU_USE_UCONTEXT)
#define EMU_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace emu {

thread_local FiberHeader* tl_fiber = nullptr;
thread_local BlockInfo* tl_block = nullptr;

namespace {

constexpr size_t kStackBytes = 128 * 1024;  // kernels keep small arrays in registers; 128 KiB leaves room at -O0

enum class Wait : uint8_t { Runnable, Block, Warp, Done };
enum class Coll : uint8_t { Shuffle, ShuffleXor, Ballot, Mma, MmaBf16 };

const char* coll_name(Coll c) {
    switch (c) {
        case Coll::Shuffle: return "__shfl_sync";
        case Coll::ShuffleXor: return "__shfl_xor_sync";
        case Coll::Ballot: return "__ballot_sync";
        case Coll::Mma: return "mma.sync (f16)";
        default: return "mma.sync (bf16)";
    }
}

struct Fiber : FiberHeader {
    void* sp = nullptr;  // saved stack pointer while switched out
#if !defined(EMU_ASM_SWITCH)
    ucontext_t ctx;
#endif
    char* stack = nullptr;
    Wait wait = Wait::Runnable;
    // The pending warp collective and its operands / result.
    Coll coll = Coll::Shuffle;
    uint32_t mask = 0;
    int arg = 0, width = 32;
    uint64_t value = 0, result = 0;
    uint32_t a[4] = {}, b[2] = {};
    float c[4] = {};
};

// Per OS thread: the fibers and stacks of the block being run (reused from block to block).
struct Scheduler {
    std::vector<Fiber> fibers;
    std::vector<char*> stacks;
    std::vector<unsigned char> smem;
    void* main_sp = nullptr;
#if !defined(EMU_ASM_SWITCH)
    ucontext_t main_ctx;
#endif
    const GridLaunch* launch = nullptr;
    BlockInfo block;
    unsigned launch_count = 0;
};

thread_local Scheduler* tl_sched = nullptr;

}  // namespace
}  // namespace emu

#if defined(EMU_ASM_SWITCH)
// emu_switch(save, to): saves the callee-saved registers, MXCSR and the x87 control word on the current stack,
// stores the stack pointer in *save, and resumes the context whose stack pointer is `to`.
extern "C" void emu_switch(void** save, void* to);
asm(R"(
    .text
    .p2align 4
    .type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch,.-emu_switch
)");
#endif

namespace emu {
namespace {

[[noreturn]] void fiber_main();

#if defined(EMU_ASM_SWITCH)
// A fresh stack that emu_switch "returns" into fiber_main with the ABI's alignment (rsp = 8 mod 16 on entry).
void* initial_stack(char* stack) {
    auto* top = (uint64_t*)(stack + kStackBytes);  // 16-byte aligned (mmap)
    top[-1] = 0;                                   // fiber_main's return address: it never returns
    top[-2] = (uint64_t)(void*)&fiber_main;        // popped by emu_switch's ret
    for (int i = 3; i <= 8; ++i) top[-i] = 0;      // rbp rbx r12 r13 r14 r15
    uint32_t* fp = (uint32_t*)&top[-9];
    fp[0] = 0x1f80;                                // MXCSR: all exceptions masked, round to nearest
    fp[1] = 0x037f;                                // x87 control word: the same
    return &top[-9];
}
inline void switch_to_fiber(Scheduler& s, Fiber& f) { emu_switch(&s.main_sp, f.sp); }
inline void switch_to_main(Scheduler& s, Fiber& f) { emu_switch(&f.sp, s.main_sp); }
#else
void start_context(Fiber& f, char* stack) {
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, (void (*)()) & fiber_main, 0);
}
inline void switch_to_fiber(Scheduler& s, Fiber& f) { swapcontext(&s.main_ctx, &f.ctx); }
inline void switch_to_main(Scheduler& s, Fiber& f) { swapcontext(&f.ctx, &s.main_ctx); }
#endif

Fiber& me() { return *static_cast<Fiber*>(tl_fiber); }

[[noreturn]] void fiber_main() {
    Scheduler& s = *tl_sched;
    s.launch->invoke(s.launch->fn, s.launch->params);
    Fiber& f = me();
    f.wait = Wait::Done;
    switch_to_main(s, f);
    __builtin_trap();  // a finished fiber is never resumed
}

void wait_for(Wait w) {
    Fiber& f = me();
    f.wait = w;
    switch_to_main(*tl_sched, f);
}

char* new_stack() {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mprotect(p, page, PROT_NONE);  // guard page below the stack: an overflow faults instead of corrupting a neighbour
    return (char*)p + page;
}

float half_lo(uint32_t r, bool bf16) {
    const uint16_t h = (uint16_t)(r & 0xffffu);
    if (bf16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
    _Float16 v;
    std::memcpy(&v, &h, 2);
    return (float)v;
}
float half_hi(uint32_t r, bool bf16) { return half_lo(r >> 16, bf16); }

// The whole warp's mma: fragments into matrices (PTX ISA, "Matrix Fragments for mma.m16n8k16" with .f16/.bf16 A and
// B and .f32 C/D; groupID = lane >> 2, threadID_in_group = lane % 4), D = A B + C, and back into each lane's c[].
void resolve_mma(Fiber* lanes, bool bf16) {
    float A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; ++l) {
        const Fiber& f = lanes[l];
        const int g = l >> 2, t = l & 3;
        // a0,a1: (g, 2t..2t+1)  a2,a3: (g+8, 2t..)  a4,a5: (g, 2t+8..)  a6,a7: (g+8, 2t+8..); low half = lower index.
        for (int r = 0; r < 4; ++r) {
            const int row = g + ((r & 1) ? 8 : 0), col = 2 * t + ((r & 2) ? 8 : 0);
            A[row][col] = half_lo(f.a[r], bf16);
            A[row][col + 1] = half_hi(f.a[r], bf16);
        }
        // b0,b1: (k 2t..2t+1, n g)  b2,b3: (k 2t+8.., n g).
        for (int r = 0; r < 2; ++r) {
            const int k = 2 * t + (r ? 8 : 0);
            B[k][g] = half_lo(f.b[r], bf16);
            B[k + 1][g] = half_hi(f.b[r], bf16);
        }
        // c0,c1: (g, 2t..2t+1)  c2,c3: (g+8, 2t..).
        for (int i = 0; i < 4; ++i) C[g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)] = f.c[i];
    }
    for (int l = 0; l < 32; ++l) {
        Fiber& f = lanes[l];
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; ++i) {
            const int m = g + (i >= 2 ? 8 : 0), n = 2 * t + (i & 1);
            // Products of 16-bit values are exact in float; the sum in double rounds once, as closely as the
            // tensor core's wide accumulation can be described.
            double acc = C[m][n];
            for (int k = 0; k < 16; ++k) acc += (double)A[m][k] * (double)B[k][n];
            f.c[i] = (float)acc;
        }
    }
}

std::string where(const Scheduler& s, int warp) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "kernel %s, block (%u,%u,%u), warp %d", s.launch->name, s.block.block_idx.x,
                  s.block.block_idx.y, s.block.block_idx.z, warp);
    return buf;
}

std::string lane_list(const Fiber* lanes, int count, Wait w) {
    std::string out;
    for (int l = 0; l < count; ++l)
        if (lanes[l].wait == w) {
            if (!out.empty()) out += ',';
            out += std::to_string(l);
        }
    return out.empty() ? "none" : out;
}

// Completes warp `warp` if all its lanes wait at a collective; "" when done or not ready, else the error.
std::string try_resolve_warp(Scheduler& s, int warp, int nthreads, bool& released) {
    Fiber* lanes = &s.fibers[(size_t)warp * 32];
    const int count = nthreads - warp * 32 < 32 ? nthreads - warp * 32 : 32;
    int waiting = 0;
    for (int l = 0; l < count; ++l) waiting += lanes[l].wait == Wait::Warp;
    if (waiting == 0 || waiting < count) return "";
    const uint32_t present = count == 32 ? 0xffffffffu : ((1u << count) - 1u);
    const Coll kind = lanes[0].coll;
    for (int l = 0; l < count; ++l) {
        if (lanes[l].coll != kind)
            return where(s, warp) + ": lane 0 is at " + coll_name(kind) + " but lane " + std::to_string(l) + " at " +
                   coll_name(lanes[l].coll) + " (divergent warp collectives)";
        if (lanes[l].mask != present)
            return where(s, warp) + ": " + coll_name(kind) + " with mask " + std::to_string(lanes[l].mask) +
                   " on lane " + std::to_string(l) + ", but the warp's lanes are " + std::to_string(present) +
                   " (the emulator requires every lane of the warp, and only those, in each collective)";
    }
    if ((kind == Coll::Mma || kind == Coll::MmaBf16) && count != 32)
        return where(s, warp) + ": mma.sync in a warp of " + std::to_string(count) + " threads";
    switch (kind) {
        case Coll::Shuffle:
        case Coll::ShuffleXor:
            for (int l = 0; l < count; ++l) {
                Fiber& f = lanes[l];
                const int w = f.width, base = l & ~(w - 1);
                int src = kind == Coll::Shuffle ? base + (f.arg & (w - 1)) : l ^ f.arg;
                if (src < base || src >= base + w || src >= count) src = l;  // outside the segment: own value
                f.result = lanes[src].value;
            }
            break;
        case Coll::Ballot: {
            uint32_t bits = 0;
            for (int l = 0; l < count; ++l) bits |= lanes[l].value ? (1u << l) : 0u;
            for (int l = 0; l < count; ++l) lanes[l].result = bits;
            break;
        }
        case Coll::Mma:
        case Coll::MmaBf16: resolve_mma(lanes, kind == Coll::MmaBf16); break;
    }
    for (int l = 0; l < count; ++l) lanes[l].wait = Wait::Runnable;
    released = true;
    return "";
}

std::string describe_deadlock(Scheduler& s, int nthreads) {
    for (int w = 0; w * 32 < nthreads; ++w) {
        const Fiber* lanes = &s.fibers[(size_t)w * 32];
        const int count = nthreads - w * 32 < 32 ? nthreads - w * 32 : 32;
        bool any = false;
        for (int l = 0; l < count; ++l) any |= lanes[l].wait == Wait::Warp;
        if (any)
            return where(s, w) + ": lanes " + lane_list(lanes, count, Wait::Warp) + " wait at " +
                   coll_name(lanes[0].coll) + ", lanes " + lane_list(lanes, count, Wait::Done) + " have exited, lanes " +
                   lane_list(lanes, count, Wait::Block) + " wait at __syncthreads (deadlock)";
    }
    return where(s, 0) + ": deadlock";
}

// Runs one block to completion; "" or the error.
std::string run_block(Scheduler& s, int nthreads) {
    const dim3 bd = s.block.block_dim;
    for (int i = 0; i < nthreads; ++i) {
        Fiber& f = s.fibers[(size_t)i];
        f.tid = dim3{(unsigned)i % bd.x, ((unsigned)i / bd.x) % bd.y, (unsigned)i / (bd.x * bd.y)};
        f.wait = Wait::Runnable;
        f.stack = s.stacks[(size_t)i];
#if defined(EMU_ASM_SWITCH)
        f.sp = initial_stack(f.stack);
#else
        start_context(f, f.stack);
#endif
    }
    // Every other block (and, for one-block grids, every other launch) runs its threads last to first: a read of
    // another thread's shared-memory write that no barrier orders then sees the NaN fill or a stale value in one of
    // the two orders, instead of the write by luck.
    const bool reverse = ((s.block.block_idx.x + s.block.block_idx.y + s.block.block_idx.z + s.launch_count) & 1u) != 0;
    for (;;) {
        for (int k = 0; k < nthreads; ++k) {
            const int i = reverse ? nthreads - 1 - k : k;
            Fiber& f = s.fibers[(size_t)i];
            if (f.wait != Wait::Runnable) continue;
            tl_fiber = &f;
            switch_to_fiber(s, f);
        }
        bool released = false;
        for (int w = 0; w * 32 < nthreads; ++w) {
            std::string err = try_resolve_warp(s, w, nthreads, released);
            if (!err.empty()) return err;
        }
        if (released) continue;
        int done = 0, at_barrier = 0;
        for (int i = 0; i < nthreads; ++i) {
            done += s.fibers[(size_t)i].wait == Wait::Done;
            at_barrier += s.fibers[(size_t)i].wait == Wait::Block;
        }
        if (done == nthreads) return "";
        if (at_barrier + done == nthreads) {  // threads that have exited do not hold a barrier up
            for (int i = 0; i < nthreads; ++i)
                if (s.fibers[(size_t)i].wait == Wait::Block) s.fibers[(size_t)i].wait = Wait::Runnable;
            continue;
        }
        return describe_deadlock(s, nthreads);
    }
}

Fiber& enter_collective(Coll kind, uint32_t mask) {
    Fiber& f = me();
    f.coll = kind;
    f.mask = mask;
    return f;
}

}  // namespace

void sync_block() { wait_for(Wait::Block); }

uint64_t warp_shuffle(uint32_t mask, uint64_t value, int lane_arg, int width, bool xor_mode) {
    Fiber& f = enter_collective(xor_mode ? Coll::ShuffleXor : Coll::Shuffle, mask);
    f.value = value;
    f.arg = lane_arg;
    f.width = width;
    wait_for(Wait::Warp);
    return f.result;
}

uint32_t warp_ballot(uint32_t mask, bool predicate) {
    Fiber& f = enter_collective(Coll::Ballot, mask);
    f.value = predicate;
    wait_for(Wait::Warp);
    return (uint32_t)f.result;
}

void mma_m16n8k16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1, bool bf16) {
    Fiber& f = enter_collective(bf16 ? Coll::MmaBf16 : Coll::Mma, 0xffffffffu);
    for (int i = 0; i < 4; ++i) f.a[i] = a[i], f.c[i] = c[i];
    f.b[0] = b0;
    f.b[1] = b1;
    wait_for(Wait::Warp);
    for (int i = 0; i < 4; ++i) c[i] = f.c[i];
}

bool run_grid(const GridLaunch& launch, std::string& error) {
    if (!tl_sched) tl_sched = new Scheduler();  // one per OS thread, kept for its stacks
    Scheduler& s = *tl_sched;
    const int nthreads = (int)(launch.block.x * launch.block.y * launch.block.z);
    while ((int)s.stacks.size() < nthreads) {
        char* st = new_stack();
        if (!st) { error = "could not map a fiber stack"; return false; }
        s.stacks.push_back(st);
    }
    if ((int)s.fibers.size() < nthreads) s.fibers.resize((size_t)nthreads);
    s.smem.resize(launch.dynamic_smem ? launch.dynamic_smem : 1);
    s.launch = &launch;
    ++s.launch_count;
    s.block.block_dim = launch.block;
    s.block.grid_dim = launch.grid;
    s.block.dynamic_smem = s.smem.data();
    BlockInfo* saved_block = tl_block;
    FiberHeader* saved_fiber = tl_fiber;
    tl_block = &s.block;
    bool ok = true;
    for (unsigned z = 0; z < launch.grid.z && ok; ++z)
        for (unsigned y = 0; y < launch.grid.y && ok; ++y)
            for (unsigned x = 0; x < launch.grid.x && ok; ++x) {
                s.block.block_idx = dim3{x, y, z};
                // Shared memory starts with whatever the previous block left; NaN bytes make a read before the
                // first write show up in the results instead of passing by luck.
                std::memset(s.smem.data(), 0xff, s.smem.size());
                std::string err = run_block(s, nthreads);
                if (!err.empty()) { error = err; ok = false; }
            }
    tl_block = saved_block;
    tl_fiber = saved_fiber;
    return ok;
}

}  // namespace emu
