// The emulator's execution model: a grid runs block by block; the threads of a block are fibers on one OS thread,
// each running the kernel until it reaches a barrier, a warp collective or its end. When every fiber of the block
// waits, the scheduler completes the warps whose 32 lanes have all arrived (shuffle, ballot, mma), else releases
// __syncthreads when every live thread is there. Anything else (a lane missing from a collective, lanes of one warp
// at different collectives, a thread at __syncthreads while others wait on a warp) is a deadlock or undefined
// behaviour on a GPU, and fails the launch with a message naming the block, warp and lanes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace emu {

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

/// What the kernel sees of the block it runs in.
struct BlockInfo {
    dim3 block_idx, block_dim, grid_dim;
    void* dynamic_smem = nullptr;
};

/// The first part of every fiber: its thread index (read on every threadIdx).
struct FiberHeader {
    dim3 tid;
};

extern thread_local FiberHeader* tl_fiber;
extern thread_local BlockInfo* tl_block;

inline const dim3& current_thread_index() { return tl_fiber->tid; }
inline BlockInfo* current_block() { return tl_block; }
inline void* dynamic_smem() { return tl_block->dynamic_smem; }

void sync_block();
uint64_t warp_shuffle(uint32_t mask, uint64_t value, int lane_arg, int width, bool xor_mode);
uint32_t warp_ballot(uint32_t mask, bool predicate);
/// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32 with D = C (c in place): a[4] and b0, b1 are this
/// lane's fragments of A (16x16) and B (16x8), c[4] of C/D (16x8), in the PTX ISA's layout.
void mma_m16n8k16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1, bool bf16);

/// One kernel launch: invoke(fn, params) runs the kernel body for the current fiber.
struct GridLaunch {
    dim3 grid, block;
    size_t dynamic_smem = 0;
    void (*invoke)(void* fn, void** params) = nullptr;
    void* fn = nullptr;
    void** params = nullptr;
    const char* name = "";
};

/// Runs every block of the grid; false with a message when a block deadlocks or breaks a collective's rules.
bool run_grid(const GridLaunch& launch, std::string& error);

}  // namespace emu
