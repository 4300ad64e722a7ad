// Checks of the emulator itself, with kernels written for the purpose: that it computes what the CUDA programming
// model and the PTX ISA define, and that it refuses what a GPU would deadlock on or leave undefined. Run by
// `./build.sh test` (and CI) before the C# CUDA tests use the emulator; exits non-zero on the first failure.
#define TESSERA_EMU 1
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda_emu.h"

namespace {

int g_checks = 0;

void check(bool ok, const std::string& what) {
    ++g_checks;
    if (ok) return;
    std::fprintf(stderr, "emulator self-test FAILED: %s\n", what.c_str());
    std::exit(1);
}

// Launches a kernel that takes a single void* argument.
bool launch(void (*kernel)(void*), void* arg, emu::dim3 grid, emu::dim3 block, std::string& error, size_t smem = 0) {
    emu::GridLaunch l;
    l.grid = grid;
    l.block = block;
    l.dynamic_smem = smem;
    l.fn = reinterpret_cast<void*>(kernel);
    l.invoke = [](void* fn, void** p) { reinterpret_cast<void (*)(void*)>(fn)(*static_cast<void**>(p[0])); };
    void* params[1] = {&arg};
    l.params = params;
    l.name = "selftest";
    return emu::run_grid(l, error);
}

// ---- mma.m16n8k16: fragments built from the PTX ISA's per-element formulas, D compared with a plain product ----
struct MmaData {
    float A[16][16], B[16][8], C[16][8], D[16][8];
    bool bf16;
};

uint16_t bits16(float v, bool bf16) {
    if (bf16) return __bfloat16_as_ushort(__float2bfloat16_rn(v));
    return __half_as_ushort(__float2half_rn(v));
}

void mma_kernel(void* p) {
    auto* d = static_cast<MmaData*>(p);
    const int lane = threadIdx.x, groupID = lane >> 2, tig = lane % 4;
    // A: a0..a7, two per .b32 register, lower index in the low half (ISA: "Matrix Fragments for mma.m16n8k16").
    uint32_t a[4] = {};
    for (int i = 0; i < 8; ++i) {
        const int row = (i < 2 || (i >= 4 && i < 6)) ? groupID : groupID + 8;
        const int col = tig * 2 + (i & 1) + (i >= 4 ? 8 : 0);
        a[i / 2] |= (uint32_t)bits16(d->A[row][col], d->bf16) << (16 * (i & 1));
    }
    uint32_t b[2] = {};
    for (int i = 0; i < 4; ++i) {
        const int row = tig * 2 + (i & 1) + (i >= 2 ? 8 : 0), col = groupID;
        b[i / 2] |= (uint32_t)bits16(d->B[row][col], d->bf16) << (16 * (i & 1));
    }
    float c[4];
    for (int i = 0; i < 4; ++i) c[i] = d->C[i < 2 ? groupID : groupID + 8][tig * 2 + (i & 1)];
    emu::mma_m16n8k16(c, a, b[0], b[1], d->bf16);
    for (int i = 0; i < 4; ++i) d->D[i < 2 ? groupID : groupID + 8][tig * 2 + (i & 1)] = c[i];
}

void test_mma(bool bf16) {
    MmaData d{};
    d.bf16 = bf16;
    // Small integers: exact in both 16-bit formats and in every partial sum, so D must equal the product exactly.
    for (int m = 0; m < 16; ++m)
        for (int k = 0; k < 16; ++k) d.A[m][k] = (float)((m * 7 + k * 3) % 11 - 5);
    for (int k = 0; k < 16; ++k)
        for (int n = 0; n < 8; ++n) d.B[k][n] = (float)((k * 5 + n * 13) % 9 - 4);
    for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) d.C[m][n] = (float)(m * 8 + n);
    std::string err;
    check(launch(mma_kernel, &d, {1, 1, 1}, {32, 1, 1}, err), "mma launch: " + err);
    for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) {
            float want = d.C[m][n];
            for (int k = 0; k < 16; ++k) want += d.A[m][k] * d.B[k][n];
            check(d.D[m][n] == want, std::string(bf16 ? "bf16" : "f16") + " mma D[" + std::to_string(m) + "][" +
                                         std::to_string(n) + "] = " + std::to_string(d.D[m][n]) + ", expected " + std::to_string(want));
        }
}

// ---- shuffles, ballot, block reduction ----
struct Lanes {
    int in[256], out[256], out2[256];
};

void shuffle_kernel(void* p) {
    auto* d = static_cast<Lanes*>(p);
    const int t = threadIdx.x, lane = t & 31;
    d->out[t] = __shfl_xor_sync(0xffffffffu, d->in[t], 5);
    d->out2[t] = __shfl_sync(0xffffffffu, d->in[t], 31 - lane) + (int)__ballot_sync(0xffffffffu, lane % 3 == 0) * 0;
}

void test_shuffles() {
    Lanes d{};
    for (int i = 0; i < 64; ++i) d.in[i] = 1000 + i;
    std::string err;
    check(launch(shuffle_kernel, &d, {1, 1, 1}, {64, 1, 1}, err), "shuffle launch: " + err);
    for (int i = 0; i < 64; ++i) {
        const int warp = i & ~31, lane = i & 31;
        check(d.out[i] == 1000 + warp + (lane ^ 5), "__shfl_xor_sync lane " + std::to_string(i));
        check(d.out2[i] == 1000 + warp + (31 - lane), "__shfl_sync lane " + std::to_string(i));
    }
}

void ballot_kernel(void* p) {
    auto* d = static_cast<Lanes*>(p);
    const int t = threadIdx.x;
    d->out[t] = (int)__ballot_sync(0xffffffffu, d->in[t] > 0);
}

void test_ballot() {
    Lanes d{};
    uint32_t want = 0;
    for (int i = 0; i < 32; ++i) {
        d.in[i] = (i * 7) % 5 == 1 ? 1 : 0;
        want |= d.in[i] ? 1u << i : 0u;
    }
    std::string err;
    check(launch(ballot_kernel, &d, {1, 1, 1}, {32, 1, 1}, err), "ballot launch: " + err);
    for (int i = 0; i < 32; ++i) check((uint32_t)d.out[i] == want, "__ballot_sync lane " + std::to_string(i));
}

// A block-wide sum through shared memory with barriers, over several blocks (both thread orders).
void block_sum_kernel(void* p) {
    auto* d = static_cast<Lanes*>(p);
    __shared__ int part[8];
    const int t = threadIdx.x, b = blockIdx.x;
    if (t < 8) part[t] = 0;
    __syncthreads();
    atomicAdd(&part[t & 7], d->in[b * 64 + t]);
    __syncthreads();
    if (t == 0) d->out[b] = part[0] + part[1] + part[2] + part[3] + part[4] + part[5] + part[6] + part[7];
}

void test_block_sum() {
    Lanes d{};
    for (int i = 0; i < 256; ++i) d.in[i] = i * 3 - 100;
    std::string err;
    check(launch(block_sum_kernel, &d, {4, 1, 1}, {64, 1, 1}, err), "block sum launch: " + err);
    for (int b = 0; b < 4; ++b) {
        int want = 0;
        for (int t = 0; t < 64; ++t) want += d.in[b * 64 + t];
        check(d.out[b] == want, "block sum of block " + std::to_string(b));
    }
}

// ---- what must fail ----
void divergent_shuffle_kernel(void* p) {
    auto* d = static_cast<Lanes*>(p);
    const int t = threadIdx.x;
    if (t < 16) d->out[t] = __shfl_xor_sync(0xffffffffu, t, 1);  // half the warp: a deadlock on a GPU
}

void barrier_in_one_warp_kernel(void* p) {
    auto* d = static_cast<Lanes*>(p);
    const int t = threadIdx.x;
    if (t < 16) d->out[t] = __shfl_xor_sync(0xffffffffu, t, 1);  // the other half of the warp waits at the barrier
    else __syncthreads();
}

void partial_warp_kernel(void* p) {
    auto* d = static_cast<Lanes*>(p);
    d->out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);  // 48 threads: warp 1 has 16 lanes
}

// Thread 0 writes, thread 1 reads with no barrier between: in one of the two thread orders the read comes first
// and sees the previous block's value.
void race_kernel(void* p) {
    auto* d = static_cast<Lanes*>(p);
    __shared__ int cell;
    if (threadIdx.x == 0) cell = 42 + (int)blockIdx.x;
    if (threadIdx.x == 1) d->out[blockIdx.x] = cell;
}

void test_refusals() {
    Lanes d{};
    std::string err;
    check(!launch(divergent_shuffle_kernel, &d, {1, 1, 1}, {32, 1, 1}, err), "a shuffle by half a warp must fail");
    check(err.find("have exited") != std::string::npos, "the error names exited lanes: " + err);
    err.clear();
    check(!launch(barrier_in_one_warp_kernel, &d, {1, 1, 1}, {32, 1, 1}, err), "a shuffle against __syncthreads must fail");
    check(err.find("__syncthreads") != std::string::npos, "the error names the barrier: " + err);
    err.clear();
    check(!launch(partial_warp_kernel, &d, {1, 1, 1}, {48, 1, 1}, err), "a full-mask shuffle in a 16-thread warp must fail");
    check(err.find("mask") != std::string::npos, "the error names the mask: " + err);
    err.clear();
    check(launch(race_kernel, &d, {2, 1, 1}, {32, 1, 1}, err), "race kernel runs: " + err);
    check((d.out[0] == 42) != (d.out[1] == 43), "an unordered read sees its own block's write in one order only (" +
                                                    std::to_string(d.out[0]) + ", " + std::to_string(d.out[1]) + ")");
}

// ---- conversions ----
void test_conversions() {
    check(__half_as_ushort(__float2half_rn(1.0f)) == 0x3c00, "half(1)");
    check(__half_as_ushort(__float2half_rn(65520.0f)) == 0x7c00, "half(65520) rounds to inf");
    check(__half_as_ushort(__float2half_rn(1.0f + 1.0f / 2048)) == 0x3c00, "half tie rounds to even");
    check(__half_as_ushort(__float2half_rn(5.96046448e-08f)) == 0x0001, "smallest subnormal half");
    check(__half2float(__ushort_as_half(0xc000)) == -2.0f, "half(-2) back");
    check(__bfloat16_as_ushort(__float2bfloat16_rn(1.0f)) == 0x3f80, "bf16(1)");
    check(__bfloat16_as_ushort(__float2bfloat16_rn(__uint_as_float(0x3f808000u))) == 0x3f80, "bf16 tie rounds to even");
    check(__bfloat16_as_ushort(__float2bfloat16_rn(__uint_as_float(0x3f818000u))) == 0x3f82, "bf16 tie rounds up to even");
    check(__bfloat162float(__float2bfloat16_rn(NAN)) != __bfloat162float(__float2bfloat16_rn(NAN)), "bf16 NaN stays NaN");
}

}  // namespace

int main() {
    test_conversions();
    test_mma(false);
    test_mma(true);
    test_shuffles();
    test_ballot();
    test_block_sum();
    test_refusals();
    std::printf("CUDA emulator self-test: %d checks passed\n", g_checks);
    return 0;
}
